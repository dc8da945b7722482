"""Typed, checked option dataclasses: the single source of every YAML key, default and range.

A spec is a frozen dataclass whose fields are declared with `option(...)`. `build_spec` turns a
raw mapping (from YAML) into an instance, checking unknown keys (with a did-you-mean), types,
ranges and choices; a failure raises `SpecError` carrying the key path, which `config` turns
into `file:line: path: message`.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Callable


class SpecError(Exception):
    """A problem at `path` (a tuple of keys and indices below the spec's own path)."""

    def __init__(self, path: tuple, message: str):
        super().__init__(message)
        self.path = tuple(path)
        self.message = message


def option(default: Any = dataclasses.MISSING, *, min: float | None = None,
           max: float | None = None, min_exclusive: bool = False,
           choices: tuple | Callable[[], tuple] | None = None,
           convert: Callable[[Any], Any] | None = None, doc: str = "") -> Any:
    """A spec field. `convert(raw) -> value` may raise ValueError(message) for custom forms;
    `choices` is a tuple, or a function returning one (a registry read when a config is)."""
    meta = dict(min=min, max=max, min_exclusive=min_exclusive, choices=choices,
                convert=convert, doc=doc)
    if isinstance(default, (list, dict, set)):
        raise TypeError("use an immutable default")
    return dataclasses.field(default=default, metadata=meta)


def did_you_mean(word: str, known) -> str:
    """"known: a, b, c; did you mean 'x'?" (sorted; the question only when one is close)."""
    known = sorted(str(k) for k in known)
    return f"known: {', '.join(known)}{close_match(word, known)}"


def describe(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _type_name(tp) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def _check_scalar(tp, value, path):
    """Check `value` against a plain annotation (int, float, bool, str, X | None, tuple...)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_scalar(arg, value, path)
            except SpecError as e:
                errors.append(e)
        raise errors[0] if len(errors) == 1 else SpecError(
            path, f"must be {' or '.join(_type_name(a) for a in args if a is not type(None))}, "
                  f"got {describe(value)}")
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise SpecError(path, f"must be true or false, got {describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
                return int(value)
            raise SpecError(path, f"must be an integer, got {describe(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(path, f"must be a number, got {describe(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise SpecError(path, f"must be a finite number, got {describe(value)}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise SpecError(path, f"must be a string, got {describe(value)}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise SpecError(path, f"must be a list, got {describe(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_scalar(args[0], v, path + (i,)) for i, v in enumerate(value))
        if len(value) != len(args):
            raise SpecError(path, f"must be a list of {len(args)} values, got {len(value)}")
        return tuple(_check_scalar(a, v, path + (i,)) for i, (a, v) in enumerate(zip(args, value)))
    if dataclasses.is_dataclass(tp):
        return build_spec(tp, value, path)
    raise TypeError(f"unsupported spec annotation {tp!r}")


def _check_range(meta, value, path):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None:
        if meta.get("min_exclusive") and not value > lo:
            raise SpecError(path, f"must be > {lo}, got {describe(value)}")
        if not meta.get("min_exclusive") and not value >= lo:
            raise SpecError(path, f"must be >= {lo}, got {describe(value)}")
    if hi is not None and not value <= hi:
        raise SpecError(path, f"must be <= {hi}, got {describe(value)}")


def check_field(f: dataclasses.Field, value: Any, path: tuple, hints: dict) -> Any:
    meta = f.metadata
    convert = meta.get("convert")
    if convert is not None:
        try:
            return convert(value)
        except ValueError as e:
            raise SpecError(path, str(e)) from None
    value = _check_scalar(hints[f.name], value, path)
    choices = meta.get("choices")
    if choices is not None:
        check_choice(value, choices() if callable(choices) else choices, path)
    _check_range(meta, value, path)
    return value


def check_choice(value, choices, path: tuple) -> None:
    """SpecError unless `value` is one of `choices` (listed in their order, with a did-you-mean)."""
    if value not in choices:
        raise SpecError(path, f"must be one of {', '.join(map(str, choices))}, got {describe(value)}"
                        + close_match(value, choices))


def close_match(value, choices) -> str:
    """"; did you mean 'x'?" for the choice closest to `value`, or "" when none is close."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def build_spec(cls, raw: Any, path: tuple = ()) -> Any:
    """Instantiate dataclass `cls` from a mapping, checking every key. `None` means all defaults."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(path, f"must be a mapping of options, got {describe(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            raise SpecError(path + (key,), f"unknown key; {did_you_mean(key, fields)}")
    values = {}
    for name, f in fields.items():
        if name in raw:
            values[name] = check_field(f, raw[name], path + (name,), hints)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecError(path + (name,), "is required")
    try:
        spec = cls(**values)
    except ValueError as e:  # __post_init__ cross-field checks
        raise SpecError(path, str(e)) from None
    return spec


def spec_to_dict(spec) -> dict:
    """The resolved spec as plain YAML-able data (tuples become lists)."""
    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(spec)


# Converters shared by layer specs ------------------------------------------------------------

def _int(v, what: str, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{what} must be an integer, got {describe(v)}")
    if v < lo:
        raise ValueError(f"{what} must be >= {lo}, got {v}")
    return v


def pair(lo: int = 1, what: str = "value") -> Callable[[Any], tuple[int, int]]:
    """`3` or `[3, 5]` -> (h, w)."""
    def convert(v):
        if isinstance(v, (list, tuple)):
            if len(v) != 2:
                raise ValueError(f"must be an integer or a list [h, w], got {describe(list(v))}")
            return (_int(v[0], what, lo), _int(v[1], what, lo))
        return (_int(v, what, lo),) * 2
    return convert


def padding(v) -> tuple | str:
    """`same`, `valid`, `2`, `[ph, pw]` or `[top, bottom, left, right]` -> str or a 4-tuple."""
    if isinstance(v, str):
        if v not in ("same", "valid"):
            raise ValueError(f"must be 'same', 'valid', an integer or a list, got {describe(v)}"
                             + close_match(v, ("same", "valid")))
        return v
    if isinstance(v, (list, tuple)):
        if len(v) == 2:
            ph, pw = (_int(x, "padding", 0) for x in v)
            return (ph, ph, pw, pw)
        if len(v) == 4:
            return tuple(_int(x, "padding", 0) for x in v)
        raise ValueError("must be an integer, [ph, pw] or [top, bottom, left, right], "
                         f"got a list of {len(v)}")
    return (_int(v, "padding", 0),) * 4
