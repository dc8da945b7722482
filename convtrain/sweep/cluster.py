"""Where the trials run: a Dask `LocalCluster` sized to this machine, or an existing cluster
(`dask scheduler` + `dask worker`) at `tcp://HOST:PORT`.

The local cluster has `workers` processes of one Dask thread each (one trial at a time), each
worker's kernels running on `cores // workers` numba threads, so that workers x threads <= the
cores. Every worker calls runtime.configure() before its first trial, so its kernels come from
the same on-disk numba cache as `fit`'s; `warm_kernel_cache` fills that cache once, after the
workers are up but before any trial is submitted to them, so that they load the kernels instead
of each compiling them.

Training is bit-for-bit reproducible for a given numba thread count (the parallel reductions
split their work by thread): a trial's result row records the count it ran with.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal

from ..errors import ConvtrainError

INSTALL_HINT = "pip install convtrain[cluster]"
CONNECT_SECONDS = 10


def require_distributed():
    """The `distributed` module, or a ConvtrainError that says how to install it."""
    try:
        import distributed
    except ImportError:
        raise ConvtrainError("sweep and cv run their trials on Dask distributed, which is not "
                             f"installed: {INSTALL_HINT}") from None
    return distributed


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        return os.cpu_count() or 1


def size(trials: int, available: int, workers: int | None = None) -> tuple[int, int]:
    """(workers, numba threads per worker) with workers x threads <= `available` cores: one
    worker per trial up to the cores (trials are independent: more parallel trials beat more
    threads per trial), the cores left over shared out as threads."""
    if workers is None:
        workers = max(1, min(trials, available))
    workers = max(1, min(workers, available))
    return workers, max(1, available // workers)


@contextlib.contextmanager
def connect(scheduler: str | None = None, *, trials: int = 1, workers: int | None = None):
    """A dask Client: to the scheduler at `scheduler`, or to a new LocalCluster (closed on exit).
    Yields (client, description)."""
    distributed = require_distributed()
    if scheduler:
        client = _remote(distributed, scheduler)
        try:
            n = len(client.scheduler_info().get("workers", {}))
            yield client, f"the Dask cluster at {scheduler} ({n} workers now)"
        finally:
            client.close()
        return
    available = cores()
    n, threads = size(trials, available, workers)
    env = {"NUMBA_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": "1"}
    with _sigint_ignored():   # the workers inherit it: Ctrl-C reaches the client alone,
        cluster = distributed.LocalCluster(   # which then closes them (no tracebacks from them)
            n_workers=n, threads_per_worker=1, processes=True, env=env, dashboard_address=None,
            silence_logs=logging.ERROR)
    client = None
    try:   # the cluster's workers are closed even when the client cannot be made
        client = distributed.Client(cluster)
        capped = f" ({workers} asked, {available} cores)" if workers and workers > n else ""
        yield client, f"a local Dask cluster: {n} workers{capped} x {threads} numba threads"
    finally:
        if client is not None:
            client.close()
        cluster.close()


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored while worker processes start: an ignored signal stays ignored in a
    process started from this one (Python and asyncio install no handler over it)."""
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:   # not the main thread: nothing to protect
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _remote(distributed, address: str):
    try:
        return distributed.Client(address, timeout=f"{CONNECT_SECONDS}s")
    except (OSError, TimeoutError) as e:
        raise ConvtrainError(
            f"cannot reach the Dask scheduler at {address} ({e}); start one with "
            f"`dask scheduler` and workers with `dask worker {address}`, or leave out "
            "--scheduler to run on this machine") from None
    except ValueError as e:   # a malformed address
        raise ConvtrainError(f"--scheduler {address}: {e}; expected tcp://HOST:PORT") from None


def warm_kernel_cache(cfgs) -> int:
    """Compile the kernels of each distinct network among `cfgs` (configs with an `input`)
    into the on-disk cache, before any trial is submitted (the workers are up, idle): the
    precompile helper, run to its end, once per network (some kernels specialise on a layer's
    size); nothing for a network whose marker says the cache is warm. -> the number of helpers
    run."""
    from ..tools import precompile
    ran = 0
    # A network met again normally finds its marker written; `seen` still matters when the
    # helper failed (it writes no marker, `fit` compiles what it missed): one try, not one a trial.
    seen = set()
    for cfg in cfgs:
        network = repr(([(layer.type, layer.spec) for layer in cfg.model], cfg.input))
        if cfg.input is None or network in seen:
            continue
        seen.add(network)
        proc = precompile.start(cfg, cfg.input)
        if proc is not None:
            try:
                proc.wait()
            finally:   # Ctrl-C while waiting: the helper must not outlive the sweep
                precompile.stop(proc)
            ran += 1
    return ran
