"""Editing a config's text (`lr-search --write`): only the changed values' lines differ."""
import dataclasses
import difflib
import os

import pytest

from convtrain import config as configmod
from convtrain.config.edit import retarget, set_values
from convtrain.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODEL = "model: [conv: {filters: 2, size: 3}, relu, dense: 10]\n"


def changed_lines(old, new):
    """(removed, added) lines between two texts."""
    diff = list(difflib.ndiff(old.splitlines(), new.splitlines()))
    return ([d[2:] for d in diff if d.startswith("- ")], [d[2:] for d in diff if d.startswith("+ ")])


def edit(text, lr=0.0625, name="fast"):
    new = set_values(text, {"optim.lr": lr, "name": name})
    cfg = configmod.loads(new)
    assert cfg.optim.lr == lr and cfg.name == name
    return new


@pytest.mark.parametrize("name", ["lenet5", "tiny", "default", "cifar-like", "jarrett"])
def test_the_shipped_configs_change_in_two_lines_only(name):
    path = os.path.join(ROOT, "configs", f"{name}.yaml")
    text = open(path, encoding="utf-8").read()
    new = edit(text)
    removed, added = changed_lines(text, new)
    assert len(removed) == len(added) == 2, (removed, added)
    old_cfg = configmod.loads(text, path)
    expected = configmod.with_overrides(dataclasses.replace(old_cfg, name="fast"), lr=0.0625)
    assert configmod.loads(new, path) == expected


def test_flow_style_keeps_the_other_options_and_the_comment():
    text = "name: a   # mine\n" + MODEL + "optim: {lr: 0.05, momentum: 0.9}   # tuned by hand\n"
    assert edit(text) == ("name: fast   # mine\n" + MODEL
                          + "optim: {lr: 0.0625, momentum: 0.9}   # tuned by hand\n")


def test_block_style_replaces_the_value_in_place():
    text = MODEL + "optim:\n  momentum: 0.9\n  lr: 5.0e-2   # x\n  nesterov: true\n"
    new = edit(text)
    assert new.endswith("optim:\n  momentum: 0.9\n  lr: 0.0625   # x\n  nesterov: true\n")
    assert new.startswith("name: fast\n" + MODEL)   # a missing name: the first key


def test_a_missing_lr_becomes_the_first_entry_of_optim():
    assert "optim: {lr: 0.0625, momentum: 0.9}" in edit(MODEL + "optim: {momentum: 0.9}\n")
    assert "optim: {lr: 0.0625}" in edit(MODEL + "optim: {}\n")
    block = edit(MODEL + "optim:\n  # friction\n  momentum: 0.9\n")
    assert block.endswith("optim:\n  lr: 0.0625\n  # friction\n  momentum: 0.9\n")
    assert edit(MODEL + "optim:\n").endswith("optim: {lr: 0.0625}\n")


def test_a_config_without_optim_or_name_gets_them_below_its_header():
    text = "# my net\n" + MODEL
    assert edit(text) == "# my net\nname: fast\noptim: {lr: 0.0625}\n" + MODEL


def test_windows_line_ends_are_kept():
    text = (MODEL + "optim:\n  momentum: 0.9\n").replace("\n", "\r\n")
    new = edit(text)
    assert "\n" not in new.replace("\r\n", "")


def test_a_value_behind_an_alias_is_refused():
    text = "a: &o {lr: 0.1}\noptim: *o\n"
    with pytest.raises(ConfigError, match="alias"):
        set_values(text, {"optim.lr": 0.5})


def test_an_edit_that_would_change_another_key_is_refused(tmp_path):
    src = tmp_path / "a.yaml"
    src.write_text(MODEL + "optim: {lr: &r 0.5, momentum: *r}\n")
    cfg = configmod.load(str(src))
    with pytest.raises(ConfigError, match="changed more than"):
        retarget(cfg, str(tmp_path / "b.yaml"), {"optim.lr": 0.25})


def test_a_relative_data_path_follows_the_copy_to_another_folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.npz").write_bytes(b"")
    (tmp_path / "cfg").mkdir()
    src = tmp_path / "cfg" / "a.yaml"
    src.write_text("data: {dataset: npz, path: ../data/x.npz}\n" + MODEL)
    cfg = configmod.load(str(src))
    out = tmp_path / "elsewhere" / "deeper" / "b.yaml"
    out.parent.mkdir(parents=True)
    text = retarget(cfg, str(out), {"optim.lr": 0.25, "name": "b"})
    assert "path: ../../data/x.npz" in text
    out.write_text(text)
    assert configmod.load(str(out)).data.path == cfg.data.path
    same = retarget(cfg, str(tmp_path / "cfg" / "c.yaml"), {"optim.lr": 0.25})
    assert "path: ../data/x.npz" in same
