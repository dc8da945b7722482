"""A network's health on one batch: dead ReLU units per layer, loss, and the end-of-run warnings."""
import math

import numpy as np
import pytest

from convtrain import config as configmod
from convtrain import data as datamod
from convtrain.nn.network import Network
from convtrain.train import health

MODEL = """\
input: [1, 6, 6]
model:
  - conv: {filters: 4, size: 3, pad: 1}
  - relu
  - max_pool: 2
  - dense: 8
  - relu
  - dense: 3
"""


@pytest.fixture
def net():
    cfg = configmod.loads(MODEL)
    return Network.build(cfg.model, (1, 6, 6), seed=0)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((32, 1, 6, 6)).astype(np.float32), rng.integers(0, 3, 32)


def test_a_fresh_network_has_few_dead_units_named_after_the_layers_they_rectify(net, batch):
    h = health.measure(net, *batch)
    assert list(h.dead) == ["conv1", "dense1"]     # the ReLU after conv1 is fused into it
    assert h.dead["conv1"] == 0.0 and h.dead["dense1"] < 0.5
    assert 0.5 < h.loss < 5 and h.mostly_dead() == {}


def test_a_unit_is_dead_when_it_is_zero_for_every_image_and_position(net, batch):
    conv = net.layers[0]
    conv.params["bias"][:2] = -1e3          # two of four filters never fire
    dense = net.layers[3]
    dense.params["bias"][:] = -1e3          # every unit of dense1
    before = {k: v.copy() for k, v in net.state_dict().items()}
    h = health.measure(net, *batch)
    assert h.dead == {"conv1": 0.5, "dense1": 1.0}
    assert h.mostly_dead() == {"dense1": 1.0}
    assert all(np.array_equal(before[k], v) for k, v in net.state_dict().items())  # no state


def test_mostly_dead_is_two_thirds_or_more():
    assert health.Health(1.0, {"a": 0.6, "b": 2 / 3, "c": 0.7}).mostly_dead() == {
        "b": 2 / 3, "c": 0.7}


def test_units_died_only_when_a_layer_became_mostly_dead(net, batch):
    net.layers[3].params["bias"][:] = -1e3
    now = health.measure(net, *batch)
    assert (health.units_died({"conv1": 0.0, "dense1": 0.2}, now)
            == "units died: 100% of dense1 dead")
    assert health.units_died({"conv1": 0.0, "dense1": 0.95}, now) is None   # dead already
    assert health.units_died({}, health.measure(Network.build(
        configmod.loads(MODEL).model, (1, 6, 6), seed=0), *batch)) is None


def test_the_prior_loss_is_ln_k_for_balanced_classes_and_less_otherwise():
    assert health.prior_loss(np.array([0, 1, 2, 3] * 5), 4) == pytest.approx(math.log(4))
    skewed = health.prior_loss(np.array([0] * 9 + [1]), 4)
    assert skewed == pytest.approx(-(0.9 * math.log(0.9) + 0.1 * math.log(0.1)))
    assert health.prior_loss(np.array([], dtype=np.int64), 4) == pytest.approx(math.log(4))


def test_warnings_name_what_happened_and_what_to_try():
    prior = math.log(10)
    assert health.warnings(health.Health(0.3, {"conv1": 0.2}), prior) == []
    nothing, dead = health.warnings(health.Health(2.30, {"conv1": 0.0, "conv2": 1.0,
                                                          "dense1": 0.93}), prior)
    assert nothing.reason == "learned_nothing"
    assert "learned nothing" in nothing.message and "lr-search" in nothing.message
    assert dead.reason == "dead_units"
    assert "100% of conv2, 93% of dense1" in dead.message and "smaller optim.lr" in dead.message
    assert [w.reason for w in health.warnings(health.Health(math.nan, {}), prior)] == [
        "learned_nothing"]


def test_the_probe_batch_is_the_first_training_images_normalised():
    class Split:
        x = np.arange(5 * 4, dtype=np.uint8).reshape(5, 1, 2, 2)
        y = np.arange(5)

    class Splits:
        train = Split()
        mean = np.array([2.0], dtype=np.float32)
        std = np.array([4.0], dtype=np.float32)

    x, y = health.probe_batch(Splits(), 3)
    assert x.shape == (3, 1, 2, 2) and list(y) == [0, 1, 2]
    assert np.array_equal(x, datamod.normalize(Split.x[:3], Splits.mean, Splits.std))
    assert len(health.probe_batch(Splits(), 99)[1]) == 5
