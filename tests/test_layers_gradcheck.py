"""One float64 finite-difference check over every registered layer type (borders included)."""
import numpy as np
import pytest

from convtrain.tools.gradcheck import check_layer
from convtrain.nn.layers.registry import LAYER_TYPES
from convtrain.config.spec import build_spec
from convtrain.nn.kernels import winograd

# type -> list of (spec options, per-sample input shape). Every registered type needs an entry.
EXAMPLES = {
    "conv": [({"filters": 3, "size": 3, "pad": 1}, (2, 5, 6)),
             ({"filters": 2, "size": [3, 2], "stride": 2, "pad": [1, 1, 2, 1]}, (3, 7, 7))],
    "local": [({"filters": 2, "size": 3}, (2, 5, 4)),
              ({"filters": 2, "size": 2, "stride": 2, "pad": 1}, (1, 4, 6))],
    "dense": [({"units": 4}, (3, 2, 2)), ({"units": 3, "bias": False}, (5,))],
    "flatten": [({}, (2, 3, 4))],
    "max_pool": [({"size": 2}, (2, 4, 6)), ({"size": 3, "stride": 2, "pad": 1}, (2, 7, 5)),
                 ({"size": 3, "stride": 2, "ceil": True}, (1, 6, 6))],
    "avg_pool": [({"size": 2}, (2, 4, 4)), ({"size": 3, "stride": 2, "pad": 1}, (2, 5, 7)),
                 ({"size": 3, "stride": 2, "ceil": True}, (1, 6, 6))],
    "l2_pool": [({"size": 2}, (2, 4, 4)), ({"size": 3, "stride": 2, "pad": 1}, (2, 5, 7))],
    "channel_pool": [({"size": 2}, (4, 3, 3)), ({"size": 3, "op": "l2"}, (6, 2, 3))],
    "lcn": [({"size": 5}, (3, 7, 6)), ({"size": 9, "window": "box"}, (2, 5, 5)),
            ({"size": 3, "mode": "jarrett"}, (2, 6, 5))],
    "subtractive_norm": [({"size": 5}, (2, 6, 7))],
    "divisive_norm": [({"size": 5}, (2, 6, 7)), ({"size": 7, "mode": "jarrett"}, (1, 5, 6))],
    "relu": [({}, (2, 3, 3)), ({}, (7,))],
    "leaky_relu": [({"slope": 0.1}, (2, 3, 3))],
    "tanh": [({}, (2, 3, 3))],
    "sigmoid": [({}, (2, 3, 3))],
    "abs": [({}, (2, 3, 3))],
    "dropout": [({"rate": 0.5}, (2, 3, 3))],
    "batch_norm": [({}, (3, 4, 4)), ({"momentum": 0.5}, (6,))],
}

CASES = [(t, opts, shape) for t, examples in EXAMPLES.items() for opts, shape in examples]
IDS = [f"{t}-{i}" for i, (t, _, _) in enumerate(CASES)]


def test_every_registered_layer_has_an_example():
    missing = sorted(set(LAYER_TYPES) - set(EXAMPLES))
    assert not missing, f"add gradient-check examples for: {missing}"
    unknown = sorted(set(EXAMPLES) - set(LAYER_TYPES))
    assert not unknown, f"examples for unregistered types: {unknown}"


def make_layer(type_, opts, shape, dtype=np.float64, seed=0):
    cls = LAYER_TYPES[type_]
    layer = cls(build_spec(cls.Spec, opts), shape, dtype=dtype, name=type_)
    layer.init_params(np.random.default_rng(seed), ("normal", 0.5))
    for key, p in layer.params.items():   # non-trivial biases and batch-norm scales
        if key != "weight":
            p[...] = np.random.default_rng(seed + 1).normal(0.5, 0.3, p.shape)
    return layer


@pytest.mark.parametrize("type_,opts,shape", CASES, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(CASES)])
def test_layer_gradients_match_finite_differences(type_, opts, shape):
    layer = make_layer(type_, opts, shape)
    x = np.random.default_rng(7).standard_normal((3,) + shape) * 2.0
    results = check_layer(layer, x, seed=3, limit=60)
    for r in results:
        assert r.checked > 0 or r.kinks > 0, r
        assert r.max_rel_error < 1e-6, f"{type_} {opts}: {r}"


@pytest.mark.parametrize("type_,opts,shape", CASES, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(CASES)])
def test_float32_matches_float64(type_, opts, shape):
    l64 = make_layer(type_, opts, shape, np.float64)
    l32 = make_layer(type_, opts, shape, np.float32)
    for key in l64.params:
        l32.params[key][...] = l64.params[key]
    x = np.random.default_rng(5).standard_normal((4,) + shape)
    l64.reseed(1), l32.reseed(1)
    y64, c64 = l64.forward(x, train=True)
    y32, c32 = l32.forward(np.ascontiguousarray(x, dtype=np.float32), train=True)
    assert y32.dtype == np.float32
    if type_ != "dropout":   # float32 and float64 generators draw different masks
        np.testing.assert_allclose(y32, y64, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("type_,opts,shape", CASES, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(CASES)])
def test_batch_equals_stack_of_samples_in_evaluation(type_, opts, shape):
    layer = make_layer(type_, opts, shape)
    x = np.random.default_rng(9).standard_normal((3,) + shape)
    y, _ = layer.forward(x, train=False)
    singles = np.concatenate([layer.forward(x[i:i + 1], train=False)[0] for i in range(3)])
    np.testing.assert_allclose(y, singles, rtol=1e-12, atol=1e-12)
    assert y.shape == (3,) + layer.output_shape


def test_dropout_is_identity_in_evaluation():
    layer = make_layer("dropout", {"rate": 0.7}, (4, 5, 5))
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 5))
    y, _ = layer.forward(x, train=False)
    assert np.array_equal(y, x)


def test_dropout_keeps_the_expectation():
    layer = make_layer("dropout", {"rate": 0.5}, (1000,))
    y, _ = layer.forward(np.ones((50, 1000)), train=True)
    assert abs(y.mean() - 1.0) < 0.02
    assert abs((y == 0).mean() - 0.5) < 0.02


def test_batch_norm_uses_running_statistics_in_evaluation():
    layer = make_layer("batch_norm", {"momentum": 0.0}, (3, 4, 4))
    layer.params["weight"][...] = 1
    layer.params["bias"][...] = 0
    x = np.random.default_rng(0).normal(3.0, 2.0, (64, 3, 4, 4))
    y_train, _ = layer.forward(x, train=True)
    np.testing.assert_allclose(y_train.mean(axis=(0, 2, 3)), 0, atol=1e-10)
    y_eval, _ = layer.forward(x, train=False)   # momentum 0: running stats = this batch's
    np.testing.assert_allclose(y_eval, y_train, atol=1e-2)


def in_both_dtypes(type_, opts, shape, x, *, train=True):
    """Forward and backward of the same layer in float64 and float32, on the same values: the
    float32 parameters, input and output gradient, exactly representable in both.
    -> {dtype: {"y": output, "dx": input gradient, "d<param>": parameter gradients}}."""
    l32 = make_layer(type_, opts, shape, np.float32)
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    results = {}
    for dtype in (np.float64, np.float32):
        layer = make_layer(type_, opts, shape, dtype)
        for key, p in l32.params.items():
            layer.params[key][...] = p
        layer.reseed(1)
        y, cache = layer.forward(x32.astype(dtype), train=train)
        d = np.random.default_rng(6).standard_normal(y.shape).astype(np.float32).astype(dtype)
        dx = layer.backward(d, cache)
        results[dtype] = {"y": y, "dx": dx, **{"d" + k: g.copy() for k, g in layer.grads.items()}}
    return results


@pytest.mark.parametrize("type_,opts,shape", CASES, ids=IDS)
def test_float32_backward_matches_float64(type_, opts, shape):
    """The float32 kernels (what training runs) agree with the gradient-checked float64 ones."""
    if type_ == "dropout":
        return
    x = np.random.default_rng(5).standard_normal((4,) + shape)
    both = in_both_dtypes(type_, opts, shape, x)
    a, b = both[np.float64], both[np.float32]
    assert b["dx"].dtype == np.float32
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-3, atol=1e-3 * np.abs(a[key]).max(),
                                   err_msg=key)


# Inputs far from zero: float32 holds them to 7 digits, but a layer that subtracts a local or a
# batch mean (LCN, batch norm) cancels the offset, and where it computes its statistics in float32
# or as a one-pass E[x^2] - E[x]^2 the output keeps no digit of the small signal.
OFFSETS = [(100.0, 0.01), (1000.0, 0.1)]
# what a careful float32 implementation keeps, relative to each result's largest entry (measured:
# under 2e-7 for every layer; tanh and sigmoid's gradients there are below float32's range)
OFFSET_TOL = 1e-5


# the examples above are too small for the Winograd convolution training takes on larger maps
WINOGRAD = ("conv", {"filters": 32, "size": 5, "pad": 2}, (16, 28, 28))


@pytest.mark.parametrize("offset,spread", OFFSETS)
@pytest.mark.parametrize("type_,opts,shape", CASES + [WINOGRAD], ids=IDS + ["conv-winograd"])
def test_float32_keeps_its_precision_on_a_large_offset(type_, opts, shape, offset, spread):
    """Forward, input and parameter gradients of float32 against float64, on offset + spread *
    noise, in training (random layers draw other masks per dtype: evaluation only) and in
    evaluation."""
    if (type_, opts, shape) == WINOGRAD:
        assert winograd.use_forward(16, 32, 5, 5, 28, 28) and winograd.use_backward(16, 32, 5, 5, 28, 28)
    x = offset + spread * np.random.default_rng(5).standard_normal((4,) + shape)
    modes = [False] if LAYER_TYPES[type_].random else [True, False]
    for train in modes:
        both = in_both_dtypes(type_, opts, shape, x, train=train)
        for key, want in both[np.float64].items():
            got = both[np.float32][key]
            assert got.dtype == np.float32, key
            err = np.abs(got - want).max()
            bound = OFFSET_TOL * np.abs(want).max() + np.finfo(np.float32).tiny
            assert err <= bound, (f"{type_} {opts} at {offset:g} + {spread:g} noise, "
                                  f"train={train}: {key} off by {err:.2e} of max {np.abs(want).max():.2e}")


@pytest.mark.parametrize("type_,opts,shape", CASES, ids=IDS)
def test_every_layer_keeps_the_declared_contract(type_, opts, shape):
    """backward(need_dx=False) (any layer may come first) gives the same parameter gradients and
    either no dx or the same one; a declared fusion computes the layer then max(., 0); the other
    declarations have the documented form."""
    layer = make_layer(type_, opts, shape)
    x = np.random.default_rng(4).standard_normal((2,) + shape)
    layer.reseed(1)
    y, cache = layer.forward(x, train=True)
    d = np.random.default_rng(8).standard_normal(y.shape)
    dx = layer.backward(d, cache)
    want = {k: g.copy() for k, g in layer.grads.items()}
    layer.zero_grads()
    skipped = layer.backward(d, cache, need_dx=False)
    assert skipped is None or np.array_equal(skipped, dx)
    for k, g in layer.grads.items():
        np.testing.assert_array_equal(g, want[k], err_msg=k)
    if layer.fuses_relu:
        layer.reseed(1)
        fused, _ = layer.forward(x, train=True, relu=True)
        np.testing.assert_array_equal(fused, np.maximum(y, 0))
    gain = layer.init_gain()
    assert gain is None or (gain[0] in ("he", "glorot", "lecun") and gain[1] > 0)
    assert isinstance(layer.no_decay, tuple)
    bank = layer.filter_bank()
    assert bank is None or (bank.ndim == 4 and bank.shape[0] == layer.output_shape[0])
