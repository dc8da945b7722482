"""Elementwise kernels over flat arrays: activations and their gradients, fused SGD update.

Shapes: every array is flat (size,) and C-contiguous; callers pass `.reshape(-1)` views.
"""
import math

from ._jit import pjit, prange

CHUNK = 16384  # elements per parallel task: big enough to amortise scheduling


@pjit
def relu_forward(x, out):
    """x, out (size,): out = max(x, 0)."""
    n = x.shape[0]
    for c in prange((n + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        xs = x[lo:hi]
        os = out[lo:hi]
        for i in range(hi - lo):
            v = xs[i]
            os[i] = 0 if v < 0 else v   # NaN passes through, so the divergence guard sees it
    return out


@pjit
def relu_backward(y, dout, dx):
    """y, dout, dx (size,): dx = dout where y > 0 (y is the forward output)."""
    n = y.shape[0]
    for c in prange((n + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        ys = y[lo:hi]
        ds = dout[lo:hi]
        xs = dx[lo:hi]
        for i in range(hi - lo):
            xs[i] = ds[i] if ys[i] > 0 else 0
    return dx


@pjit
def leaky_relu_forward(x, slope, out):
    """x, out (size,): out = x if x > 0 else slope * x."""
    n = x.shape[0]
    for c in prange((n + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        xs = x[lo:hi]
        os = out[lo:hi]
        for i in range(hi - lo):
            v = xs[i]
            os[i] = v if v > 0 else slope * v
    return out


@pjit
def leaky_relu_backward(x, slope, dout, dx):
    """x, dout, dx (size,)."""
    n = x.shape[0]
    for c in prange((n + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        xs = x[lo:hi]
        ds = dout[lo:hi]
        gs = dx[lo:hi]
        for i in range(hi - lo):
            gs[i] = ds[i] if xs[i] > 0 else slope * ds[i]
    return dx


@pjit
def sgd_update(w, g, v, lr, momentum, nesterov, wd, l1):
    """w, g, v (size,): v = mu v + g + wd w + l1 sign(w); w -= lr v (or lr (g' + mu v), Nesterov).

    The learning rate sits outside the velocity, so changing it acts at once.
    """
    n = w.shape[0]
    for c in prange((n + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        ws = w[lo:hi]
        gs = g[lo:hi]
        vs = v[lo:hi]
        for i in range(hi - lo):
            wi = ws[i]
            gi = gs[i] + wd * wi
            if l1 != 0:
                gi += l1 * (1.0 if wi > 0 else (-1.0 if wi < 0 else 0.0))
            vi = momentum * vs[i] + gi
            vs[i] = vi
            if nesterov:
                ws[i] = wi - lr * (gi + momentum * vi)
            else:
                ws[i] = wi - lr * vi


@pjit
def sum_abs(x):
    """x (size,) -> sum |x| (for activation sparsity), accumulated in float64."""
    n = x.shape[0]
    nchunks = (n + CHUNK - 1) // CHUNK
    total = 0.0
    for c in prange(nchunks):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        xs = x[lo:hi]
        s = 0.0
        for i in range(hi - lo):
            s += math.fabs(xs[i])
        total += s
    return total
