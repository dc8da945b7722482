"""Run folders: where a run's files go, and the rules that keep one run from destroying another.

A run folder (`runs/<name>/`, or fit's --out) holds one run's files (`RUN_FILES`): the resolved
config.yaml, metrics.jsonl and .csv, checkpoints and pictures. Starting a run there must never
silently overwrite earlier work:
  * a folder that already holds a run needs `resume` (continue it) or `fresh` (move that run's
    files aside into previous-<time>/ first; the user's other files stay where they are);
  * a checkpoint from another folder is never resumed into a folder holding a run;
  * the resolved config.yaml never overwrites the user's own config file.
"""
from __future__ import annotations

import fnmatch
import os
import time

from .. import config as configmod
from ..errors import ConvtrainError

RUN_FILES = ("config.yaml", "metrics.jsonl", "metrics.csv", "last.npz", "best.npz", "epoch-*.npz",
             "step-*.npz", ".tmp-*.npz", "curves.png", "filters.png", "features-*.png")
AUTO = "auto"   # resume from <folder>/last.npz when there is one
CHECKPOINT_CHOICES = ("best.npz", "last.npz")   # what a run folder stands for, in order


def default_dir(cfg) -> str:
    return os.path.join("runs", cfg.name)


def prepare(out_dir: str, config_path: str, *, resume: str | None = None,
            fresh: bool = False) -> str | None:
    """Check that a run may start in `out_dir` -> the checkpoint to resume from, or None.

    `resume` is a checkpoint path or AUTO; `fresh` moves an earlier run's files aside.
    ConvtrainError when starting would overwrite a run or the config file itself."""
    check_own_config(out_dir, config_path)
    last = os.path.join(out_dir, "last.npz")
    holds_run = os.path.exists(last) or os.path.exists(os.path.join(out_dir, "metrics.jsonl"))
    if resume and resume != AUTO:
        here = os.path.realpath(os.path.dirname(os.path.abspath(resume)))
        if holds_run and here != os.path.realpath(out_dir):
            raise ConvtrainError(
                f"{out_dir} already holds another run; resuming {resume} there would overwrite "
                f"its checkpoints: pass --out with a new folder "
                f"(or {os.path.dirname(resume) or '.'})")
        return resume
    if resume == AUTO:
        return last if os.path.exists(last) else None
    if holds_run:
        if not fresh:
            raise ConvtrainError(
                f"{out_dir} already holds a run; pass --resume to continue it or --fresh to start "
                f"over (the old files are kept in {out_dir}/previous-*/)")
        move_aside(out_dir)
    return None


def check_own_config(out_dir: str, config_path: str) -> None:
    """The run writes <out_dir>/config.yaml: refuse when that is the user's own config file."""
    own = os.path.join(out_dir, "config.yaml")
    if not (os.path.isfile(own) and os.path.exists(config_path)
            and os.path.samefile(own, config_path)):
        return
    with open(own, encoding="utf-8", errors="replace") as f:
        if f.readline().startswith("# resolved config"):   # a run's own: rewriting it is harmless
            return
    raise ConvtrainError(f"the run folder {out_dir} is where CONFIG lives: writing the run's "
                         f"resolved config.yaml would overwrite {config_path}; pass another --out")


def move_aside(out_dir: str) -> str:
    """Move the run's files (not the user's data or notes) into a new previous-<time>/ -> it."""
    keep = os.path.join(out_dir, time.strftime("previous-%Y%m%d-%H%M%S"))
    n = 1
    while os.path.exists(keep if n == 1 else f"{keep}-{n}"):   # two fresh starts in one second
        n += 1
    keep = keep if n == 1 else f"{keep}-{n}"
    os.makedirs(keep)
    for name in os.listdir(out_dir):
        path = os.path.join(out_dir, name)
        if os.path.isfile(path) and any(fnmatch.fnmatchcase(name, p) for p in RUN_FILES):
            os.replace(path, os.path.join(keep, name))
    return keep


def checkpoint_in(path: str) -> str:
    """A checkpoint path as given, or a run folder's best.npz, else its last.npz (eval, show,
    predict take either). ConvtrainError when a folder holds neither."""
    return _file_in(path, CHECKPOINT_CHOICES, "a checkpoint")


def config_in(path: str) -> str:
    """A config path as given, or a run folder's resolved config.yaml (summary takes either)."""
    return _file_in(path, ("config.yaml",), "a run's config")


def metrics_in(path: str) -> str:
    """What `plot` reads: a metrics.jsonl as given, the folder itself, or the run folder of one
    of its files (a checkpoint, the config, a picture) when given that file."""
    if os.path.isfile(path) and not path.endswith(".jsonl"):
        return os.path.dirname(path) or "."
    return path


def _file_in(path: str, names: tuple[str, ...], what: str) -> str:
    if not os.path.isdir(path):
        return path
    for name in names:
        candidate = os.path.join(path, name)
        if os.path.isfile(candidate):
            return candidate
    looked = " or ".join(os.path.join(path, n) for n in names)
    raise ConvtrainError(f"{path}: a folder without {what} (looked for {looked})")


def write_config(out_dir: str, cfg) -> str:
    """Write the resolved config (every default filled in) to <out_dir>/config.yaml -> its path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "config.yaml")
    with open(path, "w") as f:
        f.write(configmod.dump(cfg))
    return path
