"""Charts (the optional `viz` extra, matplotlib with the Agg backend, no display): a run's
training curves and lr-search's loss against rate. matplotlib is imported inside the functions,
so importing this module never fails; a function that draws raises ImportError without it.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from ..errors import DataError
from .picture_files import check_overwrite, make_folder

CURVE_KEYS = ("epoch", "step", "train_loss", "train_error", "val_loss", "val_error", "lr")


def read_metrics(run_dir: str) -> tuple[list[dict], list[dict]]:
    """-> (epoch rows sorted by epoch, the last row kept for a repeated epoch; divergence events).

    Raises DataError when the folder has no metrics.jsonl or a line is not a metrics object."""
    path = run_dir if os.path.isfile(run_dir) else os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isdir(run_dir) and not os.path.isfile(run_dir):
        raise DataError(f"{run_dir}: no such run folder")
    if not os.path.isfile(path):
        raise DataError(f"{run_dir}: no metrics.jsonl in this folder (not a run folder? "
                        f"`convtrain fit` writes it at the end of every epoch)")
    rows, events = {}, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: malformed line (not JSON: {e.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: malformed line (expected a JSON object)")
            if "event" in obj:
                if obj["event"] == "divergence":
                    if not _is_number(obj.get("step"), finite=True):
                        raise DataError(f"{path}:{lineno}: a divergence event without a step")
                    events.append(obj)
                continue
            missing = [k for k in ("epoch", "step") if not _is_number(obj.get(k), finite=True)]
            if missing:
                raise DataError(f"{path}:{lineno}: malformed metrics row: no numeric "
                                f"{' or '.join(missing)}")
            for k in CURVE_KEYS[2:]:
                v = obj.get(k)
                if v is not None and not _is_number(v):
                    raise DataError(f"{path}:{lineno}: malformed metrics row: {k} is {v!r}")
            rows[int(obj["epoch"])] = obj
    if not rows:
        raise DataError(f"{path}: no epoch rows yet (a run writes one at the end of each epoch)")
    return [rows[k] for k in sorted(rows)], events


def _is_number(v, finite: bool = False) -> bool:
    """A JSON number that converts to a float (NaN/inf allowed unless `finite`)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        f = float(v)
    except OverflowError:     # an integer beyond any float: 10**400
        return False
    return not finite or math.isfinite(f)


def plot_curves(run_dir: str, out: str | None = None) -> str:
    """Write curves.png (or `out`): training and validation loss and error per epoch, the
    learning rate on its own log-scale axis, divergence events as dashed red lines.
    -> the path written. ImportError when matplotlib is missing."""
    from matplotlib.figure import Figure   # ImportError without the viz extra
    from matplotlib.ticker import MaxNLocator

    rows, events = read_metrics(run_dir)
    out = out or os.path.join(run_dir if os.path.isdir(run_dir) else os.path.dirname(run_dir),
                              "curves.png")
    check_overwrite(out)
    epochs = np.array([r["epoch"] for r in rows], dtype=float)

    def col(key):
        return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows])

    first = rows[0]
    steps_per_epoch = first["step"] / first["epoch"] if first["epoch"] else None
    marker = "o" if len(rows) <= 30 else None

    fig = Figure(figsize=(7.5, 8.5), dpi=100, layout="constrained")
    ax_loss, ax_err, ax_lr = fig.subplots(3, 1, sharex=True, height_ratios=[3, 3, 2])
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_err, "error", "error (%)")):
        scale = 100.0 if key == "error" else 1.0
        for split, colour in (("train", "tab:blue"), ("val", "tab:orange")):
            ys = col(f"{split}_{key}") * scale
            if np.isfinite(ys).any():
                ax.plot(epochs, ys, marker=marker, ms=3, color=colour,
                        label="training" if split == "train" else "validation")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    lrs = col("lr")
    if np.isfinite(lrs).any() and (lrs[np.isfinite(lrs)] > 0).all():
        ax_lr.plot(epochs, lrs, marker=marker, ms=3, color="tab:green", label="learning rate")
        ax_lr.set_yscale("log")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("epoch")
    ax_lr.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_lr.grid(True, which="both", alpha=0.3)
    if steps_per_epoch:
        for i, ev in enumerate(events):
            x = float(ev["step"]) / steps_per_epoch
            for ax in (ax_loss, ax_err, ax_lr):
                ax.axvline(x, color="tab:red", ls="--", lw=1,
                           label="divergence" if (i == 0 and ax is ax_loss) else None)
    ax_loss.legend(loc="upper right", fontsize=8)
    ax_err.legend(loc="upper right", fontsize=8)
    name = os.path.basename(os.path.normpath(run_dir if os.path.isdir(run_dir) else os.path.dirname(run_dir)))
    best = np.nanmin(col("val_error")) if np.isfinite(col("val_error")).any() else None
    title = f"{name}: {len(rows)} epochs"
    if best is not None:
        title += f", best validation error {100 * best:.2f}%"
    if events:
        title += f", {len(events)} divergence{'s' if len(events) > 1 else ''}"
    fig.suptitle(title, fontsize=10)
    make_folder(out)
    fig.savefig(out, format="png")   # whatever `out` ends in: the command promises a PNG
    return out


def plot_lr_search(result, out: str, title: str = "lr-search") -> str:
    """Write `out`: each trial's final loss on the subset against its rate (log axis), the
    initial loss dashed, diverged trials as red crosses along the top, the chosen rate circled.
    `result` is a tools.lr_search.SearchResult. -> out. ImportError without matplotlib."""
    from matplotlib.figure import Figure   # ImportError without the viz extra

    check_overwrite(out)
    done = [t for t in result.trials if not t.diverged]
    initial = result.trials[0].initial_loss
    fig = Figure(figsize=(6.5, 4.2), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.set_xscale("log")
    ax.plot([t.lr for t in done], [t.final_loss for t in done], "o-", ms=4, color="tab:blue",
            label="final loss")
    ax.axhline(initial, color="gray", ls="--", lw=1, label="initial loss")
    bad = [t.lr for t in result.trials if t.diverged]
    if bad:
        top = 1.05 * max([initial] + [t.final_loss for t in done])
        ax.plot(bad, [top] * len(bad), "x", ms=8, mew=2, color="tab:red", label="diverged")
    best = result.best
    ax.plot([best.lr], [best.final_loss], "o", ms=13, mfc="none", mec="tab:green", mew=2,
            label=f"chosen: {best.lr:.4g}")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"loss on {result.subset} training images")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"{title}: {len(result.trials)} rates, {result.steps} steps each", fontsize=10)
    make_folder(out)
    fig.savefig(out, format="png")
    return out


# --- grids --------------------------------------------------------------------------------------
