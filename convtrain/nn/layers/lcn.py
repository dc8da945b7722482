"""Local contrast normalisation, as Torch7's nn.SpatialSubtractiveNormalization,
nn.SpatialDivisiveNormalization and nn.SpatialContrastiveNormalization (= subtractive then
divisive), in the sense of Jarrett et al. 2009, "What is the best multi-stage architecture for
object recognition?".

Per sample, with a window w = g g^T (sum 1) of odd size K applied over space AND all C channels,
zero padding at the borders and Torch7's border correction coef(i, j) = the window mass inside
the image (Torch gets it by filtering an image of ones):

    mean(i, j)  = sum_c sum_pq w(p, q) x(c, i+p, j+q) / C / coef(i, j)
    subtractive_norm:  y = x - mean
    sigma(i, j) = sqrt( sum_c sum_pq w(p, q) x(c, i+p, j+q)^2 / C / coef(i, j) )
    divisive_norm:     y = x / max(sigma, threshold)                      (mode: torch)
                       y = x / max(sigma, mean_ij(sigma), threshold)      (mode: jarrett)
    lcn:               divisive_norm(subtractive_norm(x)), fused in one kernel.

Choices, checked against the Torch7 sources:
- the window: `gaussian` is Torch7's image.gaussian(size): g(i) = exp(-(i - (K-1)/2)^2 / (2 s^2))
  with s = 0.25 * K pixels by default (image.gaussian's relative sigma 0.25; 2.25 px for K = 9;
  note Torch's image.lcn uses 1.591 px), normalised to sum 1; `sigma` sets s in pixels.
  `box` is uniform (Torch's default kernel, torch.Tensor(9, 9):fill(1)).
- threshold: Torch's nn.Threshold(threshold, thresval) with both 1e-4, i.e. max(sigma, 1e-4); its
  gradient is the indicator of sigma > threshold. It must be > 0.
- the border correction of sigma: Torch divides the square root by coef
  (sqrt(sum w x^2 / C) / coef); we take the root of the corrected mean, sqrt(sum w x^2 / C / coef),
  a proper local RMS near the borders too. Both agree wherever the window is inside the image.
- jarrett: the per-sample floor mean_ij(sigma) of Jarrett et al. (sec. 2, "local contrast
  normalization"), itself floored by threshold; its gradient flows to every sigma through the mean.
The window may be larger than the image: border correction then uses the part that falls inside.

The cache keeps a reference to the input x (layers do not modify their inputs) and per-pixel
float64 statistics (N, H*W). Cost O(C*H*W + H*W*K) per sample: channel sums first, then a
separable filter.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from ...errors import ShapeError
from ..kernels import lcn as K
from ...config.spec import option
from .base import Layer


@dataclass(frozen=True)
class SubtractiveSpec:
    size: int = option(9, min=1, doc="odd window size (over space; always spans all channels)")
    window: str = option("gaussian", choices=("gaussian", "box"), doc="gaussian or box")
    sigma: float | None = option(None, min=0.0, min_exclusive=True,
                                 doc="Gaussian std in pixels; null: 0.25 * size (Torch7's "
                                     "image.gaussian default)")

    def __post_init__(self):
        if self.size % 2 == 0:
            raise ValueError(f"size: must be odd (the window is centred), got {self.size}; "
                             f"try {self.size - 1} or {self.size + 1}")
        if self.sigma is not None and self.window != "gaussian":
            raise ValueError("sigma: only used by window: gaussian")


@dataclass(frozen=True)
class DivisiveSpec(SubtractiveSpec):
    threshold: float = option(1e-4, min=0.0, min_exclusive=True,
                              doc="floor of the divisor: y = x / max(sigma, threshold)")
    mode: str = option("torch", choices=("torch", "jarrett"),
                       doc="torch: max(sigma, threshold); jarrett: also floored by the "
                           "per-sample mean of sigma")


def window_1d(spec) -> np.ndarray:
    """The 1-D window g (float64, sum 1); the 2-D window is g g^T."""
    k = spec.size
    if spec.window == "box":
        g = np.ones(k)
    else:
        s = spec.sigma if spec.sigma is not None else 0.25 * k
        t = np.arange(k) - (k - 1) / 2.0
        g = np.exp(-0.5 * (t / s) ** 2)
    return g / g.sum()


def border_icoef(g: np.ndarray, C: int, H: int, W: int) -> np.ndarray:
    """1 / (C * coef) as a flat (H*W,) float64 array; coef = window mass inside the image."""
    r = len(g) // 2

    def mass(n):
        m = np.zeros(n)
        for i in range(n):
            lo, hi = max(0, r - i), min(len(g), n + r - i)
            m[i] = g[lo:hi].sum()
        return m

    coef = np.outer(mass(H), mass(W))
    return np.ascontiguousarray((1.0 / (C * coef)).ravel())


class LCNCache(NamedTuple):
    x: np.ndarray          # the input (N, C, H, W)
    S: np.ndarray          # (N, HW) float64: sum over channels
    M: np.ndarray          # (N, HW) float64: local mean (zeros without the subtractive stage)
    SIG: np.ndarray        # (N, HW) float64: local RMS sigma (divisive stage)
    DEN: np.ndarray        # (N, HW) float64: the divisor
    CN: np.ndarray         # (N,) float64: mean of sigma per sample (jarrett)


class _LocalNorm(Layer):
    short: ClassVar[str] = "size"
    subtract: ClassVar[bool] = True
    divide: ClassVar[bool] = True

    def __init__(self, spec, in_shape, *, dtype=np.float32, name: str = ""):
        super().__init__(spec, in_shape, dtype=dtype, name=name)
        C, H, W = self.in_shape
        self.g = window_1d(spec)
        self.icoef = border_icoef(self.g, C, H, W)

    def out_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ShapeError(f"{self.type} needs an image input (C, H, W), got {tuple(in_shape)}")
        return tuple(in_shape)

    def flops(self, in_shape) -> int:
        """Channel passes (sums, squares, the final multiply-add) and two 1-D filter passes
        (2 ops per tap) per stage."""
        C, H, W = in_shape
        hw = H * W
        per_elem = (1 if self.subtract else 0) + (2 if self.divide else 0) + 2
        taps = min(self.spec.size, H) + min(self.spec.size, W)
        stages = int(self.subtract) + int(self.divide)
        return int(per_elem * C * hw + stages * 2 * taps * hw)

    def describe(self) -> str:
        k = self.spec.size
        text = f"{k}x{k} {self.spec.window}"
        if self.spec.window == "gaussian":
            s = self.spec.sigma if self.spec.sigma is not None else 0.25 * k
            text += f" sigma {s:g}"
        if self.divide and self.spec.mode == "jarrett":
            text += " jarrett"
        return text

    def _args(self, H, W):
        jarrett = self.divide and self.spec.mode == "jarrett"
        threshold = float(self.spec.threshold) if self.divide else 1.0
        return (self.g, self.icoef, int(H), int(W), self.subtract, self.divide, jarrett,
                threshold)

    def forward(self, x, *, train: bool):
        x = np.ascontiguousarray(x, dtype=self.dtype)
        N, C, H, W = x.shape
        hw = H * W
        y = np.empty_like(x)
        S = np.empty((N, hw))
        M = np.empty((N, hw))
        stats = hw if self.divide else 1
        SIG = np.empty((N, stats))
        DEN = np.empty((N, stats))
        CN = np.zeros(N)
        K.lcn_fwd(x.reshape(N, C, hw), y.reshape(N, C, hw), S, M, SIG, DEN, CN,
                  *self._args(H, W))
        return y, LCNCache(x, S, M, SIG, DEN, CN)

    def backward(self, dout, cache: LCNCache, *, need_dx=True):
        x = cache.x
        N, C, H, W = x.shape
        hw = H * W
        dy = np.ascontiguousarray(dout, dtype=self.dtype)
        dx = np.empty_like(x)
        K.lcn_bwd(x.reshape(N, C, hw), dy.reshape(N, C, hw), dx.reshape(N, C, hw),
                  cache.S, cache.M, cache.SIG, cache.DEN, cache.CN, *self._args(H, W))
        return dx


class SubtractiveNorm(_LocalNorm):
    """y = x - local mean over space and channels (Torch7 nn.SpatialSubtractiveNormalization)."""
    type = "subtractive_norm"
    Spec = SubtractiveSpec
    subtract = True
    divide = False


class DivisiveNorm(_LocalNorm):
    """y = x / max(local RMS over space and channels, threshold)
    (Torch7 nn.SpatialDivisiveNormalization)."""
    type = "divisive_norm"
    Spec = DivisiveSpec
    subtract = False
    divide = True


class LCN(_LocalNorm):
    """Subtractive then divisive normalisation, fused
    (Torch7 nn.SpatialContrastiveNormalization)."""
    type = "lcn"
    Spec = DivisiveSpec
    subtract = True
    divide = True
