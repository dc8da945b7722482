"""A 4-trial sweep on the default LocalCluster against the same 4 trials run one after another
in one process (as `fit` runs them: numba on every core), on Fashion-MNIST.

    python -m benchmarks.sweep [--config configs/lenet5.yaml] [--subset N] [--epochs 3]

Both start from a warm kernel cache (the sweep's own warm-up fills it first, untimed). The sweep's
time is the whole command's work: planning, the cluster's start and close, the trials, the
results. The sequential time covers the four run_fit calls in one process (started beforehand).
It also reports, per trial, the kernels the worker compiled (numba cache misses: the goal is 0)
and loaded from the on-disk cache. Prints one markdown table; writes nothing outside a temporary
folder.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from convtrain import runtime

runtime.configure()

POINTS = [{"optim.lr": lr, "optim.momentum": m} for lr in (0.02, 0.05) for m in (0.9, 0.5)]

_SEQUENTIAL = """
import json, sys, time
from convtrain import runtime; runtime.configure()
from convtrain import config as C
from convtrain.sweep.trials import kernel_compiles
from convtrain.train.session import run_fit
cfgs = [C.load(p) for p in sys.argv[2:]]
start = time.perf_counter()
for i, cfg in enumerate(cfgs):
    run_fit(cfg, out_dir=f"{sys.argv[1]}/seq-{i}")
print(json.dumps({"seconds": time.perf_counter() - start, "compiled": kernel_compiles()[0]}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/lenet5.yaml")
    # trials of ~10 s each: long enough that the cluster's start (a second or two) is not
    # what the row measures, as in a real sweep
    ap.add_argument("--subset", type=int, default=None, help="training images (default: all)")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args(argv)
    from convtrain.sweep import cluster, runner

    fixed = {"data.subset": args.subset, "data.validation": 2000, "train.epochs": args.epochs}
    if args.subset is None:
        del fixed["data.subset"]
    points = [{**p, **fixed} for p in POINTS]
    with tempfile.TemporaryDirectory(prefix="convtrain-bench-sweep-") as tmp:
        plan = runner.plan(args.config, points, out=os.path.join(tmp, "sweep"))
        cluster.warm_kernel_cache(_configs(plan))    # untimed: both sides start warm
        start = time.perf_counter()
        done = runner.prepare(plan, resume=False)
        with cluster.connect(trials=len(plan.trials)) as (client, where):
            rows = runner.execute(plan, client, done)
        runner.finish(plan, rows)
        swept = time.perf_counter() - start
        seq = subprocess.run([sys.executable, "-c", _SEQUENTIAL, tmp,
                              *(t.config_path for t in plan.trials)],
                             capture_output=True, text=True, check=True)
        sequential = json.loads(seq.stdout.strip().splitlines()[-1])
    print(f"4-trial sweep of {args.config} ({'all training images' if args.subset is None else f'subset {args.subset}'}, {args.epochs} epoch(s), "
          f"{cluster.cores()} cores; {where})\n")
    print("| | wall time (s) | kernels compiled |\n|---|---|---|")
    print(f"| sweep, LocalCluster | {swept:.1f} | "
          f"{', '.join(str(r['kernels_compiled']) for r in rows)} (per trial; "
          f"{', '.join(str(r['kernels_from_cache']) for r in rows)} from the cache) |")
    print(f"| one after another, one process | {sequential['seconds']:.1f} | "
          f"{sequential['compiled']} |")
    times = ", ".join(f"{r['seconds']:.1f}" for r in rows)
    print(f"\nspeed-up: {sequential['seconds'] / swept:.2f}x; trial times: {times} s")
    return 0


def _configs(plan):
    from convtrain import config as C
    return [C.loads(t.config_text, source=t.config_path) for t in plan.trials]


if __name__ == "__main__":
    sys.exit(main())
