"""The train / validation / test split of a data set read by its reader, the per-channel
statistics of the training split, and the checks of the data against the config's input shape.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import DataError
from . import folds as _folds
from . import kernels as _k
from .readers import read

# The split has a random stream of its own: it never shares a seed sequence with the batch
# order nor with the trainer's np.random.default_rng([seed, step]).
_SPLIT_STREAM = 0x73706C74   # 'splt'


@dataclasses.dataclass(eq=False)
class Dataset:
    """Images `x` (N, C, H, W) uint8 or float32 (as stored), labels `y` (N,) int64."""
    x: np.ndarray
    y: np.ndarray
    classes: list[str]

    def __post_init__(self):
        if self.x.ndim != 4 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise ValueError(f"Dataset needs x (N, C, H, W) and y (N,), got {self.x.shape} "
                             f"and {self.y.shape}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """Per-sample shape (C, H, W)."""
        return tuple(int(d) for d in self.x.shape[1:])


@dataclasses.dataclass(eq=False)
class Splits:
    """The three splits. `mean` and `std` (C,) float32 come from the training split only, in
    units of the scaled images (uint8 / 255); `std` is the population standard deviation."""
    train: Dataset
    val: Dataset
    test: Dataset
    classes: list[str]
    mean: np.ndarray
    std: np.ndarray
    input_shape: tuple[int, int, int]
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def black(self) -> np.ndarray:
        """(C,) float32: the normalised value of a zero (black) pixel, a possible `fill` for
        `augment`."""
        std = np.where(self.std == 0, np.float32(1), self.std)
        return (-self.mean / std).astype(np.float32)


def load(data, *, seed: int, input_shape=None) -> Splits:
    """Read the data set `data` (the config's data section) and split it.

    Validation is a seeded random hold-out of `data.validation` training examples; `data.subset`
    then keeps the first N of the remaining ones (in file order). With `data.folds`, validation
    is fold `data.fold` of the first `subset` examples instead (folds.py). Mean and std per channel come
    from that final training split, after scaling uint8 images by 1/255."""
    raw = read(data, input_shape)
    xtr, ytr, source = raw.x_train, raw.y_train, raw.source
    if len(xtr) == 0:
        raise DataError(f"{source}: the training set is empty")
    shape = _check_shapes(raw, input_shape)
    classes = _check_classes(raw)
    if getattr(data, "folds", None):
        keep, val_idx = _folds.split(ytr, data, seed, source)
    else:
        keep, val_idx = _split(len(xtr), data, seed, source)
    if len(keep) == len(xtr):
        train = Dataset(xtr, ytr, classes)
    else:
        train = Dataset(np.ascontiguousarray(xtr[keep]), ytr[keep], classes)
    val = Dataset(np.ascontiguousarray(xtr[val_idx]), ytr[val_idx], classes)
    test = Dataset(raw.x_test, raw.y_test, classes)
    del raw, xtr, ytr     # the full training array is garbage once the splits are copied out
    mean, std = channel_stats(train.x)
    return Splits(train=train, val=val, test=test, classes=classes, mean=mean, std=std,
                  input_shape=shape, source=source)


def _check_shapes(raw, input_shape) -> tuple[int, int, int]:
    """The per-sample shape (C, H, W), the same for training, test and the config's input."""
    shape = tuple(int(d) for d in raw.x_train.shape[1:])
    if tuple(raw.x_test.shape[1:]) != shape:
        raise DataError(f"{raw.source}: training images are {_fmt(shape)} but test images are "
                        f"{_fmt(raw.x_test.shape[1:])}")
    if input_shape is not None and tuple(int(d) for d in input_shape) != shape:
        hint = ("; the arrays look channels-last: set data.layout: nhwc"
                if tuple(input_shape) == (shape[2], shape[0], shape[1]) else "")
        raise DataError(f"{raw.source}: the config's input {_fmt(input_shape)} differs from the "
                        f"data's {_fmt(shape)} (C, H, W){hint}")
    return shape


def _check_classes(raw) -> list[str]:
    """The class names: the reader's, else "0" .. the largest label; every label must name one."""
    top = max(int(raw.y_train.max()), int(raw.y_test.max()) if len(raw.y_test) else -1)
    classes = raw.classes
    if classes is None:
        classes = [str(i) for i in range(top + 1)]
    if top >= len(classes):
        raise DataError(f"{raw.source}: label {top} is out of range for {len(classes)} classes "
                        f"({', '.join(classes)})")
    return classes


def _split(ntr: int, data, seed: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, validation indices) into the `ntr` examples of the training file."""
    nval = int(getattr(data, "validation", 0) or 0)
    if nval < 0:
        raise DataError(f"data.validation must be >= 0, got {nval}")
    if nval >= ntr:
        raise DataError(f"{source}: data.validation = {nval} leaves no training examples "
                        f"(the training set has {ntr}); use at most {ntr - 1}")
    held = np.zeros(ntr, dtype=bool)
    if nval:
        rng = np.random.default_rng([_SPLIT_STREAM, int(seed)])
        held[rng.choice(ntr, size=nval, replace=False)] = True
    keep = np.flatnonzero(~held)
    subset = getattr(data, "subset", None)
    if subset is not None:
        subset = int(subset)
        if subset < 1:
            raise DataError(f"data.subset must be >= 1, got {subset}")
        if subset > len(keep):
            raise DataError(f"{source}: data.subset = {subset} but only {len(keep)} training "
                            f"examples remain after holding out {nval} for validation")
        keep = keep[:subset]
    return keep, np.flatnonzero(held)


def _fmt(shape) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and population std of NCHW images (uint8 scaled by 1/255), as (C,)
    float32 arrays. Two passes in float64 (the second centred on the first's mean), so a large
    mean does not cancel the variance's digits."""
    n, c = x.shape[:2]
    x3 = np.ascontiguousarray(x).reshape(n, c, -1)
    count = x3.shape[0] * x3.shape[2]
    if count == 0:
        return np.zeros(c, np.float32), np.ones(c, np.float32)
    part = np.empty((n, c, 2), dtype=np.float64)
    _k.channel_moments(x3, np.zeros(c, dtype=np.float64), part)
    center = part[:, :, 0].sum(axis=0) / count
    _k.channel_moments(x3, center, part)
    s1 = part[:, :, 0].sum(axis=0) / count
    s2 = part[:, :, 1].sum(axis=0) / count
    mean = center + s1
    var = np.maximum(s2 - s1 * s1, 0.0)
    std = np.sqrt(var)
    if x.dtype == np.uint8:
        mean, std = mean / 255.0, std / 255.0
    return mean.astype(np.float32), std.astype(np.float32)
