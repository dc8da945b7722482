"""Batch normalisation (Ioffe & Szegedy 2015): per channel for images, per feature for vectors.

Training normalises with the batch's statistics and updates running averages (buffers, saved in
checkpoints); evaluation uses the running averages.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ...config.spec import option
from ..kernels import batchnorm as K
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
        x = np.ascontiguousarray(x, dtype=self.dtype)
        x3 = _per_channel(x)
        eps = self.spec.eps
        if train:
            mean, var = np.empty(self.channels), np.empty(self.channels)
            K.channel_stats(x3, mean, var)
            self._update_running_stats(mean, var, count=x3.shape[0] * x3.shape[2])
        else:
            mean = self.buffers["running_mean"].astype(np.float64)
            var = self.buffers["running_var"]
        inv_std64 = 1.0 / np.sqrt(var.astype(np.float64) + eps)
        centre = mean.astype(self.dtype)
        correction = ((mean - centre) * inv_std64).astype(self.dtype)
        inv_std = inv_std64.astype(self.dtype)
        xhat = np.empty_like(x)
        y = np.empty_like(x)
        K.normalise(x3, centre, inv_std, correction, self.params["weight"], self.params["bias"],
                    _per_channel(xhat), _per_channel(y))
        return y, BNCache(xhat, inv_std, train)

    def _update_running_stats(self, mean, var, count):
        m = self.spec.momentum
        unbiased = var * (count / max(count - 1, 1))
        self.buffers["running_mean"] *= m
        self.buffers["running_mean"] += (1 - m) * mean
        self.buffers["running_var"] *= m
        self.buffers["running_var"] += (1 - m) * unbiased

    def backward(self, dout, cache, *, need_dx=True):
        dout = np.ascontiguousarray(dout, dtype=self.dtype)
        d3, xhat3 = _per_channel(dout), _per_channel(cache.xhat)
        sum_d, sum_dx = np.empty(self.channels), np.empty(self.channels)
        K.grad_sums(d3, xhat3, sum_d, sum_dx)
        self.grads["weight"] += sum_dx
        self.grads["bias"] += sum_d
        if not need_dx:
            return None
        a = self.params["weight"] * cache.inv_std
        if cache.train:
            m = d3.shape[0] * d3.shape[2]
            b = (a * (sum_d / m)).astype(self.dtype)
            k = (a * (sum_dx / m)).astype(self.dtype)
        else:   # the running statistics are constants: dx = gamma inv_std dout
            b = k = np.zeros_like(a)
        dx = np.empty_like(dout)
        K.input_grad(d3, xhat3, a, b, k, _per_channel(dx))
        return dx


def _per_channel(a):
    """(N, C, H, W) or (N, F) -> a (N, C, HW) view: vectors are channels of one value."""
    return a.reshape(a.shape[0], a.shape[1], -1)
