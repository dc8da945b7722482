"""Whole networks: random layer combinations pass the float64 gradient check, init keeps the
variance, sparsity and per-layer options act, state round-trips."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convtrain import config as configmod
from convtrain.errors import ShapeError
from convtrain.tools.gradcheck import check_network
from convtrain.nn.network import Network

IMAGE_LAYERS = [
    "- conv: {filters: 3, size: 3, pad: 1}",
    "- conv: {filters: 2, size: [3, 2], stride: 1, pad: same}",
    "- conv: {filters: 2, size: 3, stride: 2, pad: same}",
    "- local: {filters: 2, size: 3, pad: 1}",
    "- relu", "- leaky_relu: 0.1", "- tanh", "- sigmoid", "- abs",
    "- lcn: {size: 3}", "- subtractive_norm: 3", "- divisive_norm: {size: 3}",
    "- max_pool: {size: 2, stride: 1}", "- avg_pool: {size: 3, stride: 1, pad: 1}",
    "- l2_pool: {size: 2, stride: 1}", "- max_pool: {size: 2, stride: 2, ceil: true}",
    "- batch_norm", "- dropout: 0.3",
    "- conv: {filters: 4, size: 1}\n  - channel_pool: {size: 2, op: max}",
    "- conv: {filters: 4, size: 1}\n  - channel_pool: {size: 2, op: l2}",
    "- relu: {sparsity: 0.01}",
]


def net_from(text, input_shape, dtype=np.float64, seed=0):
    cfg = configmod.loads(f"input: {list(input_shape)}\nmodel:\n{text}")
    return Network.build(cfg.model, input_shape, dtype=dtype, seed=seed)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers=st.lists(st.sampled_from(IMAGE_LAYERS), min_size=1, max_size=4),
       channels=st.sampled_from([1, 3]), h=st.integers(5, 9), w=st.integers(5, 9),
       seed=st.integers(0, 100))
def test_random_layer_combinations_pass_the_gradient_check(layers, channels, h, w, seed):
    text = "".join(f"  {l}\n" for l in layers) + "  - dense: 3\n"
    try:
        net = net_from(text, (channels, h, w), seed=seed)
    except ShapeError:
        return   # a stride that does not tile this size: refused with a message, not truncated
    rng = np.random.default_rng(seed)
    # Biases start at zero, so two filters that see only zeros (after dropout) tie exactly in a
    # max over channels: a kink where no derivative exists. Random biases make ties improbable.
    for layer in net.layers:
        if "bias" in layer.params:
            layer.params["bias"][...] = rng.normal(0.0, 0.1, layer.params["bias"].shape)
    x = rng.standard_normal((2, channels, h, w))
    y = rng.integers(0, 3, 2)
    for r in check_network(net, x, y, seed=seed, limit=8):
        assert r.max_rel_error < 1e-6, (text, r)


def test_every_layer_type_in_one_net():
    text = """\
  - conv: {filters: 4, size: 3, pad: same, init: he}
  - batch_norm
  - relu: {sparsity: 0.001}
  - lcn: {size: 5}
  - max_pool: 2
  - local: {filters: 4, size: 3, stride: 1, pad: 1}
  - leaky_relu: 0.05
  - channel_pool: 2
  - subtractive_norm: 3
  - divisive_norm: 3
  - l2_pool: {size: 2, stride: 1}
  - avg_pool: {size: 2, stride: 1}
  - tanh
  - abs
  - flatten
  - dropout: 0.2
  - dense: {units: 6, init: {normal: 0.1}}
  - sigmoid
  - dense: 4
"""
    net = net_from(text, (3, 10, 12))
    rng = np.random.default_rng(0)
    results = check_network(net, rng.standard_normal((2, 3, 10, 12)), rng.integers(0, 4, 2), limit=10)
    assert all(r.max_rel_error < 1e-6 for r in results), results
    types = {l.type for l in net.layers}
    from convtrain.nn.layers.registry import LAYER_TYPES
    assert types == set(LAYER_TYPES)


def test_default_init_keeps_the_variance_through_depth():
    text = "".join("  - conv: {filters: 16, size: 3, pad: 1}\n  - relu\n" for _ in range(6)) + "  - dense: 10\n"
    net = net_from(text, (3, 16, 16), dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((32, 3, 16, 16)).astype(np.float32)
    stds = []
    for layer in net.layers:
        x, _ = layer.forward(x, train=False)
        if layer.type == "relu":
            stds.append(float(np.sqrt((x ** 2).mean())))
    assert max(stds) / min(stds) < 3, stds       # no collapse or explosion over 6 layers
    assert min(stds) > 0.3


def test_sparsity_adds_to_the_loss():
    plain = net_from("  - dense: 8\n  - relu\n  - dense: 2\n", (5,))
    sparse = net_from("  - dense: 8\n  - relu: {sparsity: 0.5}\n  - dense: 2\n", (5,))
    x = np.random.default_rng(0).standard_normal((4, 5))
    y = np.array([0, 1, 0, 1])
    l1, _, _ = plain.loss_and_grads(x, y)
    l2, d2, _ = sparse.loss_and_grads(x, y)
    h = np.maximum(x @ sparse.layers[0].params["weight"].T + sparse.layers[0].params["bias"], 0)
    assert l2 == pytest.approx(l1 + 0.5 * np.abs(h).mean())


def test_state_dict_round_trip_and_mismatch():
    a = net_from("  - conv: {filters: 2, size: 3}\n  - batch_norm\n  - dense: 3\n", (1, 5, 5), seed=1)
    b = net_from("  - conv: {filters: 2, size: 3}\n  - batch_norm\n  - dense: 3\n", (1, 5, 5), seed=2)
    b.load_state_dict(a.state_dict())
    for k, v in a.state_dict().items():
        assert np.array_equal(v, b.state_dict()[k])
    c = net_from("  - conv: {filters: 3, size: 3}\n  - dense: 3\n", (1, 5, 5))
    with pytest.raises(ValueError, match="conv1.weight: shape"):
        c.load_state_dict(a.state_dict())


def test_auto_names_skip_user_names():
    net = net_from("  - conv: {filters: 2, size: 3, name: conv1}\n  - conv: {filters: 2, size: 1}\n"
                   "  - dense: 2\n", (1, 5, 5))
    assert [l.name for l in net.layers] == ["conv1", "conv2", "dense1"]


def test_summary_needs_no_parameter_memory():
    net = Network.build(configmod.loads("model:\n  - dense: 40000\n  - dense: 10\n").model,
                        (1, 200, 200), allocate=False)
    rows = net.summary_rows()
    assert rows[0]["params"] == 200 * 200 * 40000 + 40000
    assert not net.layers[0].params


def _layer_by_layer(net, x):
    """The forward pass without the network's fusion: every layer on its own."""
    for layer in net.layers:
        x, _ = layer.forward(x, train=False)
    return x


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_after_conv_or_local_is_fused_with_the_same_results(dtype):
    text = ("  - conv: {filters: 9, size: 3, pad: 1}\n  - relu\n"
            "  - local: {filters: 2, size: 3}\n  - relu\n"
            "  - conv: {filters: 3, size: 3, sparsity: 0.01}\n  - relu\n"   # needs its own output
            "  - conv: {filters: 3, size: 1}\n  - tanh\n  - dense: 3\n")
    net = net_from(text, (2, 9, 8), dtype=dtype)
    assert net.relu_fused == {0, 2}
    x = np.random.default_rng(1).standard_normal((5, 2, 9, 8)).astype(dtype)
    logits, _, _, _ = net.forward(x, train=False)
    np.testing.assert_allclose(logits, _layer_by_layer(net, x), rtol=1e-6, atol=1e-6)
    if dtype == np.float64:
        for r in check_network(net, x, np.array([0, 1, 2, 0, 1]), seed=0, limit=8):
            assert r.ok(1e-6), r



# --- the layer contract: the network acts on declarations only ---------------------------------

def _record_calls(monkeypatch, cls, method, calls):
    """Record (layer name, method, its relu= or need_dx= argument) of every call."""
    original = getattr(cls, method)

    def run(self, *args, **kwargs):
        calls.append((self.name, method, kwargs.get("relu", kwargs.get("need_dx"))))
        return original(self, *args, **kwargs)
    monkeypatch.setattr(cls, method, run)


def test_a_training_step_runs_the_fused_and_skipped_kernels(monkeypatch):
    """loss_and_grads: each conv's forward applies the ReLU after it, the ReLU layers are never
    called, the first layer's backward is told to skip dx (its data-gradient kernel never runs);
    a backward that wants the input gradient asks every layer for dx."""
    from convtrain.nn.layers import conv as conv_module
    from convtrain.nn.layers.activation import ReLU
    from convtrain.nn.layers.conv import Conv2D
    net = net_from("  - conv: {filters: 3, size: 3, pad: 1}\n  - relu\n"
                   "  - conv: {filters: 3, size: 3, pad: 1}\n  - relu\n  - dense: 2\n",
                   (2, 6, 6), dtype=np.float32)
    calls = []
    for cls in (Conv2D, ReLU):
        for method in ("forward", "backward"):
            _record_calls(monkeypatch, cls, method, calls)
    data_gradients = []
    original = conv_module.data_gradient
    monkeypatch.setattr(conv_module, "data_gradient",
                        lambda *args: data_gradients.append(args) or original(*args))
    x = np.random.default_rng(0).standard_normal((4, 2, 6, 6)).astype(np.float32)
    net.loss_and_grads(x, np.array([0, 1, 0, 1]))
    assert calls == [("conv1", "forward", True), ("conv2", "forward", True),
                     ("conv2", "backward", None), ("conv1", "backward", False)]
    assert len(data_gradients) == 1                       # conv2's dx only
    _, caches, _, _ = net.forward(x, train=True)
    calls.clear()
    assert net.backward(np.ones((4, 2), dtype=np.float32), caches).shape == x.shape
    assert calls == [("conv2", "backward", None), ("conv1", "backward", None)]


def test_fusion_follows_the_declarations_not_the_classes():
    """A ReLU subclass with its own backward computes something else: never fused away. One
    that declares activation "relu" again is fused like a ReLU."""
    from convtrain.nn.layers.activation import ReLU

    class Doubled(ReLU):
        def backward(self, dout, cache, *, need_dx=True):
            return 2 * super().backward(dout, cache)

    class Redeclared(ReLU):
        activation = "relu"

        def forward(self, x, *, train):
            return super().forward(x, train=train)

    assert Doubled.activation is None and Redeclared.activation == "relu"
    net = net_from("  - conv: {filters: 2, size: 3}\n  - relu\n  - dense: 2\n", (1, 5, 5))
    conv, relu, dense = net.layers
    for cls, fused in ((ReLU, {0}), (Doubled, set()), (Redeclared, {0})):
        layer = cls(relu.spec, relu.in_shape, dtype=net.dtype, name="r")
        assert Network([conv, layer, dense], net.commons, (1, 5, 5), net.dtype).relu_fused == fused


@pytest.mark.parametrize("after,scheme", [
    ("  - relu\n", ("he", 2.0)),
    ("  - batch_norm\n  - dropout: 0.1\n  - leaky_relu: 0.5\n", ("he", 2.0 / 1.25)),
    ("  - tanh\n", ("glorot", 1.0)),
    ("  - sigmoid\n", ("glorot", 1.0)),
    ("  - abs\n", ("lecun", 1.0)),
    ("  - dense: 300\n  - relu\n", ("lecun", 1.0)),      # the next dense starts a new stage
])
def test_default_init_asks_the_next_non_linearity(after, scheme):
    """The first dense layer's default init is what the layers after it declare; its weights'
    variance follows (he: gain / fan_in, glorot: 2 / (fan_in + fan_out), lecun: 1 / fan_in)."""
    net = net_from("  - dense: 300\n" + after + "  - dense: 2\n", (400,), seed=3)
    assert net._default_init(0) == pytest.approx(scheme)
    kind, gain = scheme
    want = {"he": gain / 400, "glorot": 2.0 / (400 + 300), "lecun": 1.0 / 400}[kind]
    assert net.layers[0].params["weight"].var() == pytest.approx(want, rel=0.03)
