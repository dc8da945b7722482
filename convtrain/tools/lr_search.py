"""Bottou's learning-rate search ("Stochastic Gradient Tricks", 2012, section 5.2).

On a small subset of the training data, train a fresh copy of the network (always the same
initial weights) for a fixed budget, starting from a large rate. If the loss diverges (the
trainer's divergence guard, train/step.py) or ends no lower than it started, halve the rate and
try again. The first rate that lowers the loss is chosen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .. import data as datamod
from ..errors import ConvtrainError
from ..train.evaluate import loss_and_wrong
from ..nn.network import Network
from ..train.optim import init_velocities, sgd_step
from ..train.step import DivergenceGuard, train_step


@dataclass
class Trial:
    lr: float
    initial_loss: float
    final_loss: float
    diverged: bool
    why: str | None = None          # the guard's reason, when the trial diverged

    @property
    def ok(self) -> bool:
        return not self.diverged and self.final_loss < self.initial_loss


def run_trial(cfg, input_shape, x, y, lr: float, steps: int, batch_size: int) -> Trial:
    """Train a fresh net on (x, y) for `steps` steps at `lr`; stop at the first divergence."""
    net = Network.build(cfg.model, input_shape, seed=cfg.seed, source=cfg.source)
    velocities = init_velocities(net)
    guard = DivergenceGuard.for_network(net, cfg.divergence)
    initial, _ = loss_and_wrong(net, x, y)
    batches = datamod.BatchSchedule(len(y), batch_size, seed=cfg.seed)
    for step in range(steps):
        idx = batches.indices(step)
        loss = train_step(net, x[idx], y[idx], seed=cfg.seed, step=step).loss
        why = guard.judge(loss)
        if why is not None:
            return Trial(lr, initial, loss if math.isfinite(loss) else math.inf, True, why)
        sgd_step(net, velocities, lr, cfg.optim)
        guard.accept(loss)
    final, _ = loss_and_wrong(net, x, y)
    return Trial(lr, initial, final, not math.isfinite(final),
                 None if math.isfinite(final) else "not finite")


def search(cfg, splits, *, subset: int = 1000, start: float = 1.0, min_lr: float = 1e-6,
           steps: int | None = None, epochs: int = 2, on_trial=None) -> tuple[list[Trial], float]:
    """-> (trials, chosen rate). Raises ConvtrainError when no rate down to `min_lr` works."""
    train = splits.train
    n = min(subset, len(train.y))
    if n == 0:
        raise ConvtrainError("lr-search: the training split is empty")
    Network.build(cfg.model, splits.input_shape, allocate=False,
                  source=cfg.source).require_labels(splits)
    x = datamod.normalize(train.x[:n], splits.mean, splits.std)
    y = train.y[:n]
    batch_size = min(cfg.train.batch_size, n)
    budget = steps if steps is not None else epochs * datamod.num_batches(n, batch_size)
    trials = []
    lr = start
    while lr >= min_lr:
        trial = run_trial(cfg, splits.input_shape, x, y, lr, budget, batch_size)
        trials.append(trial)
        if on_trial:
            on_trial(trial)
        if trial.ok:
            return trials, lr
        lr /= 2
    raise ConvtrainError(f"lr-search: no rate between {start:g} and {min_lr:g} lowered the loss "
                         f"in {budget} steps; check the data and the model (try `convtrain doctor`)")
