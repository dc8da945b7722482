"""Fully-connected layer (any input shape is flattened: the implicit flatten) and flatten."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ...config.spec import option
from .base import Layer


@dataclass(frozen=True)
class DenseSpec:
    units: int = option(min=1, doc="number of outputs")
    bias: bool = option(True)


class DenseCache(NamedTuple):
    x2: np.ndarray      # input flattened to (N, D)


class Dense(Layer):
    """y = x W^T + b with W (units, D), D the flattened per-sample input size."""
    type = "dense"
    short = "units"
    Spec = DenseSpec

    def out_shape(self, in_shape):
        return (self.spec.units,)

    @property
    def in_features(self) -> int:
        return math.prod(self.in_shape)

    def param_shapes(self):
        shapes = {"weight": (self.spec.units, self.in_features)}
        if self.spec.bias:
            shapes["bias"] = (self.spec.units,)
        return shapes

    def fans(self):
        return (self.in_features, self.spec.units)

    def flops(self, in_shape):
        return 2 * self.in_features * self.spec.units

    def describe(self):
        return f"{self.in_features}->{self.spec.units}"

    def filter_bank(self):
        """On an image input, each unit's weights as an image of the input's shape (a template)."""
        if len(self.in_shape) != 3:
            return None
        w = self.params["weight"]
        return w.reshape((w.shape[0],) + self.in_shape)

    def forward(self, x, *, train):
        x2 = x.reshape(x.shape[0], -1)
        y = x2 @ self.params["weight"].T
        if self.spec.bias:
            y += self.params["bias"]
        return y, DenseCache(x2)

    def backward(self, dout, cache, *, need_dx=True):
        self.grads["weight"] += dout.T @ cache.x2
        if self.spec.bias:
            self.grads["bias"] += dout.sum(axis=0)
        dx = dout @ self.params["weight"]
        return dx.reshape((dout.shape[0],) + self.in_shape)


@dataclass(frozen=True)
class NoOptions:
    pass


class Flatten(Layer):
    """(C, H, W) -> (C*H*W,). Dense flattens on its own; this makes it explicit."""
    type = "flatten"
    Spec = NoOptions

    def out_shape(self, in_shape):
        return (math.prod(in_shape),)

    def forward(self, x, *, train):
        return x.reshape(x.shape[0], -1), None

    def backward(self, dout, cache, *, need_dx=True):
        return dout.reshape((dout.shape[0],) + self.in_shape)
