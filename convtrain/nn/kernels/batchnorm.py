"""Batch normalisation kernels, per channel over (N, C, HW) arrays (vectors: HW = 1).

Notation per channel c, m = N * HW values x:
    mean, var   the batch's statistics, float64 (shifted sums, below)
    xhat        = (x - mean) * inv_std,  inv_std = 1 / sqrt(var + eps)
    y           = gamma * xhat + beta
    backward:   sum_d = sum dout,  sum_dx = sum dout * xhat            (float64)
                dx = (gamma * inv_std / m) * (m * dout - sum_d - xhat * sum_dx)
The per-channel constants between the passes are computed by the caller (C values, numpy), so
each kernel is one pass over the arrays, parallel over the channels (the axis a loop writes),
contiguous over N rows of HW values. The loops index the arrays whole: a row view taken inside
the parallel loop counts references on the shared array from both cores. Every kernel takes x's dtype: float32 for training, float64
for the gradient check.
"""
import numpy as np

from ._jit import pjit, prange


@pjit
def channel_stats(x, mean, var):
    """x (N, C, HW) -> mean, var (C,) float64, the biased variance.

    One pass of sums shifted by the channel's first value, in float64: a channel sitting on a
    large offset (100 + 0.01 noise) loses nothing to E[d^2] - E[d]^2 when d = x - x[0, c, 0]
    is of the noise's size."""
    N, C, HW = x.shape
    m = N * HW
    for c in prange(C):
        shift = np.float64(x[0, c, 0])
        s = 0.0
        s2 = 0.0
        for n in range(N):
            for i in range(HW):
                d = np.float64(x[n, c, i]) - shift
                s += d
                s2 += d * d
        mean_d = s / m
        mean[c] = shift + mean_d
        var[c] = max(s2 / m - mean_d * mean_d, 0.0)


@pjit
def normalise(x, centre, scale, correction, gamma, beta, xhat, y):
    """x, xhat, y (N, C, HW); the rest (C,) in x's dtype:
    xhat = (x - centre) * scale - correction,  y = gamma * xhat + beta.

    centre is the mean rounded to x's dtype and correction = (mean - centre) * scale: x - centre
    is exact for x near the mean, so a large offset costs a float32 xhat no precision."""
    N, C, HW = x.shape
    for c in prange(C):
        mc, sc, co = centre[c], scale[c], correction[c]
        g, b = gamma[c], beta[c]
        for n in range(N):
            for i in range(HW):
                h = (x[n, c, i] - mc) * sc - co
                xhat[n, c, i] = h
                y[n, c, i] = g * h + b


@pjit
def grad_sums(dout, xhat, sum_d, sum_dx):
    """dout, xhat (N, C, HW) -> sum_d = sum dout, sum_dx = sum dout * xhat (C,) float64."""
    N, C, HW = dout.shape
    for c in prange(C):
        s = 0.0
        sx = 0.0
        for n in range(N):
            for i in range(HW):
                d = np.float64(dout[n, c, i])
                s += d
                sx += d * np.float64(xhat[n, c, i])
        sum_d[c] = s
        sum_dx[c] = sx


@pjit
def input_grad(dout, xhat, a, b, k, dx):
    """dout, xhat, dx (N, C, HW); a, b, k (C,) in dout's dtype: dx = a * dout - b - k * xhat.

    Training: a = gamma inv_std, b = a sum_d / m, k = a sum_dx / m; evaluation: b = k = 0."""
    N, C, HW = dout.shape
    for c in prange(C):
        ac, bc, kc = a[c], b[c], k[c]
        for n in range(N):
            for i in range(HW):
                dx[n, c, i] = ac * dout[n, c, i] - bc - kc * xhat[n, c, i]
