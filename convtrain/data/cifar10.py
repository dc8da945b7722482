"""dataset: cifar10, the official CIFAR-10 *binary* batches (cifar-10-binary.tar.gz).

data_batch_1.bin .. data_batch_5.bin are the training set, test_batch.bin the test set; each
record is 1 label byte and 3072 image bytes (the 32x32 red, green and blue planes: already
C, H, W). The Python version of the batches is a pickle, and pickles are never loaded: a folder
holding only those gets a message that says to download the binary version.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import DataError
from .raw import RawData, images, labels

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
SUBFOLDER = "cifar-10-batches-bin"
TRAIN_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_BATCH = "test_batch.bin"
META = "batches.meta.txt"
SHAPE = (3, 32, 32)
RECORD = 1 + 3 * 32 * 32
CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"]


def read_cifar10(data, input_shape=None) -> RawData:
    """data.path is the folder of the batches, or the folder that holds cifar-10-batches-bin/.
    The shape is always 3x32x32: `input_shape` is checked against it by splits.py."""
    folder = _folder(data)
    x_train, y_train = _read_batches([os.path.join(folder, n) for n in TRAIN_BATCHES])
    x_test, y_test = _read_batches([os.path.join(folder, TEST_BATCH)])
    return RawData(x_train, y_train, x_test, y_test, source=folder, classes=_classes(folder))


def _folder(data) -> str:
    """The folder that holds the batches; DataError when there is none or only pickles."""
    path = getattr(data, "path", None)
    if not path:
        raise DataError(f"dataset cifar10 needs data.path: the folder of the binary batches "
                        f"({SUBFOLDER}/ from {URL})")
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isdir(path):
        what = "does not exist" if not os.path.exists(path) else "is a file, not a folder"
        raise DataError(f"{path}: {what}; dataset cifar10 reads the folder of the binary "
                        f"batches ({SUBFOLDER}/ from {URL})")
    inner = os.path.join(path, SUBFOLDER)
    if os.path.isdir(inner):
        path = inner
    if not any(os.path.isfile(os.path.join(path, n)) for n in TRAIN_BATCHES + (TEST_BATCH,)):
        pickled = os.path.isfile(os.path.join(path, "data_batch_1")) or os.path.isdir(
            os.path.join(path, "cifar-10-batches-py"))
        if pickled:
            raise DataError(f"{path}: holds the Python version of CIFAR-10 (pickled batches, "
                            f"which convtrain never loads: unpickling can run code); download "
                            f"the binary version {URL}")
    return path


def _read_batches(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The images (N, 3, 32, 32) uint8 and labels (N,) of the batch files, in order."""
    for p in paths:
        if not os.path.isfile(p):
            raise DataError(f"{p}: missing CIFAR-10 batch (expected {', '.join(TRAIN_BATCHES)} "
                            f"and {TEST_BATCH}: the binary version, {URL})")
    sizes = [os.path.getsize(p) for p in paths]
    for p, size in zip(paths, sizes):
        if size == 0 or size % RECORD:
            raise DataError(f"{p}: truncated or not a CIFAR-10 binary batch: {size:,} bytes is "
                            f"not a whole number of {RECORD}-byte records")
    records = np.empty((sum(sizes) // RECORD, RECORD), dtype=np.uint8)
    row = 0
    for p, size in zip(paths, sizes):
        n = size // RECORD
        try:
            with open(p, "rb") as f:
                got = f.readinto(memoryview(records[row:row + n]).cast("B"))
        except OSError as e:
            raise DataError(f"{p}: cannot read: {e}") from None
        if got != size:
            raise DataError(f"{p}: truncated while reading ({got:,} of {size:,} bytes)")
        bad = np.flatnonzero(records[row:row + n, 0] > 9)
        if len(bad):
            raise DataError(f"{p}: record {int(bad[0])} has label {int(records[row + bad[0], 0])}"
                            f"; CIFAR-10 labels are 0..9 (is this CIFAR-100 or another file?)")
        row += n
    x = images(records[:, 1:].reshape((-1,) + SHAPE), paths[0])
    return x, labels(records[:, 0], paths[0])


def _classes(folder: str) -> list[str]:
    """The names in batches.meta.txt (one a line), else the ten standard ones."""
    path = os.path.join(folder, META)
    if not os.path.isfile(path):
        return list(CLASSES)
    try:
        with open(path, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the class names: {e}") from None
    if len(names) != len(CLASSES):
        raise DataError(f"{path}: {len(names)} class names; CIFAR-10 has {len(CLASSES)} "
                        f"(one a line)")
    return names
