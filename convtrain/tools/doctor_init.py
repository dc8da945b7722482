"""Doctor check 2: the health of a freshly initialised net on one real batch."""
from __future__ import annotations

import numpy as np

from .. import data as datamod
from .doctor_check import FAIL, PASS, TITLES, WARN, Check

DEAD_WARN = 0.5          # a ReLU layer with more than half its units dead over the batch
SATURATED_WARN = 0.2     # a tanh/sigmoid layer with more than a fifth of its outputs saturated
STD_LOW, STD_HIGH = 0.1, 10.0   # a parametrised layer's output std relative to the input's
GRAD_SPREAD_WARN = 1e3   # max / min of |grad W| / |W| across layers: vanishing or exploding


def check_init(cfg, splits, *, batch: int = 64) -> Check:
    """Forward and backward one real batch through the freshly initialised float32 net."""
    from ..nn.loss import softmax_cross_entropy
    from ..nn.network import Network

    net = Network.build(cfg.model, splits.input_shape, seed=cfg.seed, source=cfg.source)
    n = min(batch, len(splits.train.y))
    x = datamod.normalize(splits.train.x[:n], splits.mean, splits.std)
    y = splits.train.y[:n]
    in_std = float(x.std()) or 1.0
    net.reseed(cfg.seed, 0)
    net.zero_grads()
    rows, caches = [], []
    h = x
    for layer in net.layers:
        h, cache = layer.forward(h, train=True)
        caches.append(cache)
        rows.append(_activation_stats(layer, h))
    logits = h
    _, dlogits, _ = softmax_cross_entropy(logits.astype(np.float64), y)
    net.backward(dlogits.astype(net.dtype), caches)
    for layer, row in zip(net.layers, rows):
        w = layer.params.get("weight")
        if w is not None:
            wn = float(np.linalg.norm(w.astype(np.float64)))
            gn = float(np.linalg.norm(layer.grads["weight"].astype(np.float64)))
            row["grad_weight_ratio"] = gn / wn if wn > 0 else None
        row["std_ratio"] = row["std"] / in_std if row["std"] is not None else None

    details = {"batch": n, "input_std": in_std, "layers": rows}
    nonfinite = [r["name"] for r in rows if not r["finite"]]
    if nonfinite:
        return Check("init", TITLES["init"], FAIL,
                     f"non-finite outputs at initialisation in {', '.join(nonfinite)}",
                     "check the init scheme and the data normalisation (inf/NaN already in the "
                     "first forward pass)", details)
    problems, hints = [], []
    for r in rows:
        if r["dead"] is not None and r["dead"] > DEAD_WARN:
            problems.append(f"{r['name']}: {100 * r['dead']:.0f}% dead units")
            hints.append("dead ReLUs: lower the initial weight scale or the biases, or use leaky_relu")
        if r["saturated"] is not None and r["saturated"] > SATURATED_WARN:
            problems.append(f"{r['name']}: {100 * r['saturated']:.0f}% saturated")
            hints.append("saturated units: use a smaller init (glorot) or normalise the inputs")
    param_rows = [r for r in rows if r["grad_weight_ratio"] is not None]
    stds = [(r["name"], r["std_ratio"]) for r in param_rows]
    low = [(nm, s) for nm, s in stds if s < STD_LOW]
    high = [(nm, s) for nm, s in stds if s > STD_HIGH]
    if low:
        nm, s = low[0]
        problems.append(f"variance collapses: {nm} output std {s:.2g} x the input's")
        hints.append("the signal vanishes with depth: use a larger init (he for relu) or "
                     "normalisation layers")
    if high:
        nm, s = high[0]
        problems.append(f"variance explodes: {nm} output std {s:.2g} x the input's")
        hints.append("the signal grows with depth: use a smaller init (he / glorot)")
    ratios = [r["grad_weight_ratio"] for r in param_rows]
    if ratios:
        zero = [r["name"] for r in param_rows if r["grad_weight_ratio"] == 0]
        positive = [v for v in ratios if v > 0]
        if zero:
            problems.append(f"no gradient reaches {', '.join(zero)}")
            hints.append("a layer gets zero gradient: dead units above it or a broken backward")
        elif positive and max(positive) / min(positive) > GRAD_SPREAD_WARN:
            problems.append(f"|grad W|/|W| spans {max(positive) / min(positive):.0e} across layers")
            hints.append("gradients vanish or explode through the depth: check the init scale")
    dead_rows = [r for r in rows if r["dead"] is not None]
    max_dead = max((r["dead"] for r in dead_rows), default=None)
    last_std = stds[-1][1] if stds else None
    desc = [f"{len(rows)} layers on {n} images"]
    if last_std is not None:
        desc.append(f"output std {min(s for _, s in stds):.2g}..{max(s for _, s in stds):.2g} x input")
    if max_dead is not None:
        desc.append(f"dead ReLUs <= {100 * max_dead:.0f}%")
    if ratios:
        desc.append(f"|grad W|/|W| {min(ratios):.1e}..{max(ratios):.1e}")
    if problems:
        return Check("init", TITLES["init"], WARN, "; ".join(problems), hints[0], details)
    return Check("init", TITLES["init"], PASS, "; ".join(desc), "", details)


def _activation_stats(layer, h: np.ndarray) -> dict:
    h64 = h.astype(np.float64, copy=False)
    finite = bool(np.isfinite(h64).all())
    row = {"name": layer.name, "type": layer.type, "shape": list(h.shape[1:]), "finite": finite,
           "mean": None, "std": None, "dead": None, "saturated": None, "grad_weight_ratio": None}
    if not finite:
        return row
    row["mean"] = float(h64.mean())
    row["std"] = float(h64.std())
    if layer.activation == "relu":
        row["dead"] = float(np.all(h == 0, axis=0).mean())
    elif layer.activation == "tanh":
        row["saturated"] = float((np.abs(h64) > 0.99).mean())
    elif layer.activation == "sigmoid":
        row["saturated"] = float(((h64 < 0.01) | (h64 > 0.99)).mean())
    return row
