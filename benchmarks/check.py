"""Check that the PyTorch twins compute what convtrain computes (same weights, same batch):
logits in inference, then the loss and every weight gradient (dropout taken out, since the two
sides draw different masks). Prints one JSON line per config with the worst relative errors.

    python -m benchmarks.check configs/lenet5.yaml [configs/...]
"""
from __future__ import annotations

import json
import sys

import numpy as np


def check(path: str, batch: int = 16) -> dict:
    import torch
    import torch.nn.functional as F

    from convtrain import config as configmod
    from convtrain.nn.network import Network

    from . import torch_nets as tn

    torch.set_num_threads(2)
    cfg = configmod.load(path)
    model_cfg = [lc for lc in cfg.model if lc.type != "dropout"]
    net = Network.build(model_cfg, tuple(cfg.input), seed=0, dtype=np.float32)
    desc = tn.describe(net)
    model = tn.build(desc, inplace=False)
    tn.load_params(desc, model, {l.name: l.params for l in net.layers if l.params})
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch,) + tuple(cfg.input), dtype=np.float32)
    y = rng.integers(0, 10, batch)

    def rel(a, b):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))

    out = {"config": path, "name": cfg.name}
    logits = net.predict(x)
    model.eval()
    with torch.no_grad():
        tlogits = model(torch.from_numpy(x)).numpy()
    out["logits_rel_err"] = rel(logits, tlogits)

    net.zero_grads()
    loss, _, _ = net.loss_and_grads(x, y)
    model.train()
    model.zero_grad()
    tloss = F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
    tloss.backward()
    out["loss_rel_err"] = abs(loss - tloss.item()) / abs(tloss.item())
    worst = 0.0
    for name, group in tn.layer_groups(desc, model):
        mod = group[-1]
        layer = next(l for l in net.layers if l.name == name)
        for key in layer.grads:
            tg = getattr(mod, key).grad.numpy()
            worst = max(worst, rel(layer.grads[key], tg))
    out["grad_rel_err"] = worst
    out["ok"] = all(out[k] < 1e-3 for k in ("logits_rel_err", "loss_rel_err", "grad_rel_err"))
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    for path in argv:
        try:
            print(json.dumps(check(path)), flush=True)
        except Exception as e:  # noqa: BLE001  (report every config, keep going)
            print(json.dumps({"config": path, "ok": False, "error": f"{type(e).__name__}: {e}"}),
                  flush=True)


if __name__ == "__main__":
    main()
