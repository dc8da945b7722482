"""`--set key.path=value`: changes applied to a config's parsed YAML tree before it is checked.

Because the change lands in the raw tree, the usual checks see it as if it were in the file, and
every problem is located the usual way, with the command-line change named in place of a line:
`x.yaml: --set optim.lr: must be a number, got 'abc'`.

    key.path   dotted keys and list indices, as error messages write them:
               `optim.lr`, `model[0].conv.filters`, `model[0].layers[1].conv.size` (in a repeat
               block); a missing mapping on the way is created (`data.augment.hflip` on a config
               without `augment`); an index must exist.
    value      one YAML flow value: `3`, `1e-3`, `x`, `[1, 28, 28]`, `{hflip: true}`, `null`.

API: `parse_set(text)` -> Setting, `apply(raw, ctx, sets)` -> (raw, ctx) (what `config.loads`
calls), `from_mapping({"optim.lr": 0.01})` -> the same strings (the Python API's overrides).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..errors import ConfigError
from .spec import describe
from .yaml_lines import Context, compose, flow, format_path

_PATH = re.compile(r"[^.\[\]=\s]+(?:\.[^.\[\]=\s]+|\[\d+\])*")
_TOKEN = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


@dataclass(frozen=True)
class Setting:
    """One `--set`: the key path as typed, its parsed form and the parsed value."""
    key: str
    path: tuple
    value: Any


def _parse_path(key: str) -> tuple | None:
    """'model[0].conv.filters' -> ('model', 0, 'conv', 'filters'); None when malformed."""
    if not _PATH.fullmatch(key):
        return None
    return tuple(int(index) if index else name for index, name in _TOKEN.findall(key))


def parse_set(text: str, source: str = "<string>") -> Setting:
    """'optim.lr=0.01' -> Setting. ConfigError naming `source` when it is not key.path=value."""
    if not isinstance(text, str):
        raise TypeError(f"a --set is a 'key.path=value' string, got {type(text).__name__}")
    key, eq, value_text = text.partition("=")
    key = key.strip()
    if not eq:
        raise ConfigError(f"{source}: --set {text}: expected key.path=value, "
                          "e.g. --set optim.lr=0.01")
    path = _parse_path(key)
    if path is None:
        raise ConfigError(f"{source}: --set {text}: {key!r} is not a key path; write dotted "
                          "keys and list indices, e.g. optim.lr or model[0].conv.filters")
    try:
        value, _ = compose(value_text, f"--set {key}")
    except ConfigError as e:
        reason = str(e).split(": ", 1)[-1]
        raise ConfigError(f"{source}: --set {key}: cannot read the value {value_text!r}: "
                          f"{reason}") from None
    return Setting(key, path, value)


def from_mapping(changes: Mapping[str, Any]) -> list[str]:
    """{"optim.lr": 0.01, "data.augment": {"hflip": True}} -> ["optim.lr=0.01", ...]."""
    return [f"{key}={flow(_plain(value))}" for key, value in changes.items()]


def _plain(value):
    """numpy scalars and tuples -> what YAML writes (a sweep's values may be numpy's)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()   # a numpy scalar -> its Python number, an array -> a list
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class SetContext(Context):
    """A Context that names the `--set` instead of a line for problems under a changed key."""

    def __init__(self, source: str, lines: dict, settings: dict):
        super().__init__(source, lines)
        self.settings = settings   # key path -> the Setting that wrote it

    def _setting(self, path):
        p = tuple(path)
        for n in range(len(p), 0, -1):
            if p[:n] in self.settings:
                return self.settings[p[:n]]
        return None

    def error(self, path, message, *, line_path=None, line=None) -> ConfigError:
        if self._setting(path) is None:
            return super().error(path, message, line_path=line_path, line=line)
        return ConfigError(f"{self.source}: --set {format_path(path)}: {message}")


def apply(raw, ctx: Context, sets: Iterable[str]):
    """Apply `key.path=value` strings to the parsed tree -> (new tree, a Context naming them)."""
    if isinstance(sets, str):
        raise TypeError("sets takes a list of 'key.path=value' strings, not one string")
    settings = [parse_set(s, ctx.source) for s in sets]
    if not settings:
        return raw, ctx
    if raw is None:
        raw = {}
    lines = dict(ctx.lines)
    written: dict = {}
    for setting in settings:
        if not isinstance(raw, dict):
            break    # not a mapping of sections: the usual check says so
        _assign(raw, setting, ctx.source)
        # lines below a replaced value no longer describe it
        for p in [p for p in lines if p[:len(setting.path)] == setting.path]:
            del lines[p]
        written[setting.path] = setting
    return raw, SetContext(ctx.source, lines, written)


def _assign(raw: dict, setting: Setting, source: str) -> None:
    node = raw
    path = setting.path
    for depth, key in enumerate(path[:-1]):
        here = format_path(path[:depth + 1])
        node = _step(node, key, path[depth + 1], here, setting, source)
    last = path[-1]
    if isinstance(last, int):
        _check_index(node, last, format_path(path), setting, source)
    elif not isinstance(node, dict):
        raise _where(setting, source, f"{format_path(path[:-1])} is {_kind(node)}, not a "
                                      f"mapping; cannot set {last!r} in it")
    node[last] = setting.value


def _step(node, key, next_key, here: str, setting: Setting, source: str):
    """One level down, creating a missing mapping (a list must already hold the index)."""
    if isinstance(key, int):
        _check_index(node, key, here, setting, source)
        child = node[key]
    elif isinstance(node, dict):
        if node.get(key) is None and not isinstance(next_key, int):
            node[key] = {}
        child = node.get(key)
        if child is None:
            raise _where(setting, source, f"{here} does not exist, so it has no item [{next_key}]")
    else:
        raise _where(setting, source, f"{here.rpartition('.')[0] or here} is {_kind(node)}, "
                                      f"not a mapping")
    if not isinstance(child, (dict, list)):
        raise _where(setting, source,
                     f"{here} is {_kind(child)}, not a mapping; set {here} as a whole, "
                     f"e.g. --set '{here}={{...}}'")
    return child


def _check_index(node, index: int, here: str, setting: Setting, source: str) -> None:
    if not isinstance(node, list):
        raise _where(setting, source, f"{here.rpartition('[')[0]} is {_kind(node)}, not a list")
    if not 0 <= index < len(node):
        raise _where(setting, source, f"index {index} is out of range: "
                                      f"{here.rpartition('[')[0]} has {len(node)} item"
                                      + ("" if len(node) == 1 else "s"))


def _where(setting: Setting, source: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: --set {setting.key}: {message}")


def _kind(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"the value {describe(value)}"
