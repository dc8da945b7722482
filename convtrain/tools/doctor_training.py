"""Doctor checks 3 and 5, the ones that train: overfit a tiny subset; Bottou's learning-rate
search against the config's rate."""
from __future__ import annotations

import math
import time

import numpy as np

from .. import data as datamod
from ..errors import ConvtrainError
from .doctor_check import FAIL, PASS, TITLES, WARN, Check

# Overfitting the subset: fraction of the subset still wrong that is a WARN rather than a FAIL.
OVERFIT_WARN = 0.05


def check_overfit(cfg, splits, *, subset: int = 64, steps: int = 300,
                  state: dict | None = None) -> Check:
    """Train a fresh net on the first `subset` training images until none is misclassified."""
    from ..nn.network import Network
    from ..train.evaluate import loss_and_wrong
    from ..train.optim import init_velocities, sgd_step
    from ..train.step import DivergenceGuard, train_step

    n = min(subset, len(splits.train.y))
    x = datamod.normalize(splits.train.x[:n], splits.mean, splits.std)
    y = splits.train.y[:n]
    net = Network.build(cfg.model, splits.input_shape, seed=cfg.seed, source=cfg.source)
    k = net.layers[-1].output_shape[0]
    velocities = init_velocities(net)
    guard = DivergenceGuard.for_network(net, cfg.divergence)
    lr = cfg.optim.lr
    batch_size = min(cfg.train.batch_size, n)
    batches = datamod.BatchSchedule(n, batch_size, seed=cfg.seed)
    eval_every = max(1, min(batches.per_epoch, 10))
    initial, wrong = loss_and_wrong(net, x, y)
    losses, step_times = [], []
    diverged_at = why = None
    last_loss = initial
    step = 0
    for step in range(1, steps + 1):   # counted from 1: `step` steps are done after this one
        idx = batches.indices(step - 1)
        t0 = time.perf_counter()
        loss = train_step(net, x[idx], y[idx], seed=cfg.seed, step=step - 1).loss
        why = guard.judge(loss)
        if why is not None:
            diverged_at = step
            last_loss = loss
            break
        sgd_step(net, velocities, lr, cfg.optim)
        guard.accept(loss)
        step_times.append(time.perf_counter() - t0)
        losses.append(loss)
        if step % eval_every == 0 or step == steps:
            _, wrong = loss_and_wrong(net, x, y)
            if wrong == 0:
                break
    final = last_loss
    if diverged_at is None:
        final, wrong = loss_and_wrong(net, x, y)
    timed = step_times[3:] or step_times
    images_per_s = batch_size / float(np.median(timed)) if timed else None
    if state is not None and images_per_s:
        state["images_per_s"] = images_per_s
        state["speed_batch"] = batch_size
    details = {"subset": n, "batch_size": batch_size, "lr": lr, "steps": step,
               "budget": steps, "initial_loss": initial,
               "final_loss": final if math.isfinite(final) else None,
               "wrong": int(wrong) if diverged_at is None else None,
               "error": wrong / n if diverged_at is None else None,
               "diverged_at": diverged_at, "divergence": why, "loss_curve": losses[::max(1, len(losses) // 50)],
               "images_per_s": images_per_s}
    name, title = "overfit", TITLES["overfit"]
    grad_note = (" (and the gradient check failed: fix backprop first)"
                 if state and state.get("gradients_failed") else "")
    if diverged_at is not None:
        shown = f"{last_loss:.3g}, {why}" if math.isfinite(last_loss) else "not finite"
        return Check(name, title, FAIL,
                     f"training diverged at step {diverged_at} (loss {initial:.3f} -> {shown}) "
                     f"at lr {lr:g}",
                     f"training diverges: lower the learning rate (try {lr / 10:g}, or "
                     f"`convtrain lr-search`) or check backprop{grad_note}", details)
    summary = (f"{wrong}/{n} wrong after {step} steps (loss {initial:.3f} -> {final:.4f}, "
               f"lr {lr:g}, batch {batch_size})")
    if wrong == 0:
        return Check(name, title, PASS, summary, "", details)
    error = wrong / n
    if final < 0.1 * math.log(k) and error > 0.1:
        hint = "loss low but accuracy low: check the loss (labels against outputs)"
    elif final >= 0.9 * initial:
        hint = ("the loss does not go down: raise the learning rate or check backprop and the "
                "labels" + grad_note)
    else:
        hint = ("underperforming: make the net larger, or train longer (`--steps`) / at a "
                "higher rate" + grad_note)
    status = WARN if error <= OVERFIT_WARN else FAIL
    return Check(name, title, status, summary, hint, details)


def check_lr(cfg, splits, *, subset: int = 512) -> Check:
    """Bottou's search from a large rate down; compare the rate it picks with the config's."""
    from . import lr_search

    start = max(1.0, 2 * cfg.optim.lr)
    try:
        result = lr_search.search(cfg, splits, subset=subset, start=start, min_lr=1e-6)
    except ConvtrainError as e:
        return Check("lr", TITLES["lr"], FAIL, str(e),
                     "no rate lowers the loss: check backprop (gradient check) and the data/labels")
    ours, chosen = cfg.optim.lr, result.chosen
    largest = max(t.lr for t in result.trials if t.ok)
    details = {"subset": result.subset, "steps": result.steps, "chosen": chosen,
               "largest_ok": largest, "config_lr": ours, "stopped": result.stopped,
               "trials": [{"lr": t.lr, "initial_loss": t.initial_loss,
                           "final_loss": t.final_loss if math.isfinite(t.final_loss) else None,
                           "diverged": t.diverged, "why": t.why} for t in result.trials]}
    summary = (f"the search picks {chosen:.3g} (the lowest loss on {result.subset} images after "
               f"{result.steps} steps); the config uses {ours:g}")
    if ours > 2 * largest:
        return Check("lr", TITLES["lr"], WARN, summary,
                     f"the config's rate is above every rate that lowered the loss (the largest: "
                     f"{largest:.3g}): lower optim.lr to about {chosen:.2g}", details)
    if ours < chosen / 16:
        return Check("lr", TITLES["lr"], WARN, summary,
                     f"the config's rate is far below the search's: training may be slow; try "
                     f"about {chosen:.2g}", details)
    return Check("lr", TITLES["lr"], PASS, summary, "", details)
