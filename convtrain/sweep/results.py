"""A sweep's results: one row per config (its trials' validation errors: one, or one per fold
with mean and std), sorted by validation error (configs without a validation split after them,
by their best training loss); results.csv / results.jsonl; the best config
written back as the user's own file with only the swept keys (and the name) changed.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
from pathlib import Path

from ..errors import ConfigError
from .files import write_atomic
from .trials import OK


def summarize(rows: list[dict], keys: list[str]) -> list[dict]:
    """Trial rows -> one row per config (the trials sharing a `group`), best first; configs
    whose trials all failed come last."""
    groups: dict[int, list[dict]] = {}
    for row in sorted(rows, key=lambda r: r["index"]):
        groups.setdefault(row["group"], []).append(row)
    out = []
    for group, trials in groups.items():
        errors = [t["val_error"] for t in trials if t["status"] == OK and t["val_error"] is not None]
        # trials without a validation split (data.validation: 0) have only their training loss
        losses = [t["best_loss"] for t in trials
                  if t["status"] == OK and t.get("best_loss") is not None]
        failed = [t for t in trials if t["status"] != OK]
        out.append({
            "group": group,
            "point": {k: trials[0]["point"].get(k) for k in keys},
            "val_error": statistics.fmean(errors) if errors else None,
            "val_error_std": statistics.stdev(errors) if len(errors) > 1 else None,
            "val_errors": errors,
            "best_loss": statistics.fmean(losses) if losses else None,
            "folds": sum(t["fold"] is not None for t in trials),
            "failed": len(failed),
            "trials": [t["trial"] for t in trials],
            "error": failed[0].get("error") if failed else None,
        })
    # a config with a failed fold ranks after the complete ones: its mean is over fewer folds;
    # configs without a validation error come after every one with one, by training loss
    out.sort(key=lambda r: (r["val_error"] is None, r["failed"] > 0,
                            math.inf if r["val_error"] is None else r["val_error"],
                            math.inf if r["best_loss"] is None else r["best_loss"], r["group"]))
    for rank, row in enumerate(out, 1):
        row["rank"] = rank
    return out


def best(summary: list[dict]) -> dict | None:
    """The best config that finished every trial, or None."""
    return next((r for r in summary if r["val_error"] is not None and not r["failed"]), None)


def describe_point(point: dict) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in point.items())


def format_value(v) -> str:
    return json.dumps(v) if isinstance(v, (list, dict, str)) else str(v)


def write(folder: str, summary: list[dict]) -> tuple[str, str]:
    """results.jsonl (every field) and results.csv (one column per swept key) in `folder`."""
    jsonl = write_atomic(os.path.join(folder, "results.jsonl"),
                         "".join(json.dumps(row, sort_keys=False) + "\n" for row in summary))
    keys = list(summary[0]["point"]) if summary else []
    f = io.StringIO(newline="")
    w = csv.writer(f)
    w.writerow(["rank", *keys, "val_error", "val_error_std", "folds", "failed", "trials",
                "error"])
    for row in summary:
        w.writerow([row["rank"], *(format_value(row["point"][k]) for k in keys),
                    _blank(row["val_error"]), _blank(row["val_error_std"]), row["folds"],
                    row["failed"], " ".join(row["trials"]), row["error"] or ""])
    path = write_atomic(os.path.join(folder, "results.csv"), f.getvalue(), newline="")
    return path, jsonl


def _blank(v):
    return "" if v is None else repr(v)


def check_best_keys(keys, out_path: str) -> None:
    """ConfigError unless the config editor can set every one of `keys` in place: called
    before the sweep runs, so that --write-best is refused before hours of trials, not after."""
    unsupported = [k for k in keys if "[" in k or k.count(".") > 1]
    if unsupported:
        raise ConfigError(f"cannot write {out_path}: {', '.join(unsupported)} is inside a "
                          "list or nested section, which the config editor cannot change in "
                          "place; the best trial's resolved config.yaml has every value")


def write_best(base_cfg, point: dict, out_path: str) -> str:
    """Write the best config to `out_path`: the user's file with the swept keys set to the best
    point's values and `name` set to the new file's stem, comments and layout kept; whole or
    not at all."""
    from ..config.edit import retarget
    check_best_keys(point, out_path)
    changes = {"name": Path(out_path).stem, **point}
    return write_atomic(out_path, retarget(base_cfg, out_path, changes), newline="")
