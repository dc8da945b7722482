"""config's `schedule:` section: the type picks its options from train.schedules.SCHEDULES."""
from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass
from typing import ClassVar

import pytest

from convtrain import config as C
from convtrain.config import registries
from convtrain.config.spec import option
from convtrain.errors import ConfigError
from convtrain.train.schedules import SCHEDULES

M = "model: [relu]\n"


def loads(text, source="s.yaml", **kw):
    return C.loads(textwrap.dedent(text), source, **kw)


def error_of(text, **kw) -> str:
    with pytest.raises(ConfigError) as info:
        loads(text, "bad.yaml", **kw)
    return str(info.value)


def test_each_type_gets_its_own_class_and_options():
    cfg = loads("schedule: {type: cosine, min_factor: 0.01, warmup_steps: 20}\n" + M)
    assert cfg.schedule == SCHEDULES["cosine"](min_factor=0.01, warmup_steps=20)
    cfg = loads("schedule:\n  type: multistep\n  milestones: [3, 6]\n  gamma: 0.5\n" + M)
    assert cfg.schedule == SCHEDULES["multistep"](milestones=(3, 6), gamma=0.5)


def test_default_type_is_exponential_with_its_defaults():
    for text in (M, "schedule:\n" + M, "schedule: {final_factor: 0.01}\n" + M):
        cfg = loads(text)
        assert type(cfg.schedule) is SCHEDULES["exponential"] and cfg.schedule.warmup_steps == 0
    assert loads(M).schedule.final_factor == 0.001


def test_an_option_of_another_type_is_an_error():
    assert error_of("seed: 1\nschedule: {type: cosine, gamma: 0.5, milestones: [3]}\n" + M) == (
        "bad.yaml:2: schedule.gamma: not an option of the cosine schedule (its options: "
        "min_factor, warmup_steps); gamma is an option of step, multistep")
    assert error_of("schedule:\n  final_factor: 0.01\n  type: poly\n" + M) == (
        "bad.yaml:2: schedule.final_factor: not an option of the poly schedule (its options: "
        "min_factor, power, warmup_steps); final_factor is an option of exponential")


@pytest.mark.parametrize("text, expected", [
    ("schedule: {type: cosine, min_facter: 0.1}\n",
     "bad.yaml:1: schedule.min_facter: not an option of the cosine schedule (its options: "
     "min_factor, warmup_steps); did you mean 'min_factor'?"),
    ("schedule:\n  typ: cosine\n",
     "bad.yaml:2: schedule.typ: not an option of the exponential schedule (its options: "
     "final_factor, warmup_steps); did you mean 'type'?"),
    ("schedule:\n  type: constant\n  speed: 3\n",
     "bad.yaml:3: schedule.speed: not an option of the constant schedule (its options: "
     "warmup_steps)"),
    ("schedule:\n  type: 3\n", "bad.yaml:2: schedule.type: must be a string, got 3"),
    ("schedule: {type: cosin}\n", "bad.yaml:1: schedule.type: must be one of constant, step, "
                                  "multistep, exponential, inverse, cosine, poly, got 'cosin'; "
                                  "did you mean 'cosine'?"),
    ("schedule: cosine\n", "bad.yaml:1: schedule: must be a mapping of options, got 'cosine'"),
    ("schedule:\n  type: cosine\n  min_factor: 2\n",
     "bad.yaml:3: schedule.min_factor: must be <= 1.0, got 2.0"),
    ("schedule:\n  type: step\n  warmup_steps: -1\n",
     "bad.yaml:3: schedule.warmup_steps: must be >= 0, got -1"),
])
def test_bad_schedule(text, expected):
    assert error_of(text + M) == expected


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_dump_holds_only_the_chosen_types_options_and_round_trips(name):
    cfg = loads(f"schedule: {{type: {name}}}\n" + M)
    line = next(x for x in C.dump(cfg).splitlines() if x.startswith("schedule:"))
    keys = [part.split(":")[0].strip(" {") for part in line[len("schedule: "):].split(", ")]
    fields = [f.name for f in dataclasses.fields(SCHEDULES[name]) if f.name != "warmup_steps"]
    assert keys == ["type", *fields, "warmup_steps"]
    assert C.loads(C.dump(cfg)) == cfg


def test_overrides_take_the_options_of_the_type():
    cfg = loads("schedule: {type: cosine}\n" + M)
    assert C.with_overrides(cfg, **{"schedule.min_factor": 0.5}).schedule.min_factor == 0.5
    with pytest.raises(TypeError, match="unknown override 'schedule.gamma'; known: min_factor, "
                                        "warmup_steps"):
        C.with_overrides(cfg, **{"schedule.gamma": 0.5})
    with pytest.raises(ConfigError, match=r"^override schedule.min_factor: must be <= 1.0"):
        C.with_overrides(cfg, **{"schedule.min_factor": 3.0})


# --- configs stored by the version before the registry ---------------------------------------

# `dump` of the previous version (every schedule option of every type), as checkpoints hold it;
# the user had written `schedule: {type: cosine, min_factor: 0.01, gamma: 0.5}`.
OLD_DUMP = """\
# resolved config (every default filled in), from <old>
name: old
seed: 0
input: [1, 28, 28]
data: {dataset: fashion-mnist, path: null, layout: nchw, validation: 5000, subset: null, \
augment: {translate: 0, crop_pad: 0, hflip: false, noise: 0.0}}
model:
  - {conv: {filters: 4, size: [5, 5], stride: [1, 1], pad: [0, 0, 0, 0], bias: true}}
  - {relu: {}}
  - {max_pool: {size: [2, 2], stride: null, pad: [0, 0, 0, 0], ceil: false, floor: false}}
  - {dense: {units: 10, bias: true}}
optim: {lr: 0.05, momentum: 0.9, nesterov: false, weight_decay: 0.0, l1: 0.0, decay_biases: false}
schedule: {type: cosine, final_factor: 0.001, step_epochs: 1, gamma: 0.5, milestones: [], \
power: 1.0, inv_gamma: 0.0001, warmup_steps: 0, min_factor: 0.01}
divergence: {factor: 2.0, max_retries: 8, threshold: 10.0, snapshot_every: 50, window: 50}
train: {epochs: 10, batch_size: 128, eval_batch_size: 512}
checkpoint: {every: 1, every_steps: 0, every_minutes: 0.0, keep: 3}
"""


def test_a_stored_config_of_the_previous_version_loads():
    cfg = C.loads(OLD_DUMP, "run/last.npz (stored config)", stored=True)
    assert cfg.schedule == SCHEDULES["cosine"](min_factor=0.01, warmup_steps=0)
    assert [layer.type for layer in cfg.model] == ["conv", "relu", "max_pool", "dense"]
    # what it dumps now loads as a config a user wrote
    assert C.loads(C.dump(cfg)) == cfg
    assert "gamma" not in C.dump(cfg)


def test_stored_keeps_the_options_the_type_takes():
    text = OLD_DUMP.replace("type: cosine", "type: exponential").replace(
        "final_factor: 0.001", "final_factor: 0.02").replace("warmup_steps: 0", "warmup_steps: 9")
    schedule = C.loads(text, stored=True).schedule
    assert schedule == SCHEDULES["exponential"](final_factor=0.02, warmup_steps=9)


def test_the_previous_versions_text_is_refused_from_a_user():
    with pytest.raises(ConfigError, match=r"^runs/old/config.yaml:12: schedule.final_factor: not "
                                          r"an option of the cosine schedule"):
        C.loads(OLD_DUMP, "runs/old/config.yaml")


def test_stored_still_refuses_keys_no_version_wrote():
    text = OLD_DUMP.replace("min_factor: 0.01}", "min_factor: 0.01, speed: 2}")
    with pytest.raises(ConfigError, match=r"^x:12: schedule.speed: not an option of the cosine"):
        C.loads(text, "x", stored=True)
    with pytest.raises(ConfigError, match=r"^x:12: schedule.min_factor: must be <= 1.0"):
        C.loads(OLD_DUMP.replace("min_factor: 0.01", "min_factor: 7"), "x", stored=True)


def test_stored_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(OLD_DUMP)
    assert C.load(path, stored=True).schedule.min_factor == 0.01
    with pytest.raises(ConfigError, match="not an option of the cosine schedule"):
        C.load(path)


# --- the registries config reads ----------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Hold:
    type: ClassVar[str] = "hold"
    level: float = option(1.0, min=0.0, doc="the factor")


def test_another_schedule_registry_can_be_passed():
    cfg = loads("schedule: {type: hold, level: 0.5}\n" + M, schedule_types={"hold": Hold})
    assert cfg.schedule == Hold(level=0.5)
    assert "schedule: {type: hold, level: 0.5}\n" in C.dump(cfg)
    assert error_of("schedule: {type: cosine}\n" + M, schedule_types={"hold": Hold}) == (
        "bad.yaml:1: schedule.type: must be one of hold, got 'cosine'")


def test_dataset_names_come_from_one_place(monkeypatch):
    assert C.DataConfig().dataset in registries.dataset_names()
    from convtrain.data import readers
    assert registries.dataset_names() == tuple(readers.READERS)
    monkeypatch.setitem(readers.READERS, "cifar10", readers.READERS["npz"])
    assert loads("data: {dataset: cifar10}\n" + M).data.dataset == "cifar10"
    monkeypatch.setattr(readers, "READERS", {"fashion-mnist": readers.READERS["fashion-mnist"]})
    assert error_of("data: {dataset: npz}\n" + M) == (
        "bad.yaml:1: data.dataset: must be one of fashion-mnist, got 'npz'")
