"""YAML config -> frozen, validated dataclasses (`Config`), with `repeat` blocks expanded.

Every error is a `ConfigError` whose message reads `<file>:<line>: <key path>: <message>`, e.g.
`configs/x.yaml:14: model[3].max_pool.stride: must be >= 1, got 0`. The key path follows the file
as written (`model[0].layers[1].conv.filters`, not the index in the expanded model); the line is the
one of the deepest node that exists: the key's own line for a bad value or an unknown key, the
enclosing mapping's line for a missing key.

The package, one job per module:
    yaml_lines.py  YAML text -> plain data with the line of every key; located errors; file reading
    schema.py      the section dataclasses, LayerConfig, Config
    model.py       the `model:` list: short forms, repeat blocks, per-repetition values, names
    schedule.py    the `schedule:` section: its `type` picks the options from the schedule registry
    resolved.py    with_overrides (command-line changes) and dump (the resolved YAML)
    overrides.py   `--set key.path=value`: changes to the parsed YAML tree before the checks
    registries.py  the layer and schedule registries and the data set names, taken lazily
    common.py      LayerCommon: the keys every layer takes besides its own
    edit.py        change values in a config's text, keeping the rest (lr-search --write)
    spec.py        option(...) and build_spec: typed, checked option dataclasses
    this file      load / loads: a whole config, section by section

API: `load(path)`, `loads(text, source)`, `parse_model(list)` (all take `layer_types=` to use
another registry than `nn.layers.registry.LAYER_TYPES`; load and loads take `schedule_types=`
for `train.schedules.SCHEDULES`; both registries are imported lazily), `dump(cfg)`,
`with_overrides(cfg, epochs=..., lr=...)`, `Config.to_dict()`, `LayerConfig.where / .error(...)`.
`load` and `loads` take `sets=["optim.lr=0.01", "model[0].conv.filters=16"]` (fit's `--set`;
`overrides_from_mapping({"optim.lr": 0.01})` writes them from a dict): applied before the checks,
so a bad value reads `x.yaml: --set optim.lr: must be a number, got 'abc'`.
`loads(text, source, stored=True)` reads a config that convtrain itself wrote into a checkpoint
or run folder, possibly an older version (see schedule.py).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import ConfigError
from .model import MAX_LAYERS, parse_model
from .overrides import apply as apply_sets
from .overrides import from_mapping as overrides_from_mapping
from .registries import schedule_types as default_schedule_types
from .resolved import OVERRIDES, dump, with_overrides
from .schedule import parse_schedule
from .schema import (SECTIONS, TOP_KEYS, AugmentConfig, CheckpointConfig, Config, DataConfig,
                     DivergenceConfig, Head, LayerConfig, OptimConfig, TrainConfig, resolve_path)
from .spec import describe, did_you_mean
from .yaml_lines import Context, compose, format_path, read_text

__all__ = [
    "load", "loads", "dump", "with_overrides", "overrides_from_mapping", "parse_model",
    "format_path",
    "Config", "LayerConfig", "AugmentConfig", "DataConfig", "OptimConfig", "DivergenceConfig",
    "TrainConfig", "CheckpointConfig", "ConfigError", "MAX_LAYERS", "OVERRIDES",
    "SECTIONS", "TOP_KEYS",
]


def _default_name(source: str) -> str:
    if source.startswith("<"):
        return "run"
    return Path(source).stem or "run"


def _parse(raw, ctx: Context, text: str, layer_types, schedule_types, stored: bool) -> Config:
    if raw is None:
        raise ConfigError(f"{ctx.source}:1: the config is empty; it needs at least a `model:` "
                          "list of layers")
    if not isinstance(raw, dict):
        kind = "a list" if isinstance(raw, list) else describe(raw)
        raise ctx.error((), f"the config must be a mapping of sections ({', '.join(TOP_KEYS)}), "
                            f"got {kind}")
    if schedule_types is None:
        schedule_types = default_schedule_types()
    parsed: dict[str, Any] = {}
    head_raw = {}
    for key, value in raw.items():       # in file order, so the first error is the earliest
        if key not in TOP_KEYS:
            raise ctx.error((key,), f"unknown section; {did_you_mean(key, TOP_KEYS)}")
        if key in SECTIONS:
            parsed[key] = ctx.spec(SECTIONS[key], value, (key,))
        elif key == "schedule":
            parsed[key] = parse_schedule(value, ctx, schedule_types, stored=stored)
        elif key == "model":
            parsed[key] = parse_model(value, layer_types=layer_types, _ctx=ctx)
        else:
            head_raw[key] = value
            ctx.spec(Head, {key: value}, ())
    if "model" not in raw:
        raise ctx.error(("model",), "is required: the list of layers, e.g. "
                                    "`model: [{dense: 10}]`", line_path=())
    head = ctx.spec(Head, head_raw, ())
    sections = {key: parsed[key] if key in parsed else cls() for key, cls in SECTIONS.items()}
    if "schedule" not in parsed:
        parsed["schedule"] = parse_schedule(None, ctx, schedule_types)
    data = sections["data"]
    if data.path is not None:
        sections["data"] = dataclasses.replace(data, path=resolve_path(data.path, ctx.source))
    return Config(name=head.name if head.name is not None else _default_name(ctx.source),
                  seed=head.seed, input=head.input, model=parsed["model"],
                  schedule=parsed["schedule"], **sections, source=ctx.source, text=text)


def loads(text: str, source: str = "<string>", *, sets: Iterable[str] = (),
          layer_types: Mapping[str, Any] | None = None,
          schedule_types: Mapping[str, Any] | None = None, stored: bool = False) -> Config:
    """Parse config text. `source` names it in messages and anchors relative data paths.

    `sets`: "key.path=value" changes (fit's --set) applied before the checks (overrides.py).

    `stored=True` for a config convtrain wrote (a checkpoint's, a run folder's): it also takes
    what older versions wrote there. Configs that people write are read with the default."""
    if not isinstance(text, str):
        raise TypeError(f"loads() takes str, got {type(text).__name__}")
    if text.startswith("\ufeff"):
        text = text[1:]
    raw, ctx = compose(text, source)
    raw, ctx = apply_sets(raw, ctx, sets)
    return _parse(raw, ctx, text, layer_types, schedule_types, stored)


def load(path, *, sets: Iterable[str] = (), layer_types: Mapping[str, Any] | None = None,
         schedule_types: Mapping[str, Any] | None = None, stored: bool = False) -> Config:
    """Read and check a config file. Every problem raises ConfigError naming file:line: path."""
    source = os.fspath(path)
    return loads(read_text(Path(source), source), source, sets=sets, layer_types=layer_types,
                 schedule_types=schedule_types, stored=stored)
