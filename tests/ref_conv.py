"""Naive numpy references for the convolution and locally-connected kernels.

Plain loops over output pixels, written to be obviously correct, not fast. NCHW; `pad` is
(top, bottom, left, right); `stride` is (sh, sw). Use float64.
"""
import numpy as np


def _pad(x, pad):
    top, bottom, left, right = pad
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def _out_size(n, k, s, lo, hi):
    span = n + lo + hi - k
    assert span >= 0 and span % s == 0, "the reference only handles windows that tile"
    return span // s + 1


def conv2d(x, w, b, stride, pad):
    """x (N, C, H, W), w (F, C, KH, KW), b (F,) or None -> (N, F, OH, OW)."""
    N, _, H, W = x.shape
    F, _, KH, KW = w.shape
    sh, sw = stride
    OH = _out_size(H, KH, sh, pad[0], pad[1])
    OW = _out_size(W, KW, sw, pad[2], pad[3])
    xp = _pad(x, pad)
    out = np.zeros((N, F, OH, OW))
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    patch = xp[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW]
                    out[n, f, i, j] = np.sum(patch * w[f]) + (0.0 if b is None else b[f])
    return out


def conv2d_backward(x, w, dout, stride, pad):
    """-> (dx, dw, db) for out = conv2d(x, w, b, stride, pad) and upstream gradient dout."""
    N, _, H, W = x.shape
    F, _, KH, KW = w.shape
    sh, sw = stride
    _, _, OH, OW = dout.shape
    xp = _pad(x, pad)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    g = dout[n, f, i, j]
                    dxp[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW] += g * w[f]
                    dw[f] += g * xp[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW]
    top, _, left, _ = pad
    dx = dxp[:, :, top:top + H, left:left + W]
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db


def local2d(x, w, b, stride, pad):
    """x (N, C, H, W), w (F, OH, OW, C, KH, KW), b (F, OH, OW) or None -> (N, F, OH, OW)."""
    N, _, H, W = x.shape
    F, OH, OW, _, KH, KW = w.shape
    sh, sw = stride
    assert OH == _out_size(H, KH, sh, pad[0], pad[1])
    assert OW == _out_size(W, KW, sw, pad[2], pad[3])
    xp = _pad(x, pad)
    out = np.zeros((N, F, OH, OW))
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    patch = xp[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW]
                    out[n, f, i, j] = np.sum(patch * w[f, i, j]) + (0.0 if b is None else b[f, i, j])
    return out


def local2d_backward(x, w, dout, stride, pad):
    """-> (dx, dw, db) for out = local2d(x, w, b, stride, pad) and upstream gradient dout."""
    N, _, H, W = x.shape
    F, OH, OW, _, KH, KW = w.shape
    sh, sw = stride
    xp = _pad(x, pad)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    g = dout[n, f, i, j]
                    dxp[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW] += g * w[f, i, j]
                    dw[f, i, j] += g * xp[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW]
    top, _, left, _ = pad
    dx = dxp[:, :, top:top + H, left:left + W]
    db = dout.sum(axis=0)
    return dx, dw, db
