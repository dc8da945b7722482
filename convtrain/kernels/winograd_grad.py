"""Winograd weight gradient F(r x r, 2 x 2), for the layers whose forward runs Winograd.

dW[f, c] is the sum, over samples and 2x2 tiles of dout, of the valid correlation of the tile's
(r+1)^2 input patch d with its 2x2 block dy: an F(r, 2) Winograd product, with the same points,
hence the same input transform BT as the forward (kernels/winograd.py):

    dW[f, c] = AW [ sum_tiles (BT d B)[c] * (GD dy GD^T)[f] ] AW^T

with GD = evaluation(a, 2) (integers: no rounding in dout's transform) and AW = evaluation(a,
r)^T. The sum over tiles runs in the transform domain, as a matrix product per transform point
whose reduction covers all the tiles of a sample (not only C channels, as in the forward), so
the register tiles run long. The back transform (and BT's row scales) is applied once per call,
in float64. Per sample: input copy and transform (shared with the forward), dout copy (through
the fused ReLU's mask, summing the bias gradient) and transform, products into a per-thread
partial; the partials are added serially.
"""
import numpy as np
from numba import carray

from ._jit import jit, pjit, prange
from ._stack import element_pointer, stack_pointer
from .winograd import (CV, FV, QB, SCALES, TILE_SIZE, _channels_last, _input_transform,
                       _lanes, evaluation)

SCRATCH = 2 * 6 * CV


@jit(inline="always")
def _gd4(u, v):
    return u, u + v, u - v, v


@jit(inline="always")
def _gd6(u, v):
    w = v + v
    return u, u + v, u - v, u + w, u - w, v


@jit
def _dout_channels_last(ds, ms, relu, dh, Wn, Fq, dbp):
    """dh (Hn, Wn, Fq) = ds (F, OH, OW) transposed, zero where relu and not ms > 0 (the fused
    ReLU's mask) and outside the map; dbp[f] += the sum of what was copied (the bias gradient)."""
    F, OH, OW = ds.shape
    dh[:] = 0
    for y in range(OH):
        row = carray(element_pointer(dh, y * Wn * Fq), (Wn * Fq,))
        for f in range(F):
            src = carray(element_pointer(ds, (f * OH + y) * OW), (OW,))
            msk = carray(element_pointer(ms, (f * OH + y) * OW), (OW,))
            tot = 0.0
            for x in range(OW):
                v = src[x]
                if relu and not msk[x] > 0:
                    v = 0
                row[x * Fq + f] = v
                tot += v
            dbp[f] += tot


@jit
def _dout_transform(dh, Wn, Fq, DY, TH, TW, P7, a):
    """DY (a*a, P7, Fq): DY[xi*a + nu, p, f] = (GD dy GD^T)[xi, nu] of the 2x2 block dy of tile
    p = ty*TW + tx (rows 2ty, 2ty+1, columns 2tx, 2tx+1 of dh), CV filters per vector."""
    tmp = carray(stack_pointer(SCRATCH, DY.dtype), (SCRATCH,))   # (2, a, CV): rows transformed
    step = a * P7 * Fq  # DY: from xi to xi + 1
    for ty in range(TH):
        for tx in range(TW):
            p = ty * TW + tx
            for f0 in range(0, Fq, CV):
                for i in range(2):      # row i of the block: tmp[i, nu] = (dy[i] GD^T)[nu]
                    at = ((2 * ty + i) * Wn + 2 * tx) * Fq + f0
                    u, v = _lanes(dh, at, Fq, 0), _lanes(dh, at, Fq, 1)
                    t0, t1, t2, t3 = (_lanes(tmp, i * 6 * CV, CV, 0), _lanes(tmp, i * 6 * CV, CV, 1),
                                      _lanes(tmp, i * 6 * CV, CV, 2), _lanes(tmp, i * 6 * CV, CV, 3))
                    if a == 6:
                        t4, t5 = _lanes(tmp, i * 6 * CV, CV, 4), _lanes(tmp, i * 6 * CV, CV, 5)
                        for j in range(CV):
                            t0[j], t1[j], t2[j], t3[j], t4[j], t5[j] = _gd6(u[j], v[j])
                    else:
                        for j in range(CV):
                            t0[j], t1[j], t2[j], t3[j] = _gd4(u[j], v[j])
                for nu in range(a):     # column nu: DY[xi, nu] = (GD tmp[:, nu])[xi]
                    at = (nu * P7 + p) * Fq + f0
                    u, v = _lanes(tmp, nu * CV, 0, 0), _lanes(tmp, (6 + nu) * CV, 0, 0)
                    y0, y1, y2, y3 = (_lanes(DY, at, step, 0), _lanes(DY, at, step, 1),
                                      _lanes(DY, at, step, 2), _lanes(DY, at, step, 3))
                    if a == 6:
                        y4, y5 = _lanes(DY, at, step, 4), _lanes(DY, at, step, 5)
                        for j in range(CV):
                            y0[j], y1[j], y2[j], y3[j], y4[j], y5[j] = _gd6(u[j], v[j])
                    else:
                        for j in range(CV):
                            y0[j], y1[j], y2[j], y3[j] = _gd4(u[j], v[j])


@jit
def _products(V, DY, part, P, P7, C, Cp, Fq, A2):
    """part[k] (Cp, Fq) += V[k, :P, :C]^T @ DY[k, :P] for every transform point k (V and DY
    point-major: one point's rows are contiguous and stay in L1 across its tiles): register
    tiles of QB channels x FV filters summed over the P tiles of the sample (QB channel
    broadcasts of V, FV/16 vector loads of DY, QB*FV/16 FMAs per tile). Reads up to QB-1 values
    past a row of V (the caller leaves room); the rows for channels >= C are not stored."""
    tile = carray(stack_pointer(TILE_SIZE, V.dtype), (QB, FV))
    for k in range(A2):
        for c0 in range(0, C, QB):
            rows = min(QB, C - c0)
            for f0 in range(0, Fq, FV):
                for j in range(QB):
                    for i in range(FV):
                        tile[j, i] = 0
                for p in range(P):
                    vs = carray(element_pointer(V, (k * P7 + p) * Cp + c0), (QB,))
                    ds = carray(element_pointer(DY, (k * P7 + p) * Fq + f0), (FV,))
                    for i in range(FV):
                        di = ds[i]
                        for j in range(QB):
                            tile[j, i] += di * vs[j]
                nf = min(FV, Fq - f0)   # (not a constant: see winograd._products)
                for j in range(rows):
                    dst = carray(element_pointer(part, (k * Cp + c0 + j) * Fq + f0), (FV,))
                    for i in range(nf):
                        dst[i] += tile[j, i]


@jit
def _chunk(xp, dout, relu_out, relu, r, Hv, xh, V, dh, DY, part, dbp, n0, n1):
    """Samples n0..n1-1 into this thread's partial sums `part` (a*a, Cp, Fq) and `dbp`."""
    N, C, Hpa, Wp = xp.shape
    _, F, OH, OW = dout.shape
    a = r + 1
    TH = (OH + 1) // 2
    TW = (OW + 1) // 2
    Wn = 2 * TW + r - 1
    Cp = (C + CV - 1) // CV * CV
    Fq = part.shape[2]
    P7 = (TH * TW + QB - 1) // QB * QB
    for n in range(n0, n1):
        _channels_last(xp[n], Hv, Wp, xh, Wn, Cp)
        _input_transform(xh, Wn, Cp, V, TH, TW, Cp, P7 * Cp, a)
        _dout_channels_last(dout[n], relu_out[n], relu, dh, 2 * TW, Fq, dbp)
        _dout_transform(dh, 2 * TW, Fq, DY, TH, TW, P7, a)
        _products(V, DY, part, TH * TW, P7, C, Cp, Fq, a * a)


@pjit
def _weight_gradient(xp, dout, relu_out, relu, r, nchunks):
    """(sum of the partials (a*a, Cp, Fq) in float64, bias gradient (Fq,))."""
    N, C = xp.shape[0], xp.shape[1]
    F, OH, OW = dout.shape[1], dout.shape[2], dout.shape[3]
    a = r + 1
    TH = (OH + 1) // 2
    TW = (OW + 1) // 2
    P7 = (TH * TW + QB - 1) // QB * QB
    Cp = (C + CV - 1) // CV * CV
    Fq = (F + FV - 1) // FV * FV
    nchunks = max(1, min(N, nchunks))
    xh = np.empty((nchunks, (2 * TH + r - 1) * (2 * TW + r - 1) * Cp), xp.dtype)
    V = np.zeros((nchunks, a * a * P7 * Cp + QB), xp.dtype)     # (+QB: see _products)
    dh = np.empty((nchunks, 2 * TH * 2 * TW * Fq), xp.dtype)
    DY = np.empty((nchunks, a * a * P7 * Fq), xp.dtype)
    parts = np.zeros((nchunks, a * a, Cp, Fq), xp.dtype)
    dbp = np.zeros((nchunks, Fq))
    Hv = min(xp.shape[2], OH + r - 1)
    for k in prange(nchunks):
        _chunk(xp, dout, relu_out, relu, r, Hv, xh[k], V[k], dh[k], DY[k], parts[k], dbp[k],
               k * N // nchunks, (k + 1) * N // nchunks)
    total = np.zeros((a * a, Cp, Fq))
    for k in range(nchunks):
        total += parts[k]
    db = np.zeros(Fq)
    for k in range(nchunks):
        db += dbp[k]
    return total, db


@jit
def _back_transform(total, AW, inv, dw, db, dbs):
    """dw[f, c] += AW (total[:, c, f] reshaped (a, a) * inv) AW^T; db += dbs[:F]."""
    F, C, r, _ = dw.shape
    a = AW.shape[1]
    m = np.empty((a, a))
    t = np.empty((r, a))
    for f in range(F):
        db[f] += dbs[f]
        for c in range(C):
            for xi in range(a):
                for nu in range(a):
                    m[xi, nu] = total[xi * a + nu, c, f] * inv[xi, nu]
            for i in range(r):
                for nu in range(a):
                    s = 0.0
                    for xi in range(a):
                        s += AW[i, xi] * m[xi, nu]
                    t[i, nu] = s
            for i in range(r):
                for j in range(r):
                    s = 0.0
                    for nu in range(a):
                        s += t[i, nu] * AW[j, nu]
                    dw[f, c, i, j] += s


def weight_matrices(r):
    """(AW (r, a), inv (a, a)): the back transform and the inverse of BT's row scales on both
    sides (BT here is the forward's integer matrix, scale[j] times the exact one)."""
    a = r + 1
    s = SCALES[r]
    return evaluation(a, r).T, 1.0 / np.outer(s, s)


def winograd_weight_gradient(xp, dout, relu_out, relu, dw, db, nchunks):
    """dw (F, C, r, r) += and db (F,) += of a stride-1 convolution with square r x r filters
    (r in winograd.SIZES) of the padded input xp, given dout (through a fused ReLU whose output
    is relu_out when `relu`; pass dout and False otherwise): what conv_backward_weight
    computes. Parallel over `nchunks` chunks of the batch."""
    r = dw.shape[2]
    total, dbs = _weight_gradient(xp, dout, relu_out, relu, r, nchunks)
    AW, inv = weight_matrices(r)
    _back_transform(total, AW, inv, dw, db, dbs)
