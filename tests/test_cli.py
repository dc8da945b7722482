"""The command line end to end, through click's CliRunner: output, errors, exit codes."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from convtrain.cli import main

from synthetic import write_config


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def trained(tmp_path):
    cfg = write_config(tmp_path, epochs=3)
    out = tmp_path / "run"
    result = run("fit", cfg, "--out", out)
    assert result.exit_code == 0, result.output
    return cfg, out, result


def test_fit_then_eval(trained):
    cfg, out, result = trained
    assert "done: best validation error" in result.output
    assert (out / "config.yaml").exists() and (out / "best.npz").exists()
    res = run("eval", out / "best.npz", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert set(data) >= {"split", "n", "loss", "accuracy", "error", "per_class", "confusion"}
    assert data["split"] == "test" and data["n"] == 96
    assert data["accuracy"] > 0.9 and abs(data["accuracy"] + data["error"] - 1) < 1e-12
    assert np.array(data["confusion"]).sum() == 96
    text = run("eval", out / "best.npz", "--split", "val")
    assert text.exit_code == 0 and "accuracy" in text.output and "confusion matrix" in text.output


def test_refit_into_the_same_folder_needs_resume_or_fresh(trained):
    cfg, out, _ = trained
    res = run("fit", cfg, "--out", out)
    assert res.exit_code == 1 and "--resume" in res.output and "Traceback" not in res.output
    res = run("fit", cfg, "--out", out, "--resume")      # finished run: nothing left to do
    assert res.exit_code == 0, res.output
    res = run("fit", cfg, "--out", out, "--fresh", "--epochs", "1")
    assert res.exit_code == 0, res.output
    assert list(out.glob("previous-*/metrics.jsonl"))


def test_resume_with_a_different_architecture_is_a_clear_error(trained, tmp_path):
    cfg, out, _ = trained
    other = tmp_path / "other.yaml"
    other.write_text(cfg.read_text().replace("filters: 4", "filters: 5"))
    res = run("fit", other, "--out", out, "--resume", out / "last.npz")
    assert res.exit_code == 1
    assert "does not fit this model" in res.output and "conv1.weight" in res.output


def test_config_typo_gives_one_error_line(tmp_path):
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("momentum: 0.9", "momentun: 0.9"))
    res = run("fit", cfg)
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "optim.momentun" in lines[0] and "did you mean 'momentum'" in lines[0]
    assert f"{cfg}:" in lines[0]


def test_missing_data_folder_says_how_to_get_it(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {dataset: fashion-mnist, path: /nonexistent/fmnist}\nmodel: [dense: 10]\n")
    res = run("fit", cfg)
    assert res.exit_code == 1 and res.output.startswith("Error: ")
    assert "dataset-fashion-mnist" in res.output and "Traceback" not in res.output


def test_truncated_checkpoint(trained):
    _, out, _ = trained
    data = (out / "best.npz").read_bytes()
    (out / "cut.npz").write_bytes(data[:len(data) // 3])
    res = run("eval", out / "cut.npz")
    assert res.exit_code == 1
    assert res.output.startswith("Error: ") and "truncated" in res.output


def test_usage_errors_exit_2(tmp_path):
    assert run("fit").exit_code == 2
    assert run("fit", "x.yaml", "--epochs", "0").exit_code == 2
    assert run("frobnicate").exit_code == 2
    assert run("eval", "x.npz", "--split", "bogus").exit_code == 2


def test_summary_counts_the_lecture_example(tmp_path):
    cfg = tmp_path / "big.yaml"
    cfg.write_text("input: [1, 200, 200]\nmodel:\n  - conv: {filters: 100, size: 10}\n"
                   "  - dense: 40000\n  - dense: 10\n")
    res = run("summary", cfg, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    conv = data["layers"][0]
    assert conv["weights"] == 10_000 and conv["biases"] == 100 and conv["params"] == 10_100
    assert conv["output_shape"] == [100, 191, 191]
    assert conv["flops"] == 2 * 100 * 191 * 191 * 10 * 10
    dense = data["layers"][1]
    assert dense["params"] == 100 * 191 * 191 * 40_000 + 40_000   # never allocated
    text = run("summary", cfg)
    assert "10,000" in text.output and "2 x multiply-adds" in text.output


def test_gradcheck_passes_on_the_synthetic_config(tmp_path):
    cfg = write_config(tmp_path)
    res = run("gradcheck", cfg)
    assert res.exit_code == 0, res.output
    assert "PASS" in res.output and "conv1.weight" in res.output


def test_lr_search_writes_a_copy_that_differs_only_in_the_rate_and_the_name(tmp_path):
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("optim: {lr: 0.05, momentum: 0.9}",
                                           "optim: {lr: 0.05, momentum: 0.9}   # by hand"))
    out = tmp_path / "tuned.yaml"
    res = run("lr-search", cfg, "--subset", "128", "--start", "64", "--write", out)
    assert res.exit_code == 0, res.output
    chosen = float(res.output.split("chosen learning rate: ")[1].split()[0])
    marked = [line for line in res.output.splitlines() if line.endswith("<- chosen")]
    assert len(marked) == 1 and float(marked[0].split()[0]) == chosen
    assert "diverged" in res.output and "stopped early" in res.output
    old, new = cfg.read_text().splitlines(), out.read_text().splitlines()
    assert len(old) == len(new)
    assert [(a, b) for a, b in zip(old, new) if a != b] == [
        ("name: synth", "name: tuned"),
        ("optim: {lr: 0.05, momentum: 0.9}   # by hand",
         f"optim: {{lr: {chosen!r}, momentum: 0.9}}   # by hand")]
    from convtrain import config as configmod
    assert configmod.load(str(out)).optim.lr == chosen
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "note: no plot" in res.output
    else:
        assert (tmp_path / "tuned-lr-search.png").read_bytes()[:4] == b"\x89PNG"


def test_lr_search_refuses_to_overwrite_its_config(tmp_path):
    cfg = write_config(tmp_path)
    before = cfg.read_text()
    res = run("lr-search", cfg, "--write", cfg)
    assert res.exit_code == 2 and "would overwrite CONFIG" in res.output
    assert cfg.read_text() == before


def test_lr_search_without_matplotlib_notes_it_in_one_line(tmp_path, monkeypatch):
    import sys
    for module in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, module, None)   # `import matplotlib` now fails
    cfg = write_config(tmp_path)
    res = CliRunner().invoke(main, ["lr-search", str(cfg), "--subset", "64", "--start", "4",
                                    "--steps", "4", "--plot", str(tmp_path / "p.png")])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output and not (tmp_path / "p.png").exists()
    assert [line for line in res.output.splitlines() if "plot" in line] == [
        "note: no plot (it needs matplotlib: pip install 'convtrain[viz]')"]


def test_fit_lr_auto_searches_then_trains_at_the_chosen_rate(tmp_path):
    cfg = write_config(tmp_path, epochs=1)
    out = tmp_path / "run"
    res = run("fit", cfg, "--lr", "auto", "--out", out)
    assert res.exit_code == 0, res.output
    chosen = float(res.output.split("chosen learning rate: ")[1].split()[0])
    assert f"learning rate: {chosen:g}, chosen by lr-search" in res.output
    assert "<- chosen" in res.output
    from convtrain import config as configmod
    assert configmod.load(str(out / "config.yaml"), stored=True).optim.lr == chosen
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert first["lr"] <= chosen
    # resumed, the run keeps the rate it started with: no second search
    res = run("fit", cfg, "--lr", "auto", "--out", out, "--resume", "--epochs", "2")
    assert res.exit_code == 0, res.output
    assert f"learning rate: {chosen:g}, the rate this run started with" in res.output
    assert "lr-search" not in res.output and "learning rate changed" not in res.output


@pytest.mark.parametrize("value", ["fast", "0", "-0.1", "nan", "inf", ""])
def test_fit_lr_takes_a_positive_number_or_auto(tmp_path, value):
    res = run("fit", write_config(tmp_path), "--lr", value, "--out", tmp_path / "run")
    assert res.exit_code == 2
    assert "is not a learning rate: give a positive number (e.g. 0.05) or `auto`" in res.output
    assert not (tmp_path / "run").exists()


def test_a_model_with_too_few_outputs_is_a_clear_error(tmp_path):
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("  - dense: 4\n", "  - dense: 3\n"))
    res = run("fit", cfg, "--out", tmp_path / "r")
    assert res.exit_code == 1 and "dense: 4" in res.output


def test_every_command_is_registered_from_its_module():
    import click

    from convtrain import cli
    registered = set(main.commands.values())
    listed = set()
    for module in cli.COMMAND_MODULES:
        defined = {v for v in vars(module).values() if isinstance(v, click.Command)}
        assert set(module.COMMANDS) == defined, module.__name__
        listed |= defined
    assert registered == listed
    assert {"fit", "eval", "summary", "gradcheck", "lr-search", "doctor", "plot", "show",
            "predict", "export", "sweep", "cv"} == set(main.commands)


def test_help_imports_no_numpy():
    import subprocess
    import sys
    code = ("import sys\nfrom convtrain.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\nsys.exit(3 if 'numpy' in sys.modules else 0)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "fit" in res.stdout and "predict" in res.stdout


def test_ctrl_c_outside_training_exits_130(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("convtrain.tools.restore.load_for_inference", interrupted)
    res = CliRunner().invoke(main, ["eval", str(tmp_path / "x.npz")])
    assert res.exit_code == 130 and "interrupted" in res.output and "Traceback" not in res.output


def test_show_titles_the_image_with_predicts_best_class(trained, tmp_path):
    _, out, _ = trained
    res = run("predict", out / "best.npz", "--index", "5", "--top", "1", "--json")
    assert res.exit_code == 0, res.output
    best = json.loads(res.output)["predictions"][0]
    res = run("show", out / "best.npz", "--features", "5", "--out", tmp_path / "f.png")
    assert res.exit_code == 0, res.output
    top = best["top"][0]
    assert res.output.splitlines()[0] == (f"test[5]: label {best['label_name']}, predicted "
                                          f"{top['name']} ({100 * top['probability']:.1f}%)")
