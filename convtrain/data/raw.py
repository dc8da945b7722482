"""What every reader returns (`RawData`) and the checks that turn stored arrays into it.

A reader only finds and decodes its files; `images` and `labels` hold the rules every format
shares (NCHW, uint8 or float32, integer class indices), so all readers refuse the same mistakes
with the same words.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import DataError

MAX_CLASSES = 100_000         # a label beyond this is a mistake (and K x K confusion matrices)


@dataclasses.dataclass(eq=False)
class RawData:
    """A data set as stored: images (N, C, H, W) uint8 or float32 and labels (N,) int64 for the
    training and test files, already passed through `images` and `labels`.

    `source` names where the data came from (a folder or a file) for messages; `classes` are
    the class names when the files carry them, else None (the classes are then "0" .. "K-1")."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    classes: list[str] | None = None


def images(x: np.ndarray, where: str, layout: str = "nchw") -> np.ndarray:
    """(N, H, W) or (N, C, H, W) / (N, H, W, C) -> NCHW, uint8 kept, floats as float32."""
    if x.ndim == 3:
        x = x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])
    elif x.ndim == 4:
        if layout == "nhwc":
            x = x.transpose(0, 3, 1, 2)
    else:
        raise DataError(f"{where}: images have {x.ndim} dimensions {x.shape}; expected "
                        f"(N, H, W) or (N, C, H, W)" + (" (layout: nhwc: (N, H, W, C))"
                                                       if layout == "nhwc" else ""))
    if min(x.shape[1:]) < 1:
        raise DataError(f"{where}: images of shape {x.shape[1:]} are empty")
    kind = x.dtype.kind
    if x.dtype == np.uint8:
        pass
    elif kind == "f":
        x = x.astype(np.float32, copy=False)
        if x.size and not np.isfinite(x.sum(dtype=np.float64)):
            raise DataError(f"{where}: images hold NaN or infinite values")
    elif kind in "iu":
        lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
        if lo < 0 or hi > 255:
            raise DataError(f"{where}: integer images of dtype {x.dtype} must lie in 0..255 "
                            f"(got {lo}..{hi}); store uint8 or floats")
        x = x.astype(np.uint8)
    else:
        raise DataError(f"{where}: images of dtype {x.dtype}; expected uint8 or floating point")
    return np.ascontiguousarray(x)


def labels(y: np.ndarray, where: str) -> np.ndarray:
    """(N,) or (N, 1) integer class indices in 0 .. MAX_CLASSES-1 -> (N,) int64."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{where}: labels have shape {y.shape}; expected one integer class "
                        f"index per example, shape (N,)")
    if y.dtype.kind not in "iu":
        raise DataError(f"{where}: labels must be integers, got dtype {y.dtype}")
    if y.size and int(y.min()) < 0:
        raise DataError(f"{where}: negative label {int(y.min())}")
    if y.size and int(y.max()) >= MAX_CLASSES:
        raise DataError(f"{where}: label {int(y.max())} is not a class index (labels are "
                        f"0 .. K-1, for at most {MAX_CLASSES:,} classes)")
    return y.astype(np.int64)
