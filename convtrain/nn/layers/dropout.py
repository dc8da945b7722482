"""Dropout with inverted scaling: active only in training, the identity in evaluation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ...config.spec import option
from .base import Layer


@dataclass(frozen=True)
class DropoutSpec:
    rate: float = option(0.5, min=0.0, max=0.99, doc="probability of zeroing a unit")


class MaskCache(NamedTuple):
    mask: np.ndarray | None   # kept units scaled by 1 / (1 - rate); None in evaluation


class Dropout(Layer):
    type = "dropout"
    short = "rate"
    Spec = DropoutSpec
    random = True

    def flops(self, in_shape):
        return int(np.prod(in_shape))

    def describe(self):
        return f"p={self.spec.rate:g}"

    def forward(self, x, *, train):
        if not train or self.spec.rate == 0:
            return x, MaskCache(None)
        keep = 1.0 - self.spec.rate
        mask = self.rng.random(x.shape, dtype=np.float32 if self.dtype == np.float32 else np.float64)
        mask = np.where(mask < keep, self.dtype.type(1.0 / keep), self.dtype.type(0.0))
        return x * mask, MaskCache(mask)

    def backward(self, dout, cache, *, need_dx=True):
        if cache.mask is None:
            return dout
        return dout * cache.mask
