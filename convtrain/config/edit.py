"""Change a few values in a config file's text and keep everything else as the user wrote it:
comments, layout, short forms (`lr-search --write`).

`set_values(text, {"optim.lr": 0.05})` edits the text where the value is: an existing plain
value is replaced in place (block or flow style); a missing key becomes the first entry of its
mapping (`{lr: 0.05, momentum: 0.9}`, or a line of its own in a block mapping); a missing
section becomes a line `optim: {lr: 0.05}` before the config's first key. Values reached
through an alias (`*name`) are refused: editing them would change every place that uses them.

`retarget(cfg, out_path, changes)` is the text to write to `out_path`: the changes applied to
the text `cfg` was read from, a relative `data.path` re-anchored to the new file's folder, and
the result checked to load as exactly `cfg` with those changes and nothing else.
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

import yaml

from ..errors import ConfigError
from .resolved import with_overrides
from .yaml_lines import Loader, compose, flow


def set_values(text: str, changes: dict[str, Any]) -> str:
    """`text` with each dotted key path ("optim.lr", "name") set to its value."""
    for key, value in changes.items():
        text = _set_value(text, tuple(key.split(".")), value)
    return text


def _root(text: str):
    loader = Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _set_value(text: str, path: tuple[str, ...], value) -> str:
    node = _root(text)
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"cannot set {'.'.join(path)}: the config is not a mapping")
    for depth, key in enumerate(path):
        where = ".".join(path[:depth + 1])
        pair = next(((k, v) for k, v in node.value
                     if isinstance(k, yaml.ScalarNode) and k.value == key
                     and k.tag != "tag:yaml.org,2002:merge"), None)
        nested = _nest(path[depth + 1:], value)
        if pair is None:
            return _insert(text, node, f"{key}: {flow(nested)}", where, root=depth == 0)
        key_node, child = pair
        if child.start_mark.index < key_node.end_mark.index:   # an alias: defined earlier
            raise ConfigError(f"cannot set {where}: its value is an alias (`*name`); "
                              "edit the file by hand")
        last = depth == len(path) - 1
        if last or _is_null(child):
            if not isinstance(child, yaml.ScalarNode):
                raise ConfigError(f"cannot set {where}: it is not a plain value")
            end = child.end_mark.index
            start = _PROPERTIES.match(text, child.start_mark.index, end).end()   # keep `&a !!tag`
            space = " " if text[start - 1:start] == ":" else ""   # `lr:` with no value
            return text[:start] + space + flow(nested) + text[end:]
        if not isinstance(child, yaml.MappingNode):
            raise ConfigError(f"cannot set {'.'.join(path)}: {where} is not a mapping")
        node = child
    raise AssertionError("unreachable")


def _nest(keys: tuple[str, ...], value):
    """("a", "b"), 1 -> {"a": {"b": 1}}"""
    for key in reversed(keys):
        value = {key: value}
    return value


_PROPERTIES = re.compile(r"(?:[&!]\S*\s+)*")


def _is_null(node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _insert(text: str, mapping, entry: str, where: str, *, root: bool) -> str:
    """Add `entry` ("key: value") as the first entry of `mapping`: in a nested block mapping,
    above the comment lines just above its first key (they speak of that key); in the root,
    below them (they are the file's header)."""
    if mapping.flow_style:
        at = mapping.start_mark.index + 1   # just after the `{`
        return text[:at] + entry + (", " if mapping.value else "") + text[at:]
    first = mapping.value[0][0].start_mark.index
    line_start = text.rfind("\n", 0, first) + 1
    indent = text[line_start:first]
    if indent.strip():   # the first key shares its line with something else (`- key: ...`)
        raise ConfigError(f"cannot add {where}: the mapping's layout is unusual; "
                          "edit the file by hand")
    while not root and line_start > 0:
        above = text.rfind("\n", 0, line_start - 1) + 1
        if not text[above:line_start].strip().startswith("#"):
            break
        line_start = above
    newline = "\r\n" if "\r\n" in text else "\n"
    return text[:line_start] + indent + entry + newline + text[line_start:]


def retarget(cfg, out_path: str, changes: dict[str, Any]) -> str:
    """The text of `cfg`'s file to write to `out_path`, with `changes` (dotted keys) applied.

    A relative `data.path` is rewritten relative to `out_path`'s folder, so that the copy reads
    the same data. ConfigError when the result would not load as `cfg` with the changes."""
    changes = dict(changes)
    raw, _ = compose(cfg.text, cfg.source)
    written = (raw.get("data") or {}).get("path")
    if (isinstance(written, str) and not os.path.isabs(os.path.expanduser(written))
            and cfg.data.path is not None and "data.path" not in changes):
        old_folder = os.path.dirname(os.path.abspath(cfg.source))
        new_folder = os.path.dirname(os.path.abspath(out_path))
        if os.path.realpath(old_folder) != os.path.realpath(new_folder):
            changes["data.path"] = _relative(cfg.data.path, new_folder)
    text = set_values(cfg.text, changes)
    expected = _apply(cfg, changes)
    from . import loads   # the package's loader (this module is part of it)
    try:
        got = loads(text, out_path)
    except ConfigError as e:
        raise ConfigError(f"cannot write {out_path}: the edited config does not load ({e})") from None
    if "name" not in changes and "name" not in raw:   # it takes its file's name
        expected = dataclasses.replace(expected, name=got.name)
    if got != expected:
        raise ConfigError(f"cannot write {out_path}: editing the text changed more than "
                          f"{', '.join(changes)} (an anchor shared with another key?); "
                          "edit the file by hand")
    return text


def _relative(path: str, folder: str) -> str:
    try:
        return os.path.relpath(path, folder)
    except ValueError:   # another drive (Windows): only an absolute path reaches it
        return path


def _apply(cfg, changes: dict[str, Any]):
    """`cfg` with the changes, as loading the edited text should give it."""
    for key, value in changes.items():
        if "." in key:
            if key == "data.path":   # loading resolves it against the new file's folder
                continue
            cfg = with_overrides(cfg, **{key: value})
        else:
            cfg = dataclasses.replace(cfg, **{key: value})
    return cfg
