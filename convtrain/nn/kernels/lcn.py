"""Local contrast normalisation: subtractive, divisive, or both (LCN), fused in one kernel pair.

Notation per sample (HW = H * W pixels, flat row-major; w = g g^T with g the 1-D window, sum 1):
    A(u)(i, j) = sum_pq w(p, q) u(i + p - r, j + q - r)   zero-padded, r = K // 2; done separably
                                                           (rows then columns), O(HW * K)
    icoef      = 1 / (C * coef), coef = A(ones): the window mass inside the image (border fix)
    S = sum_c x,  X2 = sum_c x^2                          one pass over the channels
    M = A(S) * icoef            (sub; else 0)             local mean over space and channels
    Q = sum_c (x - M)^2 = X2 - 2 M S + C M^2              (computed in float64)
    sigma = sqrt(A(Q) * icoef)  (div)                     local RMS of x - M
    den = max(sigma, threshold)                           (torch mode)
        = max(sigma, max(mean_ij sigma, threshold))       (jarrett mode)
    y = (x - M) / den                                     one more pass over the channels
A is self-adjoint (symmetric window, same zero padding), so the backward pass uses A again.
Per-pixel sums and statistics are float64 (N, HW) arrays, accumulated from np.float64(x) (under
numba `float(x)` of a float32 stays float32, and X2 - 2 M S + C M^2 cancels: x = 100 + 0.01 noise
would lose every digit). The channel passes run in x's dtype on x - m, with m = M rounded to that
dtype: x - m is exact where x is close to M, and the rounding M - m is applied per pixel in
float64, so a large common offset costs the float32 output no precision.
"""
import math

import numpy as np

from ._jit import jit, pjit, prange


@jit
def _filter(src, dst, tmp, g, H, W):
    """src, dst, tmp (H*W,) float64: dst = A(src), separable zero-padded correlation with g."""
    K = g.shape[0]
    r = K // 2
    for i in range(H):                              # rows: tmp[i] = sum_p g[p] src[i + p - r]
        tr = tmp[i * W:(i + 1) * W]
        for j in range(W):
            tr[j] = 0.0
        for p in range(max(0, r - i), min(K, H + r - i)):
            gp = g[p]
            sr = src[(i + p - r) * W:(i + p - r + 1) * W]
            for j in range(W):
                tr[j] += gp * sr[j]
    for i in range(H):                              # columns: dst[i, j] = sum_q g[q] tmp[i, j+q-r]
        tr = tmp[i * W:(i + 1) * W]
        dr = dst[i * W:(i + 1) * W]
        for j in range(W):
            dr[j] = 0.0
        for q in range(K):
            lo = max(0, r - q)                      # output columns whose input j + q - r is inside
            hi = min(W, W + r - q)
            if hi <= lo:
                continue
            gq = g[q]
            ts = tmp[i * W + lo + q - r:i * W + hi + q - r]
            ds = dr[lo:hi]
            for t in range(hi - lo):
                ds[t] += gq * ts[t]


@pjit
def lcn_fwd(x, y, S, M, SIG, DEN, CN, g, icoef, H, W, sub, div, jarrett, threshold):
    """x (N, C, HW) -> y (N, C, HW); saves S, M, SIG, DEN (N, HW) and CN (N,) float64.

    sub / div switch the two stages (LCN = both); SIG, DEN, CN are left untouched without div."""
    N, C, HW = x.shape
    for n in prange(N):
        xn = x[n]
        Sn = S[n]
        Mn = M[n]
        X2 = np.zeros(HW)
        tmp = np.empty(HW)
        for i in range(HW):
            Sn[i] = 0.0
        for c in range(C):
            xc = xn[c]
            for i in range(HW):
                v = np.float64(xc[i])
                Sn[i] += v
                X2[i] += v * v
        if sub:
            _filter(Sn, Mn, tmp, g, H, W)
            for i in range(HW):
                Mn[i] *= icoef[i]
        else:
            for i in range(HW):
                Mn[i] = 0.0
        m = np.empty_like(xn[0])                   # y = (x - m) * a + b, in x's dtype
        a = np.empty_like(xn[0])
        b = np.empty_like(xn[0])
        for i in range(HW):
            m[i] = Mn[i]
        if div:
            Q = np.empty(HW)
            V = np.empty(HW)
            for i in range(HW):
                q = X2[i] - 2.0 * Mn[i] * Sn[i] + C * Mn[i] * Mn[i]
                Q[i] = q if q > 0.0 else 0.0
            _filter(Q, V, tmp, g, H, W)
            SIGn = SIG[n]
            DENn = DEN[n]
            total = 0.0
            for i in range(HW):
                v = V[i] * icoef[i]
                s = math.sqrt(v) if v > 0.0 else 0.0
                SIGn[i] = s
                total += s
            floor = threshold
            if jarrett:
                cn = total / HW
                CN[n] = cn
                if cn > floor:
                    floor = cn
            for i in range(HW):
                d = SIGn[i] if SIGn[i] > floor else floor
                DENn[i] = d
                a[i] = 1.0 / d
                b[i] = (np.float64(m[i]) - Mn[i]) / d
        else:
            for i in range(HW):
                a[i] = 1.0
                b[i] = np.float64(m[i]) - Mn[i]
        yn = y[n]
        for c in range(C):
            xc = xn[c]
            yc = yn[c]
            for i in range(HW):
                yc[i] = (xc[i] - m[i]) * a[i] + b[i]


@pjit
def lcn_bwd(x, dy, dx, S, M, SIG, DEN, CN, g, icoef, H, W, sub, div, jarrett, threshold):
    """x, dy (N, C, HW) and the saved S, M, SIG, DEN, CN -> dx (N, C, HW), overwritten.

    dy1 = dy / den + 2 (x - M) dQ, dQ = A(icoef * dsigma / (2 sigma)), dsigma through the max
    (indicator of the winner; in jarrett mode the mean's gradient is spread over all pixels);
    dx = dy1 + A(-icoef * sum_c dy1)."""
    N, C, HW = x.shape
    for n in prange(N):
        xn = x[n]
        dyn = dy[n]
        Mn = M[n]
        Sn = S[n]
        Dy = np.zeros(HW)                          # sum_c dy
        P = np.zeros(HW)                           # sum_c dy * x
        for c in range(C):
            xc = xn[c]
            dc = dyn[c]
            for i in range(HW):
                d = np.float64(dc[i])
                Dy[i] += d
                P[i] += d * np.float64(xc[i])
        tmp = np.empty(HW)
        dQ = np.zeros(HW)
        inv = np.ones(HW)
        if div:
            SIGn = SIG[n]
            DENn = DEN[n]
            u = np.empty(HW)
            floor = threshold
            cn = 0.0
            if jarrett:
                cn = CN[n]
                if cn > floor:
                    floor = cn
            dcn = 0.0
            for i in range(HW):
                den = DENn[i]
                inv[i] = 1.0 / den
                dden = -(P[i] - Mn[i] * Dy[i]) / (den * den)   # -sum_c dy * (x - M) / den^2
                if SIGn[i] > floor:
                    u[i] = dden
                else:
                    u[i] = 0.0
                    if jarrett and cn > threshold:
                        dcn += dden
            if jarrett:
                share = dcn / HW
                for i in range(HW):
                    u[i] += share
            for i in range(HW):                    # through sigma = sqrt(V * icoef)
                s = SIGn[i]
                u[i] = u[i] * icoef[i] / (2.0 * s) if s > 0.0 else 0.0
            _filter(u, dQ, tmp, g, H, W)
        dS = np.zeros(HW)
        if sub:
            D = np.empty(HW)
            for i in range(HW):                    # -icoef * sum_c dy1
                D[i] = -(Dy[i] * inv[i] + 2.0 * dQ[i] * (Sn[i] - C * Mn[i])) * icoef[i]
            _filter(D, dS, tmp, g, H, W)
        m = np.empty_like(xn[0])                   # dx = dy * a + (x - m) * b + c0
        a = np.empty_like(xn[0])                   # (m: M rounded, as in the forward pass)
        b = np.empty_like(xn[0])
        c0 = np.empty_like(xn[0])
        for i in range(HW):
            m[i] = Mn[i]
            a[i] = inv[i]
            b[i] = 2.0 * dQ[i]
            c0[i] = dS[i] + 2.0 * dQ[i] * (np.float64(m[i]) - Mn[i])
        dxn = dx[n]
        for c in range(C):
            xc = xn[c]
            dc = dyn[c]
            gc = dxn[c]
            for i in range(HW):
                gc[i] = dc[i] * a[i] + (xc[i] - m[i]) * b[i] + c0[i]
