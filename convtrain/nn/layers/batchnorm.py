"""Batch normalisation (Ioffe & Szegedy 2015): per channel for images, per feature for vectors.

Training normalises with the batch's statistics and updates running averages (buffers, saved in
checkpoints); evaluation uses the running averages.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ...config.spec import option
from .base import Layer


@dataclass(frozen=True)
class BatchNormSpec:
    momentum: float = option(0.9, min=0.0, max=1.0,
                             doc="running = momentum * running + (1 - momentum) * batch")
    eps: float = option(1e-5, min=0.0, min_exclusive=True)


class BNCache(NamedTuple):
    xhat: np.ndarray
    inv_std: np.ndarray   # (C,)
    train: bool


class BatchNorm(Layer):
    type = "batch_norm"
    Spec = BatchNormSpec
    no_decay = ("weight", "bias")

    @property
    def channels(self) -> int:
        return self.in_shape[0]

    def _axes(self, ndim):
        return (0,) if ndim == 2 else (0, 2, 3)

    def _bshape(self):
        return (1, self.channels) + (1,) * (len(self.in_shape) - 1)

    def param_shapes(self):
        return {"weight": (self.channels,), "bias": (self.channels,)}

    def buffer_shapes(self):
        return {"running_mean": (self.channels,), "running_var": (self.channels,)}

    def passes_init_gain(self):
        return True    # it renormalises: the non-linearity after it decides the init before it

    def init_params(self, rng, scheme):
        super().init_params(rng, scheme)
        self.params["weight"].fill(1)
        self.buffers["running_var"].fill(1)

    def flops(self, in_shape):
        return 4 * int(np.prod(in_shape))

    def forward(self, x, *, train):
        axes = self._axes(x.ndim)
        shape = self._bshape()
        eps = self.spec.eps
        if train:
            centred, mean, var = _centre(x, axes)
            m = self.spec.momentum
            count = x.size // self.channels
            unbiased = var * (count / max(count - 1, 1))
            self.buffers["running_mean"] *= m
            self.buffers["running_mean"] += (1 - m) * mean
            self.buffers["running_var"] *= m
            self.buffers["running_var"] += (1 - m) * unbiased
        else:
            centred = x - self.buffers["running_mean"].reshape(shape)
            var = self.buffers["running_var"]
        inv_std = (1.0 / np.sqrt(var + eps)).astype(self.dtype)
        xhat = centred
        xhat *= inv_std.reshape(shape)
        y = xhat * self.params["weight"].reshape(shape) + self.params["bias"].reshape(shape)
        return y.astype(self.dtype, copy=False), BNCache(xhat, inv_std, train)

    def backward(self, dout, cache, *, need_dx=True):
        axes = self._axes(dout.ndim)
        shape = self._bshape()
        gamma = self.params["weight"].reshape(shape)
        self.grads["weight"] += (dout * cache.xhat).sum(axis=axes)
        self.grads["bias"] += dout.sum(axis=axes)
        dxhat = dout * gamma
        if not cache.train:
            return dxhat * cache.inv_std.reshape(shape)
        m = dout.size // self.channels
        mean_dxhat = dxhat.sum(axis=axes).reshape(shape) / m
        mean_dxhat_xhat = (dxhat * cache.xhat).sum(axis=axes).reshape(shape) / m
        dx = (dxhat - mean_dxhat - cache.xhat * mean_dxhat_xhat) * cache.inv_std.reshape(shape)
        return dx.astype(self.dtype, copy=False)


def _centre(x, axes):
    """-> (x - mean, mean, variance) per channel, in x's dtype and precise when the channel sits
    on a large offset (100 + 0.01 noise): a rough mean first, then the exact residual mean of
    x - rough, where the subtraction is exact for x near the rough mean."""
    rough = x.mean(axis=axes, keepdims=True)
    centred = x - rough
    delta = centred.mean(axis=axes, keepdims=True)
    var = np.maximum(np.square(centred).mean(axis=axes) - np.square(delta).reshape(-1), 0)
    centred -= delta
    mean = rough.reshape(-1).astype(np.float64) + delta.reshape(-1)
    return centred, mean, var
