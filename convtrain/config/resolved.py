"""The resolved config: command-line changes applied and checked (`with_overrides`), and the
YAML text with every default filled in (`dump`) that run folders and checkpoints keep."""
from __future__ import annotations

import dataclasses
import typing

from ..errors import ConfigError
from .schema import SECTIONS, Config, Head, resolve_path
from .spec import SpecError, check_field, did_you_mean
from .yaml_lines import MAX_INT, flow

OVERRIDES = {"epochs": ("train", "epochs"), "batch_size": ("train", "batch_size"),
             "lr": ("optim", "lr"), "seed": (None, "seed"), "data_path": ("data", "path")}


def with_overrides(cfg: Config, **changes) -> Config:
    """A copy with command-line changes applied and checked. `None` values are ignored.

    Keys: epochs, batch_size, lr, seed, data_path (relative to the working folder), or any
    `section.field` (e.g. `**{"optim.momentum": 0.5}`; `schedule.field` takes an option of the
    config's schedule type).
    """
    for key, value in changes.items():
        if value is None:
            continue
        if key in OVERRIDES:
            section, name = OVERRIDES[key]
        elif key.count(".") == 1 and key.split(".")[0] in (*SECTIONS, "schedule"):
            section, name = key.split(".")
        else:
            raise TypeError(f"unknown override {key!r}; known: {', '.join(OVERRIDES)} or "
                            "section.field")
        cls = Head if section is None else type(getattr(cfg, section))
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if name not in fields:
            raise TypeError(f"unknown override {key!r}; {did_you_mean(name, fields)}")
        try:
            value = check_field(fields[name], value, (key,), typing.get_type_hints(cls))
        except SpecError as e:
            raise ConfigError(f"override {key}: {e.message}") from None
        if isinstance(value, int) and abs(value) > MAX_INT:   # as in a file: dump() must load
            raise ConfigError(f"override {key}: number too large: {value}")
        if key == "data_path":
            value = resolve_path(value, "<override>")
        if section is None:
            cfg = dataclasses.replace(cfg, **{name: value})
            continue
        try:
            new = dataclasses.replace(getattr(cfg, section), **{name: value})
        except ValueError as e:          # a cross-field check: "field: message"
            message = str(e).removeprefix(f"{name}: ")
            raise ConfigError(f"override {key}: {message}") from None
        cfg = dataclasses.replace(cfg, **{section: new})
    return cfg


def dump(cfg: Config) -> str:
    """The resolved config as YAML, every default filled in, the model expanded in long form.

    `loads(dump(cfg)) == cfg` (source and text aside).
    """
    source = cfg.source.replace("\n", " ")
    lines = [f"# resolved config (every default filled in), from {source}"]
    for key, value in cfg.to_dict().items():
        if key == "model":
            lines.append("model:")
            lines.extend(f"  - {flow(layer)}" for layer in value)
        else:
            lines.append(f"{key}: {flow(value)}")
    return "\n".join(lines) + "\n"
