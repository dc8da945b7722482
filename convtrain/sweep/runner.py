"""A sweep from its points to its results: the plan (one trial per point, or per point and fold),
the sweep folder, and the trials' execution on a Dask client.

The sweep folder `runs/<name>/<kind>-<id>/` is named after what the sweep is (the base config,
the points, the folds): the same command names the same folder, which is what `--resume`
continues. Finished trials (their `done` marker) are never submitted again.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Callable

from .. import config as configmod
from ..errors import ConvtrainError
from . import results, trials
from .files import write_atomic
from .trials import Trial

PLAN = "sweep.json"
STOP = "stop"   # written on Ctrl-C: the running trials end at their next look


@dataclass
class Plan:
    kind: str                   # "sweep" or "cv": names the folder and the resume command
    config_path: str
    base: object                # the base Config (no changes)
    keys: list[str]             # the swept key paths
    folds: int | None
    folder: str
    trials: list[Trial]

    @property
    def sweep_id(self) -> str:
        return os.path.basename(self.folder)


def plan(config_path: str, points: list[dict], *, folds: int | None = None,
         out: str | None = None, kind: str = "sweep") -> Plan:
    """Load and check every trial's config now, so that a bad value stops the sweep before
    anything runs."""
    base = configmod.load(config_path)
    keys = list(dict.fromkeys(k for p in points for k in p))
    identity = json.dumps([configmod.dump(base), points, folds], sort_keys=True, default=str)
    sweep_id = hashlib.sha1(identity.encode()).hexdigest()[:8]
    folder = os.path.abspath(out or os.path.join("runs", base.name, f"{kind}-{sweep_id}"))
    out_trials = []
    for group, point in enumerate(points):
        for fold in (range(folds) if folds else [None]):
            changes = dict(point)
            if fold is not None:
                changes.update({"data.folds": folds, "data.fold": fold})
            cfg = configmod.load(config_path, sets=configmod.overrides_from_mapping(changes))
            index = len(out_trials)
            out_trials.append(Trial(index=index, point=point, fold=fold, group=group,
                                    folder=os.path.join(folder, trials.folder_name(index)),
                                    config_text=configmod.dump(cfg),
                                    stop_file=os.path.join(folder, STOP)))
    return Plan(kind, config_path, base, keys, folds, folder, out_trials)


def prepare(p: Plan, *, resume: bool) -> list[dict]:
    """Create the sweep folder and the trials' configs -> the rows of trials already done.

    Without `resume`, a folder that already holds this sweep is an error (nothing is
    overwritten); with it, the sweep continues (or starts, if there is none)."""
    marker = os.path.join(p.folder, PLAN)
    described = _describe(p)
    if os.path.exists(marker):
        if not resume:
            raise ConvtrainError(f"{p.folder} holds this {p.kind} already: pass --resume to "
                                 "continue it (finished trials are kept) or remove the folder "
                                 "to start over")
        _check_same(marker, described)
    os.makedirs(p.folder, exist_ok=True)
    for t in p.trials:
        if trials.read_done(t.folder) is None:
            os.makedirs(t.folder, exist_ok=True)
            write_atomic(t.config_path, t.config_text)
    write_atomic(marker, json.dumps(described, indent=1))
    return [row for row in map(trials.read_done, (t.folder for t in p.trials)) if row]


def _describe(p: Plan) -> dict:
    """What sweep.json records: enough to tell, on --resume, that a folder holds this sweep."""
    return {"kind": p.kind, "config": os.path.abspath(p.config_path), "keys": p.keys,
            "folds": p.folds, "trials": [{"trial": t.name, "point": t.point, "fold": t.fold}
                                         for t in p.trials]}


def _check_same(marker: str, described: dict) -> None:
    """--resume into a folder (--out) that holds another sweep would mix its finished trials
    into this one's results: refuse, naming what differs."""
    try:
        with open(marker, encoding="utf-8") as f:
            old = json.load(f)
    except (OSError, ValueError) as e:
        raise ConvtrainError(f"{marker}: cannot read it ({e}); remove the folder to start "
                             "over") from None
    # through JSON, so that a point's tuples and lists compare as the file holds them
    now = json.loads(json.dumps(described))
    differ = [key for key in ("kind", "config", "keys", "folds", "trials")
              if not isinstance(old, dict) or old.get(key) != now[key]]
    if differ:
        raise ConvtrainError(f"{marker}: the folder holds another sweep (its "
                             f"{', '.join(differ)} differ from this command's); --resume "
                             "continues the same sweep only: pass another --out or remove the "
                             "folder")


def execute(p: Plan, client, done: list[dict],
            on_result: Callable[[dict], None] = lambda row: None) -> list[dict]:
    """Run the trials not yet done on the Dask `client` -> every trial's row.

    A trial that raised (a bug, not the user's data: those are failed rows already) becomes a
    failed row without a `done` marker, so that --resume tries it again. On an exception here
    (Ctrl-C) the submitted trials are cancelled."""
    from distributed import as_completed
    stop = os.path.join(p.folder, STOP)
    if os.path.exists(stop):   # left by an interrupted run of this sweep
        os.unlink(stop)
    finished = {row["index"]: row for row in done}
    pending = [t for t in p.trials if t.index not in finished]
    futures = {client.submit(trials.run, t, key=f"{p.sweep_id}-{t.name}", pure=False): t
               for t in pending}
    try:
        for future in as_completed(futures):
            trial = futures[future]
            try:
                row = future.result()
                if row["status"] == trials.STOPPED:
                    continue
                trials.write_done(trial.folder, row)   # the client's copy (remote workers)
            except Exception as e:   # noqa: BLE001 - one broken trial is one failed row
                row = trials.failed_row(trial, f"{type(e).__name__}: {e}")
            finished[trial.index] = row
            on_result(row)
    except BaseException:
        with open(stop, "w"):   # running trials end within a second; --resume continues them
            pass
        client.cancel(list(futures))
        raise
    return [finished[i] for i in sorted(finished)]


def finish(p: Plan, rows: list[dict]) -> list[dict]:
    """The summary (one row per config, best first), written as results.csv / results.jsonl."""
    summary = results.summarize(rows, p.keys)
    results.write(p.folder, summary)
    return summary
