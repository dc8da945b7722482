"""Run folders (convtrain.train.runs): resume, fresh starts, and never overwriting earlier work."""
import os

import pytest

from convtrain import config as configmod
from convtrain.errors import ConvtrainError
from convtrain.train import runs

CONFIG = "name: exp\ninput: [4]\nmodel: [dense: 2]\n"


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(CONFIG)
    return path


def finished_run(folder):
    folder.mkdir(exist_ok=True)
    for name in ("metrics.jsonl", "last.npz", "best.npz", "epoch-001.npz", "curves.png"):
        (folder / name).write_text(name)


def test_default_folder_is_named_after_the_config():
    assert runs.default_dir(configmod.loads(CONFIG)) == os.path.join("runs", "exp")


def test_a_new_folder_starts_from_scratch(tmp_path, config):
    assert runs.prepare(str(tmp_path / "new"), str(config)) is None
    assert runs.prepare(str(tmp_path / "new"), str(config), resume=runs.AUTO) is None
    assert not (tmp_path / "new").exists()


def test_auto_resumes_the_folders_last_checkpoint(tmp_path, config):
    finished_run(tmp_path / "run")
    got = runs.prepare(str(tmp_path / "run"), str(config), resume=runs.AUTO)
    assert got == str(tmp_path / "run" / "last.npz")


def test_a_folder_holding_a_run_needs_resume_or_fresh(tmp_path, config):
    finished_run(tmp_path / "run")
    with pytest.raises(ConvtrainError, match="already holds a run; pass --resume"):
        runs.prepare(str(tmp_path / "run"), str(config))
    assert (tmp_path / "run" / "last.npz").read_text() == "last.npz"


def test_fresh_moves_only_the_runs_files_aside(tmp_path, config):
    run = tmp_path / "run"
    finished_run(run)
    (run / "notes.txt").write_text("mine")
    (run / "data.npz").write_text("data")
    assert runs.prepare(str(run), str(config), fresh=True) is None
    kept = [p for p in run.iterdir() if p.name.startswith("previous-")]
    assert len(kept) == 1
    assert sorted(p.name for p in kept[0].iterdir()) == sorted(
        ["metrics.jsonl", "last.npz", "best.npz", "epoch-001.npz", "curves.png"])
    assert sorted(p.name for p in run.iterdir() if p.is_file()) == ["data.npz", "notes.txt"]


def test_two_fresh_starts_in_one_second_keep_both(tmp_path, monkeypatch):
    monkeypatch.setattr("time.strftime", lambda fmt, *a: "previous-same")
    run = tmp_path / "run"
    finished_run(run)
    first = runs.move_aside(str(run))
    finished_run(run)
    second = runs.move_aside(str(run))
    assert os.path.basename(first) == "previous-same"
    assert os.path.basename(second) == "previous-same-2"
    assert (run / "previous-same" / "last.npz").exists()
    assert (run / "previous-same-2" / "last.npz").exists()


def test_resuming_another_runs_checkpoint_into_a_run_is_refused(tmp_path, config):
    finished_run(tmp_path / "run")
    finished_run(tmp_path / "other")
    other = str(tmp_path / "other" / "last.npz")
    with pytest.raises(ConvtrainError, match="already holds another run"):
        runs.prepare(str(tmp_path / "run"), str(config), resume=other)
    # into a new folder, or into the checkpoint's own folder, it is fine
    assert runs.prepare(str(tmp_path / "new"), str(config), resume=other) == other
    assert runs.prepare(str(tmp_path / "other"), str(config), resume=other) == other


def test_the_users_own_config_is_never_overwritten(tmp_path):
    folder = tmp_path / "exp"
    folder.mkdir()
    own = folder / "config.yaml"
    own.write_text("# my notes\n" + CONFIG)
    with pytest.raises(ConvtrainError, match="would overwrite"):
        runs.prepare(str(folder), str(own))
    assert own.read_text() == "# my notes\n" + CONFIG


def test_a_runs_resolved_config_may_be_rewritten(tmp_path, config):
    cfg = configmod.load(config)
    path = runs.write_config(str(tmp_path / "run"), cfg)
    assert path == str(tmp_path / "run" / "config.yaml")
    assert open(path).readline().startswith("# resolved config")
    assert configmod.load(path).model == cfg.model
    runs.check_own_config(str(tmp_path / "run"), path)      # no error: it is the run's own
