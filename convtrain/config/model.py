"""The `model:` list -> the expanded tuple of `LayerConfig`s: short forms, repeat blocks, names.

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
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from .common import COMMON_KEYS, LayerCommon
from .registries import layer_types as default_layer_types
from .schema import LayerConfig
from .spec import SpecError, build_spec, check_field, describe, did_you_mean
from .yaml_lines import Context, format_path, split_post_init

MAX_LAYERS = 1_000                    # guards `repeat: 1000000000`


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
    def __init__(self, ctx: Context, layer_types: Mapping[str, Any]):
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
                path, message = split_post_init(path, message, cls)
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
                _ctx: Context | None = None) -> tuple[LayerConfig, ...]:
    """Parse a model list (plain data, as in YAML) into the expanded tuple of LayerConfigs.

    `layer_types` maps type names to layer classes (with `.type`, `.Spec`, `.short`); it defaults
    to the registry, imported only now so that config loads without the layer modules.
    """
    if layer_types is None:
        layer_types = default_layer_types()
    ctx = _ctx or Context(source)
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
