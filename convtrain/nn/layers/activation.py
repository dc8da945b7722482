"""Non-linearities: relu, leaky_relu, tanh, sigmoid, abs (Jarrett et al.'s rectification)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from ..kernels import elementwise as ew
from ...config.spec import option
from .base import LINEAR_INIT, Layer


@dataclass(frozen=True)
class NoOptions:
    pass


class OutputCache(NamedTuple):
    y: np.ndarray


class InputCache(NamedTuple):
    x: np.ndarray


class _Elementwise(Layer):
    Spec = NoOptions
    gain: ClassVar[tuple[str, float] | None] = None   # what init_gain returns

    def init_gain(self):
        return self.gain

    def flops(self, in_shape):
        return int(np.prod(in_shape))


class ReLU(_Elementwise):
    type = "relu"
    activation = "relu"
    gain = ("he", 2.0)     # Var(w) = 2 / fan_in: the ReLU halves the second moment

    def forward(self, x, *, train):
        y = np.empty_like(x)
        ew.relu_forward(x.reshape(-1), y.reshape(-1))
        return y, OutputCache(y)

    def backward(self, dout, cache, *, need_dx=True):
        dx = np.empty_like(dout)
        ew.relu_backward(cache.y.reshape(-1), dout.reshape(-1), dx.reshape(-1))
        return dx


@dataclass(frozen=True)
class LeakySpec:
    slope: float = option(0.01, min=0.0, max=1.0, doc="gradient for negative inputs")


class LeakyReLU(_Elementwise):
    type = "leaky_relu"
    short = "slope"
    Spec = LeakySpec
    activation = "leaky_relu"

    def init_gain(self):
        a = self.spec.slope    # He et al. 2015: Var(w) = 2 / ((1 + a^2) fan_in)
        return ("he", 2.0 / (1.0 + a * a))

    def forward(self, x, *, train):
        y = np.empty_like(x)
        ew.leaky_relu_forward(x.reshape(-1), self.dtype.type(self.spec.slope), y.reshape(-1))
        return y, InputCache(x)

    def backward(self, dout, cache, *, need_dx=True):
        dx = np.empty_like(dout)
        ew.leaky_relu_backward(cache.x.reshape(-1), self.dtype.type(self.spec.slope),
                               dout.reshape(-1), dx.reshape(-1))
        return dx


class Tanh(_Elementwise):
    type = "tanh"
    activation = "tanh"
    gain = ("glorot", 1.0)

    def forward(self, x, *, train):
        y = np.tanh(x)
        return y, OutputCache(y)

    def backward(self, dout, cache, *, need_dx=True):
        y = cache.y
        return dout * (1 - y * y)


class Sigmoid(_Elementwise):
    type = "sigmoid"
    activation = "sigmoid"
    gain = ("glorot", 1.0)

    def forward(self, x, *, train):
        # exp(-|x|) never overflows, and for x < 0 the form e / (1 + e) keeps the tiny values'
        # relative precision (0.5 * (1 + tanh(x / 2)) cancels to nothing below about -15)
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1, e) / (1 + e)
        return y, OutputCache(y)

    def backward(self, dout, cache, *, need_dx=True):
        y = cache.y
        return dout * y * (1 - y)


class Abs(_Elementwise):
    type = "abs"
    activation = "abs"
    gain = LINEAR_INIT     # E[|x|^2] = E[x^2]: abs keeps the second moment, gain 1

    def forward(self, x, *, train):
        return np.abs(x), InputCache(x)

    def backward(self, dout, cache, *, need_dx=True):
        return dout * np.sign(cache.x)
