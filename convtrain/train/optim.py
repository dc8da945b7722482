"""SGD with momentum (optionally Nesterov) and L2/L1 weight decay, as a function with explicit state.

    v = mu * v + g + wd * w + l1 * sign(w)        w -= lr * v
    (Nesterov: w -= lr * (g' + mu * v))

The learning rate sits outside the velocity so that a change of rate (schedule, divergence
halving) acts at once. The parameters a layer lists in `no_decay` (biases; batch norm's scale
and shift) get no decay unless `decay_biases`.
"""
from __future__ import annotations

import numpy as np

from ..nn.kernels.elementwise import sgd_update


def init_velocities(network) -> dict[str, np.ndarray]:
    return {key: np.zeros_like(p) for key, _, _, p in network.parameters()}


def decay_applies(layer, pname: str, decay_biases: bool) -> bool:
    if decay_biases:
        return True
    return pname not in layer.no_decay


def sgd_step(network, velocities: dict[str, np.ndarray], lr: float, optim) -> None:
    """One update of every parameter in place, from the gradients accumulated in the layers."""
    for key, layer, pname, p in network.parameters():
        common = network.common_of(layer)
        decay = decay_applies(layer, pname, optim.decay_biases) * common.decay_mult
        dtype = p.dtype.type
        sgd_update(p.reshape(-1), layer.grads[pname].reshape(-1), velocities[key].reshape(-1),
                   dtype(lr * common.lr_mult), dtype(optim.momentum), bool(optim.nesterov),
                   dtype(optim.weight_decay * decay), dtype(optim.l1 * decay))
