"""Pictures and predictions: curves.png, filter and feature-map grids, `predict` against `eval`."""
import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from convtrain import config as configmod
from convtrain.tools import charts, viz
from convtrain.cli import main
from convtrain.errors import ConfigError, DataError
from convtrain.train.evaluate import evaluate
from convtrain.nn.network import Network
from convtrain.tools.predict import brightness_note, load_image, top_k
from convtrain.tools.restore import load_for_inference

from synthetic import write_config

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trained synthetic run: 1x8x8 images, conv 4@3x3 -> relu -> max_pool 2 -> dense 4."""
    folder = tmp_path_factory.mktemp("viz")
    cfg = write_config(folder, epochs=3)
    result = invoke("fit", cfg, "--out", folder / "run", "-q")
    assert result.exit_code == 0, result.output
    return folder / "run"


def png_size(path):
    with Image.open(path) as im:
        im.load()
        return im.size, im.mode


# --- curves -------------------------------------------------------------------------------------

def test_fit_writes_curves_and_plot_redraws_them(run, tmp_path):
    assert (run / "curves.png").exists()                  # fit draws them at the end
    out = tmp_path / "c.png"
    result = invoke("plot", run, "--out", out)
    assert result.exit_code == 0, result.output
    size, _ = png_size(out)
    assert size == (750, 850)


def test_divergence_events_and_missing_values_plot(run, tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row.update(val_loss=None, val_error=None)
    event = {"event": "divergence", "step": 12, "loss": None, "lr": 0.025, "rollback_to": 10}
    (folder / "metrics.jsonl").write_text("\n".join([json.dumps(row), json.dumps(event)] + lines[1:]) + "\n")
    rows, events = charts.read_metrics(str(folder))
    assert [r["epoch"] for r in rows] == [1, 2, 3] and len(events) == 1
    path = charts.plot_curves(str(folder))
    assert path.endswith("curves.png") and png_size(path)[0] == (750, 850)


def test_plot_refuses_a_folder_without_metrics_or_with_a_malformed_file(tmp_path):
    result = invoke("plot", tmp_path)
    assert result.exit_code == 1
    assert "no metrics.jsonl" in result.output
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "step": 5, "train_loss": 1.0}\n{oops\n')
    result = invoke("plot", tmp_path)
    assert result.exit_code == 1
    assert "metrics.jsonl:2: malformed" in result.output
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 1.0}\n')
    with pytest.raises(DataError, match="no numeric step"):
        charts.read_metrics(str(tmp_path))


def test_plot_curves_raises_importerror_without_matplotlib(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError):
        charts.plot_curves(str(run))


# --- filters ------------------------------------------------------------------------------------

def test_show_filters_writes_a_grid_of_the_first_conv_layer(run):
    result = invoke("show", run / "best.npz", "--filters")
    assert result.exit_code == 0, result.output
    size, mode = png_size(run / "filters.png")
    tile = (viz.FILTER_TILE // 3) * 3                      # 3x3 filters, enlarged 21x
    h, w = viz.grid_size(4, tile, tile, viz.FILTER_COLS)
    assert (size, mode) == ((w, h), "RGB")
    assert size == (4 * (63 + 2) + 2, 63 + 4)


def test_filter_image_of_a_first_layer_matches_the_weights(run):
    model = load_for_inference(str(run / "best.npz"))
    img, info = viz.filter_image(model.net.layers[0])
    w = model.net.layers[0].params["weight"].astype(np.float64)
    s = info["scale"]
    top_left = img[viz.PAD:viz.PAD + 3 * s:s, viz.PAD:viz.PAD + 3 * s:s, 0]
    expected = np.clip(np.rint(127.5 + 127.5 * w[0, 0] / np.abs(w[0]).max()), 0, 255)
    np.testing.assert_array_equal(top_left, expected)


def _net(text, shape):
    cfg = configmod.loads("name: t\nmodel:\n" + text)
    return Network.build(cfg.model, shape, seed=0)


def test_deeper_layers_show_one_tile_per_filter_and_input_channel():
    net = _net("  - conv: {filters: 4, size: 3, pad: 1}\n  - conv: {filters: 6, size: 3}\n"
               "  - dense: 2\n", (1, 6, 6))
    img, info = viz.filter_image(net.layers[1])
    assert info["mode"] == "per (filter, input channel)"
    assert (info["rows"], info["cols"]) == (6, 4)
    tile = (viz.DEEP_FILTER_TILE // 3) * 3
    assert img.shape[:2] == viz.grid_size(24, tile, tile, 4)
    # limits: at most MAX_FILTER_ROWS filters x MAX_CHANNEL_COLS input channels
    net = _net("  - conv: {filters: 70, size: 1}\n  - dense: 2\n", (40, 2, 2))
    img, info = viz.filter_image(net.layers[0])
    assert (info["shown_filters"], info["shown_channels"]) == (64, 32)
    assert img.shape[:2] == viz.grid_size(64 * 32, 20, 20, 32)


def test_the_layers_say_which_filters_there_are_to_draw():
    """conv: its weight; local: the filters of its central output position; dense: only on an
    image, each unit as an image; a layer without weights or a dense on a vector: none."""
    net = _net("  - conv: {filters: 2, size: 3}\n  - local: {filters: 3, size: 2}\n"
               "  - dense: 4\n  - relu\n  - dense: 2\n", (1, 7, 7))
    conv, local, dense, _, out = net.layers
    assert viz.filter_layers(net) == [conv, local, dense]
    np.testing.assert_array_equal(viz.filter_weights(conv), conv.params["weight"])
    w = local.params["weight"]                       # (F, OH, OW, C, KH, KW), OH = OW = 4
    np.testing.assert_array_equal(viz.filter_weights(local), w[:, 2, 2])
    assert viz.filter_weights(dense).shape == (4, 3, 4, 4)
    with pytest.raises(ConfigError, match="no filters"):
        viz.filter_weights(out)


def test_show_filters_of_a_named_layer_and_errors(run, tmp_path):
    out = tmp_path / "f.png"
    assert invoke("show", run / "best.npz", "--filters", "--layer", "dense1", "--out", out).exit_code == 0
    size, _ = png_size(out)       # dense on a 4x4x4 input: 4 units x 4 channels of 4x4
    assert size[::-1] == viz.grid_size(16, 20, 20, 4)
    result = invoke("show", run / "best.npz", "--filters", "--layer", "relu1")
    assert result.exit_code == 1 and "no filters" in result.output
    result = invoke("show", run / "best.npz", "--filters", "--layer", "conv9")
    assert result.exit_code == 1 and "did you mean 'conv1'" in result.output
    assert invoke("show", run / "best.npz").exit_code == 2          # neither --filters nor --features


# --- feature maps -------------------------------------------------------------------------------

def test_show_features_writes_one_section_per_image_shaped_layer(run):
    result = invoke("show", run / "best.npz", "--features", 5)
    assert result.exit_code == 0, result.output
    path = run / "features-5.png"
    model = load_for_inference(str(run / "best.npz"), need_data=True)
    from convtrain import data as datamod
    x = datamod.normalize(model.splits.test.x[5:6], model.mean, model.std)
    _, sections = viz.save_feature_maps(model.net, x, str(run / "again.png"), title="t")
    assert [s["name"] for s in sections] == ["input", "conv1", "relu1", "max_pool1"]
    # every map is enlarged to 56 pixels: 8x8 x7, 4x4 x14
    assert [s["scale"] for s in sections] == [7, 7, 7, 14]
    grids = [viz.grid_size(c, 56, 56, viz.FEATURE_COLS) for c in (1, 4, 4, 4)]
    assert [s["height"] for s in sections] == [viz.LABEL_H + h for h, _ in grids]
    width = max(max(w for _, w in grids), 320)
    height = viz.LABEL_H + sum(viz.LABEL_H + h for h, _ in grids)
    assert png_size(path)[0] == (width, height) == (320, 16 + 4 * (16 + 60))


# --- predict ------------------------------------------------------------------------------------

def test_predict_on_saved_test_images_matches_eval(run, tmp_path):
    ckpt = str(run / "best.npz")
    model = load_for_inference(ckpt, need_data=True)
    res = evaluate(model.net, model.splits.test, model.mean, model.std)
    paths = []
    for i in range(6):
        p = tmp_path / f"test-{i}.png"
        Image.fromarray(model.splits.test.x[i, 0]).save(p)
        paths.append(p)
    result = invoke("predict", ckpt, *paths, "--json", "--top", 2)
    assert result.exit_code == 0, result.output
    preds = json.loads(result.output)["predictions"]
    assert [p["top"][0]["class"] for p in preds] == [int(v) for v in res["predictions"][:6]]
    assert all(len(p["top"]) == 2 and p["top"][0]["probability"] >= p["top"][1]["probability"]
               for p in preds)
    result = invoke("predict", ckpt, "--split", "test", "--index", 4, "--index", 0, "--json")
    preds = json.loads(result.output)["predictions"]
    assert [p["source"] for p in preds] == ["test[4]", "test[0]"]
    assert [p["top"][0]["class"] for p in preds] == [int(res["predictions"][4]), int(res["predictions"][0])]
    assert preds[0]["label"] == int(model.splits.test.y[4])
    text = invoke("predict", ckpt, paths[0]).output
    assert text.startswith(str(paths[0])) and "%" in text


def test_predict_errors(run, tmp_path):
    ckpt = run / "best.npz"
    assert invoke("predict", ckpt).exit_code == 2
    result = invoke("predict", ckpt, "--index", 10_000)
    assert result.exit_code == 1 and "out of range" in result.output
    bad = tmp_path / "x.png"
    bad.write_text("not an image")
    result = invoke("predict", ckpt, bad)
    assert result.exit_code == 1 and "not an image" in result.output


def test_load_image_converts_channels_size_and_transparency(tmp_path):
    rgb = np.zeros((10, 20, 3), dtype=np.uint8)
    rgb[:, :, 0] = 255                                   # a red 20x10 picture
    Image.fromarray(rgb).save(tmp_path / "red.png")
    x = load_image(str(tmp_path / "red.png"), (1, 8, 8))
    assert x.shape == (1, 8, 8) and x.dtype == np.uint8
    assert (x[0] == x[0, 4, 4]).all() and x[0, 4, 4] > 50  # padded with its own colour (the
    # bars and the aspect: tests/test_predict_background.py)
    x3 = load_image(str(tmp_path / "red.png"), (3, 4, 8))
    assert x3.shape == (3, 4, 8) and (x3[0] > 200).all() and (x3[1] < 30).all()
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., :3] = 255                                   # white but fully transparent
    Image.fromarray(rgba).save(tmp_path / "t.png")
    assert load_image(str(tmp_path / "t.png"), (1, 8, 8)).max() == 0
    with pytest.raises(DataError, match="channels"):
        load_image(str(tmp_path / "red.png"), (2, 8, 8))


def test_brightness_note_suggests_invert_for_a_light_background():
    dark = np.zeros((1, 8, 8), dtype=np.uint8)
    light = np.full((1, 8, 8), 240, dtype=np.uint8)
    assert brightness_note(dark, [0.29]) is None
    assert "--invert" in brightness_note(light, [0.29])


def test_top_k_orders_and_names():
    top = top_k(np.array([0.1, 0.6, 0.3]), 5, ["a", "b", "c"])
    assert [t["name"] for t in top] == ["b", "c", "a"]
    assert top_k(np.array([0.5, 0.5]), 1, ["a", "b"])[0]["class"] == 0


def test_save_run_filters_draws_the_best_checkpoint(run, tmp_path):
    out = tmp_path / "f.png"
    assert viz.save_run_filters(str(run), str(out)) == str(out)
    assert png_size(out) == ((4 * (63 + 2) + 2, 63 + 4), "RGB")
    assert viz.save_run_filters(str(tmp_path)) is None          # no checkpoint here
