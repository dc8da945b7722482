"""A run folder stands for its files: eval, predict, show and summary take the folder itself,
plot takes the folder or any of its files (through click's CliRunner)."""
import json
import os
import shutil

import pytest
from click.testing import CliRunner

from convtrain.cli import main
from convtrain.errors import ConvtrainError
from convtrain.train import runs

from synthetic import write_config


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    out = tmp / "run"
    res = run("fit", write_config(tmp, epochs=2), "--out", out, "-q")
    assert res.exit_code == 0, res.output
    return out


def test_a_folder_stands_for_its_best_checkpoint_else_its_last(tmp_path):
    (tmp_path / "last.npz").write_bytes(b"x")
    assert runs.checkpoint_in(str(tmp_path)) == os.path.join(str(tmp_path), "last.npz")
    (tmp_path / "best.npz").write_bytes(b"x")
    assert runs.checkpoint_in(str(tmp_path)) == os.path.join(str(tmp_path), "best.npz")
    assert runs.checkpoint_in("some/file.npz") == "some/file.npz"   # a file path as given


def test_a_folder_without_a_checkpoint_says_what_it_looked_for(tmp_path):
    (tmp_path / "epoch-001.npz").write_bytes(b"x")
    with pytest.raises(ConvtrainError, match=r"looked for .*best\.npz or .*last\.npz"):
        runs.checkpoint_in(str(tmp_path))
    res = run("eval", tmp_path)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert f"Error: {tmp_path}: a folder without a checkpoint" in res.output
    assert "best.npz" in res.output and "last.npz" in res.output


def test_eval_of_a_run_folder_is_eval_of_its_best_checkpoint(run_dir):
    by_folder = run("eval", run_dir, "--json")
    by_file = run("eval", run_dir / "best.npz", "--json")
    assert by_folder.exit_code == 0, by_folder.output
    assert json.loads(by_folder.output) == json.loads(by_file.output)
    text = run("eval", run_dir)
    assert text.output.splitlines()[0].startswith(f"{run_dir / 'best.npz'} on test")


def test_eval_of_a_folder_without_best_takes_last(run_dir, tmp_path):
    shutil.copy(run_dir / "last.npz", tmp_path / "last.npz")
    res = run("eval", tmp_path)
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"{tmp_path / 'last.npz'} on test")


def test_predict_and_show_take_a_run_folder(run_dir, tmp_path):
    by_folder = run("predict", run_dir, "--index", "3", "--json")
    assert by_folder.exit_code == 0, by_folder.output
    data = json.loads(by_folder.output)
    assert data["checkpoint"] == str(run_dir / "best.npz")
    assert data["predictions"] == json.loads(run("predict", run_dir / "best.npz", "--index", "3",
                                                 "--json").output)["predictions"]
    pytest.importorskip("PIL")
    pytest.importorskip("matplotlib")
    res = run("show", run_dir, "--filters")
    assert res.exit_code == 0, res.output
    assert (run_dir / "filters.png").exists()


def test_summary_of_a_run_folder_reads_its_resolved_config(run_dir):
    by_folder = run("summary", run_dir, "--json")
    by_file = run("summary", run_dir / "config.yaml", "--json")
    assert by_folder.exit_code == 0, by_folder.output
    assert json.loads(by_folder.output) == json.loads(by_file.output)
    assert json.loads(by_folder.output)["input_shape"] == [1, 8, 8]


def test_summary_of_a_folder_without_a_config(tmp_path):
    res = run("summary", tmp_path)
    assert res.exit_code == 1
    assert f"looked for {tmp_path / 'config.yaml'}" in res.output


def test_plot_takes_the_folder_or_any_file_of_the_run(run_dir, tmp_path):
    pytest.importorskip("matplotlib")
    for given in (run_dir, run_dir / "metrics.jsonl", run_dir / "best.npz"):
        out = tmp_path / f"{given.name}.png"
        res = run("plot", given, "--out", out)
        assert res.exit_code == 0, res.output
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = run("plot", run_dir / "last.npz")
    assert res.exit_code == 0 and (run_dir / "curves.png").exists()
