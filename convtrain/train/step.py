"""The training step and the divergence guard: one definition, used by the trainer, lr-search and
doctor's overfit check.

A caller's loop is always the same four moves:

    result = train_step(net, x, y, seed=seed, step=step)
    why = guard.judge(result.loss)
    if why is None:                    # healthy: update, then remember the loss
        sgd_step(net, velocities, lr, optim); guard.accept(result.loss)
    else:                              # diverged: the weights are not updated
        ...roll back / stop...
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from statistics import median

import numpy as np

# The sharp limit's reference is this quantile of the recent good losses (see DivergenceGuard).
QUANTILE = 0.95
# "Keeps rising": the last window's median loss is RISE times the window before's, and ln K's.
RISE = 2.0
# Watching after a rollback: the median loss since the rollback point may not climb CLIMB times
# above that point's loss (and ln K), judged from WATCH_FROM losses on, on batches of at least
# WATCH_BATCH images. The margin is twice the noise: a fresh network's mean loss over a batch
# varies by about 11 % (std) between batches of 32 Fashion-MNIST images (measured on tiny and
# lenet5: 6 % at 64, 15 % at 16, 60 % for single images).
CLIMB = 1.25
WATCH_FROM = 3
WATCH_BATCH = 32


@dataclass(frozen=True)
class StepResult:
    loss: float     # NaN when a gradient is not finite
    errors: int     # misclassified examples of the batch
    n: int          # examples in the batch


def train_step(net, x: np.ndarray, y: np.ndarray, *, seed: int, step: int) -> StepResult:
    """Forward and backward one batch: the network's grads hold the batch's gradient afterwards.

    Dropout and the like are reseeded from (seed, step), so a step computes the same thing
    whenever it runs (resume, rollback, a second trial)."""
    net.reseed(seed, step)
    net.zero_grads()
    with np.errstate(over="ignore", invalid="ignore"):   # the guard judges the result
        loss, _, logits = net.loss_and_grads(x, y)
    if not net.grads_finite():   # a NaN can hide behind a relu or a max and still
        loss = math.nan          # poison the weights: treat it as a divergence
    return StepResult(float(loss), int((logits.argmax(axis=1) != y).sum()), len(y))


class DivergenceGuard:
    """Judges every step's loss, from the first; a step it rejects must not update the weights.

    A step diverges when
    1. its loss (or a gradient, see train_step) is not finite;
    2. its loss is above `threshold x reference`. Before any good loss exists the reference is
       ln K, the loss of a classifier that knows nothing of K classes, not the measured initial
       loss: ln K costs no extra forward pass, and a badly scaled initialisation whose first
       loss is already far above chance is caught at step 0 instead of becoming the standard.
       Afterwards the reference is the 95 % quantile of the last `window` good losses: two huge
       losses do not move it, and losses judged divergent never enter it. Not the median: on
       Fashion-MNIST, batches of one image reach 100x their running median late in training.
       The limit never falls below ln K (a loss no worse than guessing is noise, not a blow-up)
       and never rises above threshold x ln K: no step with a loss above that is ever followed
       by an update;
    3. its loss keeps rising: the median of the last `window` losses (this one included) is
       more than RISE times both the median of the `window` before and ln K. Medians of whole
       windows are steady where single batches are not, but the medians of single-image batches
       still double by chance at losses near or below ln K (measured: 10x apart at ~0.05).
    4. after a rollback, until the trainer calls `settle()` (the run got past the point that
       failed), the loss does not fall: the median of the losses since the rollback point, this
       one included, is more than CLIMB times the first of them (and ln K); judged on batches
       of WATCH_BATCH images or more (the trainer says, `for_network`). The first is the
       rollback point's own loss, which no rate changes, so a climb above it is the halved
       rate's doing (Bottou: a rate is too large when the cost goes up). Such a rate stays
       below the sharp limit, yet within a few steps its updates kill ReLUs in bulk and the run
       ends far worse than at a good rate (the trainer's watch for dead units, health.py,
       catches the rates that kill without a climb).

    The state is the last 2 x window good losses (`recent`) and the watch (`watching`, the
    losses since the rollback point in `watched`); checkpoints keep both, so a resumed run
    judges as an uninterrupted one would. Rollbacks restore `recent` with the weights and start
    a new watch.
    """

    def __init__(self, num_classes: int, *, threshold: float, window: int, recent=(),
                 judge_climbs: bool = True):
        self.chance = math.log(num_classes)
        self.threshold = threshold
        self.window = window
        self.recent = deque((float(v) for v in recent), maxlen=2 * window)
        self.judge_climbs = judge_climbs   # rule 4's losses; not on batches too small to tell
        self.watching = False
        self.watched: list[float] = []     # the good losses since the rollback point

    @classmethod
    def for_network(cls, net, divergence, *, batch_size: int | None = None) -> DivergenceGuard:
        """The guard for `net`'s class scores, with a config's `divergence` settings."""
        return cls(net.layers[-1].output_shape[0], threshold=divergence.threshold,
                   window=divergence.window,
                   judge_climbs=batch_size is None or batch_size >= WATCH_BATCH)

    def limit(self) -> float:
        """The largest loss the next step may have."""
        cap = self.threshold * self.chance
        if not self.recent:
            return cap
        last = sorted(list(self.recent)[-self.window:])
        reference = last[min(int(QUANTILE * len(last)), len(last) - 1)]
        return min(max(self.threshold * reference, self.chance), cap)

    def judge(self, loss: float) -> str | None:
        """Why a step with this loss diverges, or None when it is healthy. Changes nothing."""
        if not math.isfinite(loss):
            return "not finite"
        limit = self.limit()
        if loss > limit:
            return f"above {limit:.4g}"
        if self.watching and self.judge_climbs and len(self.watched) + 1 >= WATCH_FROM:
            start, since = max(self.watched[0], self.chance), median(self.watched + [loss])
            if since > CLIMB * start:
                return (f"not falling: median {since:.4g} over {len(self.watched) + 1} steps "
                        f"since the rollback point, whose loss was {self.watched[0]:.4g}")
        w = self.window
        if len(self.recent) + 1 >= 2 * w:
            losses = list(self.recent)[len(self.recent) + 1 - 2 * w:] + [loss]
            before, last = median(losses[:w]), median(losses[w:])
            if last > RISE * max(before, self.chance):
                return f"rising: median {before:.4g} -> {last:.4g} over {w} steps"
        return None

    def accept(self, loss: float) -> None:
        """Remember the loss of a step that updated the weights."""
        self.recent.append(float(loss))
        if self.watching:
            self.watched.append(float(loss))

    def watch(self, watched=()) -> None:
        """Watch the run that goes on from a rollback point (rule 4); `watched` resumes a watch."""
        self.watching = True
        self.watched = [float(v) for v in watched]

    def settle(self) -> None:
        """The run got past the point that failed: stop watching."""
        self.watching = False
        self.watched = []

    # A rollback restores the guard with the weights: losses of undone steps are forgotten.
    def state(self) -> list[float]:
        return list(self.recent)

    def load_state(self, recent) -> None:
        self.recent = deque((float(v) for v in recent), maxlen=2 * self.window)
