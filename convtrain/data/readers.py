"""The readers, one per `data.dataset` name: the only table to extend for a new data format.

A reader is a function `read(data) -> RawData`: it takes the config's data section, finds and
decodes its files, passes the arrays through `raw.images` / `raw.labels`, and raises `DataError`
naming the path for anything wrong. It reads the data section's keys it needs (`path`, `layout`,
...) and ignores the others; the split, the statistics, the batches and the augmentation are
the same for every reader and live elsewhere.
"""
from __future__ import annotations

from typing import Callable

from ..errors import DataError
from .idx import read_fashion_mnist, read_mnist
from .npz import read_npz
from .raw import RawData

Reader = Callable[..., RawData]

READERS: dict[str, Reader] = {
    "fashion-mnist": read_fashion_mnist,
    "mnist": read_mnist,
    "npz": read_npz,
}


def reader_names() -> tuple[str, ...]:
    """The accepted values of data.dataset, in the table's order."""
    return tuple(READERS)


def read(data) -> RawData:
    """The raw data set that `data.dataset` names."""
    reader = READERS.get(data.dataset)
    if reader is None:
        raise DataError(f"unknown dataset {data.dataset!r}; known: {', '.join(READERS)}")
    return reader(data)
