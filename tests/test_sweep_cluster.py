"""The done-when of issue 15: a real `dask scheduler` and two `dask worker` processes on
127.0.0.1, a 4-trial sweep, one worker killed mid-trial; the sweep still finishes and every
trial's result (metrics and final weights) equals, bit for bit, the same trial run alone.

Training is bit-identical for a given numba thread count (parallel reductions split by thread),
so the workers and the runs alone all use NUMBA_NUM_THREADS=1."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import synthetic

pytest.importorskip("distributed")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 300


def _env():
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    return env


def _start(args, log):
    return subprocess.Popen([sys.executable, "-m", *args], env=_env(), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture
def dask_cluster(tmp_path):
    """(scheduler address, {worker name: its Popen}); everything killed at the end."""
    from distributed import Client
    sched_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "dask.log", "w")
    procs = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(sched_file)], log)]
    workers = {}
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for name in ("wA", "wB"):
            workers[name] = _start(["distributed.cli.dask_worker", "--scheduler-file",
                                    str(sched_file), "--nthreads", "1", "--nworkers", "1",
                                    "--no-dashboard", "--host", "127.0.0.1", "--name", name], log)
            procs.append(workers[name])
        with Client(scheduler_file=str(sched_file), timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            address = client.scheduler.address
        yield address, workers, sched_file
    finally:
        for proc in reversed(procs):
            _stop(proc)
        log.close()


def _config(tmp_path):
    data = synthetic.write_dataset(tmp_path, n_train=1088)   # 1024 training images: 32 steps
    text = synthetic.CONFIG.format(path=data, epochs=8)       # 8 epochs: 256 steps a trial
    text = text.replace("checkpoint: {every: 1, keep: 2}", "checkpoint: {every: 1, every_steps: 8, keep: 2}")
    path = tmp_path / "synth.yaml"
    path.write_text(text)
    return path


def _running_with_checkpoint(client, worker_name, folder):
    """The trial the worker runs, once that trial has a checkpoint and is not done."""
    info = client.scheduler_info()["workers"]
    address = next((a for a, w in info.items() if w.get("name") == worker_name), None)
    for key in client.processing().get(address, ()):
        name = "trial-" + str(key).rsplit("trial-", 1)[-1]
        trial = folder / name
        if (trial / "last.npz").exists() and not (trial / "done").exists():
            return name
    return None


def test_a_killed_worker_s_trial_resumes_elsewhere_bit_for_bit(dask_cluster, tmp_path):
    from distributed import Client
    address, workers, sched_file = dask_cluster
    cfg = _config(tmp_path)
    sweep = subprocess.Popen(
        [sys.executable, "-m", "convtrain", "sweep", str(cfg), "--set", "optim.lr=0.05,0.02",
         "--set", "optim.momentum=0.9,0.5", "--scheduler", address, "--out", "sw"],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    folder = tmp_path / "sw"
    killed = None
    try:
        with Client(scheduler_file=str(sched_file), timeout="30s") as client:
            deadline = time.monotonic() + TIMEOUT
            while killed is None and sweep.poll() is None and time.monotonic() < deadline:
                killed = _running_with_checkpoint(client, "wA", folder)
                time.sleep(0.02)
        assert killed, "worker wA never ran a trial past its first checkpoint"
        _stop(workers["wA"])
        out, _ = sweep.communicate(timeout=TIMEOUT)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, out
    done = {t: json.loads((folder / t / "done").read_text()) for t in
            (f"trial-{i:03d}" for i in range(4))}
    assert all(d["status"] == "ok" and d["numba_threads"] == 1 for d in done.values()), done
    assert done[killed]["resumed_from_step"], done[killed]   # continued from its last.npz

    # the same trials run alone, one after another, with run_fit (what `fit` runs)
    script = ("import sys; from convtrain import runtime; runtime.configure()\n"
              "from convtrain import config as C; from convtrain.train.session import run_fit\n"
              "for t in sys.argv[1:]:\n"
              "    run_fit(C.load(t + '/config.yaml'), out_dir=t.replace('sw/', 'alone/'))\n")
    subprocess.run([sys.executable, "-c", script, *(f"sw/{t}" for t in done)], cwd=tmp_path,
                   env=_env(), check=True, timeout=TIMEOUT)
    for t, d in done.items():
        alone = tmp_path / "alone" / t
        for name in ("last.npz", "best.npz"):
            a, b = np.load(folder / t / name), np.load(alone / name)
            arrays = [k for k in a.files if k.startswith(("param/", "velocity/"))]
            assert arrays and all(np.array_equal(a[k], b[k]) for k in arrays), (t, name)
        assert _metrics(folder / t) == _metrics(alone), t
        assert d["val_error"] == _best(alone)


def _metrics(run):
    """Per epoch (the last row written for it: a killed attempt may have logged it before its
    checkpoint), what training computed; not the timings."""
    rows = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "epoch" in row:
            rows[row["epoch"]] = {k: row[k] for k in ("step", "train_loss", "train_error",
                                                     "val_loss", "val_error", "lr")}
    return rows


def _best(run):
    return min(r["val_error"] for r in _metrics(run).values())
