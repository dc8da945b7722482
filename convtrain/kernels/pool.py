"""Pooling kernels: spatial max / average / L2 pooling and pooling across channel groups.

Spatial kernels see the batch as planes: x (P, H, W) with P = N * C (a free reshape of NCHW) and
prange over P, so every thread owns whole planes of the output and of dx (race free).
Window (oh, ow) covers input rows oh*sh - pt .. oh*sh - pt + kh - 1 (columns alike); only the
cells inside the image count: max ignores padded cells, average divides by the number of
in-image cells, L2 sums the squares of in-image cells. The layer guarantees every window holds
at least one in-image cell.
"""
import math

import numpy as np

from ._jit import pjit, prange


# --- max pooling -------------------------------------------------------------------------------

@pjit
def max_pool_fwd(x, y, arg, kh, kw, sh, sw, pt, pl):
    """x (P, H, W) -> y (P, OH, OW), arg (P, OH, OW) int32: flat index ih*W + iw of the max.

    Ties go to the first maximum in row-major order."""
    P, H, W = x.shape
    OH = y.shape[1]
    OW = y.shape[2]
    for p in prange(P):
        xp = x[p]
        yp = y[p]
        ap = arg[p]
        for oh in range(OH):
            h0 = oh * sh - pt
            hs = max(h0, 0)
            he = min(h0 + kh, H)
            yr = yp[oh]
            ar = ap[oh]
            for ow in range(OW):
                w0 = ow * sw - pl
                ws = max(w0, 0)
                we = min(w0 + kw, W)
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


@pjit
def max_pool_bwd(dy, arg, dx):
    """dy (P, OH, OW), arg (P, OH, OW) -> dx (P, H*W), overwritten: each dy goes to its argmax."""
    P = dx.shape[0]
    HW = dx.shape[1]
    OH = dy.shape[1]
    OW = dy.shape[2]
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

@pjit
def avg_pool_fwd(x, y, kh, kw, sh, sw, pt, pl):
    """x (P, H, W) -> y (P, OH, OW): the mean of the in-image cells of each window."""
    P, H, W = x.shape
    OH = y.shape[1]
    OW = y.shape[2]
    for p in prange(P):
        xp = x[p]
        yp = y[p]
        for oh in range(OH):
            h0 = oh * sh - pt
            hs = max(h0, 0)
            he = min(h0 + kh, H)
            yr = yp[oh]
            for ow in range(OW):
                w0 = ow * sw - pl
                ws = max(w0, 0)
                we = min(w0 + kw, W)
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
    """dy (P, OH, OW) -> dx (P, H, W), overwritten: dy / count spread over each window."""
    P, H, W = dx.shape
    OH = dy.shape[1]
    OW = dy.shape[2]
    for p in prange(P):
        dxp = dx[p]
        for ih in range(H):
            dr = dxp[ih]
            for iw in range(W):
                dr[iw] = 0
        dyp = dy[p]
        for oh in range(OH):
            h0 = oh * sh - pt
            hs = max(h0, 0)
            he = min(h0 + kh, H)
            gr = dyp[oh]
            for ow in range(OW):
                w0 = ow * sw - pl
                ws = max(w0, 0)
                we = min(w0 + kw, W)
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
            h0 = oh * sh - pt
            hs = max(h0, 0)
            he = min(h0 + kh, H)
            yr = yp[oh]
            for ow in range(OW):
                w0 = ow * sw - pl
                ws = max(w0, 0)
                we = min(w0 + kw, W)
                s = eps
                for ih in range(hs, he):
                    xr = xp[ih]
                    for iw in range(ws, we):
                        v = float(xr[iw])
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
            h0 = oh * sh - pt
            hs = max(h0, 0)
            he = min(h0 + kh, H)
            gr = dyp[oh]
            yr = yp[oh]
            for ow in range(OW):
                w0 = ow * sw - pl
                ws = max(w0, 0)
                we = min(w0 + kw, W)
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
                    v = float(xk[i])
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
