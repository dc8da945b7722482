"""The learning rate as a pure function of the step: base lr x schedule factor(step).

Steps count from 0. `total` is the number of steps in the whole run, `per_epoch` the steps in an
epoch. The divergence guard's halvings multiply whatever the schedule gives.
"""
from __future__ import annotations

import bisect
import math


def factor(sched, step: int, *, total: int, per_epoch: int) -> float:
    """Multiplier of the base learning rate at `step` (warm-up included)."""
    kind = sched.type
    epoch = step // max(per_epoch, 1)
    t = min(step / max(total, 1), 1.0)
    if kind == "constant":
        f = 1.0
    elif kind == "step":            # gamma every `step_epochs` epochs
        f = sched.gamma ** (epoch // sched.step_epochs)
    elif kind == "multistep":       # gamma at each milestone epoch
        f = sched.gamma ** bisect.bisect_right(sorted(sched.milestones), epoch)
    elif kind == "exponential":     # reaches final_factor at the last step
        f = sched.final_factor ** t
    elif kind == "inverse":         # Caffe's "inv": (1 + gamma * step) ^ -power
        f = (1.0 + sched.inv_gamma * step) ** (-sched.power)
    elif kind == "cosine":
        f = sched.min_factor + (1 - sched.min_factor) * 0.5 * (1 + math.cos(math.pi * t))
    elif kind == "poly":            # Caffe's "poly": (1 - t) ^ power, floored at min_factor
        f = sched.min_factor + (1 - sched.min_factor) * (1 - t) ** sched.power
    else:
        raise ValueError(f"unknown schedule {kind!r}")
    if sched.warmup_steps and step < sched.warmup_steps:
        f *= (step + 1) / sched.warmup_steps
    return f
