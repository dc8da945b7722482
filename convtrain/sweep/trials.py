"""One trial of a sweep: a normal run folder `<sweep>/trial-NNN/` with its resolved config.yaml,
and a `done` marker holding the trial's result as JSON once it has finished.

`run(trial)` is the function a Dask worker runs. It trains with `train.session.run_fit` into the
trial's folder, resuming from its last.npz when an earlier attempt left one (a worker killed
mid-trial: Dask hands the trial to another worker, which continues where the checkpoint is;
everything random is a function of (seed, step), so the result is the uninterrupted one). A
trial that fails on the user's side (it diverges beyond the guard's retries, bad data) is a
finished trial with status "failed", not a failed sweep.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from .files import write_atomic

DONE = "done"
OK, FAILED = "ok", "failed"
STOPPED = "stopped"   # a trial the client stopped (Ctrl-C): no done marker, --resume continues it
VALIDATION_ERROR = "validation error"   # FitResult.metric when the data has a validation split


@dataclass(frozen=True)
class Trial:
    """What a worker needs to run one trial; plain data, so that Dask can send it anywhere."""
    index: int
    point: dict[str, Any]           # the swept keys' values
    folder: str                     # absolute: a remote worker sees the same path
    config_text: str                # the resolved config (config.dump)
    fold: int | None = None
    group: int = 0                  # the point's index: the folds of one config share it
    stop_file: str | None = None    # once it exists, the trial stops (Ctrl-C in the client)

    @property
    def name(self) -> str:
        return os.path.basename(self.folder)

    @property
    def config_path(self) -> str:
        return os.path.join(self.folder, "config.yaml")


def folder_name(index: int) -> str:
    return f"trial-{index:03d}"


def read_done(folder: str) -> dict | None:
    """The result of a finished trial, or None (not started, running, or killed)."""
    try:
        with open(os.path.join(folder, DONE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_done(folder: str, row: dict) -> None:
    """Atomically: a marker is whole or absent, never half written by a killed worker."""
    os.makedirs(folder, exist_ok=True)
    write_atomic(os.path.join(folder, DONE), json.dumps(row, sort_keys=True) + "\n")


def row_base(trial: Trial) -> dict:
    return {"trial": trial.name, "index": trial.index, "group": trial.group,
            "point": dict(trial.point), "fold": trial.fold, "folder": trial.folder}


def failed_row(trial: Trial, message: str) -> dict:
    return {**row_base(trial), "status": FAILED, "error": message, "val_error": None}


def run(trial: Trial) -> dict:
    """Train one trial (on a Dask worker) -> its result row; writes the `done` marker."""
    from .. import runtime
    runtime.configure()   # before numba loads, in a worker started by `dask worker` too
    done = read_done(trial.folder)
    if done is not None:   # finished by an earlier attempt: never trained twice
        return done
    from .. import config as configmod
    from ..errors import ConvtrainError
    from ..train.session import run_fit
    from ..train.trainer import Interrupted

    cfg = configmod.loads(trial.config_text, source=trial.config_path)
    last = os.path.join(trial.folder, "last.npz")
    resume_step, unreadable = _checkpoint_step(last)
    compiled, loaded = kernel_compiles()
    start = time.perf_counter()
    row = row_base(trial)
    if unreadable:   # kept in the run's previous-*/ folder by the fresh start
        row["discarded_checkpoint"] = unreadable
    try:
        # no checkpoint: start afresh (an attempt killed before its first one moves aside)
        result = run_fit(cfg, config_path=trial.config_path, out_dir=trial.folder,
                         resume="auto" if resume_step is not None else None,
                         fresh=resume_step is None, reporter=_StopWatch(trial.stop_file))
        # without a validation split best_val_error is the best training loss: never ranked
        # with the error rates, kept in the row as `best_loss`
        validated = result.metric == VALIDATION_ERROR
        row.update(status=OK, val_error=result.best_val_error if validated else None,
                   best_loss=None if validated else result.best_val_error, metric=result.metric,
                   best_epoch=result.best_epoch, steps=result.steps, best_checkpoint=result.best_checkpoint,
                   warnings=[w["message"] if isinstance(w, dict) else str(w)
                             for w in result.warnings])
    except ConvtrainError as e:
        row.update(status=FAILED, error=str(e), val_error=None)
    except Interrupted:   # stopped: not done, --resume continues it from the last.npz written
        return {**row, "status": STOPPED, "val_error": None}
    compiled2, loaded2 = kernel_compiles()
    row.update(seconds=round(time.perf_counter() - start, 3), resumed_from_step=resume_step,
               kernels_compiled=compiled2 - compiled, kernels_from_cache=loaded2 - loaded,
               numba_threads=_numba_threads(), host=socket.gethostname())
    write_done(trial.folder, row)
    return row


class _StopWatch:
    """The trainer's reporter in a sweep (train.trainer.SilentReporter's methods): every second
    or so, has the client asked the trials to stop? A file beside the trials' folders, so that
    a worker needs nothing but the file system it writes the runs to."""
    POLL_SECONDS = 1.0

    def __init__(self, stop_file: str | None):
        self.stop_file = stop_file
        self.next_poll = time.monotonic() + self.POLL_SECONDS

    def step(self, trainer, loss, lr):
        if self.stop_file is None or time.monotonic() < self.next_poll:
            return
        self.next_poll = time.monotonic() + self.POLL_SECONDS
        if os.path.exists(self.stop_file):   # the trainer's own Ctrl-C path: saves last.npz
            trainer.request_stop()

    def start(self, trainer): pass
    def epoch(self, trainer, row): pass
    def event(self, message): pass
    def warning(self, message): pass
    def close(self): pass


def _checkpoint_step(path: str) -> tuple[int | None, str | None]:
    """(the step a resumable checkpoint holds, None) or (None, why it cannot be read); (None,
    None) when there is none. An unreadable one (a worker killed while writing it, a full disk)
    is a reason to start the trial afresh, not a failed trial: the fresh start moves it aside."""
    if not os.path.exists(path):
        return None, None
    from ..train import checkpoint as ckpt
    try:
        return int(ckpt.load(path).meta.step), None
    except Exception as e:   # noqa: BLE001 - whatever is wrong with it, the trial starts over
        return None, f"{path}: {e}"


def kernel_compiles() -> tuple[int, int]:
    """(signatures compiled, signatures loaded from numba's on-disk cache) so far in this
    process, over convtrain's kernels: a trial that compiled nothing found them all cached."""
    compiled = loaded = 0
    seen = set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("convtrain.") or module is None:
            continue
        for obj in list(vars(module).values()):
            stats = getattr(obj, "stats", None)
            if id(obj) in seen or not hasattr(obj, "py_func") or stats is None:
                continue
            seen.add(id(obj))
            compiled += sum(stats.cache_misses.values())
            loaded += sum(stats.cache_hits.values())
    return compiled, loaded


def _numba_threads() -> int | None:
    numba = sys.modules.get("numba")
    return numba.get_num_threads() if numba is not None else None
