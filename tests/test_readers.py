"""convtrain.data.readers: the READERS table, and the contract every reader meets (RawData in,
one table entry to add a format; splits, statistics and batches need no change)."""
import types

import numpy as np
import pytest

from convtrain import data as D
from convtrain.data import raw, readers
from convtrain.errors import DataError

NS = types.SimpleNamespace


def cfg(dataset, path=None, validation=0, subset=None):
    return NS(dataset=dataset, path=path, layout="nchw", validation=validation, subset=subset)


def test_reader_names_are_the_table_in_order():
    assert readers.reader_names() == ("fashion-mnist", "mnist", "npz", "cifar10", "folder")
    assert D.reader_names() == tuple(D.READERS)
    assert all(callable(r) for r in D.READERS.values())


def test_unknown_dataset_lists_the_registered_names():
    with pytest.raises(DataError) as e:
        D.load(cfg("cifar"), seed=0)
    assert str(e.value) == "unknown dataset 'cifar'; known: fashion-mnist, mnist, npz, cifar10, folder"


def colour_reader(data, input_shape):
    """A throwaway format: 3-channel 4x5 images whose pixels all hold their label (x 40)."""
    rng = np.random.default_rng(0)
    y_train = rng.integers(0, 3, 60)
    y_test = rng.integers(0, 3, 12)

    def pictures(y):
        return raw.images((y * 40).astype(np.uint8)[:, None, None, None]
                          * np.ones((1, 3, 4, 5), np.uint8), "colour")
    return raw.RawData(pictures(y_train), raw.labels(y_train, "colour"), pictures(y_test),
                       raw.labels(y_test, "colour"), source="colour://",
                       classes=["red", "green", "blue"])


def test_a_new_reader_is_one_table_entry(monkeypatch):
    monkeypatch.setitem(readers.READERS, "colour", colour_reader)
    assert "colour" in D.reader_names()
    s = D.load(cfg("colour", validation=10, subset=30), seed=1, input_shape=(3, 4, 5))
    assert s.classes == ["red", "green", "blue"] and s.source == "colour://"
    assert (len(s.train), len(s.val), len(s.test)) == (30, 10, 12)
    assert s.input_shape == (3, 4, 5) and s.train.x.dtype == np.uint8
    np.testing.assert_array_equal(s.train.x[:, 2, 3, 4], s.train.y * 40)
    np.testing.assert_allclose(s.mean, [s.train.y.mean() * 40 / 255] * 3, rtol=1e-6)
    xb = D.normalize(s.train.x, s.mean, s.std, index=np.arange(4))
    assert xb.shape == (4, 3, 4, 5) and xb.dtype == np.float32
    with pytest.raises(DataError, match=r"colour://: the config's input \(1, 4, 5\) differs"):
        D.load(cfg("colour"), seed=1, input_shape=(1, 4, 5))


def test_the_shared_checks_apply_to_a_new_reader(monkeypatch):
    def too_many_labels(data, input_shape):
        r = colour_reader(data, input_shape)
        r.classes = ["red", "green"]
        return r
    monkeypatch.setitem(readers.READERS, "colour", too_many_labels)
    with pytest.raises(DataError, match=r"colour://: label 2 is out of range for 2 classes"):
        D.load(cfg("colour"), seed=0)
    with pytest.raises(DataError, match="colour: labels must be integers"):
        raw.labels(np.zeros(3, np.float32), "colour")
    with pytest.raises(DataError, match="colour: images have 2 dimensions"):
        raw.images(np.zeros((3, 4), np.uint8), "colour")


@pytest.mark.parametrize("name", ["fashion-mnist", "mnist", "npz"])
def test_every_reader_returns_raw_data(tmp_path, monkeypatch, name):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    y = np.arange(6) % 10
    if name == "npz":
        path = tmp_path / "d.npz"
        np.savez(path, x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    else:
        from test_data import make_idx_folder
        make_idx_folder(tmp_path / "f", ntrain=6, ntest=2)
        path = tmp_path / "f"
    got = D.READERS[name](cfg(name, str(path)), (1, 28, 28))
    assert isinstance(got, D.RawData)
    assert got.x_train.shape == (6, 1, 28, 28) and got.y_train.dtype == np.int64
    assert got.x_test.shape == (2, 1, 28, 28) and got.source == str(path)
    assert got.classes is None if name == "npz" else len(got.classes) == 10


def test_the_image_readers_return_raw_data(tmp_path):
    """cifar10 and folder, on the fixtures the scripts write: the same contract."""
    from fixture_scripts import write_cifar10, write_image_folder
    c = D.READERS["cifar10"](cfg("cifar10", write_cifar10(tmp_path / "c", per_class=2)),
                             (3, 32, 32))
    f = D.READERS["folder"](cfg("folder", write_image_folder(tmp_path / "f", per_class=2)),
                            (1, 12, 10))
    assert isinstance(c, D.RawData) and isinstance(f, D.RawData)
    assert c.x_train.shape == (20, 3, 32, 32) and c.x_test.shape == (10, 3, 32, 32)
    assert f.x_train.shape == (8, 1, 12, 10) and f.x_test.shape == (4, 1, 12, 10)
    for got in (c, f):
        assert got.x_train.dtype == np.uint8 and got.y_train.dtype == np.int64
        assert len(got.classes) == int(got.y_train.max()) + 1
