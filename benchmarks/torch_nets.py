"""The PyTorch side of the benchmark: the same networks as convtrain's configs, written the way a
careful PyTorch user would (NCHW float32, in-place ReLU, LCN as a channel mean plus a separable
Gaussian window with the border correction precomputed, no bias decay as convtrain does).

The architecture comes as a plain description (a list of dicts made by `describe()` from a built
convtrain Network), so this module imports torch but never convtrain, and a torch worker process
pays for torch alone.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def describe(net) -> list[dict]:
    """A built convtrain Network -> a JSON-able list of layer dicts with every size resolved."""
    out = []
    for layer in net.layers:
        t = layer.type
        d = {"type": t, "name": layer.name, "in_shape": list(layer.in_shape),
             "out_shape": list(layer.output_shape)}
        if t == "conv":
            g = layer.geom
            d.update(filters=layer.spec.filters, size=[g.KH, g.KW], stride=[g.SH, g.SW],
                     pad=[g.pt, g.pb, g.pl, g.pr], bias=bool(layer.spec.bias))
        elif t in ("max_pool", "avg_pool"):
            g = layer.geom
            d.update(size=[g.kh, g.kw], stride=[g.sh, g.sw], pad=[g.pt, g.pb, g.pl, g.pr],
                     ceil=bool(layer.spec.ceil))
        elif t == "dense":
            d.update(units=layer.spec.units, bias=bool(layer.spec.bias))
        elif t == "dropout":
            d.update(rate=layer.spec.rate)
        elif t == "lcn":
            if layer.spec.mode != "torch":
                raise NotImplementedError("lcn mode jarrett has no PyTorch twin here")
            d.update(g=[float(v) for v in layer.g], threshold=float(layer.spec.threshold))
        elif t in ("relu", "flatten"):
            pass
        else:
            raise NotImplementedError(f"no PyTorch twin for layer type {t!r}")
        out.append(d)
    return out


def band_matrix(g, n: int) -> torch.Tensor:
    """(n, n) matrix B with (B @ u)[i] = sum_p g[p] u[i + p - r], zero outside: one 1-D pass of
    the separable window, borders included."""
    k = len(g)
    r = k // 2
    B = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for p in range(k):
            j = i + p - r
            if 0 <= j < n:
                B[i, j] = float(g[p])
    return B


class LCN(nn.Module):
    """Torch7-style local contrast normalisation (subtractive then divisive), as convtrain's lcn:

        mean  = A(mean_c x) / coef          A: the separable zero-padded window g g^T
        xc    = x - mean                    coef = A(ones): window mass inside the image
        var   = A(mean_c xc^2) / coef
        y     = xc / max(sqrt(var), threshold) = xc * rsqrt(max(var, threshold^2))

    The efficient form: reduce over channels first (one map per sample), then the separable
    window. `window="matmul"` (the default) applies each 1-D pass as a product with a banded
    (H, H) / (W, W) matrix, which carries the zero padding; `window="conv"` uses two 1-D
    F.conv2d calls. On this machine the matmul form ran the 128x32x28x28 LCN forward + backward
    ~2.5x faster than the conv form (oneDNN is slow on 1-channel 9x1 convolutions), so the
    benchmark compares against it.
    """

    def __init__(self, g, H: int, W: int, threshold: float = 1e-4, window: str = "matmul"):
        super().__init__()
        k = len(g)
        self.r = k // 2
        self.mode = window
        gt = torch.tensor(g, dtype=torch.float32)
        self.register_buffer("gv", gt.view(1, 1, k, 1).clone())
        self.register_buffer("gh", gt.view(1, 1, 1, k).clone())
        self.register_buffer("bv", band_matrix(g, H).float())
        self.register_buffer("bhT", band_matrix(g, W).T.contiguous().float())
        with torch.no_grad():
            coef = self._window(torch.ones(1, 1, H, W))
        self.register_buffer("icoef", 1.0 / coef)
        self.floor = threshold * threshold

    def _window(self, u):
        if self.mode == "matmul":
            return self.bv @ u @ self.bhT
        u = F.conv2d(u, self.gv, padding=(self.r, 0))
        return F.conv2d(u, self.gh, padding=(0, self.r))

    def forward(self, x):
        mean = self._window(x.mean(1, keepdim=True)) * self.icoef
        xc = x - mean
        var = self._window(xc.square().mean(1, keepdim=True)) * self.icoef
        return xc * var.clamp_min(self.floor).rsqrt()


def build(desc: list[dict], *, inplace: bool = True) -> nn.Sequential:
    """The nn.Sequential twin of a described convtrain network (PyTorch's default init)."""
    mods = []
    for d in desc:
        t = d["type"]
        if t == "conv":
            c_in = d["in_shape"][0]
            t_, b_, l_, r_ = d["pad"]
            if t_ == b_ and l_ == r_:
                pad = (t_, l_)
            else:
                mods.append(nn.ZeroPad2d((l_, r_, t_, b_)))
                pad = 0
            mods.append(nn.Conv2d(c_in, d["filters"], tuple(d["size"]), stride=tuple(d["stride"]),
                                  padding=pad, bias=d["bias"]))
        elif t in ("max_pool", "avg_pool"):
            t_, b_, l_, r_ = d["pad"]
            if t_ != b_ or l_ != r_:
                raise NotImplementedError("asymmetric pooling padding")
            cls = nn.MaxPool2d if t == "max_pool" else nn.AvgPool2d
            kw = {"kernel_size": tuple(d["size"]), "stride": tuple(d["stride"]),
                  "padding": (t_, l_), "ceil_mode": d["ceil"]}
            if t == "avg_pool":
                kw["count_include_pad"] = False
            mods.append(cls(**kw))
        elif t == "relu":
            mods.append(nn.ReLU(inplace=inplace))
        elif t == "lcn":
            _, H, W = d["in_shape"]
            mods.append(LCN(d["g"], H, W, d["threshold"]))
        elif t == "dense":
            if len(d["in_shape"]) > 1:
                mods.append(nn.Flatten())
            mods.append(nn.Linear(math.prod(d["in_shape"]), d["units"], bias=d["bias"]))
        elif t == "dropout":
            mods.append(nn.Dropout(d["rate"]))
        elif t == "flatten":
            mods.append(nn.Flatten())
        else:
            raise NotImplementedError(t)
    return nn.Sequential(*mods)


def layer_groups(desc: list[dict], model: nn.Sequential) -> list[tuple[str, list[nn.Module]]]:
    """Pair each convtrain layer name with the torch modules that implement it (a padded conv
    is ZeroPad2d + Conv2d; a dense after an image is Flatten + Linear)."""
    mods = list(model)
    groups, i = [], 0
    for d in desc:
        take = 1
        if d["type"] == "conv" and isinstance(mods[i], nn.ZeroPad2d):
            take = 2
        if d["type"] == "dense" and isinstance(mods[i], nn.Flatten):
            take = 2
        groups.append((d["name"], mods[i:i + take]))
        i += take
    assert i == len(mods)
    return groups


def load_params(desc: list[dict], model: nn.Sequential, params: dict) -> None:
    """Copy convtrain parameters ({layer name: {"weight", "bias"} numpy arrays}) into the twin."""
    for name, group in layer_groups(desc, model):
        mod = group[-1]
        if name in params and isinstance(mod, (nn.Conv2d, nn.Linear)):
            with torch.no_grad():
                mod.weight.copy_(torch.from_numpy(params[name]["weight"]))
                if mod.bias is not None:
                    mod.bias.copy_(torch.from_numpy(params[name]["bias"]))


def optimizer(model: nn.Module, lr: float, momentum: float, weight_decay: float,
              nesterov: bool = False) -> torch.optim.SGD:
    """SGD with momentum; weight decay on weights only (convtrain does not decay biases)."""
    decay = [p for n, p in model.named_parameters() if not n.endswith("bias")]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias")]
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov)


def train_step(model, opt, x, y) -> float:
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()
