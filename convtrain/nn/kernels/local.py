"""Locally-connected (unshared convolution) kernels, stride 1.

Layout NCHW; weight (F, OH, OW, C, KH, KW): every output pixel has its own filter; bias
(F, OH, OW). The input arrives zero-padded (`xp`, (N, C, Hpa, Wp)). Other strides are run by the
layer as stride 1 over the input's stride phases (see kernels/conv.py, pad_phases).

These use the "wide row" layout of kernels/conv.py: output pixel (oh, ow) sits at
p = oh*Wp + ow, tap t = (c, kh, kw) reads the flattened padded sample at off[t] + p, and the
weights (the big operand here: each is used once per sample) are copied to wt (F, T, Lr) in that
same layout, zeros in the KW-1 junk columns of each row, so every pass is a long contiguous
stream over p. Two samples share each weight load in the forward and grad-weight kernels.
The public functions take the tap offsets and the rounded wide length from conv.py's helpers in
Python and pass them to the parallel kernels, which therefore compile none of conv.py's code
(numba's cache would not see an edit there).
"""
import numpy as np

from ._jit import jit, pjit, prange
from .conv import tap_offsets, wide_length


def _wide_layout(sample, weight):
    """(off, Lr): the tap offsets and the rounded wide length of a padded sample of shape
    `sample` (C, Hpa, Wp), for a weight of shape `weight` (F, OH, OW, C, KH, KW)."""
    C, Hpa, Wp = sample
    _, OH, OW, _, KH, KW = weight
    off = tap_offsets(C, Hpa, Wp, KH, KW)
    return off, wide_length(off, C * Hpa * Wp, (OH - 1) * Wp + OW)


@jit
def _wide_weights(w, wt, f, Wp):
    """w[f] (OH, OW, C, KH, KW) -> wt[f] (T, Lr) at p = oh*Wp + ow; wt must start zeroed."""
    _, OH, OW, C, KH, KW = w.shape
    for oh in range(OH):
        for ow in range(OW):
            src = w[f, oh, ow]
            p = oh * Wp + ow
            t = 0
            for c in range(C):
                for kh in range(KH):
                    for kw in range(KW):
                        wt[f, t, p] = src[c, kh, kw]
                        t += 1


@jit
def _wide_rows(a, aw, Wp):
    """a (F, OH, OW) -> aw (F, Lr) at p = oh*Wp + ow (aw's junk columns left as they are)."""
    F, OH, OW = a.shape
    for f in range(F):
        for oh in range(OH):
            src = a[f, oh]
            dst = aw[f, oh * Wp:oh * Wp + OW]
            for ow in range(OW):
                dst[ow] = src[ow]


@jit
def _fwd_pair(xa, xb, off, wt, bw, acca, accb, T, Lr):
    """acca/accb (F, Lr) = bw + sum_t wt[:, t] * x[off[t]:][:Lr] for two samples xa, xb."""
    F = wt.shape[0]
    for f in range(F):
        a0 = acca[f]
        b0 = accb[f]
        bs = bw[f]
        for p in range(Lr):
            a0[p] = bs[p]
            b0[p] = bs[p]
        wf = wt[f]
        t = 0
        while t + 2 <= T:
            u0 = wf[t, :Lr]
            u1 = wf[t + 1, :Lr]
            xa0 = xa[off[t]:off[t] + Lr]
            xa1 = xa[off[t + 1]:off[t + 1] + Lr]
            xb0 = xb[off[t]:off[t] + Lr]
            xb1 = xb[off[t + 1]:off[t + 1] + Lr]
            for p in range(Lr):
                v0 = u0[p]
                v1 = u1[p]
                a0[p] += v0 * xa0[p] + v1 * xa1[p]
                b0[p] += v0 * xb0[p] + v1 * xb1[p]
            t += 2
        if t < T:
            u0 = wf[t, :Lr]
            xa0 = xa[off[t]:off[t] + Lr]
            xb0 = xb[off[t]:off[t] + Lr]
            for p in range(Lr):
                v0 = u0[p]
                a0[p] += v0 * xa0[p]
                b0[p] += v0 * xb0[p]


def local_forward(xp, w, b, out, relu):
    """xp (N, C, Hpa, Wp), w (F, OH, OW, C, KH, KW), b (F, OH, OW) -> out (N, F, OH, OW), stride 1;
    with `relu`, out = max(out, 0) (a fused ReLU, as in conv_forward).

    Overwrites `out`. OW = Wp - KW + 1; Hpa >= OH + KH - 1 (a few spare zero rows below let the
    wide range be rounded up). Parallel over pairs of samples.
    """
    off, Lr = _wide_layout(xp.shape[1:], w.shape)
    _forward(xp, w, b, out, relu, off, Lr)


@pjit
def _forward(xp, w, b, out, relu, off, Lr):
    """local_forward's parallel passes, given the wide layout (_wide_layout)."""
    N, C, Hpa, Wp = xp.shape
    F, OH, OW, _, KH, KW = w.shape
    T = C * KH * KW
    S = C * Hpa * Wp
    wt = np.zeros((F, T, Lr), w.dtype)
    for f in prange(F):
        _wide_weights(w, wt, f, Wp)
    bw = np.zeros((F, Lr), w.dtype)
    _wide_rows(b, bw, Wp)
    for i in prange((N + 1) // 2):
        na = 2 * i
        nb = min(na + 1, N - 1)       # an odd batch computes its last sample twice
        acca = np.empty((F, Lr), out.dtype)
        accb = np.empty((F, Lr), out.dtype)
        _fwd_pair(xp[na].reshape(S), xp[nb].reshape(S), off, wt, bw, acca, accb, T, Lr)
        for f in range(F):
            for oh in range(OH):
                sa = acca[f, oh * Wp:oh * Wp + OW]
                sb = accb[f, oh * Wp:oh * Wp + OW]
                da = out[na, f, oh]
                db = out[nb, f, oh]
                if relu:
                    for ow in range(OW):
                        va = sa[ow]
                        vb = sb[ow]
                        da[ow] = 0 if va < 0 else va
                        db[ow] = 0 if vb < 0 else vb
                else:
                    for ow in range(OW):
                        da[ow] = sa[ow]
                        db[ow] = sb[ow]


@jit
def _dx_sample(dxf, off, wt, dw_, T, Lr):
    """dxf[off[t]:][:Lr] += sum_f wt[f, t] * dw_[f]  for every tap t (dxf starts zeroed)."""
    F = wt.shape[0]
    F2 = F // 2 * 2
    for t in range(T):
        dst = dxf[off[t]:off[t] + Lr]
        for f in range(0, F2, 2):
            u0 = wt[f, t, :Lr]
            u1 = wt[f + 1, t, :Lr]
            d0 = dw_[f, :Lr]
            d1 = dw_[f + 1, :Lr]
            for p in range(Lr):
                dst[p] += u0[p] * d0[p] + u1[p] * d1[p]
        if F2 < F:
            u0 = wt[F2, t, :Lr]
            d0 = dw_[F2, :Lr]
            for p in range(Lr):
                dst[p] += u0[p] * d0[p]


def local_backward_data(dout, w, dxp):
    """dout (N, F, OH, OW), w (F, OH, OW, C, KH, KW) -> dxp (N, C, Hpa, Wp), stride 1.

    The padded input's gradient; overwrites `dxp` (the layer crops the padding away). OW = Wp -
    KW + 1, Hpa >= OH + KH - 1. Parallel over the batch.
    """
    off, Lr = _wide_layout(dxp.shape[1:], w.shape)
    _backward_data(dout, w, dxp, off, Lr)


@pjit
def _backward_data(dout, w, dxp, off, Lr):
    """local_backward_data's parallel passes, given the wide layout (_wide_layout)."""
    N, C, Hpa, Wp = dxp.shape
    F, _, _, _, KH, KW = w.shape
    T = C * KH * KW
    S = C * Hpa * Wp
    wt = np.zeros((F, T, Lr), w.dtype)
    for f in prange(F):
        _wide_weights(w, wt, f, Wp)
    for n in prange(N):
        dw_ = np.zeros((F, Lr), dout.dtype)
        _wide_rows(dout[n], dw_, Wp)
        dxf = dxp[n].reshape(S)
        for i in range(S):
            dxf[i] = 0
        _dx_sample(dxf, off, wt, dw_, T, Lr)


@jit
def _dw_filter(xp, dout, g, off, f, Wp, T, Lr):
    """g (T, Lr) += sum_n dout[n, f] (wide) * x_n[off[t]:][:Lr]  for one filter f."""
    N, C, Hpa, _ = xp.shape
    S = C * Hpa * Wp
    OH = dout.shape[2]
    OW = dout.shape[3]
    d = np.zeros((2, Lr), g.dtype)
    for i in range(0, N, 2):
        nb = i + 1
        if nb < N:
            two = True
        else:
            two = False
            nb = i
        for oh in range(OH):
            sa = dout[i, f, oh]
            sb = dout[nb, f, oh]
            da = d[0, oh * Wp:oh * Wp + OW]
            db = d[1, oh * Wp:oh * Wp + OW]
            for ow in range(OW):
                da[ow] = sa[ow]
                db[ow] = sb[ow]
        if not two:
            d[1] = 0
        xa = xp[i].reshape(S)
        xb = xp[nb].reshape(S)
        d0 = d[0]
        d1 = d[1]
        for t in range(T):
            gt = g[t, :Lr]
            xa0 = xa[off[t]:off[t] + Lr]
            xb0 = xb[off[t]:off[t] + Lr]
            for p in range(Lr):
                gt[p] += d0[p] * xa0[p] + d1[p] * xb0[p]


def local_backward_weight(xp, dout, dw, db):
    """xp (N, C, Hpa, Wp), dout (N, F, OH, OW) -> dw (F, OH, OW, C, KH, KW) +=, db (F, OH, OW) +=.

    Stride 1, OW = Wp - KW + 1. Parallel over filters f: each iteration writes only dw[f], db[f].
    """
    off, Lr = _wide_layout(xp.shape[1:], dw.shape)
    _backward_weight(xp, dout, dw, db, off, Lr)


@pjit
def _backward_weight(xp, dout, dw, db, off, Lr):
    """local_backward_weight's parallel pass, given the wide layout (_wide_layout)."""
    N, C, Hpa, Wp = xp.shape
    F, OH, OW, _, KH, KW = dw.shape
    T = C * KH * KW
    for f in prange(F):
        g = np.zeros((T, Lr), dw.dtype)
        _dw_filter(xp, dout, g, off, f, Wp, T, Lr)
        dbf = db[f]
        for n in range(N):
            for oh in range(OH):
                src = dout[n, f, oh]
                dst = dbf[oh]
                for ow in range(OW):
                    dst[ow] += src[ow]
        for oh in range(OH):
            for ow in range(OW):
                dst = dw[f, oh, ow]
                p = oh * Wp + ow
                t = 0
                for c in range(C):
                    for kh in range(KH):
                        for kw in range(KW):
                            dst[c, kh, kw] += g[t, p]
                            t += 1
