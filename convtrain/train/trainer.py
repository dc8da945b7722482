"""The training loop: SGD steps, rollback and halving on divergence, evaluation, checkpoints and
Ctrl-C. The step itself and the divergence test are step.py's.

Everything random is a pure function of (seed, step): the epoch's batch order of (seed, epoch),
augmentation and dropout of (seed, step). A checkpoint therefore only needs the step to resume
bit-identically, at any point, mid-epoch included.
"""
from __future__ import annotations

import glob
import json
import math
import os
import signal
import time
from dataclasses import dataclass, field, replace

import numpy as np

from . import checkpoint as ckpt
from .. import config as configmod
from .. import data as datamod
from . import schedules as schedule
from ..errors import CheckpointError, DivergenceError
from . import health
from .checkpoint import CheckpointMeta, EpochSums, GuardRecord
from .evaluate import evaluate
from .optim import init_velocities, sgd_step
from .step import DivergenceGuard, StepResult, train_step

CSV_FIELDS = ("epoch", "step", "train_loss", "train_error", "val_loss", "val_error", "lr",
              "seconds", "images_per_s", "divergences")


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: the trainer wrote a resumable checkpoint at `path`."""

    def __init__(self, path: str):
        super().__init__(path)
        self.path = path


class SilentReporter:
    """What the trainer tells the outside world; the CLI supplies a console version."""

    def start(self, trainer): pass
    def step(self, trainer, loss: float, lr: float): pass
    def epoch(self, trainer, row: dict): pass
    def event(self, message: str): pass
    def warning(self, message: str): pass
    def close(self): pass


@dataclass
class Halvings:
    """The learning rate's halvings after divergences."""
    lr_scale: float = 1.0       # their product
    retries: int = 0            # halvings since training last got past a failure point
    fail_step: int = -1         # the furthest step that diverged
    history: list = field(default_factory=list)   # rates tried, for the final error
    dead_at_rollback: dict = field(default_factory=dict)   # the rollback point's dead units


class Trainer:
    def __init__(self, cfg, network, splits, out_dir: str, *, reporter=None):
        network.require_class_scores(cfg.source)
        self.cfg = cfg
        self.net = network
        self.splits = splits
        self.out_dir = out_dir
        self.reporter = reporter or SilentReporter()
        self.velocities = init_velocities(network)
        n = len(splits.train.y)
        self.batch_size = cfg.train.batch_size
        self.schedule = datamod.BatchSchedule(n, self.batch_size, seed=cfg.seed)
        self.steps_per_epoch = self.schedule.per_epoch
        self.total_steps = cfg.train.epochs * self.steps_per_epoch
        self.step = 0
        self.best_val_error = math.inf
        self.best_epoch = None
        self.num_classes = network.layers[-1].output_shape[0]
        self.guard = DivergenceGuard.for_network(network, cfg.divergence,
                                                 batch_size=self.batch_size)
        self.halvings = Halvings()
        self.epoch_sums = EpochSums()
        self._stop_signal = None
        self._snapshot = None
        self._warm_up = None   # (seconds, images) of this process's first step; see end_epoch
        network.require_labels(splits)
        self.config_text = configmod.dump(cfg)   # resolved: absolute data path, every default
        self._xbuf = np.empty((self.batch_size,) + tuple(splits.input_shape), dtype=np.float32)

    # --- learning rate ------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        f = schedule.factor(self.cfg.schedule, step, total=self.total_steps,
                            per_epoch=self.steps_per_epoch)
        return self.cfg.optim.lr * f * self.halvings.lr_scale

    # --- one step -----------------------------------------------------------------------------
    def batch(self, step: int):
        idx = self.schedule.indices(step)
        train = self.splits.train
        x = datamod.normalize(train.x, self.splits.mean, self.splits.std,
                              out=self._xbuf[:len(idx)], index=idx)
        if datamod.is_augmenting(self.cfg.data.augment):
            # pixels shifted in are black, as the images' own background
            x = datamod.augment(x, self.cfg.data.augment,
                                np.random.default_rng([self.cfg.seed, step, 1]), fill=self.splits.black)
        return x, train.y[idx]

    def train_step(self, step: int) -> StepResult:
        x, y = self.batch(step)
        return train_step(self.net, x, y, seed=self.cfg.seed, step=step)

    # --- snapshots ----------------------------------------------------------------------------
    def take_snapshot(self) -> None:
        self._snapshot = {
            "step": self.step,
            "state": {k: v.copy() for k, v in self.net.state_dict().items()},
            "velocities": {k: v.copy() for k, v in self.velocities.items()},
            "epoch_sums": replace(self.epoch_sums),
            "guard": self.guard.state(),
        }

    def restore_snapshot(self) -> None:
        snap = self._snapshot
        self.net.load_state_dict(snap["state"])
        for k, v in snap["velocities"].items():
            self.velocities[k][...] = v
        self.step = snap["step"]
        self.epoch_sums = replace(snap["epoch_sums"], divergences=self.epoch_sums.divergences)
        self.guard.load_state(snap["guard"])

    def measure_health(self) -> health.Health:
        """The network's loss and dead units on the first training images (train/health.py)."""
        x, y = health.probe_batch(self.splits, self.cfg.train.eval_batch_size)
        return health.measure(self.net, x, y)

    def units_died(self) -> str | None:
        """While watching after a rollback: did layers die since the rollback point? Checked
        before each snapshot, so that a broken network never becomes one."""
        if not self.guard.watching or self.step == self._snapshot["step"]:
            return None
        return health.units_died(self.halvings.dead_at_rollback, self.measure_health())

    def handle_divergence(self, loss: float, why: str) -> None:
        g = self.halvings
        d = self.cfg.divergence
        if self.step > g.fail_step:
            g.fail_step = self.step
        g.retries += 1
        g.history.append(self.lr_at(self.step))
        if g.retries > d.max_retries:
            tried = ", ".join(f"{r:.3g}" for r in g.history)
            last = os.path.join(self.out_dir, "last.npz")
            where = f"; the last good checkpoint is {last}" if os.path.exists(last) else ""
            # no rate changes the loss of the first step: it comes before any update
            first = (" (at step 0, before any update: check the initialisation and the data "
                     "normalisation)" if g.fail_step == 0 else "")
            raise DivergenceError(
                f"training diverged at step {g.fail_step} after {d.max_retries} halvings of the "
                f"learning rate (rates tried: {tried}){where}{first}; lower optim.lr or check "
                f"the data")
        g.lr_scale /= d.factor
        self.restore_snapshot()
        self.guard.watch()   # the halved rate must prove itself from the rollback point
        g.dead_at_rollback = self.measure_health().dead
        self.epoch_sums.divergences += 1
        new_lr = self.lr_at(self.step)
        self.log_json({"event": "divergence", "step": g.fail_step, "loss": _finite_or_none(loss),
                       "lr": new_lr, "rollback_to": self.step, "reason": why})
        self.reporter.event(f"diverged at step {g.fail_step} (loss {loss:.4g}, {why}): rolled "
                            f"back to step {self.step}, learning rate now {new_lr:.4g}")

    # --- the loop -----------------------------------------------------------------------------
    def fit(self) -> dict:
        cfg = self.cfg
        os.makedirs(self.out_dir, exist_ok=True)
        self._install_signals()
        self.reporter.start(self)
        self.take_snapshot()
        epoch_start = time.perf_counter()
        last_ckpt_time = time.monotonic()
        first_step = True
        try:
            while self.step < self.total_steps:
                if self._stop_signal is not None:
                    raise Interrupted(self.save("last.npz"))
                step = self.step
                lr = self.lr_at(step)
                result = self.train_step(step)
                why = self.guard.judge(result.loss)
                if why is None and step % cfg.divergence.snapshot_every == 0:
                    why = self.units_died()
                if why is not None:
                    self.handle_divergence(result.loss, why)
                    continue
                # Snapshot a state only once its loss proved healthy: an update that blew the
                # weights up shows only in the next step's loss.
                if step % cfg.divergence.snapshot_every == 0:
                    self.take_snapshot()
                sgd_step(self.net, self.velocities, lr, cfg.optim)
                self.guard.accept(result.loss)
                self.step += 1
                if self.step > self.halvings.fail_step + cfg.divergence.snapshot_every:
                    self.halvings.retries = 0
                    self.guard.settle()
                s = self.epoch_sums
                s.loss += result.loss * result.n
                s.errors += result.errors
                s.seen += result.n
                if first_step:   # numba compiles (cold cache) or loads the kernels in it
                    self._warm_up = (time.perf_counter() - epoch_start, result.n)
                    first_step = False
                self.reporter.step(self, result.loss, lr)
                # The epoch's end (validation, best.npz) comes before any checkpoint of this
                # step: a last.npz at an epoch boundary means that epoch was fully closed, so a
                # run killed in between and resumed from it never skips an epoch's validation.
                epoch_saved = False
                if self.step % self.steps_per_epoch == 0:
                    now = time.perf_counter()
                    s.seconds += now - epoch_start
                    epoch_saved = self.end_epoch()
                    epoch_start = time.perf_counter()
                    last_ckpt_time = time.monotonic()
                ck = cfg.checkpoint
                if ck.every_steps and self.step % ck.every_steps == 0 and not epoch_saved:
                    self.save_rotating()
                if ck.every_minutes and time.monotonic() - last_ckpt_time > 60 * ck.every_minutes:
                    self.save("last.npz")
                    last_ckpt_time = time.monotonic()
            warnings = self.warn()
        finally:
            self._restore_signals()
            self.reporter.close()
        return self.result(warnings)

    def warn(self) -> list[health.RunWarning]:
        """Tell the outside world (reporter and metrics.jsonl) if the run ends broken."""
        prior = health.prior_loss(self.splits.train.y, self.num_classes)
        found = health.warnings(self.measure_health(), prior)
        for w in found:
            self.log_json({"event": "warning", "step": self.step, "reason": w.reason,
                           "message": w.message})
            self.reporter.warning(w.message)
        return found

    def end_epoch(self) -> bool:
        """Validate, log, keep the best; True when it wrote an epoch checkpoint and last.npz."""
        cfg = self.cfg
        epoch = self.step // self.steps_per_epoch
        s = self.epoch_sums
        val = evaluate(self.net, self.splits.val, self.splits.mean, self.splits.std,
                       batch_size=cfg.train.eval_batch_size, num_classes=self.num_classes)
        seconds = s.seconds
        # The speed leaves out the process's first step, which loads or compiles the kernels
        # (seconds on a cold cache); `seconds` stays the epoch's wall time.
        timed, images = seconds, s.seen
        if self._warm_up is not None and s.seen > self._warm_up[1] and seconds > self._warm_up[0]:
            timed, images = seconds - self._warm_up[0], s.seen - self._warm_up[1]
        self._warm_up = None
        row = {
            "epoch": epoch, "step": self.step,
            "train_loss": s.loss / max(s.seen, 1), "train_error": s.errors / max(s.seen, 1),
            "val_loss": _finite_or_none(val["loss"]), "val_error": _finite_or_none(val["error"]),
            "lr": self.lr_at(max(self.step - 1, 0)), "seconds": round(seconds, 3),
            "images_per_s": round(images / timed, 1) if timed > 0 else None,
            "divergences": s.divergences,
        }
        self.log_json(row)
        self.log_csv(row)
        # The best model: lowest validation error, or lowest training loss without a validation set.
        score = row["val_error"] if row["val_error"] is not None else row["train_loss"]
        improved = score < self.best_val_error
        if improved:
            self.best_val_error = score
            self.best_epoch = epoch
        self.epoch_sums = EpochSums()
        self.reporter.epoch(self, row)
        if improved:
            self.save("best.npz")
        ck = cfg.checkpoint
        if (ck.every and epoch % ck.every == 0) or epoch == cfg.train.epochs:
            self.save_rotating(f"epoch-{epoch:03d}.npz")
            return True
        return False

    # --- checkpoints --------------------------------------------------------------------------
    def meta(self) -> CheckpointMeta:
        h = self.halvings
        return CheckpointMeta(
            config=self.config_text, name=self.cfg.name,
            epoch=self.step // self.steps_per_epoch, step=self.step,
            steps_per_epoch=self.steps_per_epoch, batch_size=self.batch_size,
            lr=self.lr_at(self.step), lr_scale=h.lr_scale, seed=self.cfg.seed,
            guard=GuardRecord(recent=self.guard.state(), retries=h.retries,
                              fail_step=h.fail_step, history=list(h.history),
                              watching=self.guard.watching, watched=list(self.guard.watched),
                              rollback_dead=dict(h.dead_at_rollback)),
            best_val_error=None if math.isinf(self.best_val_error) else self.best_val_error,
            best_epoch=self.best_epoch,
            epoch_sums=replace(self.epoch_sums),
            input_shape=list(self.splits.input_shape),
            mean=[float(v) for v in self.splits.mean], std=[float(v) for v in self.splits.std],
            classes=list(self.splits.classes),
            rng="counter-based: numpy default_rng([seed, epoch]) for batch order, "
                "([seed, step, 1]) for augmentation, ([seed, step, layer]) for dropout",
        )

    def save(self, filename: str) -> str:
        path = os.path.join(self.out_dir, filename)
        ckpt.save(path, state=self.net.state_dict(), velocities=self.velocities, meta=self.meta())
        return path

    def save_rotating(self, filename: str | None = None) -> str:
        """Write a numbered checkpoint and last.npz; keep only the newest `keep` numbered ones."""
        filename = filename or f"step-{self.step:08d}.npz"
        path = self.save(filename)
        self.save("last.npz")
        numbered = sorted(glob.glob(os.path.join(self.out_dir, "epoch-*.npz")) +
                          glob.glob(os.path.join(self.out_dir, "step-*.npz")), key=os.path.getmtime)
        for old in numbered[:-self.cfg.checkpoint.keep]:
            try:
                os.unlink(old)
            except OSError:
                pass
        return path

    def restore(self, checkpoint) -> list[str]:
        """Continue from a loaded checkpoint. Returns notes on what changed since it was written."""
        try:
            self.net.load_state_dict(checkpoint.state)
        except ValueError as e:
            raise CheckpointError(f"{checkpoint.path} does not fit this model: {e} "
                                  "(the architecture changed; start over with --fresh)") from None
        expected = set(self.velocities)
        if set(checkpoint.velocities) != expected:
            raise CheckpointError(f"{checkpoint.path}: optimiser state does not fit this model")
        for k, v in checkpoint.velocities.items():
            if v.shape != self.velocities[k].shape:
                raise CheckpointError(f"{checkpoint.path}: velocity {k} has shape {v.shape}")
            self.velocities[k][...] = v
        m = checkpoint.meta
        notes = []
        if m.batch_size != self.batch_size or m.steps_per_epoch != self.steps_per_epoch:
            raise CheckpointError(
                f"{checkpoint.path} was written with batch size {m.batch_size} and "
                f"{m.steps_per_epoch} steps per epoch; this config gives {self.batch_size} "
                f"and {self.steps_per_epoch}: resume with the same batch size and data")
        self.step = m.step
        self.halvings = Halvings(m.lr_scale, m.guard.retries, m.guard.fail_step,
                                 list(m.guard.history), dict(m.guard.rollback_dead))
        self.guard.load_state(m.guard.recent)
        if m.guard.watching:
            self.guard.watch(m.guard.watched)
        self.best_val_error = math.inf if m.best_val_error is None else m.best_val_error
        self.best_epoch = m.best_epoch
        self.epoch_sums = replace(m.epoch_sums)
        try:
            old = configmod.loads(m.config, source=checkpoint.path, stored=True)
            if old.optim.lr != self.cfg.optim.lr:
                notes.append(f"learning rate changed: {old.optim.lr} -> {self.cfg.optim.lr}")
            if old.train.epochs != self.cfg.train.epochs:
                notes.append(f"epochs changed: {old.train.epochs} -> {self.cfg.train.epochs}")
        except Exception:  # an old config that no longer parses changes nothing here
            pass
        return notes

    def result(self, warnings=()) -> dict:
        """What `fit` tells its caller; `warnings` lists {reason, message} when the run ended
        broken (learned nothing, units dead)."""
        return {"best_val_error": None if math.isinf(self.best_val_error) else self.best_val_error,
                "best_epoch": self.best_epoch, "step": self.step,
                "best_checkpoint": os.path.join(self.out_dir, "best.npz"),
                "warnings": [{"reason": w.reason, "message": w.message} for w in warnings]}

    # --- logs ---------------------------------------------------------------------------------
    def log_json(self, row: dict) -> None:
        with open(os.path.join(self.out_dir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")

    def log_csv(self, row: dict) -> None:
        path = os.path.join(self.out_dir, "metrics.csv")
        new = not os.path.exists(path)
        with open(path, "a") as f:
            if new:
                f.write(",".join(CSV_FIELDS) + "\n")
            f.write(",".join("" if row.get(k) is None else str(row.get(k)) for k in CSV_FIELDS) + "\n")

    # --- signals ------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop as Ctrl-C does, from another caller (a sweep's stop file): at the top of the
        next step fit writes last.npz and raises Interrupted."""
        if self._stop_signal is None:
            self._stop_signal = signal.SIGINT

    def _install_signals(self) -> None:
        self._old_handlers = {}

        def handler(signum, frame):
            if self._stop_signal is not None:   # a second Ctrl-C stops at once
                raise KeyboardInterrupt
            self._stop_signal = signum
            self.reporter.event("stopping after this step; writing a checkpoint "
                                "(press Ctrl-C again to stop at once)")

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old_handlers[sig] = signal.signal(sig, handler)
            except ValueError:   # not the main thread
                pass

    def _restore_signals(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)


def _finite_or_none(v):
    return v if v is not None and math.isfinite(v) else None

