"""Keys every layer accepts besides its own spec: name, init, sparsity, lr_mult, decay_mult."""
from __future__ import annotations

from dataclasses import dataclass

from .spec import describe, option


def init_scheme(v) -> tuple[str, float] | None:
    """`he | glorot | lecun | {normal: std} | {uniform: a}` -> (kind, value)."""
    if v is None:
        return None
    if isinstance(v, str):
        if v in ("he", "glorot", "lecun"):
            return (v, 2.0 if v == "he" else 1.0)
        raise ValueError(f"must be he, glorot, lecun, {{normal: std}} or {{uniform: a}}, got {describe(v)}")
    if isinstance(v, dict) and len(v) == 1:
        (kind, value), = v.items()
        if kind in ("normal", "uniform"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{kind} must be a positive number, got {describe(value)}")
            return (kind, float(value))
    raise ValueError(f"must be he, glorot, lecun, {{normal: std}} or {{uniform: a}}, got {describe(v)}")


@dataclass(frozen=True)
class LayerCommon:
    name: str | None = option(None, doc="names the layer in summaries and checkpoints")
    init: tuple | None = option(None, convert=init_scheme,
                                doc="he | glorot | lecun | {normal: std} | {uniform: a}")
    sparsity: float = option(0.0, min=0.0, doc="adds sparsity * mean |output| to the loss")
    lr_mult: float = option(1.0, min=0.0, doc="multiplies the learning rate of this layer")
    decay_mult: float = option(1.0, min=0.0, doc="multiplies the weight decay of this layer")


COMMON_KEYS = ("name", "init", "sparsity", "lr_mult", "decay_mult")
