"""What a config holds: the section dataclasses, `LayerConfig`, `Config`, and their YAML form.

Every section is a spec dataclass (`spec.option`): the single source of its keys, defaults and
checks. The model (`LayerConfig`s) is parsed by `model.py`, the schedule (an instance of the
chosen class in `train.schedules.SCHEDULES`) by `schedule.py`.

Relative `data.path`s resolve against the config file's folder and are stored absolute, so the
resolved config (`dump`) can be loaded from anywhere.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .common import LayerCommon
from .registries import dataset_names
from .schedule import schedule_to_dict
from .spec import SpecError, check_field, describe, option, spec_to_dict


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


# --- sections --------------------------------------------------------------------------------

@dataclass(frozen=True)
class AugmentConfig:
    translate: int = option(0, min=0, doc="random shifts of up to this many pixels")
    crop_pad: int = option(0, min=0, doc="zero-pad by this many pixels, then crop at random")
    hflip: bool = option(False, doc="random horizontal flips")
    noise: float = option(0.0, min=0.0, doc="std of Gaussian noise added to normalised inputs")
    cutout: int = option(0, min=0, doc="set a square of this side, centred on a random pixel "
                                        "(clipped at the borders), to the training mean")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = option("fashion-mnist", choices=dataset_names)
    path: str | None = option(None, convert=_data_path,
                              doc="folder or file; relative to the config file's folder "
                                  "(npz: the .npz file; cifar10: the folder of the binary "
                                  "batches; folder: the folder of class sub-folders)")
    layout: str = option("nchw", choices=("nchw", "nhwc"))
    validation: int = option(5000, min=0, doc="examples held out of the training set")
    subset: int | None = option(None, min=1, doc="use only the first N training examples")
    augment: AugmentConfig = option(AugmentConfig())
    cache: bool = option(False, doc="dataset folder: keep the decoded images in "
                                    "$XDG_CACHE_HOME/convtrain/data/ (~/.cache by default), "
                                    "rebuilt when a file or the input shape changes")
    folds: int | None = option(None, min=2, doc="cross-validation: deal the training examples "
                               "(the first `subset` of them) into this many folds, stratified "
                               "by class and seeded; fold `fold` is the validation set, the "
                               "others the training set (`validation` is then not used)")
    fold: int = option(0, min=0, doc="with `folds`: the fold held out for validation, from 0")

    def __post_init__(self):
        if self.folds is None and self.fold != 0:
            raise ValueError(f"fold: needs `folds` (the number of folds), got fold {self.fold}")
        if self.folds is not None and self.fold >= self.folds:
            raise ValueError(f"fold: must be < folds ({self.folds}), got {self.fold}")


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
class DivergenceConfig:
    factor: float = option(2.0, min=1.0, min_exclusive=True, doc="divide the lr by this")
    max_retries: int = option(12, min=0, doc="halvings at one point before giving up: 12 "
                                               "halvings bring a rate 1000x too large back")
    threshold: float = option(10.0, min=1.0, min_exclusive=True,
                              doc="a step diverges when its loss or a gradient is not finite, "
                                  "when its loss exceeds threshold x the 95% quantile of recent "
                                  "good losses (ln(classes) before any; the limit kept within "
                                  "[ln(classes), threshold x ln(classes)]), when the losses "
                                  "keep rising, and after a rollback when the loss does not "
                                  "fall or units die (train/step.py, train/health.py)")
    snapshot_every: int = option(50, min=1, doc="steps between rollback snapshots")
    window: int = option(50, min=1, doc="good losses in the guard's reference; the rising "
                                                 "test compares the medians of two windows")


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
class Head:
    """The top-level keys that are not sections."""
    name: str | None = option(None, convert=_run_name)
    seed: int = option(0, min=0)
    input: tuple | None = option(None, convert=_input_shape)


# The sections with a fixed set of options; `schedule` takes the options of its `type`.
SECTIONS: dict[str, type] = {
    "data": DataConfig, "optim": OptimConfig, "divergence": DivergenceConfig,
    "train": TrainConfig, "checkpoint": CheckpointConfig,
}
TOP_KEYS = ("name", "seed", "input", "data", "model", "optim", "schedule", "divergence",
            "train", "checkpoint")


def resolve_path(p: str, source: str) -> str:
    """A data path as an absolute one: relative paths start at `source`'s folder."""
    p = os.path.expanduser(p)
    if not os.path.isabs(p):
        base = "." if source.startswith("<") else (os.path.dirname(source) or ".")
        p = os.path.join(base, p)
    return os.path.normpath(os.path.abspath(p))


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
    """A whole config, checked; `source` and `text` name where it came from (not compared)."""
    name: str
    seed: int
    input: tuple[int, ...] | None
    data: DataConfig
    model: tuple[LayerConfig, ...]
    optim: OptimConfig
    schedule: Any                   # the options of its type: a train.schedules.Schedule
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
            "optim": spec_to_dict(self.optim),
            "schedule": schedule_to_dict(self.schedule),
            "divergence": spec_to_dict(self.divergence),
            "train": spec_to_dict(self.train),
            "checkpoint": spec_to_dict(self.checkpoint),
        }
