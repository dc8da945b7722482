"""The Python API (convtrain/api.py): load, predict, fit with overrides, evaluate."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import convtrain
from convtrain.cli import main
from convtrain.errors import ConfigError, ConvtrainError
from convtrain.train.session import FitResult

from synthetic import write_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    cfg = write_config(folder, epochs=2)
    result = convtrain.fit(cfg, out=str(folder / "run"), **{"optim.lr": 0.04, "train.epochs": 3})
    data = np.load(folder / "synth.npz")
    return result, folder, data["x_test"], data["y_test"]


def test_fit_with_overrides_writes_a_run_with_them(run):
    result, folder, _, _ = run
    assert isinstance(result, FitResult)
    assert result.epochs == 3 and result.run_dir == str(folder / "run")
    text = (folder / "run" / "config.yaml").read_text()
    assert "lr: 0.04" in text and "epochs: 3" in text
    assert result.best_checkpoint == str(folder / "run" / "best.npz")


def test_fit_is_quiet_by_default(tmp_path, capsys):
    cfg = write_config(tmp_path, epochs=1)
    convtrain.fit(cfg, out=str(tmp_path / "r"), seed=3, batch_size=16)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert "seed: 3" in (tmp_path / "r" / "config.yaml").read_text()


def test_fit_refuses_unknown_options_and_names_bad_key_paths(tmp_path):
    cfg = write_config(tmp_path, epochs=1)
    with pytest.raises(TypeError, match="epoch"):
        convtrain.fit(cfg, epoch=2)
    with pytest.raises(ConfigError, match=r"--set optim\.lrr: unknown key.*did you mean 'lr'"):
        convtrain.fit(cfg, **{"optim.lrr": 0.1})


def test_load_a_checkpoint_or_its_run_folder(run):
    result, folder, _, _ = run
    net = convtrain.load(result.best_checkpoint)
    assert net.classes == ["0", "1", "2", "3"] and net.input_shape == (1, 8, 8)
    assert convtrain.load(folder / "run").path == result.best_checkpoint
    (folder / "empty").mkdir()
    with pytest.raises(ConvtrainError, match="a folder without a checkpoint"):
        convtrain.load(folder / "empty")


def test_predict_agrees_with_eval_json(run):
    result, _, x, y = run
    net = convtrain.load(result.best_checkpoint)
    probs = net.predict(x)
    assert probs.shape == (len(y), 4) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    accuracy = float((probs.argmax(axis=1) == y).mean())
    res = CliRunner().invoke(main, ["eval", result.best_checkpoint, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert convtrain.evaluate(result.run_dir)["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert accuracy > 0.9
    np.testing.assert_array_equal(net.predict_classes(x), probs.argmax(axis=1))


def test_uint8_float_nchw_nhwc_and_single_images_agree(run):
    result, _, x, _ = run
    net = convtrain.load(result.best_checkpoint)
    x = x[:40]
    expected = net.predict(x[:, None])                          # NCHW uint8
    same = [net.predict(x),                                      # (N, H, W) for one channel
            net.predict(x[:, :, :, None]),                       # NHWC
            net.predict(x[:, None].astype(np.float32) / 255),    # float in 0..1
            net.predict(x[:, None].astype(np.float64) / 255),
            net.predict(x.astype(np.int64)),
            net.predict(x[:, None], batch_size=7)]               # batched
    for probs in same:
        np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    for single in (x[5], x[5][None], x[5][:, :, None]):
        np.testing.assert_allclose(net.predict(single), expected[5], rtol=1e-5, atol=1e-6)
    assert net.predict(x[5], labels=True) == expected[5].argmax()


def test_wrong_shapes_and_values_say_what_fits(run):
    net = convtrain.load(run[0].best_checkpoint)
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\) or \(N, 8, 8, 1\)"):
        net.predict(np.zeros((2, 3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="0..255"):
        net.predict(np.full((2, 8, 8), 300))


def test_rgb_layouts_resolve_by_the_channel_count():
    from convtrain.api import as_batch, to_nchw
    x = np.arange(2 * 4 * 4 * 3).reshape(2, 4, 4, 3).astype(np.uint8)
    batch, single = as_batch(x, (3, 4, 4))
    np.testing.assert_array_equal(to_nchw(batch, (3, 4, 4)), x.transpose(0, 3, 1, 2))
    cube = np.zeros((3, 3, 3), np.uint8)          # fits both layouts: read as (C, H, W)
    batch, single = as_batch(cube, (3, 3, 3))
    assert single and batch.shape == (1, 3, 3, 3)
    np.testing.assert_array_equal(to_nchw(batch, (3, 3, 3))[0], cube)


def test_importing_convtrain_does_no_work():
    code = ("import os, sys\nbefore = dict(os.environ)\nimport convtrain\n"
            "assert callable(convtrain.load) and callable(convtrain.fit)\n"
            "assert 'numpy' not in sys.modules, 'numpy'\n"
            "assert dict(os.environ) == before, 'environment'\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "OPENBLAS_"))}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_fit_takes_top_level_keys_and_a_single_image_label_is_an_int(tmp_path):
    """`name=` is a config key like `optim.lr`; predict(labels=True) of one image is an int."""
    from synthetic import write_config
    result = convtrain.fit(write_config(tmp_path, epochs=1), name="renamed",
                           out=str(tmp_path / "run"))
    assert "name: renamed" in (tmp_path / "run" / "config.yaml").read_text()
    net = convtrain.load(result.run_dir)
    label = net.predict(np.zeros((8, 8), np.uint8), labels=True)
    assert isinstance(label, int) and 0 <= label < 4
