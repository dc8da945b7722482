"""fit's --set and --print-config, --set on the other config commands, the cold-cache message
and the first epoch's speed."""
import json
import time
import types

import pytest
from click.testing import CliRunner

from convtrain import config as configmod
from convtrain.cli import main
from convtrain.tools import precompile
from convtrain.train import session
from convtrain.train.trainer import Trainer

from synthetic import write_config


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_fit_set_changes_the_run_and_its_resolved_config(tmp_path):
    cfg = write_config(tmp_path, epochs=3)
    out = tmp_path / "run"
    res = run("fit", cfg, "--out", out, "--set", "train.epochs=1", "--set", "optim.lr=0.02",
              "--set", "data.augment.hflip=true", "--set", "model[0].conv.filters=6")
    assert res.exit_code == 0, res.output
    saved = configmod.load(out / "config.yaml", stored=True)
    assert saved.train.epochs == 1 and saved.optim.lr == 0.02 and saved.data.augment.hflip
    assert saved.model[0].spec.filters == 6
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1]


@pytest.mark.parametrize("setting, message", [
    ("optim.lr=abc", "--set optim.lr: must be a number, got 'abc'"),
    ("optim.lrr=0.1", "--set optim.lrr: unknown key; known: "),
    ("model[7].conv.filters=3", "--set model[7].conv.filters: index 7 is out of range: "
                                "model has 4 items"),
    ("optim.lr", "--set optim.lr: expected key.path=value"),
])
def test_fit_set_errors_are_one_line_naming_the_file_and_key(tmp_path, setting, message):
    cfg = write_config(tmp_path)
    res = run("fit", cfg, "--out", tmp_path / "run", "--set", setting)
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert lines == [f"Error: {cfg}: {message}" + lines[0].split(message, 1)[1]]
    assert not (tmp_path / "run").exists()


def test_print_config_shows_the_resolved_config_and_trains_nothing(tmp_path):
    cfg = write_config(tmp_path)
    res = run("fit", cfg, "--print-config", "--set", "optim.momentum=0.5", "--epochs", "7",
              "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output
    assert res.output.startswith("# resolved config (every default filled in)")
    printed = configmod.loads(res.output, "<printed>", stored=True)
    assert printed.optim.momentum == 0.5 and printed.train.epochs == 7
    assert printed.model == configmod.load(cfg).model
    assert not (tmp_path / "run").exists()


def test_gradcheck_doctor_and_lr_search_take_set(tmp_path):
    cfg = write_config(tmp_path)
    res = run("gradcheck", cfg, "--set", "model[0].conv.filters=2")
    assert res.exit_code == 0 and "conv1.weight" in res.output and "2x1x3x3" in res.output
    res = run("doctor", cfg, "--set", "optim.lr=abc")
    assert res.exit_code == 1 and "--set optim.lr: must be a number" in res.output
    res = run("lr-search", cfg, "--set", "optim.lrr=1")
    assert res.exit_code == 1 and "--set optim.lrr: unknown key" in res.output


def test_lr_search_write_carries_section_values_and_refuses_the_rest(tmp_path):
    cfg = write_config(tmp_path)
    out = tmp_path / "tuned.yaml"
    res = run("lr-search", cfg, "--subset", "64", "--start", "4", "--steps", "4",
              "--set", "optim.momentum=0.5", "--write", out)
    assert res.exit_code == 0, res.output
    assert configmod.load(out).optim.momentum == 0.5
    res = run("lr-search", cfg, "--set", "model[0].conv.filters=2", "--write", out)
    assert res.exit_code == 2 and "--write can carry only single values" in res.output


def test_a_cold_cache_says_compiling_once_before_the_first_epoch(tmp_path, monkeypatch):
    monkeypatch.setattr(precompile, "is_warm", lambda cfg, shape: False)
    monkeypatch.setattr(precompile, "start", lambda cfg, shape: None)
    cfg = write_config(tmp_path, epochs=2)
    res = run("fit", cfg, "--out", tmp_path / "cold")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines.count(session.COMPILING) == 1
    assert lines.index(session.COMPILING) < next(i for i, l in enumerate(lines)
                                                  if l.startswith("epoch"))
    monkeypatch.setattr(precompile, "is_warm", lambda cfg, shape: True)
    res = run("fit", cfg, "--out", tmp_path / "warm")
    assert res.exit_code == 0 and session.COMPILING not in res.output


def test_the_first_epochs_speed_leaves_out_the_first_step(tmp_path, monkeypatch):
    """A clock that a step advances by 10 ms, the process's first step by 10 s (a compile)."""
    from convtrain.train import trainer as trainer_mod
    clock = types.SimpleNamespace(now=0.0, steps=0)
    fake_time = types.SimpleNamespace(perf_counter=lambda: clock.now, monotonic=time.monotonic)
    monkeypatch.setattr(trainer_mod, "time", fake_time)
    step = Trainer.train_step

    def timed_step(self, i):
        clock.steps += 1
        clock.now += 10.0 if clock.steps == 1 else 0.01
        return step(self, i)

    monkeypatch.setattr(Trainer, "train_step", timed_step)
    cfg = write_config(tmp_path, epochs=2)
    res = run("fit", cfg, "--out", tmp_path / "run", "--quiet")
    assert res.exit_code == 0, res.output
    rows = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    first, second = rows
    assert first["seconds"] == pytest.approx(10.07)      # the wall time keeps the slow step
    assert first["images_per_s"] == pytest.approx(224 / 0.07, rel=1e-3)   # the speed does not
    assert second["images_per_s"] == pytest.approx(256 / 0.08, rel=1e-3)
    assert set(first) == set(second)
