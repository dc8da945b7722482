"""dataset: folder, one sub-folder of images per class (Keras's image_dataset_from_directory).

    path/cat/001.png  path/dog/a.jpg ...            the whole folder is the training set
    path/train/cat/...  path/test/cat/...           or train/ and test/, with the same classes

The classes are the sub-folder names in sorted order; the images are found in each class folder
and its sub-folders, in sorted order; hidden files and files without an image extension
(README, .DS_Store) are skipped. Each image is converted to the config's input (C, H, W) by
image_file.py, the conversion `convtrain predict` uses. `data.cache: true` keeps the decoded
arrays (cache.py).
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import DataError
from . import cache
from .image_file import open_image, to_model_input
from .raw import RawData

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff",
                              ".webp", ".ppm", ".pgm", ".pbm"})


def read_folder(data, input_shape=None) -> RawData:
    """data.path is the folder; `input_shape` (the config's input, required) the images' shape."""
    root = _root(data)
    shape = _shape(input_shape, root)
    classes, parts = _listing(root)
    files = [p for part in parts.values() for p, _ in part]
    digest = where = None
    if getattr(data, "cache", False):
        where = cache.location(root, shape)
        digest = cache.fingerprint(files, shape, classes)
        arrays = cache.load(where, digest)
        if arrays is not None:
            return _raw(arrays, root, classes)
    arrays = {}
    for name in ("train", "test"):
        arrays[f"x_{name}"] = _decode_all([p for p, _ in parts[name]], shape)
        arrays[f"y_{name}"] = np.array([y for _, y in parts[name]], dtype=np.int64)
    if where is not None:
        cache.save(where, arrays, digest)
    return _raw(arrays, root, classes)


def _raw(arrays, root: str, classes: list[str]) -> RawData:
    return RawData(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                   source=root, classes=list(classes))


def _root(data) -> str:
    path = getattr(data, "path", None)
    if not path:
        raise DataError("dataset folder needs data.path: a folder with one sub-folder of images "
                        "per class (or train/ and test/ folders laid out that way)")
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isdir(path):
        what = "does not exist" if not os.path.exists(path) else "is a file, not a folder"
        raise DataError(f"{path}: {what}; dataset folder reads a folder with one sub-folder of "
                        f"images per class")
    return path


def _shape(input_shape, root: str) -> tuple[int, int, int]:
    """The (C, H, W) the images are converted to: the config's input, 1 or 3 channels."""
    if input_shape is None:
        raise DataError(f"{root}: dataset folder needs the config's input: [C, H, W] (the size "
                        f"every image is scaled to; C is 1 for grayscale, 3 for RGB)")
    if len(input_shape) != 3 or int(input_shape[0]) not in (1, 3):
        raise DataError(f"{root}: dataset folder makes images of 1 (grayscale) or 3 (RGB) "
                        f"channels; the config's input is {list(input_shape)}, expected "
                        f"[1, H, W] or [3, H, W]")
    return tuple(int(d) for d in input_shape)


def _listing(root: str) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """(classes, {"train": [(file, label)], "test": [...]}); test is empty without test/."""
    train, test = os.path.join(root, "train"), os.path.join(root, "test")
    if not os.path.isdir(train):
        if os.path.isdir(test):
            raise DataError(f"{root}: has a test/ folder but no train/ folder")
        classes = _class_folders(root)
        return classes, {"train": _labelled(root, classes), "test": []}
    classes = _class_folders(train)
    train_files = _labelled(train, classes)
    if not os.path.isdir(test):
        return classes, {"train": train_files, "test": []}
    test_classes = _class_folders(test)
    if test_classes != classes:
        only_train = sorted(set(classes) - set(test_classes))
        only_test = sorted(set(test_classes) - set(classes))
        raise DataError(f"{root}: train/ and test/ must hold the same class folders; only in "
                        f"train/: {', '.join(only_train) or '-'}; only in test/: "
                        f"{', '.join(only_test) or '-'}")
    return classes, {"train": train_files, "test": _labelled(test, classes)}


def _class_folders(folder: str) -> list[str]:
    names = sorted(n for n in os.listdir(folder)
                   if not n.startswith(".") and os.path.isdir(os.path.join(folder, n)))
    if not names:
        raise DataError(f"{folder}: no class folders; dataset folder reads one sub-folder of "
                        f"images per class")
    return names


def _labelled(folder: str, classes: list[str]) -> list[tuple[str, int]]:
    """Every image file of every class folder with its label, in sorted order."""
    out = []
    for label, name in enumerate(classes):
        files = _image_files(os.path.join(folder, name))
        if not files:
            raise DataError(f"{os.path.join(folder, name)}: no images in this class folder "
                            f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
        out.extend((p, label) for p in files)
    return out


def _image_files(folder: str) -> list[str]:
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(top, f) for f in sorted(files)
                     if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
    return found


def _decode_all(paths: list[str], shape) -> np.ndarray:
    x = np.empty((len(paths),) + tuple(shape), dtype=np.uint8)
    for i, p in enumerate(paths):
        x[i] = decode(p, shape)
    return x


def decode(path: str, shape) -> np.ndarray:
    """One image file as uint8 (C, H, W) of `shape`, converted as `predict` converts it."""
    return to_model_input(open_image(path), shape)
