"""train/session.py: one run from a config to its folder, without printing."""
import json

import pytest

from convtrain import config as configmod
from convtrain.errors import ConvtrainError
from convtrain.train.session import COMPILING, FitResult, run_fit

from synthetic import write_config


class FakeHelper:
    """Stands in for tools/precompile.py: a cold cache, no process."""

    def __init__(self, warm):
        self.warm = warm
        self.started = self.stopped = 0

    def is_warm(self, cfg, input_shape):
        return self.warm

    def start(self, cfg, input_shape):
        self.started += 1
        return "proc"

    def stop(self, proc):
        self.stopped += proc == "proc"


def test_run_fit_trains_into_the_folder_and_reports_what_it_left(tmp_path, capsys):
    cfg = configmod.load(write_config(tmp_path, epochs=2))
    out = tmp_path / "run"
    notes = []
    helper = FakeHelper(warm=False)
    result = run_fit(cfg, out_dir=str(out), compile_helper=helper, on_note=notes.append)
    assert isinstance(result, FitResult)
    assert result.run_dir == str(out) and result.epochs == 2 and result.steps == 16
    assert result.best_checkpoint == str(out / "best.npz") and (out / "best.npz").exists()
    assert result.last_checkpoint == str(out / "last.npz")
    assert result.metric == "validation error" and 0 <= result.best_val_error < 0.2
    assert result.best_epoch in (1, 2) and result.ok and result.resumed_from is None
    assert [(n.kind, n.message) for n in notes] == [("compiling", COMPILING)]
    assert helper.started == 1 and helper.stopped == 1
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert capsys.readouterr().out == ""           # the library never prints


def test_a_warm_cache_says_nothing_and_no_helper_is_fine(tmp_path):
    cfg = configmod.load(write_config(tmp_path, epochs=1))
    notes = []
    run_fit(cfg, out_dir=str(tmp_path / "a"), compile_helper=FakeHelper(warm=True),
            on_note=notes.append)
    result = run_fit(cfg, out_dir=str(tmp_path / "b"), on_note=notes.append)
    assert notes == [] and result.epochs == 1


def test_resume_notes_changes_and_where_it_continues(tmp_path):
    path = write_config(tmp_path, epochs=1)
    out = str(tmp_path / "run")
    run_fit(configmod.load(path), out_dir=out)
    with pytest.raises(ConvtrainError, match="already holds a run"):
        run_fit(configmod.load(path), out_dir=out)
    longer = configmod.load(path, sets=["train.epochs=2"])
    result = run_fit(longer, out_dir=out, resume="auto")
    assert result.resumed_from.endswith("last.npz") and result.epochs == 2
    kinds = [n.kind for n in result.notes]
    assert kinds == ["changed", "resuming"]
    assert "epochs changed: 1 -> 2" in result.notes[0].message


def test_auto_lr_trains_at_the_rate_it_returns(tmp_path):
    cfg = configmod.load(write_config(tmp_path, epochs=1))
    seen = []

    def choose(cfg, splits, checkpoint):
        seen.append((len(splits.train.y), checkpoint))
        return 0.01

    result = run_fit(cfg, out_dir=str(tmp_path / "run"), auto_lr=choose)
    assert seen == [(256, None)] and result.config.optim.lr == 0.01
    assert "lr: 0.01" in (tmp_path / "run" / "config.yaml").read_text()


def test_the_helper_reads_its_config_from_stdin_and_leaves_no_file(tmp_path, monkeypatch):
    from convtrain.tools import precompile
    monkeypatch.setattr(precompile, "_cache_dir", lambda: str(tmp_path))   # this process's
    cfg = configmod.load(write_config(tmp_path))
    assert not precompile.is_warm(cfg, (1, 8, 8))
    proc = precompile.start(cfg, (1, 8, 8))
    assert proc.args[3:] == [precompile.STDIN, "1", "8", "8"]   # no temporary config file
    assert proc.wait(timeout=300) == 0   # 1 when it could not read or build the config


def test_a_last_checkpoint_at_an_epoch_end_follows_that_epochs_validation(tmp_path, monkeypatch):
    """A run killed right after last.npz and resumed from it must not skip an epoch's validation
    and best.npz: at an epoch boundary, the epoch closes before any checkpoint of the step
    (the Dask sweep's killed-worker test found the opposite order)."""
    from convtrain.train.trainer import Trainer

    # 256 training images, batch 32: 8 steps an epoch; a step checkpoint every 4 steps
    cfg = configmod.load(write_config(tmp_path, epochs=3).as_posix(),
                         sets=["checkpoint.every_steps=4", "checkpoint.every=2"])
    saves, save = [], Trainer.save

    def spy(trainer, filename):
        metrics = tmp_path / "run" / "metrics.jsonl"
        rows = metrics.read_text().count('"epoch"') if metrics.exists() else 0
        saves.append((filename, trainer.step, rows))
        return save(trainer, filename)

    monkeypatch.setattr(Trainer, "save", spy)
    run_fit(cfg, out_dir=str(tmp_path / "run"))
    boundary = [(s, rows) for name, s, rows in saves if name == "last.npz" and s % 8 == 0]
    assert [s for s, _ in boundary] == [8, 16, 24]
    assert all(rows == s // 8 for s, rows in boundary)     # the epoch was logged first
    names = [name for name, s, _ in saves if s == 8]
    assert names.index("best.npz") < names.index("last.npz")
