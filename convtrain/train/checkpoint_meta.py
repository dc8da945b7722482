"""A checkpoint's JSON metadata as one typed class, validated once when a checkpoint is read.

The metadata is JSON anyone could have edited: `CheckpointMeta.from_json` checks every field's
type and range and raises one CheckpointError naming the file and the field. Only config, epoch
and step are required; the others default (a checkpoint written for inference alone has no
training state; one written by hand may have no normalisation), and the code that needs a field
asks for it (`Checkpoint.require`). Unknown keys are ignored. The keys `to_json` writes are the
format's version 1 (plus the guard's watch keys while it watches a run after a rollback, which
older readers ignore): old checkpoints load unchanged.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..errors import CheckpointError

_FLOAT32_MAX = 3.4028234663852886e38


@dataclass
class GuardRecord:
    """The divergence guard's and the lr halving's state (key "guard")."""
    recent: list[float] = field(default_factory=list)    # the guard's recent good losses
    retries: int = 0          # halvings since training last got past a failure point
    fail_step: int = -1       # the furthest step that diverged
    history: list[float] = field(default_factory=list)   # the rates tried, for the final error
    # the watch after a rollback (train/step.py rule 4, train/health.py)
    watching: bool = False
    watched: list[float] = field(default_factory=list)   # the good losses since the rollback
    rollback_dead: dict[str, float] = field(default_factory=dict)   # layer -> dead fraction


_WATCH_KEYS = ("watching", "watched", "rollback_dead")


@dataclass
class EpochSums:
    """Running totals of the epoch in progress (key "epoch_sums")."""
    loss: float = 0.0          # sum of batch loss x batch size
    errors: int = 0
    seen: int = 0
    seconds: float = 0.0
    divergences: int = 0


@dataclass
class CheckpointMeta:
    config: str                          # the resolved config's YAML text
    epoch: int
    step: int
    name: str | None = None
    steps_per_epoch: int | None = None
    batch_size: int | None = None
    lr: float | None = None              # the rate at `step`, halvings included
    lr_scale: float = 1.0                # the product of the divergence halvings
    seed: int | None = None
    guard: GuardRecord = field(default_factory=GuardRecord)
    best_val_error: float | None = None
    best_epoch: int | None = None
    epoch_sums: EpochSums = field(default_factory=EpochSums)
    input_shape: list[int] | None = None   # [C, H, W] or [D]
    mean: list[float] | None = None        # per-channel normalisation
    std: list[float] | None = None
    classes: list[str] | None = None
    rng: str | None = None                 # how randomness derives from (seed, step), for readers

    def to_json(self) -> dict:
        meta = dataclasses.asdict(self)
        if not self.guard.watching:   # the keys of a run that is not watching are version 1's
            for key in _WATCH_KEYS:
                del meta["guard"][key]
        return meta

    @classmethod
    def from_json(cls, path: str, raw: dict) -> CheckpointMeta:
        try:
            return cls._read(raw)
        except _Malformed as e:
            raise CheckpointError(f"{path}: malformed metadata: {e}") from None

    @classmethod
    def _read(cls, m: dict) -> CheckpointMeta:
        for key in ("config", "epoch", "step"):
            if m.get(key) is None:
                raise _Malformed(f"{key!r} missing")
        meta = cls(config=_text(m["config"], "config"),
                   epoch=_integer(m["epoch"], "epoch", minimum=0),
                   step=_integer(m["step"], "step", minimum=0))
        optional = {"name": _text, "steps_per_epoch": _positive_integer,
                    "batch_size": _positive_integer, "lr": _number, "seed": _integer,
                    "best_val_error": _number, "best_epoch": _integer, "rng": _text,
                    "classes": _names}
        for key, read in optional.items():
            if m.get(key) is not None:
                setattr(meta, key, read(m[key], key))
        if m.get("lr_scale") is not None:
            meta.lr_scale = _number(m["lr_scale"], "lr_scale")
            if meta.lr_scale <= 0:
                raise _Malformed(f"'lr_scale' must be > 0, got {meta.lr_scale!r}")
        meta.guard = _record(GuardRecord, m.get("guard"), "guard")
        meta.epoch_sums = _record(EpochSums, m.get("epoch_sums"), "epoch_sums")
        _read_normalisation(meta, m)
        return meta


class _Malformed(Exception):
    """A field's problem; from_json adds the file."""


def _read_normalisation(meta: CheckpointMeta, m: dict) -> None:
    if m.get("input_shape") is not None:
        shape = m["input_shape"]
        if (not isinstance(shape, list) or len(shape) not in (1, 3)
                or not all(_is_int(v) and v >= 1 for v in shape)):
            raise _Malformed(f"'input_shape': the input shape must be [C, H, W] or [D] of "
                             f"positive sizes, got {shape!r}")
        meta.input_shape = list(shape)
    for key in ("mean", "std"):
        if m.get(key) is None:
            continue
        value = m[key]
        if not isinstance(value, list) or not all(_is_number(v) for v in value):
            raise _Malformed(f"{key!r}: the normalisation must be a list of numbers, got {value!r}")
        if not all(abs(v) <= _FLOAT32_MAX for v in value):   # NaN fails too; used as float32
            raise _Malformed(f"{key!r}: the normalisation must be finite, got {value!r}")
        if key == "std" and min(value, default=0.0) < 0:
            raise _Malformed(f"'std': the normalisation needs std >= 0, got {value!r}")
        if meta.input_shape is not None and len(value) != meta.input_shape[0]:
            raise _Malformed(f"{key!r}: the normalisation does not match the input "
                             f"({len(value)} values for {meta.input_shape[0]} channels)")
        setattr(meta, key, [float(v) for v in value])


def _record(cls, value, name: str):
    """A GuardRecord or EpochSums from a JSON object; absent keys keep their defaults."""
    if value is None:
        return cls()
    if not isinstance(value, dict):
        raise _Malformed(f"{name!r} must be a JSON object, got {value!r}")
    kept = {}
    for f in dataclasses.fields(cls):
        if f.name in value:
            where = f"{name}.{f.name}"
            kept[f.name] = _READERS[f.type](value[f.name], where)
    return cls(**kept)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _integer(v, key: str, *, minimum: int | None = None) -> int:
    if not _is_int(v):
        raise _Malformed(f"{key!r} must be an integer, got {v!r}")
    if minimum is not None and v < minimum:
        raise _Malformed(f"{key!r} must not be negative, got {v}" if minimum == 0
                         else f"{key!r} must be >= {minimum}, got {v}")
    return v


def _positive_integer(v, key: str) -> int:
    return _integer(v, key, minimum=1)


def _number(v, key: str) -> float:
    if not _is_number(v) or not math.isfinite(v):
        raise _Malformed(f"{key!r} must be a finite number, got {v!r}")
    return float(v)


def _numbers(v, key: str) -> list[float]:
    if not isinstance(v, list):
        raise _Malformed(f"{key!r} must be a list of finite numbers, got {v!r}")
    return [_number(x, key) for x in v]


def _text(v, key: str) -> str:
    if not isinstance(v, str):
        raise _Malformed(f"{key!r} must be text, got {v!r}")
    return v


def _boolean(v, key: str) -> bool:
    if not isinstance(v, bool):
        raise _Malformed(f"{key!r} must be true or false, got {v!r}")
    return v


def _fractions(v, key: str) -> dict[str, float]:
    if not isinstance(v, dict):
        raise _Malformed(f"{key!r} must be a JSON object of layer names to fractions, got {v!r}")
    return {str(name): _number(f, f"{key}.{name}") for name, f in v.items()}


# The record fields' annotations (strings under `from __future__ import annotations`) -> readers.
_READERS = {"int": _integer, "float": _number, "list[float]": _numbers, "bool": _boolean,
            "dict[str, float]": _fractions}


def _names(v, key: str) -> list[str]:
    if not isinstance(v, list):
        raise _Malformed(f"{key!r} must be a list of names, got {v!r}")
    return [str(x) for x in v]
