"""The learning rate as a pure function of the step: base lr x schedule factor(step).

One class per schedule type, all in the table `SCHEDULES`. A schedule is a frozen spec dataclass:
its fields are its options (config checks them and `dump` writes them, as for a layer's Spec) and
`decay(step, t, epoch)` is its factor before warm-up. `warmup_steps` is common to all.

Steps count from 0. `total` is the number of steps in the whole run, `per_epoch` the steps in an
epoch, t = step / total. The last step trained is `total - 1`, so a schedule "at t = 1" describes
the step after the run. The divergence guard's halvings multiply whatever the schedule gives.

Adding a schedule: a subclass here (options, `decay`, docstring) and its row in `SCHEDULES`.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import ClassVar

from ..config.spec import describe, option


def _milestones(v):
    if isinstance(v, bool) or not isinstance(v, (list, tuple, int)):
        raise ValueError(f"must be a list of increasing epoch numbers, got {describe(v)}")
    items = [v] if isinstance(v, int) else list(v)
    for x in items:
        if isinstance(x, bool) or not isinstance(x, int) or x < 1:
            raise ValueError(f"must hold integers >= 1, got {describe(x)}")
    if any(b <= a for a, b in zip(items, items[1:])):
        raise ValueError(f"must be strictly increasing, got {items}")
    return tuple(items)


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """The options every schedule takes, and the warm-up applied on top of `decay`."""
    type: ClassVar[str]
    warmup_steps: int = option(0, min=0, doc="linear warm-up from 0 over this many steps")

    def decay(self, step: int, t: float, epoch: int) -> float:
        """The factor at `step` (t = step / total, `epoch` counted from 0), warm-up aside."""
        raise NotImplementedError

    def factor(self, step: int, *, total: int, per_epoch: int) -> float:
        """Multiplier of the base learning rate at `step` (warm-up included)."""
        f = self.decay(step, min(step / max(total, 1), 1.0), step // max(per_epoch, 1))
        if self.warmup_steps and step < self.warmup_steps:
            f *= (step + 1) / self.warmup_steps
        return f


@dataclass(frozen=True, kw_only=True)
class Constant(Schedule):
    """The base rate throughout."""
    type = "constant"

    def decay(self, step, t, epoch):
        return 1.0


@dataclass(frozen=True, kw_only=True)
class Step(Schedule):
    """gamma ^ (epoch // step_epochs): times gamma every `step_epochs` epochs."""
    type = "step"
    step_epochs: int = option(1, min=1, doc="multiply by gamma every this many epochs")
    gamma: float = option(0.1, min=0.0, min_exclusive=True, doc="the factor at each step")

    def decay(self, step, t, epoch):
        return self.gamma ** (epoch // self.step_epochs)


@dataclass(frozen=True, kw_only=True)
class MultiStep(Schedule):
    """gamma ^ (milestones passed): times gamma once the run has done each milestone's epochs."""
    type = "multistep"
    milestones: tuple[int, ...] = option((), convert=_milestones,
                                         doc="epoch counts after which the rate is multiplied by gamma")
    gamma: float = option(0.1, min=0.0, min_exclusive=True, doc="the factor at each milestone")

    def decay(self, step, t, epoch):
        return self.gamma ** bisect.bisect_right(self.milestones, epoch)


@dataclass(frozen=True, kw_only=True)
class Exponential(Schedule):
    """final_factor ^ t: a straight line on a log axis, from 1 down to final_factor at t = 1.

    t = 1 is the step after the run: the last step trained (T - 1 of T) takes
    final_factor ^ ((T - 1) / T)."""
    type = "exponential"
    final_factor: float = option(0.001, min=0.0, min_exclusive=True,
                                 doc="the factor at t = 1; the last step takes "
                                     "final_factor^((T-1)/T) of T steps")

    def decay(self, step, t, epoch):
        return self.final_factor ** t


@dataclass(frozen=True, kw_only=True)
class Inverse(Schedule):
    """(1 + inv_gamma * step) ^ -power: Caffe's "inv", by step rather than by run length."""
    type = "inverse"
    inv_gamma: float = option(0.0001, min=0.0, doc="the rate's decay per step")
    power: float = option(1.0, min=0.0, min_exclusive=True, doc="the exponent")

    def decay(self, step, t, epoch):
        return (1.0 + self.inv_gamma * step) ** (-self.power)


@dataclass(frozen=True, kw_only=True)
class Cosine(Schedule):
    """min_factor + (1 - min_factor) * (1 + cos(pi t)) / 2: half a cosine from 1 to min_factor."""
    type = "cosine"
    min_factor: float = option(0.0, min=0.0, max=1.0,
                               doc="the factor at t = 1 (the cosine is rescaled onto "
                                   "[min_factor, 1], not cut off)")

    def decay(self, step, t, epoch):
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * t))


@dataclass(frozen=True, kw_only=True)
class Poly(Schedule):
    """min_factor + (1 - min_factor) * (1 - t) ^ power: Caffe's "poly" rescaled onto
    [min_factor, 1] (an affine map, not a floor: with min_factor > 0 every step's factor is
    higher than Caffe's, not only the late ones)."""
    type = "poly"
    power: float = option(1.0, min=0.0, min_exclusive=True, doc="the exponent of (1 - t)")
    min_factor: float = option(0.0, min=0.0, max=1.0,
                               doc="the factor at t = 1: min + (1 - min)(1 - t)^power, "
                                   "not a floor")

    def decay(self, step, t, epoch):
        return self.min_factor + (1 - self.min_factor) * (1 - t) ** self.power


SCHEDULES: dict[str, type[Schedule]] = {
    "constant": Constant, "step": Step, "multistep": MultiStep, "exponential": Exponential,
    "inverse": Inverse, "cosine": Cosine, "poly": Poly,
}


def factor(sched: Schedule, step: int, *, total: int, per_epoch: int) -> float:
    """Multiplier of the base learning rate at `step` (warm-up included) for `cfg.schedule`."""
    return sched.factor(step, total=total, per_epoch=per_epoch)
