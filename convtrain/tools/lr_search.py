"""Bottou's learning-rate search ("Stochastic Gradient Tricks", 2012): "pick a subset of the
training examples, try various rates on it, and keep the one that reduces the cost most".

On the first `subset` training examples, a trial trains the network for the same budget, from
the same initial weights, at one rate of the grid start, start/2, start/4, ... It is the
trainer's own step and divergence guard (train/step.py) at a constant rate: no schedule, no
augmentation. A trial the guard stops has diverged and cannot be chosen. The chosen rate is the
one whose trial ends at the lowest loss on the subset; losses within TIE of each other are a
tie, and ties go to the smaller rate (one subset and one short budget cannot tell them apart,
and the smaller rate is the safer one for a run many times longer).

The grid stops at `min_lr`, or earlier once it is clearly past the best: PATIENCE trials in a
row that did not diverge and ended more than MARGIN above the best loss so far. Below the best
rate the final loss rises as the rate falls (a smaller rate learns less in the same budget), so
two clearly worse rates in a row mean that smaller ones will not do better. Diverged trials
(the other side of the best) never count towards the streak and break it. When no trial
lowered the loss at all, the search is an error.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .. import data as datamod
from ..errors import ConvtrainError
from ..nn.network import Network
from ..train.evaluate import loss_and_wrong
from ..train.optim import init_velocities, sgd_step
from ..train.step import DivergenceGuard, train_step

# "Clearly worse": a final loss more than MARGIN (relative) above the best so far...
MARGIN = 0.10
# ... for PATIENCE trials in a row ends the grid.
PATIENCE = 2
# Final losses within TIE (relative) of the lowest are a tie; ties go to the smaller rate.
TIE = 0.01
# The defaults of `search` (and of the command's options).
SUBSET, START, MIN_LR, EPOCHS = 1000, 1.0, 1e-6, 2


@dataclass(frozen=True)
class Trial:
    lr: float
    initial_loss: float
    final_loss: float               # math.inf when the trial diverged on a non-finite loss
    diverged: bool
    why: str | None = None          # the guard's reason, when the trial diverged
    steps: int = 0                  # steps that updated the weights

    @property
    def ok(self) -> bool:
        """It lowered the subset loss without diverging: it may be chosen."""
        return not self.diverged and self.final_loss < self.initial_loss


@dataclass(frozen=True)
class SearchResult:
    trials: list[Trial]             # in the order tried: the rates fall
    chosen: float
    subset: int                     # training examples searched on
    steps: int                      # the budget of every trial
    stopped: str                    # why the grid ended

    @property
    def best(self) -> Trial:
        return next(t for t in self.trials if t.lr == self.chosen)


class Trials:
    """What every trial shares: one network and its initial weights, the subset, the budget."""

    def __init__(self, cfg, input_shape, x, y, *, steps: int, batch_size: int):
        self.cfg, self.x, self.y = cfg, x, y
        self.steps, self.batch_size = steps, batch_size
        self.net = Network.build(cfg.model, input_shape, seed=cfg.seed, source=cfg.source)
        self.initial_state = {k: v.copy() for k, v in self.net.state_dict().items()}
        self.initial_loss, _ = loss_and_wrong(self.net, x, y)

    def run(self, lr: float) -> Trial:
        """Train from the initial weights for the budget at `lr`; stop at the first divergence."""
        cfg, net = self.cfg, self.net
        net.load_state_dict(self.initial_state)
        velocities = init_velocities(net)
        guard = DivergenceGuard.for_network(net, cfg.divergence)
        batches = datamod.BatchSchedule(len(self.y), self.batch_size, seed=cfg.seed)
        for step in range(self.steps):
            idx = batches.indices(step)
            loss = train_step(net, self.x[idx], self.y[idx], seed=cfg.seed, step=step).loss
            why = guard.judge(loss)
            if why is not None:
                return Trial(lr, self.initial_loss, loss if math.isfinite(loss) else math.inf,
                             True, why, step)
            sgd_step(net, velocities, lr, cfg.optim)
            guard.accept(loss)
        final, _ = loss_and_wrong(net, self.x, self.y)
        if not math.isfinite(final):
            return Trial(lr, self.initial_loss, math.inf, True, "not finite", self.steps)
        return Trial(lr, self.initial_loss, final, False, None, self.steps)


def choose(trials: list[Trial]) -> Trial | None:
    """The trial with the lowest final loss among those that lowered it; ties (within TIE) go
    to the smaller rate. None when no trial lowered the loss."""
    ok = [t for t in trials if t.ok]
    if not ok:
        return None
    lowest = min(t.final_loss for t in ok)
    return min((t for t in ok if t.final_loss <= lowest * (1 + TIE)), key=lambda t: t.lr)


def past_the_best(trials: list[Trial]) -> bool:
    """PATIENCE trials in a row, the last ones, that did not diverge and ended more than
    MARGIN above the lowest final loss of the trials that lowered the loss."""
    ok = [t.final_loss for t in trials if t.ok]
    if not ok or len(trials) < PATIENCE:
        return False
    limit = min(ok) * (1 + MARGIN)
    return all(not t.diverged and t.final_loss > limit for t in trials[-PATIENCE:])


def scan(run, rates, on_trial=None) -> tuple[list[Trial], str | None]:
    """`run(rate) -> Trial` for each rate in turn until past the best -> (the trials, why the
    scan stopped early or None)."""
    trials: list[Trial] = []
    for lr in rates:
        trials.append(run(lr))
        if on_trial:
            on_trial(trials[-1])
        if past_the_best(trials):
            return trials, (f"stopped early: the last {PATIENCE} rates ended more than "
                            f"{100 * MARGIN:.0f}% above the best loss")
    return trials, None


def grid(start: float, min_lr: float) -> list[float]:
    """start, start/2, start/4, ... down to min_lr (included when it falls on the grid)."""
    rates = []
    lr = start
    while lr >= min_lr:
        rates.append(lr)
        lr /= 2
    return rates


def search(cfg, splits, *, subset: int = SUBSET, start: float = START, min_lr: float = MIN_LR,
           steps: int | None = None, epochs: int = EPOCHS, on_trial=None) -> SearchResult:
    """Try the grid from `start` down (see the module's docstring) -> the trials and the rate
    chosen. `on_trial(trial)` is called after each. ConvtrainError when no rate lowers the loss."""
    train = splits.train
    n = min(subset, len(train.y))
    if n == 0:
        raise ConvtrainError("lr-search: the training split is empty")
    Network.build(cfg.model, splits.input_shape, allocate=False,
                  source=cfg.source).require_labels(splits)
    x = datamod.normalize(train.x[:n], splits.mean, splits.std)
    y = train.y[:n]
    batch_size = min(cfg.train.batch_size, n)
    per_trial = steps if steps is not None else epochs * datamod.num_batches(n, batch_size)
    runner = Trials(cfg, splits.input_shape, x, y, steps=per_trial, batch_size=batch_size)
    trials, early = scan(runner.run, grid(start, min_lr), on_trial)
    stopped = early or f"reached the smallest rate (--min {min_lr:g})"
    best = choose(trials)
    if best is None:
        raise ConvtrainError(
            f"lr-search: no rate between {start:g} and {min_lr:g} lowered the loss in "
            f"{per_trial} steps; check the data and the model (try `convtrain doctor`)")
    return SearchResult(trials, best.lr, n, per_trial, stopped)


def own_name(cfg, out_path: str, lr: float) -> str:
    """The run name for a copy of `cfg` written to `out_path` with the rate `lr`: the file's
    stem (the name a config without `name:` gets), or `<name>-lr<rate>` when the stem is the
    config's own name (both runs would share runs/<name>/)."""
    stem = os.path.splitext(os.path.basename(out_path))[0]
    return stem if stem and stem != cfg.name else f"{cfg.name}-lr{lr:g}"
