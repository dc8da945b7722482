"""convtrain.data: IDX and npz readers, splits, statistics, batching, normalisation, augmentation.

The naive references (ref_*) are plain numpy loops kept here; they follow the documented
semantics of `normalize` and `augment` literally.
"""
import gzip
import os
import pickle
import struct
import types

import numpy as np
import pytest

from convtrain import data as D
from convtrain.data import idx as idx_reader
from convtrain.data import kernels as K
from convtrain.errors import DataError

NS = types.SimpleNamespace
FMNIST = "/usr/share/datasets/fashion-mnist"


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
         np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def idx_bytes(arr, code=None):
    arr = np.asarray(arr)
    code = CODES[arr.dtype] if code is None else code
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(path, payload, gz=False):
    if gz:
        payload = gzip.compress(payload)
    with open(path, "wb") as f:
        f.write(payload)
    return str(path)


def no_aug():
    return NS(translate=0, crop_pad=0, hflip=False, noise=0.0)


def cfg(dataset="npz", path=None, layout="nchw", validation=0, subset=None, augment=None):
    return NS(dataset=dataset, path=None if path is None else str(path), layout=layout,
              validation=validation, subset=subset, augment=augment or no_aug())


def make_idx_folder(folder, ntrain=50, ntest=20, h=28, w=28, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    arrays = dict(
        train_images=rng.integers(0, 256, (ntrain, h, w), dtype=np.uint8),
        train_labels=rng.integers(0, 10, ntrain).astype(np.uint8),
        test_images=rng.integers(0, 256, (ntest, h, w), dtype=np.uint8),
        test_labels=rng.integers(0, 10, ntest).astype(np.uint8))
    for key, stem in D.IDX_FILES.items():
        write(os.path.join(folder, stem + (".gz" if gz else "")), idx_bytes(arrays[key]), gz=gz)
    return arrays


def save_npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def coded_npz(path, ntrain=100, ntest=30, c=1, h=6, w=5):
    """Every training image is filled with (its index % 256), labels = index % 10."""
    xtr = (np.arange(ntrain) % 256).astype(np.uint8)[:, None, None, None] * np.ones(
        (1, c, h, w), np.uint8)
    ytr = np.arange(ntrain) % 10
    xte = np.full((ntest, c, h, w), 255, np.uint8)
    yte = np.arange(ntest) % 10
    return save_npz(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)


# ------------------------------------------------------------------------------------------------
# read_idx
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_labels_and_images(tmp_path, gz):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 37).astype(np.uint8)
    images = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    pl = write(tmp_path / "l", idx_bytes(labels), gz)
    pi = write(tmp_path / "i", idx_bytes(images), gz)
    got_l, got_i = D.read_idx(pl), D.read_idx(pi)
    assert got_l.dtype == np.uint8 and got_l.shape == (37,)
    assert got_i.dtype == np.uint8 and got_i.shape == (5, 7, 3)
    np.testing.assert_array_equal(got_l, labels)
    np.testing.assert_array_equal(got_i, images)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_other_types_native_order(tmp_path, dtype, gz):
    arr = (np.arange(24).reshape(2, 3, 4) * 37 - 300).astype(dtype)
    if np.dtype(dtype).kind == "f":
        arr = arr / np.asarray(7, dtype)
    got = D.read_idx(write(tmp_path / "a", idx_bytes(arr), gz))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, arr)


def test_read_idx_detects_gzip_by_magic_not_extension(tmp_path):
    arr = np.arange(10, dtype=np.uint8)
    a = write(tmp_path / "plain.gz", idx_bytes(arr), gz=False)
    b = write(tmp_path / "compressed.idx", idx_bytes(arr), gz=True)
    np.testing.assert_array_equal(D.read_idx(a), arr)
    np.testing.assert_array_equal(D.read_idx(b), arr)


def test_read_idx_zero_length_dimension(tmp_path):
    got = D.read_idx(write(tmp_path / "z", idx_bytes(np.zeros((0, 4, 4), np.uint8))))
    assert got.shape == (0, 4, 4)


GOOD = idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 4, 5))


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("payload, words", [
    (b"", ["empty"]),
    (b"\x01\x00\x08\x01" + GOOD[4:], ["magic"]),
    (b"\x00\x00\x0a" + GOOD[3:], ["type code 0x0A"]),
    (b"\x00\x00\x08\x00", ["0 dimensions"]),
    (GOOD[:3], ["truncated header"]),
    (GOOD[:10], ["truncated header"]),
    (GOOD[:-1], ["truncated", "60 bytes", "59"]),
    (GOOD + b"\x00\x00", ["2 unexpected bytes"]),
])
def test_read_idx_corrupt(tmp_path, gz, payload, words):
    path = write(tmp_path / "bad", payload, gz)
    with pytest.raises(DataError) as e:
        D.read_idx(path)
    msg = str(e.value)
    assert path in msg
    for word in words:
        assert word in msg


def test_read_idx_truncated_gzip(tmp_path):
    data = gzip.compress(idx_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8)))
    for cut in (5, 15, len(data) // 2, len(data) - 4, len(data) - 1):
        path = write(tmp_path / f"cut{cut}", data[:cut])
        with pytest.raises(DataError, match="cut"):
            D.read_idx(path)


def test_read_idx_corrupt_gzip_stream(tmp_path):
    data = bytearray(gzip.compress(idx_bytes(np.arange(3000, dtype=np.int32))))
    for i in range(20, len(data) - 8, 7):
        data[i] ^= 0x5A
    path = write(tmp_path / "garbled", bytes(data))
    with pytest.raises(DataError, match="garbled"):
        D.read_idx(path)


def test_read_idx_bad_crc(tmp_path):
    data = bytearray(gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8))))
    data[-8] ^= 0xFF  # the CRC32 in the trailer
    with pytest.raises(DataError, match="crc"):
        D.read_idx(write(tmp_path / "crc", bytes(data)))


def test_read_idx_huge_header_in_small_gzip(tmp_path):
    head = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 60000, 60000, 60000)
    with pytest.raises(DataError, match="header declares"):
        D.read_idx(write(tmp_path / "huge", head + b"\x00" * 100, gz=True))


def test_read_idx_folder_and_missing(tmp_path):
    with pytest.raises(DataError, match="folder"):
        D.read_idx(tmp_path)
    with pytest.raises(DataError, match="no such file"):
        D.read_idx(tmp_path / "absent")


# ------------------------------------------------------------------------------------------------
# IDX folders (mnist / fashion-mnist)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_folder(tmp_path, gz):
    arrays = make_idx_folder(tmp_path / "m", gz=gz)
    s = D.load(cfg("mnist", tmp_path / "m"), seed=0)
    assert s.classes == [str(i) for i in range(10)]
    assert s.input_shape == (1, 28, 28)
    assert s.train.x.shape == (50, 1, 28, 28) and s.train.x.dtype == np.uint8
    assert s.train.y.dtype == np.int64
    np.testing.assert_array_equal(s.train.x[:, 0], arrays["train_images"])
    np.testing.assert_array_equal(s.test.y, arrays["test_labels"])
    assert len(s.val) == 0 and s.val.x.shape == (0, 1, 28, 28)


def test_fashion_mnist_classes_and_path_precedence(tmp_path, monkeypatch):
    make_idx_folder(tmp_path / "a", ntrain=11)
    make_idx_folder(tmp_path / "b", ntrain=13)
    monkeypatch.setattr(idx_reader, "FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("CONVTRAIN_DATA", str(tmp_path / "b"))
    s = D.load(cfg("fashion-mnist"), seed=0)
    assert len(s.train) == 13
    assert s.classes == D.FASHION_MNIST_CLASSES and len(s.classes) == 10
    s = D.load(cfg("fashion-mnist", tmp_path / "a"), seed=0)   # data.path wins
    assert len(s.train) == 11
    s = D.load(cfg("mnist"), seed=0)                           # mnist takes the env var too
    assert len(s.train) == 13


def test_missing_folder_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.delenv("CONVTRAIN_DATA", raising=False)
    monkeypatch.setattr(idx_reader, "FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError) as e:
        D.load(cfg("fashion-mnist"), seed=0)
    msg = str(e.value)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "CONVTRAIN_DATA" in msg and "data.path" in msg and "nowhere" in msg
    with pytest.raises(DataError, match="CONVTRAIN_DATA"):
        D.load(cfg("mnist"), seed=0)
    with pytest.raises(DataError, match="apt-get install"):
        D.load(cfg("mnist", tmp_path / "nowhere"), seed=0)


def test_idx_folder_problems(tmp_path):
    make_idx_folder(tmp_path / "m")
    os.remove(tmp_path / "m" / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        D.load(cfg("mnist", tmp_path / "m"), seed=0)
    # labels file where images are expected
    make_idx_folder(tmp_path / "s")
    lab = tmp_path / "s" / "train-labels-idx1-ubyte.gz"
    os.replace(lab, tmp_path / "s" / "train-images-idx3-ubyte.gz")
    write(lab, idx_bytes(np.zeros(50, np.uint8)), gz=True)
    with pytest.raises(DataError, match="dimensions"):
        D.load(cfg("mnist", tmp_path / "s"), seed=0)
    # count mismatch
    make_idx_folder(tmp_path / "c")
    write(tmp_path / "c" / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(49, np.uint8)), True)
    with pytest.raises(DataError, match="50 images but .* 49 labels"):
        D.load(cfg("mnist", tmp_path / "c"), seed=0)
    # label out of range for 10 classes
    make_idx_folder(tmp_path / "r")
    write(tmp_path / "r" / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.full(20, 10, np.uint8)), True)
    with pytest.raises(DataError, match="label 10"):
        D.load(cfg("mnist", tmp_path / "r"), seed=0)
    # a file instead of a folder
    with pytest.raises(DataError, match="folder"):
        D.load(cfg("mnist", tmp_path / "r" / "t10k-labels-idx1-ubyte.gz"), seed=0)


# ------------------------------------------------------------------------------------------------
# npz
# ------------------------------------------------------------------------------------------------
def test_npz_nhw_uint8(tmp_path):
    rng = np.random.default_rng(0)
    xtr = rng.integers(0, 256, (40, 12, 12), dtype=np.uint8)
    ytr = rng.integers(0, 4, 40)
    path = save_npz(tmp_path / "d.npz", x_train=xtr, y_train=ytr, x_test=xtr[:7], y_test=ytr[:7])
    s = D.load(cfg(path=path), seed=0)
    assert s.train.x.dtype == np.uint8 and s.train.x.shape == (40, 1, 12, 12)
    assert s.input_shape == (1, 12, 12)
    assert s.classes == [str(i) for i in range(int(ytr.max()) + 1)]
    np.testing.assert_array_equal(s.train.x[:, 0], xtr)


def test_npz_nchw_float(tmp_path):
    rng = np.random.default_rng(0)
    xtr = rng.standard_normal((30, 2, 8, 9))   # float64 -> float32, not rescaled
    y = np.arange(30) % 3
    path = save_npz(tmp_path / "f.npz", x_train=xtr, y_train=y, x_test=xtr[:5], y_test=y[:5],
                    classes=np.array(["a", "b", "c"]))
    s = D.load(cfg(path=path), seed=0)
    assert s.train.x.dtype == np.float32 and s.train.x.shape == (30, 2, 8, 9)
    assert s.classes == ["a", "b", "c"]
    np.testing.assert_allclose(s.train.x, xtr.astype(np.float32))
    np.testing.assert_allclose(s.mean, xtr.mean(axis=(0, 2, 3)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(s.std, xtr.std(axis=(0, 2, 3)), rtol=1e-6)


def test_npz_nhwc_three_channels_non_square(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (25, 20, 24, 3), dtype=np.uint8)   # N, H, W, C
    y = np.arange(25) % 5
    path = save_npz(tmp_path / "c.npz", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])
    s = D.load(cfg(path=path, layout="nhwc"), seed=0, input_shape=(3, 20, 24))
    assert s.input_shape == (3, 20, 24)
    assert s.train.x.shape == (25, 3, 20, 24) and s.train.x.flags.c_contiguous
    np.testing.assert_array_equal(s.train.x, x.transpose(0, 3, 1, 2))
    xf = x.astype(np.float64) / 255
    np.testing.assert_allclose(s.mean, xf.mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(s.std, xf.std(axis=(0, 1, 2)), rtol=1e-6)


def test_npz_input_shape_mismatch_names_both(tmp_path):
    path = coded_npz(tmp_path / "d.npz", c=1, h=6, w=5)
    with pytest.raises(DataError) as e:
        D.load(cfg(path=path), seed=0, input_shape=(1, 28, 28))
    assert "(1, 28, 28)" in str(e.value) and "(1, 6, 5)" in str(e.value)


def test_npz_refuses_pickles(tmp_path):
    p = tmp_path / "p.npz"
    with open(p, "wb") as f:
        pickle.dump({"x_train": np.zeros((2, 3, 3))}, f)
    with pytest.raises(DataError, match="pickle"):
        D.load(cfg(path=p), seed=0)
    x = np.zeros((4, 3, 3), np.uint8)
    y = np.zeros(4, np.int64)
    obj = np.empty(4, dtype=object)
    obj[:] = [1, 2, 3, 4]
    path = save_npz(tmp_path / "o.npz", x_train=x, y_train=obj, x_test=x, y_test=y)
    with pytest.raises(DataError, match="pickle"):
        D.load(cfg(path=path), seed=0)


def _npz(tmp_path, name="b.npz", n=10, **override):
    arrays = dict(x_train=np.zeros((n, 4, 4), np.uint8), y_train=np.arange(n) % 3,
                  x_test=np.zeros((3, 4, 4), np.uint8), y_test=np.arange(3))
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    return save_npz(tmp_path / name, **arrays)


@pytest.mark.parametrize("override, words", [
    (dict(y_test=None), ["missing", "y_test"]),
    (dict(y_train=np.arange(9)), ["10 examples", "9"]),
    (dict(y_train=np.arange(10) + 0.5), ["integers", "float64"]),
    (dict(y_train=np.arange(10.0)), ["integers"]),
    (dict(y_train=np.arange(10) - 1), ["negative label -1"]),
    (dict(y_train=np.zeros((10, 3), np.int64)), ["labels have shape"]),
    (dict(x_train=np.zeros((10, 16), np.uint8)), ["2 dimensions"]),
    (dict(x_train=np.zeros((10, 1, 4, 4, 1), np.uint8)), ["5 dimensions"]),
    (dict(x_train=np.full((10, 4, 4), np.nan, np.float32)), ["NaN"]),
    (dict(x_train=np.full((10, 4, 4), 300, np.int32)), ["0..255"]),
    (dict(x_test=np.zeros((3, 5, 4), np.uint8)), ["(1, 4, 4)", "(1, 5, 4)"]),
    (dict(classes=np.array(["a", "b"])), ["label 2", "2 classes"]),
    (dict(classes=np.arange(3)), ["strings"]),
])
def test_npz_bad(tmp_path, override, words):
    path = _npz(tmp_path, **override)
    with pytest.raises(DataError) as e:
        D.load(cfg(path=path), seed=0)
    for word in words:
        assert word in str(e.value)
    assert path in str(e.value)


def test_npz_file_problems(tmp_path):
    with pytest.raises(DataError, match="data.path"):
        D.load(cfg(path=None), seed=0)
    with pytest.raises(DataError, match="no such file"):
        D.load(cfg(path=tmp_path / "none.npz"), seed=0)
    with pytest.raises(DataError, match="folder"):
        D.load(cfg(path=tmp_path), seed=0)
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(DataError, match="npy"):
        D.load(cfg(path=tmp_path / "one.npy"), seed=0)
    with open(_npz(tmp_path), "rb") as f:
        good = f.read()
    write(tmp_path / "cut.npz", good[: len(good) // 2])
    with pytest.raises(DataError, match="cut.npz"):
        D.load(cfg(path=tmp_path / "cut.npz"), seed=0)
    write(tmp_path / "empty.npz", b"")
    with pytest.raises(DataError, match="empty"):
        D.load(cfg(path=tmp_path / "empty.npz"), seed=0)


def test_npz_int_images_in_range_become_uint8_and_labels_column(tmp_path):
    path = _npz(tmp_path, x_train=np.full((10, 4, 4), 200, np.int64),
                y_train=(np.arange(10) % 3).reshape(10, 1))
    s = D.load(cfg(path=path), seed=0)
    assert s.train.x.dtype == np.uint8 and s.train.y.shape == (10,)


# ------------------------------------------------------------------------------------------------
# splits and statistics
# ------------------------------------------------------------------------------------------------
def test_split_sizes_disjoint_and_seeded(tmp_path):
    path = coded_npz(tmp_path / "d.npz", ntrain=100)
    a = D.load(cfg(path=path, validation=30), seed=3)
    b = D.load(cfg(path=path, validation=30), seed=3)
    c = D.load(cfg(path=path, validation=30), seed=4)
    assert (len(a.train), len(a.val), len(a.test)) == (70, 30, 30)
    ids = lambda ds: ds.x[:, 0, 0, 0].astype(int)   # noqa: E731 (the coded index)
    assert sorted(np.concatenate([ids(a.train), ids(a.val)]).tolist()) == list(range(100))
    np.testing.assert_array_equal(ids(a.val), ids(b.val))
    assert not np.array_equal(ids(a.val), ids(c.val))
    np.testing.assert_array_equal(a.train.y, ids(a.train) % 10)
    np.testing.assert_array_equal(a.val.y, ids(a.val) % 10)
    assert np.all(np.diff(ids(a.train)) > 0)     # remaining examples stay in file order


def test_subset_keeps_first_remaining(tmp_path):
    path = coded_npz(tmp_path / "d.npz", ntrain=100)
    full = D.load(cfg(path=path, validation=30), seed=3)
    sub = D.load(cfg(path=path, validation=30, subset=20), seed=3)
    assert (len(sub.train), len(sub.val)) == (20, 30)
    np.testing.assert_array_equal(sub.train.x, full.train.x[:20])
    np.testing.assert_array_equal(sub.val.x, full.val.x)
    nov = D.load(cfg(path=path, subset=15), seed=0)
    np.testing.assert_array_equal(nov.train.x[:, 0, 0, 0], np.arange(15))
    with pytest.raises(DataError, match="subset"):
        D.load(cfg(path=path, validation=30, subset=71), seed=3)


def test_validation_too_large(tmp_path):
    path = coded_npz(tmp_path / "d.npz", ntrain=100)
    for v in (100, 150):
        with pytest.raises(DataError, match="validation"):
            D.load(cfg(path=path, validation=v), seed=0)
    assert len(D.load(cfg(path=path, validation=99), seed=0).train) == 1


def test_mean_std_from_training_split_only(tmp_path):
    path = coded_npz(tmp_path / "d.npz", ntrain=100, c=2)   # test images are all 255
    s = D.load(cfg(path=path, validation=40, subset=25), seed=1)
    xf = s.train.x.astype(np.float64) / 255
    assert s.mean.dtype == np.float32 and s.mean.shape == (2,) and s.std.shape == (2,)
    np.testing.assert_allclose(s.mean, xf.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(s.std, xf.std(axis=(0, 2, 3)), rtol=1e-6)
    every = np.arange(100, dtype=np.float64) / 255
    assert abs(s.mean[0] - every.mean()) > 1e-3 or abs(s.std[0] - every.std()) > 1e-3


def test_channel_stats_matches_numpy():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((50, 3, 7, 5)) * [[[[1]], [[10]], [[0.1]]]] + 1e3).astype(np.float32)
    mean, std = D.channel_stats(x)
    xd = x.astype(np.float64)
    np.testing.assert_allclose(mean, xd.mean(axis=(0, 2, 3)), rtol=1e-7)
    np.testing.assert_allclose(std, xd.std(axis=(0, 2, 3)), rtol=1e-5)
    m, s = D.channel_stats(np.full((4, 1, 3, 3), 7, np.uint8))
    assert m[0] == np.float32(7 / 255) and s[0] == 0


# ------------------------------------------------------------------------------------------------
# normalize
# ------------------------------------------------------------------------------------------------
def ref_normalize(x, mean, std):
    """x already scaled (uint8 / 255) float64: (x - mean[c]) / std[c], std 0 counts as 1."""
    x = x.astype(np.float64)
    out = np.empty(x.shape)
    for c in range(x.shape[1]):
        s = std[c] if std[c] != 0 else 1.0
        out[:, c] = (x[:, c] - mean[c]) / s
    return out


def test_normalize_uint8_and_float():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (9, 3, 5, 4), dtype=np.uint8)
    mean = np.array([0.1, 0.5, 0.9], np.float32)
    std = np.array([0.2, 0.0, 3.0], np.float32)
    got = D.normalize(x, mean, std)
    assert got.dtype == np.float32 and got.flags.c_contiguous and got.shape == x.shape
    want = ref_normalize(x.astype(np.float64) / 255, mean.astype(np.float64),
                         std.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    xf = rng.standard_normal((9, 3, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(D.normalize(xf, mean, std),
                               ref_normalize(xf, mean.astype(np.float64), std.astype(np.float64)),
                               rtol=1e-5, atol=1e-6)
    assert D.normalize(xf, mean, std).dtype == np.float32
    np.testing.assert_allclose(D.normalize(xf.astype(np.float64), mean, std),
                               D.normalize(xf, mean, std))


def test_normalize_index_and_out():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 1, 6, 6), dtype=np.uint8)
    mean, std = np.array([0.3], np.float32), np.array([0.4], np.float32)
    idx = np.array([5, 0, 29, 5, 11])
    out = np.empty((5, 1, 6, 6), np.float32)
    got = D.normalize(x, mean, std, out, index=idx)
    assert got is out
    np.testing.assert_allclose(out, D.normalize(x[idx], mean, std), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError):
        D.normalize(x, mean, std, np.empty((4, 1, 6, 6), np.float32), index=idx)
    with pytest.raises(IndexError):
        D.normalize(x, mean, std, index=np.array([30]))
    assert D.normalize(x, mean, std, index=np.array([], np.int64)).shape == (0, 1, 6, 6)


# ------------------------------------------------------------------------------------------------
# batches
# ------------------------------------------------------------------------------------------------
def test_batch_order_pure_function_of_seed_and_epoch():
    a = D.batch_order(1000, seed=7, epoch=3)
    np.testing.assert_array_equal(a, D.batch_order(1000, seed=7, epoch=3))
    assert a.dtype == np.int64
    assert sorted(a.tolist()) == list(range(1000))
    assert not np.array_equal(a, D.batch_order(1000, seed=7, epoch=4))
    assert not np.array_equal(a, D.batch_order(1000, seed=8, epoch=3))
    assert len(D.batch_order(0, seed=0, epoch=0)) == 0


def test_num_batches():
    assert D.num_batches(0, 128) == 0
    assert D.num_batches(1, 128) == 1
    assert D.num_batches(256, 128) == 2
    assert D.num_batches(257, 128) == 3
    with pytest.raises(ValueError):
        D.num_batches(10, 0)


# ------------------------------------------------------------------------------------------------
# augment
# ------------------------------------------------------------------------------------------------
def ref_shift(img, dy, dx, fill):
    """img (C, H, W): out[c, i, j] = img[c, i - dy, j - dx], fill outside."""
    c, h, w = img.shape
    out = np.empty_like(img)
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                si, sj = i - dy, j - dx
                out[ch, i, j] = img[ch, si, sj] if 0 <= si < h and 0 <= sj < w else fill[ch]
    return out


def ref_augment(x, aug, seed, fill=0.0, noise_dtype=np.float32):
    """Draws in the documented order, then applies each step literally, one sample at a time.
    The noise is drawn in the batch's own dtype (`noise_dtype`), as `augment` does."""
    rng = np.random.default_rng(seed)
    n, c = x.shape[:2]
    fill = np.broadcast_to(np.asarray(fill, np.float64).reshape(-1), (c,))
    zero = np.zeros(n, np.int64)
    t1 = rng.integers(-aug.translate, aug.translate + 1, (2, n)) if aug.translate else (zero, zero)
    if aug.crop_pad:
        off = rng.integers(0, 2 * aug.crop_pad + 1, (2, n))
    flip = rng.random(n) < 0.5 if aug.hflip else np.zeros(n, bool)
    side = getattr(aug, "cutout", 0)
    if side:
        centres = rng.integers(0, x.shape[2:], size=(n, 2))
    out = np.empty_like(x)
    for k in range(n):
        img = ref_shift(x[k], t1[0][k], t1[1][k], fill)
        if aug.crop_pad:   # pad by p with fill, crop at the offset
            p = aug.crop_pad
            h, w = img.shape[1:]
            padded = np.empty((c, h + 2 * p, w + 2 * p), x.dtype)
            padded[:] = fill[:, None, None]
            padded[:, p:p + h, p:p + w] = img
            img = padded[:, off[0][k]:off[0][k] + h, off[1][k]:off[1][k] + w]
        if flip[k]:
            img = img[:, :, ::-1]
        out[k] = img
        if side:   # the square's top-left corner, clipped at the image's edges
            top, left = centres[k] - side // 2
            out[k, :, max(top, 0):max(top + side, 0), max(left, 0):max(left + side, 0)] = 0.0
    if aug.noise:
        out = out + aug.noise * rng.standard_normal(out.shape, dtype=noise_dtype)
    return out


def batch(n=16, c=2, h=7, w=9, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(dtype)


@pytest.mark.parametrize("aug", [
    NS(translate=2, crop_pad=0, hflip=False, noise=0.0),
    NS(translate=0, crop_pad=3, hflip=False, noise=0.0),
    NS(translate=0, crop_pad=0, hflip=True, noise=0.0),
    NS(translate=3, crop_pad=2, hflip=True, noise=0.0),
    NS(translate=1, crop_pad=1, hflip=True, noise=0.25),
    NS(translate=12, crop_pad=0, hflip=True, noise=0.0),   # larger than the image
    NS(translate=0, crop_pad=0, hflip=False, noise=0.0, cutout=3),
    NS(translate=1, crop_pad=1, hflip=True, noise=0.25, cutout=4),
    NS(translate=0, crop_pad=0, hflip=True, noise=0.0, cutout=20),   # larger than the image
])
def test_augment_matches_reference(aug):
    x = batch(n=24)
    for fill in (0.0, np.array([-1.5, 2.0])):
        got = D.augment(x, aug, np.random.default_rng(5), fill=fill)
        want = ref_augment(x.astype(np.float64), aug, 5, fill)
        assert got.shape == x.shape and got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_augment_float64_batch_exact():
    x = batch(n=10, dtype=np.float64)
    aug = NS(translate=2, crop_pad=1, hflip=True, noise=0.0)
    got = D.augment(x, aug, np.random.default_rng(2))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, ref_augment(x, aug, 2))


def test_augment_deterministic_given_rng_and_never_modifies_input():
    x = batch(n=32)
    keep = x.copy()
    aug = NS(translate=2, crop_pad=2, hflip=True, noise=0.1)
    a = D.augment(x, aug, np.random.default_rng([1, 2]))
    b = D.augment(x, aug, np.random.default_rng([1, 2]))
    c = D.augment(x, aug, np.random.default_rng([1, 3]))
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_augment_identity_when_off():
    x = batch()
    for aug in (no_aug(), None):
        got = D.augment(x, aug, np.random.default_rng(0))
        assert got is not x
        np.testing.assert_array_equal(got, x)
    assert not D.is_augmenting(no_aug()) and not D.is_augmenting(None)
    for k, v in dict(translate=1, crop_pad=1, hflip=True, noise=0.1, cutout=2).items():
        aug = no_aug()
        setattr(aug, k, v)
        assert D.is_augmenting(aug)


def test_flip_flips():
    x = batch(n=64)
    got = D.augment(x, NS(translate=0, crop_pad=0, hflip=True, noise=0.0),
                    np.random.default_rng(0))
    flipped = [np.array_equal(g, xi[:, :, ::-1]) for g, xi in zip(got, x)]
    same = [np.array_equal(g, xi) for g, xi in zip(got, x)]
    assert all(f or s for f, s in zip(flipped, same))
    assert 10 < sum(flipped) < 54


def test_translate_shifts_within_range():
    x = batch(n=64, c=1, h=10, w=10) + 5.0   # no pixel equals the fill 0
    got = D.augment(x, NS(translate=2, crop_pad=0, hflip=False, noise=0.0),
                    np.random.default_rng(0))
    seen = set()
    for g, xi in zip(got, x):
        match = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(g, ref_shift(xi, dy, dx, [0.0]))]
        assert len(match) == 1
        seen.add(match[0])
    assert len(seen) > 10


def test_cutout_blanks_one_clipped_square_per_image():
    x = batch(n=200, c=2, h=10, w=12) + 5.0   # no pixel equals the fill 0
    got = D.augment(x, NS(translate=0, crop_pad=0, hflip=False, noise=0.0, cutout=4),
                    np.random.default_rng(0))
    shapes = set()
    for g, xi in zip(got, x):
        blank = g[0] == 0
        assert np.array_equal(blank, g[1] == 0)             # the same square in every channel
        np.testing.assert_array_equal(g[:, ~blank], xi[:, ~blank])
        rows, cols = np.flatnonzero(blank.any(1)), np.flatnonzero(blank.any(0))
        assert blank.sum() == len(rows) * len(cols)        # a rectangle...
        assert np.ptp(rows) + 1 == len(rows) and np.ptp(cols) + 1 == len(cols)
        assert len(rows) <= 4 and len(cols) <= 4           # ...no larger than the square
        shapes.add((len(rows), len(cols)))
    assert (4, 4) in shapes and len(shapes) > 3             # whole inside, or clipped at edges


def test_noise_statistics():
    x = np.zeros((64, 1, 16, 16), np.float32)
    got = D.augment(x, NS(translate=0, crop_pad=0, hflip=False, noise=0.5),
                    np.random.default_rng(0))
    assert abs(got.std() - 0.5) < 0.02 and abs(got.mean()) < 0.02


def test_kernels_compile_once():
    x8 = np.random.default_rng(0).integers(0, 256, (40, 1, 5, 5), dtype=np.uint8)
    aug = NS(translate=1, crop_pad=1, hflip=True, noise=0.0)
    D.channel_stats(x8)
    D.augment(D.normalize(x8, [0.5], [0.2], index=np.arange(8)), aug, np.random.default_rng(0))
    before = {k: len(k.signatures) for k in (K.normalize_gather, K.shift_flip, K.channel_moments)}
    for n in (3, 17):
        D.channel_stats(x8[:n])
        xb = D.normalize(x8, np.float64(0.5), [0.2], index=np.arange(n, dtype=np.int32))
        D.augment(xb, aug, np.random.default_rng(n))
    after = {k: len(k.signatures) for k in before}
    assert before == after


# ------------------------------------------------------------------------------------------------
# the real Fashion-MNIST
# ------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not os.path.isdir(FMNIST), reason="dataset-fashion-mnist is not installed")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("CONVTRAIN_DATA", raising=False)
    s = D.load(cfg("fashion-mnist", validation=5000), seed=0, input_shape=(1, 28, 28))
    assert (len(s.train), len(s.val), len(s.test)) == (55000, 5000, 10000)
    assert s.classes == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]
    assert s.train.x.dtype == np.uint8 and s.input_shape == (1, 28, 28)
    counts = np.bincount(np.concatenate([s.train.y, s.val.y]), minlength=10)
    assert counts.tolist() == [6000] * 10
    assert np.bincount(s.test.y).tolist() == [1000] * 10
    assert 0.27 < s.mean[0] < 0.30 and 0.34 < s.std[0] < 0.37
