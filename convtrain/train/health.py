"""How healthy a network is, measured on one fixed batch of training images: its loss and, per
ReLU layer, the fraction of dead units. The trainer reads it to watch the run after a rollback
and to warn at the end of a run that learned nothing or whose units died.

A unit is dead when it outputs zero for every image of the batch: no gradient reaches its
weights, so it can never come back, and a too-large learning rate kills ReLUs in bulk (one huge
update pushes their inputs below zero for every image). A unit of a convolutional layer is a
channel (a filter), whose outputs at every position count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import data as datamod
from ..nn.loss import softmax_cross_entropy

# A layer is "mostly dead" from this fraction of dead units on: one that was not at the rollback
# point means the rate killed it (watch), and a run that ends so is told (warnings). Measured
# on Fashion-MNIST: at their own rates the shipped configs lose at most half of a layer (the
# default's dense1: 47 % within 50 steps, 36 % after 2 epochs; lenet5's conv2: 31 %); at twice
# its rate the default loses 79 % of dense1 within 50 steps and ends 2 epochs 6 points worse.
MOSTLY_DEAD = 2 / 3
# A final loss within this fraction of the loss of knowing the class frequencies alone (ln K
# for balanced classes) means the network learned nothing from the images.
NEAR_CHANCE = 0.95


@dataclass(frozen=True)
class Health:
    loss: float                  # mean loss of the batch, in evaluation mode
    dead: dict[str, float]       # ReLU layer name -> fraction of its units dead on the batch

    def mostly_dead(self) -> dict[str, float]:
        return {name: f for name, f in self.dead.items() if f >= MOSTLY_DEAD}


@dataclass(frozen=True)
class RunWarning:
    reason: str     # "learned_nothing" or "dead_units"
    message: str    # what happened and what to try, for people


def probe_batch(splits, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `size` training images, normalised, without augmentation: the same every time."""
    train = splits.train
    n = min(size, len(train.y))
    return datamod.normalize(train.x[:n], splits.mean, splits.std), train.y[:n]


def measure(net, x: np.ndarray, y: np.ndarray) -> Health:
    """The network's loss and dead units on (x, y), in evaluation mode (changes no state)."""
    dead = {}
    for i, layer in enumerate(net.layers):
        x, _ = net.forward_layer(i, x, train=False)
        if layer.activation == "relu":
            units = x.reshape(len(x), x.shape[1], -1)      # (N, units, positions)
            alive = (units > 0).any(axis=(0, 2))
            # named after the layer whose outputs it rectifies: that one's units die
            dead[net.layers[i - 1].name if i else layer.name] = float(1.0 - alive.mean())
    with np.errstate(over="ignore", invalid="ignore"):
        loss = float(softmax_cross_entropy(x, y)[0])
    return Health(loss, dead)


def units_died(before: dict[str, float], now: Health) -> str | None:
    """Why the network broke since `before` (dead fractions at a healthy point), or None."""
    died = {name: f for name, f in now.mostly_dead().items()
            if before.get(name, 0.0) < MOSTLY_DEAD}
    return f"units died: {_listing(died)} dead" if died else None


def prior_loss(labels: np.ndarray, num_classes: int) -> float:
    """The loss of a classifier that knows only the class frequencies (ln K when balanced)."""
    p = np.bincount(labels, minlength=num_classes) / max(len(labels), 1)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum()) if len(p) else math.log(num_classes)


def warnings(health: Health, prior: float) -> list[RunWarning]:
    """What a person must hear about a network at the end of its training."""
    found = []
    if not math.isfinite(health.loss) or health.loss >= NEAR_CHANCE * prior:
        found.append(RunWarning("learned_nothing", (
            f"the network learned nothing: its loss on the training images is {health.loss:.4g}, "
            f"that of guessing from the class frequencies alone ({prior:.4g}). Try a smaller "
            "learning rate (`convtrain lr-search CONFIG` picks one), check that the labels match "
            "the images, or train longer")))
    died = health.mostly_dead()
    if died:
        found.append(RunWarning("dead_units", (
            f"most units are dead (they output zero for every training image, so they never "
            f"learn again): {_listing(died)}. The learning rate was too large at some point: try a "
            "smaller optim.lr (`convtrain lr-search CONFIG` picks one), or leaky_relu in place "
            "of relu")))
    return found


def _listing(fractions: dict[str, float]) -> str:
    return ", ".join(f"{100 * f:.0f}% of {name}" for name, f in fractions.items())
