"""The tables of names a config is checked against, each imported only when a config is read.

Config sits below the layers, the trainer and the data readers, so it takes their registries
lazily: `import convtrain.config` stays light, and `loads(..., layer_types=...,
schedule_types=...)` may pass other tables (tests do).
"""
from __future__ import annotations

from typing import Any, Mapping

def layer_types() -> Mapping[str, Any]:
    """Layer type name -> layer class (with `.type`, `.Spec`, `.short`)."""
    from ..nn.layers.registry import LAYER_TYPES
    return LAYER_TYPES


def schedule_types() -> Mapping[str, Any]:
    """Schedule type name -> schedule class (a spec dataclass of its options, with `.type`)."""
    from ..train.schedules import SCHEDULES
    return SCHEDULES


def dataset_names() -> tuple[str, ...]:
    """The values `data.dataset` takes: the data readers' table."""
    from ..data.readers import READERS
    return tuple(READERS)
