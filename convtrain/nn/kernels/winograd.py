"""Winograd F(2x2, 5x5) convolution, its data gradient and its weight gradient: stride 1, 5x5
filters, many channels.

Forward. Each 2x2 block of outputs (a "tile") is computed from an alpha x alpha patch of the
padded input (alpha = r + 1 = 6) as  Y = AT [ (G w G^T) * (BT d B) ] A  (Lavin & Gray, "Fast
Algorithms for Convolutional Neural Networks", 2016). The elementwise product summed over
channels is, for each of the alpha^2 transform points, a matrix product over the channels, so the
multiply-adds per output drop from 25 to 9 (2.8x). The points are 0, 1, -1, 2, -2 and infinity;
float32 results differ from the direct convolution by ~1e-5 of the output's scale. The
hand-written transforms fix r = SIZE = 5; 3x3 layers run the direct kernels (kernels/conv.py):
F(2x2, 3x3) saves less and did not pay here (benchmarks/RESULTS.md, "Kernel notes").

Per sample (a thread takes a contiguous chunk of the batch, with its own scratch):
  1. the padded input is copied channels-last, so that the transforms run 16 channels per vector;
  2. input transform: V[tile, xi*a + nu, c] = (BT d B)[xi, nu] for every tile and channel;
  3. one register micro-kernel product per transform point: M[tile, k] = V[:, k] @ U[k], in
     tiles of QB Winograd tiles x FV filters (filters along the vector lanes, V broadcast: the
     filter-lane tile of kernels/conv.py);
  4. output transform (AT m A), bias and the fused ReLU, stored into out.
The weights are transformed once per call (`transform_weights`, float64 arithmetic).

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

Per sample of the backward pass: input copy and transform, dout copy (through the fused ReLU's
mask, summing the bias gradient) and transform (shared by both gradients), the two products (the
weight gradient's into a per-thread partial, added serially at the end), the data transform and
crop. The three passes share their helpers, so they live in this one module: numba's cache checks
only the file of the kernel it loads, and a kernel's entry holds the code of every helper it calls.
"""
import functools

import numpy as np
from numba import carray

from ._jit import jit, pjit, prange
from ._stack import element_pointer, stack_pointer

SIZE = 5  # the filter size the hand-written transforms are for (alpha = SIZE + 1 = 6)
CV = 16   # transforms: channels (or filters) per vector
QB = 7    # product tile: Winograd tiles ...
FV = 32   # ... x filters (two vectors)
TILE_SIZE = QB * FV   # (stack_pointer needs module-level constants)
SCRATCH = 6 * 6 * CV      # the input and data transforms' rows
SCRATCH_DY = 2 * 6 * CV   # dout's transform's rows


def evaluation(a, n):
    """(a, n): the values of a degree n-1 polynomial (coefficients, lowest first) at the points
    0, 1, -1, 2, -2 (the first a-1 of them) and at infinity (its leading coefficient)."""
    E = np.zeros((a, n))
    for j, p in enumerate([0, 1, -1, 2, -2][:a - 1]):
        E[j] = [p ** k for k in range(n)]
    E[a - 1, n - 1] = 1
    return E


_INTEGER_BT = np.array([   # what _bt6 computes
    [4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], float)


@functools.cache
def matrices():
    """(AT (2, a), G (a, r), BT (a, a), scale (a,)) for F(2, r), r = SIZE, a = r + 1, in float64.

    Correlation y = M(g)^T d, where M(g) is the (a x 2) Toeplitz matrix of the linear
    convolution s = g * h; Toom-Cook writes M(g) = C diag(E_r g) E_2 with E_n = evaluation(a, n)
    and C the interpolation (inverse of E_a). So AT = E_2^T, G = E_r and BT = C^T; each row j of
    BT is then multiplied by scale[j] to give the small integers the hand-written transforms
    use (_INTEGER_BT), and G's rows are divided by it.
    """
    a = SIZE + 1
    BT = np.linalg.inv(evaluation(a, a)).T
    G = evaluation(a, SIZE)
    scale = np.empty(a)
    for j in range(a):
        k = np.flatnonzero(_INTEGER_BT[j])[0]
        scale[j] = _INTEGER_BT[j, k] / BT[j, k]
        BT[j] *= scale[j]
        G[j] /= scale[j]
    assert np.allclose(BT, _INTEGER_BT), "the hand-written input transform does not match"
    return evaluation(a, 2).T, G, BT, scale


def _pays(C, F, KH, KW, OH, OW, min_tiles):
    """A 5x5 window, at least CV channels and filters (the transforms' lanes), at least
    min_tiles tiles per sample, and a cost estimate 10 % under the direct kernels'
    multiply-adds. The estimate's constants were measured on this code (benchmarks/RESULTS.md,
    "Kernel notes"): the products run 1.3 times slower than the direct kernels per multiply-add
    (short reductions, padded tiles and filters count), and the transforms cost about 10 direct
    multiply-adds per transformed value."""
    if KH != SIZE or KW != SIZE or C < CV or F < CV:
        return False
    a = KH + 1
    tiles = ((OH + 1) // 2) * ((OW + 1) // 2)
    padded = (tiles + QB - 1) // QB * QB
    Fq = (F + FV - 1) // FV * FV
    winograd = 1.3 * padded * a * a * C * Fq + 10 * tiles * a * a * (C + F)
    return tiles >= min_tiles and 1.1 * winograd < OH * OW * KH * KW * C * F


def use_forward(C, F, KH, KW, OH, OW):
    """Whether the forward of this stride-1 layer runs Winograd: it needs at least 32 tiles a
    sample (maps of 11x11 and more); on smaller maps the per-sample transforms and scratch cost
    more than the products save."""
    return _pays(C, F, KH, KW, OH, OW, 32)


def use_backward(C, F, KH, KW, OH, OW):
    """Whether the gradients of this stride-1 layer run Winograd. They share dout's transform and
    their products reduce over longer axes, so they pay from 16 tiles a sample (8x8 maps)."""
    return _pays(C, F, KH, KW, OH, OW, 16)


def transform_weights(w):
    """U (a*a, C, Fq) = G w[f, c] G^T for every filter and channel, filters padded with zeros to
    a multiple of FV (the product tile's lanes)."""
    F, C, r, _ = w.shape
    U = np.zeros(((r + 1) ** 2, C, (F + FV - 1) // FV * FV), w.dtype)
    _transform_weights(w, matrices()[1], U)
    return U


@pjit
def _transform_weights(w, G, U):
    F, C, r, _ = w.shape
    a = G.shape[0]
    for c in prange(C):
        t = carray(stack_pointer(SCRATCH, G.dtype), (6, 6))     # (a, r): G w
        for f in range(F):
            for xi in range(a):
                for q in range(r):
                    s = 0.0
                    for k in range(r):
                        s += G[xi, k] * w[f, c, k, q]
                    t[xi, q] = s
            for xi in range(a):
                for nu in range(a):
                    s = 0.0
                    for q in range(r):
                        s += t[xi, q] * G[nu, q]
                    U[xi * a + nu, c, f] = s


# --------------------------------------------------------------------------------------------
# the transforms, one vector of lanes at a time (inlined into the loops over lanes)

@jit(inline="always")
def _twice(v):      # (not 2 * v: an integer or float literal would promote float32 to float64)
    return v + v


@jit(inline="always")
def _bt6(d0, d1, d2, d3, d4, d5):
    return (_twice(_twice(d0 - d2)) - d2 + d4,
            d3 + d4 - _twice(_twice(d1 + d2)),
            d4 - d3 + _twice(_twice(d1 - d2)),
            d4 - d2 + _twice(d3 - d1),
            d4 - d2 + _twice(d1 - d3),
            _twice(_twice(d1 - d3)) - d3 + d5)


@jit(inline="always")
def _at6(m0, m1, m2, m3, m4, m5):
    return m0 + m1 + m2 + m3 + m4, m1 - m2 + _twice(m3 - m4) + m5


@jit(inline="always")
def _gd6(u, v):
    w = v + v
    return u, u + v, u - v, u + w, u - w, v


@jit(inline="always")
def _btt6(v0, v1, v2, v3, v4, v5):     # BT^T v, BT the forward's (_bt6)
    w = v3 - v4
    return (v0 + v0 + v0 + v0,
            _twice(_twice(v2 - v1 + v5) + v4 - v3),
            -(v0 + v3 + v4) - _twice(_twice(v0 + v1 + v2)),
            v1 - v2 + w + w - _twice(_twice(v5)) - v5,
            v0 + v1 + v2 + v3 + v4,
            v5)


@jit(inline="always")
def _lanes(arr, start, stride, k):
    """A view of the values of arr from start + k*stride: hot loops index views like this
    with the bare loop counter (`v[j]`, not `arr[base + j]`), which keeps numba from adding its
    negative-index wrap-around, and LLVM from turning the loads into gathers."""
    return carray(element_pointer(arr, start + k * stride), (FV,))


@jit(inline="always")
def _six(arr, start, stride):
    """_lanes(arr, start, stride, k) for k = 0..5: the six rows or columns of a transform's
    patch. (Unpack the result into six names: a loop over a tuple's items kept LLVM from
    vectorising the loop over lanes.)"""
    return (_lanes(arr, start, stride, 0), _lanes(arr, start, stride, 1),
            _lanes(arr, start, stride, 2), _lanes(arr, start, stride, 3),
            _lanes(arr, start, stride, 4), _lanes(arr, start, stride, 5))


# --------------------------------------------------------------------------------------------
# the forward pass, one sample at a time

@jit
def _channels_last(xs, Hv, Wv, xh, Wn, Cp):
    """xh (Hn, Wn, Cp) = xs (C, >= Hv, Wp) transposed, zero outside the first Hv rows, Wv columns
    and C channels (the last tile row or column may reach past the padded input, and its
    values must be finite: they are multiplied by the transform's zeros)."""
    C, _, Wp = xs.shape
    Hn = xh.shape[0] // (Wn * Cp)
    xf = xs.reshape(xs.size)
    for y in range(Hn):
        row = carray(element_pointer(xh, y * Wn * Cp), (Wn * Cp,))
        if y >= Hv:
            for i in range(Wn * Cp):
                row[i] = 0
            continue
        for x in range(Wv, Wn):
            for c in range(Cp):
                row[x * Cp + c] = 0
        for x0 in range(0, Wv, 16):     # blocks of 16 columns: their rows stay in L1
            m = min(16, Wv - x0)
            for c in range(C):
                src = carray(element_pointer(xf, (c * xs.shape[1] + y) * Wp + x0), (16,))
                for i in range(m):
                    row[(x0 + i) * Cp + c] = src[i]
            for c in range(C, Cp):
                for i in range(m):
                    row[(x0 + i) * Cp + c] = 0


@jit
def _input_transform(xh, Wn, Cp, V, TH, TW, sp, sk, a):
    """V[p*sp + (xi*a + nu)*sk + c] = (BT d B)[xi, nu] of tile p = ty*TW + tx, channel c, where
    d is the a x a patch of xh at (2ty, 2tx): tile-major (sp = a*a*Cp, sk = Cp) for the
    forward's products (so that its stores stream), point-major (sp = Cp, sk = P7*Cp) for the
    weight gradient's. Rows first into stack scratch, then columns; every inner loop runs over
    CV channels (one vector)."""
    tmp = carray(stack_pointer(SCRATCH, V.dtype), (SCRATCH,))   # (a, a, CV), a <= 6
    step = a * sk       # V: from xi to xi + 1
    for c0 in range(0, Cp, CV):     # (a block of channels of xh stays in L1 across the tiles)
        for ty in range(TH):
            for tx in range(TW):
                p = ty * TW + tx
                for k in range(a):      # row k of the patch: tmp[k, nu] = (d[k] B)[nu]
                    at = ((2 * ty + k) * Wn + 2 * tx) * Cp + c0
                    d0, d1, d2, d3, d4, d5 = _six(xh, at, Cp)
                    t0, t1, t2, t3, t4, t5 = _six(tmp, k * 6 * CV, CV)
                    for j in range(CV):
                        t0[j], t1[j], t2[j], t3[j], t4[j], t5[j] = _bt6(
                            d0[j], d1[j], d2[j], d3[j], d4[j], d5[j])
                for nu in range(a):     # column nu: V[xi, nu] = (BT tmp[:, nu])[xi]
                    t0, t1, t2, t3, t4, t5 = _six(tmp, nu * CV, 6 * CV)
                    v0, v1, v2, v3, v4, v5 = _six(V, p * sp + nu * sk + c0, step)
                    for j in range(CV):
                        v0[j], v1[j], v2[j], v3[j], v4[j], v5[j] = _bt6(
                            t0[j], t1[j], t2[j], t3[j], t4[j], t5[j])


@jit
def _products(V, sp, sk, U, M, P7):
    """M[p, k] (Q) = sum_r V[p*sp + k*sk + r] U[k, r] (Q) for every tile p < P7 and transform
    point k, U (a*a, R, Q), as a register micro-kernel: QB tiles x FV lanes of Q accumulate over
    r in registers (per step: QB broadcasts of V, FV/16 vector loads of U, QB*FV/16 FMAs). The
    forward sums over channels (V tile-major: sp = a*a*Cp, sk = Cp; Q: filters); the data
    gradient over filters (dout's transform point-major: sp = Fq, sk = P7*Fq; Q: channels)."""
    A2, R, Q = U.shape
    tile = carray(stack_pointer(TILE_SIZE, V.dtype), (QB, FV))
    for k in range(A2):
        for p0 in range(0, P7, QB):
            vbase = p0 * sp + k * sk
            for f0 in range(0, Q, FV):
                for j in range(QB):
                    for i in range(FV):
                        tile[j, i] = 0
                for r in range(R):
                    vs = carray(element_pointer(V, vbase + r), (QB * sp,))
                    us = carray(element_pointer(U, (k * R + r) * Q + f0), (FV,))
                    for i in range(FV):
                        ui = us[i]
                        for j in range(QB):
                            tile[j, i] += ui * vs[j * sp]
                # (a trip count LLVM cannot see keeps it from unrolling this copy into 224
                # scalar moves, which cost as much as the 32 channels of FMAs above)
                nf = min(FV, Q - f0)
                for j in range(QB):
                    dst = carray(element_pointer(M, ((p0 + j) * A2 + k) * Q + f0), (FV,))
                    for i in range(nf):
                        dst[i] = tile[j, i]


@jit
def _output_transform(M, bp, outn, relu, TW, P7, Fq, a):
    """outn (F, OH, OW) = AT m A + bp (padded to Fq) for every tile (the 2x2 outputs inside the
    map), with the ReLU when `relu`. The transforms run over the filters (contiguous in M) into
    a row of tiles `y` (TW, 2, 2, Fq); that row is then transposed into the two output rows."""
    F, OH, OW = outn.shape
    step = Fq           # M: from one transform point to the next
    s = np.empty((2, 6, Fq), M.dtype)
    y = np.empty((TW, 2, 2, Fq), M.dtype)
    for ty in range((OH + 1) // 2):
        for tx in range(TW):
            for nu in range(a):         # rows: s[., nu] = AT m[:, nu]
                at = ((ty * TW + tx) * a * a + nu) * Fq
                s0, s1 = _lanes(s, nu * Fq, 0, 0), _lanes(s, (6 + nu) * Fq, 0, 0)
                m0, m1, m2, m3, m4, m5 = _six(M, at, a * step)
                for f in range(Fq):
                    s0[f], s1[f] = _at6(m0[f], m1[f], m2[f], m3[f], m4[f], m5[f])
            for row in range(2):        # columns: y[tx, row] = s[row] A + bias
                out = ((tx * 2 + row) * 2) * Fq
                y0, y1 = _lanes(y, out, Fq, 0), _lanes(y, out, Fq, 1)
                r0, r1, r2, r3, r4, r5 = _six(s, row * 6 * Fq, Fq)
                for f in range(Fq):
                    y0[f], y1[f] = _at6(r0[f], r1[f], r2[f], r3[f], r4[f], r5[f])
                for f in range(Fq):
                    y0[f] += bp[f]
                    y1[f] += bp[f]
        if relu:    # (NaN passes through)
            yf = y.reshape(y.size)
            for i in range(y.size):
                v = yf[i]
                yf[i] = 0 if v < 0 else v
        for row in range(min(2, OH - 2 * ty)):
            for f in range(F):
                dst = carray(element_pointer(outn, (f * OH + 2 * ty + row) * OW), (OW,))
                for tx in range(OW // 2):
                    dst[2 * tx] = y[tx, row, 0, f]
                    dst[2 * tx + 1] = y[tx, row, 1, f]
                if OW % 2:
                    dst[OW - 1] = y[TW - 1, row, 0, f]


@jit
def _forward_chunk(xp, U, bp, out, relu, r, Hv, xh, V, M, n0, n1):
    """Samples n0..n1-1 with this thread's scratch (see the module docstring)."""
    N, C, Hpa, Wp = xp.shape
    _, F, OH, OW = out.shape
    a = r + 1
    TH = (OH + 1) // 2
    TW = (OW + 1) // 2
    Wn = 2 * TW + r - 1
    Cp = (C + CV - 1) // CV * CV
    P7 = (TH * TW + QB - 1) // QB * QB
    for n in range(n0, n1):
        _channels_last(xp[n], Hv, Wp, xh, Wn, Cp)
        _input_transform(xh, Wn, Cp, V, TH, TW, a * a * Cp, Cp, a)
        _products(V, a * a * Cp, Cp, U, M, P7)
        _output_transform(M, bp, out[n], relu, TW, P7, U.shape[2], a)


def winograd_forward(xp, U, b, out, relu, r, nchunks):
    """out (N, F, OH, OW) = the stride-1 convolution of the padded input xp (N, C, Hpa, Wp)
    with r x r filters whose transform is U (transform_weights), plus b, with a fused ReLU when
    `relu`: what conv_forward computes, for the layers `use_forward` accepts. Rows of xp from
    OH + r - 1 on are never read. Parallel over `nchunks` chunks of the batch, each with its
    own scratch."""
    N, C = xp.shape[:2]
    OH, OW = out.shape[2:]
    a = r + 1
    TH, TW = (OH + 1) // 2, (OW + 1) // 2
    P7 = (TH * TW + QB - 1) // QB * QB
    Cp = (C + CV - 1) // CV * CV
    Fq = U.shape[2]
    nchunks = max(1, min(N, nchunks))
    xh = np.empty((nchunks, (2 * TH + r - 1) * (2 * TW + r - 1) * Cp), xp.dtype)
    V = np.zeros((nchunks, a * a * P7 * Cp), xp.dtype)   # tiles past TH*TW stay zero
    M = np.empty((nchunks, a * a * P7 * Fq), xp.dtype)
    bp = np.zeros(Fq, U.dtype)
    bp[:b.shape[0]] = b
    _forward_chunks(xp, U, bp, out, relu, r, min(xp.shape[2], OH + r - 1), xh, V, M)


@pjit
def _forward_chunks(xp, U, bp, out, relu, r, Hv, xh, V, M):
    """The parallel loop alone: the allocations stay outside, where they do not compile as
    parallel loops of their own (a shorter cold compile)."""
    N = xp.shape[0]
    nchunks = xh.shape[0]
    for k in prange(nchunks):
        _forward_chunk(xp, U, bp, out, relu, r, Hv, xh[k], V[k], M[k],
               k * N // nchunks, (k + 1) * N // nchunks)


# --------------------------------------------------------------------------------------------
# the gradients

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
    tmp = carray(stack_pointer(SCRATCH_DY, DY.dtype), (SCRATCH_DY,))   # (2, a, CV): rows
    step = a * P7 * Fq  # DY: from xi to xi + 1
    for ty in range(TH):
        for tx in range(TW):
            p = ty * TW + tx
            for f0 in range(0, Fq, CV):
                for i in range(2):      # row i of the block: tmp[i, nu] = (dy[i] GD^T)[nu]
                    at = ((2 * ty + i) * Wn + 2 * tx) * Fq + f0
                    u, v = _lanes(dh, at, Fq, 0), _lanes(dh, at, Fq, 1)
                    t0, t1, t2, t3, t4, t5 = _six(tmp, i * 6 * CV, CV)
                    for j in range(CV):
                        t0[j], t1[j], t2[j], t3[j], t4[j], t5[j] = _gd6(u[j], v[j])
                for nu in range(a):     # column nu: DY[xi, nu] = (GD tmp[:, nu])[xi]
                    u, v = _lanes(tmp, nu * CV, 0, 0), _lanes(tmp, (6 + nu) * CV, 0, 0)
                    y0, y1, y2, y3, y4, y5 = _six(DY, (nu * P7 + p) * Fq + f0, step)
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
                nf = min(FV, Fq - f0)   # (not a constant: see _products)
                for j in range(rows):
                    dst = carray(element_pointer(part, (k * Cp + c0 + j) * Fq + f0), (FV,))
                    for i in range(nf):
                        dst[i] += tile[j, i]


@jit
def _data_transform(Vt, Cq, dxh, Wn, TH, TW, a):
    """dxh (Hn, Wn, Cq) += BT^T v BT for every tile p = ty*TW + tx at (2ty, 2tx), v = Vt[p]
    (a, a) per channel: the transpose of _input_transform (overlapping patches add up), CV
    channels per vector. dxh must start at zero."""
    tmp = carray(stack_pointer(SCRATCH, Vt.dtype), (SCRATCH,))   # (a, a, CV)
    for c0 in range(0, Cq, CV):
        for ty in range(TH):
            for tx in range(TW):
                p = ty * TW + tx
                for xi in range(a):     # rows: tmp[xi, j] = (v[xi] BT)[j]
                    v0, v1, v2, v3, v4, v5 = _six(Vt, (p * a * a + xi * a) * Cq + c0, Cq)
                    t0, t1, t2, t3, t4, t5 = _six(tmp, xi * 6 * CV, CV)
                    for j in range(CV):
                        t0[j], t1[j], t2[j], t3[j], t4[j], t5[j] = _btt6(
                            v0[j], v1[j], v2[j], v3[j], v4[j], v5[j])
                for col in range(a):    # columns, added into the patch's column of dxh
                    t0, t1, t2, t3, t4, t5 = _six(tmp, col * CV, 6 * CV)
                    d0, d1, d2, d3, d4, d5 = _six(dxh, ((2 * ty) * Wn + 2 * tx + col) * Cq + c0,
                                                  Wn * Cq)
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
def _backward_chunk(xp, dout, relu_out, relu, r, Hv, xh, V, dh, DY, part, dbp, U2, Vt, dxh, dx,
                    top, left, n0, n1):
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
    """The parallel loop alone (see _forward_chunks)."""
    N = xp.shape[0]
    nchunks = xh.shape[0]
    for k in prange(nchunks):
        _backward_chunk(xp, dout, relu_out, relu, r, Hv, xh[k], V[k], dh[k], DY[k], parts[k],
                        dbp[k], U2, Vt[k], dxh[k], dx, top, left, k * N // nchunks,
                        (k + 1) * N // nchunks)


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


def weight_matrices():
    """(AW (r, a), inv (a, a)): the back transform and the inverse of BT's row scales on both
    sides (BT here is the forward's integer matrix, scale[j] times the exact one)."""
    s = matrices()[3]
    return evaluation(SIZE + 1, SIZE).T, 1.0 / np.outer(s, s)


def winograd_backward(xp, dout, relu_out, relu, w, dw, db, dx, top, left, nchunks):
    """dw (F, C, r, r) +=, db (F,) += and, unless dx is None, dx (N, C, H, W) = the gradients of
    a stride-1 convolution with square r x r filters w (r = SIZE) of the padded
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
    AW, inv = weight_matrices()
    _back_transform(total, AW, inv, dw, db, dbs)


def winograd_weight_gradient(xp, dout, relu_out, relu, dw, db, nchunks):
    """winograd_backward without the data gradient (the weights are not needed for it)."""
    winograd_backward(xp, dout, relu_out, relu, None, dw, db, None, 0, 0, nchunks)
