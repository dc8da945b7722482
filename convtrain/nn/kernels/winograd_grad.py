"""The gradients of a Winograd convolution (kernels/winograd.py), in one pass over the batch.

Weight gradient. dW[f, c] is the sum, over samples and 2x2 tiles of dout, of the valid
correlation of the tile's (r+1)^2 input patch d with its 2x2 block dy: an F(r, 2) Winograd
product with the same points, hence the same input transform BT as the forward:

    dW[f, c] = AW [ sum_tiles (BT d B)[c] * (GD dy GD^T)[f] ] AW^T

with GD = evaluation(a, 2) (integers: no rounding in dout's transform) and AW = evaluation(a,
r)^T. The sum over tiles runs in the transform domain, as a matrix product per transform point
whose reduction covers all the tiles of a sample (not only the C channels, as in the forward),
so its register tiles run long. The back transform (with BT's row scales) runs once per call, in
float64.

Data gradient. The transpose of the forward's linear map: dout's transform is GD dy GD^T again
(GD = AT^T), the products sum over the filters with the forward's weight transform, and BT^T v BT
of every tile is added into its patch of the padded input's gradient, which is then cropped.

Per sample: input copy and transform, dout copy (through the fused ReLU's mask, summing the bias
gradient) and transform (shared by both gradients), the two products (the weight gradient's into
a per-thread partial, added serially at the end), the data transform and crop.
"""
import numpy as np
from numba import carray

from ._jit import jit, pjit, prange
from ._stack import element_pointer, stack_pointer
from .winograd import (CV, FV, QB, SCALES, TILE_SIZE, _channels_last, _input_transform,
                       _lanes, _products, _twice, evaluation, transform_weights)

SCRATCH = 2 * 6 * CV     # _dout_transform's rows
SCRATCH_T = 6 * 6 * CV   # _data_transform's rows


@jit(inline="always")
def _gd6(u, v):
    w = v + v
    return u, u + v, u - v, u + w, u - w, v


@jit(inline="always")
def _btt6(v0, v1, v2, v3, v4, v5):     # BT^T v, BT the forward's (winograd._bt6)
    w = v3 - v4
    return (v0 + v0 + v0 + v0,
            _twice(_twice(v2 - v1 + v5) + v4 - v3),
            -(v0 + v3 + v4) - _twice(_twice(v0 + v1 + v2)),
            v1 - v2 + w + w - _twice(_twice(v5)) - v5,
            v0 + v1 + v2 + v3 + v4,
            v5)


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
                    row = i * 6 * CV
                    t0, t1, t2, t3 = (_lanes(tmp, row, CV, 0), _lanes(tmp, row, CV, 1),
                                      _lanes(tmp, row, CV, 2), _lanes(tmp, row, CV, 3))
                    t4, t5 = _lanes(tmp, row, CV, 4), _lanes(tmp, row, CV, 5)
                    for j in range(CV):
                        t0[j], t1[j], t2[j], t3[j], t4[j], t5[j] = _gd6(u[j], v[j])
                for nu in range(a):     # column nu: DY[xi, nu] = (GD tmp[:, nu])[xi]
                    at = (nu * P7 + p) * Fq + f0
                    u, v = _lanes(tmp, nu * CV, 0, 0), _lanes(tmp, (6 + nu) * CV, 0, 0)
                    y0, y1, y2, y3 = (_lanes(DY, at, step, 0), _lanes(DY, at, step, 1),
                                      _lanes(DY, at, step, 2), _lanes(DY, at, step, 3))
                    y4, y5 = _lanes(DY, at, step, 4), _lanes(DY, at, step, 5)
                    for j in range(CV):
                        y0[j], y1[j], y2[j], y3[j], y4[j], y5[j] = _gd6(u[j], v[j])


@jit
def _weight_products(V, DY, part, P, P7, C, Cp, Fq, A2):
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
def _data_transform(Vt, Cq, dxh, Wn, TH, TW, a):
    """dxh (Hn, Wn, Cq) += BT^T v BT for every tile p = ty*TW + tx at (2ty, 2tx), v = Vt[p]
    (a, a) per channel: the transpose of winograd._input_transform (overlapping patches add
    up), CV channels per vector. dxh must start at zero."""
    tmp = carray(stack_pointer(SCRATCH_T, Vt.dtype), (SCRATCH_T,))   # (a, a, CV)
    for c0 in range(0, Cq, CV):
        for ty in range(TH):
            for tx in range(TW):
                p = ty * TW + tx
                for xi in range(a):     # rows: tmp[xi, j] = (v[xi] BT)[j]
                    at = (p * a * a + xi * a) * Cq + c0
                    row = xi * 6 * CV
                    v0, v1, v2, v3 = (_lanes(Vt, at, Cq, 0), _lanes(Vt, at, Cq, 1),
                                      _lanes(Vt, at, Cq, 2), _lanes(Vt, at, Cq, 3))
                    t0, t1, t2, t3 = (_lanes(tmp, row, CV, 0), _lanes(tmp, row, CV, 1),
                                      _lanes(tmp, row, CV, 2), _lanes(tmp, row, CV, 3))
                    v4, v5 = _lanes(Vt, at, Cq, 4), _lanes(Vt, at, Cq, 5)
                    t4, t5 = _lanes(tmp, row, CV, 4), _lanes(tmp, row, CV, 5)
                    for j in range(CV):
                        t0[j], t1[j], t2[j], t3[j], t4[j], t5[j] = _btt6(
                            v0[j], v1[j], v2[j], v3[j], v4[j], v5[j])
                for col in range(a):    # columns, added into the patch's column of dxh
                    at = ((2 * ty) * Wn + 2 * tx + col) * Cq + c0
                    t = col * CV
                    t0, t1, t2, t3 = (_lanes(tmp, t, 6 * CV, 0), _lanes(tmp, t, 6 * CV, 1),
                                      _lanes(tmp, t, 6 * CV, 2), _lanes(tmp, t, 6 * CV, 3))
                    d0, d1, d2, d3 = (_lanes(dxh, at, Wn * Cq, 0), _lanes(dxh, at, Wn * Cq, 1),
                                      _lanes(dxh, at, Wn * Cq, 2), _lanes(dxh, at, Wn * Cq, 3))
                    t4, t5 = _lanes(tmp, t, 6 * CV, 4), _lanes(tmp, t, 6 * CV, 5)
                    d4, d5 = _lanes(dxh, at, Wn * Cq, 4), _lanes(dxh, at, Wn * Cq, 5)
                    for j in range(CV):
                        e0, e1, e2, e3, e4, e5 = _btt6(t0[j], t1[j], t2[j], t3[j], t4[j], t5[j])
                        d0[j] += e0
                        d1[j] += e1
                        d2[j] += e2
                        d3[j] += e3
                        d4[j] += e4
                        d5[j] += e5


@jit
def _crop_out(dxh, Wn, Cq, dxn, top, left):
    """dxn (C, H, W) = dxh[top + y, left + x, c]: the gradient of the unpadded input."""
    C, H, W = dxn.shape
    for c in range(C):
        for y in range(H):
            dst = carray(element_pointer(dxn, (c * H + y) * W), (W,))
            src = carray(element_pointer(dxh, ((top + y) * Wn + left) * Cq + c), (W * Cq,))
            for x in range(W):
                dst[x] = src[x * Cq]


@jit
def _chunk(xp, dout, relu_out, relu, r, Hv, xh, V, dh, DY, part, dbp, U2, Vt, dxh, dx, top,
           left, n0, n1):
    """Samples n0..n1-1: the weight gradient into this thread's partial sums `part` (a*a, Cp,
    Fq) and `dbp`; the data gradient into dx, unless dx is empty."""
    N, C, Hpa, Wp = xp.shape
    _, F, OH, OW = dout.shape
    a = r + 1
    TH = (OH + 1) // 2
    TW = (OW + 1) // 2
    Wn = 2 * TW + r - 1
    Cp = (C + CV - 1) // CV * CV
    Cq = U2.shape[2]
    Fq = part.shape[2]
    P7 = (TH * TW + QB - 1) // QB * QB
    for n in range(n0, n1):
        _channels_last(xp[n], Hv, Wp, xh, Wn, Cp)
        _input_transform(xh, Wn, Cp, V, TH, TW, Cp, P7 * Cp, a)
        _dout_channels_last(dout[n], relu_out[n], relu, dh, 2 * TW, Fq, dbp)
        _dout_transform(dh, 2 * TW, Fq, DY, TH, TW, P7, a)
        _weight_products(V, DY, part, TH * TW, P7, C, Cp, Fq, a * a)
        if dx.shape[0] > 0:
            _products(DY, Fq, P7 * Fq, U2, Vt, P7)   # the forward's, summing over the filters
            dxh[:] = 0
            _data_transform(Vt, Cq, dxh, Wn, TH, TW, a)
            _crop_out(dxh, Wn, Cq, dx[n], top, left)


def _backward(xp, dout, relu_out, relu, r, U2, dx, top, left, nchunks):
    """(sum of the weight gradient's partials (a*a, Cp, Fq) in float64, bias gradient (Fq,));
    fills dx (N, C, H, W) unless it is empty (U2: the weights' transform for it)."""
    N, C = xp.shape[:2]
    F, OH, OW = dout.shape[1:]
    a = r + 1
    TH, TW = (OH + 1) // 2, (OW + 1) // 2
    P7 = (TH * TW + QB - 1) // QB * QB
    Cp = (C + CV - 1) // CV * CV
    Fq = (F + FV - 1) // FV * FV
    Cq = U2.shape[2]
    Hn, Wn = 2 * TH + r - 1, 2 * TW + r - 1
    nchunks = max(1, min(N, nchunks))
    dt = xp.dtype
    xh = np.empty((nchunks, Hn * Wn * Cp), dt)
    V = np.zeros((nchunks, a * a * P7 * Cp + QB), dt)     # (+QB: see _weight_products)
    dh = np.empty((nchunks, 2 * TH * 2 * TW * Fq), dt)
    DY = np.zeros((nchunks, a * a * P7 * Fq), dt)   # tiles past TH*TW stay zero
    parts = np.zeros((nchunks, a * a, Cp, Fq), dt)
    dbp = np.zeros((nchunks, Fq))
    Vt = np.empty((nchunks, P7 * a * a * Cq), dt)
    dxh = np.empty((nchunks, Hn * Wn * Cq), dt)
    _backward_chunks(xp, dout, relu_out, relu, r, min(xp.shape[2], OH + r - 1), xh, V, dh, DY,
                     parts, dbp, U2, Vt, dxh, dx, top, left)
    return parts.sum(axis=0, dtype=np.float64), dbp.sum(axis=0)


@pjit
def _backward_chunks(xp, dout, relu_out, relu, r, Hv, xh, V, dh, DY, parts, dbp, U2, Vt, dxh,
                     dx, top, left):
    """The parallel loop alone (see winograd._forward_chunks)."""
    N = xp.shape[0]
    nchunks = xh.shape[0]
    for k in prange(nchunks):
        _chunk(xp, dout, relu_out, relu, r, Hv, xh[k], V[k], dh[k], DY[k], parts[k], dbp[k],
               U2, Vt[k], dxh[k], dx, top, left, k * N // nchunks, (k + 1) * N // nchunks)


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


def winograd_backward(xp, dout, relu_out, relu, w, dw, db, dx, top, left, nchunks):
    """dw (F, C, r, r) +=, db (F,) += and, unless dx is None, dx (N, C, H, W) = the gradients of
    a stride-1 convolution with square r x r filters w (r in winograd.SIZES) of the padded
    input xp, whose unpadded input starts at row `top`, column `left` of xp, given dout
    (through a fused ReLU whose output is relu_out when `relu`; pass dout and False otherwise).
    The data gradient is the transpose of the forward's Winograd form, sharing dout's transform
    with the weight gradient: dx = crop(sum_tiles BT^T [sum_f U[f] * (GD dy GD^T)[f]] BT).
    w is only read for dx (pass None without it). Parallel over `nchunks` chunks of the batch."""
    r = dw.shape[2]
    if dx is None:
        U2 = np.zeros((1, 1, 1), dw.dtype)
        dx = np.zeros((0, 1, 1, 1), dw.dtype)
    else:
        U2 = transform_weights(np.ascontiguousarray(w.transpose(1, 0, 2, 3)))
    total, dbs = _backward(xp, dout, relu_out, relu, r, U2, dx, top, left, nchunks)
    AW, inv = weight_matrices(r)
    _back_transform(total, AW, inv, dw, db, dbs)


def winograd_weight_gradient(xp, dout, relu_out, relu, dw, db, nchunks):
    """winograd_backward without the data gradient (the weights are not needed for it)."""
    winograd_backward(xp, dout, relu_out, relu, None, dw, db, None, 0, 0, nchunks)
