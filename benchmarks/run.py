"""`make bench`: convtrain against PyTorch 2.13 (CPU) on this machine, in one run.

    python -m benchmarks.run                 # the full run (~5-10 min), writes benchmarks/RESULTS.md
    python -m benchmarks.run --quick         # a ~1 min smoke run (stdout only)
    python -m benchmarks.run --only lenet5   # nets and/or sections, comma-separated or repeated:
                                             # lenet5 fmnist-lcn cifar-like | check ceiling
                                             # throughput onnx help warm cold sweep

What is measured, and how:
- throughput: each side of each network runs in its own long-lived worker process
  (benchmarks/worker.py; 2 threads: numba's 2 threads for convtrain, torch.set_num_threads(2) for
  PyTorch). The parent interleaves the repetitions (convtrain, torch, torch, convtrain, ...) so both
  see the same machine noise, and quotes medians with min and max. Synthetic data, no data loading
  in the timed loop. Training = the trainer's step (reseed, zero grads, forward, loss, backward,
  gradient finiteness check, SGD with momentum 0.9 and the config's weight decay); PyTorch =
  zero_grad, forward, cross_entropy, backward, SGD.step, loss.item(). Inference at batch 256:
  convtrain's predict, PyTorch's forward under inference_mode in eval mode.
- convtrain inference vs onnxruntime (section `onnx`): the same net exported by `convtrain
  export`'s code (convtrain.export) and run by onnxruntime's CPU provider with 2 intra-op
  threads, interleaved with convtrain's predict at batch 256 like the PyTorch rows; skipped with
  a note when onnx/onnxruntime are not installed (the bench extra installs them).
- sweep (section `sweep`): benchmarks/sweep.py in its own process: a 4-trial `convtrain sweep`
  of lenet5 on the default Dask LocalCluster against the same trials one after another.
- GFLOP/s: convtrain's own count (`convtrain summary`: 2 x multiply-adds per image, forward), times
  3 for a training step (forward + grad input + grad weight), divided by the step time; as a
  fraction of the matmul ceiling: numpy float32 2048x2048 matmul, OpenBLAS on 2 threads, in a
  subprocess (convtrain pins OpenBLAS to 1 thread in-process), timed at the start and the end.
- peak memory: the peak resident set (VmHWM; ru_maxrss would include the pre-exec peak of the
  forked parent) of each worker process (imports + net + training at every batch size +
  inference at 256), and the same after imports/build alone ("baseline").
- warm time to the first step: wall time from launching `convtrain fit CONFIG` (a copy of the
  config with checkpoint.every_steps: 1) until its step-00000001.npz appears, warm numba cache.
  The same with an empty numba cache (NUMBA_CACHE_DIR = a fresh folder) is the cold compile time.
  cifar-like reads a synthetic 50,000-image npz instead of the CIFAR-10 batches.
- `convtrain --help`: wall time of the console script.
- per-layer profile: forward and backward wall time of every layer of convtrain's training step
  at batch 128 (minimum over the repetitions: contention only adds time), next to PyTorch's (each torch layer on a detached input so its own
  backward can be timed; ReLU not in place there).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
THREADS = 2

NETS = {  # name -> (config, training batch sizes)
    "lenet5": ("configs/lenet5.yaml", (32, 128)),
    "fmnist-lcn": ("configs/fmnist-lcn.yaml", (128,)),
    "cifar-like": ("configs/cifar-like.yaml", (128,)),
}
INFER_BATCH = 256
PROFILE_BATCH = 128
SECTIONS = ("check", "ceiling", "throughput", "onnx", "help", "warm", "cold", "sweep")

TARGETS = {  # (kind, net) -> minimal ratio convtrain/PyTorch
    ("train", "lenet5"): 1.0, ("train", "fmnist-lcn"): 1.5, ("train", "cifar-like"): 1.0,
    ("infer", "lenet5"): 1.0, ("infer", "fmnist-lcn"): 1.0, ("infer", "cifar-like"): 1.0,
}
ONNX_TARGET = 1.0   # convtrain inference / onnxruntime inference, every net
WARM_TARGET_S = 2.0
HELP_TARGET_S = 0.3
COLD_TARGET_S = 60.0
MEMORY_TARGET = 1.5


# --- small helpers ------------------------------------------------------------------------------

_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"{time.perf_counter() - _T0:6.1f}s {msg}", file=sys.stderr, flush=True)


def med(v):
    return statistics.median(v)


def spread(v, fmt="{:,.0f}"):
    """'median (min-max)'."""
    if not v:
        return "-"
    if len(v) == 1:
        return fmt.format(v[0])
    return f"{fmt.format(med(v))} ({fmt.format(min(v))}-{fmt.format(max(v))})"


def status(ok) -> str:
    return "-" if ok is None else ("PASS" if ok else "MISS")


def cpu_busy_seconds() -> float:
    """All CPUs' busy time since boot, from /proc/stat (user nice system irq softirq steal)."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    v = [int(p) for p in parts]
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def machine() -> dict:
    model, flags = "?", ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1]
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "amx_tile") if f" {f} " in f" {flags} "]
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        mem = f"{kb / 2**20:.1f} GiB"
    except OSError:
        pass
    from importlib import metadata

    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {"cpu": model, "cores": os.cpu_count(), "simd": " ".join(simd), "memory": mem,
            "python": platform.python_version(), "numpy": version("numpy"),
            "numba": version("numba"), "torch": version("torch"),
            "kernel": platform.release()}


def worker_env() -> dict:
    env = dict(os.environ)
    env["BENCH_THREADS"] = str(THREADS)
    env["NUMBA_NUM_THREADS"] = str(THREADS)
    # convtrain keeps freed memory in the heap (convtrain/runtime.py, mallopt); give the PyTorch
    # worker the same glibc setting so that neither side pays page faults the other does not
    env["MALLOC_MMAP_THRESHOLD_"] = str(1 << 30)
    env["MALLOC_TRIM_THRESHOLD_"] = str((1 << 31) - 1)
    env.setdefault("PYTHONPATH", "")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env["PYTHONPATH"] else "")
    return env


# --- workers --------------------------------------------------------------------------------------

class Worker:
    """A benchmarks.worker process for one side of one network."""

    def __init__(self, side: str, spec_path: str, tmp: str):
        self.side = side
        self.err_path = os.path.join(tmp, f"{side}-{os.path.basename(spec_path)}.err")
        self.err = open(self.err_path, "w")  # noqa: SIM115  (closed in close())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", side, spec_path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True,
            cwd=ROOT, env=worker_env())
        self.ready = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.err.flush()
            raise RuntimeError(f"{self.side} worker died:\n" + Path(self.err_path).read_text()[-3000:])
        ans = json.loads(line)
        if "error" in ans:
            raise RuntimeError(f"{self.side} worker: {ans['error']}\n"
                               + Path(self.err_path).read_text()[-3000:])
        return ans

    def ask(self, **msg) -> dict:
        """Send a command; the answer gains "others": the cores other processes used meanwhile
        (all CPUs' busy time from /proc/stat minus this worker's own CPU time, per second)."""
        b0, t0 = cpu_busy_seconds(), time.perf_counter()
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        ans = self._read()
        wall = time.perf_counter() - t0
        ans["others"] = max(0.0, cpu_busy_seconds() - b0 - ans.get("cpu", 0.0)) / max(wall, 1e-3)
        return ans

    def close(self) -> None:
        try:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.err.close()


def net_info(name: str) -> dict:
    """Build the convtrain net (shapes only) in this process: description, flops, names."""
    import numpy as np

    from convtrain import config as configmod
    from convtrain.nn.network import Network

    from . import torch_nets

    path, batches = NETS[name]
    cfg = configmod.load(str(ROOT / path))
    net = Network.build(cfg.model, tuple(cfg.input), seed=cfg.seed, dtype=np.float32,
                        allocate=False)
    rows = net.summary_rows()
    return {
        "name": name, "config": str(ROOT / path), "batches": batches, "cfg": cfg,
        "layers": torch_nets.describe(net), "rows": rows,
        "flops": sum(r["flops"] for r in rows), "input": list(cfg.input),
        "optim": {"lr": cfg.optim.lr, "momentum": cfg.optim.momentum,
                  "weight_decay": cfg.optim.weight_decay, "nesterov": cfg.optim.nesterov},
    }


class Quiet:
    """Before a repetition, wait (up to `per_call` seconds, `budget` in all) until other processes
    leave the CPUs alone for a moment: this machine has bursts of load from other jobs."""

    def __init__(self, per_call: float, budget: float, threshold: float = 0.15):
        self.per_call, self.budget, self.threshold = per_call, budget, threshold
        self.waited = 0.0

    def wait(self) -> None:
        if self.per_call <= 0:
            return
        t0 = time.perf_counter()
        while True:
            b0 = cpu_busy_seconds()
            time.sleep(0.1)
            if cpu_busy_seconds() - b0 < self.threshold * 0.1:
                break
            spent = time.perf_counter() - t0
            if spent > self.per_call or self.waited + spent > self.budget:
                break
        self.waited += time.perf_counter() - t0


QUIET = Quiet(0, 0)
NOISY = 0.25     # a repetition during which other processes used more cores than this is "noisy"


def measure_pair(workers, cmd, batch, reps, target_s, results, key, quick=False):
    """Interleaved repetitions of `cmd` at `batch` on both workers; images/s per repetition
    (results[(key, side)]) and the other processes' cores during it (results[(key, side, "others")])."""
    steps = {}
    warm, probe_steps, least = (1, 1, 1) if quick else (2, 3, 2)
    for side, w in workers.items():
        w.ask(cmd=cmd, batch=batch, steps=warm)                    # compile / allocate / warm
        probe = w.ask(cmd=cmd, batch=batch, steps=probe_steps)["seconds"] / probe_steps
        steps[side] = max(least, round(target_s / max(probe, 1e-6)))
    order = list(workers)
    losses = {}
    extra = reps // 2 if QUIET.per_call > 0 else 0    # noisy pairs are repeated, this many at most
    r = 0
    while r < reps:
        QUIET.wait()
        noisy = False
        for side in (order if r % 2 == 0 else order[::-1]):
            ans = workers[side].ask(cmd=cmd, batch=batch, steps=steps[side])
            results.setdefault((key, side), []).append(batch * steps[side] / ans["seconds"])
            results.setdefault((key, side, "others"), []).append(ans["others"])
            noisy |= ans["others"] >= NOISY
        if noisy and extra > 0:
            extra -= 1
        else:
            r += 1
            if "loss" in ans:
                losses[side] = ans["loss"]
    return losses


def write_spec(info, tmp) -> str:
    """The worker's SPEC.json for one net (see benchmarks/worker.py)."""
    spec_path = os.path.join(tmp, f"{info['name']}.json")
    with open(spec_path, "w") as f:
        json.dump({k: info[k] for k in ("config", "layers", "input", "optim")} | {"seed": 0}, f)
    return spec_path


def run_throughput(infos, args, tmp, out):
    reps, target = (3, 0.25) if args.quick else (15, 0.4)
    prof_reps = 3 if args.quick else 15
    for name, info in infos.items():
        spec_path = write_spec(info, tmp)
        log(f"[throughput] {name}: starting workers")
        workers = {"convtrain": Worker("convtrain", spec_path, tmp),
                   "torch": Worker("torch", spec_path, tmp)}
        try:
            if "versions" not in out:
                out["versions"] = {side: w.ask(cmd="info") for side, w in workers.items()}
            res = out.setdefault("throughput", {})
            for b in info["batches"]:
                log(f"[throughput] {name}: training, batch {b}")
                losses = measure_pair(workers, "train", b, reps, target, res, f"train {name} {b}",
                                      args.quick)
                for side, loss in losses.items():
                    if math.isnan(loss):
                        out.setdefault("notes", []).append(
                            f"{side} {name} batch {b}: the training loss became NaN")
            log(f"[throughput] {name}: inference, batch {INFER_BATCH}")
            measure_pair(workers, "infer", INFER_BATCH, reps, target, res,
                         f"infer {name} {INFER_BATCH}", args.quick)
            mem = out.setdefault("memory", {})
            for side, w in workers.items():
                mem[(name, side)] = w.ask(cmd="mem")
            log(f"[throughput] {name}: per-layer profile, batch {PROFILE_BATCH}")
            prof = out.setdefault("profile", {})
            for side, w in workers.items():
                QUIET.wait()
                prof[(name, side)] = w.ask(cmd="profile", batch=PROFILE_BATCH, reps=prof_reps)
        finally:
            for w in workers.values():
                w.close()


def run_onnx(infos, args, tmp, out):
    """convtrain's inference against onnxruntime running the same net exported to ONNX."""
    from importlib.util import find_spec
    if find_spec("onnx") is None or find_spec("onnxruntime") is None:
        out.setdefault("notes", []).append(
            "onnx/onnxruntime are not installed: no convtrain vs onnxruntime rows "
            "(pip install -e '.[bench]')")
        return
    reps, target = (3, 0.25) if args.quick else (15, 0.4)
    res = out.setdefault("onnx", {})
    for name, info in infos.items():
        spec_path = write_spec(info, tmp)
        log(f"[onnx] {name}: starting workers")
        workers = {"convtrain": Worker("convtrain", spec_path, tmp),
                   "onnxruntime": Worker("onnxruntime", spec_path, tmp)}
        try:
            out.setdefault("onnx_versions", workers["onnxruntime"].ask(cmd="info"))
            log(f"[onnx] {name}: inference, batch {INFER_BATCH}")
            measure_pair(workers, "infer", INFER_BATCH, reps, target, res,
                         f"infer {name} {INFER_BATCH}", args.quick)
        finally:
            for w in workers.values():
                w.close()


# --- the matmul ceiling -------------------------------------------------------------------------

CEILING_CODE = r"""
import json, time
import numpy as np
n = 2048
rng = np.random.default_rng(0)
a = rng.standard_normal((n, n), dtype=np.float32)
b = rng.standard_normal((n, n), dtype=np.float32)
c = np.empty((n, n), dtype=np.float32)
for _ in range(3):
    np.matmul(a, b, out=c)
g = []
for _ in range(REPS):
    t0 = time.perf_counter()
    np.matmul(a, b, out=c)
    g.append(2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
try:
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    blas = f"{blas.get('name')} {blas.get('version')}"
except Exception:
    blas = "?"
print(json.dumps({"gflops": g, "blas": blas}))
"""


def run_ceiling(out, quick):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(THREADS), OMP_NUM_THREADS=str(THREADS))
    code = CEILING_CODE.replace("REPS", "8" if quick else "15")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=300, check=False)
    if r.returncode:
        raise RuntimeError("matmul ceiling failed:\n" + r.stderr)
    ans = json.loads(r.stdout)
    out.setdefault("ceiling", []).extend(ans["gflops"])
    out["blas"] = ans["blas"]


# --- CLI timings --------------------------------------------------------------------------------

def convtrain_exe() -> str:
    exe = Path(sys.executable).parent / "convtrain"
    return str(exe) if exe.exists() else (shutil.which("convtrain") or "convtrain")


def run_sweep(out):
    """benchmarks/sweep.py in its own process (it starts a Dask LocalCluster): its table."""
    from importlib.util import find_spec
    if find_spec("distributed") is None:
        out.setdefault("notes", []).append(
            "dask distributed is not installed: no sweep row (pip install 'convtrain[cluster]')")
        return
    res = subprocess.run([sys.executable, "-m", "benchmarks.sweep"], capture_output=True,
                         text=True, cwd=ROOT)
    out["sweep"] = res.stdout.strip() if res.returncode == 0 else \
        f"benchmarks.sweep failed (exit {res.returncode}):\n\n    " + \
        "\n    ".join(res.stderr.strip().splitlines()[-5:])


def run_help(out, quick):
    exe = convtrain_exe()
    subprocess.run([exe, "--help"], capture_output=True, check=True)     # warm the page cache
    times = []
    for _ in range(3 if quick else 9):
        t0 = time.perf_counter()
        subprocess.run([exe, "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    out["help"] = times


def fit_config(info, tmp, data_paths) -> str:
    """A copy of the config that checkpoints after every step (cifar-like: synthetic npz)."""
    from convtrain import config as configmod
    cfg = info["cfg"]
    changes = {"checkpoint.every_steps": 1}
    if cfg.data.dataset in SYNTHETIC:
        changes["data.dataset"] = "npz"
        changes["data_path"] = data_paths.setdefault("npz", synthetic_npz(tmp, cfg))
    cfg = configmod.with_overrides(cfg, **changes)
    path = os.path.join(tmp, f"fit-{info['name']}.yaml")
    with open(path, "w") as f:
        f.write(configmod.dump(cfg))
    return path


# The data sets the timings replace with a synthetic npz (cifar-like's CIFAR-10 batches need a
# download): the time to the first step does not depend on the pixels.
SYNTHETIC = ("npz", "cifar10")


def synthetic_npz(tmp, cfg) -> str:
    import numpy as np
    C, H, W = cfg.input
    rng = np.random.default_rng(0)
    path = os.path.join(tmp, "synthetic.npz")
    shape = (50000, H, W, C) if cfg.data.layout == "nhwc" else (50000, C, H, W)
    tshape = (1000,) + shape[1:]
    np.savez(path, x_train=rng.integers(0, 256, shape, dtype=np.uint8),
             y_train=rng.integers(0, 10, 50000, dtype=np.uint8),
             x_test=rng.integers(0, 256, tshape, dtype=np.uint8),
             y_test=rng.integers(0, 10, 1000, dtype=np.uint8))
    return path


def children_cpu() -> float:
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return c.ru_utime + c.ru_stime


def time_fit(cfg_path, tmp, *, cache_dir=None, timeout=300.0, noise=None) -> float | None:
    """Seconds from launching `convtrain fit` until its first step's checkpoint exists.
    Appends to `noise` the cores other processes used meanwhile."""
    b0, c0 = cpu_busy_seconds(), children_cpu()
    run_dir = tempfile.mkdtemp(prefix="fit-", dir=tmp)
    marker = os.path.join(run_dir, "step-00000001.npz")
    env = worker_env()
    if cache_dir:
        env["NUMBA_CACHE_DIR"] = cache_dir
    t0 = time.perf_counter()
    proc = subprocess.Popen([convtrain_exe(), "fit", cfg_path, "--out", run_dir, "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    elapsed = None
    try:
        while True:
            if os.path.exists(marker):
                elapsed = time.perf_counter() - t0
                break
            if proc.poll() is not None:
                raise RuntimeError(f"convtrain fit {cfg_path} exited with {proc.returncode}:\n"
                                   + proc.stderr.read().decode(errors="replace")[-2000:])
            if time.perf_counter() - t0 > timeout:
                break
            time.sleep(0.002)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    if noise is not None:
        wall = time.perf_counter() - t0
        noise.append(max(0.0, cpu_busy_seconds() - b0 - (children_cpu() - c0)) / wall)
    return elapsed


def have_data(info) -> bool:
    cfg = info["cfg"]
    if cfg.data.dataset in SYNTHETIC:
        return True
    from convtrain import data as datamod
    folder = cfg.data.path or (datamod.FASHION_MNIST_DIR if cfg.data.dataset == "fashion-mnist"
                               else None)
    return folder is None or os.path.exists(folder)


def run_warm(infos, out, tmp, quick):
    data_paths = {}
    paths = {name: fit_config(info, tmp, data_paths) for name, info in infos.items()}
    reps = 1 if quick else 5
    res = out.setdefault("warm", {})
    for name, p in paths.items():      # one unmeasured run each: fills the cache if it is stale
        log(f"[warm] {name}: warm-up run")
        time_fit(p, tmp)
    for r in range(reps):
        for name, p in paths.items():
            QUIET.wait()
            t = time_fit(p, tmp, noise=out.setdefault("warm_others", {}).setdefault(name, []))
            log(f"[warm] {name}: {t:.2f} s")
            res.setdefault(name, []).append(t)
    out["_fit_paths"] = paths


def run_cold(infos, out, tmp):
    data_paths = {}
    paths = out.get("_fit_paths") or {n: fit_config(i, tmp, data_paths) for n, i in infos.items()}
    res = out.setdefault("cold", {})
    for name, p in paths.items():
        cache = tempfile.mkdtemp(prefix="numba-cold-", dir=tmp)
        QUIET.wait()
        log(f"[cold] {name}: compiling into an empty cache")
        t = time_fit(p, tmp, cache_dir=cache, timeout=600.0,
                     noise=out.setdefault("cold_others", {}).setdefault(name, []))
        log(f"[cold] {name}: {'timeout' if t is None else f'{t:.1f} s'}")
        res[name] = t
        shutil.rmtree(cache, ignore_errors=True)


def run_check(infos, out):
    r = subprocess.run([sys.executable, "-m", "benchmarks.check"]
                       + [i["config"] for i in infos.values()],
                       capture_output=True, text=True, cwd=ROOT, env=worker_env(), timeout=600,
                       check=False)
    out["check"] = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    if r.returncode:
        out.setdefault("notes", []).append("the equivalence check failed: " + r.stderr[-500:])


# --- the report ---------------------------------------------------------------------------------

def ratio_cells(results, key, other, target):
    """[ratio (range), ratio over quiet pairs (how many), others' cores, target, verdict] of
    convtrain against `other` in measure_pair's `results`, or None when a side is missing."""
    c, t = results.get((key, "convtrain")), results.get((key, other))
    if not c or not t:
        return None
    ratio = med(c) / med(t)
    pair = [ci / ti for ci, ti in zip(c, t)]
    oc = results.get((key, "convtrain", "others"), [])
    ot = results.get((key, other, "others"), [])
    quiet = [p for p, a, b in zip(pair, oc, ot) if a < NOISY and b < NOISY]
    qtext = f"{med(quiet):.2f} ({len(quiet)})" if len(quiet) >= 3 else f"- ({len(quiet)})"
    noise = f"{med(oc + ot):.2f}" if oc else "-"
    judged = med(quiet) if len(quiet) >= 3 else ratio
    return [f"{ratio:.2f} ({min(pair):.2f}-{max(pair):.2f})", qtext, noise, f">= {target}",
            status(judged >= target) + ("" if len(quiet) >= 3 else " (noisy)")]


def table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def report(out, infos, args) -> str:
    m = out["machine"]
    L = [f"# convtrain vs PyTorch on this CPU ({'quick' if args.quick else 'full'} run)", ""]
    L.append(f"- date: {out['date']}, wall time of the run {out['wall']:.0f} s")
    L.append(f"- CPU: {m['cpu']}, {m['cores']} cores ({m['simd']}), {m['memory']} RAM, "
             f"Linux {m['kernel']}")
    L.append(f"- load average at start {out['load_start']}, at end {out['load_end']}; other "
             f"processes used {out['other_cpu']:.2f} cores on average during the run")
    v = out.get("versions", {})
    cv, tv = v.get("convtrain", {}), v.get("torch", {})
    L.append(f"- Python {m['python']}, numpy {m['numpy']} ({out.get('blas', '?')}), numba "
             f"{m['numba']} (threading layer {cv.get('threading_layer', '?')}, "
             f"{cv.get('numba_threads', '?')} threads), torch {m['torch']} "
             f"({tv.get('torch_threads', '?')} threads)")
    if out.get("ceiling"):
        c = out["ceiling"]
        L.append(f"- matmul ceiling (numpy float32 2048x2048, OpenBLAS 2 threads, start and end "
                 f"of the run): {spread(c, '{:.0f}')} GFLOP/s; the median is used below")
    for ch in out.get("check", []):
        if ch.get("ok"):
            L.append(f"- equivalence {ch['name']}: logits rel. err {ch['logits_rel_err']:.1e}, "
                     f"loss {ch['loss_rel_err']:.1e}, weight grads {ch['grad_rel_err']:.1e}")
        else:
            L.append(f"- equivalence {ch.get('name', ch['config'])}: FAILED {ch}")
    if QUIET.per_call > 0:
        L.append(f"- waited {QUIET.waited:.0f} s in all for other processes to go quiet before "
                 f"repetitions (at most {QUIET.per_call:g} s each)")
    for note in out.get("notes", []):
        L.append(f"- note: {note}")
    L.append("")

    ceiling = med(out["ceiling"]) if out.get("ceiling") else None
    thr = out.get("throughput", {})
    if thr:
        L.append("## Throughput (images/s, median (min-max) of interleaved repetitions)")
        L.append("")
        rows = []
        for name, info in infos.items():
            keys = [("train", b) for b in info["batches"]] + [("infer", INFER_BATCH)]
            for kind, b in keys:
                key = f"{kind} {name} {b}"
                cells = ratio_cells(thr, key, "torch", TARGETS[(kind, name)])
                if cells is None:
                    continue
                c = thr[(key, "convtrain")]
                gf = (3 if kind == "train" else 1) * info["flops"] * med(c) / 1e9
                frac = f" ({100 * gf / ceiling:.0f}%)" if ceiling else ""
                rows.append([f"{kind} {name}", b, spread(c), spread(thr[(key, "torch")]),
                             *cells[:3], f"{gf:.1f}{frac}", *cells[3:]])
        L += table(["", "batch", "convtrain", "PyTorch", "ratio", "ratio, quiet reps",
                    "others", "convtrain GFLOP/s (% ceiling)", "target", ""], rows)
        L.append("")
        L.append("ratio = median convtrain / median PyTorch (in brackets: the range of the "
                 "per-repetition ratios of interleaved pairs). ratio, quiet reps: the median "
                 f"ratio over the pairs during which other processes used < {NOISY} cores (how "
                 "many); PASS/MISS judges it when there are at least 3 such pairs, else the "
                 "ratio of all repetitions, marked (noisy): then the verdict means little. "
                 "Noisy pairs are repeated (up to half as many again). others: the median number of cores other processes used during "
                 "the repetitions. GFLOP/s: forward flops per image from `convtrain "
                 "summary` ("
                 + ", ".join(f"{n} {i['flops'] / 1e6:.2f}M" for n, i in infos.items())
                 + ") x 3 for training (forward, grad input, grad weight), x 1 for inference.")
        L.append("")

    onnx = out.get("onnx", {})
    if onnx:
        v = out.get("onnx_versions", {})
        L.append(f"## convtrain inference vs onnxruntime {v.get('onnxruntime', '?')} "
                 f"(images/s, batch {INFER_BATCH})")
        L.append("")
        rows = []
        for name in infos:
            key = f"infer {name} {INFER_BATCH}"
            cells = ratio_cells(onnx, key, "onnxruntime", ONNX_TARGET)
            if cells is not None:
                rows.append([f"infer {name}", INFER_BATCH, spread(onnx[(key, "convtrain")]),
                             spread(onnx[(key, "onnxruntime")]), *cells])
        L += table(["", "batch", "convtrain", "onnxruntime", "ratio", "ratio, quiet reps",
                    "others", "target", ""], rows)
        L.append("")
        L.append("The same network (config, seed) exported by convtrain.export and run by "
                 f"onnxruntime's CPU provider on {THREADS} intra-op threads; its graph also "
                 "normalises the input (two elementwise ops). ratio = median convtrain / median "
                 "onnxruntime; the other columns as in the throughput table.")
        L.append("")

    if out.get("sweep"):
        L.append("## convtrain sweep: 4 trials on the default LocalCluster vs one after another")
        L.append("")
        L.append(out["sweep"])
        L.append("")
        L.append("From `python -m benchmarks.sweep` (goal: the sweep no slower than the trials "
                 "one after another, and no kernel compiled per trial).")
        L.append("")

    rows = []
    if out.get("warm"):
        for name, ts in out["warm"].items():
            ts = [t for t in ts if t is not None]
            o = out.get("warm_others", {}).get(name)
            rows.append([f"warm `convtrain fit` to first step, {name}", spread(ts, "{:.2f} s"),
                         f"{med(o):.2f}" if o else "-",
                         f"<= {WARM_TARGET_S:g} s", status(med(ts) <= WARM_TARGET_S)])
    if out.get("cold"):
        for name, t in out["cold"].items():
            o = out.get("cold_others", {}).get(name)
            rows.append([f"cold (empty numba cache) fit to first step, {name}",
                         "timeout" if t is None else f"{t:.1f} s", f"{med(o):.2f}" if o else "-",
                         f"<= {COLD_TARGET_S:g} s", status(t is not None and t <= COLD_TARGET_S)])
    if out.get("help"):
        rows.append(["`convtrain --help`", spread(out["help"], "{:.3f} s"), "",
                     f"<= {HELP_TARGET_S:g} s", status(med(out["help"]) <= HELP_TARGET_S)])
    for (name, side), mem in sorted(out.get("memory", {}).items()):
        if side != "convtrain":
            continue
        tm = out["memory"].get((name, "torch"))
        c, t = mem["peak_kb"] / 1024, tm["peak_kb"] / 1024
        cb, tb = mem["baseline_kb"] / 1024, tm["baseline_kb"] / 1024
        label = (f"peak memory {name}: convtrain {c:.0f} MB (after imports+build {cb:.0f}), "
                 f"PyTorch {t:.0f} MB ({tb:.0f})")
        rows.append([label, f"{c / t:.2f}x PyTorch", "",
                     f"<= {MEMORY_TARGET}x", status(c / t <= MEMORY_TARGET)])
    if rows:
        L.append("## Start-up, compile, memory")
        L.append("")
        L += table(["", "measured", "others", "target", ""], rows)
        L.append("")
        L.append("Warm/cold: from launching `convtrain fit` (config copy with "
                 "checkpoint.every_steps: 1; data loading included) until step-00000001.npz "
                 "exists. Memory: peak resident set (VmHWM) of each side's worker process after training at "
                 "every batch size and inference at batch 256.")
        L.append("")

    prof = out.get("profile", {})
    if prof:
        L.append(f"## Per-layer profile of the training step, batch {PROFILE_BATCH} "
                 f"(ms, minimum over the repetitions)")
        L.append("")
        L.append("GFLOP/s: forward = layer flops x batch / forward time; backward = 2 x that / "
                 "backward time (1 x for the first layer: neither side computes its unused grad "
                 "input). PyTorch layers run on detached inputs, ReLU not in place. convtrain "
                 "runs as in training: a ReLU after a conv is fused into it (the conv's times "
                 "include the ReLU, whose row is ~0).")
        for name, info in infos.items():
            c, t = prof.get((name, "convtrain")), prof.get((name, "torch"))
            if not c:
                continue
            L.append("")
            L.append(f"### {name}")
            L.append("")
            L.append(f"(other processes used {c.get('others', 0):.2f} cores during convtrain's "
                     f"profile, {(t or {}).get('others', 0):.2f} during PyTorch's)")
            L.append("")
            tl = {l["name"]: l for l in (t or {}).get("layers", [])}
            flops = {r["name"]: r["flops"] for r in info["rows"]}
            step = c["other_ms"]["total"]
            rows = []
            for k, l in enumerate(c["layers"]):
                fl = flops[l["name"]] * PROFILE_BATCH
                bwd_k = 1 if k == 0 else 2      # the first layer has no grad input to compute
                heavy = l["type"] in ("conv", "dense", "local")

                def gf(ms, k, fl=fl, heavy=heavy):
                    return f"{k * fl / ms / 1e6:.0f}" if heavy and ms > 0 else ""

                tt = tl.get(l["name"], {})
                rows.append([l["name"], l["describe"], f"{l['fwd_ms']:.2f}", f"{l['bwd_ms']:.2f}",
                             f"{100 * (l['fwd_ms'] + l['bwd_ms']) / step:.0f}%",
                             gf(l["fwd_ms"], 1), gf(l["bwd_ms"], bwd_k),
                             f"{tt.get('fwd_ms', float('nan')):.2f}",
                             f"{tt.get('bwd_ms', float('nan')):.2f}",
                             gf(tt.get("fwd_ms", 0), 1), gf(tt.get("bwd_ms", 0), bwd_k)])
            for key in ("loss", "zero_grads", "grads_finite", "sgd_step"):
                cv_ = c["other_ms"].get(key)
                tv_ = (t or {}).get("other_ms", {}).get(key)
                rows.append([key, "", f"{cv_:.2f}" if cv_ is not None else "-", "",
                             f"{100 * cv_ / step:.0f}%" if cv_ is not None else "", "", "",
                             f"{tv_:.2f}" if tv_ is not None else "-", "", "", ""])
            cmed = c.get("other_med_ms", {}).get("total", float("nan"))
            tmin = (t or {}).get("other_ms", {}).get("total", float("nan"))
            tmed = (t or {}).get("other_med_ms", {}).get("total", float("nan"))
            rows.append(["**step** (min; median)", "", f"**{step:.2f}**; {cmed:.2f}", "", "", "",
                         "", f"**{tmin:.2f}**; {tmed:.2f}", "", "", ""])
            L += table(["layer", "", "fwd", "bwd", "% step", "GF/s fwd", "GF/s bwd",
                        "torch fwd", "torch bwd", "torch GF/s fwd", "torch GF/s bwd"], rows)
        L.append("")
    L.append("## How it was measured")
    L.append("")
    L += METHOD.strip().splitlines()
    return "\n".join(L) + "\n"


METHOD = """
- `make bench` = `python -m benchmarks.run` (code in benchmarks/: run.py drives, worker.py holds
  one side of one net in its own process, torch_nets.py is the PyTorch side, check.py the
  equivalence check). `--quick` for a smoke run, `--only NAME` for some nets or sections.
- Both sides use 2 threads (numba's 2 threads; torch.set_num_threads(2)), float32, NCHW,
  synthetic data (standard normal images, uniform labels; no data loading in the timed loops),
  the config's SGD (momentum 0.9, its weight decay, none on biases) and learning rate. Both
  workers run with the same glibc malloc setting (freed memory stays in the heap; convtrain sets
  it itself, PyTorch gets it through MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_).
- Training step, convtrain: the trainer's (reseed, zero grads, forward, loss, backward,
  gradient finiteness check, error count, SGD update; not the rollback snapshot every 50 steps).
  PyTorch: zero_grad, forward, cross_entropy, backward, SGD.step, loss.item().
- Inference at batch 256: convtrain `predict`; PyTorch eval mode under inference_mode;
  onnxruntime (section `onnx`): the net exported by convtrain.export, CPU provider, 2 intra-op
  threads, sequential execution, default graph optimisations.
- The PyTorch nets are written as a careful user would: in-place ReLU; LCN as in convtrain
  (Torch7 style: Gaussian 9x9 window, sigma 2.25 px, border correction, threshold 1e-4) in the
  efficient form: the channel mean first, then the separable window applied as two products with
  banded (H, H) and (W, W) matrices (this was ~2.5x faster here than two 1-D F.conv2d calls);
  ceil-mode pools with count_include_pad=False (both sides divide a clipped window by its
  in-image cells). The equivalence check loads convtrain's weights into the PyTorch twin and
  compares logits, loss and every weight gradient.
- Repetitions alternate between the sides (convtrain, torch, torch, convtrain, ...) so both
  see the same machine; each repetition lasts ~0.4 s (at least 2 steps). Before a repetition
  the driver waits (up to 1 s, 90 s in all) for other processes to leave the CPUs idle, and
  repeats pairs during which they did not. On this 2-core VM another busy process costs every
  parallel region a scheduler slice (~4 ms): a step with dozens of regions slows several-fold,
  so the "others" columns say how much CPU other processes took during each measurement.
- GFLOP/s use convtrain's own flop count (2 x multiply-adds, forward, per image) x 3 for a
  training step. The matmul ceiling: numpy float32 2048x2048 with OpenBLAS on 2 threads, in a
  subprocess (convtrain itself pins OpenBLAS to 1 thread so it never fights numba's pool).
- Memory: peak resident set (VmHWM) of each side's worker process; the baseline is after
  imports and building the net.
- Warm start: a copy of the config with checkpoint.every_steps: 1, launched as
  `convtrain fit CONFIG --out TMP --quiet`; the time until TMP/step-00000001.npz exists (so it
  includes loading the data set and writing that checkpoint). Cold: the same with
  NUMBA_CACHE_DIR pointing at an empty folder. cifar-like reads a synthetic 50,000-image npz
  instead of the CIFAR-10 batches.
"""


# --- main ---------------------------------------------------------------------------------------

def parse_only(values):
    names = set()
    for v in values or []:
        names.update(x.strip() for x in v.split(",") if x.strip())
    unknown = names - set(NETS) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"--only: unknown {sorted(unknown)}; known: "
                         f"{', '.join(list(NETS) + list(SECTIONS))}")
    nets = [n for n in NETS if n in names] or list(NETS)
    sections = [s for s in SECTIONS if s in names]
    if not sections:
        sections = ["ceiling", "throughput"] if names else list(SECTIONS)
    if "throughput" in sections and "ceiling" not in sections:
        sections.insert(0, "ceiling")
    return nets, sections


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a ~1 minute smoke run")
    ap.add_argument("--only", action="append", metavar="NAME",
                    help=f"nets ({', '.join(NETS)}) and/or sections ({', '.join(SECTIONS)})")
    ap.add_argument("--out", help="also write the report here (default: benchmarks/RESULTS.md "
                                  "for a full run of everything, nowhere otherwise)")
    ap.add_argument("--json", metavar="PATH", help="also dump every raw measurement here")
    ap.add_argument("--wait-quiet", type=float, default=None, metavar="SECONDS",
                    help="wait at most this long in all (default 90; 0 in --quick) for other "
                         "processes to leave the CPUs alone before repetitions")
    args = ap.parse_args(argv)
    nets, sections = parse_only(args.only)
    global QUIET
    budget = args.wait_quiet if args.wait_quiet is not None else (0.0 if args.quick else 90.0)
    if budget > 0:
        QUIET = Quiet(per_call=min(1.0, budget), budget=budget)
    if args.quick and not args.only:
        sections = [s for s in sections if s not in ("check", "cold", "sweep")]
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    from convtrain import runtime
    runtime.configure()   # before numpy loads; the workers inherit its environment

    t_start = time.perf_counter()
    busy0, own0 = cpu_busy_seconds(), own_cpu_seconds()
    out = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine(),
           "load_start": loadavg()}
    log(f"convtrain benchmark: nets {nets}, sections {sections}; load {out['load_start']}")
    infos = {n: net_info(n) for n in nets}
    tmp = tempfile.mkdtemp(prefix="convtrain-bench-")
    try:
        if "check" in sections:
            log("[check] PyTorch twins against convtrain")
            run_check(infos, out)
        if "ceiling" in sections:
            log("[ceiling] numpy matmul")
            run_ceiling(out, args.quick)
        if "throughput" in sections:
            run_throughput(infos, args, tmp, out)
        if "onnx" in sections:
            run_onnx(infos, args, tmp, out)
        if "ceiling" in sections and "throughput" in sections:
            run_ceiling(out, args.quick)
        if "help" in sections:
            log("[help] convtrain --help")
            run_help(out, args.quick)
        runnable = {n: i for n, i in infos.items() if have_data(i)}
        for n in infos:
            if n not in runnable and ("warm" in sections or "cold" in sections):
                out.setdefault("notes", []).append(f"{n}: its data set is missing; no fit timings")
        if "warm" in sections:
            run_warm(runnable, out, tmp, args.quick)
        if "cold" in sections:
            run_cold(runnable, out, tmp)
        if "sweep" in sections:
            log("[sweep] 4 trials on a LocalCluster vs one after another")
            run_sweep(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    wall = time.perf_counter() - t_start
    out["wall"] = wall
    out["load_end"] = loadavg()
    out["other_cpu"] = max(0.0, (cpu_busy_seconds() - busy0) - (own_cpu_seconds() - own0)) / wall
    text = report(out, infos, args)
    print(text)
    if args.json:
        raw = {k: v for k, v in out.items() if not k.startswith("_")}

        def plain(o):
            if isinstance(o, dict):
                return {" | ".join(map(str, k)) if isinstance(k, tuple) else str(k): plain(v)
                        for k, v in o.items()}
            if isinstance(o, (list, tuple)):
                return [plain(v) for v in o]
            return o

        Path(args.json).write_text(json.dumps(plain(raw), indent=1))
    target = args.out or (str(RESULTS) if not args.quick and not args.only else None)
    if target:
        Path(target).write_text(text + kept_notes(Path(target)))
        log(f"written to {target}")


NOTES_HEADING = "## Kernel notes"


def kept_notes(path: Path) -> str:
    """The hand-written notes at the end of RESULTS.md (measured facts behind the code's choices),
    which a new report must not drop."""
    try:
        old = path.read_text()
    except OSError:
        return ""
    at = old.find(NOTES_HEADING)
    return "" if at < 0 else "\n" + old[at:]


if __name__ == "__main__":
    main()
