"""`convtrain doctor`: the practitioner's checklist as one command.

The lecture's "What if it does not work?" list, run in order on a config:

1. gradients  the numerical gradient check (float64, central differences, a batch of 2 random
              inputs), as `convtrain gradcheck`;
2. init       initialisation health on a real batch of normalised training images: per layer the
              mean and standard deviation of the outputs, the fraction of dead ReLU units (zero for
              every image of the batch) and of saturated tanh/sigmoid units, and per parametrised
              layer the ratio |grad W| / |W|;
3. overfit    train a fresh net on a tiny subset (default 64 training images, no augmentation, the
              config's optimiser at a constant rate) until the training error is 0, within a budget;
4. cost       parameters and FLOPs per layer; the layers holding most of them; the measured speed;
5. lr         (optional) Bottou's learning-rate search on a subset, compared with the config's rate.

Each check ends as PASS, WARN or FAIL with a summary line, a one-line hint and JSON-friendly
details. `run` yields the checks one by one so the command can print them as they finish.
The module never prints; a check that raises is reported as FAIL with the exception.
This module runs the checks in order; each lives in a doctor_<theme>.py module beside it.
"""
from __future__ import annotations

import time
import traceback
from typing import Callable, Iterator

from .. import data as datamod
from ..errors import ConvtrainError
from .doctor_check import FAIL, PASS, TITLES, WARN, Check, overall  # noqa: F401 (the doctor's API)
from .doctor_cost import check_cost
from .doctor_gradients import check_gradients
from .doctor_init import check_init
from .doctor_training import check_lr, check_overfit


def run(cfg, *, subset: int = 64, steps: int = 300, lr: bool = False, lr_subset: int = 512,
        splits=None) -> Iterator[Check]:
    """Run the checks on `cfg` in order, yielding each as it finishes.

    `splits` may be passed in (tests); otherwise the config's data set is loaded. When the data
    cannot be loaded, the gradient and cost checks still run and the data checks FAIL with the
    reason."""
    if subset < 1:
        raise ValueError("subset must be >= 1")
    data_error = None
    if splits is None:
        try:
            splits = datamod.load(cfg.data, seed=cfg.seed, input_shape=cfg.input)
        except ConvtrainError as e:
            data_error = str(e)
    input_shape = tuple(cfg.input) if cfg.input is not None else (
        tuple(splits.input_shape) if splits is not None else None)
    if input_shape is not None:
        # a model that does not fit its input or its labels is a config error, not four FAILs
        from ..nn.network import Network
        shell = Network.build(cfg.model, input_shape, allocate=False, source=cfg.source)
        shell.require_class_scores()
        if splits is not None:
            shell.require_labels(splits)
    state: dict = {}

    def guarded(name, title, fn: Callable[[], Check]) -> Check:
        t0 = time.perf_counter()
        try:
            check = fn()
        except ConvtrainError as e:   # the message names the problem: no traceback to look for
            check = Check(name, title, FAIL, str(e), "fix the config or the data named above")
        except Exception as e:   # a broken layer: report it and go on with the other checks
            check = Check(name, title, FAIL, f"raised {type(e).__name__}: {e}", _ERROR_HINT,
                          {"traceback": traceback.format_exc(limit=6)})
        check.details["seconds"] = round(time.perf_counter() - t0, 2)
        return check

    def needs_data(name, title, fn):
        if splits is None:
            return Check(name, title, FAIL, f"cannot load the data: {data_error}",
                         "fix data.path (or install the data set) and rerun",
                         {"seconds": 0.0})
        return guarded(name, title, fn)

    if input_shape is None:
        yield Check("gradients", TITLES["gradients"], FAIL,
                    f"cannot load the data and the config has no `input:` shape: {data_error}",
                    "set `input: [C, H, W]` in the config or fix the data path", {"seconds": 0.0})
    else:
        yield guarded("gradients", TITLES["gradients"],
                      lambda: check_gradients(cfg, input_shape, state))
    yield needs_data("init", TITLES["init"],
                     lambda: check_init(cfg, splits, batch=min(subset, 128)))
    yield needs_data("overfit", TITLES["overfit"],
                     lambda: check_overfit(cfg, splits, subset=subset, steps=steps, state=state))
    if input_shape is not None:
        yield guarded("cost", TITLES["cost"], lambda: check_cost(cfg, input_shape, splits, state))
    if lr:
        yield needs_data("lr", TITLES["lr"], lambda: check_lr(cfg, splits, subset=lr_subset))

_ERROR_HINT = "a layer raised an error: run the failing step alone (e.g. `convtrain gradcheck`) " \
              "for the traceback"
