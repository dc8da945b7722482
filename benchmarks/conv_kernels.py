"""GFLOP/s of the conv kernels and of the Conv2D layer on the shapes that matter (batch 128).

    .venv/bin/python benchmarks/conv_kernels.py [--threads N] [--reps SECONDS]

Each kernel counts 2*N*F*OH*OW*C*KH*KW flops (forward, data gradient and weight gradient alike).
"layer" timings include the padding copies and the flips the layer does around the kernels.
Numbers are best-of-many: another process on the machine only ever makes them smaller.
"""
import argparse
import time
from functools import partial

# isort: off
from convtrain import runtime

runtime.configure()   # before numpy loads: single-threaded BLAS beside numba's threads
# isort: on
import numba  # noqa: E402
import numpy as np  # noqa: E402

from convtrain.nn.kernels import conv as KC  # noqa: E402
from convtrain.nn.layers.conv import Conv2D, ConvSpec  # noqa: E402
from convtrain.nn.layers.local import LocallyConnected, LocalSpec  # noqa: E402

SHAPES = [  # C, H, W, F, K, pad
    (1, 28, 28, 6, 5, 2),
    (6, 14, 14, 16, 5, 0),
    (1, 28, 28, 32, 5, "same"),
    (32, 14, 14, 64, 5, "same"),
    (3, 32, 32, 32, 5, 2),
    (32, 16, 16, 32, 5, 2),
    (32, 8, 8, 64, 5, 2),
]
LOCAL_SHAPES = [  # C, H, W, F, K, pad
    (1, 28, 28, 16, 5, 0),
    (16, 12, 12, 16, 3, 1),
    (32, 8, 8, 32, 3, 0),
]


def best_time(fn, seconds):
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-6)
    best = once
    for _ in range(max(5, int(seconds / once))):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--reps", type=float, default=0.5, help="seconds per measurement")
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    N = args.batch
    print(f"threads {numba.get_num_threads()}, batch {N}, GFLOP/s (ms)")
    print(f"{'shape':28s} {'fwd':>14s} {'dx':>14s} {'dw':>14s} | {'layer fwd':>14s} {'layer bwd':>14s}")
    for C, H, W, F, K, P in SHAPES:
        layer = Conv2D(ConvSpec(filters=F, size=K, pad=P), (C, H, W))
        layer.init_params(rng, ("he", 2.0))
        g = layer.geom
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        y, cache = layer.forward(x, train=True)
        dout = rng.standard_normal(y.shape).astype(np.float32)
        flops = N * layer.flops((C, H, W))
        w = layer.params["weight"]
        b = layer.params["bias"]
        out = np.empty_like(y)
        fwd = best_time(partial(KC.conv_forward, cache.xp, w, b, out, False), args.reps)
        dw = np.zeros_like(w)
        db = np.zeros_like(b)
        nt = numba.get_num_threads()
        bww = best_time(partial(KC.conv_backward_weight, cache.xp, dout, dout, False, dw, db, nt), args.reps)
        # the data gradient as the layer runs it: forward of the padded dout with flipped filters
        q = [g.KH - 1 - g.pt, g.KH - 1 - g.pb, g.KW - 1 - g.pl, g.KW - 1 - g.pr]
        Hd, Wd = g.H + g.KH - 1, g.W + g.KW - 1
        dp = np.zeros((N, F, Hd + 2, Wd), np.float32)
        KC.pad_into(dout, dout, False, dp, q[0], q[2])
        wf = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
        dx = np.empty_like(x)
        zc = np.zeros(C, np.float32)
        bwd = best_time(partial(KC.conv_forward, dp, wf, zc, dx, False), args.reps)
        lf = best_time(partial(layer.forward, x, train=True), args.reps)
        lb = best_time(partial(layer.backward, dout, cache), args.reps)
        name = f"{C}->{F} {K}x{K} pad {P} @{H}x{W}"
        cells = [f"{flops / t / 1e9:6.1f} ({t * 1e3:5.2f})" for t in (fwd, bwd, bww)]
        lcells = [f"{mult * flops / t / 1e9:6.1f} ({t * 1e3:5.2f})" for mult, t in ((1, lf), (2, lb))]
        print(f"{name:28s} {' '.join(cells)} | {' '.join(lcells)}")
    print(f"{'local layer':28s} {'fwd':>14s} {'bwd':>14s}")
    for C, H, W, F, K, P in LOCAL_SHAPES:
        layer = LocallyConnected(LocalSpec(filters=F, size=K, pad=P), (C, H, W))
        layer.init_params(rng, ("he", 2.0))
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        y, cache = layer.forward(x, train=True)
        dout = rng.standard_normal(y.shape).astype(np.float32)
        flops = N * layer.flops((C, H, W))
        lf = best_time(partial(layer.forward, x, train=True), args.reps)
        lb = best_time(partial(layer.backward, dout, cache), args.reps)
        name = f"{C}->{F} {K}x{K} pad {P} @{H}x{W}"
        cells = [f"{mult * flops / t / 1e9:6.1f} ({t * 1e3:5.2f})" for mult, t in ((1, lf), (2, lb))]
        print(f"{name:28s} {' '.join(cells)}")


if __name__ == "__main__":
    main()
