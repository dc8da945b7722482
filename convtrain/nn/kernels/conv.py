"""Direct 2-D convolution kernels (cross-correlation, as every framework computes it).

Layout NCHW; weight (F, C, KH, KW). Every kernel takes an input that the layer has already
zero-padded (`xp`), so the inner loops have no bounds branches.

Stride 1 (the hot case) uses the "wide row" trick: with the padded input of one sample flattened
to `xf` (C*Hpa*Wp values), output pixel (oh, ow) lives at p = oh*Wp + ow of a wide output whose
rows are Wp long (the last KW-1 columns of each wide row are junk and never copied out), and tap
t = (c, kh, kw) reads `xf[off[t] + p]` with off[t] = c*Hpa*Wp + kh*Wp + kw. So every tap is one
long contiguous stream over p, whatever C, KH, KW are. The forward is a register micro-kernel:
a tile of FB filters x PB positions lives in vector registers (a stack array, see _stack.py)
while the loop runs over all taps, so the only memory traffic per tap is one input vector load
per PB/16 registers and FB weight broadcasts. Where whole output rows fill the vectors better
than the wide runs (OW = 16, 28, 32), the tile covers RB output rows x VB columns instead and
skips the junk columns; short rows with many filters (8x8 and 14x14 maps) turn the tile around:
7 or 8 output columns x 32 filters, filters along the lanes and the input broadcast, no junk at
all. `forward_tiling` picks one per layer shape. The hot loops view the input through raw
pointers (_stack.py): a clamped slice per tap costs more scalar instructions than the 16 FMAs
leave issue slots for. A ReLU after the convolution can be applied in the same pass.
Grad-weight runs over p with 4 filters x 3 taps = 12 running sums (7 streams) that LLVM keeps in
registers; with many channels a channels-last copy of the input lets it run as the same kind of
micro-kernel over valid positions only (no junk columns, no per-sample horizontal reductions).
The data gradient of stride 1 is the forward kernel run on the padded dout with the flipped,
transposed filters (the layer does the flip), so it shares this code.
The wide range is rounded up (forward: to PB, reading junk past the sample, which is harmless;
grad-weight: to 16 when the layer's few extra zero rows give room), so no pass has a scalar tail.

Other strides are reduced to stride 1 (see `pad_phases`): the padded input is split into its
sh*sw stride phases, stacked as channels, and the filters are split the same way (zero taps where
a phase runs past the window), so every stride runs on the same fast kernels. The zero taps cost
ceil(KH/sh)*ceil(KW/sw)*sh*sw / (KH*KW) more multiply-adds (5x5 stride 2: 1.44x).

Rules followed here (see DESIGN.md): prange only over the axis a loop writes; grad-weight uses
per-thread partial buffers and a serial reduction; a prange body calls at most one helper per
iteration (a helper that takes arrays, called inside the hot loop of a parallel region, makes
the reference counts of the shared arrays bounce between the cores).
"""
import numpy as np
from numba import carray

from ._jit import jit, pjit, prange, wide_vectors
from ._stack import element_pointer, stack_pointer

ROUND = 16     # grad-weight: the wide range is rounded up to this many elements
FB = 8         # forward register tile: filters ...
PB = 32 if wide_vectors() else 16   # ... x wide positions (two vectors of 16 or 8 lanes)
TILE_SIZE = FB * PB
RB = 2         # row tile: output rows ...
VB = PB // RB  # ... x columns (one vector each)
FV = PB        # filter-lane tile: 7 or 8 output columns x FV filters (two vectors)
PN = 4 * PB    # narrow forward tile (F <= NARROW): 1 filter x PN positions
NARROW = 4
WIDE, ROWS, LANES_8, LANES_7, NARROW_TILES = 0, 1, 2, 3, 4   # forward_tiling's choices
SB = 8         # channels-last grad-weight: samples per pass over the taps
CHANNELS_LAST_MIN = 24   # fewest input channels for it (fewer would be mostly zero lanes)


# --------------------------------------------------------------------------------------------
# the wide layout (stride 1); kernels/local.py calls these two from Python, never from a kernel:
# numba's cache checks only the file of the kernel it loads, and a kernel's entry holds the code
# of every helper it calls

@jit
def tap_offsets(C, Hpa, Wp, KH, KW):
    """off (C*KH*KW,) int64: the flat offset of tap (c, kh, kw) in one padded sample."""
    off = np.empty(C * KH * KW, np.int64)
    t = 0
    for c in range(C):
        for kh in range(KH):
            for kw in range(KW):
                off[t] = c * Hpa * Wp + kh * Wp + kw
                t += 1
    return off


@jit
def wide_length(off, S, L):
    """The rounded wide length: L rounded up to ROUND if the last tap can read that far."""
    Lr = (L + ROUND - 1) // ROUND * ROUND
    if off[off.shape[0] - 1] + Lr > S:
        return L
    return Lr


@jit
def _fwd_sample(xf, off, wb, bp, acc, T, Lr):
    """acc (Fp, Lr) = bp + sum_t w[:, t] * xf[off[t] : off[t] + Lr]  for one sample (wb: the
    weights in blocks, see _blocked_weights).

    A register micro-kernel: each tile of FB filters x PB wide positions is accumulated over all
    T taps in registers (one unaligned vector load of the input and FB weight broadcasts per tap)
    and stored once. Fp and Lr are multiples of FB and PB; xf must be readable up to
    off[T-1] + Lr.
    """
    Fp = acc.shape[0]
    tile = carray(stack_pointer(TILE_SIZE, xf.dtype), (FB, PB))
    for p0 in range(0, Lr, PB):
        for f0 in range(0, Fp, FB):
            for i in range(FB):         # zeros (a vector memset); the bias is added at the store:
                for j in range(PB):     # per-filter values would take scalar stores
                    tile[i, j] = 0
            for t in range(T):
                xs = carray(element_pointer(xf, off[t] + p0), (PB,))
                ws = carray(element_pointer(wb, f0 * T + t * FB), (FB,))
                for j in range(PB):
                    y = xs[j]
                    for i in range(FB):
                        tile[i, j] += ws[i] * y
            for i in range(FB):
                bi = bp[f0 + i]
                dst = acc[f0 + i, p0:]
                for j in range(PB):
                    dst[j] = tile[i, j] + bi


@jit
def _blocked_weights(w2, Fp, block):
    """w2 (F, T) -> flat (Fp*T,): blocks of `block` filters, each (T, block), filters padded with
    zeros to Fp. A tile's weights for tap t are then contiguous, and its whole pass over the
    taps reads one contiguous block (T*FB values: 25 KB for 800 taps, which stays in L1)."""
    F, T = w2.shape
    wb = np.zeros(Fp * T, w2.dtype)
    for f in range(F):
        blk = (f // block) * block * T + f % block
        for t in range(T):
            wb[blk + t * block] = w2[f, t]
    return wb


@jit
def forward_tiling(F, OH, OW, Wp, T):
    """Which tile conv_forward uses for F filters, T taps and an OH x OW output of a Wp-wide
    padded input: the cheapest by a rough cycle count per computed output (padded filters x
    positions, junk included): T/32 for the FMAs plus the cost of storing it, about 1/8 for
    the wide runs (copied out), 1/16 for row tiles and 5/4 for filter lanes (transposed scalar
    stores: with few taps, as in a first layer, those dominate).

    WIDE: FB filters x PB positions of the wide layout (_fwd_sample);
    ROWS: FB filters x RB rows x VB columns (_fwd_sample_rows): OW near a multiple of VB;
    LANES_8 / LANES_7: 8 or 7 columns x FV filters (_filter_lanes_kernel): short rows;
    NARROW: 1 filter x PN positions of the wide layout, for F <= NARROW.
    """
    if F <= NARROW:
        return NARROW_TILES
    L = (OH - 1) * Wp + OW
    Fp = (F + FB - 1) // FB * FB
    best = WIDE
    cost = (L + PB - 1) // PB * PB * Fp * (T + 4)
    if OH >= RB:
        rows = (OH + RB - 1) // RB * RB * ((OW + VB - 1) // VB * VB) * Fp * (T + 2)
        if rows <= cost:
            best = ROWS
            cost = rows
    Fq = (F + FV - 1) // FV * FV
    for qb, choice in ((7, LANES_7), (8, LANES_8)):
        # (T * 19 // 20: their FMAs run faster than the row tiles', benchmarks/RESULTS.md)
        lanes = OH * ((OW + qb - 1) // qb * qb) * Fq * (T * 19 // 20 + 40)
        if lanes <= cost:
            best = choice
            cost = lanes
    return best


def _filter_lanes_kernel(QB):
    """The filter-lane forward micro-kernel for tiles of QB output columns (a compile-time
    constant: numba caches each closure under its own constants)."""
    tile_size = QB * FV

    @jit
    def fwd_sample_filter_lanes(xf, off, wq, bp, outn, T, Wp):
        """outn (F, OH, OW) = the convolution of one sample, in tiles of QB output columns x FV
        filters: the filters run along the vector lanes (FV/16 vectors of weights per tap) and
        each of the QB input values is broadcast, so a tile can cover exactly the columns of a
        short row (8x8 maps: QB = 8, 14x14: QB = 7), where position-lane tiles waste lanes on
        junk columns. wq: the weights in blocks of FV filters; bp: the bias padded to them."""
        F, OH, OW = outn.shape
        Fq = bp.shape[0]
        tile = carray(stack_pointer(tile_size, xf.dtype), (QB, FV))
        for oh in range(OH):
            for c0 in range(0, OW, QB):
                ow = max(0, min(c0, OW - QB))
                width = min(QB, OW - ow)
                base = oh * Wp + ow
                for f0 in range(0, Fq, FV):
                    for j in range(QB):     # zeros (a vector memset); the bias is added at
                        for i in range(FV):  # the store
                            tile[j, i] = 0
                    for t in range(T):
                        xs = carray(element_pointer(xf, off[t] + base), (QB,))
                        ws = carray(element_pointer(wq, f0 * T + t * FV), (FV,))
                        for i in range(FV):     # (this loop order vectorises over i)
                            wi = ws[i]
                            for j in range(QB):
                                tile[j, i] += wi * xs[j]
                    for i in range(min(FV, F - f0)):
                        bi = bp[f0 + i]
                        dst = carray(element_pointer(outn, ((f0 + i) * OH + oh) * OW + ow), (QB,))
                        for j in range(width):
                            dst[j] = tile[j, i] + bi

    return fwd_sample_filter_lanes


_fwd_lanes_8 = _filter_lanes_kernel(8)
_fwd_lanes_7 = _filter_lanes_kernel(7)


@jit
def _fwd_sample_rows(xf, off, wb, bp, outn, T, Wp):
    """outn (F, OH, OW) = the convolution of one sample, in tiles of FB filters x RB output rows x
    VB columns (needs OH >= RB).

    The same register micro-kernel as _fwd_sample, but each tile covers whole output rows (RB row
    vectors, each read from its own row of the input) instead of a run of the wide layout, so the
    junk columns cost nothing when OW is a multiple of VB, and the tile is stored straight into
    the output. The last tile of rows or columns is moved back to end at the edge (overlapping
    the one before) rather than run past it; for OW < VB the lanes past OW are computed and not
    stored.
    """
    F, OH, OW = outn.shape
    Fp = bp.shape[0]
    tile = carray(stack_pointer(TILE_SIZE, xf.dtype), (FB, RB, VB))
    for r0 in range(0, OH, RB):
        oh = min(r0, OH - RB)
        for c0 in range(0, OW, VB):
            ow = max(0, min(c0, OW - VB))
            width = min(VB, OW - ow)
            base = oh * Wp + ow
            for f0 in range(0, Fp, FB):
                for i in range(FB):     # zeros (a vector memset); the bias is added at the store:
                    for r in range(RB):  # per-filter values would take scalar stores
                        for j in range(VB):
                            tile[i, r, j] = 0
                for t in range(T):
                    ws = carray(element_pointer(wb, f0 * T + t * FB), (FB,))
                    for r in range(RB):
                        xs = carray(element_pointer(xf, off[t] + base + r * Wp), (VB,))
                        for j in range(VB):
                            y = xs[j]
                            for i in range(FB):
                                tile[i, r, j] += ws[i] * y
                for i in range(min(FB, F - f0)):
                    bi = bp[f0 + i]
                    for r in range(RB):
                        dst = carray(element_pointer(outn, ((f0 + i) * OH + oh + r) * OW + ow),
                                     (VB,))
                        if width == VB:
                            for j in range(VB):
                                dst[j] = tile[i, r, j] + bi
                        else:
                            for j in range(width):
                                dst[j] = tile[i, r, j] + bi


@jit
def _fwd_sample_narrow(xf, off, wb, bp, acc, F, T, Lr):
    """_fwd_sample for few filters (the data gradient of a layer with 1-4 input channels): one
    filter x PN positions per tile, so no work is spent on the zero filters of a padded tile."""
    tile = carray(stack_pointer(PN, xf.dtype), (PN,))
    for p0 in range(0, Lr, PN):
        for f in range(F):
            bf = bp[f]
            for j in range(PN):
                tile[j] = bf
            for t in range(T):
                xs = carray(element_pointer(xf, off[t] + p0), (PN,))
                wft = wb[t * FB + f]
                for j in range(PN):
                    tile[j] += wft * xs[j]
            dst = acc[f, p0:]
            for j in range(PN):
                dst[j] = tile[j]


@jit
def _dw_sample(xf, off, dwd, part, T, Lr):
    """part (F, T) += sum_p dwd[:, p] * xf[off[t] + p]  for one sample (dwd is the wide dout)."""
    F = dwd.shape[0]
    F4 = F // 4 * 4
    for f0 in range(0, F4, 4):
        d0 = dwd[f0, :Lr]
        d1 = dwd[f0 + 1, :Lr]
        d2 = dwd[f0 + 2, :Lr]
        d3 = dwd[f0 + 3, :Lr]
        q0 = part[f0]
        q1 = part[f0 + 1]
        q2 = part[f0 + 2]
        q3 = part[f0 + 3]
        t = 0
        while t + 3 <= T:
            x0 = xf[off[t]:off[t] + Lr]
            x1 = xf[off[t + 1]:off[t + 1] + Lr]
            x2 = xf[off[t + 2]:off[t + 2] + Lr]
            s00 = q0[t]
            s01 = q0[t + 1]
            s02 = q0[t + 2]
            s10 = q1[t]
            s11 = q1[t + 1]
            s12 = q1[t + 2]
            s20 = q2[t]
            s21 = q2[t + 1]
            s22 = q2[t + 2]
            s30 = q3[t]
            s31 = q3[t + 1]
            s32 = q3[t + 2]
            for p in range(Lr):
                e0 = d0[p]
                e1 = d1[p]
                e2 = d2[p]
                e3 = d3[p]
                y0 = x0[p]
                y1 = x1[p]
                y2 = x2[p]
                s00 += e0 * y0
                s01 += e0 * y1
                s02 += e0 * y2
                s10 += e1 * y0
                s11 += e1 * y1
                s12 += e1 * y2
                s20 += e2 * y0
                s21 += e2 * y1
                s22 += e2 * y2
                s30 += e3 * y0
                s31 += e3 * y1
                s32 += e3 * y2
            q0[t] = s00
            q0[t + 1] = s01
            q0[t + 2] = s02
            q1[t] = s10
            q1[t + 1] = s11
            q1[t + 2] = s12
            q2[t] = s20
            q2[t + 1] = s21
            q2[t + 2] = s22
            q3[t] = s30
            q3[t + 1] = s31
            q3[t + 2] = s32
            t += 3
        while t < T:
            x0 = xf[off[t]:off[t] + Lr]
            s00 = q0[t]
            s10 = q1[t]
            s20 = q2[t]
            s30 = q3[t]
            for p in range(Lr):
                y0 = x0[p]
                s00 += d0[p] * y0
                s10 += d1[p] * y0
                s20 += d2[p] * y0
                s30 += d3[p] * y0
            q0[t] = s00
            q1[t] = s10
            q2[t] = s20
            q3[t] = s30
            t += 1
    f = F4
    if F - f >= 2:
        d0 = dwd[f, :Lr]
        d1 = dwd[f + 1, :Lr]
        q0 = part[f]
        q1 = part[f + 1]
        t = 0
        while t + 4 <= T:
            x0 = xf[off[t]:off[t] + Lr]
            x1 = xf[off[t + 1]:off[t + 1] + Lr]
            x2 = xf[off[t + 2]:off[t + 2] + Lr]
            x3 = xf[off[t + 3]:off[t + 3] + Lr]
            s00 = q0[t]
            s01 = q0[t + 1]
            s02 = q0[t + 2]
            s03 = q0[t + 3]
            s10 = q1[t]
            s11 = q1[t + 1]
            s12 = q1[t + 2]
            s13 = q1[t + 3]
            for p in range(Lr):
                e0 = d0[p]
                e1 = d1[p]
                y0 = x0[p]
                y1 = x1[p]
                y2 = x2[p]
                y3 = x3[p]
                s00 += e0 * y0
                s01 += e0 * y1
                s02 += e0 * y2
                s03 += e0 * y3
                s10 += e1 * y0
                s11 += e1 * y1
                s12 += e1 * y2
                s13 += e1 * y3
            q0[t] = s00
            q0[t + 1] = s01
            q0[t + 2] = s02
            q0[t + 3] = s03
            q1[t] = s10
            q1[t + 1] = s11
            q1[t + 2] = s12
            q1[t + 3] = s13
            t += 4
        while t < T:
            x0 = xf[off[t]:off[t] + Lr]
            s00 = q0[t]
            s10 = q1[t]
            for p in range(Lr):
                y0 = x0[p]
                s00 += d0[p] * y0
                s10 += d1[p] * y0
            q0[t] = s00
            q1[t] = s10
            t += 1
        f += 2
    if f < F:
        d0 = dwd[f, :Lr]
        q0 = part[f]
        t = 0
        while t + 4 <= T:
            x0 = xf[off[t]:off[t] + Lr]
            x1 = xf[off[t + 1]:off[t + 1] + Lr]
            x2 = xf[off[t + 2]:off[t + 2] + Lr]
            x3 = xf[off[t + 3]:off[t + 3] + Lr]
            s00 = q0[t]
            s01 = q0[t + 1]
            s02 = q0[t + 2]
            s03 = q0[t + 3]
            for p in range(Lr):
                e0 = d0[p]
                s00 += e0 * x0[p]
                s01 += e0 * x1[p]
                s02 += e0 * x2[p]
                s03 += e0 * x3[p]
            q0[t] = s00
            q0[t + 1] = s01
            q0[t + 2] = s02
            q0[t + 3] = s03
            t += 4
        while t < T:
            x0 = xf[off[t]:off[t] + Lr]
            s00 = q0[t]
            for p in range(Lr):
                s00 += d0[p] * x0[p]
            q0[t] = s00
            t += 1


# --------------------------------------------------------------------------------------------
# stride 1

def conv_forward(xp, w, b, out, relu):
    """xp (N, C, Hpa, Wp) padded input, w (F, C, KH, KW), b (F,) -> out (N, F, OH, OW), stride 1;
    with `relu`, out = max(conv, 0) (a ReLU fused into the pass; NaN passes through).

    Overwrites `out`. OW = Wp - KW + 1 exactly; Hpa >= OH + KH - 1 (rows below are never part of
    an output). Also computes the stride-1 data gradient:
    dx = conv_forward(pad(dout), flip(w^T), 0, False).
    Each tiling has its own parallel loop, so a config compiles only the tiles it uses.
    """
    N, C, Hpa, Wp = xp.shape
    F, _, KH, KW = w.shape
    OH, OW = out.shape[2], out.shape[3]
    T = C * KH * KW
    tiling = forward_tiling(F, OH, OW, Wp, T)
    lanes = tiling == LANES_8 or tiling == LANES_7
    block = FV if lanes else FB
    Fp = (F + block - 1) // block * block
    off = tap_offsets(C, Hpa, Wp, KH, KW)
    wb = _blocked_weights(np.ascontiguousarray(w).reshape(F, T), Fp, block)
    bp = np.zeros(Fp, w.dtype)
    bp[:F] = b
    last = int(off[T - 1]) + (OH - 1) * Wp     # how far one sample's taps read: last + a row
    if tiling == ROWS:
        _forward_rows(xp, off, wb, bp, out, relu, T, last + max(OW, VB))
    elif tiling == LANES_8:
        _forward_lanes_8(xp, off, wb, bp, out, relu, T, last + max(OW, 8))
    elif tiling == LANES_7:
        _forward_lanes_7(xp, off, wb, bp, out, relu, T, last + max(OW, 8))
    else:
        step = PN if tiling == NARROW_TILES else PB
        Lr = (last + OW - int(off[T - 1]) + step - 1) // step * step     # the wide run, rounded
        loop = _forward_narrow if tiling == NARROW_TILES else _forward_wide
        loop(xp, off, wb, bp, out, relu, T, Lr, int(off[T - 1]) + Lr)


@jit(inline="always")
def _sample_input(xp, n, reach):
    """Sample n of xp, flat, readable up to `reach`: a view into the batch (junk positions may
    read the next sample: harmless) or, for the last samples, a zero-extended copy."""
    N = xp.shape[0]
    S = xp.size // N
    xall = xp.reshape(N * S)
    if n * S + reach <= N * S:
        return xall[n * S:]
    xf = np.zeros(max(reach, S), xp.dtype)
    xf[:S] = xall[n * S:(n + 1) * S]
    return xf


@jit(inline="always")
def _rectify(outn, relu):
    if relu:    # while the sample's output is still in cache
        on = outn.reshape(outn.size)
        for i in range(on.size):
            v = on[i]
            on[i] = 0 if v < 0 else v


@jit
def _rows_sample(xp, n, reach, off, wb, bp, outn, relu, T):
    _fwd_sample_rows(_sample_input(xp, n, reach), off, wb, bp, outn, T, xp.shape[3])
    _rectify(outn, relu)


@jit
def _lanes_8_sample(xp, n, reach, off, wb, bp, outn, relu, T):
    _fwd_lanes_8(_sample_input(xp, n, reach), off, wb, bp, outn, T, xp.shape[3])
    _rectify(outn, relu)


@jit
def _lanes_7_sample(xp, n, reach, off, wb, bp, outn, relu, T):
    _fwd_lanes_7(_sample_input(xp, n, reach), off, wb, bp, outn, T, xp.shape[3])
    _rectify(outn, relu)


@jit
def _wide_sample(xp, n, reach, off, wb, bp, outn, relu, T, Lr, narrow):
    """The wide-run tilings compute into a (Fp, Lr) buffer; the valid columns are copied out."""
    F, OH, OW = outn.shape
    Wp = xp.shape[3]
    xf = _sample_input(xp, n, reach)
    acc = np.empty((bp.shape[0], Lr), outn.dtype)
    if narrow:
        _fwd_sample_narrow(xf, off, wb, bp, acc, F, T, Lr)
    else:
        _fwd_sample(xf, off, wb, bp, acc, T, Lr)
    for f in range(F):
        for oh in range(OH):
            src = carray(element_pointer(acc, f * Lr + oh * Wp), (OW,))
            dst = carray(element_pointer(outn, (f * OH + oh) * OW), (OW,))
            for ow in range(OW):
                dst[ow] = src[ow]
    _rectify(outn, relu)


# One parallel loop per tiling, so that a config compiles only the tiles it uses: numba compiles
# a parallel loop's whole call tree again, so one loop over all five would compile every tiling.

@pjit
def _forward_rows(xp, off, wb, bp, out, relu, T, reach):
    for n in prange(xp.shape[0]):
        _rows_sample(xp, n, reach, off, wb, bp, out[n], relu, T)


@pjit
def _forward_lanes_8(xp, off, wb, bp, out, relu, T, reach):
    for n in prange(xp.shape[0]):
        _lanes_8_sample(xp, n, reach, off, wb, bp, out[n], relu, T)


@pjit
def _forward_lanes_7(xp, off, wb, bp, out, relu, T, reach):
    for n in prange(xp.shape[0]):
        _lanes_7_sample(xp, n, reach, off, wb, bp, out[n], relu, T)


@pjit
def _forward_wide(xp, off, wb, bp, out, relu, T, Lr, reach):
    for n in prange(xp.shape[0]):
        _wide_sample(xp, n, reach, off, wb, bp, out[n], relu, T, Lr, False)


@pjit
def _forward_narrow(xp, off, wb, bp, out, relu, T, Lr, reach):
    for n in prange(xp.shape[0]):
        _wide_sample(xp, n, reach, off, wb, bp, out[n], relu, T, Lr, True)


@jit
def _dw_chunk_channels_last(xh, dT, part, n0, n1, Wp, OH, OW, KH, KW):
    """part (KH*KW, Fp, Cp) += grad-weight of samples n0..n1-1, as a register micro-kernel.

    xh (N, Hpa*Wp*Cp): the padded input channels-last; dT (N, Fp*OH*OW): dout in blocks of FB
    filters, each (OH*OW, FB), so a tile reads FB contiguous values per position and uses
    every cache line it touches whole.
    For one tap (kh, kw), a tile of FB filters x PB channels sums dT[n, q, f] * xh[n, q + tap, c]
    over the valid output positions q of SB samples in registers (the same shape of loop as
    _fwd_sample: two channel vectors loaded, FB broadcasts), then is added to `part`.
    """
    Fp = part.shape[1]
    Cp = part.shape[2]
    tile = carray(stack_pointer(TILE_SIZE, xh.dtype), (FB, PB))
    for nb in range(n0, n1, SB):
        ne = min(nb + SB, n1)
        for kh in range(KH):
            for kw in range(KW):
                pk = part[kh * KW + kw]
                for f0 in range(0, Fp, FB):
                    for c0 in range(0, Cp, PB):
                        for i in range(FB):     # zeros (a vector memset), added to part at the
                            for j in range(PB):  # end: copying part in would take scalar stores
                                tile[i, j] = 0
                        for n in range(nb, ne):
                            for oh in range(OH):
                                row = ((oh + kh) * Wp + kw) * Cp + c0
                                drow = f0 * OH * OW + oh * OW * FB
                                for ow in range(OW):
                                    xs = carray(element_pointer(xh[n], row + ow * Cp), (PB,))
                                    ws = carray(element_pointer(dT[n], drow + ow * FB), (FB,))
                                    for j in range(PB):
                                        y = xs[j]
                                        for i in range(FB):
                                            tile[i, j] += ws[i] * y
                        for i in range(FB):
                            dst = pk[f0 + i, c0:]
                            for j in range(PB):
                                dst[j] += tile[i, j]


@pjit
def conv_backward_weight_channels_last(xp, dout, relu_out, relu, dw, db, nchunks):
    """conv_backward_weight for layers with many input channels (C >= CHANNELS_LAST_MIN): the
    input is copied channels-last once (zero channels up to a multiple of PB) so that the weight
    gradient runs as a register micro-kernel over valid positions only (no junk columns)."""
    N, C, Hpa, Wp = xp.shape
    F, _, KH, KW = dw.shape
    OH = dout.shape[2]
    OW = dout.shape[3]
    Q = OH * OW
    Cp = (C + PB - 1) // PB * PB
    Fp = (F + FB - 1) // FB * FB
    nchunks = max(1, min(N, nchunks))
    HW = Hpa * Wp
    xh = np.empty((N, HW * Cp), xp.dtype)    # every cell is written below, in parallel
    dT = np.empty((N, Fp * Q), dout.dtype)    # blocks of FB filters (see _dw_chunk_channels_last)
    pdb = np.zeros((N, F), dw.dtype)
    for n in prange(N):
        # transposes in blocks of 16 positions: the block's rows stay in L1 while every channel
        # writes its column (whole planes channel by channel would not stay in L1)
        xs = carray(element_pointer(xp, n * C * HW), (C * HW,))
        xn = carray(element_pointer(xh, n * HW * Cp), (HW * Cp,))
        for i0 in range(0, HW, 16):
            m = min(16, HW - i0)
            for c in range(C):
                src = carray(element_pointer(xs, c * HW + i0), (16,))
                for i in range(m):
                    xn[(i0 + i) * Cp + c] = src[i]
            for c in range(C, Cp):
                for i in range(m):
                    xn[(i0 + i) * Cp + c] = 0
        ds = carray(element_pointer(dout, n * F * Q), (F * Q,))
        ms = carray(element_pointer(relu_out, n * F * Q), (F * Q,))
        dn = carray(element_pointer(dT, n * Q * Fp), (Q * Fp,))
        for q0 in range(0, Q, 16):
            m = min(16, Q - q0)
            for f in range(F):
                src = carray(element_pointer(ds, f * Q + q0), (16,))
                msk = carray(element_pointer(ms, f * Q + q0), (16,))
                tot = 0.0
                blk = (f - f % FB) * Q + f % FB
                for q in range(m):
                    v = src[q]
                    if relu and not msk[q] > 0:
                        v = 0
                    dn[blk + (q0 + q) * FB] = v
                    tot += v
                pdb[n, f] += tot
            for f in range(F, Fp):
                blk = (f - f % FB) * Q + f % FB
                for q in range(m):
                    dn[blk + (q0 + q) * FB] = 0
    parts = np.zeros((nchunks, KH * KW, Fp, Cp), dw.dtype)
    for k in prange(nchunks):
        _dw_chunk_channels_last(xh, dT, parts[k], k * N // nchunks, (k + 1) * N // nchunks,
                                Wp, OH, OW, KH, KW)
    for f in range(F):
        s = db[f]
        for n in range(N):
            s += pdb[n, f]
        db[f] = s
    for k in range(nchunks):
        for f in range(F):
            for c in range(C):
                for kh in range(KH):
                    for kw in range(KW):
                        dw[f, c, kh, kw] += parts[k, kh * KW + kw, f, c]


@pjit
def conv_backward_weight(xp, dout, relu_out, relu, dw, db, nchunks):
    """xp (N, C, Hpa, Wp) padded input, dout (N, F, OH, OW) -> dw (F, C, KH, KW) +=, db (F,) +=.
    With `relu`, dout counts only where relu_out (N, F, OH, OW) > 0: the gradient through a
    ReLU that the forward pass fused (pass dout and False otherwise).

    Stride 1. Parallel over `nchunks` chunks of the batch (pass numba.get_num_threads(); calling
    it in here would stop the kernel from being cached), each into its own partial buffer; the
    partials are then added serially (race free).
    """
    N, C, Hpa, Wp = xp.shape
    F, _, KH, KW = dw.shape
    OH = dout.shape[2]
    OW = dout.shape[3]
    T = C * KH * KW
    S = C * Hpa * Wp
    L = (OH - 1) * Wp + OW
    off = tap_offsets(C, Hpa, Wp, KH, KW)
    Lr = wide_length(off, S, L)
    nchunks = max(1, min(N, nchunks))
    parts = np.zeros((nchunks, F, T), dw.dtype)
    pdb = np.zeros((nchunks, F), dw.dtype)
    for k in prange(nchunks):
        dwd = np.zeros((F, Lr), dout.dtype)   # the wide dout: zeros in the junk columns
        part = parts[k]
        for n in range(k * N // nchunks, (k + 1) * N // nchunks):
            for f in range(F):
                s = pdb[k, f]
                for oh in range(OH):     # raw-pointer rows: views per row cost more than the copy
                    src = carray(element_pointer(dout, ((n * F + f) * OH + oh) * OW), (OW,))
                    msk = carray(element_pointer(relu_out, ((n * F + f) * OH + oh) * OW), (OW,))
                    dst = carray(element_pointer(dwd, f * Lr + oh * Wp), (OW,))
                    for ow in range(OW):
                        v = src[ow]
                        if relu and not msk[ow] > 0:
                            v = 0
                        dst[ow] = v
                        s += v
                pdb[k, f] = s
            _dw_sample(xp[n].reshape(S), off, dwd, part, T, Lr)
    wf = dw.reshape(F, T)
    for k in range(nchunks):
        for f in range(F):
            db[f] += pdb[k, f]
            for t in range(T):
                wf[f, t] += parts[k, f, t]


# --------------------------------------------------------------------------------------------
# padding copies

@pjit
def pad_into(x, relu_out, relu, xp, top, left):
    """x (N, C, H, W) -> xp (N, C, Hp, Wp)[:, :, top:top+H, left:left+W], and zeros in every
    other cell of xp: one parallel pass, so xp can come from np.empty (np.zeros first would be
    a second, single-threaded pass over the whole buffer). With `relu`, x counts only where
    relu_out (shaped like x) > 0 (the data gradient through a fused ReLU)."""
    N, C, H, W = x.shape
    Hp = xp.shape[2]
    Wp = xp.shape[3]
    for n in prange(N):
        for c in range(C):
            # the whole plane zeroed in one vector loop, then the rows copied in: per-row loops
            # of a few columns of border each cost more than writing the (cached) plane twice
            plane = carray(element_pointer(xp, (n * C + c) * Hp * Wp), (Hp * Wp,))
            for i in range(Hp * Wp):
                plane[i] = 0
            for h in range(H):
                src = carray(element_pointer(x, ((n * C + c) * H + h) * W), (W,))
                dst = carray(element_pointer(plane, (top + h) * Wp + left), (W,))
                if relu:
                    msk = carray(element_pointer(relu_out, ((n * C + c) * H + h) * W), (W,))
                    for i in range(W):
                        dst[i] = src[i] if msk[i] > 0 else 0
                else:
                    for i in range(W):
                        dst[i] = src[i]


@pjit
def crop_into(xp, x, top, left):
    """xp (N, C, Hp, Wp) -> x (N, C, H, W) = xp[:, :, top:top+H, left:left+W]."""
    N, C, H, W = x.shape
    for n in prange(N):
        for c in range(C):
            for h in range(H):
                src = xp[n, c, top + h, left:left + W]
                dst = x[n, c, h]
                for i in range(W):
                    dst[i] = src[i]


@pjit
def pad_phases(x, xq, top, left, sh, sw, pa, pb):
    """x (N, C, H, W) -> xq (N, C*pa*pb, Hq, Wq): the zero-padded input split into stride phases.

    xq[n, (c*pa + a)*pb + b, i, j] = xpad[n, c, i*sh + a, j*sw + b] for phases a < pa, b < pb,
    where xpad is x padded by `top` rows and `left` columns. A convolution with stride (sh, sw)
    is then a stride-1 convolution of xq with the filters split the same way. Only the
    in-image values are written: xq must start zeroed.
    """
    N, C, H, W = x.shape
    Hq = xq.shape[2]
    Wq = xq.shape[3]
    for n in prange(N):
        for c in range(C):
            for a in range(pa):
                for b in range(pb):
                    q = xq[n, (c * pa + a) * pb + b]
                    for i in range(Hq):
                        h = i * sh + a - top
                        if h < 0 or h >= H:
                            continue
                        src = x[n, c, h]
                        dst = q[i]
                        for j in range(Wq):
                            w = j * sw + b - left
                            if w >= 0 and w < W:
                                dst[j] = src[w]


@pjit
def merge_phases(dxq, dx, top, left, sh, sw, pa, pb):
    """dxq (N, C*pa*pb, Hq, Wq) -> dx (N, C, H, W), the inverse of pad_phases (for gradients).

    Overwrites `dx`; a pixel of a phase beyond (pa, pb) touches no window and gets 0.
    """
    N, C, H, W = dx.shape
    for n in prange(N):
        for c in range(C):
            for h in range(H):
                a = (h + top) % sh
                i = (h + top) // sh
                dst = dx[n, c, h]
                for w in range(W):
                    b = (w + left) % sw
                    if a < pa and b < pb:
                        dst[w] = dxq[n, (c * pa + a) * pb + b, i, (w + left) // sw]
                    else:
                        dst[w] = 0
