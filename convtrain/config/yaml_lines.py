"""YAML text -> plain Python data that remembers the line of every key, and located errors.

Read with `yaml.compose` (SafeLoader rules) so that each node keeps its line. On top of plain
YAML 1.1:

* duplicate keys in a mapping are an error (YAML silently keeps the last one);
* anchors, aliases and `<<` merge keys work (explicit keys win over merged ones);
* `1e-3`, `5e4` are numbers (YAML 1.1 would read them as strings);
* timestamps stay strings; integers beyond 64 bits, binary data and custom tags are errors.

`Context` holds the source name and the key path -> line map, and turns a problem at a key path
into `ConfigError("<file>:<line>: <key path>: <message>")`. `read_text` reads a config file with
the checks a text file needs (size, encoding, binary data).
"""
from __future__ import annotations

import codecs
import dataclasses
import datetime
import difflib
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from .spec import SpecError, build_spec, describe

MAX_FILE_BYTES = 4 * 1024 * 1024      # a config is a page of text; refuse anything huge
MAX_NODES = 100_000                   # guards alias bombs (`a: &a [*b, *b, ...]`)
MAX_INT = 2**63 - 1

_FLOAT_E = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-3` as a number."""


class Dumper(yaml.SafeDumper):
    """SafeDumper that quotes strings `Loader` would read as numbers."""


for _cls in (Loader, Dumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_E, list("-+0123456789."))

_MAP, _SEQ, _MERGE = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:merge"


def format_path(path) -> str:
    """('model', 0, 'layers', 1, 'conv', 'filters') -> 'model[0].layers[1].conv.filters'."""
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


class Context:
    """The source name and the path -> line map; turns problems into located ConfigErrors."""

    def __init__(self, source: str, lines: dict | None = None):
        self.source = source
        self.lines = lines if lines is not None else {}

    def line(self, path) -> int | None:
        p = tuple(path)
        while p and p not in self.lines:
            p = p[:-1]
        return self.lines.get(p)

    def error(self, path, message, *, line_path=None, line=None) -> ConfigError:
        if line is None:
            line = self.line(path if line_path is None else line_path)
        where = f"{self.source}:{line}" if line else self.source
        key = format_path(path)
        return ConfigError(f"{where}: {key}: {message}" if key else f"{where}: {message}")

    def spec_error(self, e: SpecError, *, cls=None) -> ConfigError:
        path, message = split_post_init(e.path, e.message, cls)
        return self.error(path, message)

    def spec(self, cls, raw, path):
        try:
            return build_spec(cls, raw, tuple(path))
        except SpecError as e:
            raise self.spec_error(e, cls=cls if tuple(e.path) == tuple(path) else None) from None


_KEY_MESSAGE = re.compile(r"^([A-Za-z_]\w*): (.+)$", re.S)


def split_post_init(path, message, cls=None):
    """`__post_init__` raises ValueError("key: message"): move `key` into the path."""
    m = _KEY_MESSAGE.match(message)
    if m and cls is not None and m.group(1) in {f.name for f in dataclasses.fields(cls)}:
        return tuple(path) + (m.group(1),), m.group(2)
    return tuple(path), message


class _Builder:
    """Composed YAML nodes -> plain Python data, recording the line of every key path."""

    def __init__(self, loader: Loader, ctx: Context):
        self.loader = loader
        self.ctx = ctx
        self.nodes = 0
        self.active: set[int] = set()

    def build(self, node, path):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.ctx.error(path, f"the document is too large (more than {MAX_NODES} values "
                                       "after expanding aliases)", line=node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.active:
            raise self.ctx.error(path, "an alias refers to a collection that contains it",
                                 line=node.start_mark.line + 1)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ:
                    raise self.ctx.error(path, f"unsupported YAML tag {node.tag}",
                                         line=node.start_mark.line + 1)
                out = []
                for i, item in enumerate(node.value):
                    self.ctx.lines[path + (i,)] = item.start_mark.line + 1
                    out.append(self.build(item, path + (i,)))
                return out
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def mapping(self, node, path, skip=frozenset()):
        if node.tag != _MAP:
            raise self.ctx.error(path, f"unsupported YAML tag {node.tag}",
                                 line=node.start_mark.line + 1)
        out: dict = {}
        seen: dict = {}
        merges = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            key = self.key(key_node, path)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise self.ctx.error(path + (key,), f"duplicate key (first on line {seen[key]})",
                                     line=line)
            seen[key] = line
            if key in skip:
                continue
            self.ctx.lines[path + (key,)] = line
            out[key] = self.build(value_node, path + (key,))
        taken = set(skip) | set(out)
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for src in sources:
                if not isinstance(src, yaml.MappingNode):
                    raise self.ctx.error(path, "a `<<` merge key needs a mapping or a list of "
                                               "mappings", line=src.start_mark.line + 1)
                if id(src) in self.active:
                    raise self.ctx.error(path, "a `<<` merge refers to a mapping that contains it",
                                         line=src.start_mark.line + 1)
                self.active.add(id(src))
                try:
                    merged = self.mapping(src, path, frozenset(taken))
                finally:
                    self.active.discard(id(src))
                out.update(merged)
                taken |= set(merged)
        return out

    def key(self, node, path):
        if not isinstance(node, yaml.ScalarNode):
            raise self.ctx.error(path, "mapping keys must be plain names, got a "
                                       + ("list" if isinstance(node, yaml.SequenceNode) else "mapping"),
                                 line=node.start_mark.line + 1)
        key = self.scalar(node, path)
        if not isinstance(key, str):
            raise self.ctx.error(path, f"mapping keys must be names, got {describe(key)}"
                                       + (" (quote it)" if isinstance(key, bool) else ""),
                                 line=node.start_mark.line + 1)
        return key

    def scalar(self, node, path):
        line = node.start_mark.line + 1
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            raise self.ctx.error(path, f"cannot read this value: {getattr(e, 'problem', e)}",
                                 line=line) from None
        if isinstance(value, (datetime.date, datetime.datetime)):
            return node.value            # a date-looking name stays the text it was
        if isinstance(value, bytes):
            raise self.ctx.error(path, "binary values are not supported", line=line)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            raise self.ctx.error(path, f"number too large: {node.value}", line=line)
        return value


def _yaml_error(e: Exception, source: str, text: str) -> ConfigError:
    if isinstance(e, yaml.reader.ReaderError):
        line = text.count("\n", 0, max(e.position, 0)) + 1
        return ConfigError(f"{source}:{line}: invalid character {chr(e.character)!r} "
                           f"(#x{e.character:04x}); a config must be printable text")
    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        mark = e.problem_mark
        line, column = mark.line + 1, mark.column + 1
        problem = e.problem or "syntax error"
        lines = text.splitlines()
        here = lines[mark.line] if mark.line < len(lines) else ""
        if "'\\t'" in problem or ("\t" in here[:mark.column + 1] and "\t" not in here.strip()):
            return ConfigError(f"{source}:{line}: invalid YAML: a tab character (column {column}); "
                               "indent with spaces, not tabs")
        if "expected a single document" in f"{problem} {e.context}":
            return ConfigError(f"{source}:{line}: invalid YAML: the file holds more than one "
                               "document (`---`); a config is one mapping")
        context = ""
        if e.context and e.context_mark is not None and e.context_mark.line != mark.line:
            context = f" ({e.context} on line {e.context_mark.line + 1})"
        elif e.context:
            context = f" ({e.context})"
        return ConfigError(f"{source}:{line}: invalid YAML: {problem}, column {column}{context}")
    return ConfigError(f"{source}: invalid YAML: {e}")


def compose(text: str, source: str) -> tuple[Any, Context]:
    """Config text -> (plain data, its Context with the line of every key path)."""
    ctx = Context(source)
    try:
        loader = Loader(text)
    except yaml.YAMLError as e:
        raise _yaml_error(e, source, text) from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as e:
            raise _yaml_error(e, source, text) from None
        if node is None:
            return None, ctx
        ctx.lines[()] = node.start_mark.line + 1
        return _Builder(loader, ctx).build(node, ()), ctx
    except RecursionError:   # `[[[[...]]]]` thousands deep: PyYAML's parser recurses per level
        raise ConfigError(f"{source}: invalid YAML: lists or mappings nested too deeply") from None
    finally:
        loader.dispose()


def read_text(path: Path, source: str) -> str:
    """The text of a config file, refusing what is not one (a folder, huge, binary, not UTF-8)."""
    try:
        if path.is_dir():
            raise ConfigError(f"{source}: is a folder, not a config file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(f"{source}: is {size} bytes, too large for a config file")
        data = path.read_bytes()
    except FileNotFoundError:
        hint = ""
        parent = path.parent if str(path.parent) else Path(".")
        try:
            siblings = [p.name for p in parent.iterdir() if p.suffix in (".yaml", ".yml")]
        except OSError:
            siblings = []
        close = difflib.get_close_matches(path.name, siblings, n=1, cutoff=0.6)
        if close:
            hint = f"; did you mean '{parent / close[0]}'?"
        raise ConfigError(f"{source}: no such file{hint}") from None
    except PermissionError:
        raise ConfigError(f"{source}: cannot read the file (permission denied)") from None
    except OSError as e:
        raise ConfigError(f"{source}: cannot read the file ({e.strerror or e})") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE,
                        codecs.BOM_UTF32_BE)):
        raise ConfigError(f"{source}: is UTF-16/32 text; save it as UTF-8")
    if b"\x00" in data:
        line = data[:data.index(b"\x00")].count(b"\n") + 1
        raise ConfigError(f"{source}:{line}: is not a text file (it holds binary data)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ConfigError(f"{source}:{line}: is not valid UTF-8 (byte 0x{data[e.start]:02x}); "
                          "save the file as UTF-8") from None


def flow(value) -> str:
    """Plain data as one line of flow-style YAML that `Loader` reads back to the same value."""
    text = yaml.dump(value, Dumper=Dumper, default_flow_style=True, sort_keys=False,
                     width=2**31 - 1, allow_unicode=True)
    if text.endswith("\n...\n"):
        text = text[:-5]
    return text.strip()


