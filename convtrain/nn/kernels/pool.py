"""Pooling kernels: spatial max / average / L2 pooling and pooling across channel groups.

Spatial kernels see the batch as planes: x (P, H, W) with P = N * C (a free reshape of NCHW) and
prange over P, so every thread owns whole planes of the output and of dx (race free).
Window (oh, ow) covers input rows oh*sh - pt .. oh*sh - pt + kh - 1 (columns alike); only the
cells inside the image count: max ignores padded cells, average divides by the number of
in-image cells, L2 sums the squares of in-image cells. The layer guarantees every window holds
at least one in-image cell.

Max and average pooling with 3-wide windows of stride 1 or 2 (3x3 s2 above all) run separably
inside the same kernels: contiguous vector passes over per-thread stack scratch rows (columns
down, then 3-wide across, then every sw-th position); see max_pool_fwd.
"""
import math

import numpy as np
from numba import carray, types
from numba.extending import intrinsic

from ._jit import jit, pjit, prange
from ._stack import element_pointer, stack_pointer

# Elements of each stack scratch buffer of the separable 3-wide kernels (a chunk of output rows,
# each a padded copy of the input width); wider inputs take the general loops.
SCRATCH = 2048
# The argmax of a scratch cell outside the image: never below a real index, so never chosen.
NO_CELL = 2**31 - 1


@intrinsic
def _cast_pointer(typingctx, ptr, dtype):
    """The same address as a pointer to `dtype` (a numba number class such as np.uint64)."""
    if not isinstance(ptr, types.CPointer) or not isinstance(dtype, types.NumberClass):
        return None
    to = dtype.instance_type

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(to).as_pointer())

    return types.CPointer(to)(ptr, dtype), codegen


@jit
def _span(o, s, pad, k, n):
    """(start, end) of the in-image cells of window o along an axis of n cells: stride s,
    window k, `pad` cells of padding before the first."""
    start = o * s - pad
    return max(start, 0), min(start + k, n)


# --- max pooling -------------------------------------------------------------------------------

@jit
def _max_windows(x, y, arg, p, oh0, oh1, kh, kw, sh, sw, pt, pl):
    """Output rows oh0 .. oh1 - 1 of plane p, window by window (the general max pooling loop)."""
    H = x.shape[1]
    W = x.shape[2]
    OW = y.shape[2]
    xp = x[p]
    yp = y[p]
    ap = arg[p]
    for oh in range(oh0, oh1):
        hs, he = _span(oh, sh, pt, kh, H)
        yr = yp[oh]
        ar = ap[oh]
        for ow in range(OW):
            ws, we = _span(ow, sw, pl, kw, W)
            best = xp[hs, ws]
            bi = hs * W + ws
            if we - ws == 3:       # 3 columns (the common 3x3 window): unrolled, branch free
                for ih in range(hs, he):
                    xr = xp[ih, ws:]
                    i0 = ih * W + ws
                    v0 = xr[0]
                    v1 = xr[1]
                    v2 = xr[2]
                    g = v0 > best
                    bi = i0 if g else bi
                    best = v0 if g else best
                    g = v1 > best
                    bi = i0 + 1 if g else bi
                    best = v1 if g else best
                    g = v2 > best
                    bi = i0 + 2 if g else bi
                    best = v2 if g else best
            else:
                for ih in range(hs, he):
                    xr = xp[ih]
                    for iw in range(ws, we):
                        v = xr[iw]
                        if v > best:
                            best = v
                            bi = ih * W + iw
            yr[ow] = best
            ar[ow] = bi


@jit
def _max_down_columns(x, p, hs, he, vm, vi, s, pl, Wb):
    """Scratch row vm[s : s + Wb], vi: column c of plane p, at s + pl, holds the first maximum of
    rows hs .. he - 1 and its flat index; the cells left and right of the image hold -inf and
    NO_CELL. Returns the sum of the rows read: NaN if any of them holds a NaN (or +-inf)."""
    H = x.shape[1]
    W = x.shape[2]
    for c in range(pl):
        vm[s + c] = -np.inf
        vi[s + c] = NO_CELL
    for c in range(pl + W, Wb):
        vm[s + c] = -np.inf
        vi[s + c] = NO_CELL
    m = carray(element_pointer(vm, s + pl), (W,))
    mi = carray(element_pointer(vi, s + pl), (W,))
    r0 = carray(element_pointer(x, (p * H + hs) * W), (W,))
    b0 = hs * W
    check = r0[0] - r0[0]                      # 0 of x's dtype (NaN if r0[0] is not finite)
    if he - hs == 3:                            # the common case: one pass
        r1 = carray(element_pointer(x, (p * H + hs + 1) * W), (W,))
        r2 = carray(element_pointer(x, (p * H + hs + 2) * W), (W,))
        for c in range(W):
            best = r0[c]
            bi = b0 + c
            v = r1[c]
            g = v > best
            best = v if g else best
            bi = b0 + W + c if g else bi
            w = r2[c]
            g = w > best
            m[c] = w if g else best
            mi[c] = b0 + 2 * W + c if g else bi
            check += r0[c] + v + w
        return check
    for c in range(W):
        m[c] = r0[c]
        mi[c] = b0 + c
        check += r0[c]
    for ih in range(hs + 1, he):
        r = carray(element_pointer(x, (p * H + ih) * W), (W,))
        b = ih * W
        for c in range(W):
            v = r[c]
            g = v > m[c]
            m[c] = v if g else m[c]
            mi[c] = b + c if g else mi[c]
            check += v
    return check


@pjit
def max_pool_fwd(x, y, arg, kh, kw, sh, sw, pt, pl):
    """x (P, H, W) -> y (P, OH, OW), arg (P, OH, OW) int32: flat index ih*W + iw of the max.

    Ties go to the first maximum in row-major order; a NaN wins only as a window's first
    in-image cell (it fails every `>`).

    3-wide windows of stride 1 or 2 (3x3 s2 is the common case) run separably, every pass a
    contiguous vector loop (strided loads would be gathers): (1) per output row, the
    first maximum down each input column into a row of scratch (column c at c + pl, -inf and
    NO_CELL outside the image); (2) the 3-wide maximum at every scratch position of a chunk of
    rows, ties to the lower flat index = the first in row-major order; (3) every sw-th position to
    y and arg. Column maxima would let a NaN block the cells below it, so chunks whose input holds
    a NaN (or an inf) take the general loop."""
    P, H, W = x.shape
    OH = y.shape[1]
    OW = y.shape[2]
    Wb = max(W + pl, sw * (OW - 1) + 3)         # scratch row: every window inside it
    R = (SCRATCH - 32) // Wb                    # output rows per chunk
    if kw == 3 and (sw == 1 or sw == 2) and R >= 1:
        pairs = x.itemsize == 4 and arg.itemsize == 4
        for p in prange(P):
            vm = carray(stack_pointer(SCRATCH, x.dtype), (SCRATCH,))
            vi = carray(stack_pointer(SCRATCH, arg.dtype), (SCRATCH,))
            hm = carray(stack_pointer(SCRATCH, x.dtype), (SCRATCH,))
            hi = carray(stack_pointer(SCRATCH, arg.dtype), (SCRATCH,))
            for oh0 in range(0, OH, R):
                nr = min(R, OH - oh0)
                check = 0.0
                for t in range(nr):
                    hs, he = _span(oh0 + t, sh, pt, kh, H)
                    check += _max_down_columns(x, p, hs, he, vm, vi, t * Wb, pl, Wb)
                if check != check:
                    _max_windows(x, y, arg, p, oh0, oh0 + nr, kh, kw, sh, sw, pt, pl)
                    continue
                # 2. whole vectors (the scratch has room): no scalar tail
                for c in range((nr * Wb + 15) // 16 * 16):
                    best = vm[c]
                    bi = vi[c]
                    v = vm[c + 1]
                    i = vi[c + 1]
                    g = (v > best) | ((v == best) & (i < bi))
                    best = v if g else best
                    bi = i if g else bi
                    v = vm[c + 2]
                    i = vi[c + 2]
                    g = (v > best) | ((v == best) & (i < bi))
                    hm[c] = v if g else best
                    hi[c] = i if g else bi
                # 3. window ow of scratch row t is at t * Wb + sw * ow
                for t in range(nr):
                    o = (p * OH + oh0 + t) * OW
                    s = t * Wb
                    if sw == 1:
                        yr = carray(element_pointer(y, o), (OW,))
                        ar = carray(element_pointer(arg, o), (OW,))
                        hr = carray(element_pointer(hm, s), (OW,))
                        ir = carray(element_pointer(hi, s), (OW,))
                        for j in range(OW):
                            yr[j] = hr[j]
                            ar[j] = ir[j]
                    elif pairs:
                        # the low halves of 64-bit pairs: a stride-2 copy without gathers
                        hp = carray(_cast_pointer(element_pointer(hm, s), np.uint64), (OW,))
                        ip = carray(_cast_pointer(element_pointer(hi, s), np.uint64), (OW,))
                        yu = carray(_cast_pointer(element_pointer(y, o), np.uint32), (OW,))
                        au = carray(_cast_pointer(element_pointer(arg, o), np.uint32), (OW,))
                        for j in range(OW):
                            yu[j] = np.uint32(hp[j] & 0xFFFFFFFF)
                            au[j] = np.uint32(ip[j] & 0xFFFFFFFF)
                    else:
                        yr = carray(element_pointer(y, o), (OW,))
                        ar = carray(element_pointer(arg, o), (OW,))
                        for j in range(OW):
                            yr[j] = hm[s + 2 * j]
                            ar[j] = hi[s + 2 * j]
        return
    for p in prange(P):
        _max_windows(x, y, arg, p, 0, OH, kh, kw, sh, sw, pt, pl)


@pjit
def max_pool_bwd(dy, arg, dx):
    """dy (P, OH, OW), arg (P, OH, OW) -> dx (P, H*W), overwritten: each dy goes to its argmax."""
    P, HW = dx.shape
    _, OH, OW = dy.shape
    for p in prange(P):
        dxp = dx[p]
        for i in range(HW):
            dxp[i] = 0
        dyp = dy[p]
        ap = arg[p]
        for oh in range(OH):
            dr = dyp[oh]
            ar = ap[oh]
            for ow in range(OW):
                dxp[ar[ow]] += dr[ow]


@pjit
def max_pool_2x2_fwd(x, y, arg):
    """x (P, H, W) -> y (P, OH, OW), arg (P, OH, OW) int32; 2x2 windows, stride 2, no padding,
    2*OH <= H and 2*OW <= W. Same results as max_pool_fwd (ties: first in row-major order)."""
    P, H, W = x.shape
    OH = y.shape[1]
    OW = y.shape[2]
    for p in prange(P):
        for oh in range(OH):
            r0 = x[p, 2 * oh]
            r1 = x[p, 2 * oh + 1]
            yr = y[p, oh]
            ar = arg[p, oh]
            base = 2 * oh * W
            for ow in range(OW):
                a = r0[2 * ow]
                b = r0[2 * ow + 1]
                c = r1[2 * ow]
                d = r1[2 * ow + 1]
                m = a
                k = 0
                if b > m:
                    m = b
                    k = 1
                if c > m:
                    m = c
                    k = W
                if d > m:
                    m = d
                    k = W + 1
                yr[ow] = m
                ar[ow] = base + 2 * ow + k


@pjit
def max_pool_2x2_bwd(dy, arg, dx):
    """dy (P, OH, OW), arg (P, OH, OW) -> dx (P, H, W), overwritten (2x2 stride 2, no padding)."""
    P, H, W = dx.shape
    OH = dy.shape[1]
    OW = dy.shape[2]
    for p in prange(P):
        for oh in range(OH):
            d0 = dx[p, 2 * oh]
            d1 = dx[p, 2 * oh + 1]
            gr = dy[p, oh]
            ar = arg[p, oh]
            base = 2 * oh * W
            for ow in range(OW):
                g = gr[ow]
                k = ar[ow] - base - 2 * ow
                z = g * 0
                d0[2 * ow] = g if k == 0 else z
                d0[2 * ow + 1] = g if k == 1 else z
                d1[2 * ow] = g if k == W else z
                d1[2 * ow + 1] = g if k == W + 1 else z
            for iw in range(2 * OW, W):  # floor mode: the last column belongs to no window
                d0[iw] = 0
                d1[iw] = 0
        for ih in range(2 * OH, H):     # floor mode: the last row belongs to no window
            dr = dx[p, ih]
            for iw in range(W):
                dr[iw] = 0


# --- average pooling ---------------------------------------------------------------------------

@jit
def _avg_scale(H, W, OH, OW, kh, kw, sh, sw, pt, pl, Wb, dtype):
    """scale[oh * Wb + sw * ow] = 1 / (in-image cells of window (oh, ow)), 0 elsewhere; the
    separable average kernels' divisors in their scratch layout (room for whole vectors)."""
    scale = np.zeros(OH * Wb + SCRATCH, dtype)
    for oh in range(OH):
        hs, he = _span(oh, sh, pt, kh, H)
        for ow in range(OW):
            ws, we = _span(ow, sw, pl, kw, W)
            scale[oh * Wb + sw * ow] = 1.0 / ((he - hs) * (we - ws))
    return scale


@jit
def _sum_down_columns(x, p, hs, he, vm, s, pl, Wb):
    """Scratch row vm[s : s + Wb]: column c of plane p, at s + pl, holds the sum of rows
    hs .. he - 1; the cells left and right of the image hold 0."""
    H = x.shape[1]
    W = x.shape[2]
    for c in range(pl):
        vm[s + c] = 0
    for c in range(pl + W, Wb):
        vm[s + c] = 0
    m = carray(element_pointer(vm, s + pl), (W,))
    r0 = carray(element_pointer(x, (p * H + hs) * W), (W,))
    if he - hs == 3:
        r1 = carray(element_pointer(x, (p * H + hs + 1) * W), (W,))
        r2 = carray(element_pointer(x, (p * H + hs + 2) * W), (W,))
        for c in range(W):
            m[c] = r0[c] + r1[c] + r2[c]
        return
    for c in range(W):
        m[c] = r0[c]
    for ih in range(hs + 1, he):
        r = carray(element_pointer(x, (p * H + ih) * W), (W,))
        for c in range(W):
            m[c] += r[c]


@pjit
def avg_pool_fwd(x, y, kh, kw, sh, sw, pt, pl):
    """x (P, H, W) -> y (P, OH, OW): the mean of the in-image cells of each window.

    3-wide windows of stride 1 or 2 run separably, as in max_pool_fwd: column sums of each output
    row's input rows into scratch (0 outside the image), then 3-wide sums times the divisors, then
    every sw-th position. Sums in x's dtype (the general loop sums in float64)."""
    P, H, W = x.shape
    OH = y.shape[1]
    OW = y.shape[2]
    Wb = max(W + pl, sw * (OW - 1) + 3)
    R = (SCRATCH - 32) // Wb
    if kw == 3 and (sw == 1 or sw == 2) and R >= 1:
        scale = _avg_scale(H, W, OH, OW, kh, kw, sh, sw, pt, pl, Wb, x.dtype)
        pairs = x.itemsize == 4
        for p in prange(P):
            vm = carray(stack_pointer(SCRATCH, x.dtype), (SCRATCH,))
            hm = carray(stack_pointer(SCRATCH, x.dtype), (SCRATCH,))
            for oh0 in range(0, OH, R):
                nr = min(R, OH - oh0)
                for t in range(nr):
                    hs, he = _span(oh0 + t, sh, pt, kh, H)
                    _sum_down_columns(x, p, hs, he, vm, t * Wb, pl, Wb)
                sc = carray(element_pointer(scale, oh0 * Wb), (SCRATCH,))
                for c in range((nr * Wb + 15) // 16 * 16):
                    hm[c] = (vm[c] + vm[c + 1] + vm[c + 2]) * sc[c]
                for t in range(nr):
                    o = (p * OH + oh0 + t) * OW
                    s = t * Wb
                    if sw == 1:
                        yr = carray(element_pointer(y, o), (OW,))
                        hr = carray(element_pointer(hm, s), (OW,))
                        for j in range(OW):
                            yr[j] = hr[j]
                    elif pairs:
                        hp = carray(_cast_pointer(element_pointer(hm, s), np.uint64), (OW,))
                        yu = carray(_cast_pointer(element_pointer(y, o), np.uint32), (OW,))
                        for j in range(OW):
                            yu[j] = np.uint32(hp[j] & 0xFFFFFFFF)
                    else:
                        yr = carray(element_pointer(y, o), (OW,))
                        for j in range(OW):
                            yr[j] = hm[s + 2 * j]
        return
    for p in prange(P):
        xp = x[p]
        yp = y[p]
        for oh in range(OH):
            hs, he = _span(oh, sh, pt, kh, H)
            yr = yp[oh]
            for ow in range(OW):
                ws, we = _span(ow, sw, pl, kw, W)
                s = 0.0
                for ih in range(hs, he):
                    xr = xp[ih]
                    for iw in range(ws, we):
                        s += xr[iw]
                yr[ow] = s / ((he - hs) * (we - ws))


@pjit
def avg_pool_2x2_fwd(x, y):
    """x (P, H, W) -> y (P, OH, OW): 2x2 windows, stride 2, no padding, 2*OH <= H, 2*OW <= W."""
    P = x.shape[0]
    OH = y.shape[1]
    OW = y.shape[2]
    for p in prange(P):
        for oh in range(OH):
            r0 = x[p, 2 * oh]
            r1 = x[p, 2 * oh + 1]
            yr = y[p, oh]
            for ow in range(OW):
                yr[ow] = (r0[2 * ow] + r0[2 * ow + 1] + r1[2 * ow] + r1[2 * ow + 1]) * 0.25


@pjit
def avg_pool_2x2_bwd(dy, dx):
    """dy (P, OH, OW) -> dx (P, H, W), overwritten (2x2 stride 2, no padding)."""
    P, H, W = dx.shape
    OH = dy.shape[1]
    OW = dy.shape[2]
    for p in prange(P):
        for oh in range(OH):
            d0 = dx[p, 2 * oh]
            d1 = dx[p, 2 * oh + 1]
            gr = dy[p, oh]
            for ow in range(OW):
                g = gr[ow] * 0.25
                d0[2 * ow] = g
                d0[2 * ow + 1] = g
                d1[2 * ow] = g
                d1[2 * ow + 1] = g
            for iw in range(2 * OW, W):  # floor mode: the last column belongs to no window
                d0[iw] = 0
                d1[iw] = 0
        for ih in range(2 * OH, H):     # floor mode: the last row belongs to no window
            dr = dx[p, ih]
            for iw in range(W):
                dr[iw] = 0


@pjit
def avg_pool_bwd(dy, dx, kh, kw, sh, sw, pt, pl):
    """dy (P, OH, OW) -> dx (P, H, W), overwritten: dy / count spread over each window.

    3-wide windows of stride 1 or 2, when a plane's scratch rows fit, run separably (the
    transpose of avg_pool_fwd): each output row's dy / count spread over a scratch row (column c
    at c + pl), then each dx row the sum of the scratch rows of the windows that cover it."""
    P, H, W = dx.shape
    OH = dy.shape[1]
    OW = dy.shape[2]
    Wb = max(W + pl, sw * (OW - 1) + 3)
    if kw == 3 and (sw == 1 or sw == 2) and OH * Wb + 32 <= SCRATCH:
        scale = _avg_scale(H, W, OH, OW, kh, kw, sh, sw, pt, pl, Wb, dx.dtype)
        pairs = dx.itemsize == 4
        half = Wb // 2 + 1                      # pairs per scratch row (sw == 2)
        for p in prange(P):
            e = carray(stack_pointer(SCRATCH, dx.dtype), (SCRATCH,))
            g = carray(stack_pointer(SCRATCH, dx.dtype), (SCRATCH,))
            ev = carray(stack_pointer(SCRATCH, dx.dtype), (SCRATCH,))
            od = carray(stack_pointer(SCRATCH, dx.dtype), (SCRATCH,))
            for c in range(Wb + 4):
                g[c] = 0
            for oh in range(OH):
                # g[2 + ow] = dy / count, with zeros around it (windows off the row)
                gr = carray(element_pointer(dy, (p * OH + oh) * OW), (OW,))
                sr = carray(element_pointer(scale, oh * Wb), (Wb,))
                s = oh * Wb
                if sw == 1:
                    for ow in range(OW):
                        g[2 + ow] = gr[ow] * sr[ow]
                    for q in range(Wb):                 # windows q - 2, q - 1, q
                        e[s + q] = g[q] + g[q + 1] + g[q + 2]
                    continue
                for ow in range(OW):
                    g[2 + ow] = gr[ow] * sr[2 * ow]
                for k in range(half):                   # 2k: windows k - 1, k; 2k + 1: k
                    ev[k] = g[k + 1] + g[k + 2]
                    od[k] = g[k + 2]
                if pairs:
                    # interleave through 64-bit pairs (low half first): no scatters
                    eu = carray(_cast_pointer(element_pointer(e, s), np.uint64), (half,))
                    lo = carray(_cast_pointer(element_pointer(ev, 0), np.uint32), (half,))
                    hi = carray(_cast_pointer(element_pointer(od, 0), np.uint32), (half,))
                    for k in range(half):
                        eu[k] = np.uint64(lo[k]) | (np.uint64(hi[k]) << np.uint64(32))
                else:
                    for k in range(half):
                        e[s + 2 * k] = ev[k]
                        e[s + 2 * k + 1] = od[k]
            for ih in range(H):
                o0 = max(-((kh - 1 - ih - pt) // sh), 0)      # ceil((ih + pt - kh + 1) / sh)
                o1 = min((ih + pt) // sh + 1, OH)
                dr = carray(element_pointer(dx, (p * H + ih) * W), (W,))
                if o0 >= o1:                                  # floor mode: in no window
                    for c in range(W):
                        dr[c] = 0
                    continue
                r = carray(element_pointer(e, o0 * Wb + pl), (W,))
                for c in range(W):
                    dr[c] = r[c]
                for oh in range(o0 + 1, o1):
                    r = carray(element_pointer(e, oh * Wb + pl), (W,))
                    for c in range(W):
                        dr[c] += r[c]
        return
    for p in prange(P):
        dxp = dx[p]
        for ih in range(H):
            dr = dxp[ih]
            for iw in range(W):
                dr[iw] = 0
        dyp = dy[p]
        for oh in range(OH):
            hs, he = _span(oh, sh, pt, kh, H)
            gr = dyp[oh]
            for ow in range(OW):
                ws, we = _span(ow, sw, pl, kw, W)
                g = gr[ow] / ((he - hs) * (we - ws))
                for ih in range(hs, he):
                    dr = dxp[ih]
                    for iw in range(ws, we):
                        dr[iw] += g


# --- L2 pooling --------------------------------------------------------------------------------

@pjit
def l2_pool_fwd(x, y, kh, kw, sh, sw, pt, pl, eps):
    """x (P, H, W) -> y (P, OH, OW) = sqrt(eps + sum of squares of the in-image cells)."""
    P, H, W = x.shape
    OH = y.shape[1]
    OW = y.shape[2]
    for p in prange(P):
        xp = x[p]
        yp = y[p]
        for oh in range(OH):
            hs, he = _span(oh, sh, pt, kh, H)
            yr = yp[oh]
            for ow in range(OW):
                ws, we = _span(ow, sw, pl, kw, W)
                s = eps
                for ih in range(hs, he):
                    xr = xp[ih]
                    for iw in range(ws, we):
                        v = np.float64(xr[iw])   # (float() of a float32 stays float32 in numba)
                        s += v * v
                yr[ow] = math.sqrt(s)


@pjit
def l2_pool_bwd(x, y, dy, dx, kh, kw, sh, sw, pt, pl):
    """x (P, H, W), y, dy (P, OH, OW) -> dx (P, H, W), overwritten: dx += dy * x / y per window."""
    P, H, W = dx.shape
    OH = dy.shape[1]
    OW = dy.shape[2]
    for p in prange(P):
        dxp = dx[p]
        xp = x[p]
        for ih in range(H):
            dr = dxp[ih]
            for iw in range(W):
                dr[iw] = 0
        dyp = dy[p]
        yp = y[p]
        for oh in range(OH):
            hs, he = _span(oh, sh, pt, kh, H)
            gr = dyp[oh]
            yr = yp[oh]
            for ow in range(OW):
                ws, we = _span(ow, sw, pl, kw, W)
                g = gr[ow] / yr[ow]
                for ih in range(hs, he):
                    dr = dxp[ih]
                    xr = xp[ih]
                    for iw in range(ws, we):
                        dr[iw] += g * xr[iw]


# --- pooling across channel groups (maxout) ---------------------------------------------------

@pjit
def channel_max_fwd(x, y, arg):
    """x (N, G, S, HW) -> y (N, G, HW), arg (N, G, HW) int32: index 0..S-1 of the max in its group
    (ties: the first)."""
    N, G, S, HW = x.shape
    for n in prange(N):
        for g in range(G):
            xg = x[n, g]
            yg = y[n, g]
            ag = arg[n, g]
            x0 = xg[0]
            for i in range(HW):
                yg[i] = x0[i]
                ag[i] = 0
            for k in range(1, S):
                xk = xg[k]
                for i in range(HW):
                    v = xk[i]
                    if v > yg[i]:
                        yg[i] = v
                        ag[i] = k


@pjit
def channel_max_bwd(dy, arg, dx):
    """dy (N, G, HW), arg (N, G, HW) -> dx (N, G, S, HW), overwritten."""
    N, G, S, HW = dx.shape
    for n in prange(N):
        for g in range(G):
            dg = dy[n, g]
            ag = arg[n, g]
            for k in range(S):
                dk = dx[n, g, k]
                for i in range(HW):
                    dk[i] = dg[i] if ag[i] == k else dg[i] * 0


@pjit
def channel_avg_fwd(x, y):
    """x (N, G, S, HW) -> y (N, G, HW): the mean over each group."""
    N, G, S, HW = x.shape
    inv = 1.0 / S
    for n in prange(N):
        acc = np.zeros(HW)
        for g in range(G):
            for i in range(HW):
                acc[i] = 0.0
            for k in range(S):
                xk = x[n, g, k]
                for i in range(HW):
                    acc[i] += xk[i]
            yg = y[n, g]
            for i in range(HW):
                yg[i] = acc[i] * inv


@pjit
def channel_avg_bwd(dy, dx):
    """dy (N, G, HW) -> dx (N, G, S, HW), overwritten: dy / S to every member of the group."""
    N, G, S, HW = dx.shape
    inv = 1.0 / S
    for n in prange(N):
        for g in range(G):
            dg = dy[n, g]
            for k in range(S):
                dk = dx[n, g, k]
                for i in range(HW):
                    dk[i] = dg[i] * inv


@pjit
def channel_l2_fwd(x, y, eps):
    """x (N, G, S, HW) -> y (N, G, HW) = sqrt(eps + sum over the group of x^2)."""
    N, G, S, HW = x.shape
    for n in prange(N):
        acc = np.empty(HW)
        for g in range(G):
            for i in range(HW):
                acc[i] = eps
            for k in range(S):
                xk = x[n, g, k]
                for i in range(HW):
                    v = np.float64(xk[i])
                    acc[i] += v * v
            yg = y[n, g]
            for i in range(HW):
                yg[i] = math.sqrt(acc[i])


@pjit
def channel_l2_bwd(x, y, dy, dx):
    """x (N, G, S, HW), y, dy (N, G, HW) -> dx (N, G, S, HW), overwritten: dy * x / y."""
    N, G, S, HW = dx.shape
    for n in prange(N):
        for g in range(G):
            dg = dy[n, g]
            yg = y[n, g]
            for k in range(S):
                dk = dx[n, g, k]
                xk = x[n, g, k]
                for i in range(HW):
                    dk[i] = dg[i] * xk[i] / yg[i]
