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

    def weight_shape(self):
        g = self.geom
        return (self.spec.filters, g.OH, g.OW, g.C, g.KH, g.KW)

    def bias_shape(self):
        g = self.geom
        return (self.spec.filters, g.OH, g.OW)

    def filter_bank(self):
        """The filters of the central output position (each position has its own)."""
        w = self.params["weight"]     # (F, OH, OW, C, KH, KW)
        return w[:, w.shape[1] // 2, w.shape[2] // 2]

    # --- computation --------------------------------------------------------------------------
    def backward(self, dout, cache, *, need_dx=True):
        g = self.geom
        dout = self._checked_dout(dout, cache)
        if cache.relu_out is not None:    # the ReLU fused into forward: its gradient first
            masked = np.empty_like(dout)
            ew.relu_backward(cache.relu_out.reshape(-1), dout.reshape(-1), masked.reshape(-1))
            dout = masked
        db = self._bias_grad()
        w = self.params["weight"]
        if g.SH == 1 and g.SW == 1:
            K.local_backward_weight(cache.xp, dout, self.grads["weight"], db)
            if not need_dx:
                return None
            dxp = np.empty(cache.xp.shape, dtype=self.dtype)
            K.local_backward_data(dout, w, dxp)
            return crop_input(dxp, g)
        wq = split_weight(w, g)
        dwq = np.zeros_like(wq)
        K.local_backward_weight(cache.xp, dout, dwq, db)
        self.grads["weight"] += merge_weight(dwq, g)
        if not need_dx:
            return None
        dxp = np.empty(cache.xp.shape, dtype=self.dtype)
        K.local_backward_data(dout, wq, dxp)
        return merge_input_grad(dxp, g)
