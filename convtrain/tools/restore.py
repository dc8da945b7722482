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
    meta: ckpt.CheckpointMeta
    mean: np.ndarray
    std: np.ndarray
    classes: list
    input_shape: tuple
    splits: object = None


def load_for_inference(path: str, *, data_path: str | None = None, need_data: bool = False) -> LoadedModel:
    c = ckpt.load(path)
    c.require("input_shape", "mean", "std", "classes")
    try:
        cfg = configmod.loads(c.meta.config, source=f"{path} (stored config)", stored=True)
    except ConfigError as e:
        raise CheckpointError(f"{path}: the stored config is invalid: {e}") from None
    m = c.meta
    input_shape = tuple(m.input_shape)
    mean = np.asarray(m.mean, dtype=np.float32)
    std = np.asarray(m.std, dtype=np.float32)
    classes = list(m.classes)
    from ..nn.network import Network
    try:
        net = Network.build(cfg.model, input_shape, seed=cfg.seed, source=path)
        net.require_class_scores(path)
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

