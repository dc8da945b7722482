"""config/overrides.py: `--set key.path=value` applied before the checks, located messages."""
from __future__ import annotations

import textwrap

import pytest

from convtrain import config as C
from convtrain.errors import ConfigError

TEXT = textwrap.dedent("""\
    name: base
    input: [1, 8, 8]
    data: {dataset: npz, path: d.npz}
    model:
      - conv: {filters: 4, size: 3}
      - relu
      - repeat: 2
        layers:
          - conv: {filters: 8, size: 3, pad: same}
          - relu
      - dense: 4
    optim: {lr: 0.05}
    train: {epochs: 2}
""")
SOURCE = "/tmp/x.yaml"


def load(*sets):
    return C.loads(TEXT, SOURCE, sets=sets)


def error(*sets) -> str:
    with pytest.raises(ConfigError) as e:
        load(*sets)
    return str(e.value)


def test_scalars_sequences_and_mappings_are_yaml_values():
    cfg = load("train.epochs=3", "name=x", "optim.lr=1e-3", "data.augment={hflip: true}",
               "input=[1, 8, 8]")
    assert cfg.train.epochs == 3 and cfg.name == "x" and cfg.optim.lr == 0.001
    assert cfg.data.augment.hflip is True
    assert load().train.epochs == 2   # the text itself is unchanged


def test_list_items_by_index_inside_and_outside_a_repeat_block():
    cfg = load("model[0].conv.filters=16", "model[2].layers[0].conv.size=5")
    assert cfg.model[0].spec.filters == 16
    repeated = [lc for lc in cfg.model if lc.type == "conv"][1:]
    assert len(repeated) == 2 and all(lc.spec.size == (5, 5) for lc in repeated)


def test_a_missing_mapping_on_the_way_is_created():
    assert load("data.augment.hflip=true").data.augment.hflip is True
    assert load("checkpoint.keep=7").checkpoint.keep == 7   # no checkpoint section in TEXT


def test_later_sets_win():
    assert load("optim.lr=0.1", "optim.lr=0.2").optim.lr == 0.2


def test_a_bad_value_names_the_set_instead_of_a_line():
    assert error("optim.lr=abc") == f"{SOURCE}: --set optim.lr: must be a number, got 'abc'"
    assert error("model[0].conv.filters=0") == \
        f"{SOURCE}: --set model[0].conv.filters: must be >= 1, got 0"


def test_an_unknown_key_is_the_usual_error_with_its_suggestion():
    message = error("optim.lrr=0.1")
    assert message.startswith(f"{SOURCE}: --set optim.lrr: unknown key")
    assert "did you mean 'lr'?" in message
    message = error("data.augment={hflip: true, flip: 1}")
    assert "--set data.augment.flip: unknown key" in message


def test_errors_elsewhere_keep_their_file_line():
    with pytest.raises(ConfigError) as e:
        C.loads(TEXT.replace("epochs: 2", "epochs: 0"), SOURCE, sets=["optim.lr=0.1"])
    assert str(e.value).startswith(f"{SOURCE}:13: train.epochs:")


def test_an_index_out_of_range_names_the_length():
    assert error("model[9].conv.filters=1") == \
        f"{SOURCE}: --set model[9].conv.filters: index 9 is out of range: model has 4 items"
    assert "model[2].layers has 2 items" in error("model[2].layers[2].relu=null")


def test_setting_inside_a_short_form_says_to_set_it_whole():
    message = error("model[3].dense.units=5")
    assert "model[3].dense is the value 4, not a mapping" in message
    assert "--set 'model[3].dense={...}'" in message


@pytest.mark.parametrize("text, expected", [
    ("optim.lr", "expected key.path=value"),
    ("optim..lr=1", "is not a key path"),
    ("model[x].conv=1", "is not a key path"),
    ("[0]=1", "is not a key path"),
    ("optim.lr=[1", "cannot read the value '[1'"),
])
def test_malformed_sets(text, expected):
    message = error(text)
    assert message.startswith(f"{SOURCE}: --set ") and expected in message


def test_one_string_instead_of_a_list_is_refused():
    with pytest.raises(TypeError):
        C.loads(TEXT, SOURCE, sets="optim.lr=0.1")


def test_from_mapping_round_trips_values():
    sets = C.overrides_from_mapping({"optim.lr": 0.01, "name": "1e3", "input": (1, 8, 8),
                                     "data.augment": {"hflip": True}})
    cfg = load(*sets)
    assert cfg.optim.lr == 0.01 and cfg.name == "1e3" and cfg.input == (1, 8, 8)
    assert cfg.data.augment.hflip is True


def test_from_mapping_takes_numpy_scalars():
    np = pytest.importorskip("numpy")
    sets = C.overrides_from_mapping({"optim.lr": np.float64(0.5), "train.epochs": np.int64(4)})
    cfg = load(*sets)
    assert cfg.optim.lr == 0.5 and cfg.train.epochs == 4


def test_load_takes_sets_too(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(TEXT)
    assert C.load(path, sets=["train.epochs=5"]).train.epochs == 5


def test_numpy_values_become_plain_yaml():
    import numpy as np
    assert C.overrides_from_mapping({"input": np.array([1, 8, 8]), "optim.lr": np.float32(0.5),
                                     "seed": np.int64(3)}) == ["input=[1, 8, 8]",
                                                               "optim.lr=0.5", "seed=3"]
