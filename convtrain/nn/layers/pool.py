"""Pooling layers: max / average / L2 pooling over space, and pooling across channel groups.

Spatial pools (`max_pool`, `avg_pool`, `l2_pool`) share one spec:

    size:   window, an int or [h, w] (required; the short form `- max_pool: 2` fills it)
    stride: an int or [h, w]; null (the default) means equal to size
    pad:    0 (default), an int, [ph, pw], [top, bottom, left, right], 'valid' or 'same'.
            'same' follows TensorFlow: output = ceil(input / stride), the padding split evenly
            with the odd pixel at the bottom/right. Each side's padding must be smaller than the
            window, so every window holds at least one input pixel.
    ceil / floor: a window that does not tile the (padded) input is an error unless one of these
            is set: ceil adds one more window that hangs off the bottom/right edge (dropped when
            it would start past the input, as PyTorch does), floor drops the pixels left over.

Padded cells (and, in ceil mode, the cells a window hangs off the edge) are NOT counted:
max pooling ignores them (as if -inf), average pooling divides by the number of in-image cells of
each window (PyTorch's count_include_pad=False), L2 pooling sums the squares of in-image cells:
y = sqrt(eps + sum x^2), eps = 1e-6 by default (keeps the gradient x / y finite at zero).

Max pooling keeps the flat index (ih * W + iw) of each window's maximum in its cache (int32; ties
go to the first maximum in row-major order); backward sends each gradient to that pixel.

`channel_pool` pools across groups of `size` adjacent feature maps (or vector units):
(C, H, W) -> (C / size, H, W), with op max (maxout, the default), avg or l2.

flops: one op per input element read (a pixel read by two overlapping windows counts twice).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from ...errors import ShapeError
from ..kernels import pool as K
from ...config.spec import option, pair, padding
from .base import Layer, conv_out_size


def _optional_pair(v):
    return None if v is None else pair(1, "stride")(v)


@dataclass(frozen=True)
class PoolSpec:
    size: tuple = option(convert=pair(1, "size"), doc="window: an int or [h, w]")
    stride: tuple | None = option(None, convert=_optional_pair,
                                  doc="an int or [h, w]; null means equal to size")
    pad: tuple | str = option((0, 0, 0, 0), convert=padding,
                              doc="int, [ph, pw], [t, b, l, r], valid or same (TensorFlow's rule)")
    ceil: bool = option(False, doc="add a last window hanging off the edge when windows don't tile")
    floor: bool = option(False, doc="drop the pixels left over when windows don't tile")

    def __post_init__(self):
        # Accept raw values too (Spec(size=2) in code), not only what build_spec converted.
        for key, convert in (("size", pair(1, "size")), ("stride", _optional_pair),
                             ("pad", padding)):
            try:
                object.__setattr__(self, key, convert(getattr(self, key)))
            except ValueError as e:
                raise ValueError(f"{key}: {e}") from None
        if self.ceil and self.floor:
            raise ValueError("floor: ceil and floor cannot both be true")
        if isinstance(self.pad, tuple):
            kh, kw = self.size
            t, b, l, r = self.pad
            if max(t, b) >= kh or max(l, r) >= kw:
                raise ValueError(f"pad: padding {list(self.pad)} must be smaller than the window "
                                 f"{kh}x{kw} on every side (a window would hold only padding)")


@dataclass(frozen=True)
class L2PoolSpec(PoolSpec):
    eps: float = option(1e-6, min=0.0, min_exclusive=True,
                        doc="added under the square root: y = sqrt(eps + sum x^2)")


class Geometry(NamedTuple):
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int
    pb: int
    pl: int
    pr: int
    oh: int
    ow: int


def _same_pad(n: int, k: int, s: int) -> tuple[int, int]:
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _out_len(n, k, s, lo, hi, *, what, ceil, floor) -> int:
    out = conv_out_size(n, k, s, lo, hi, what=what, ceil=ceil, floor=floor)
    if ceil and (out - 1) * s >= n + lo:   # the extra window would start past the input
        out -= 1
    return out


def _fit_hint(H, W, kh, kw, sh, sw, pads) -> str:
    """Ways to make the windows tile: a smaller stride, a padding, 'same', ceil or floor."""
    pt, pb, pl, pr = pads

    def axis_pad(n, k, s):
        for p in range(k):                       # symmetric first, then one extra at the end
            if (n + 2 * p - k) % s == 0:
                return (p, p)
            if p + 1 < k and (n + 2 * p + 1 - k) % s == 0:
                return (p, p + 1)
        return None

    hints = []
    for s in range(max(sh, sw) - 1, 0, -1):
        if (H + pt + pb - kh) % min(s, sh) == 0 and (W + pl + pr - kw) % min(s, sw) == 0:
            hints.append(f"stride {s}")
            break
    ph, pw = axis_pad(H, kh, sh), axis_pad(W, kw, sw)
    if ph and pw:
        if ph[0] == ph[1] and pw[0] == pw[1]:
            hints.append(f"pad {ph[0]}" if ph == pw else f"pad [{ph[0]}, {pw[0]}]")
        else:
            hints.append(f"pad [{ph[0]}, {ph[1]}, {pw[0]}, {pw[1]}]")
    hints.append("pad: same")
    return "try " + ", ".join(hints) + ", or ceil: true (a last window hanging off the edge) " \
        "/ floor: true (drop the leftover pixels)"


def _in_image_counts(n: int, k: int, s: int, lo: int, out: int) -> int:
    """Sum over the output positions of the number of in-image cells of each window (1-D)."""
    total = 0
    for o in range(out):
        a = o * s - lo
        total += min(a + k, n) - max(a, 0)
    return total


class _Pool2D(Layer):
    short: ClassVar[str] = "size"
    Spec: ClassVar[type] = PoolSpec

    def __init__(self, spec, in_shape, *, dtype=np.float32, name: str = ""):
        super().__init__(spec, in_shape, dtype=dtype, name=name)
        self.geom = self.geometry(self.in_shape)

    def geometry(self, in_shape) -> Geometry:
        if len(in_shape) != 3:
            raise ShapeError(f"{self.type} needs an image input (C, H, W), got "
                             f"{tuple(in_shape)}")
        _, H, W = (int(d) for d in in_shape)
        spec = self.spec
        kh, kw = spec.size
        sh, sw = spec.stride or spec.size
        if spec.pad == "same":
            pt, pb = _same_pad(H, kh, sh)
            pl, pr = _same_pad(W, kw, sw)
        elif spec.pad == "valid":
            pt = pb = pl = pr = 0
        else:
            pt, pb, pl, pr = spec.pad
        stride = f"{sh}" if sh == sw else f"{sh}x{sw}"
        what = f"{self.type} {kh}x{kw} stride {stride}"
        if H + pt + pb < kh or W + pl + pr < kw:
            raise ShapeError(f"{what}: the window is larger than the {H}x{W} input "
                             f"(padded: {H + pt + pb}x{W + pl + pr}); use a smaller size or pad")
        if not (spec.ceil or spec.floor) and ((H + pt + pb - kh) % sh or (W + pl + pr - kw) % sw):
            pads = "0" if not any((pt, pb, pl, pr)) else str([pt, pb, pl, pr])
            raise ShapeError(
                f"{what} does not fit a {H}x{W} input with pad {pads} (needs "
                f"(H + pad - size) % stride == 0 on both axes); "
                f"{_fit_hint(H, W, kh, kw, sh, sw, (pt, pb, pl, pr))}")
        oh = _out_len(H, kh, sh, pt, pb, what=what, ceil=spec.ceil, floor=spec.floor)
        ow = _out_len(W, kw, sw, pl, pr, what=what, ceil=spec.ceil, floor=spec.floor)
        return Geometry(int(kh), int(kw), int(sh), int(sw), int(pt), int(pb), int(pl), int(pr),
                        int(oh), int(ow))

    def out_shape(self, in_shape):
        g = self.geometry(in_shape)
        return (int(in_shape[0]), g.oh, g.ow)

    def flops(self, in_shape) -> int:
        """One op per input element read (in-image cells of every window, per channel)."""
        g = self.geometry(in_shape)
        C, H, W = in_shape
        return int(C) * (_in_image_counts(H, g.kh, g.sh, g.pt, g.oh)
                         * _in_image_counts(W, g.kw, g.sw, g.pl, g.ow))

    def describe(self) -> str:
        g = self.geom
        text = f"{g.kh}x{g.kw} s{g.sh}" if g.sh == g.sw else f"{g.kh}x{g.kw} s{g.sh}x{g.sw}"
        pads = (g.pt, g.pb, g.pl, g.pr)
        if self.spec.pad == "same":
            text += " same"
        elif any(pads):
            text += f" p{g.pt}" if len(set(pads)) == 1 else f" p{list(pads)}"
        if self.spec.ceil:
            text += " ceil"
        if self.spec.floor:
            text += " floor"
        return text

    def _planes(self, x):
        """-> (x, its (N*C, H, W) planes, an empty output y, its (N*C, OH, OW) planes), x made
        C-contiguous in the layer's dtype: the kernels pool one plane at a time."""
        x = np.ascontiguousarray(x, dtype=self.dtype)
        N, C, H, W = x.shape
        g = self.geom
        y = np.empty((N, C, g.oh, g.ow), dtype=self.dtype)
        return x, x.reshape(N * C, H, W), y, y.reshape(N * C, g.oh, g.ow)

    def _grad_planes(self, dout, x_shape):
        """-> (dout's (N*C, OH, OW) planes, an empty dx (x_shape), its (N*C, H, W) planes)."""
        N, C, H, W = x_shape
        g = self.geom
        dy3 = np.ascontiguousarray(dout, dtype=self.dtype).reshape(N * C, g.oh, g.ow)
        dx = np.empty(x_shape, dtype=self.dtype)
        return dy3, dx, dx.reshape(N * C, H, W)

    def _fast(self) -> bool:
        """2x2 windows, stride 2, no padding, every window inside the image: the fast kernels."""
        g = self.geom
        _, H, W = self.in_shape
        return ((g.kh, g.kw, g.sh, g.sw) == (2, 2, 2, 2) and (g.pt, g.pl) == (0, 0)
                and 2 * g.oh <= H and 2 * g.ow <= W)

    def _window_args(self):
        g = self.geom
        return g.kh, g.kw, g.sh, g.sw, g.pt, g.pl


class MaxPoolCache(NamedTuple):
    arg: np.ndarray        # (N, C, OH, OW) int32: flat index ih * W + iw of each window's max
    x_shape: tuple


class AvgPoolCache(NamedTuple):
    x_shape: tuple


class L2PoolCache(NamedTuple):
    x: np.ndarray
    y: np.ndarray


class MaxPool(_Pool2D):
    """Max over each window; padded cells are ignored. Fast path: 2x2 stride 2, no padding."""
    type = "max_pool"

    def forward(self, x, *, train: bool):
        x, x3, y, y3 = self._planes(x)
        arg = np.empty(y.shape, dtype=np.int32)
        a3 = arg.reshape(y3.shape)
        if self._fast():
            K.max_pool_2x2_fwd(x3, y3, a3)
        else:
            K.max_pool_fwd(x3, y3, a3, *self._window_args())
        return y, MaxPoolCache(arg, x.shape)

    def backward(self, dout, cache: MaxPoolCache, *, need_dx=True):
        dy3, dx, dx3 = self._grad_planes(dout, cache.x_shape)
        a3 = cache.arg.reshape(dy3.shape)
        if self._fast():
            K.max_pool_2x2_bwd(dy3, a3, dx3)
        else:
            K.max_pool_bwd(dy3, a3, dx3.reshape(dx3.shape[0], -1))
        return dx


class AvgPool(_Pool2D):
    """Mean over the in-image cells of each window (padding is not counted).
    Fast path: 2x2 stride 2, no padding."""
    type = "avg_pool"

    def forward(self, x, *, train: bool):
        x, x3, y, y3 = self._planes(x)
        if self._fast():
            K.avg_pool_2x2_fwd(x3, y3)
        else:
            K.avg_pool_fwd(x3, y3, *self._window_args())
        return y, AvgPoolCache(x.shape)

    def backward(self, dout, cache: AvgPoolCache, *, need_dx=True):
        dy3, dx, dx3 = self._grad_planes(dout, cache.x_shape)
        if self._fast():
            K.avg_pool_2x2_bwd(dy3, dx3)
        else:
            K.avg_pool_bwd(dy3, dx3, *self._window_args())
        return dx


class L2Pool(_Pool2D):
    """sqrt(eps + sum of squares) over the in-image cells of each window."""
    type = "l2_pool"
    Spec = L2PoolSpec

    def forward(self, x, *, train: bool):
        x, x3, y, y3 = self._planes(x)
        K.l2_pool_fwd(x3, y3, *self._window_args(), float(self.spec.eps))
        return y, L2PoolCache(x, y)

    def backward(self, dout, cache: L2PoolCache, *, need_dx=True):
        dy3, dx, dx3 = self._grad_planes(dout, cache.x.shape)
        K.l2_pool_bwd(cache.x.reshape(dx3.shape), cache.y.reshape(dy3.shape), dy3, dx3,
                      *self._window_args())
        return dx


# --- pooling across channels -------------------------------------------------------------------

@dataclass(frozen=True)
class ChannelPoolSpec:
    size: int = option(min=1, doc="number of adjacent feature maps pooled together")
    op: str = option("max", choices=("max", "avg", "l2"), doc="max (maxout), avg or l2")
    eps: float = option(1e-6, min=0.0, min_exclusive=True,
                        doc="op l2 only: y = sqrt(eps + sum x^2)")


class ChannelPoolCache(NamedTuple):
    x: np.ndarray          # the input (needed by l2)
    y: np.ndarray | None   # the output (l2)
    arg: np.ndarray | None  # (N, G, HW) int32: index in its group of each max (max)


class ChannelPool(Layer):
    """Pool across groups of `size` adjacent channels: (C, H, W) -> (C / size, H, W);
    a vector (D,) -> (D / size,). op max is maxout (Goodfellow et al. 2013)."""
    type = "channel_pool"
    short = "size"
    Spec = ChannelPoolSpec

    def out_shape(self, in_shape):
        C = int(in_shape[0])
        s = self.spec.size
        if C % s:
            divisors = ", ".join(str(d) for d in range(1, C + 1) if C % d == 0)
            raise ShapeError(f"channel_pool size {s} does not divide the {C} input channels; "
                             f"sizes that divide {C}: {divisors}")
        return (C // s,) + tuple(int(d) for d in in_shape[1:])

    def flops(self, in_shape) -> int:
        """One op per input element read."""
        return int(math.prod(in_shape))

    def describe(self) -> str:
        return f"{self.spec.op} over {self.spec.size}"

    def _view(self, a, N):
        C = self.in_shape[0]
        s = self.spec.size
        hw = int(math.prod(self.in_shape[1:]))
        return a.reshape(N, C // s, s, hw)

    def forward(self, x, *, train: bool):
        x = np.ascontiguousarray(x, dtype=self.dtype)
        N = x.shape[0]
        x4 = self._view(x, N)
        G, hw = x4.shape[1], x4.shape[3]
        y = np.empty((N,) + self.output_shape, dtype=self.dtype)
        y3 = y.reshape(N, G, hw)
        op = self.spec.op
        if op == "max":
            arg = np.empty((N, G, hw), dtype=np.int32)
            K.channel_max_fwd(x4, y3, arg)
            return y, ChannelPoolCache(x, None, arg)
        if op == "avg":
            K.channel_avg_fwd(x4, y3)
            return y, ChannelPoolCache(x, None, None)
        K.channel_l2_fwd(x4, y3, float(self.spec.eps))
        return y, ChannelPoolCache(x, y, None)

    def backward(self, dout, cache: ChannelPoolCache, *, need_dx=True):
        x = cache.x
        N = x.shape[0]
        x4 = self._view(x, N)
        G, hw = x4.shape[1], x4.shape[3]
        dy3 = np.ascontiguousarray(dout, dtype=self.dtype).reshape(N, G, hw)
        dx = np.empty(x.shape, dtype=self.dtype)
        dx4 = self._view(dx, N)
        op = self.spec.op
        if op == "max":
            K.channel_max_bwd(dy3, cache.arg, dx4)
        elif op == "avg":
            K.channel_avg_bwd(dy3, dx4)
        else:
            K.channel_l2_bwd(x4, cache.y.reshape(N, G, hw), dy3, dx4)
        return dx
