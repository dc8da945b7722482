"""The `schedule:` section: its `type` picks the options class from the schedule registry.

`schedule: {type: cosine, min_factor: 0.01, warmup_steps: 500}` becomes
`SCHEDULES["cosine"](min_factor=0.01, warmup_steps=500)`. Each type takes its own options and
`warmup_steps`, nothing else: `{type: cosine, gamma: 0.5}` is an error, not a silent no-op.

Stored configs. Before each type declared its options, `dump` wrote all the options of every
type (`{type: exponential, final_factor: 0.001, gamma: 0.1, milestones: [], ...}`), and such
texts live on in checkpoints and run folders. With `stored=True` the keys of that old flat
section that the chosen type does not take are dropped, whatever their value: that version
ignored them, so the run means what it meant when it was trained. Any other key is still an
error, and a config a user writes is read with `stored=False`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from .spec import SpecError, check_choice, close_match, describe, spec_to_dict
from .yaml_lines import Context

DEFAULT_TYPE = "exponential"

# Every key of the one flat schedule section that older versions wrote into stored configs.
FLAT_KEYS = ("type", "final_factor", "step_epochs", "gamma", "milestones", "power", "inv_gamma",
             "warmup_steps", "min_factor")


def option_names(cls) -> list[str]:
    """The options of a schedule class: its own first, then those it inherits (warm-up)."""
    own = vars(cls).get("__annotations__", {})
    return sorted((f.name for f in dataclasses.fields(cls) if f.init), key=lambda n: n not in own)


def parse_schedule(raw: Any, ctx: Context, types: Mapping[str, Any], *,
                   stored: bool = False) -> Any:
    """The `schedule` mapping (plain data, lines in `ctx`) -> an instance of its type's class."""
    path = ("schedule",)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ctx.error(path, f"must be a mapping of options, got {describe(raw)}")
    name = raw.get("type", DEFAULT_TYPE)
    if not isinstance(name, str):
        raise ctx.error(path + ("type",), f"must be a string, got {describe(name)}")
    try:
        check_choice(name, tuple(types), path + ("type",))
    except SpecError as e:
        raise ctx.error(e.path, e.message) from None
    cls = types[name]
    options = option_names(cls)
    values = {}
    for key, value in raw.items():
        if key in options:
            values[key] = value
        elif key != "type" and not (stored and key in FLAT_KEYS):
            raise ctx.error(path + (key,), _not_an_option(key, name, options, types))
    return ctx.spec(cls, values, path)


def _not_an_option(key, name: str, options: list[str], types: Mapping[str, Any]) -> str:
    message = (f"not an option of the {name} schedule (its options: "
               f"{', '.join(sorted(options))})")
    owners = [t for t, cls in types.items() if key in option_names(cls)]
    if owners:          # a known option in the wrong place, not a typo
        return message + f"; {key} is an option of {', '.join(owners)}"
    return message + close_match(key, options + ["type"])


def schedule_to_dict(schedule) -> dict:
    """`{type: ..., <its options>}`: what `dump` writes and `parse_schedule` reads back."""
    return {"type": schedule.type,
            **{name: spec_to_dict(getattr(schedule, name)) for name in option_names(type(schedule))}}
