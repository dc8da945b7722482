"""The readers, one per `data.dataset` name: the only table to extend for a new data format.

A reader is a function `read(data, input_shape) -> RawData`: it takes the config's data section
and the config's `input` (C, H, W), or None when the config gives none; it finds and decodes its
files, passes the arrays through `raw.images` / `raw.labels`, and raises `DataError` naming the
path for anything wrong. It reads the data section's keys it needs (`path`, `layout`, ...) and
ignores the others; only a format that has to convert its images (folder) needs `input_shape`,
the others leave the shape check to splits.py. The split, the statistics, the batches and the
augmentation are the same for every reader and live elsewhere.
"""
from __future__ import annotations

from typing import Callable

from ..errors import DataError
from .cifar10 import read_cifar10
from .folder import read_folder
from .idx import read_fashion_mnist, read_mnist
from .npz import read_npz
from .raw import RawData

Reader = Callable[..., RawData]

READERS: dict[str, Reader] = {
    "fashion-mnist": read_fashion_mnist,
    "mnist": read_mnist,
    "npz": read_npz,
    "cifar10": read_cifar10,
    "folder": read_folder,
}


def reader_names() -> tuple[str, ...]:
    """The accepted values of data.dataset, in the table's order."""
    return tuple(READERS)


def read(data, input_shape=None) -> RawData:
    """The raw data set that `data.dataset` names; `input_shape` is the config's input."""
    reader = READERS.get(data.dataset)
    if reader is None:
        raise DataError(f"unknown dataset {data.dataset!r}; known: {', '.join(READERS)}")
    return reader(data, input_shape)
