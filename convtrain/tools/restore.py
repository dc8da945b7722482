"""Rebuild a trained network from a checkpoint alone (eval, predict, show)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..train import checkpoint as ckpt
from .. import config as configmod
from ..errors import CheckpointError, ConfigError, DataError


@dataclass
class LoadedModel:
    cfg: object
    net: object
    meta: dict
    mean: np.ndarray
    std: np.ndarray
    classes: list
    input_shape: tuple
    splits: object = None


def load_for_inference(path: str, *, data_path: str | None = None, need_data: bool = False) -> LoadedModel:
    c = ckpt.load(path)
    try:
        cfg = configmod.loads(c.meta["config"], source=f"{path} (stored config)")
    except ConfigError as e:
        raise CheckpointError(f"{path}: the stored config is invalid: {e}") from None
    m = c.meta
    try:
        input_shape = tuple(_int(v) for v in m["input_shape"])
        mean = np.asarray(m["mean"], dtype=np.float32)
        std = np.asarray(m["std"], dtype=np.float32)
        if not isinstance(m["classes"], list):
            raise TypeError
        classes = [str(v) for v in m["classes"]]
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path}: malformed metadata (input shape, normalisation or classes)") from None
    if len(input_shape) not in (1, 3) or min(input_shape) < 1:
        raise CheckpointError(f"{path}: malformed metadata: input shape {list(input_shape)} is not "
                              "[C, H, W] or [D] of positive sizes")
    if (mean.ndim != 1 or std.ndim != 1 or len(mean) != input_shape[0]
            or len(std) != input_shape[0]):
        raise CheckpointError(f"{path}: malformed metadata: normalisation does not match the input")
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std >= 0).all()):
        raise CheckpointError(f"{path}: malformed metadata: the normalisation mean and std must be "
                              "finite, the std >= 0")
    from ..nn.network import Network
    try:
        net = Network.build(cfg.model, input_shape, seed=cfg.seed, source=path)
    except ConfigError as e:
        raise CheckpointError(f"{path}: the stored model cannot be built: {e}") from None
    try:
        net.load_state_dict(c.state)
    except ValueError as e:
        raise CheckpointError(f"{path}: weights do not fit the stored model: {e}") from None
    outputs = net.layers[-1].output_shape[0]
    classes += [str(i) for i in range(len(classes), outputs)]   # a name for every output
    splits = None
    if need_data:
        from .. import data as datamod
        data_cfg = cfg.data
        if data_path is not None:
            data_cfg = dataclasses.replace(data_cfg, path=data_path)
        try:
            splits = datamod.load(data_cfg, seed=cfg.seed, input_shape=input_shape)
        except DataError as e:
            if data_path is not None:
                raise
            raise DataError(f"{e} (the data set stored in {path}; pass --data PATH to read "
                            "another)") from None
    return LoadedModel(cfg, net, m, mean, std, classes, input_shape, splits)


def _int(v) -> int:
    """A JSON integer (not a bool, not a float)."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"expected an integer, got {v!r}")
    return v
