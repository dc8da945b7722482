"""The points of a sweep: the configs' changes, from a grid file and `--set key=v1,v2` options.

A grid file maps key paths (as `--set` writes them: `optim.lr`, `model[0].conv.filters`) to the
values to try:

    optim.lr: [0.01, 0.03, 0.1]          # the sweep tries every combination (cartesian product)
    model[0].conv.filters: [16, 32]

or, with `random: N` (or `random: {samples: N, seed: S}`), N points drawn at random, the same
ones for the same file and seed:

    random: 8
    optim.lr: {loguniform: [0.001, 0.1]}   # uniform in log(lr)
    optim.momentum: {uniform: [0.8, 0.95]}
    train.batch_size: [32, 64, 128]        # a list: one of its values

A point is a dict {key path: value}; `--set key=v1,v2` entries add keys (or replace the file's).
The values are checked when the configs are loaded (config.load(..., sets=...)).
"""
from __future__ import annotations

import itertools
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..config import overrides
from ..config.yaml_lines import compose, read_text
from ..errors import ConfigError

RANDOM = "random"
RANGES = ("loguniform", "uniform")
MAX_POINTS = 10_000
_SAMPLE_STREAM = 0x73776570   # 'swep': random points never share a stream with training


def points(grid_path: str | None = None, sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The sweep's points, in order: the product of the values, or `random: N` samples."""
    axes, random = ({}, None) if grid_path is None else _read_grid(grid_path)
    for text in sets:
        key, values = parse_set_values(text)
        axes[key] = values
    if not axes:
        raise ConfigError("nothing to sweep: give --grid GRID.yaml or --set key=v1,v2")
    if random is not None:
        samples, seed = random
        return _sample(axes, samples, seed)
    where = {key: f"{grid_path}: {key}" if grid_path else f"--set {key}" for key in axes}
    for key, values in axes.items():
        if isinstance(values, dict):
            raise ConfigError(f"{where[key]}: a range ({', '.join(RANGES)}) needs `random: N` in "
                              "the grid file; list the values to try every one")
    count = math.prod(len(v) for v in axes.values())
    if count > MAX_POINTS:
        raise ConfigError(f"the grid has {count} points (more than {MAX_POINTS}); use "
                          "`random: N` to draw some")
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes.values())]


def parse_set_values(text: str) -> tuple[str, list]:
    """'optim.lr=0.01,0.1' -> ('optim.lr', [0.01, 0.1]). Commas inside [] or {} stay."""
    key, eq, rest = text.partition("=")
    if not eq:
        raise ConfigError(f"--set {text}: expected key.path=v1,v2,..., e.g. --set "
                          "optim.lr=0.01,0.1")
    pieces = _split_top_level(rest)
    if any(p.strip() == "" for p in pieces):
        raise ConfigError(f"--set {text}: an empty value; write key=v1,v2,...")
    values = [overrides.parse_set(f"{key}={piece}", "--set").value for piece in pieces]
    return key.strip(), values


def _split_top_level(text: str) -> list[str]:
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    return pieces


def _read_grid(path: str) -> tuple[dict[str, Any], tuple[int, int] | None]:
    """-> ({key: list of values | range dict}, (samples, seed) or None)."""
    source = os.fspath(path)
    raw, ctx = compose(read_text(Path(source), source), source)
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{source}: a grid file maps key paths to lists of values, e.g. "
                          "`optim.lr: [0.01, 0.1]`")
    random = _random(raw.pop(RANDOM), ctx) if RANDOM in raw else None
    axes = {}
    for key, value in raw.items():
        try:
            overrides.parse_set(f"{key}=0")
        except ConfigError:
            raise ctx.error((key,), "is not a key path; write dotted keys and list indices, "
                                    "e.g. optim.lr or model[0].conv.filters") from None
        if isinstance(value, dict):
            axes[key] = _range(key, value, ctx, random is not None)
        elif isinstance(value, list):
            if not value:
                raise ctx.error((key,), "an empty list: give at least one value")
            axes[key] = value
        else:
            axes[key] = [value]   # one value: every point has it
    return axes, random


def _random(value, ctx) -> tuple[int, int]:
    if isinstance(value, dict):
        unknown = set(value) - {"samples", "seed"}
        if unknown:
            raise ctx.error((RANDOM, sorted(unknown)[0]), "unknown key; known: samples, seed")
        samples, seed = value.get("samples"), value.get("seed", 0)
    else:
        samples, seed = value, 0
    for name, v, low in (("samples", samples, 1), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ctx.error((RANDOM,), f"{name} must be an integer >= {low}, got {v!r}")
    if samples > MAX_POINTS:
        raise ctx.error((RANDOM,), f"at most {MAX_POINTS} samples, got {samples}")
    return samples, seed


def _range(key, value: dict, ctx, random: bool) -> dict:
    if len(value) != 1 or next(iter(value)) not in RANGES:
        raise ctx.error((key,), f"a list of values or, with `random: N`, one range "
                                f"{{loguniform: [a, b]}} or {{uniform: [a, b]}}; got {value!r}")
    kind, bounds = next(iter(value.items()))
    ok = (isinstance(bounds, list) and len(bounds) == 2
          and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds))
    if not ok or not bounds[0] < bounds[1]:
        raise ctx.error((key, kind), f"must be [low, high] with low < high, got {bounds!r}")
    if kind == "loguniform" and bounds[0] <= 0:
        raise ctx.error((key, kind), f"needs low > 0, got {bounds[0]}")
    if not random:
        raise ctx.error((key,), f"a range ({kind}) needs `random: N` in the grid file; list the "
                                "values to try every one")
    return {kind: [float(b) for b in bounds]}


def _sample(axes: dict, samples: int, seed: int) -> list[dict[str, Any]]:
    """`samples` points; each value drawn in key order from one seeded stream."""
    rng = np.random.default_rng([_SAMPLE_STREAM, seed])
    out = []
    for _ in range(samples):
        point = {}
        for key, spec in axes.items():
            if isinstance(spec, dict):
                kind, (low, high) = next(iter(spec.items()))
                if kind == "loguniform":
                    v = math.exp(rng.uniform(math.log(low), math.log(high)))
                else:
                    v = rng.uniform(low, high)
                point[key] = float(f"{v:.4g}")   # readable in tables and configs
            else:
                point[key] = spec[int(rng.integers(len(spec)))]
        out.append(point)
    return out
