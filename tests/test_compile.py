"""No kernel compiles a new specialisation once training has warmed up (DESIGN.md: stable dtypes)."""
import importlib
import pkgutil

import numpy as np

import convtrain.nn.kernels
from convtrain import config as configmod
from convtrain import data as datamod
from convtrain.nn.network import Network
from convtrain.train.trainer import Trainer

from compile_checks import signature_counts
from synthetic import write_config

EVERYTHING = """\
  - conv: {filters: 4, size: 3, pad: 1}
  - batch_norm
  - relu
  - lcn: 3
  - max_pool: 2
  - local: {filters: 4, size: 2}
  - leaky_relu
  - channel_pool: 2
  - avg_pool: {size: 2, stride: 1}
  - l2_pool: {size: 2, stride: 1}
  - dropout: 0.2
  - dense: 4
"""


def all_signature_counts():
    """signature_counts over every module of convtrain.nn.kernels, keyed "module.kernel"."""
    counts = {}
    for info in pkgutil.iter_modules(convtrain.nn.kernels.__path__):
        mod = importlib.import_module(f"convtrain.nn.kernels.{info.name}")
        counts.update({f"{info.name}.{k}": n for k, n in signature_counts(mod).items()})
    return counts


def test_no_new_signatures_after_warm_up(tmp_path):
    path = write_config(tmp_path, epochs=3)
    text = path.read_text()
    text = text.replace("  - conv: {filters: 4, size: 3, pad: 1}\n  - relu\n  - max_pool: 2\n  - dense: 4\n", EVERYTHING)
    path.write_text(text.replace("  validation: 64\n", "  validation: 64\n  augment: {translate: 1, hflip: true}\n"))
    cfg = configmod.load(str(path))
    splits = datamod.load(cfg.data, seed=cfg.seed, input_shape=cfg.input)
    net = Network.build(cfg.model, splits.input_shape, seed=cfg.seed)
    trainer = Trainer(cfg, net, splits, str(tmp_path / "run"))
    trainer.total_steps = trainer.steps_per_epoch + 2     # warm up: one epoch with evaluation
    trainer.fit()
    before = all_signature_counts()
    assert sum(before.values()) > 5
    trainer.total_steps = 3 * trainer.steps_per_epoch    # two more epochs, last batch included
    trainer.fit()
    after = all_signature_counts()
    grown = {k: (before[k], after[k]) for k in after if after[k] != before.get(k)}
    assert not grown, f"kernels compiled new signatures inside the loop: {grown}"
    assert all(np.isfinite(v).all() for v in net.state_dict().values())
