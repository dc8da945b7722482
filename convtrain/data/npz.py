"""dataset: npz, one .npz archive in Keras's mnist.npz layout: x_train, y_train, x_test, y_test
and optionally classes (a 1-D array of names). Pickles are refused: loading one can run code.
"""
from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

from ..errors import DataError
from .raw import RawData, images, labels

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def read_npz(data, input_shape=None) -> RawData:
    """data.path names the archive; data.layout (nchw | nhwc) says how 4-D images are stored.
    The shape is the archive's: `input_shape` is checked against it by splits.py."""
    path = getattr(data, "path", None)
    if not path:
        raise DataError("dataset npz needs data.path: an .npz file with x_train, y_train, "
                        "x_test and y_test (Keras's mnist.npz layout)")
    path = os.path.expanduser(os.fspath(path))
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder; dataset npz reads one .npz file (use dataset: "
                        f"mnist or fashion-mnist for a folder of IDX files)")
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    layout = getattr(data, "layout", "nchw") or "nchw"
    arrays = _arrays(path)
    parts = []
    for part in ("train", "test"):
        xk, yk = f"x_{part}", f"y_{part}"
        x = images(arrays.pop(xk), f"{path}: {xk}", layout)
        y = labels(arrays.pop(yk), f"{path}: {yk}")
        if len(x) != len(y):
            raise DataError(f"{path}: {xk} holds {len(x)} examples but {yk} holds {len(y)}")
        parts.append((x, y))
    classes = None
    if "classes" in arrays:
        c = arrays["classes"]
        if c.ndim != 1 or c.dtype.kind not in "US":
            raise DataError(f"{path}: classes must be a 1-D array of strings, got {c.dtype} "
                            f"{c.shape}")
        classes = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                   for v in c.tolist()]
    (x_train, y_train), (x_test, y_test) = parts
    return RawData(x_train, y_train, x_test, y_test, source=path, classes=classes)


def _arrays(path: str) -> dict[str, np.ndarray]:
    """The archive's NPZ_KEYS arrays (and classes when present), refusing pickles."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if not head:
            raise DataError(f"{path}: empty file, expected an .npz archive")
        if head[:1] == b"\x80":
            raise DataError(f"{path}: is a pickle; pickles are refused (they can run code): "
                            f"save the arrays with numpy.savez")
        if head[:2] == b"PK":
            pass
        elif head[:4] == b"\x93NUM":
            raise DataError(f"{path}: is a single .npy array; expected an .npz archive with "
                            f"x_train, y_train, x_test and y_test")
        else:
            raise DataError(f"{path}: not an .npz (zip) archive")
        # np.load(path) leaks its file handle when the zip is corrupt: open the file ourselves
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            keys = set(z.files)
            missing = [k for k in NPZ_KEYS if k not in keys]
            if missing:
                raise DataError(f"{path}: missing key(s) {', '.join(missing)} (has: "
                                f"{', '.join(sorted(keys)) or 'nothing'}); expected x_train, "
                                f"y_train, x_test, y_test")
            arrays = {}
            for k in NPZ_KEYS + (("classes",) if "classes" in keys else ()):
                arrays[k] = _npz_member(z, k, path)
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{path}: not enough memory to load it") from None
    except (OSError, EOFError, ValueError, zlib.error, zipfile.BadZipFile, KeyError) as e:
        raise DataError(f"{path}: corrupt or truncated .npz archive: {e}") from None
    return arrays


def _npz_member(z, key: str, path: str) -> np.ndarray:
    try:
        return z[key]
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise DataError(f"{path}: {key} is an object array (a pickle); pickles are refused "
                            f"(they can run code): store numeric arrays") from None
        raise
