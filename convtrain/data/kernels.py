"""Data kernels: per-channel normalisation (fused with the batch gather), per-channel moments,
and the shift / flip augmentation. Images are NCHW with H*W flattened where that helps.
"""
import numpy as np

from ..nn.kernels._jit import pjit, prange


@pjit
def normalize_gather(x, idx, scale, shift, out):
    """x (N, C, P) uint8|float, idx (B,) int64, scale (C,) float32, shift (C,) float32
    -> out (B, C, P) float32: out[b, c, p] = x[idx[b], c, p] * scale[c] + shift[c].

    The caller checks 0 <= idx < N (no bounds checks here)."""
    C, P = x.shape[1], x.shape[2]
    for b in prange(idx.shape[0]):
        n = idx[b]
        for c in range(C):
            a = scale[c]
            s = shift[c]
            xs = x[n, c]
            os = out[b, c]
            for p in range(P):
                os[p] = np.float32(xs[p]) * a + s


@pjit
def channel_moments(x, center, out):
    """x (N, C, P) uint8|float, center (C,) float64 -> out (N, C, 2) float64:
    out[n, c] = (sum_p (x - center[c]), sum_p (x - center[c])**2) for sample n.

    Per-sample partial sums (the loop writes row n only); the caller reduces over N."""
    N, C, P = x.shape
    for n in prange(N):
        for c in range(C):
            k = center[c]
            xs = x[n, c]
            s1 = 0.0
            s2 = 0.0
            for p in range(P):
                d = np.float64(xs[p]) - k
                s1 += d
                s2 += d * d
            out[n, c, 0] = s1
            out[n, c, 1] = s2


@pjit
def shift_flip(x, dy, dx, rows, cols, flip, fill, out):
    """x (N, C, H, W), dy dx (N,) int64, rows cols (N, 2) int64, flip (N,) bool, fill (C,)
    -> out (N, C, H, W), same dtype as x.

    Sample n is shifted down by dy[n] and right by dx[n]; output rows [rows[n,0], rows[n,1]) and
    columns [cols[n,0], cols[n,1]) (in the unflipped frame) hold shifted pixels, the rest hold
    fill[c]. Then, if flip[n], the row is mirrored left-right:
        out[n, c, i, j] = x[n, c, i - dy, jj - dx] with jj = W - 1 - j if flip else j.
    The caller guarantees the windows map inside x."""
    N, C, H, W = x.shape
    for n in prange(N):
        r0 = rows[n, 0]
        r1 = rows[n, 1]
        c0 = cols[n, 0]
        c1 = cols[n, 1]
        sy = dy[n]
        sx = dx[n]
        f = flip[n]
        L = c1 - c0
        # output columns holding pixels: [c0, c1) unflipped, [W - c1, W - c0) flipped
        o0 = W - c1 if f else c0
        o1 = o0 + L
        for c in range(C):
            v = fill[c]
            for i in range(H):
                os = out[n, c, i]
                if i < r0 or i >= r1 or L <= 0:
                    for j in range(W):
                        os[j] = v
                    continue
                for j in range(o0):
                    os[j] = v
                for j in range(o1, W):
                    os[j] = v
                xs = x[n, c, i - sy, c0 - sx:c1 - sx]
                od = out[n, c, i, o0:o1]
                if f:
                    for j in range(L):
                        od[j] = xs[L - 1 - j]
                else:
                    for j in range(L):
                        od[j] = xs[j]
