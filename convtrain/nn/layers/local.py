"""`local`: a locally-connected layer, a convolution whose filters are not shared across positions.

    - local: {filters: 32, size: 5, stride: 1, pad: 0, bias: true}
    - local: 32                    # short form: filters

Input (C, H, W) -> output (F, OH, OW); weight (F, OH, OW, C, KH, KW): each output pixel has its
own filter; bias (F, OH, OW). The keys, defaults and the strict output-size rule are those of
`conv` (see layers/conv.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import elementwise as ew
from ..kernels import local as K
from .conv import (
    ConvSpec,
    WindowLayer,
    crop_input,
    merge_input_grad,
    merge_weight,
    split_weight,
)


@dataclass(frozen=True)
class LocalSpec(ConvSpec):
    """The keys of `conv`: filters, size, stride, pad, bias."""


class LocallyConnected(WindowLayer):
    """out[n, f, oh, ow] = bias[f, oh, ow] + <weight[f, oh, ow], the input window at (oh, ow)>."""
    type = "local"
    Spec = LocalSpec
    forward_kernel = staticmethod(K.local_forward)

    def param_shapes(self):
        g = self.geom
        F = self.spec.filters
        shapes = {"weight": (F, g.OH, g.OW, g.C, g.KH, g.KW)}
        if self.spec.bias:
            shapes["bias"] = (F, g.OH, g.OW)
        return shapes

    # --- computation --------------------------------------------------------------------------
    def _bias(self):
        if self.spec.bias:
            return self.params["bias"]
        g = self.geom
        return np.zeros((self.spec.filters, g.OH, g.OW), dtype=self.dtype)

    def backward(self, dout, cache):
        g = self.geom
        F = self.spec.filters
        N = cache.xp.shape[0]
        dout = np.ascontiguousarray(dout, dtype=self.dtype)
        self._check_dout(dout, N)
        if cache.relu_out is not None:    # the ReLU fused into forward: its gradient first
            masked = np.empty_like(dout)
            ew.relu_backward(cache.relu_out.reshape(-1), dout.reshape(-1), masked.reshape(-1))
            dout = masked
        db = self.grads["bias"] if self.spec.bias else np.zeros((F, g.OH, g.OW), dtype=self.dtype)
        w = self.params["weight"]
        if g.SH == 1 and g.SW == 1:
            K.local_backward_weight(cache.xp, dout, self.grads["weight"], db)
            if not self.need_dx:
                return None
            dxp = np.empty(cache.xp.shape, dtype=self.dtype)
            K.local_backward_data(dout, w, dxp)
            return crop_input(dxp, g)
        wq = split_weight(w, g)
        dwq = np.zeros_like(wq)
        K.local_backward_weight(cache.xp, dout, dwq, db)
        self.grads["weight"] += merge_weight(dwq, g)
        if not self.need_dx:
            return None
        dxp = np.empty(cache.xp.shape, dtype=self.dtype)
        K.local_backward_data(dout, wq, dxp)
        return merge_input_grad(dxp, g)
