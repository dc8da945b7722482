"""Naive numpy references for pooling and local contrast normalisation (slow, obviously correct),
and a central-difference gradient. Plain loops; float64 throughout.
"""
from __future__ import annotations

import math

import numpy as np


# --- shapes ------------------------------------------------------------------------------------

def out_len(n: int, k: int, s: int, lo: int, hi: int, rounding: str = "exact") -> int:
    """PyTorch's rule: floor or ceil of (n + lo + hi - k) / s, plus 1; in ceil mode the last
    window must start inside the input or its left padding."""
    span = n + lo + hi - k
    assert span >= 0
    if rounding == "exact":
        assert span % s == 0
        return span // s + 1
    if rounding == "floor":
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + lo:
        out -= 1
    return out


def same_pad(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's 'SAME': output ceil(n / s), padding split with the odd pixel at the end."""
    out = math.ceil(n / s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


# --- spatial pooling ---------------------------------------------------------------------------

def windows(H, W, kh, kw, sh, sw, pt, pl, oh, ow):
    """For each output (i, j): the list of in-image input cells (ih, iw) of its window."""
    out = {}
    for i in range(oh):
        for j in range(ow):
            cells = []
            for a in range(kh):
                for b in range(kw):
                    ih, iw = i * sh - pt + a, j * sw - pl + b
                    if 0 <= ih < H and 0 <= iw < W:
                        cells.append((ih, iw))
            out[i, j] = cells
    return out


def pool2d(x, op, kh, kw, sh, sw, pt, pl, oh, ow, eps=1e-6):
    """x (N, C, H, W) -> y (N, C, oh, ow) [, argmax flat index for op 'max'].
    Only in-image cells count (padding and cells past the edge are ignored)."""
    N, C, H, W = x.shape
    y = np.zeros((N, C, oh, ow))
    arg = np.zeros((N, C, oh, ow), dtype=np.int64)
    win = windows(H, W, kh, kw, sh, sw, pt, pl, oh, ow)
    for n in range(N):
        for c in range(C):
            for (i, j), cells in win.items():
                vals = [x[n, c, ih, iw] for ih, iw in cells]
                assert vals, "a window with no in-image cell"
                if op == "max":
                    best = 0
                    for t, v in enumerate(vals):   # first maximum in row-major order
                        if v > vals[best]:
                            best = t
                    y[n, c, i, j] = vals[best]
                    arg[n, c, i, j] = cells[best][0] * W + cells[best][1]
                elif op == "avg":
                    y[n, c, i, j] = sum(vals) / len(vals)
                elif op == "l2":
                    y[n, c, i, j] = math.sqrt(eps + sum(v * v for v in vals))
                else:
                    raise ValueError(op)
    return (y, arg) if op == "max" else y


def pool2d_backward(x, dy, op, kh, kw, sh, sw, pt, pl, eps=1e-6):
    """The exact gradient of pool2d (max: to the first maximum), by loops."""
    N, C, H, W = x.shape
    oh, ow = dy.shape[2:]
    dx = np.zeros_like(x, dtype=np.float64)
    win = windows(H, W, kh, kw, sh, sw, pt, pl, oh, ow)
    if op == "max":
        _, arg = pool2d(x, "max", kh, kw, sh, sw, pt, pl, oh, ow)
    for n in range(N):
        for c in range(C):
            for (i, j), cells in win.items():
                g = dy[n, c, i, j]
                if op == "max":
                    a = arg[n, c, i, j]
                    dx[n, c, a // W, a % W] += g
                elif op == "avg":
                    for ih, iw in cells:
                        dx[n, c, ih, iw] += g / len(cells)
                else:
                    yv = math.sqrt(eps + sum(x[n, c, ih, iw] ** 2 for ih, iw in cells))
                    for ih, iw in cells:
                        dx[n, c, ih, iw] += g * x[n, c, ih, iw] / yv
    return dx


def channel_pool(x, size, op, eps=1e-6):
    """x (N, C, ...) -> (N, C // size, ...), pooling groups of `size` adjacent channels."""
    N, C = x.shape[:2]
    rest = x.shape[2:]
    y = np.zeros((N, C // size) + rest)
    for n in range(N):
        for g in range(C // size):
            grp = [x[n, g * size + k] for k in range(size)]
            if op == "max":
                out = grp[0].copy()
                for k in range(1, size):
                    out = np.where(grp[k] > out, grp[k], out)
            elif op == "avg":
                out = sum(grp) / size
            else:
                out = np.sqrt(eps + sum(v * v for v in grp))
            y[n, g] = out
    return y


# --- local contrast normalisation --------------------------------------------------------------

def torch_gaussian(size: int, sigma: float = 0.25) -> np.ndarray:
    """Torch7's image.gaussian(size, sigma) (sigma relative to size), normalised to sum 1:
    value(u, v) = exp(-((u + 1 - c) / (sigma * size))^2 / 2 - ((v + 1 - c) / (sigma * size))^2 / 2),
    c = size / 2 + 0.5 (1-based centre)."""
    c = size / 2 + 0.5
    k = np.zeros((size, size))
    for v in range(size):
        for u in range(size):
            du = (u + 1 - c) / (sigma * size)
            dv = (v + 1 - c) / (sigma * size)
            k[v, u] = math.exp(-0.5 * (du * du + dv * dv))
    return k / k.sum()


def box(size: int) -> np.ndarray:
    return np.full((size, size), 1.0 / (size * size))


def local_average(u, w2):
    """u (N, C, H, W) -> (N, H, W): sum_c sum_pq w(p, q) u(c, i+p-r, j+q-r) / C / coef(i, j),
    zero padding, coef = the window mass inside the image (full 2-D window, one shifted copy of
    the zero-padded image per window tap)."""
    N, C, H, W = u.shape
    k = w2.shape[0]
    r = k // 2
    padded = np.zeros((N, H + 2 * r, W + 2 * r))
    padded[:, r:r + H, r:r + W] = u.sum(axis=1)
    inside = np.zeros((H + 2 * r, W + 2 * r))
    inside[r:r + H, r:r + W] = 1.0
    tot = np.zeros((N, H, W))
    mass = np.zeros((H, W))
    for p in range(k):
        for q in range(k):
            tot += w2[p, q] * padded[:, p:p + H, q:q + W]
            mass += w2[p, q] * inside[p:p + H, q:q + W]
    return tot / C / mass


def lcn(x, w2, *, subtract=True, divide=True, threshold=1e-4, mode="torch"):
    """Subtractive and/or divisive normalisation of x (N, C, H, W) with window w2 (sum 1)."""
    x = np.asarray(x, dtype=np.float64)
    if subtract:
        x = x - local_average(x, w2)[:, None]
    if not divide:
        return x
    sigma = np.sqrt(local_average(x * x, w2))
    floor = np.full((x.shape[0], 1, 1), threshold)
    if mode == "jarrett":
        floor = np.maximum(sigma.mean(axis=(1, 2), keepdims=True), threshold)
    den = np.maximum(sigma, floor)
    return x / den[:, None]


# --- gradients ---------------------------------------------------------------------------------

def numeric_grad(f, x, h=1e-6):
    """Central differences of the scalar f at x (float64; x is restored)."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = old + h
        fp = f(x)
        x[idx] = old - h
        fm = f(x)
        x[idx] = old
        g[idx] = (fp - fm) / (2 * h)
    return g
