"""LAYER_TYPES: the one registry of layer types, an explicit dict from YAML name to class."""
from __future__ import annotations

from .activation import Abs, LeakyReLU, ReLU, Sigmoid, Tanh
from .batchnorm import BatchNorm
from .conv import Conv2D
from .dense import Dense, Flatten
from .dropout import Dropout
from .lcn import DivisiveNorm, LCN, SubtractiveNorm
from .local import LocallyConnected
from .pool import AvgPool, ChannelPool, L2Pool, MaxPool


def _registry(classes) -> dict:
    table = {}
    for cls in classes:
        if cls.type in table:
            raise RuntimeError(f"layer type {cls.type!r} registered twice")
        table[cls.type] = cls
    return table


LAYER_TYPES = _registry([
    Conv2D, LocallyConnected, Dense, Flatten,
    MaxPool, AvgPool, L2Pool, ChannelPool,
    LCN, SubtractiveNorm, DivisiveNorm,
    ReLU, LeakyReLU, Tanh, Sigmoid, Abs,
    Dropout, BatchNorm,
])
