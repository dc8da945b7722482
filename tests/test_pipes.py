"""`convtrain ... | head`: a reader that leaves early ends the command quietly with status 0
(no traceback, no "Exception ignored" at exit), through real pipes to a real process."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = os.path.join(ROOT, "configs", "default.yaml")


def env():
    return {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.mark.parametrize("args", [["summary", DEFAULT], ["--help"], ["fit", "--help"]])
def test_a_reader_that_closes_before_the_first_line(args):
    """The pipe's read end is closed before the process writes: every write fails with EPIPE."""
    proc = subprocess.Popen([sys.executable, "-m", "convtrain", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env(), cwd=ROOT)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err and "Error" not in err, err


def test_summary_into_head_ends_with_status_0():
    script = (f'"{sys.executable}" -m convtrain summary configs/default.yaml | head -1; '
              'echo "status ${PIPESTATUS[0]}" >&2')
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env(),
                         cwd=ROOT, timeout=120)
    assert res.stdout.startswith("default: input 1x28x28") and len(res.stdout.splitlines()) == 1
    assert res.stderr.strip().splitlines()[-1] == "status 0", res.stderr
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr


def test_fit_whose_reader_leaves_keeps_training_to_the_end(tmp_path):
    """`fit ... | head`: the reporter goes quiet and the run finishes (its last epoch is in
    metrics.jsonl, its final checkpoint written) instead of dying after a checkpoint with 0."""
    from synthetic import write_config
    cfg = write_config(tmp_path, epochs=3)
    proc = subprocess.Popen([sys.executable, "-m", "convtrain", "fit", str(cfg), "--out",
                             str(tmp_path / "run")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env(), cwd=tmp_path)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert '"epoch": 3' in rows[-1] and (tmp_path / "run" / "epoch-003.npz").exists()
