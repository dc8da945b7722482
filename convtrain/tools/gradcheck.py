"""Finite-difference gradient checks (central differences, float64), as Caffe's GradientChecker.

The scalar checked is sum(output * R) for a single layer (R fixed random). For a network it is
the full training loss when the network ends in class scores (softmax cross-entropy on random
labels, plus the sparsity penalties); any other stack (a conv or a locally-connected layer at the
end) has no labels to score, so its output is projected on a fixed random R of the output's
shape: loss = <output, R> + the penalties, whose gradient with respect to the output is R.
Random layers are re-seeded before every forward. Entries sitting on a kink
(relu at 0, a max-pool tie, the LCN floor) are detected by central differences at two step sizes
that disagree, and skipped, as Caffe's `kink` option skips them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn.loss import softmax_cross_entropy


@dataclass
class TensorCheck:
    name: str
    shape: tuple
    checked: int
    kinks: int
    max_rel_error: float
    max_abs_error: float

    def ok(self, tol: float) -> bool:
        return self.max_rel_error <= tol


def relative_error(analytic: float, numeric: float, floor: float = 1e-3) -> float:
    """|a - n| / max(|a|, |n|, floor): relative for real gradients, absolute below the floor,
    where central differences in float64 carry ~1e-10 of rounding noise."""
    return abs(analytic - numeric) / max(abs(analytic), abs(numeric), floor)


def _sample(size: int, limit: int, rng) -> np.ndarray:
    if size <= limit:
        return np.arange(size)
    return np.sort(rng.choice(size, limit, replace=False))


def _check_tensor(name, tensor, analytic, f, *, limit, rng, eps) -> TensorCheck:
    flat = tensor.reshape(-1)
    grad = analytic.reshape(-1)
    worst_rel = worst_abs = 0.0
    checked = kinks = 0

    def central(idx, old, h):
        flat[idx] = old + h
        fp = f()
        flat[idx] = old - h
        fm = f()
        flat[idx] = old
        return (fp - fm) / (2 * h), max(abs(fp), abs(fm))

    for idx in _sample(flat.size, limit, rng):
        old = flat[idx]
        numeric, scale = central(idx, old, eps)
        # Smoothness test: on a smooth function central differences at h and h/2 agree to
        # O(h^2); a kink (relu at 0, a max switching) inside [x-h, x+h] makes them differ.
        # It looks at the function only, so a wrong analytic gradient can never hide behind it.
        half, _ = central(idx, old, eps / 2)
        if abs(numeric - half) > 1e-9 * max(1.0, scale) + 1e-7 * abs(numeric):
            kinks += 1
            continue
        checked += 1
        worst_rel = max(worst_rel, relative_error(float(grad[idx]), numeric))
        worst_abs = max(worst_abs, abs(float(grad[idx]) - numeric))
    return TensorCheck(name, tuple(tensor.shape), checked, kinks, worst_rel, worst_abs)


def check_layer(layer, x: np.ndarray, *, seed: int = 0, limit: int = 40,
                eps: float = 1e-5, train: bool = True) -> list[TensorCheck]:
    """Check dx and every parameter gradient of one float64 layer (params already initialised)."""
    rng = np.random.default_rng(seed)
    x = np.ascontiguousarray(x, dtype=np.float64)

    def run(inp):
        layer.reseed(seed)
        y, cache = layer.forward(inp, train=train)
        return y, cache

    y, cache = run(x)
    r = rng.standard_normal(y.shape)
    layer.zero_grads()
    dx = layer.backward(np.ascontiguousarray(r), cache)
    grads = {k: g.copy() for k, g in layer.grads.items()}

    def f():
        return float(np.sum(run(x)[0] * r))

    results = [_check_tensor("input", x, dx, f, limit=limit, rng=rng, eps=eps)]
    for key, p in layer.params.items():
        results.append(_check_tensor(key, p, grads[key], f, limit=limit, rng=rng, eps=eps))
    return results


def _output_loss(out: np.ndarray, y: np.ndarray | None, projection: np.ndarray | None):
    """-> (loss, d loss / d out): cross-entropy against labels y, else <out, projection>."""
    if y is None:
        return float(np.sum(out * projection)), projection
    loss, dout, _ = softmax_cross_entropy(out, y)
    return loss, dout


def check_network(net, x: np.ndarray, y: np.ndarray | None, *, seed: int = 0, limit: int = 20,
                  eps: float = 1e-5) -> list[TensorCheck]:
    """Check every parameter tensor and the input of a float64 network against its full loss:
    cross-entropy against the labels y, or with y None (any stack) the random projection."""
    rng = np.random.default_rng(seed)
    x = np.ascontiguousarray(x, dtype=np.float64)
    projection = None
    if y is None:
        projection = rng.standard_normal((len(x),) + tuple(net.output_shape))

    def loss():
        net.reseed(seed, 0)
        out, _, _, penalty = net.forward(x, train=True)
        return _output_loss(out, y, projection)[0] + penalty

    net.reseed(seed, 0)
    net.zero_grads()
    out, caches, sparse, _ = net.forward(x, train=True)
    _, dout = _output_loss(out, y, projection)
    dx = net.backward(dout, caches, sparse)
    grads = {key: layer.grads[pname].copy() for key, layer, pname, _ in net.parameters()}
    results = [_check_tensor("input", x, dx, loss, limit=limit, rng=rng, eps=eps)]
    for key, _, _, p in net.parameters():
        results.append(_check_tensor(key, p, grads[key], loss, limit=limit, rng=rng, eps=eps))
    return results


def run_config_gradcheck(cfg, input_shape, *, batch: int = 2, seed: int = 0, samples: int = 20):
    """Build the configured network (any stack) in float64 on random inputs and check all of it:
    against cross-entropy on random labels when it ends in class scores, else against a random
    projection of its output."""
    from ..nn.network import Network
    net = Network.build(cfg.model, input_shape, dtype=np.float64, seed=seed, source=cfg.source)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + tuple(input_shape))
    y = None
    if net.ends_in_class_scores:
        y = rng.integers(0, net.output_shape[0], size=batch)
    return check_network(net, x, y, seed=seed, limit=samples)
