"""EMITTERS: layer class -> the function that writes that layer's ONNX nodes (inference mode).

An emitter takes (graph builder, layer, name of its input) and returns the name of its output.
Each one reproduces convtrain's forward exactly, not the nearest ONNX operator:
- pools pad explicitly (-inf for max, 0 for avg and L2) and pool without ONNX padding, so a
  window hanging off the edge in ceil mode sees the same cells as convtrain's; average pooling
  then rescales every window to the mean of its in-image cells (convtrain never counts padding);
- `local` (unshared weights) is an im2col by a grouped convolution with one-hot kernels (exact
  copies of the pixels), then one matrix product per output position (a batched MatMul);
- LCN is the subgraph of nn/layers/lcn.py: channel sum, the Gaussian window as a convolution
  with zero padding, Torch7's border correction 1 / (C coef), the threshold (and the jarrett
  floor);
- batch norm uses the running statistics; dropout is the identity.
A layer class without an entry cannot be exported (see export/onnx_model.py).
"""
from __future__ import annotations

import numpy as np

from ..nn.layers.activation import Abs, LeakyReLU, ReLU, Sigmoid, Tanh
from ..nn.layers.batchnorm import BatchNorm
from ..nn.layers.conv import Conv2D
from ..nn.layers.dense import Dense, Flatten
from ..nn.layers.dropout import Dropout
from ..nn.layers.lcn import LCN, DivisiveNorm, SubtractiveNorm
from ..nn.layers.local import LocallyConnected
from ..nn.layers.pool import AvgPool, ChannelPool, L2Pool, MaxPool


def _ints(*values) -> list[int]:
    return [int(v) for v in values]


# --- convolution and locally-connected ----------------------------------------------------------

def conv(g, layer, x):
    geo = layer.geom
    inputs = [x, g.const(f"{layer.name}.weight", layer.params["weight"])]
    if layer.spec.bias:
        inputs.append(g.const(f"{layer.name}.bias", layer.params["bias"]))
    return g.node("Conv", inputs, layer.name, kernel_shape=_ints(geo.KH, geo.KW),
                  strides=_ints(geo.SH, geo.SW), pads=_ints(geo.pt, geo.pl, geo.pb, geo.pr))


def local(g, layer, x):
    """out[n, f, p] = sum_k patches[n, k, p] * weight[f, p, k] (+ bias[f, p]), p = oh * OW + ow,
    k = (c, kh, kw): patches by a one-hot grouped convolution (group c copies channel c's
    window), then a MatMul batched over the positions."""
    geo = layer.geom
    F = layer.spec.filters
    taps = geo.KH * geo.KW
    k_len, positions = geo.C * taps, geo.OH * geo.OW
    one_hot = np.tile(np.eye(taps, dtype=np.float32).reshape(taps, 1, geo.KH, geo.KW),
                      (geo.C, 1, 1, 1))                                   # (C*taps, 1, KH, KW)
    patches = g.node("Conv", [x, g.const(f"{layer.name}.im2col", one_hot)], f"{layer.name}.patches",
                     kernel_shape=_ints(geo.KH, geo.KW), strides=_ints(geo.SH, geo.SW),
                     pads=_ints(geo.pt, geo.pl, geo.pb, geo.pr), group=int(geo.C))
    cols = g.node("Reshape", [patches, g.const("shape", [0, k_len, positions], np.int64)],
                  f"{layer.name}.cols")
    by_position = g.node("Transpose", [cols], f"{layer.name}.by_position", perm=[2, 0, 1])
    w = layer.params["weight"].reshape(F, positions, k_len).transpose(1, 2, 0)   # (P, K, F)
    prod = g.node("MatMul", [by_position, g.const(f"{layer.name}.weight", w)],
                  f"{layer.name}.matmul")                                 # (P, N, F)
    out = g.node("Transpose", [prod], f"{layer.name}.nfp", perm=[1, 2, 0])
    out = g.node("Reshape", [out, g.const("shape", [0, F, geo.OH, geo.OW], np.int64)],
                 f"{layer.name}.out")
    if layer.spec.bias:
        out = g.node("Add", [out, g.const(f"{layer.name}.bias", layer.params["bias"])], layer.name)
    return out


# --- spatial pooling ----------------------------------------------------------------------------

def _padded(g, layer, x, value: float):
    """x padded so that plain, unpadded windows give convtrain's output size: the config's
    padding, plus (in ceil mode) the cells the last window hangs off the bottom/right edge."""
    geo = layer.geom
    _, H, W = layer.in_shape
    bottom = max(geo.pb, (geo.oh - 1) * geo.sh + geo.kh - H - geo.pt)
    right = max(geo.pr, (geo.ow - 1) * geo.sw + geo.kw - W - geo.pl)
    pads = [0, 0, geo.pt, geo.pl, 0, 0, bottom, right]
    if not any(pads):
        return x
    return g.node("Pad", [x, g.const("pads", pads, np.int64), g.const("pad_value", value)],
                  f"{layer.name}.pad", mode="constant")


def _window_attrs(layer) -> dict:
    geo = layer.geom
    return {"kernel_shape": _ints(geo.kh, geo.kw), "strides": _ints(geo.sh, geo.sw)}


def _in_image_cells(n: int, k: int, s: int, lo: int, out: int) -> np.ndarray:
    """Per output position along one axis: how many cells of its window lie inside the input."""
    starts = np.arange(out) * s - lo
    return np.minimum(starts + k, n) - np.maximum(starts, 0)


def _window_sum_scale(layer) -> np.ndarray:
    """(1, 1, OH, OW): AveragePool's mean over the whole window -> convtrain's mean over the
    in-image cells (kh*kw / cells); ones where the window lies inside the image."""
    geo = layer.geom
    _, H, W = layer.in_shape
    cells = np.outer(_in_image_cells(H, geo.kh, geo.sh, geo.pt, geo.oh),
                     _in_image_cells(W, geo.kw, geo.sw, geo.pl, geo.ow))
    return (geo.kh * geo.kw / cells).reshape(1, 1, geo.oh, geo.ow)


def max_pool(g, layer, x):
    return g.node("MaxPool", [_padded(g, layer, x, -np.inf)], layer.name, **_window_attrs(layer))


def avg_pool(g, layer, x):
    mean = g.node("AveragePool", [_padded(g, layer, x, 0.0)], f"{layer.name}.window_mean",
                  **_window_attrs(layer))
    scale = _window_sum_scale(layer)
    if np.all(scale == 1):
        return mean
    return g.node("Mul", [mean, g.const(f"{layer.name}.in_image_scale", scale)], layer.name)


def l2_pool(g, layer, x):
    """sqrt(eps + sum over the in-image cells of x^2); the padding adds zeros to the sum."""
    geo = layer.geom
    squares = g.node("Mul", [x, x], f"{layer.name}.squares")
    mean = g.node("AveragePool", [_padded(g, layer, squares, 0.0)], f"{layer.name}.window_mean",
                  **_window_attrs(layer))
    total = g.node("Mul", [mean, g.const("window_cells", float(geo.kh * geo.kw))],
                   f"{layer.name}.sum")
    total = g.node("Add", [total, g.const("eps", float(layer.spec.eps))], f"{layer.name}.plus_eps")
    return g.node("Sqrt", [total], layer.name)


def channel_pool(g, layer, x):
    """Groups of `size` adjacent channels (or vector units): (N, G, size, rest) reduced on axis 2."""
    size = layer.spec.size
    groups = layer.in_shape[0] // size
    grouped = g.node("Reshape", [x, g.const("shape", [0, groups, size, -1], np.int64)],
                     f"{layer.name}.groups")
    axes = g.const("axes", [2], np.int64)
    op = layer.spec.op
    if op == "max":
        pooled = g.node("ReduceMax", [grouped, axes], f"{layer.name}.max", keepdims=0)
    elif op == "avg":
        pooled = g.node("ReduceMean", [grouped, axes], f"{layer.name}.mean", keepdims=0)
    else:
        sq = g.node("ReduceSumSquare", [grouped, axes], f"{layer.name}.sumsq", keepdims=0)
        sq = g.node("Add", [sq, g.const("eps", float(layer.spec.eps))], f"{layer.name}.plus_eps")
        pooled = g.node("Sqrt", [sq], f"{layer.name}.l2")
    shape = [0] + [int(d) for d in layer.output_shape]
    return g.node("Reshape", [pooled, g.const("shape", shape, np.int64)], layer.name)


# --- local contrast normalisation ---------------------------------------------------------------

def local_norm(g, layer, x):
    """nn/layers/lcn.py's definition: M = A(sum_c x) / (C coef); y = x - M (subtractive);
    sigma = sqrt(A(sum_c y^2) / (C coef)); y / max(sigma, threshold[, mean sigma]) (divisive)."""
    k = layer.spec.size
    r = k // 2
    _, H, W = layer.in_shape
    window = np.outer(layer.g, layer.g).reshape(1, 1, k, k)
    w = g.const(f"{layer.name}.window", window)
    icoef = g.const(f"{layer.name}.icoef", layer.icoef.reshape(1, 1, H, W))
    channels = g.const("axes", [1], np.int64)
    conv_attrs = {"kernel_shape": [k, k], "pads": [r, r, r, r]}
    y = x
    if layer.subtract:
        s = g.node("ReduceSum", [x, channels], f"{layer.name}.channel_sum", keepdims=1)
        a = g.node("Conv", [s, w], f"{layer.name}.window_sum", **conv_attrs)
        mean = g.node("Mul", [a, icoef], f"{layer.name}.local_mean")
        y = g.node("Sub", [x, mean], f"{layer.name}.centred")
    if not layer.divide:
        return y
    q = g.node("ReduceSumSquare", [y, channels], f"{layer.name}.channel_sumsq", keepdims=1)
    v = g.node("Conv", [q, w], f"{layer.name}.window_sumsq", **conv_attrs)
    v = g.node("Mul", [v, icoef], f"{layer.name}.local_var")
    v = g.node("Relu", [v], f"{layer.name}.local_var_pos")     # rounding never goes below 0
    sigma = g.node("Sqrt", [v], f"{layer.name}.sigma")
    floor = g.const(f"{layer.name}.threshold", float(layer.spec.threshold))
    if layer.spec.mode == "jarrett":
        mean_sigma = g.node("ReduceMean", [sigma, g.const("axes", [2, 3], np.int64)],
                            f"{layer.name}.mean_sigma", keepdims=1)
        floor = g.node("Max", [mean_sigma, floor], f"{layer.name}.floor")
    den = g.node("Max", [sigma, floor], f"{layer.name}.divisor")
    return g.node("Div", [y, den], layer.name)


# --- the rest -----------------------------------------------------------------------------------

def batch_norm(g, layer, x):
    p, b = layer.params, layer.buffers
    inputs = [x] + [g.const(f"{layer.name}.{key}", value) for key, value in (
        ("weight", p["weight"]), ("bias", p["bias"]),
        ("running_mean", b["running_mean"]), ("running_var", b["running_var"]))]
    return g.node("BatchNormalization", inputs, layer.name, epsilon=float(layer.spec.eps))


def dense(g, layer, x):
    if len(layer.in_shape) > 1:
        x = g.node("Flatten", [x], f"{layer.name}.flatten", axis=1)
    inputs = [x, g.const(f"{layer.name}.weight", layer.params["weight"])]
    if layer.spec.bias:
        inputs.append(g.const(f"{layer.name}.bias", layer.params["bias"]))
    return g.node("Gemm", inputs, layer.name, transB=1)


def flatten(g, layer, x):
    return g.node("Flatten", [x], layer.name, axis=1)


def dropout(g, layer, x):
    return g.node("Identity", [x], layer.name)


def _elementwise(op: str, **attrs):
    def emit(g, layer, x):
        return g.node(op, [x], layer.name, **attrs)
    emit.__name__ = op.lower()
    return emit


def leaky_relu(g, layer, x):
    return g.node("LeakyRelu", [x], layer.name, alpha=float(layer.spec.slope))


EMITTERS = {
    Conv2D: conv, LocallyConnected: local, Dense: dense, Flatten: flatten,
    MaxPool: max_pool, AvgPool: avg_pool, L2Pool: l2_pool, ChannelPool: channel_pool,
    LCN: local_norm, SubtractiveNorm: local_norm, DivisiveNorm: local_norm,
    ReLU: _elementwise("Relu"), LeakyReLU: leaky_relu, Tanh: _elementwise("Tanh"),
    Sigmoid: _elementwise("Sigmoid"), Abs: _elementwise("Abs"),
    Dropout: dropout, BatchNorm: batch_norm,
}
