"""Non-linearities: relu, leaky_relu, tanh, sigmoid, abs (Jarrett et al.'s rectification)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..kernels import elementwise as ew
from ...config.spec import option
from .base import Layer


@dataclass(frozen=True)
class NoOptions:
    pass


class OutputCache(NamedTuple):
    y: np.ndarray


class InputCache(NamedTuple):
    x: np.ndarray


class _Elementwise(Layer):
    Spec = NoOptions

    def flops(self, in_shape):
        return int(np.prod(in_shape))


class ReLU(_Elementwise):
    type = "relu"
    gain_kind = "relu"

    def forward(self, x, *, train):
        y = np.empty_like(x)
        ew.relu_forward(x.reshape(-1), y.reshape(-1))
        return y, OutputCache(y)

    def forward_rectified(self, x):
        """forward() when the layer before has already applied this ReLU (fused into its own
        pass, see Network.forward): x is the output, nothing to compute."""
        return x, OutputCache(x)

    def backward(self, dout, cache):
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
    gain_kind = "leaky_relu"

    def forward(self, x, *, train):
        y = np.empty_like(x)
        ew.leaky_relu_forward(x.reshape(-1), self.dtype.type(self.spec.slope), y.reshape(-1))
        return y, InputCache(x)

    def backward(self, dout, cache):
        dx = np.empty_like(dout)
        ew.leaky_relu_backward(cache.x.reshape(-1), self.dtype.type(self.spec.slope),
                               dout.reshape(-1), dx.reshape(-1))
        return dx


class Tanh(_Elementwise):
    type = "tanh"
    gain_kind = "tanh"

    def forward(self, x, *, train):
        y = np.tanh(x)
        return y, OutputCache(y)

    def backward(self, dout, cache):
        y = cache.y
        return dout * (1 - y * y)


class Sigmoid(_Elementwise):
    type = "sigmoid"
    gain_kind = "sigmoid"

    def forward(self, x, *, train):
        # 0.5 * (1 + tanh(x / 2)) is sigmoid without exp overflow for large |x|
        y = 0.5 * (1 + np.tanh(0.5 * x))
        return y, OutputCache(y)

    def backward(self, dout, cache):
        y = cache.y
        return dout * y * (1 - y)


class Abs(_Elementwise):
    type = "abs"
    gain_kind = "linear"  # E[|x|^2] = E[x^2]: abs keeps the second moment, gain 1

    def forward(self, x, *, train):
        return np.abs(x), InputCache(x)

    def backward(self, dout, cache):
        return dout * np.sign(cache.x)
