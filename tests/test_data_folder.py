"""dataset: folder, one sub-folder of images per class: listing, conversion to the input shape,
every malformed case, the decoded-image cache, and `convtrain fit` / `eval` of cifar-like's
architecture on the fixture the script writes."""
import json
import os
import types
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from convtrain import config as C
from convtrain import data as D
from convtrain.cli import main
from convtrain.data import cache, folder
from convtrain.errors import DataError

from fixture_scripts import write_image_folder
from test_data_cifar10 import cifar_like_config

CLASSES = ["hstripes", "ring", "square", "vstripes"]


def cfg(path, validation=0, cache=False):
    return types.SimpleNamespace(dataset="folder", path=None if path is None else str(path),
                                 layout="nchw", validation=validation, subset=None, cache=cache)


@pytest.fixture
def images(tmp_path):
    return Path(write_image_folder(tmp_path / "images", per_class=5, seed=2))


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "convtrain" / "data"


def read(path, shape=(3, 32, 32), **kw):
    return folder.read_folder(cfg(path, **kw), shape)


def error(path, shape=(3, 32, 32)) -> str:
    with pytest.raises(DataError) as e:
        read(path, shape)
    return str(e.value)


def save(path: Path, array, mode=None):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8), mode).save(path)


def test_reads_train_and_test_with_sorted_classes(images):
    s = D.load(cfg(images, validation=4), seed=0, input_shape=(3, 32, 32))
    assert s.classes == CLASSES and s.source == str(images)
    assert (len(s.train), len(s.val), len(s.test)) == (16, 4, 8)   # README, .DS_Store skipped
    assert s.train.x.shape[1:] == (3, 32, 32) and s.train.x.dtype == np.uint8
    assert np.bincount(np.concatenate([s.train.y, s.val.y])).tolist() == [5] * 4
    assert np.bincount(s.test.y).tolist() == [2] * 4
    gray = D.load(cfg(images), seed=0, input_shape=(1, 20, 16))
    assert gray.train.x.shape == (20, 1, 20, 16)


def test_without_train_and_test_the_whole_folder_is_the_training_set(images):
    raw = read(images / "train")
    assert raw.classes == CLASSES and raw.x_train.shape == (20, 3, 32, 32)
    assert raw.x_test.shape == (0, 3, 32, 32) and raw.y_test.shape == (0,)
    assert read(images, shape=(3, 8, 8)).x_test.shape == (8, 3, 8, 8)
    os.rename(images / "test", images / "held-out")       # train/ without test/
    assert read(images).x_test.shape == (0, 3, 32, 32)


def test_files_are_labelled_in_sorted_order_including_sub_folders(tmp_path):
    for name, value in [("b/2.png", 20), ("b/1.png", 10), ("a/x/9.png", 90), ("a/5.PNG", 50),
                        ("a/.hidden.png", 1), (".git/c.png", 1)]:
        save(tmp_path / name, np.full((4, 4), value))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    raw = read(tmp_path, shape=(1, 4, 4))
    assert raw.classes == ["a", "b"] and raw.y_train.tolist() == [0, 0, 1, 1]
    assert raw.x_train[:, 0, 0, 0].tolist() == [50, 90, 10, 20]


def test_conversion_modes_alpha_and_letterbox(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:2, :, 3] = 255                                    # top rows opaque, bottom transparent
    save(tmp_path / "k" / "rgba.png", rgba, "RGBA")
    save(tmp_path / "k" / "wide.png", np.full((4, 8, 3), 255))      # 8 wide, 4 high
    save(tmp_path / "k" / "gray.png", np.full((4, 4), 77))
    raw = read(tmp_path, shape=(3, 4, 4))
    gray, rgba_x, wide = raw.x_train                        # sorted: gray, rgba, wide
    assert (gray == 77).all()                               # L -> RGB: the value in every plane
    assert (rgba_x[:, :2] == 200).all() and (rgba_x[:, 2:] == 0).all()   # alpha onto black
    assert (wide == 255).all()               # centred, the bars in its own background colour
    one = read(tmp_path, shape=(1, 4, 4)).x_train
    assert one.shape == (3, 1, 4, 4) and (one[0] == 77).all()
    assert (one[1, 0, :2] == 200).all() and (one[1, 0, 2:] == 0).all()


def test_images_match_what_predict_feeds_the_model(images):
    """A model trained on the folder sees each file the way `convtrain predict` shows it one."""
    from convtrain.tools.predict import load_image
    raw = read(images, shape=(3, 24, 30))
    files = sorted((images / "train").glob("*/*.*"))
    files = [f for f in files if f.suffix != ".txt" and not f.name.startswith(".")]
    assert len(files) == len(raw.x_train)
    for f, x in zip(files, raw.x_train):
        np.testing.assert_array_equal(x, load_image(str(f), (3, 24, 30)), err_msg=str(f))


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, b"GIF89a junk",
                                     "truncate"])
def test_a_corrupt_image_is_named(images, content):
    p = images / "train" / "ring" / "ring-001.png"
    p.write_bytes(p.read_bytes()[:200] if content == "truncate" else content)
    msg = error(images)
    assert msg.startswith(f"{p}: corrupt, truncated or not an image Pillow can read")


def test_an_empty_class_folder_is_named(images):
    empty = images / "train" / "zebra"
    empty.mkdir()
    (empty / "README").write_text("nothing")
    assert error(images).startswith(f"{empty}: no images in this class folder")


def test_train_and_test_must_have_the_same_classes(images):
    os.rename(images / "test" / "ring", images / "test" / "circle")
    assert error(images) == (f"{images}: train/ and test/ must hold the same class folders; "
                             f"only in train/: ring; only in test/: circle")


def test_folders_without_classes_and_bad_paths(tmp_path):
    (tmp_path / "flat.png").write_bytes(b"")
    assert error(tmp_path) == (f"{tmp_path}: no class folders; dataset folder reads one "
                               f"sub-folder of images per class")
    (tmp_path / "test").mkdir()
    assert error(tmp_path) == f"{tmp_path}: has a test/ folder but no train/ folder"
    assert error(tmp_path / "nope").startswith(f"{tmp_path / 'nope'}: does not exist")
    assert error(tmp_path / "flat.png").startswith(f"{tmp_path / 'flat.png'}: is a file")
    assert error(None).startswith("dataset folder needs data.path")


def test_the_input_shape_is_required_with_1_or_3_channels(images):
    assert error(images, None) == (f"{images}: dataset folder needs the config's input: "
                                   f"[C, H, W] (the size every image is scaled to; C is 1 for "
                                   f"grayscale, 3 for RGB)")
    for shape in [(2, 8, 8), (64,)]:
        assert "expected [1, H, W] or [3, H, W]" in error(images, shape)


# --- the cache ---------------------------------------------------------------------------------

def no_image_opens(monkeypatch):
    from PIL import Image

    def refuse(*a, **k):
        raise AssertionError("an image was decoded")
    monkeypatch.setattr(Image, "open", refuse)


def test_the_cache_is_used_on_the_second_load(images, cache_home, monkeypatch):
    first = read(images, cache=True)
    files = list(cache_home.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and files[0].name.startswith("images-")
    with np.load(files[0], allow_pickle=False) as z:     # plain arrays, no pickle
        assert z["x_train"].dtype == np.uint8 and z["x_train"].shape == (20, 3, 32, 32)
    with monkeypatch.context() as m:
        no_image_opens(m)
        second = read(images, cache=True)
        with pytest.raises(AssertionError, match="decoded"):
            read(images, cache=False)                      # without cache: decodes
    for a, b in zip((first.x_train, first.y_train, first.x_test, first.y_test),
                    (second.x_train, second.y_train, second.x_test, second.y_test)):
        np.testing.assert_array_equal(a, b)
    assert second.classes == CLASSES


def test_the_cache_is_rebuilt_when_a_file_or_the_shape_changes(images, cache_home, monkeypatch):
    read(images, cache=True)
    p = images / "train" / "square" / "square-000.png"
    save(p, np.full((32, 32), 255))
    os.utime(p, ns=(1, 1))                               # a new mtime, whatever the clock says
    got = read(images, cache=True)
    assert (got.x_train[10] == 255).all()                  # square-000: the third class's first
    with monkeypatch.context() as m:
        no_image_opens(m)
        read(images, cache=True)
    small = read(images, shape=(1, 8, 8), cache=True)
    assert small.x_train.shape == (20, 1, 8, 8) and len(list(cache_home.iterdir())) == 2
    (images / "train" / "ring" / "ring-000.png").unlink()
    assert read(images, cache=True).x_train.shape == (19, 3, 32, 32)
    assert not [f for f in cache_home.iterdir() if f.suffix != ".npz"]   # no temporary left


def test_a_broken_cache_file_is_rebuilt(images, cache_home):
    first = read(images, cache=True)
    (path,) = cache_home.iterdir()
    path.write_bytes(b"PK\x03\x04 not really")
    np.testing.assert_array_equal(read(images, cache=True).x_train, first.x_train)
    assert cache.load(str(path), "another fingerprint") is None


def test_an_unwritable_cache_folder_is_a_clear_error(images, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    msg = error_with_cache(images)
    assert "cannot write the data cache" in msg and "data.cache: false" in msg


def error_with_cache(path) -> str:
    with pytest.raises(DataError) as e:
        read(path, cache=True)
    return str(e.value)


def test_cache_is_a_checked_config_key(tmp_path):
    cfg_ = C.loads("input: [3, 8, 8]\ndata: {dataset: folder, path: imgs, cache: true}\n"
                   "model: [dense: 2]\n", str(tmp_path / "c.yaml"))
    assert cfg_.data.cache is True and cfg_.data.path == str(tmp_path / "imgs")
    assert C.loads(C.dump(cfg_)).data == cfg_.data
    with pytest.raises(C.ConfigError, match=r"c.yaml:1: data.cache: must be true or false, got 1"):
        C.loads("data: {cache: 1}\nmodel: [dense: 2]\n", str(tmp_path / "c.yaml"))


def test_the_script_writes_the_fixture(tmp_path, capsys):
    import make_image_folder_fixture
    make_image_folder_fixture.main([str(tmp_path / "o"), "--per-class", "5"])
    assert "wrote 4 classes of 5 training images" in capsys.readouterr().out
    from PIL import Image
    seen = set()
    for f in (tmp_path / "o" / "train").glob("*/*.*"):
        if not f.name.startswith("."):
            with Image.open(f) as im:
                seen.add((im.mode, im.size, im.format))
    assert {m for m, _, _ in seen} == {"RGB", "L", "RGBA"}
    assert any(w != h for _, (w, h), _ in seen) and {f for *_, f in seen} == {"PNG", "JPEG"}


# --- the done-when: fit trains cifar-like on it, eval reads the result ---------------

def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_fit_trains_cifar_like_on_an_image_folder_then_eval(tmp_path, cache_home):
    write_image_folder(tmp_path / "images", per_class=8, seed=1)
    config = cifar_like_config(tmp_path, {"dataset": "folder", "path": "images",
                                          "validation": 8, "cache": True})
    res = run("fit", config, "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output
    assert len(list(cache_home.iterdir())) == 1
    res = run("eval", tmp_path / "run" / "best.npz", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["n"] == 16 and list(out["per_class"])[:4] == CLASSES     # dense: 10 outputs


def test_eval_of_a_run_on_a_folder_without_test_set_says_so(tmp_path):
    write_image_folder(tmp_path / "images", per_class=4, seed=1)
    config = cifar_like_config(tmp_path, {"dataset": "folder", "path": "images/train",
                                          "validation": 4})
    res = run("fit", config, "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output
    res = run("eval", tmp_path / "run" / "best.npz")
    assert res.exit_code == 1
    assert "the test split of its data set is empty" in res.output
    assert "--split val" in res.output and "Traceback" not in res.output
    res = run("eval", tmp_path / "run" / "best.npz", "--split", "val", "--json")
    assert res.exit_code == 0 and json.loads(res.output)["n"] == 4


def test_an_interrupted_cache_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache.save(str(tmp_path / "c" / "x.npz"), {"x": np.zeros(3)}, "digest")
    assert list((tmp_path / "c").iterdir()) == []
