"""A hostile user: malformed configs, data, checkpoints and command lines must end in one clear
`Error:` line with exit status 1 (2 for command-line usage), never a traceback, and must never
destroy earlier work (runs, checkpoints, the user's own config)."""
import hashlib
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import images, write_config, write_dataset

from convtrain.train import checkpoint as ckpt
from convtrain.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def fails(res, code=1, *needles):
    """The result is exit `code` with one `Error:` line holding every needle, and no traceback."""
    out = res.output
    assert res.exit_code == code, out
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, out
    for needle in needles:
        assert needle in errors[0], out
    return errors[0]


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One trained synthetic run: (folder, config, run folder)."""
    folder = tmp_path_factory.mktemp("malformed")
    cfg = write_config(folder, epochs=1)
    out = folder / "run"
    res = run("fit", cfg, "--out", out, "-q")
    assert res.exit_code == 0, res.output
    return folder, cfg, out


def variant(trained, name, meta=None, arrays=None, drop=()):
    """A copy of the run's best.npz with metadata entries or arrays replaced."""
    folder, _, out = trained
    with np.load(out / "best.npz") as z:
        a = {k: z[k] for k in z.files if k not in drop}
    m = json.loads(a["__meta__"].tobytes())
    m.update(meta or {})
    a["__meta__"] = np.frombuffer(json.dumps(m).encode(), np.uint8)
    a.update(arrays or {})
    path = folder / f"{name}.npz"
    np.savez(path, **a)
    return path


# --- configs: every mistake is `file:line: key: message` ----------------------------------------

HEAD = "input: [1, 8, 8]\n"
CONFIGS = [
    ("name: [unclosed\n", "invalid YAML"),
    ("name: x\n\tseed: 1\n", "tab"),
    ("", "empty"),
    ("- a\n- b\n", "must be a mapping"),
    ("name: a\nname: b\nmodel: [dense: 4]\n", "duplicate key"),
    ("nmae: a\nmodel: [dense: 4]\n", "did you mean 'name'"),
    ("seed: -1\nmodel: [dense: 4]\n", "seed"),
    ("seed: 99999999999999999999999\nmodel: [dense: 4]\n", "too large"),
    ("optim: {lr: .nan}\nmodel: [dense: 4]\n", "optim.lr"),
    ("optim: {momentum: 1}\nmodel: [dense: 4]\n", "optim.momentum"),
    ("train: {epochs: 0}\nmodel: [dense: 4]\n", "train.epochs"),
    ("train: {batch_size: 1.5}\nmodel: [dense: 4]\n", "train.batch_size"),
    ("data: {dataset: cifar}\nmodel: [dense: 4]\n", "data.dataset"),
    ("name: a/b\nmodel: [dense: 4]\n", "name"),
    ("name: " + "x" * 300 + "\nmodel: [dense: 4]\n", "at most 200 bytes"),
    ("model: [dense: 4]\ninput: [0, 28, 28]\n", "input"),
    ("model: [dense: 4]\ninput: [28, 28]\n", "input"),
    ("model: [dense: 4]\ninput: [1, 1, 28, 28]\n", "input"),
    ("model: !!python/object/apply:os.system ['true']\n", "unsupported YAML tag"),
    (("a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
      "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nmodel: *e\n"), "too large"),
    ("model: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    ("model: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n", "nested too deeply"),
    ("model: []\n", "non-empty list"),
    ("model: [convolution: {filters: 4}, dense: 4]\n", "unknown layer type"),
    ("model: [conv: {filter: 4}, dense: 4]\n", "did you mean 'filters'"),
    ("model: [conv: {filters: 0}, dense: 4]\n", "conv.filters"),
    ("model: [conv: {filters: 4, size: 9}, dense: 4]\n", "larger than the padded input"),
    ("model: [conv: {filters: 4, size: 3, stride: 2}, dense: 4]\n", "does not fit"),
    ("model: [max_pool: 16, dense: 4]\n", "larger than"),
    ("model: [max_pool: 3, dense: 4]\n", "does not fit"),
    ("model: [dense: 10, conv: {filters: 4}, dense: 4]\n", "needs an image input"),
    ("model: [dense: 10, max_pool: 2, dense: 4]\n", "needs an image input"),
    ("model: [conv: {filters: 5, size: 3, pad: 1}, channel_pool: 2, dense: 4]\n", "does not divide"),
    ("model: [lcn: {size: 4}, dense: 4]\n", "must be odd"),
    ("model: [dropout: 1.0, dense: 4]\n", "dropout.rate"),
    ("model: [dense: {units: 4, init: xavier}]\n", "dense.init"),
    ("model: [dense: {units: 6, name: a}, dense: {units: 4, name: a}]\n", "already used"),
    ("model:\n  - repeat: 0\n    layers: [relu]\n  - dense: 4\n", "repeat"),
    ("model:\n  - repeat: 1000000000\n    layers: [relu]\n  - dense: 4\n", "repeat"),
    (("model:\n  - repeat: 1000\n    layers:\n      - repeat: 1000\n        layers: [relu]\n"
      "  - dense: 4\n"), "more than 1000 layers"),
    (("model:\n  - repeat: 2\n    layers:\n      - conv: {filters: [4, 5, 6], size: 3, pad: 1}\n"
      "  - dense: 4\n"), "needs exactly 2 values"),
    ("model:\n  - repeat: 2\n  - dense: 4\n", "layers: is required"),
]


@pytest.mark.parametrize("text, needle", CONFIGS)
def test_malformed_configs(tmp_path, text, needle):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(HEAD + text if "model:" in text and "input:" not in text else text)
    fails(run("summary", cfg), 1, str(cfg), needle)


@pytest.mark.parametrize("content, needle", [
    (os.urandom(300).replace(b"\0", b"") + b"\0", "binary data"),
    ("name: caf\xe9\nmodel: [dense: 4]\n".encode("latin-1"), "UTF-8"),
    ("model: [dense: 4]\n".encode("utf-16"), "UTF-16"),
])
def test_config_files_that_are_not_text(tmp_path, content, needle):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(content)
    fails(run("summary", cfg), 1, needle)


def test_summary_of_a_giant_net_allocates_nothing(tmp_path):
    cfg = tmp_path / "giant.yaml"
    cfg.write_text("input: [3, 200, 200]\nmodel:\n  - conv: {filters: 512, size: 3, pad: same}\n"
                   "  - dense: 100000\n  - dense: 100000\n  - dense: 10\n")
    res = run("summary", cfg, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["total_params"] > 2 * 10**12


# --- data sets ----------------------------------------------------------------------------------

def npz_config(tmp_path, overrides, model="[conv: {filters: 4, size: 3, pad: 1}, relu, max_pool: 2, "
                                         "dense: 4]"):
    rng = np.random.default_rng(0)
    xtr, ytr = images(160, rng)
    xte, yte = images(32, rng)
    arrays = {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}
    arrays.update(overrides)
    np.savez(tmp_path / "d.npz", **arrays)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"input: [1, 8, 8]\ndata: {{dataset: npz, path: d.npz, validation: 32}}\n"
                   f"train: {{epochs: 1}}\nmodel: {model}\n")
    return cfg


@pytest.mark.parametrize("overrides, needle", [
    ({"y_train": np.full(160, 2**40, np.int64)}, "is not a class index"),      # was: OOM kill
    ({"y_train": np.full(160, 2**64 - 1, np.uint64)}, "is not a class index"),  # was: label -1
    ({"y_test": np.full(32, 7, np.int64)}, "labels up to 7"),     # was: trained, eval crashed
    ({"y_train": np.full(160, -1, np.int64)}, "negative label"),
    ({"y_train": np.zeros(160, np.float32)}, "must be integers"),
    ({"x_train": np.zeros((160, 64), np.uint8)}, "dimensions"),
    ({"x_train": np.full((160, 8, 8), np.nan, np.float32)}, "NaN"),
    ({"x_train": np.zeros((160, 8, 8), np.complex64)}, "dtype"),
    ({"x_train": np.zeros((160, 1, 1, 8, 8), np.uint8)}, "dimensions"),
    ({"y_train": np.zeros(100, np.uint8)}, "holds 160 examples"),
    ({"x_test": np.zeros((32, 9, 9), np.uint8)}, "test images"),
    ({"x_train": np.zeros((160, 8, 8, 1), np.uint8), "x_test": np.zeros((32, 8, 8, 1), np.uint8)},
     "channels-last"),
])
def test_malformed_npz_data(tmp_path, overrides, needle):
    cfg = npz_config(tmp_path, overrides)
    fails(run("fit", cfg, "--out", tmp_path / "r"), 1, needle)
    assert not (tmp_path / "r").exists()


def test_pickled_data_is_never_loaded(tmp_path):
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    cfg = npz_config(tmp_path, {})
    (tmp_path / "d.npz").write_bytes(pickle.dumps(Evil()))
    fails(run("fit", cfg, "--out", tmp_path / "r"), 1, "pickle")
    obj = np.empty(160, dtype=object)
    obj[0] = Evil()
    np.savez(tmp_path / "d.npz", x_train=obj, y_train=np.zeros(160), x_test=obj, y_test=obj)
    fails(run("fit", cfg, "--out", tmp_path / "r"), 1, "object array")
    assert not marker.exists()


def test_truncated_idx_files(tmp_path):
    folder = tmp_path / "idx"
    folder.mkdir()
    header = bytes([0, 0, 8, 3]) + (100).to_bytes(4, "big") + (8).to_bytes(4, "big") * 2
    (folder / "train-images-idx3-ubyte").write_bytes(header + bytes(100 * 64 // 2))
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / name).write_bytes(b"\0\0\x08\x01")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{dataset: mnist, path: {folder}}}\nmodel: [dense: 10]\n")
    fails(run("fit", cfg, "--out", tmp_path / "r"), 1, "train-images-idx3-ubyte", "truncated")


def test_rgb_non_square_images_train_end_to_end(tmp_path):
    rng = np.random.default_rng(0)

    def rgb(n):
        y = rng.integers(0, 3, n)
        x = rng.integers(0, 50, (n, 3, 20, 24)).astype(np.uint8)
        for i, k in enumerate(y):
            x[i, k, 5:15, 6:18] = 220
        return x, y

    (xtr, ytr), (xte, yte) = rgb(160), rgb(40)
    np.savez(tmp_path / "rgb.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    cfg = tmp_path / "rgb.yaml"
    cfg.write_text("input: [3, 20, 24]\ndata: {dataset: npz, path: rgb.npz, validation: 32}\n"
                   "train: {epochs: 2, batch_size: 16}\noptim: {lr: 0.02}\nmodel:\n"
                   "  - conv: {filters: 4, size: 3, pad: 1}\n  - relu\n  - max_pool: 2\n"
                   "  - dense: 3\n")
    res = run("summary", cfg, "--json")
    assert res.exit_code == 0 and json.loads(res.output)["layers"][0]["output_shape"] == [4, 20, 24]
    res = run("fit", cfg, "--out", tmp_path / "r", "-q")
    assert res.exit_code == 0, res.output
    res = run("eval", tmp_path / "r" / "best.npz", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["n"] == 40


# --- checkpoints --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, meta, needle", [
    ("mean_nested", {"mean": [[0.1, 0.2]]}, "normalisation"),
    ("mean_nan", {"mean": [float("nan")]}, "finite"),
    ("std_negative", {"std": [-1.0]}, "std >= 0"),
    ("shape_negative", {"input_shape": [1, -8, 8]}, "input shape"),
    ("shape_bool", {"input_shape": [True, 8, 8]}, "malformed metadata"),
    ("classes_dict", {"classes": {"a": 1}}, "malformed metadata"),
    ("step_negative", {"step": -5}, "negative"),
    ("config_invalid", {"config": "model: [{dense: 0}]\n"}, "stored config is invalid"),
])
def test_checkpoint_metadata_for_inference(trained, name, meta, needle):
    path = variant(trained, name, meta)
    fails(run("eval", path), 1, str(path), needle)


@pytest.mark.parametrize("name, meta", [
    ("guard_str", {"guard": {"recent": "x"}}),
    ("guard_list", {"guard": [1, 2]}),
    ("lr_scale_str", {"lr_scale": "big"}),
    ("lr_scale_negative", {"lr_scale": -1}),
    ("best_str", {"best_val_error": "x"}),
    ("epoch_sums_str", {"epoch_sums": {"loss": "x"}}),
    ("best_epoch_str", {"best_epoch": "one"}),
])
def test_checkpoint_training_state_for_resume(trained, tmp_path, name, meta):
    _, cfg, _ = trained
    path = variant(trained, name, meta)
    fails(run("fit", cfg, "--out", tmp_path / "r", "--resume", path), 1, str(path),
          "malformed metadata")


def test_checkpoints_that_are_not_checkpoints(trained, tmp_path):
    _, cfg, out = trained
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    cases = {"pickle.npz": pickle.dumps(Evil()), "empty.npz": b"", "random.npz": os.urandom(999),
             "cut.npz": (out / "best.npz").read_bytes()[:500]}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    np.save(tmp_path / "array.npy", np.zeros(3))
    obj = np.empty(1, dtype=object)
    obj[0] = Evil()
    np.savez(tmp_path / "object.npz", __meta__=np.frombuffer(b"{}", np.uint8), **{"param/w": obj})
    for name in [*cases, "array.npy", "object.npz"]:
        fails(run("eval", tmp_path / name), 1, name)
        fails(run("predict", tmp_path / name, "--index", "0"), 1, name)
        fails(run("show", tmp_path / name, "--filters"), 1, name)
        fails(run("fit", cfg, "--out", tmp_path / "r", "--resume", tmp_path / name), 1, name)
    assert not marker.exists()


def test_non_finite_and_misshapen_weights(trained):
    nan = variant(trained, "nan", arrays={"param/conv1.weight": np.full((4, 1, 3, 3), np.nan)})
    fails(run("eval", nan), 1, "non-finite")
    bad = variant(trained, "shape", arrays={"param/conv1.weight": np.zeros((2, 2))})
    fails(run("eval", bad), 1, "conv1.weight")


def test_a_forged_huge_entry_is_refused(trained):
    folder, _, out = trained
    forged = folder / "forged.npz"
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f4", "fortran_order": False, "shape": (100000, 100000, 10)})
    with zipfile.ZipFile(out / "best.npz") as zin, zipfile.ZipFile(forged, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "param/conv1.weight.npy":
                data = buf.getvalue() + bytes(64)
            zout.writestr(info.filename, data)
    fails(run("eval", forged), 1, str(forged))


def test_labels_beyond_the_model_outputs_at_eval(trained, tmp_path):
    """A data set whose test labels the model cannot predict: an error, not an IndexError."""
    rng = np.random.default_rng(0)
    x, _ = images(160, rng)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(160) % 4, x_test=x,
             y_test=np.full(160, 6))
    fails(run("eval", trained[2] / "best.npz", "--data", tmp_path / "d.npz"), 1,
          "predicts 4 classes")


def test_a_model_with_more_outputs_than_classes_evaluates(tmp_path):
    cfg = write_config(tmp_path, epochs=1)
    cfg.write_text(cfg.read_text().replace("dense: 4", "dense: 10"))
    assert run("fit", cfg, "--out", tmp_path / "r", "-q").exit_code == 0
    res = run("eval", tmp_path / "r" / "best.npz", "--json")
    assert res.exit_code == 0, res.output
    assert np.array(json.loads(res.output)["confusion"]).shape == (10, 10)


def test_missing_data_of_a_checkpoint_suggests_data_option(trained):
    path = variant(trained, "moved", {"config": json.loads(
        np.load(trained[2] / "best.npz")["__meta__"].tobytes())["config"].replace(
        str(trained[0] / "synth.npz"), "/nonexistent/synth.npz")})
    fails(run("eval", path), 1, "/nonexistent/synth.npz", "--data")


def test_empty_splits_say_which(trained, tmp_path):
    _, cfg, _ = trained
    v0 = tmp_path / "v0.yaml"
    v0.write_text(cfg.read_text().replace("validation: 64", "validation: 0"))
    assert run("fit", v0, "--out", tmp_path / "r", "-q").exit_code == 0
    fails(run("eval", tmp_path / "r" / "best.npz", "--split", "val"), 1, "val split",
          "validation is 0")
    rng = np.random.default_rng(0)
    x, y = images(64, rng)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:0], y_test=y[:0])
    err = fails(run("eval", tmp_path / "r" / "best.npz", "--data", tmp_path / "d.npz"), 1,
                "test split")
    assert "validation" not in err


# --- command lines ------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("fit", "{cfg}", "--lr", "nan"),
    ("fit", "{cfg}", "--lr", "inf"),
    ("fit", "{cfg}", "--out", ""),
    ("fit", "{cfg}", "--out", "{tmp}/x", "--resume", ""),
    ("fit", "{cfg}", "--out", "{run}", "--resume", "--fresh"),
    ("fit", "{cfg}", "--epochs", "0"),
    ("gradcheck", "{cfg}", "--tol", "nan"),
    ("gradcheck", "{cfg}", "--batch", "0"),
    ("lr-search", "{cfg}", "--start", "inf"),          # was: halving inf forever
    ("lr-search", "{cfg}", "--min", "nan"),
    ("lr-search", "{cfg}", "--write", "{cfg}"),         # would overwrite the config itself
    ("lr-search", "{cfg}", "--write", "{tmp}/no/such/folder.yaml"),
    ("show", "{run}/best.npz"),
    ("predict", "{run}/best.npz", "--top", "0", "--index", "0"),
])
def test_usage_errors(trained, tmp_path, args):
    _, cfg, out = trained
    before = md5(cfg)
    args = [a.format(cfg=cfg, tmp=tmp_path, run=out) for a in args]
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "Error:" in res.output
    assert md5(cfg) == before


@pytest.mark.parametrize("option, needle", [("--seed", "override seed"),
                                            ("--epochs", "override epochs")])
def test_numbers_too_large_for_the_stored_config(trained, tmp_path, option, needle):
    _, cfg, _ = trained
    fails(run("fit", cfg, option, str(2**70), "--out", tmp_path / "r"), 1, needle, "too large")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, needle", [
    (("fit", "{cfg}", "--out", "{cfg}/sub"), "Not a directory"),
    (("fit", "{cfg}", "--out", "/proc/convtrain-test"), "/proc/convtrain-test"),
    (("plot", "{run}", "--out", "{cfg}/x.png"), "x.png"),
    (("show", "{run}/best.npz", "--filters", "--out", "{cfg}/x.png"), "x.png"),
])
def test_unwritable_outputs(trained, args, needle):
    _, cfg, out = trained
    fails(run(*[a.format(cfg=cfg, run=out) for a in args]), 1, needle)


def test_pictures_never_overwrite_a_checkpoint(trained):
    _, _, out = trained
    before = md5(out / "best.npz")
    fails(run("show", out / "best.npz", "--filters", "--out", out / "best.npz"), 1, "not a PNG")
    fails(run("plot", out, "--out", out / "best.npz"), 1, "not a PNG")
    assert md5(out / "best.npz") == before


def test_plot_writes_a_png_whatever_the_extension(trained, tmp_path):
    res = run("plot", trained[2], "--out", tmp_path / "curves.pdf")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "curves.pdf").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("lines, needle", [
    (['{"epoch": NaN, "step": 1}'], "no numeric epoch"),
    (['{"epoch": 1, "step": 1e999}'], "no numeric step"),
    (['{"epoch": 1, "step": 1, "train_loss": 1' + "0" * 400 + "}"], "train_loss"),
    (["{not json"], "not JSON"),
    (['{"event": "divergence", "step": "x"}'], "without a step"),
    ([""], "no epoch rows"),
])
def test_corrupt_metrics(tmp_path, lines, needle):
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    fails(run("plot", tmp_path), 1, "metrics.jsonl", needle)


def test_resuming_another_run_into_an_existing_run_is_refused(trained, tmp_path):
    _, cfg, out = trained
    other = tmp_path / "other"
    assert run("fit", cfg, "--out", other, "-q", "--seed", "3").exit_code == 0
    before = md5(out / "best.npz"), md5(out / "metrics.jsonl")
    fails(run("fit", cfg, "--out", out, "--resume", other / "last.npz"), 1, "already holds")
    assert (md5(out / "best.npz"), md5(out / "metrics.jsonl")) == before


def test_fresh_moves_only_the_runs_files_and_never_clobbers(tmp_path, monkeypatch):
    cfg = write_config(tmp_path, epochs=1)       # the data set lives in the run folder too
    (tmp_path / "notes.txt").write_text("mine")
    assert run("fit", cfg, "--out", tmp_path, "-q").exit_code == 0
    first = md5(tmp_path / "last.npz")
    monkeypatch.setattr("time.strftime", lambda fmt, *a: "previous-same-second")
    assert run("fit", cfg, "--out", tmp_path, "--fresh", "-q", "--seed", "1").exit_code == 0
    assert run("fit", cfg, "--out", tmp_path, "--fresh", "-q", "--seed", "2").exit_code == 0
    kept = sorted(p.parent.name for p in tmp_path.glob("previous-*/last.npz"))
    assert kept == ["previous-same-second", "previous-same-second-2"]
    assert md5(tmp_path / "previous-same-second" / "last.npz") == first
    assert (tmp_path / "notes.txt").exists() and (tmp_path / "synth.npz").exists()


def test_fit_never_overwrites_the_users_config(tmp_path):
    folder = tmp_path / "exp"
    folder.mkdir()
    write_dataset(folder)
    text = "# my comments\n" + write_config(folder).read_text()
    (folder / "config.yaml").write_text(text)
    fails(run("fit", folder / "config.yaml", "--out", folder), 1, "would overwrite")
    assert (folder / "config.yaml").read_text() == text


def test_resuming_a_finished_checkpoint_into_a_new_folder(trained, tmp_path):
    _, cfg, _ = trained
    done = variant(trained, "done", {"step": 10**6, "epoch": 10**6})
    res = run("fit", cfg, "--out", tmp_path / "r", "--resume", done)
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output and "Error" not in res.output


def test_doctor_reports_config_errors_once(trained, tmp_path):
    _, cfg, _ = trained
    bad = tmp_path / "bad.yaml"
    bad.write_text(cfg.read_text().replace("max_pool: 2", "max_pool: 3"))
    fails(run("doctor", bad), 1, "max_pool")
    few = tmp_path / "few.yaml"
    few.write_text(cfg.read_text().replace("dense: 4", "dense: 2"))
    fails(run("doctor", few), 1, "labels up to 3")


def test_predict_inputs(trained, tmp_path):
    _, _, out = trained
    (tmp_path / "text.png").write_text("hello")
    fails(run("predict", out / "best.npz", tmp_path / "text.png"), 1, "not an image")
    fails(run("predict", out / "best.npz", tmp_path / "missing.png"), 1, "no such file")
    fails(run("predict", out / "best.npz", "--index", "100000"), 1, "out of range")
    fails(run("show", out / "best.npz", "--filters", "--layer", "conv9"), 1, "conv1")


def test_predict_an_image_with_a_vector_model(tmp_path):
    from PIL import Image

    from convtrain import config as configmod
    from convtrain.nn.network import Network
    text = "input: [64]\nmodel: [dense: 4]\n"
    net = Network.build(configmod.loads(text).model, (64,))
    ckpt.save(str(tmp_path / "v.npz"), state=net.state_dict(), meta={
        "config": text, "epoch": 0, "step": 0, "input_shape": [64], "mean": [0.0] * 64,
        "std": [1.0] * 64, "classes": list("abcd")})
    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    fails(run("predict", tmp_path / "v.npz", tmp_path / "a.png"), 1, "vectors of 64")
