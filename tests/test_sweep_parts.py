"""The sweep's parts without a Dask cluster: a trial's row (no validation split, a stop, an
unreadable checkpoint), --resume into another sweep's folder, --write-best refused before the
sweep, and the local cluster's clean-up."""
import os
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import synthetic
from convtrain.cli import main
from convtrain.errors import ConvtrainError
from convtrain.sweep import cluster, results, runner, trials


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return synthetic.write_config(tmp_path, epochs=2)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def one_trial(cfg, tmp_path, point=None):
    (trial,) = runner.plan(str(cfg), [point or {}], out=str(tmp_path / "sw")).trials
    os.makedirs(trial.folder)
    return trial


def fake_fit(calls, metric, best):
    def run_fit(cfg, **kwargs):
        calls.append(kwargs)
        return SimpleNamespace(metric=metric, best_val_error=best, best_epoch=2, steps=16,
                               best_checkpoint=None, warnings=())
    return run_fit


def test_without_a_validation_split_the_training_loss_is_no_validation_error(cfg, tmp_path,
                                                                             monkeypatch):
    calls = []
    monkeypatch.setattr("convtrain.train.session.run_fit", fake_fit(calls, "training loss", 0.231))
    row = trials.run(one_trial(cfg, tmp_path))
    assert row["status"] == "ok" and row["val_error"] is None
    assert row["best_loss"] == 0.231 and row["metric"] == "training loss"
    ok = dict(row, group=1, index=1, trial="trial-001", point={})
    validated = dict(ok, group=0, index=0, trial="trial-000", val_error=0.5, best_loss=None)
    summary = results.summarize([ok, validated], [])
    assert [r["group"] for r in summary] == [0, 1]   # a real error rate ranks first
    assert summary[1]["val_error"] is None and summary[1]["best_loss"] == 0.231
    from convtrain.cli.sweep_commands import _ranking_note, _table, _trial_line
    assert "23.10%" not in _trial_line(row) and "training loss 0.2310" in _trial_line(row)
    p = SimpleNamespace(keys=[], folds=None)
    assert "failed" not in _table(summary, p) and "training loss" in _table(summary, p)
    assert "ranked by validation error" in _ranking_note(summary)
    assert results.best(summary)["group"] == 0


def test_an_unreadable_checkpoint_starts_the_trial_afresh(cfg, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("convtrain.train.session.run_fit",
                        fake_fit(calls, "validation error", 0.25))
    trial = one_trial(cfg, tmp_path)
    with open(os.path.join(trial.folder, "last.npz"), "wb") as f:
        f.write(b"half a checkpoint")
    row = trials.run(trial)
    assert calls[0]["fresh"] is True and calls[0]["resume"] is None
    assert row["status"] == "ok" and row["resumed_from_step"] is None
    assert "last.npz" in row["discarded_checkpoint"]


def test_a_stopped_trial_writes_last_npz_through_the_trainer(cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(trials._StopWatch, "POLL_SECONDS", 0.0)
    trial = one_trial(cfg, tmp_path)
    open(trial.stop_file, "w").close()
    row = trials.run(trial)
    assert row["status"] == trials.STOPPED
    assert os.path.exists(os.path.join(trial.folder, "last.npz"))   # no work lost
    assert trials.read_done(trial.folder) is None                   # --resume continues it


def test_resume_into_the_folder_of_another_sweep_is_refused(cfg, tmp_path):
    out = str(tmp_path / "sw")
    first = runner.plan(str(cfg), [{"optim.lr": 0.05}, {"optim.lr": 0.02}], out=out)
    runner.prepare(first, resume=False)
    trials.write_done(first.trials[0].folder, {"index": 0, "status": "ok"})
    other = runner.plan(str(cfg), [{"optim.lr": 0.1}, {"optim.lr": 0.02}], out=out)
    with pytest.raises(ConvtrainError, match="trials differ"):
        runner.prepare(other, resume=True)
    cv = runner.plan(str(cfg), [{}], folds=2, out=out, kind="cv")
    with pytest.raises(ConvtrainError, match="its kind, keys, folds, trials differ"):
        runner.prepare(cv, resume=True)
    assert len(runner.prepare(first, resume=True)) == 1   # the same sweep continues


def test_write_best_is_refused_before_anything_runs(cfg, tmp_path):
    r = invoke("sweep", cfg, "--set", "model[0].conv.filters=4,8", "--write-best", "best.yaml")
    assert r.exit_code == 1 and "model[0].conv.filters is inside a list" in r.output
    r = invoke("sweep", cfg, "--set", "optim.lr=0.05,0.02", "--write-best", cfg)
    assert r.exit_code == 2 and "would overwrite CONFIG itself" in r.output
    assert not (tmp_path / "runs").exists()


def test_write_best_replaces_the_file_whole(cfg, tmp_path):
    from convtrain import config as C
    out = tmp_path / "best.yaml"
    out.write_text("old\n")
    results.write_best(C.load(cfg), {"optim.lr": 0.02}, str(out))
    assert "lr: 0.02" in out.read_text() and os.listdir(tmp_path).count("best.yaml") == 1
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_workers_with_a_scheduler_is_a_usage_error(cfg):
    r = invoke("cv", cfg, "--scheduler", "tcp://127.0.0.1:9", "--workers", "2")
    assert r.exit_code == 2 and "--workers" in r.output and "--scheduler" in r.output


class FakeCluster:
    closed = False

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def close(self):
        FakeCluster.closed = True


def test_the_local_cluster_is_closed_when_the_client_fails(monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(distributed, "LocalCluster", FakeCluster)
    monkeypatch.setattr(distributed, "Client", lambda c: (_ for _ in ()).throw(OSError("no")))
    FakeCluster.closed = False
    with pytest.raises(OSError):
        with cluster.connect(trials=2):
            pass
    assert FakeCluster.closed


def test_workers_above_the_cores_are_capped_and_said_so(monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(distributed, "LocalCluster", FakeCluster)
    monkeypatch.setattr(distributed, "Client", lambda c: SimpleNamespace(close=lambda: None))
    monkeypatch.setattr(cluster, "cores", lambda: 2)
    with cluster.connect(trials=8, workers=5) as (client, where):
        assert where == "a local Dask cluster: 2 workers (5 asked, 2 cores) x 1 numba threads"
    with cluster.connect(trials=8, workers=2) as (client, where):
        assert "asked" not in where


def test_ctrl_c_while_warming_the_cache_stops_the_helper(cfg, monkeypatch):
    from convtrain import config as C
    from convtrain.tools import precompile
    stopped = []

    class Helper:
        def wait(self):
            raise KeyboardInterrupt

    monkeypatch.setattr(precompile, "start", lambda cfg, shape: Helper())
    monkeypatch.setattr(precompile, "stop", stopped.append)
    with pytest.raises(KeyboardInterrupt):
        cluster.warm_kernel_cache([C.load(cfg)])
    assert len(stopped) == 1 and isinstance(stopped[0], Helper)
