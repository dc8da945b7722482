"""`convtrain sweep` and `convtrain cv` on the default LocalCluster: the results table, done
markers, --resume, failed trials, --write-best, and the messages when Dask is missing or the
scheduler is unreachable."""
import json
import os

import pytest
from click.testing import CliRunner

import synthetic
from convtrain.cli import main

pytest.importorskip("distributed")


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return synthetic.write_config(tmp_path, epochs=2, extra="divergence: {max_retries: 1}\n")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def sweep_folder(tmp_path, kind="sweep"):
    (folder,) = (tmp_path / "runs" / "synth").glob(f"{kind}-*")
    return folder


def test_a_2x2_sweep_ranks_configs_and_a_diverging_trial_is_a_failed_row(cfg, tmp_path):
    cfg.write_text("# the base of my sweep\n" + cfg.read_text())
    args = ("sweep", cfg, "--set", "optim.lr=0.05,1e4", "--set", "optim.momentum=0.9,0.5")
    r = invoke(*args, "--write-best", tmp_path / "best.yaml")
    assert r.exit_code == 0, r.output
    folder = sweep_folder(tmp_path)
    done = [json.loads((folder / f"trial-00{i}" / "done").read_text()) for i in range(4)]
    assert [d["point"] for d in done] == [
        {"optim.lr": 0.05, "optim.momentum": 0.9}, {"optim.lr": 0.05, "optim.momentum": 0.5},
        {"optim.lr": 1e4, "optim.momentum": 0.9}, {"optim.lr": 1e4, "optim.momentum": 0.5}]
    assert [d["status"] for d in done] == ["ok", "ok", "failed", "failed"]
    assert "diverged" in done[2]["error"]
    # each trial is a normal run folder with its resolved config
    for d in done[:2]:
        run = folder / d["trial"]
        assert (run / "best.npz").exists() and (run / "metrics.jsonl").exists()
        assert f"lr: {d['point']['optim.lr']}" in (run / "config.yaml").read_text()
        assert d["kernels_compiled"] == 0     # the cache was warmed before the trials
    lines = r.output.splitlines()
    assert sum(line.startswith("trial-") for line in lines) == 4   # one line per trial
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    errors = [row["val_error"] for row in rows]
    assert errors[:2] == sorted(errors[:2]) and errors[2:] == [None, None]
    assert [row["failed"] for row in rows] == [0, 0, 1, 1]
    csv = (folder / "results.csv").read_text().splitlines()
    assert csv[0].startswith("rank,optim.lr,optim.momentum,val_error") and len(csv) == 5
    # --write-best: the user's file with the swept keys (and the name) changed, comments kept
    best = (tmp_path / "best.yaml").read_text()
    assert best.startswith("# the base of my sweep\n") and "name: best" in best
    from convtrain import config as C
    written = C.load(tmp_path / "best.yaml")
    assert written.optim.momentum == rows[0]["point"]["optim.momentum"]

    # the same command again refuses to overwrite; --resume reruns nothing
    r = invoke(*args)
    assert r.exit_code == 1 and "--resume" in r.output
    stamps = {p: p.stat().st_mtime_ns for p in folder.glob("trial-*/*")}
    r = invoke(*args, "--resume")
    assert r.exit_code == 0 and "4 finished already" in r.output
    assert {p: p.stat().st_mtime_ns for p in folder.glob("trial-*/*")} == stamps


def test_resume_runs_only_the_trials_without_a_done_marker(cfg, tmp_path):
    args = ("sweep", cfg, "--set", "optim.lr=0.05,0.02", "--workers", "1")
    assert invoke(*args).exit_code == 0
    folder = sweep_folder(tmp_path)
    first = (folder / "trial-000" / "done").read_text()
    os.unlink(folder / "trial-001" / "done")
    r = invoke(*args, "--resume")
    assert r.exit_code == 0, r.output
    assert "1 finished already" in r.output and "trial-001" in r.output
    assert (folder / "trial-000" / "done").read_text() == first
    again = json.loads((folder / "trial-001" / "done").read_text())
    assert again["status"] == "ok" and again["resumed_from_step"] == 16   # its last.npz


def test_cv_reports_mean_and_std_over_stratified_folds(cfg, tmp_path):
    r = invoke("cv", cfg, "--folds", "3")
    assert r.exit_code == 0, r.output
    folder = sweep_folder(tmp_path, "cv")
    (row,) = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    assert row["folds"] == 3 and len(row["val_errors"]) == 3
    assert row["val_error"] == pytest.approx(sum(row["val_errors"]) / 3)
    assert row["val_error_std"] is not None and "±" in r.output
    from convtrain import config as C
    cfgs = [C.load(folder / f"trial-00{i}" / "config.yaml") for i in range(3)]
    assert [(c.data.folds, c.data.fold) for c in cfgs] == [(3, 0), (3, 1), (3, 2)]


def test_sweep_with_cv_groups_the_folds_of_each_config(cfg, tmp_path):
    r = invoke("sweep", cfg, "--set", "optim.lr=0.05,0.02", "--cv", "2")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in
            (sweep_folder(tmp_path) / "results.jsonl").read_text().splitlines()]
    assert sorted(len(row["trials"]) for row in rows) == [2, 2] and len(rows) == 2


def test_bad_values_stop_the_sweep_before_anything_runs(cfg, tmp_path):
    r = invoke("sweep", cfg, "--set", "optim.lr=0.05,-1")
    assert r.exit_code == 1 and "--set optim.lr: must be > 0" in r.output
    assert not (tmp_path / "runs").exists()


def test_unreachable_scheduler_and_missing_dask_are_clear_errors(cfg, monkeypatch):
    r = invoke("cv", cfg, "--folds", "2", "--scheduler", "tcp://127.0.0.1:9")
    assert r.exit_code == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in r.output
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)
    r = invoke("cv", cfg, "--folds", "2", "--resume")
    assert r.exit_code == 1 and "pip install convtrain[cluster]" in r.output


def test_ctrl_c_stops_the_sweep_with_130_and_resume_finishes_it(tmp_path):
    """Ctrl-C at a terminal signals the whole process group: client and local workers."""
    import signal
    import subprocess
    import sys
    import time
    data = synthetic.write_dataset(tmp_path, n_train=2112)
    # long enough (about 10 s a trial) that the interrupt lands mid-trial on a fast machine
    (tmp_path / "long.yaml").write_text(synthetic.CONFIG.format(path=data, epochs=200))
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (repo, os.environ.get("PYTHONPATH")))))
    cmd = [sys.executable, "-m", "convtrain", "sweep", "long.yaml", "--set", "optim.lr=0.05,0.02",
           "--out", "sw"]
    # As at a terminal: SIGINT at its default even when the suite itself runs in the background
    # of a script (where the shell starts it with SIGINT ignored, and children inherit that).
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not list((tmp_path / "sw").glob("trial-*/last.npz")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "--resume" in out and "Traceback" not in out
    unfinished = [t for t in (tmp_path / "sw").glob("trial-*") if not (t / "done").exists()]
    assert unfinished, "both trials finished before the interrupt"
    again = subprocess.run(cmd + ["--resume"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    rows = [json.loads((t / "done").read_text()) for t in sorted((tmp_path / "sw").glob("trial-*"))]
    assert all(r["status"] == "ok" for r in rows)
