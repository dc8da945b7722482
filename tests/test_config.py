"""convtrain.config: YAML -> frozen dataclasses, repeat expansion, located error messages."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from convtrain import config as C
from convtrain.errors import ConfigError
from convtrain.config.common import LayerCommon
from convtrain.config.spec import option, padding, pair


# --- a fake registry that mirrors the real layer specs' keys ---------------------------------

@dataclass(frozen=True)
class FakeConvSpec:
    filters: int = option(min=1)
    size: tuple = option((3, 3), convert=pair(1, "size"))
    stride: tuple = option((1, 1), convert=pair(1, "stride"))
    pad: tuple | str = option("valid", convert=padding)


@dataclass(frozen=True)
class FakePoolSpec:
    size: tuple = option(convert=pair(1, "size"))
    stride: tuple | None = option(None, convert=pair(1, "stride"))


@dataclass(frozen=True)
class FakeNoOptions:
    pass


@dataclass(frozen=True)
class FakeDenseSpec:
    units: int = option(min=1)
    bias: bool = option(True)


@dataclass(frozen=True)
class FakeDropoutSpec:
    rate: float = option(0.5, min=0.0, max=0.99)


def _fake(type_, spec, short):
    return type(f"Fake_{type_}", (), {"type": type_, "Spec": spec, "short": short})


FAKE_TYPES = {cls.type: cls for cls in [
    _fake("conv", FakeConvSpec, "filters"), _fake("max_pool", FakePoolSpec, "size"),
    _fake("relu", FakeNoOptions, None), _fake("dense", FakeDenseSpec, "units"),
    _fake("dropout", FakeDropoutSpec, "rate")]}

try:   # the real registry once every layer module has landed; the fake until then
    from convtrain.nn.layers.registry import LAYER_TYPES as REAL_TYPES
except ImportError:
    REAL_TYPES = None
TYPES = REAL_TYPES if REAL_TYPES is not None else FAKE_TYPES


def loads(text, source="test.yaml", **kw):
    return C.loads(textwrap.dedent(text), source, layer_types=TYPES, **kw)


def error_of(text, source="bad.yaml") -> str:
    with pytest.raises(ConfigError) as info:
        C.loads(text, source, layer_types=TYPES)
    return str(info.value)


def spec_of(layer, key):
    return getattr(layer.spec, key)


# --- the module itself -----------------------------------------------------------------------

@pytest.mark.parametrize("registry", ["convtrain.nn.layers.registry", "convtrain.train.schedules"])
def test_import_does_not_load_the_registry(registry):
    code = f"import sys, convtrain.config; sys.exit(1 if {registry!r} in sys.modules else 0)"
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


def test_default_registry_is_used_when_available():
    if REAL_TYPES is None:
        pytest.skip("the layer registry is not importable yet")
    cfg = C.loads("model: [relu, {dense: 10}]")
    assert [layer.type for layer in cfg.model] == ["relu", "dense"]


# --- defaults and short forms ----------------------------------------------------------------

def test_defaults():
    cfg = loads("model: [relu]", source="<string>")
    assert cfg.name == "run" and cfg.seed == 0 and cfg.input is None
    assert cfg.data == C.DataConfig() and cfg.data.dataset == "fashion-mnist"
    assert cfg.data.augment == C.AugmentConfig(translate=0, crop_pad=0, hflip=False, noise=0.0)
    assert cfg.optim == C.OptimConfig(lr=0.05, momentum=0.9, nesterov=False, weight_decay=0.0,
                                      l1=0.0, decay_biases=False)
    assert cfg.schedule.type == "exponential" and cfg.schedule.final_factor == 0.001
    assert cfg.schedule.warmup_steps == 0
    assert not hasattr(cfg.schedule, "milestones")      # only the exponential schedule's options
    assert cfg.divergence == C.DivergenceConfig(factor=2.0, max_retries=12, threshold=10.0,
                                                snapshot_every=50, window=50)
    assert cfg.train == C.TrainConfig(epochs=10, batch_size=128, eval_batch_size=512)
    assert cfg.checkpoint == C.CheckpointConfig(every=1, every_steps=0, every_minutes=0.0, keep=3)
    assert cfg.model[0].common == LayerCommon()
    assert cfg.text == "model: [relu]" and cfg.source == "<string>"


def test_sections_given_as_null_take_defaults():
    cfg = loads("data:\noptim:\nmodel: [relu]\n")
    assert cfg.data == C.DataConfig() and cfg.optim == C.OptimConfig()


def test_full_config_values():
    cfg = loads("""
        name: fmnist-lcn
        seed: 7
        input: [1, 28, 28]
        data:
          dataset: npz
          path: /data/mnist.npz
          layout: nhwc
          validation: 0
          subset: 1000
          augment: {translate: 2, crop_pad: 4, hflip: yes, noise: 0.1}
        model: [relu]
        optim: {lr: 1e-3, momentum: 0.5, nesterov: true, weight_decay: 5.0e-4, l1: 1e-6}
        schedule: {type: multistep, milestones: [3, 6], gamma: 0.5}
        divergence: {factor: 4, max_retries: 0}
        train: {epochs: 3, batch_size: 64}
        checkpoint: {every: 0, every_steps: 100, every_minutes: 1.5, keep: 1}
    """)
    assert cfg.name == "fmnist-lcn" and cfg.seed == 7 and cfg.input == (1, 28, 28)
    assert cfg.data == C.DataConfig("npz", "/data/mnist.npz", "nhwc", 0, 1000,
                                    C.AugmentConfig(2, 4, True, 0.1))
    assert cfg.optim.lr == 1e-3 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.weight_decay == 5e-4 and cfg.optim.l1 == 1e-6 and cfg.optim.nesterov
    assert cfg.schedule.milestones == (3, 6) and cfg.schedule.gamma == 0.5
    assert cfg.divergence.factor == 4.0 and cfg.divergence.max_retries == 0
    assert cfg.train == C.TrainConfig(3, 64, 512)
    assert cfg.checkpoint == C.CheckpointConfig(0, 100, 1.5, 1)


def test_vector_input():
    assert loads("input: [784]\nmodel: [relu]").input == (784,)


def test_short_forms():
    cfg = loads("""
        model:
          - relu
          - relu:
          - max_pool: 2
          - max_pool: [2, 3]
          - dense: 10
          - dropout: 0.25
          - conv: 16
    """)
    types = [layer.type for layer in cfg.model]
    assert types == ["relu", "relu", "max_pool", "max_pool", "dense", "dropout", "conv"]
    assert cfg.model[0] == cfg.model[1]
    assert spec_of(cfg.model[2], "size") == (2, 2)
    assert spec_of(cfg.model[3], "size") == (2, 3)
    assert spec_of(cfg.model[4], "units") == 10
    assert spec_of(cfg.model[5], "rate") == 0.25
    assert spec_of(cfg.model[6], "filters") == 16


def test_long_form_and_common_keys():
    cfg = loads("""
        model:
          - conv:
              filters: 32
              size: 5
              stride: [1, 2]
              pad: same
              name: first
              init: {normal: 0.01}
              sparsity: 0.1
              lr_mult: 2
              decay_mult: 0
    """)
    layer = cfg.model[0]
    assert (layer.spec.filters, layer.spec.size, layer.spec.stride, layer.spec.pad) == \
        (32, (5, 5), (1, 2), "same")
    assert layer.common == LayerCommon(name="first", init=("normal", 0.01), sparsity=0.1,
                                       lr_mult=2.0, decay_mult=0.0)
    assert layer.path == "model[0]" and layer.line == 3 and layer.source == "test.yaml"


def test_layer_lines_and_where():
    cfg = loads("""
        model:
          - relu
          - repeat: 2
            layers:
              - dense: 4
    """)
    assert [(layer.path, layer.line, layer.repetition) for layer in cfg.model] == [
        ("model[0]", 3, ()), ("model[1].layers[0]", 6, (0,)), ("model[1].layers[0]", 6, (1,))]
    assert cfg.model[2].where == "test.yaml:6: model[1].layers[0] (repetition 2)"
    err = cfg.model[2].error("does not fit")
    assert isinstance(err, ConfigError) and str(err).endswith("(repetition 2): does not fit")


def test_yaml_extras_numbers_dates_anchors_merges():
    cfg = loads("""
        name: 2024-01-01
        optim: {lr: 1e-2, weight_decay: 5E-4}
        model:
          - conv: &c {filters: 8, size: 3, pad: same}
          - conv: *c
          - conv:
              <<: *c
              filters: 16
    """)
    assert cfg.name == "2024-01-01"
    assert cfg.optim.lr == 0.01 and cfg.optim.weight_decay == 5e-4
    assert cfg.model[0] == cfg.model[1]
    assert cfg.model[2].spec.filters == 16 and cfg.model[2].spec.pad == "same"


def test_utf8_bom_and_crlf():
    cfg = C.loads("\ufeffseed: 3\r\nmodel: [relu]\r\n", layer_types=TYPES)
    assert cfg.seed == 3


# --- repeat blocks ---------------------------------------------------------------------------

def test_repeat_with_per_repetition_values():
    cfg = loads("""
        model:
          - repeat: 2
            layers:
              - conv: {filters: [8, 16], size: 3, pad: same}
              - relu
              - max_pool: 2
          - dense: 10
    """)
    assert [layer.type for layer in cfg.model] == \
        ["conv", "relu", "max_pool", "conv", "relu", "max_pool", "dense"]
    assert [layer.spec.filters for layer in cfg.model if layer.type == "conv"] == [8, 16]
    assert cfg.model[0].repetition == (0,) and cfg.model[3].repetition == (1,)
    assert cfg.model[0].path == cfg.model[3].path == "model[0].layers[0]"


def test_a_list_the_key_accepts_is_not_per_repetition():
    # size: [3, 5] is a valid pair -> the same (3, 5) in both repetitions
    cfg = loads("""
        model:
          - repeat: 2
            layers:
              - conv: {filters: 4, size: [3, 5], pad: [1, 2]}
    """)
    assert [layer.spec.size for layer in cfg.model] == [(3, 5), (3, 5)]
    assert [layer.spec.pad for layer in cfg.model] == [(1, 1, 2, 2)] * 2


def test_nested_lists_vary_list_valued_keys():
    cfg = loads("""
        model:
          - repeat: 2
            layers:
              - conv: {filters: 4, size: [[3, 3], [5, 5]], pad: [same, valid]}
          - repeat: 3
            layers:
              - conv: {filters: 4, size: [3, 5, 7]}
    """)
    assert [layer.spec.size for layer in cfg.model] == [(3, 3), (5, 5), (3, 3), (5, 5), (7, 7)]
    assert [layer.spec.pad for layer in cfg.model[:2]] == ["same", "valid"]


def test_short_form_per_repetition():
    cfg = loads("""
        model:
          - repeat: 3
            layers:
              - dense: [30, 20, 10]
              - dropout: [0.1, 0.2, 0.3]
    """)
    assert [layer.spec.units for layer in cfg.model if layer.type == "dense"] == [30, 20, 10]
    assert [layer.spec.rate for layer in cfg.model if layer.type == "dropout"] == [0.1, 0.2, 0.3]


def test_common_keys_per_repetition():
    cfg = loads("""
        model:
          - repeat: 2
            layers:
              - dense: {units: 4, lr_mult: [1, 0.5], init: [he, {uniform: 0.1}]}
    """)
    assert [layer.common.lr_mult for layer in cfg.model] == [1.0, 0.5]
    assert [layer.common.init for layer in cfg.model] == [("he", 2.0), ("uniform", 0.1)]


def test_nested_repeats():
    cfg = loads("""
        model:
          - repeat: 2                  # outer
            layers:
              - repeat: 3              # inner
                layers:
                  - conv: {filters: [8, 16], size: [1, 3, 5]}
              - max_pool: 2
          - dense: 10
    """)
    convs = [layer for layer in cfg.model if layer.type == "conv"]
    # filters has 2 values: the outer block's; size has 3: the inner block's
    assert [c.spec.filters for c in convs] == [8, 8, 8, 16, 16, 16]
    assert [c.spec.size[0] for c in convs] == [1, 3, 5, 1, 3, 5]
    assert [c.repetition for c in convs] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert [layer.type for layer in cfg.model].count("max_pool") == 2
    assert len(cfg.model) == 2 * (3 + 1) + 1


def test_nested_repeats_equal_counts_outer_index_first():
    cfg = loads("""
        model:
          - repeat: 2
            layers:
              - repeat: 2
                layers:
                  - dense: [[1, 2], [3, 4]]
                  - dense: [5, 6]
    """)
    units = [layer.spec.units for layer in cfg.model]
    # equal counts: the outer block takes [5, 6] (same in both inner repetitions)
    assert units == [1, 5, 2, 5, 3, 6, 4, 6]


def test_names_in_repeat_blocks():
    cfg = loads("""
        model:
          - repeat: 2
            layers:
              - conv: {filters: 4, size: 3, name: conv}
              - dense: {units: 3, name: [fc_a, fc_b]}
              - repeat: 2
                layers:
                  - relu: {name: act}
    """)
    names = [layer.common.name for layer in cfg.model]
    assert names == ["conv_1", "fc_a", "act_1_1", "act_1_2",
                     "conv_2", "fc_b", "act_2_1", "act_2_2"]


def test_repeat_of_one_is_a_plain_block():
    cfg = loads("model:\n  - repeat: 1\n    layers: [relu, {dense: [7]}]\n")
    # a one-item list in a repeat-1 block is per-repetition when the key rejects it whole
    assert [layer.type for layer in cfg.model] == ["relu", "dense"]
    assert cfg.model[1].spec.units == 7


# --- dump, round trip, overrides -------------------------------------------------------------

RICH = """
name: rich
seed: 3
input: [1, 28, 28]
data: {dataset: mnist, path: data/mnist, augment: {translate: 2, hflip: true}}
model:
  - repeat: 2
    layers:
      - conv: {filters: [8, 16], size: 5, pad: same, init: he, name: c}
      - relu
      - max_pool: {size: 2, stride: 2}
  - dense: {units: 32, init: {normal: 0.05}, lr_mult: 0.5, sparsity: 0.01}
  - relu: {name: "yes"}
  - dropout: 0.5
  - dense: 10
optim: {lr: 1e-3, nesterov: true, l1: 1e-5}
schedule: {type: multistep, milestones: [2, 4]}
train: {epochs: 5}
checkpoint: {every_minutes: 2.5}
"""


def test_dump_round_trip(tmp_path):
    path = tmp_path / "rich.yaml"
    path.write_text(RICH)
    cfg = C.load(path, layer_types=TYPES)
    assert cfg.data.path == str(tmp_path / "data" / "mnist")
    text = C.dump(cfg)
    again = C.loads(text, layer_types=TYPES)
    assert again == cfg
    assert again.source == "<string>" and cfg.source == str(path)
    assert C.dump(again).splitlines()[1:] == text.splitlines()[1:]
    # a resolved config loads the same from another folder (the data path is absolute)
    other = tmp_path / "sub" / "config.yaml"
    other.parent.mkdir()
    other.write_text(text)
    assert C.load(other, layer_types=TYPES) == cfg


def test_dump_fills_in_every_default():
    cfg = loads("model: [relu, {dense: 10}]")
    text = C.dump(cfg)
    for key in ("eval_batch_size: 512", "snapshot_every: 50", "every_minutes: 0.0",
                "decay_biases: false", "crop_pad: 0", "layout: nchw",
                "schedule: {type: exponential, final_factor: 0.001, warmup_steps: 0}\n"):
        assert key in text
    assert "  - {relu: {}}" in text
    assert "  - {dense: {units: 10" in text
    assert "name:" not in text.split("model:")[1].split("optim:")[0]   # common keys at default


def test_dump_long_form_and_common_keys():
    cfg = loads(RICH)
    model = C.dump(cfg).split("model:\n")[1].split("optim:")[0].splitlines()
    assert len(model) == len(cfg.model) == 10
    assert model[0].startswith("  - {conv: {filters: 8, size: [5, 5]")
    assert "init: he" in model[0] and "name: c_1" in model[0]
    assert "init: {normal: 0.05}" in model[6] and "lr_mult: 0.5" in model[6]
    assert "name: 'yes'" in model[7]          # quoted, or it would load as true


def test_dump_quotes_strings_that_look_like_numbers():
    cfg = loads("name: '1e3'\nmodel: [relu]")
    assert cfg.name == "1e3"
    assert C.loads(C.dump(cfg), layer_types=TYPES).name == "1e3"


def test_to_dict():
    d = loads(RICH).to_dict()
    assert d["name"] == "rich" and d["input"] == [1, 28, 28]
    assert d["model"][0] == {"conv": {**d["model"][0]["conv"], "filters": 8}}
    assert d["optim"]["lr"] == 1e-3 and d["schedule"]["milestones"] == [2, 4]


def test_with_overrides(tmp_path, monkeypatch):
    cfg = loads(RICH)
    monkeypatch.chdir(tmp_path)
    new = C.with_overrides(cfg, epochs=1, seed=9, lr=0.5, batch_size=16, data_path="d")
    assert new.train.epochs == 1 and new.seed == 9 and new.optim.lr == 0.5
    assert new.train.batch_size == 16 and new.data.path == str(tmp_path / "d")
    assert new.model == cfg.model and new.optim.nesterov
    assert cfg.train.epochs == 5                        # the original is untouched
    assert C.with_overrides(cfg, epochs=None, lr=None) == cfg
    assert C.with_overrides(cfg, **{"optim.momentum": 0.5}).optim.momentum == 0.5
    assert C.loads(C.dump(new), layer_types=TYPES) == new


@pytest.mark.parametrize("changes, message", [
    ({"epochs": 0}, "override epochs: must be >= 1, got 0"),
    ({"lr": -1.0}, "override lr: must be > 0.0, got -1.0"),
    ({"seed": True}, "override seed: must be an integer, got true"),
    ({"batch_size": 2.5}, "override batch_size: must be an integer, got 2.5"),
    ({"optim.momentum": 1.0}, "override optim.momentum: must be < 1, got 1.0"),
])
def test_with_overrides_checks_values(changes, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        C.with_overrides(loads("model: [relu]"), **changes)


def test_with_overrides_unknown_key():
    with pytest.raises(TypeError, match="unknown override 'epoch'"):
        C.with_overrides(loads("model: [relu]"), epoch=3)


def test_round_trip_every_registered_type_at_its_defaults():
    if REAL_TYPES is None:
        pytest.skip("the layer registry is not importable yet")
    for name, cls in REAL_TYPES.items():
        required = [f.name for f in dataclasses.fields(cls.Spec) if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        if required:
            continue
        cfg = C.loads(f"model: [{name}]")
        assert C.loads(C.dump(cfg)) == cfg, name


# --- files -----------------------------------------------------------------------------------

def test_load_file_name_and_relative_path(tmp_path):
    (tmp_path / "configs").mkdir()
    path = tmp_path / "configs" / "lenet5.yaml"
    path.write_text("data: {path: ../data}\nmodel: [relu]\n")
    cfg = C.load(path, layer_types=TYPES)
    assert cfg.name == "lenet5" and cfg.source == str(path)
    assert cfg.data.path == str(tmp_path / "data")
    assert cfg.text == path.read_text()


def test_load_relative_source_keeps_the_name_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkdir("configs")
    with open("configs/x.yaml", "w") as f:
        f.write("model:\n  - dense: 0\n")
    with pytest.raises(ConfigError, match=r"^configs/x\.yaml:2: model\[0\]\.dense\.units: "):
        C.load("configs/x.yaml", layer_types=TYPES)


def _file_error(path) -> str:
    with pytest.raises(ConfigError) as info:
        C.load(path, layer_types=TYPES)
    return str(info.value)


def test_missing_file(tmp_path):
    (tmp_path / "tiny.yaml").write_text("model: [relu]\n")
    msg = _file_error(tmp_path / "tiyn.yaml")
    assert msg.startswith(f"{tmp_path / 'tiyn.yaml'}: no such file")
    assert "did you mean" in msg and "tiny.yaml" in msg
    assert _file_error(tmp_path / "nope" / "x.yaml").endswith("no such file")


def test_directory(tmp_path):
    assert _file_error(tmp_path) == f"{tmp_path}: is a folder, not a config file"


def test_binary_file(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_bytes(b"PK\x03\x04\x00\x00\x01\x02")
    assert _file_error(path) == f"{path}:1: is not a text file (it holds binary data)"


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"seed: 1\nname: caf\xe9\nmodel: [relu]\n")
    assert _file_error(path).startswith(f"{path}:2: is not valid UTF-8 (byte 0xe9)")


def test_utf16_file(tmp_path):
    path = tmp_path / "u16.yaml"
    path.write_bytes("model: [relu]\n".encode("utf-16"))
    assert "UTF-16" in _file_error(path)


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.yaml"
    path.write_text("model: [relu]\n")

    def denied(self):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(type(path), "read_bytes", denied)   # works even when run as root
    assert _file_error(path) == f"{path}: cannot read the file (permission denied)"


def test_huge_repeat_is_refused():
    msg = error_of("model:\n  - repeat: 40\n    layers:\n      - repeat: 40\n"
                   "        layers: [relu]\n")
    assert msg.startswith("bad.yaml:1: model: more than 1000 layers")


def test_alias_bomb_is_refused():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    msg = error_of("\n".join(lines) + "\nmodel: [relu]\n")
    assert "the document is too large" in msg


# --- the table of bad configs ----------------------------------------------------------------

M = "model: [relu]\n"

BAD = [
    # top level, name, seed, input
    ("seed: -1\n" + M, "bad.yaml:1: seed: must be >= 0, got -1"),
    ("seed: true\n" + M, "bad.yaml:1: seed: must be an integer, got true"),
    ("seed: 1.5\n" + M, "bad.yaml:1: seed: must be an integer, got 1.5"),
    ("seed: .nan\n" + M, "bad.yaml:1: seed: must be an integer, got nan"),
    ("seed: 1e400\n" + M, "bad.yaml:1: seed: must be an integer, got inf"),
    ("\nseed: 123456789012345678901234567890\n" + M,
     "bad.yaml:2: seed: number too large: 123456789012345678901234567890"),
    ("name: a/b\n" + M, "bad.yaml:1: name: must be a plain folder name"),
    ("name: [a]\n" + M, "bad.yaml:1: name: must be a string, got ['a']"),
    ("input: [1, 28]\n" + M, "bad.yaml:1: input: must be [C, H, W] or [D], got a list of 2"),
    ("input: [1, 0, 28]\n" + M, "bad.yaml:1: input: must hold integers >= 1, got 0"),
    ("input: [1, 28.5, 28]\n" + M, "bad.yaml:1: input: must hold integers >= 1, got 28.5"),
    ("input: 784\n" + M, "bad.yaml:1: input: must be a list [C, H, W] or [D], got 784"),
    (M + "modle: [relu]\n", "bad.yaml:2: modle: unknown section; known: checkpoint, data, "
                            "divergence, input, model, name, optim, schedule, seed, train; "
                            "did you mean 'model'?"),
    ("seed: 0\ntrain: {epochs: 1}\n", "bad.yaml:1: model: is required"),
    ("model: []\n", "bad.yaml:1: model: must be a non-empty list of layers"),
    ("model: relu\n", "bad.yaml:1: model: must be a non-empty list of layers (`- relu`, "
                      "`- max_pool: 2` or `- conv: {filters: 32, size: 5}`), got 'relu'"),
    ("seed: 1\nmodel:\n", "bad.yaml:2: model: must be a non-empty list of layers"),
    # sections
    ("data:\n  dataset: cifar\n" + M,
     "bad.yaml:2: data.dataset: must be one of fashion-mnist, mnist, npz, cifar10, folder, got 'cifar'"),
    ("data: {layout: NCHW}\n" + M, "bad.yaml:1: data.layout: must be one of nchw, nhwc"),
    ("data:\n  validation: -5\n" + M, "bad.yaml:2: data.validation: must be >= 0, got -5"),
    ("data:\n  subset: 0\n" + M, "bad.yaml:2: data.subset: must be >= 1, got 0"),
    ("data:\n  path: ''\n" + M, "bad.yaml:2: data.path: must not be empty"),
    ("data:\n  path: 3\n" + M, "bad.yaml:2: data.path: must be a path (a string) or null, got 3"),
    ("data:\n  augment:\n    noise: .inf\n" + M,
     "bad.yaml:3: data.augment.noise: must be a finite number, got inf"),
    ("data:\n  augment:\n    hflip: 1\n" + M,
     "bad.yaml:3: data.augment.hflip: must be true or false, got 1"),
    ("data:\n  augment:\n    translat: 2\n" + M,
     "bad.yaml:3: data.augment.translat: unknown key; known: crop_pad, cutout, hflip, noise, translate; "
     "did you mean 'translate'?"),
    ("data: 5\n" + M, "bad.yaml:1: data: must be a mapping of options, got 5"),
    ("optim: {lr: 0}\n" + M, "bad.yaml:1: optim.lr: must be > 0.0, got 0"),
    ("optim: {lr: fast}\n" + M, "bad.yaml:1: optim.lr: must be a number, got 'fast'"),
    ("optim:\n  lr: 0.1\n  momentum: 1.0\n" + M, "bad.yaml:3: optim.momentum: must be < 1, got 1.0"),
    ("optim:\n  momentum: 0\n  nesterov: true\n" + M,
     "bad.yaml:3: optim.nesterov: needs momentum > 0"),
    ("optim:\n  weight_decay: -1e-4\n" + M,
     "bad.yaml:2: optim.weight_decay: must be >= 0.0, got -0.0001"),
    ("optim:\n  lr: 0.1\n  lr: 0.2\n" + M, "bad.yaml:3: optim.lr: duplicate key (first on line 2)"),
    ("optim:\n  learning_rate: 0.1\n" + M, "bad.yaml:2: optim.learning_rate: unknown key; known: "),
    ("schedule: {type: cosin}\n" + M, "bad.yaml:1: schedule.type: must be one of constant, step, "
                                      "multistep, exponential, inverse, cosine, poly, got 'cosin'; "
                                      "did you mean 'cosine'?"),
    ("schedule:\n  type: multistep\n  milestones: [5, 3]\n" + M,
     "bad.yaml:3: schedule.milestones: must be strictly increasing, got [5, 3]"),
    ("divergence:\n  factor: 1\n" + M, "bad.yaml:2: divergence.factor: must be > 1.0, got 1.0"),
    ("divergence:\n  max_retries: -1\n" + M, "bad.yaml:2: divergence.max_retries: must be >= 0"),
    ("train:\n  epochs: 0\n" + M, "bad.yaml:2: train.epochs: must be >= 1, got 0"),
    ("train:\n  batch_size: yes\n" + M, "bad.yaml:2: train.batch_size: must be an integer, got true"),
    ("checkpoint:\n  keep: 0\n" + M, "bad.yaml:2: checkpoint.keep: must be >= 1, got 0"),
    ("checkpoint:\n  every: -1\n" + M, "bad.yaml:2: checkpoint.every: must be >= 0, got -1"),
    # YAML itself
    ("", "bad.yaml:1: the config is empty"),
    ("# nothing here\n", "bad.yaml:1: the config is empty"),
    ("- relu\n", "bad.yaml:1: the config must be a mapping of sections"),
    ("model:\n\t- relu\n", "bad.yaml:2: invalid YAML: a tab character (column 1); indent with spaces"),
    ("optim: {lr: 0.1\n" + M, "bad.yaml:2: invalid YAML: "),
    ("seed: 1\n  train: 2\n" + M, "bad.yaml:2: invalid YAML: mapping values are not allowed here"),
    ("seed: 1\n---\nseed: 2\n", "bad.yaml:2: invalid YAML: the file holds more than one document"),
    (M + "1: 2\n", "bad.yaml:2: mapping keys must be names, got 1"),
    ("x: &a [*a]\n" + M, "bad.yaml:1: x[0]: an alias refers to a collection that contains it"),
    ("seed: !!binary aGk=\n" + M, "bad.yaml:1: seed: binary values are not supported"),
    ("seed: !big 3\n" + M, "bad.yaml:1: seed: cannot read this value: could not determine a "
                           "constructor for the tag '!big'"),
    ("seed: 1\nname: \x07\n" + M, "bad.yaml:2: invalid character '\\x07'"),
    # layers
    ("model: [reul]\n", "bad.yaml:1: model[0]: unknown layer type 'reul'; known: "),
    ("model:\n  - relu\n  - cnov: 3\n", "bad.yaml:3: model[1].cnov: unknown layer type 'cnov'"),
    ("model: [5]\n", "bad.yaml:1: model[0]: a layer is a type name or a one-key mapping"),
    ("model: [{}]\n", "bad.yaml:1: model[0]: empty layer"),
    ("model:\n  - {dense: 10, relu: 3}\n",
     "bad.yaml:2: model[0]: a layer is a one-key mapping `type: options`, got keys dense, relu"),
    ("model:\n  - conv:\n    filters: 3\n",
     "bad.yaml:3: model[0].filters: looks like an option of 'conv': indent the options under"),
    ("model:\n  - conv: {filters: 0, size: 3}\n", "bad.yaml:2: model[0].conv.filters: must be >= 1, got 0"),
    ("model:\n  - conv:\n      filters: 8\n      size: 3\n      strid: 2\n",
     "bad.yaml:5: model[0].conv.strid: unknown key for 'conv'; known: "),
    ("model:\n  - relu\n  - conv:\n      size: 3\n", "bad.yaml:3: model[1].conv.filters: is required"),
    ("model:\n  - conv: {filters: 4, size: 3}\n  - relu\n  - relu\n  - max_pool:\n"
     "      size: 2\n      stride: 0\n", "bad.yaml:7: model[3].max_pool.stride: "),
    ("model:\n  - conv: {filters: 4, size: [3, 0]}\n", "bad.yaml:2: model[0].conv.size: "),
    ("model:\n  - conv: {filters: 4, size: 3, pad: sam}\n", "bad.yaml:2: model[0].conv.pad: "),
    ("model: [max_pool]\n", "bad.yaml:1: model[0].max_pool.size: is required"),
    ("model: [{relu: 3}]\n", "bad.yaml:1: model[0].relu: 'relu' takes no value; write `- relu`"),
    ("model:\n - relu\n - dense: 0\n", "bad.yaml:3: model[1].dense.units: must be >= 1, got 0"),
    ("model: [{dense: true}]\n", "bad.yaml:1: model[0].dense.units: must be an integer, got true"),
    ("model: [{dense: 1e400}]\n", "bad.yaml:1: model[0].dense.units: must be an integer, got inf"),
    ("model: [{dropout: .nan}]\n", "bad.yaml:1: model[0].dropout.rate: must be a finite number, got nan"),
    ("model: [{dropout: -0.5}]\n", "bad.yaml:1: model[0].dropout.rate: must be >= 0.0, got -0.5"),
    ("model:\n  - dense:\n      units: 10\n      lr_mult: -1\n",
     "bad.yaml:4: model[0].dense.lr_mult: must be >= 0.0, got -1.0"),
    ("model:\n  - dense: {units: 10, init: xavier}\n",
     "bad.yaml:2: model[0].dense.init: must be he, glorot, lecun"),
    ("model:\n  - dense: {units: 10, repeat: 2}\n",
     "bad.yaml:2: model[0].dense.repeat: `repeat` makes a block"),
    ("model:\n  - dense: {units: 10, name: fc}\n  - relu\n  - dense: {units: 10, name: fc}\n",
     "bad.yaml:4: model[2].dense.name: name 'fc' is already used by model[0] (line 2); "
     "layer names must be unique"),
    ("model:\n  - dense:\n      units: 3\n      units: 4\n",
     "bad.yaml:4: model[0].dense.units: duplicate key (first on line 3)"),
    # repeat blocks
    ("model:\n  - repeat: 0\n    layers: [relu]\n", "bad.yaml:2: model[0].repeat: must be >= 1, got 0"),
    ("model:\n  - repeat: two\n    layers: [relu]\n",
     "bad.yaml:2: model[0].repeat: must be an integer >= 1, got 'two'"),
    ("model:\n  - repeat: true\n    layers: [relu]\n",
     "bad.yaml:2: model[0].repeat: must be an integer >= 1, got true"),
    ("model:\n  - repeat: 2.5\n    layers: [relu]\n",
     "bad.yaml:2: model[0].repeat: must be an integer >= 1, got 2.5"),
    ("model:\n  - repeat: 5000\n    layers: [relu]\n",
     "bad.yaml:2: model[0].repeat: must be <= 1000, got 5000"),
    ("model:\n  - repeat: 2\n", "bad.yaml:2: model[0].layers: is required"),
    ("model:\n  - repeat: 2\n    layers: []\n", "bad.yaml:3: model[0].layers: must be a non-empty list"),
    ("model:\n  - repeat: 2\n    layer: [relu]\n",
     "bad.yaml:3: model[0].layer: unknown key in a repeat block; known: layers, repeat; "
     "did you mean 'layers'?"),
    ("model:\n  - repeat: 2\n    layers:\n      - relu\n      - conv: {filters: [8, 16, 32], size: 3}\n",
     "bad.yaml:5: model[0].layers[1].conv.filters: must be an integer, got [8, 16, 32] "
     "(in a `repeat: 2` block a per-repetition list needs exactly 2 values, this one has 3)"),
    ("model:\n  - repeat: 2\n    layers:\n      - conv:\n          filters: [8, 0]\n",
     "bad.yaml:5: model[0].layers[0].conv.filters[1]: must be >= 1, got 0"),
    ("model:\n  - repeat: 2\n    layers:\n      - conv:\n          filters: 8\n          size:\n"
     "            - 3\n            - 0\n            - 5\n",
     "bad.yaml:6: model[0].layers[0].conv.size: "),
    ("model:\n  - repeat: 3\n    layers:\n      - dense:\n          - 10\n          - 0\n          - 5\n",
     "bad.yaml:6: model[0].layers[0].dense.units[1]: must be >= 1, got 0"),
    ("model:\n  - relu\n  - repeat: 2\n    layers:\n      - repeat: 3\n        layers:\n"
     "          - conv: {filters: 4, size: 3}\n          - dense: {units: 4, stride: 2}\n",
     "bad.yaml:8: model[1].layers[0].layers[1].dense.stride: unknown key for 'dense'"),
    ("model:\n  - repeat: 2\n    layers:\n      - dense: {units: 3, name: [a, a]}\n",
     "bad.yaml:4: model[0].layers[0].dense.name[1]: name 'a' is already used by model[0].layers[0]"),
    ("model:\n  - repeat: 2\n    layers:\n      - repeat: 2\n        layers: [{dense: {units: 3, "
     "name: d}}]\n  - dense: {units: 3, name: d_1_2}\n",
     "bad.yaml:6: model[1].dense.name: name 'd_1_2' is already used by model[0].layers[0].layers[0]"),
]


def test_bad_table_is_big_enough():
    assert len(BAD) >= 40


@pytest.mark.parametrize("text, expected", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_config(text, expected):
    msg = error_of(text)
    assert expected in msg, msg
    assert msg.startswith(expected.split(": ")[0] + ":")       # the file:line prefix leads
    assert "Traceback" not in msg and "\n" not in msg


@pytest.mark.parametrize("text, expected", [
    ("model: [reul]\n", "did you mean 'relu'?"),
    ("model:\n  - relu\n  - cnov: 3\n", "did you mean 'conv'?"),
    ("model:\n  - conv:\n      filters: 8\n      size: 3\n      strid: 2\n", "did you mean 'stride'?"),
    ("model:\n  - dense: {unit: 3}\n", "did you mean 'units'?"),
    ("model:\n  - dense: {units: 3, lr_mul: 2}\n", "did you mean 'lr_mult'?"),
    ("optim:\n  momentun: 0.5\n" + M, "did you mean 'momentum'?"),
])
def test_did_you_mean(text, expected):
    assert expected in error_of(text)


def test_unknown_layer_lists_known_types():
    msg = error_of("model: [reul]\n")
    for name in ("conv", "dense", "dropout", "max_pool", "relu"):
        assert name in msg


def test_unknown_layer_key_lists_spec_and_common_keys():
    msg = error_of("model:\n  - dense: {unit: 3}\n")
    for key in ("units", "name", "init", "sparsity", "lr_mult", "decay_mult"):
        assert key in msg


def test_message_format_is_exact():
    assert error_of("model:\n  - dense: 0\n", source="configs/x.yaml") == \
        "configs/x.yaml:2: model[0].dense.units: must be >= 1, got 0"


def test_parse_model_on_plain_data():
    layers = C.parse_model(["relu", {"dense": 10}], layer_types=TYPES)
    assert [layer.type for layer in layers] == ["relu", "dense"]
    with pytest.raises(ConfigError, match=r"^<model>: model\[1\]\.dense\.units: must be >= 1"):
        C.parse_model(["relu", {"dense": 0}], layer_types=TYPES)


def test_config_is_frozen():
    cfg = loads("model: [relu]")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.optim.lr = 1.0
    hash(cfg)


CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs")
                 .glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load_and_round_trip(path):
    try:
        cfg = C.load(path, layer_types=TYPES)
    except ConfigError as e:
        if TYPES is FAKE_TYPES and "unknown layer type" in str(e):
            pytest.skip(f"needs the real registry: {e}")
        raise
    assert cfg.name and cfg.model
    assert C.loads(C.dump(cfg), layer_types=TYPES) == cfg
