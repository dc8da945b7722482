"""One training run from a checked config to its run folder: what `convtrain fit`, the Python
API's `convtrain.fit` and a sweep's trials all do.

    run_fit(cfg, out_dir=...) -> FitResult

The steps: pick the run folder (resume, fresh, or refuse to overwrite a run: runs.py), load the
checkpoint to resume from, start the kernel-compiling helper on a cold cache, load the data,
choose the learning rate (`auto_lr`), build the network, restore it, write the resolved config,
train. Nothing here prints: what a person may want to know goes to `on_note(Note)` and into the
result. `trainer.Interrupted` (Ctrl-C, SIGTERM) propagates after the helper is stopped, so the
caller can say how to resume.

The layers above this one come in as arguments, so that imports keep pointing down:
`compile_helper` is tools/precompile.py (or None: no helper process, e.g. in a sweep's workers)
and `auto_lr(cfg, splits, checkpoint) -> rate` is how `--lr auto` chooses (tools/lr_search.py).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import config as configmod
from .. import data as datamod
from ..nn.network import Network
from . import checkpoint as ckpt
from . import runs
from .trainer import Trainer

COMPILING = "compiling kernels (first run only)"


@dataclass(frozen=True)
class Note:
    """Something a person may want to know. `kind`: "compiling" (a cold kernel cache),
    "resuming" (where the run continues from), "changed" (the config differs from the
    checkpoint's: a changed rate or number of epochs)."""
    kind: str
    message: str


@dataclass(frozen=True)
class FitResult:
    """What a run left behind and how it went.

    `best_val_error` is the best validation error (a fraction), or the best training loss when
    the data has no validation split (`metric` says which), None when no epoch ended.
    `warnings`: {reason, message} dicts when the run ended broken (learned nothing, dead units).
    """
    run_dir: str
    best_checkpoint: str | None
    last_checkpoint: str | None
    best_val_error: float | None
    best_epoch: int | None
    steps: int
    epochs: int
    metric: str
    config: Any                      # the Config trained (after --lr auto)
    resumed_from: str | None = None
    warnings: tuple = ()
    notes: tuple = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return not self.warnings


def run_fit(cfg, *, config_path: str | None = None, out_dir: str | None = None,
            resume: str | None = None, fresh: bool = False, reporter=None,
            auto_lr: Callable | None = None, compile_helper=None,
            on_note: Callable[[Note], None] | None = None) -> FitResult:
    """Train `cfg` into `out_dir` (default runs/<name>) -> FitResult.

    `config_path`: the user's config file (never overwritten by the run's config.yaml; default
    cfg.source). `resume`: a checkpoint path or "auto" (<out_dir>/last.npz if any); `fresh`:
    move an earlier run in `out_dir` aside. `reporter`: the trainer's reporter (default silent).
    ConvtrainError for anything wrong with the config, data, folder or checkpoint.
    """
    notes: list[Note] = []

    def note(kind, message):
        notes.append(Note(kind, message))
        if on_note is not None:
            on_note(notes[-1])

    out_dir = out_dir or runs.default_dir(cfg)
    resume_path = runs.prepare(out_dir, config_path or cfg.source, resume=resume, fresh=fresh)
    checkpoint = ckpt.load(resume_path) if resume_path else None
    helper = None
    try:
        # On a cold cache a helper process compiles the kernels from the network's end while
        # this one loads the data and compiles from the start (tools/precompile.py).
        if cfg.input:
            helper = _start_helper(compile_helper, cfg, cfg.input, note)
        splits = datamod.load(cfg.data, seed=cfg.seed, input_shape=cfg.input)
        if auto_lr is not None:
            cfg = configmod.with_overrides(cfg, lr=auto_lr(cfg, splits, checkpoint))
        net = Network.build(cfg.model, splits.input_shape, seed=cfg.seed, source=cfg.source)
        if not cfg.input:   # (with cfg.input, the data's shape is that one: already checked)
            helper = _start_helper(compile_helper, cfg, splits.input_shape, note)
        trainer = Trainer(cfg, net, splits, out_dir, reporter=reporter)
        if checkpoint is not None:
            for message in trainer.restore(checkpoint):
                note("changed", message)
            note("resuming", f"resuming from {resume_path} at step {trainer.step}")
        runs.write_config(out_dir, cfg)
        result = trainer.fit()
    finally:
        if compile_helper is not None:
            compile_helper.stop(helper)
    return FitResult(
        run_dir=out_dir,
        best_checkpoint=_existing(result["best_checkpoint"]),
        last_checkpoint=_existing(os.path.join(out_dir, "last.npz")),
        best_val_error=result["best_val_error"], best_epoch=result["best_epoch"],
        steps=result["step"], epochs=result["step"] // trainer.steps_per_epoch,
        metric="validation error" if len(splits.val.y) else "training loss",
        config=cfg, resumed_from=resume_path, warnings=tuple(result["warnings"]),
        notes=tuple(notes))


def _start_helper(compile_helper, cfg, input_shape, note):
    """Start the compiling helper; on a cold cache say that the first epoch starts late."""
    if compile_helper is None:
        return None
    if not compile_helper.is_warm(cfg, input_shape):
        note("compiling", COMPILING)
    return compile_helper.start(cfg, input_shape)


def _existing(path: str) -> str | None:
    return path if os.path.exists(path) else None
