"""`conv`: 2-D convolution whose filters span the full input depth.

    - conv: {filters: 32, size: 5, stride: 1, pad: same, bias: true}
    - conv: 32                     # short form: filters

Input (C, H, W) -> output (F, OH, OW); weight (F, C, KH, KW), bias (F,).
Output sizes are strict, like pooling: a stride that does not tile the padded input exactly is
a ShapeError that says which stride or extra padding would fit (no pixel is dropped silently).
'same' pads (k-1)//2 before and k//2 after (the extra pixel at the bottom/right); with stride > 1
the strict check then applies to that padding.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np

from ...errors import ShapeError
from ..kernels import conv as K
from ..kernels import winograd
from ..kernels.winograd import winograd_backward, winograd_weight_gradient
from ...config.spec import option, padding, pair
from .base import Layer, _fit_hint, conv_out_size, resolve_padding


@dataclass(frozen=True)
class ConvSpec:
    """Options shared by `conv` and `local` (locally-connected) layers."""
    filters: int = option(min=1, doc="number of filters (output channels)")
    size: tuple[int, int] = option((3, 3), convert=pair(1, "size"),
                                   doc="window size: k or [kh, kw]")
    stride: tuple[int, int] = option((1, 1), convert=pair(1, "stride"),
                                     doc="step between windows: s or [sh, sw]")
    pad: tuple | str = option((0, 0, 0, 0), convert=padding,
                              doc="zero padding: same | valid | p | [ph, pw] | [top, bottom, left, right]")
    bias: bool = option(True, doc="learn a bias (conv: one per filter; local: one per output pixel)")

    def __post_init__(self):
        # build_spec has already converted; this normalises specs built directly in Python.
        f = self.filters
        if isinstance(f, bool) or not isinstance(f, int) or f < 1:
            raise ValueError(f"filters: must be an integer >= 1, got {f!r}")
        for key, convert in (("size", pair(1, "size")), ("stride", pair(1, "stride")),
                             ("pad", padding)):
            try:
                value = convert(getattr(self, key))
            except ValueError as e:
                raise ValueError(f"{key}: {e}") from None
            object.__setattr__(self, key, value)


class Geometry(NamedTuple):
    C: int
    H: int
    W: int
    KH: int
    KW: int
    SH: int
    SW: int
    pt: int      # padding top, bottom, left, right
    pb: int
    pl: int
    pr: int
    OH: int
    OW: int

    @property
    def Hp(self) -> int:
        return self.H + self.pt + self.pb

    @property
    def Wp(self) -> int:
        return self.W + self.pl + self.pr


def _out_len(n: int, k: int, s: int, lo: int, hi: int, what: str, unit: str) -> int:
    span = n + lo + hi - k
    if span >= 0 and span % s:
        left = span % s
        raise ShapeError(
            f"{what}: size {k} stride {s} does not fit an input of {n} with padding {lo}+{hi} "
            f"(needs (input + padding - size) % stride == 0; the last {left} {unit}"
            f"{'s' if left > 1 else ''} would be ignored); {_fit_hint(n, k, s, lo + hi)}")
    return conv_out_size(n, k, s, lo, hi, what=what)


def conv_geometry(spec: ConvSpec, in_shape: tuple, name: str, kind: str) -> Geometry:
    """Check that the window fits `in_shape` (C, H, W) and compute every size."""
    if len(in_shape) != 3:
        what = f"a vector of {in_shape[0]} values" if len(in_shape) == 1 else f"shape {tuple(in_shape)}"
        raise ShapeError(
            f"{name}: {kind} needs an image input (C, H, W), got {what}; put {kind} layers "
            f"before flatten/dense, or give the data (or `input:`) as [C, H, W]")
    C, H, W = (int(d) for d in in_shape)
    KH, KW = spec.size
    SH, SW = spec.stride
    pt, pb, pl, pr = resolve_padding(spec.pad, KH, KW)
    OH = _out_len(H, KH, SH, pt, pb, f"{name}: height", "row")
    OW = _out_len(W, KW, SW, pl, pr, f"{name}: width", "column")
    return Geometry(C, H, W, KH, KW, SH, SW, pt, pb, pl, pr, OH, OW)


def describe_window(spec: ConvSpec, g: Geometry) -> str:
    """'32@5x5 s1 p2' (filters@KHxKW, stride, padding)."""
    s = f"s{g.SH}" if g.SH == g.SW else f"s{g.SH}x{g.SW}"
    if g.pt == g.pb == g.pl == g.pr:
        p = f"p{g.pt}"
    elif g.pt == g.pb and g.pl == g.pr:
        p = f"p{g.pt}x{g.pl}"
    else:
        p = f"p[{g.pt},{g.pb},{g.pl},{g.pr}]"
    return f"{spec.filters}@{g.KH}x{g.KW} {s} {p}"


def pad_input(x: np.ndarray, g: Geometry, extra_rows: int = 0) -> np.ndarray:
    """Zero-padded copy (N, C, Hp + extra_rows, Wp) of x (N, C, H, W)."""
    N = x.shape[0]
    xp = np.empty((N, g.C, g.Hp + extra_rows, g.Wp), dtype=x.dtype)
    K.pad_into(x, x, False, xp, g.pt, g.pl)
    return xp


def crop_input(xp: np.ndarray, g: Geometry) -> np.ndarray:
    """The (N, C, H, W) interior of a padded (N, C, Hp, Wp) array, as a new C-contiguous array."""
    x = np.empty((xp.shape[0], g.C, g.H, g.W), dtype=xp.dtype)
    K.crop_into(xp, x, g.pt, g.pl)
    return x


def slack_rows(width: int) -> int:
    """Zero rows to add below a padded image so the stride-1 kernels may round their range up."""
    return -(-K.ROUND // width)


def phases(g: Geometry) -> tuple[int, int, int, int]:
    """(pa, pb, KHq, KWq): the stride phases a window touches and the split filter size, for
    running a strided convolution as a stride-1 one (see kernels/conv.py, pad_phases)."""
    return min(g.SH, g.KH), min(g.SW, g.KW), -(-g.KH // g.SH), -(-g.KW // g.SW)


def split_weight(w: np.ndarray, g: Geometry) -> np.ndarray:
    """w (..., C, KH, KW) -> (..., C*pa*pb, KHq, KWq): filter tap (i*sh + a, j*sw + b) of
    channel c goes to phase channel (c*pa + a)*pb + b at (i, j); zeros past the window."""
    pa, pb, khq, kwq = phases(g)
    lead = w.shape[:-3]
    m = len(lead)
    full = np.zeros(lead + (g.C, khq * g.SH, kwq * g.SW), dtype=w.dtype)
    full[..., :g.KH, :g.KW] = w
    full = full.reshape(lead + (g.C, khq, g.SH, kwq, g.SW))
    full = full.transpose(tuple(range(m)) + (m, m + 2, m + 4, m + 1, m + 3))
    return np.ascontiguousarray(full[..., :pa, :pb, :, :].reshape(lead + (g.C * pa * pb, khq, kwq)))


def merge_weight(wq: np.ndarray, g: Geometry) -> np.ndarray:
    """The inverse of split_weight (for weight gradients): (..., C*pa*pb, KHq, KWq) -> (..., C, KH, KW)."""
    pa, pb, khq, kwq = phases(g)
    lead = wq.shape[:-3]
    m = len(lead)
    full = np.zeros(lead + (g.C, g.SH, g.SW, khq, kwq), dtype=wq.dtype)
    full[..., :pa, :pb, :, :] = wq.reshape(lead + (g.C, pa, pb, khq, kwq))
    full = full.transpose(tuple(range(m)) + (m, m + 3, m + 1, m + 4, m + 2))
    return full.reshape(lead + (g.C, khq * g.SH, kwq * g.SW))[..., :g.KH, :g.KW]


def split_input(x: np.ndarray, g: Geometry) -> np.ndarray:
    """x (N, C, H, W) -> its padded stride phases (N, C*pa*pb, Hq + slack rows, Wq)."""
    pa, pb, khq, kwq = phases(g)
    hq, wq = g.OH + khq - 1, g.OW + kwq - 1
    xq = np.zeros((x.shape[0], g.C * pa * pb, hq + slack_rows(wq), wq), dtype=x.dtype)
    K.pad_phases(x, xq, g.pt, g.pl, g.SH, g.SW, pa, pb)
    return xq


def merge_input_grad(dxq: np.ndarray, g: Geometry) -> np.ndarray:
    """The gradient of split_input: dxq (N, C*pa*pb, Hq, Wq) -> dx (N, C, H, W)."""
    pa, pb, _, _ = phases(g)
    dx = np.empty((dxq.shape[0], g.C, g.H, g.W), dtype=dxq.dtype)
    K.merge_phases(dxq, dx, g.pt, g.pl, g.SH, g.SW, pa, pb)
    return dx


class WindowCache(NamedTuple):
    xp: np.ndarray   # the zero-padded input (N, C, Hp + slack rows, Wp); for stride > 1 split
                     # into its stride phases (N, C*pa*pb, Hq + slack rows, Wq), see forward
    relu_out: np.ndarray | None = None   # the output, when forward applied a fused ReLU


class WindowLayer(Layer):
    """What `conv` and `local` share: the window geometry (size, stride, padding and the strict
    output-size rule), the output shape, fans, flop count, description, shape checks and the
    forward pass (padding or stride-phase splitting around the subclass's `forward_kernel`)."""
    short = "filters"
    fuses_relu = True
    slow_to_compile = True
    forward_kernel: staticmethod   # (xp, weight, bias, out, relu), stride 1

    def __init__(self, spec, in_shape, *, dtype=np.float32, name: str = ""):
        super().__init__(spec, in_shape, dtype=dtype, name=name)
        self.geom = conv_geometry(spec, self.in_shape, self.name, self.type)

    def out_shape(self, in_shape):
        g = conv_geometry(self.spec, in_shape, self.name, self.type)
        return (self.spec.filters, g.OH, g.OW)

    def fans(self):
        g = self.geom
        return (g.C * g.KH * g.KW, self.spec.filters * g.KH * g.KW)

    def flops(self, in_shape):
        """2 * F*OH*OW*C*KH*KW: one multiply-add per weight tap and output; the bias add is not
        counted (it is F*OH*OW adds, < 1/(C*KH*KW) of the total)."""
        g = conv_geometry(self.spec, tuple(in_shape), self.name, self.type)
        return 2 * self.spec.filters * g.OH * g.OW * g.C * g.KH * g.KW

    def describe(self):
        return describe_window(self.spec, self.geom)

    def weight_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def bias_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def param_shapes(self):
        shapes = {"weight": self.weight_shape()}
        if self.spec.bias:
            shapes["bias"] = self.bias_shape()
        return shapes

    def _bias(self) -> np.ndarray:
        """The bias the kernels add: zeros for a layer without one."""
        if self.spec.bias:
            return self.params["bias"]
        return np.zeros(self.bias_shape(), dtype=self.dtype)

    def _bias_grad(self) -> np.ndarray:
        """Where backward adds the bias gradient: a scratch array for a layer without a bias."""
        if self.spec.bias:
            return self.grads["bias"]
        return np.zeros(self.bias_shape(), dtype=self.dtype)

    def forward(self, x, *, train, relu=False):
        """`relu`: return max(out, 0) instead (the network fuses a following ReLU layer: one
        pass less over the activations each way). backward() then takes the gradient with
        respect to that rectified output and applies the ReLU's mask itself, in its own passes
        over dout (the network skips the ReLU layer's backward)."""
        x = np.ascontiguousarray(x, dtype=self.dtype)
        self._check_input(x)
        g = self.geom
        out = np.empty((x.shape[0], self.spec.filters, g.OH, g.OW), dtype=self.dtype)
        w = self.params["weight"]
        if g.SH == 1 and g.SW == 1:
            xp = pad_input(x, g, slack_rows(g.Wp))
        else:   # as a stride-1 layer over the input's stride phases (see kernels/conv.py)
            xp = split_input(x, g)
            w = split_weight(w, g)
        self.forward_kernel(xp, w, self._bias(), out, relu)
        return out, WindowCache(xp, out if relu else None)

    def _check_input(self, x):
        if x.ndim != 4 or tuple(x.shape[1:]) != self.in_shape:
            want = ", ".join(map(str, self.in_shape))
            raise ShapeError(f"{self.name}: expected a batch of shape (N, {want}), "
                             f"got {tuple(x.shape)}")

    def _checked_dout(self, dout, cache: WindowCache) -> np.ndarray:
        """dout, C-contiguous in the layer's dtype, checked against the forward batch's output."""
        dout = np.ascontiguousarray(dout, dtype=self.dtype)
        g = self.geom
        want = (cache.xp.shape[0], self.spec.filters, g.OH, g.OW)
        if dout.shape != want:
            raise ShapeError(f"{self.name}: expected a gradient of shape {want}, got {dout.shape}")
        return dout


def convolve(xp, w, b, out, relu) -> None:
    """out = the stride-1 convolution of the padded input xp with w, plus b (and a fused ReLU),
    by the faster algorithm for the shape: Winograd F(2x2, 5x5) where its cost model says so
    (kernels/winograd.py), else the direct register kernels (kernels/conv.py)."""
    F, C, KH, KW = w.shape
    if winograd.use_forward(C, F, KH, KW, out.shape[2], out.shape[3]):
        winograd.winograd_forward(xp, winograd.transform_weights(w), b, out, relu, KH,
                                  numba.get_num_threads())
    else:
        K.conv_forward(xp, w, b, out, relu)


class Conv2D(WindowLayer):
    """Convolution: out[n, f] = bias[f] + sum_c correlate(x[n, c], weight[f, c]) (strided, padded)."""
    type = "conv"
    Spec = ConvSpec
    forward_kernel = staticmethod(convolve)

    def weight_shape(self):
        g = self.geom
        return (self.spec.filters, g.C, g.KH, g.KW)

    def bias_shape(self):
        return (self.spec.filters,)

    def filter_bank(self):
        return self.params["weight"]

    # --- computation --------------------------------------------------------------------------
    def backward(self, dout, cache, *, need_dx=True):
        g = self.geom
        dout = self._checked_dout(dout, cache)
        N, F = dout.shape[:2]
        w = self.params["weight"]
        dw = self.grads["weight"]
        db = self._bias_grad()
        mask = cache.relu_out
        if g.SH == 1 and g.SW == 1 and winograd.use_backward(g.C, F, g.KH, g.KW, g.OH, g.OW):
            # both gradients in one pass that shares dout's transform (kernels/winograd.py)
            dx = np.empty((N, g.C, g.H, g.W), dtype=self.dtype) if need_dx else None
            winograd_backward(cache.xp, dout, mask if mask is not None else dout,
                              mask is not None, w, dw, db, dx, g.pt, g.pl,
                              numba.get_num_threads())
            return dx
        if g.SH == 1 and g.SW == 1:
            weight_gradient(cache.xp, dout, mask, dw, db)
            if not need_dx:
                return None
            return data_gradient(dout, mask, w, g.H, g.W, (g.pt, g.pb, g.pl, g.pr))
        _, _, khq, kwq = phases(g)
        wq = split_weight(w, g)
        dwq = np.zeros_like(wq)
        weight_gradient(cache.xp, dout, mask, dwq, db)
        dw += merge_weight(dwq, g)
        if not need_dx:
            return None
        dxq = data_gradient(dout, mask, wq, g.OH + khq - 1, g.OW + kwq - 1, (0, 0, 0, 0))
        return merge_input_grad(dxq, g)


def weight_gradient(xp, dout, relu_out, dw, db) -> None:
    """dw += and db += of a stride-1 convolution (through a fused ReLU with output `relu_out`
    unless that is None), by the kernel that suits the shape (benchmarks/conv_kernels.py
    compares them): Winograd where use_backward says so (here only for the stride phases of
    strided layers: stride-1 layers take winograd_backward, both gradients at once); else the
    channels-last micro-kernel wherever it has enough channels and filters to fill its register
    tile (with few channels its tile is mostly zero lanes); else the direct kernel."""
    threads = numba.get_num_threads()
    C, F = xp.shape[1], dout.shape[1]
    relu = relu_out is not None
    mask = relu_out if relu else dout
    if winograd.use_backward(C, F, *dw.shape[2:], *dout.shape[2:]):
        winograd_weight_gradient(xp, dout, mask, relu, dw, db, threads)
    elif C >= K.CHANNELS_LAST_MIN and F >= 2 * K.FB:
        K.conv_backward_weight_channels_last(xp, dout, mask, relu, dw, db, threads)
    else:
        K.conv_backward_weight(xp, dout, mask, relu, dw, db, threads)


def data_gradient(dout, relu_out, w, H, W, pad):
    """dx (N, C, H, W) of a stride-1 convolution of an (H, W) input padded by `pad`
    (top, bottom, left, right) with filters w (F, C, KH, KW), given dout (N, F, OH, OW)
    (through a fused ReLU with output `relu_out` unless that is None).

    It is the 'full' correlation of dout with the flipped, transposed filters: dout padded by
    K-1-pad on each side (cropped where the padding exceeded K-1) through the forward kernel.
    """
    N, F, OH, OW = dout.shape
    _, C, KH, KW = w.shape
    q = [KH - 1 - pad[0], KH - 1 - pad[1], KW - 1 - pad[2], KW - 1 - pad[3]]
    relu = relu_out is not None
    mask = relu_out if relu else dout
    if min(q) < 0:
        rows = slice(max(0, -q[0]), OH - max(0, -q[1]))
        cols = slice(max(0, -q[2]), OW - max(0, -q[3]))
        dout = np.ascontiguousarray(dout[:, :, rows, cols])
        mask = np.ascontiguousarray(mask[:, :, rows, cols]) if relu else dout
        q = [max(0, v) for v in q]
    Hd, Wd = H + KH - 1, W + KW - 1
    dp = np.empty((N, F, Hd + slack_rows(Wd), Wd), dtype=dout.dtype)
    K.pad_into(dout, mask, relu, dp, q[0], q[2])
    wflip = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    dx = np.empty((N, C, H, W), dtype=dout.dtype)
    convolve(dp, wflip, np.zeros(C, dtype=dout.dtype), dx, False)
    return dx
