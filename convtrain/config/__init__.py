"""YAML config -> frozen, validated dataclasses (`Config`), with `repeat` blocks expanded.

Every error is a `ConfigError` whose message reads `<file>:<line>: <key path>: <message>`, e.g.
`configs/x.yaml:14: model[3].max_pool.stride: must be >= 1, got 0`. The key path follows the file
as written (`model[0].layers[1].conv.filters`, not the index in the expanded model); the line is the
one of the deepest node that exists: the key's own line for a bad value or an unknown key, the
enclosing mapping's line for a missing key.

The YAML is read with `yaml.compose` (SafeLoader rules) so that each node keeps its line. On top
of plain YAML 1.1:

* duplicate keys in a mapping are an error (YAML silently keeps the last one);
* anchors, aliases and `<<` merge keys work (explicit keys win over merged ones);
* `1e-3`, `5e4` are numbers (YAML 1.1 would read them as strings);
* timestamps stay strings; integers beyond 64 bits, binary data and custom tags are errors.

Model entries
-------------
    - relu                         # a type name: every option at its default
    - max_pool: 2                  # short form: fills the layer's `short` field (size)
    - conv: {filters: 32, size: 5} # the layer's own options plus the common keys
                                   # (name, init, sparsity, lr_mult, decay_mult)
    - repeat: 2                    # a block, expanded in place, `layers` repeated N times
      layers:
        - conv: {filters: [32, 64], size: 5}
        - relu

Per-repetition values. Inside `repeat: N`, a value that is a list of exactly N items is read as
one item per repetition **unless the key accepts that list as its value** (`size: [3, 5]` in a
`repeat: 2` block is the pair (3, 5) in both repetitions; `filters: [32, 64]` is 32 then 64). To
vary a list-valued key, nest it: `size: [[3, 3], [5, 5]]`, or `pad: [same, valid]`. A list of
another length is passed on as the value itself (and the error then says what a per-repetition
list needs). The short form takes part too: `- dense: [128, 64]`.

Nested blocks are expanded from the outside in: the outer block takes the lists whose length is
its count, wherever they are inside it, then the inner block takes its own. With equal counts the
outer block wins; write `[[a, b], [c, d]]` (outer index first) to vary with both.

Names. Layer names (the common key `name`) must be unique in the expanded model. Inside a
`repeat: N` block a name that is the same in every repetition gets `_1` ... `_N` appended (one
suffix per enclosing block, the outer first: `conv_2_1`); a per-repetition list of names is used
as written (a block nested inside still adds its own suffix).

API: `load(path)`, `loads(text, source)`, `parse_model(list)` (all take `layer_types=` to use
another registry than `layers.registry.LAYER_TYPES`, which is imported lazily), `dump(cfg)`,
`with_overrides(cfg, epochs=..., lr=...)`, `Config.to_dict()`, `LayerConfig.where / .error(...)`.

Relative `data.path`s resolve against the config file's folder and are stored absolute, so the
resolved config (`dump`) can be loaded from anywhere.
"""
from __future__ import annotations

import codecs
import dataclasses
import datetime
import difflib
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from ..errors import ConfigError
from ..nn.layers.common import COMMON_KEYS, LayerCommon
from .spec import (SpecError, build_spec, check_field, describe, did_you_mean, option,
                   spec_to_dict)

MAX_FILE_BYTES = 4 * 1024 * 1024      # a config is a page of text; refuse anything huge
MAX_NODES = 100_000                   # guards alias bombs (`a: &a [*b, *b, ...]`)
MAX_LAYERS = 1_000                    # guards `repeat: 1000000000`
MAX_INT = 2**63 - 1

DATASETS = ("fashion-mnist", "mnist", "npz")
SCHEDULES = ("constant", "step", "multistep", "exponential", "inverse", "cosine", "poly")


# --- converters ------------------------------------------------------------------------------

def _run_name(v):
    if v is None:
        return None
    if not isinstance(v, str):
        raise ValueError(f"must be a string, got {describe(v)}")
    if (not v.strip() or v in (".", "..") or any(c in v for c in "/\\")
            or any(ord(c) < 32 for c in v)):
        raise ValueError(f"must be a plain folder name (not empty, no '/' or '\\'), got {describe(v)}")
    if len(v.encode("utf-8")) > 200:    # a folder name: file systems stop at 255 bytes
        raise ValueError(f"must be at most 200 bytes long (a folder name), got {len(v)} characters")
    return v


def _input_shape(v):
    if v is None:
        return None
    if not isinstance(v, (list, tuple)):
        raise ValueError(f"must be a list [C, H, W] or [D], got {describe(v)}")
    if len(v) not in (1, 3):
        raise ValueError(f"must be [C, H, W] or [D], got a list of {len(v)}")
    for x in v:
        if isinstance(x, bool) or not isinstance(x, int) or x < 1:
            raise ValueError(f"must hold integers >= 1, got {describe(x)}")
    return tuple(v)


def _data_path(v):
    if v is None:
        return None
    if not isinstance(v, str):
        raise ValueError(f"must be a path (a string) or null, got {describe(v)}")
    if not v.strip():
        raise ValueError("must not be empty (write null for the default)")
    return v


def _milestones(v):
    if isinstance(v, bool) or not isinstance(v, (list, tuple, int)):
        raise ValueError(f"must be a list of increasing epoch numbers, got {describe(v)}")
    items = [v] if isinstance(v, int) else list(v)
    for x in items:
        if isinstance(x, bool) or not isinstance(x, int) or x < 1:
            raise ValueError(f"must hold integers >= 1, got {describe(x)}")
    if any(b <= a for a, b in zip(items, items[1:])):
        raise ValueError(f"must be strictly increasing, got {items}")
    return tuple(items)


# --- sections --------------------------------------------------------------------------------

@dataclass(frozen=True)
class AugmentConfig:
    translate: int = option(0, min=0, doc="random shifts of up to this many pixels")
    crop_pad: int = option(0, min=0, doc="zero-pad by this many pixels, then crop at random")
    hflip: bool = option(False, doc="random horizontal flips")
    noise: float = option(0.0, min=0.0, doc="std of Gaussian noise added to normalised inputs")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = option("fashion-mnist", choices=DATASETS)
    path: str | None = option(None, convert=_data_path,
                              doc="folder or file; relative to the config file's folder")
    layout: str = option("nchw", choices=("nchw", "nhwc"))
    validation: int = option(5000, min=0, doc="examples held out of the training set")
    subset: int | None = option(None, min=1, doc="use only the first N training examples")
    augment: AugmentConfig = option(AugmentConfig())


@dataclass(frozen=True)
class OptimConfig:
    lr: float = option(0.05, min=0.0, min_exclusive=True)
    momentum: float = option(0.9, min=0.0, doc="in [0, 1)")
    nesterov: bool = option(False)
    weight_decay: float = option(0.0, min=0.0, doc="L2 penalty")
    l1: float = option(0.0, min=0.0, doc="L1 penalty")
    decay_biases: bool = option(False, doc="apply weight_decay and l1 to biases too")

    def __post_init__(self):
        if not self.momentum < 1:
            raise ValueError(f"momentum: must be < 1, got {describe(self.momentum)}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov: needs momentum > 0, got momentum 0")


@dataclass(frozen=True)
class ScheduleConfig:
    type: str = option("exponential", choices=SCHEDULES)
    final_factor: float = option(0.001, min=0.0, min_exclusive=True,
                                 doc="exponential: lr at the end / lr at the start")
    step_epochs: int = option(1, min=1, doc="step: multiply by gamma every this many epochs")
    gamma: float = option(0.1, min=0.0, min_exclusive=True, doc="step, multistep: factor")
    milestones: tuple[int, ...] = option((), convert=_milestones, doc="multistep: epochs")
    power: float = option(1.0, min=0.0, min_exclusive=True, doc="poly, inverse: exponent")
    inv_gamma: float = option(0.0001, min=0.0, doc="inverse: lr / (1 + inv_gamma * step)^power")
    warmup_steps: int = option(0, min=0, doc="linear warm-up from 0 over this many steps")
    min_factor: float = option(0.0, min=0.0, max=1.0, doc="cosine, poly: floor / lr")


@dataclass(frozen=True)
class DivergenceConfig:
    factor: float = option(2.0, min=1.0, min_exclusive=True, doc="divide the lr by this")
    max_retries: int = option(8, min=0)
    threshold: float = option(10.0, min=1.0, min_exclusive=True,
                              doc="a step diverges when its loss is not finite or exceeds threshold x "
                                  "max(running mean of recent losses, ln(classes)); the floor "
                                  "keeps noisy batches late in training from firing it")
    snapshot_every: int = option(50, min=1, doc="steps between rollback snapshots")
    window: int = option(50, min=1, doc="steps in the running loss")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = option(10, min=1)
    batch_size: int = option(128, min=1)
    eval_batch_size: int = option(512, min=1)


@dataclass(frozen=True)
class CheckpointConfig:
    every: int = option(1, min=0, doc="epochs between checkpoints (0 = never by epoch)")
    every_steps: int = option(0, min=0, doc="steps between checkpoints (0 = never)")
    every_minutes: float = option(0.0, min=0.0, doc="minutes between checkpoints (0 = never)")
    keep: int = option(3, min=1)


@dataclass(frozen=True)
class _Head:
    name: str | None = option(None, convert=_run_name)
    seed: int = option(0, min=0)
    input: tuple | None = option(None, convert=_input_shape)


SECTIONS: dict[str, type] = {
    "data": DataConfig, "optim": OptimConfig, "schedule": ScheduleConfig,
    "divergence": DivergenceConfig, "train": TrainConfig, "checkpoint": CheckpointConfig,
}
TOP_KEYS = ("name", "seed", "input", "data", "model", "optim", "schedule", "divergence",
            "train", "checkpoint")


# --- the result ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerConfig:
    """One layer of the expanded model. `path`/`line`/`source` only serve messages."""
    type: str
    spec: Any
    common: LayerCommon = field(default_factory=LayerCommon)
    path: str = field(default="", compare=False)
    line: int | None = field(default=None, compare=False)
    source: str = field(default="<string>", compare=False)
    repetition: tuple[int, ...] = field(default=(), compare=False)  # 0-based, outer block first

    @property
    def where(self) -> str:
        """`file:line: path` (plus the repetition inside repeat blocks), the prefix of messages."""
        rep = f" (repetition {'.'.join(str(r + 1) for r in self.repetition)})" if self.repetition else ""
        line = f":{self.line}" if self.line else ""
        return f"{self.source}{line}: {self.path or self.type}{rep}"

    def error(self, message: str, cls: type = ConfigError) -> Exception:
        """An exception whose message locates this layer, e.g. for a ShapeError from build."""
        return cls(f"{self.where}: {message}")

    def to_dict(self) -> dict:
        """The long form `{type: {option: value, ...}}`, common keys only when not default.

        A spec option at a default that its own check would not take back (`stride: null` for
        "same as size") is left out, so that the result loads again."""
        options = {}
        hints = typing.get_type_hints(type(self.spec)) if dataclasses.is_dataclass(self.spec) else {}
        for f in dataclasses.fields(self.spec) if dataclasses.is_dataclass(self.spec) else ():
            value = getattr(self.spec, f.name)
            plain = spec_to_dict(value)
            if f.init and value == f.default:
                try:
                    check_field(f, plain, (), hints)
                except (SpecError, ValueError, TypeError):
                    continue
            options[f.name] = plain
        for f in dataclasses.fields(LayerCommon):
            value = getattr(self.common, f.name)
            if value != f.default:
                options[f.name] = _common_to_yaml(f.name, value)
        return {self.type: options}


def _common_to_yaml(key, value):
    if key == "init" and value is not None:       # init_scheme's output -> its input form
        kind, v = value
        return kind if kind in ("he", "glorot", "lecun") else {kind: v}
    return spec_to_dict(value)


@dataclass(frozen=True)
class Config:
    name: str
    seed: int
    input: tuple[int, ...] | None
    data: DataConfig
    model: tuple[LayerConfig, ...]
    optim: OptimConfig
    schedule: ScheduleConfig
    divergence: DivergenceConfig
    train: TrainConfig
    checkpoint: CheckpointConfig
    source: str = field(default="<string>", compare=False)
    text: str = field(default="", compare=False, repr=False)

    def to_dict(self) -> dict:
        """The resolved config as plain YAML-able data, every default filled in."""
        return {
            "name": self.name, "seed": self.seed,
            "input": list(self.input) if self.input is not None else None,
            "data": spec_to_dict(self.data),
            "model": [layer.to_dict() for layer in self.model],
            **{key: spec_to_dict(getattr(self, key)) for key in SECTIONS if key != "data"},
        }


# --- YAML with lines -------------------------------------------------------------------------

_FLOAT_E = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-3` as a number."""


class _Dumper(yaml.SafeDumper):
    """SafeDumper that quotes strings `_Loader` would read as numbers."""


for _cls in (_Loader, _Dumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_E, list("-+0123456789."))

_MAP, _SEQ, _MERGE = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:merge"


def format_path(path) -> str:
    """('model', 0, 'layers', 1, 'conv', 'filters') -> 'model[0].layers[1].conv.filters'."""
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


class _Ctx:
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
        path, message = _split_post_init(e.path, e.message, cls)
        return self.error(path, message)

    def spec(self, cls, raw, path):
        try:
            return build_spec(cls, raw, tuple(path))
        except SpecError as e:
            raise self.spec_error(e, cls=cls if tuple(e.path) == tuple(path) else None) from None


_KEY_MESSAGE = re.compile(r"^([A-Za-z_]\w*): (.+)$", re.S)


def _split_post_init(path, message, cls=None):
    """`__post_init__` raises ValueError("key: message"): move `key` into the path."""
    m = _KEY_MESSAGE.match(message)
    if m and cls is not None and m.group(1) in {f.name for f in dataclasses.fields(cls)}:
        return tuple(path) + (m.group(1),), m.group(2)
    return tuple(path), message


class _Builder:
    """Composed YAML nodes -> plain Python data, recording the line of every key path."""

    def __init__(self, loader: _Loader, ctx: _Ctx):
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


def _compose(text: str, source: str) -> tuple[Any, _Ctx]:
    ctx = _Ctx(source)
    try:
        loader = _Loader(text)
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


# --- model -----------------------------------------------------------------------------------

@dataclass
class _Val:
    value: Any
    display: tuple          # the key path shown in messages
    where: tuple            # the path whose line is reported


@dataclass
class _RawLayer:
    type: str
    cls: Any
    values: dict            # key -> _Val
    path: tuple             # the entry in the file, e.g. ('model', 0, 'layers', 1)
    blocks: tuple = ()      # (count, path) of the enclosing repeat blocks, outer first
    repetition: tuple = ()


@dataclass
class _Block:
    count: int
    items: list
    path: tuple


def _spec_fields(cls) -> dict:
    return {f.name: f for f in dataclasses.fields(cls.Spec) if f.init}


_COMMON_FIELDS = {f.name: f for f in dataclasses.fields(LayerCommon)}
_COMMON_HINTS: dict | None = None


def _field_for(cls, key):
    """(field, type hints) of `key` for layer class `cls`: its spec's own or a common key."""
    global _COMMON_HINTS
    fields = _spec_fields(cls)
    if key in fields:
        return fields[key], typing.get_type_hints(cls.Spec)
    if _COMMON_HINTS is None:
        _COMMON_HINTS = typing.get_type_hints(LayerCommon)
    return _COMMON_FIELDS[key], _COMMON_HINTS


def _accepts(cls, key, value) -> bool:
    f, hints = _field_for(cls, key)
    try:
        check_field(f, value, (), hints)
    except (SpecError, ValueError, TypeError):
        return False
    return True


_LAYER_EXAMPLE = "`- relu`, `- max_pool: 2` or `- conv: {filters: 32, size: 5}`"


class _ModelParser:
    def __init__(self, ctx: _Ctx, layer_types: Mapping[str, Any]):
        self.ctx = ctx
        self.types = layer_types

    # parse: the file's structure, unknown types and keys ---------------------------------------
    def items(self, raw, path) -> list:
        if not isinstance(raw, list) or not raw:
            got = "an empty list" if isinstance(raw, list) else describe(raw)
            raise self.ctx.error(path, f"must be a non-empty list of layers ({_LAYER_EXAMPLE}), "
                                       f"got {got}")
        return [self.item(x, path + (i,)) for i, x in enumerate(raw)]

    def item(self, raw, path):
        if isinstance(raw, str):
            return _RawLayer(raw, self.layer_class(raw, path), {}, path)
        if isinstance(raw, dict):
            if "repeat" in raw:
                return self.block(raw, path)
            if len(raw) == 1:
                (name, value), = raw.items()
                return self.layer(name, value, path)
            if not raw:
                raise self.ctx.error(path, f"empty layer; write {_LAYER_EXAMPLE}")
            keys = list(raw)
            typed = [k for k in keys if k in self.types]
            if len(typed) == 1 and raw[typed[0]] is None:
                t = typed[0]
                rest = [k for k in keys if k != t]
                raise self.ctx.error(path + (rest[0],),
                                     f"looks like an option of '{t}': indent the options under "
                                     f"'{t}:' (or write `- {t}: {{{rest[0]}: ...}}`)")
            raise self.ctx.error(path, "a layer is a one-key mapping `type: options`, got keys "
                                       f"{', '.join(keys)}; write {_LAYER_EXAMPLE}")
        raise self.ctx.error(path, f"a layer is a type name or a one-key mapping ({_LAYER_EXAMPLE}), "
                                   f"got {describe(raw)}")

    def layer_class(self, name, path):
        if name not in self.types:
            raise self.ctx.error(path, f"unknown layer type '{name}'; {did_you_mean(name, self.types)}")
        return self.types[name]

    def layer(self, name, value, path):
        cls = self.layer_class(name, path + (name,))
        tpath = path + (name,)
        fields = _spec_fields(cls)
        if value is None:
            return _RawLayer(name, cls, {}, path)
        if isinstance(value, dict):
            known = list(fields) + [k for k in COMMON_KEYS if k not in fields]
            values = {}
            for key, v in value.items():
                if key not in known:
                    if key == "repeat":
                        raise self.ctx.error(tpath + (key,), "`repeat` makes a block: write "
                                             "`- repeat: N` with `layers: [...]` beside it")
                    raise self.ctx.error(tpath + (key,), f"unknown key for '{name}'; "
                                                         f"{did_you_mean(key, known)}")
                values[key] = _Val(v, tpath + (key,), tpath + (key,))
            return _RawLayer(name, cls, values, path)
        short = getattr(cls, "short", None)
        if short is None:
            if fields:
                raise self.ctx.error(tpath, f"'{name}' has no short form; write its options as a "
                                            f"mapping, e.g. `- {name}: {{{next(iter(fields))}: ...}}` "
                                            f"(keys: {', '.join(fields)})")
            raise self.ctx.error(tpath, f"'{name}' takes no value; write `- {name}`")
        return _RawLayer(name, cls, {short: _Val(value, tpath + (short,), tpath)}, path)

    def block(self, raw, path):
        for key in raw:
            if key not in ("repeat", "layers"):
                raise self.ctx.error(path + (key,), "unknown key in a repeat block; "
                                                    f"{did_you_mean(key, ('layers', 'repeat'))}")
        count = raw["repeat"]
        if isinstance(count, bool) or not isinstance(count, int):
            raise self.ctx.error(path + ("repeat",), f"must be an integer >= 1, got {describe(count)}")
        if count < 1:
            raise self.ctx.error(path + ("repeat",), f"must be >= 1, got {count}")
        if count > MAX_LAYERS:
            raise self.ctx.error(path + ("repeat",), f"must be <= {MAX_LAYERS}, got {count}")
        if "layers" not in raw:
            raise self.ctx.error(path + ("layers",), "is required: the list of layers to repeat")
        return _Block(count, self.items(raw["layers"], path + ("layers",)), path)

    # expand: repeat blocks, per-repetition values, name suffixes -------------------------------
    def expand(self, items, repetition=()) -> Iterator[_RawLayer]:
        for item in items:
            if isinstance(item, _RawLayer):
                yield dataclasses.replace(item, repetition=repetition)
                continue
            for r in range(item.count):
                children = [self.substitute(child, item, r) for child in item.items]
                yield from self.expand(children, repetition + (r,))

    def substitute(self, item, block: _Block, r: int):
        if isinstance(item, _Block):
            return _Block(item.count, [self.substitute(c, block, r) for c in item.items], item.path)
        values = {}
        for key, val in item.values.items():
            v = val.value
            if isinstance(v, list) and len(v) == block.count and not _accepts(item.cls, key, v):
                val = _Val(v[r], val.display + (r,), val.where + (r,))
            elif key == "name" and isinstance(v, str):
                val = _Val(f"{v}_{r + 1}", val.display, val.where)
            values[key] = val
        return _RawLayer(item.type, item.cls, values, item.path,
                         item.blocks + ((block.count, block.path),))

    # build: specs and common keys --------------------------------------------------------------
    def build(self, raw: _RawLayer) -> LayerConfig:
        fields = _spec_fields(raw.cls)
        spec_raw = {k: v.value for k, v in raw.values.items() if k in fields}
        common_raw = {k: v.value for k, v in raw.values.items() if k not in fields}
        spec = self.checked(raw, raw.cls.Spec, spec_raw)
        common = self.checked(raw, LayerCommon, common_raw)
        return LayerConfig(raw.type, spec, common, path=format_path(raw.path),
                           line=self.ctx.line(raw.path), source=self.ctx.source,
                           repetition=raw.repetition)

    def checked(self, raw: _RawLayer, cls, values):
        try:
            return build_spec(cls, values, ())
        except SpecError as e:
            path, message = e.path, e.message
            if not path:
                path, message = _split_post_init(path, message, cls)
            tpath = raw.path + (raw.type,)
            if not path:
                raise self.ctx.error(tpath, message) from None
            key, rest = path[0], tuple(path[1:])
            val = raw.values.get(key)
            if val is None:      # a missing required key, or a cross-field check on a default
                raise self.ctx.error(tpath + path, message, line_path=tpath) from None
            raise self.ctx.error(val.display + rest, message + self.hint(raw, val, rest),
                                 line_path=val.where + rest) from None

    @staticmethod
    def hint(raw: _RawLayer, val: _Val, rest) -> str:
        v = val.value
        if rest or not raw.blocks or not isinstance(v, list):
            return ""
        counts = sorted({c for c, _ in raw.blocks})
        if len(v) in counts:
            return ""
        need = " or ".join(map(str, counts))
        return (f" (in a `repeat: {need}` block a per-repetition list needs exactly {need} "
                f"values, this one has {len(v)})")


def parse_model(raw, *, layer_types: Mapping[str, Any] | None = None, source: str = "<model>",
                _ctx: _Ctx | None = None) -> tuple[LayerConfig, ...]:
    """Parse a model list (plain data, as in YAML) into the expanded tuple of LayerConfigs.

    `layer_types` maps type names to layer classes (with `.type`, `.Spec`, `.short`); it defaults
    to the registry, imported here so that this module loads without the layer modules.
    """
    if layer_types is None:
        from ..nn.layers.registry import LAYER_TYPES as layer_types
    ctx = _ctx or _Ctx(source)
    parser = _ModelParser(ctx, layer_types)
    items = parser.items(raw, ("model",))
    layers: list[LayerConfig] = []
    names: dict[str, LayerConfig] = {}
    for raw_layer in parser.expand(items):
        if len(layers) >= MAX_LAYERS:
            raise ctx.error(("model",), f"more than {MAX_LAYERS} layers after expanding the "
                                        "repeat blocks")
        layer = parser.build(raw_layer)
        name = layer.common.name
        if name is not None:
            if name in names:
                first = names[name]
                val = raw_layer.values["name"]
                at = f"{first.path}" + (f" (line {first.line})" if first.line else "")
                raise ctx.error(val.display, f"name {name!r} is already used by {at}; "
                                             "layer names must be unique", line_path=val.where)
            names[name] = layer
        layers.append(layer)
    return tuple(layers)


# --- the whole config ------------------------------------------------------------------------

def _default_name(source: str) -> str:
    if source.startswith("<"):
        return "run"
    return Path(source).stem or "run"


def _resolve_path(p: str, source: str) -> str:
    p = os.path.expanduser(p)
    if not os.path.isabs(p):
        base = "." if source.startswith("<") else (os.path.dirname(source) or ".")
        p = os.path.join(base, p)
    return os.path.normpath(os.path.abspath(p))


def _parse(raw, ctx: _Ctx, text: str, layer_types) -> Config:
    if raw is None:
        raise ConfigError(f"{ctx.source}:1: the config is empty; it needs at least a `model:` "
                          "list of layers")
    if not isinstance(raw, dict):
        kind = "a list" if isinstance(raw, list) else describe(raw)
        raise ctx.error((), f"the config must be a mapping of sections ({', '.join(TOP_KEYS)}), "
                            f"got {kind}")
    parsed: dict[str, Any] = {}
    head_raw = {}
    for key, value in raw.items():       # in file order, so the first error is the earliest
        if key not in TOP_KEYS:
            raise ctx.error((key,), f"unknown section; {did_you_mean(key, TOP_KEYS)}")
        if key in SECTIONS:
            parsed[key] = ctx.spec(SECTIONS[key], value, (key,))
        elif key == "model":
            parsed[key] = parse_model(value, layer_types=layer_types, _ctx=ctx)
        else:
            head_raw[key] = value
            ctx.spec(_Head, {key: value}, ())
    if "model" not in raw:
        raise ctx.error(("model",), "is required: the list of layers, e.g. "
                                    "`model: [{dense: 10}]`", line_path=())
    head = ctx.spec(_Head, head_raw, ())
    sections = {key: parsed[key] if key in parsed else cls() for key, cls in SECTIONS.items()}
    data = sections["data"]
    if data.path is not None:
        sections["data"] = dataclasses.replace(data, path=_resolve_path(data.path, ctx.source))
    return Config(name=head.name if head.name is not None else _default_name(ctx.source),
                  seed=head.seed, input=head.input, model=parsed["model"], **sections,
                  source=ctx.source, text=text)


def loads(text: str, source: str = "<string>", *,
          layer_types: Mapping[str, Any] | None = None) -> Config:
    """Parse config text. `source` names it in messages and anchors relative data paths."""
    if not isinstance(text, str):
        raise TypeError(f"loads() takes str, got {type(text).__name__}")
    if text.startswith("\ufeff"):
        text = text[1:]
    raw, ctx = _compose(text, source)
    return _parse(raw, ctx, text, layer_types)


def _read_text(path: Path, source: str) -> str:
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


def load(path, *, layer_types: Mapping[str, Any] | None = None) -> Config:
    """Read and check a config file. Every problem raises ConfigError naming file:line: path."""
    source = os.fspath(path)
    return loads(_read_text(Path(source), source), source, layer_types=layer_types)


# --- overrides and dumping -------------------------------------------------------------------

OVERRIDES = {"epochs": ("train", "epochs"), "batch_size": ("train", "batch_size"),
             "lr": ("optim", "lr"), "seed": (None, "seed"), "data_path": ("data", "path")}


def with_overrides(cfg: Config, **changes) -> Config:
    """A copy with command-line changes applied and checked. `None` values are ignored.

    Keys: epochs, batch_size, lr, seed, data_path (relative to the working folder), or any
    `section.field` (e.g. `**{"optim.momentum": 0.5}`).
    """
    for key, value in changes.items():
        if value is None:
            continue
        if key in OVERRIDES:
            section, name = OVERRIDES[key]
        elif key.count(".") == 1 and key.split(".")[0] in SECTIONS:
            section, name = key.split(".")
        else:
            raise TypeError(f"unknown override {key!r}; known: {', '.join(OVERRIDES)} or "
                            "section.field")
        cls = _Head if section is None else type(getattr(cfg, section))
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
            value = _resolve_path(value, "<override>")
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


def _flow(value) -> str:
    text = yaml.dump(value, Dumper=_Dumper, default_flow_style=True, sort_keys=False,
                     width=2**31 - 1, allow_unicode=True)
    if text.endswith("\n...\n"):
        text = text[:-5]
    return text.strip()


def dump(cfg: Config) -> str:
    """The resolved config as YAML, every default filled in, the model expanded in long form.

    `loads(dump(cfg)) == cfg` (source and text aside).
    """
    source = cfg.source.replace("\n", " ")
    lines = [f"# resolved config (every default filled in), from {source}"]
    for key, value in cfg.to_dict().items():
        if key == "model":
            lines.append("model:")
            lines.extend(f"  - {_flow(layer)}" for layer in value)
        else:
            lines.append(f"{key}: {_flow(value)}")
    return "\n".join(lines) + "\n"
