"""Pooling layers against naive references, gradient checks, shape rules and properties."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ref_pool as ref
from compile_checks import assert_layers_compile_once
from convtrain.errors import ShapeError
from convtrain.nn.kernels import pool as kernels
from convtrain.nn.layers.pool import AvgPool, ChannelPool, L2Pool, MaxPool
from convtrain.config.spec import SpecError, build_spec, spec_to_dict

POOLS = {"max": MaxPool, "avg": AvgPool, "l2": L2Pool}


def make(cls, raw, in_shape, dtype=np.float64):
    return cls(build_spec(cls.Spec, raw), in_shape, dtype=dtype)


def ref_forward(layer, x, op):
    g = layer.geom
    return ref.pool2d(x, op, g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, g.oh, g.ow)


def ref_shape(raw, H, W):
    """The output size from the spec by the reference rules (PyTorch ceil/floor, TF 'same')."""
    kh, kw = raw["size"] if isinstance(raw["size"], list) else (raw["size"],) * 2
    st_ = raw.get("stride") or [kh, kw]
    sh, sw = st_ if isinstance(st_, list) else (st_, st_)
    pad = raw.get("pad", 0)
    if pad == "same":
        (pt, pb), (pl, pr) = ref.same_pad(H, kh, sh), ref.same_pad(W, kw, sw)
    elif isinstance(pad, list) and len(pad) == 4:
        pt, pb, pl, pr = pad
    elif isinstance(pad, list):
        pt = pb = pad[0]
        pl = pr = pad[1]
    else:
        pt = pb = pl = pr = pad
    rounding = "ceil" if raw.get("ceil") else "floor" if raw.get("floor") else "exact"
    return (ref.out_len(H, kh, sh, pt, pb, rounding), ref.out_len(W, kw, sw, pl, pr, rounding))


# (spec, input shape): plain, overlapping, padded, asymmetric, non-square, same, ceil, floor,
# stride > size, windows hanging off the edge
CASES = [
    ({"size": 2}, (3, 6, 8)),
    ({"size": 2, "floor": True}, (3, 7, 9)),
    ({"size": 2, "ceil": True}, (3, 7, 9)),
    ({"size": 3, "stride": 1}, (3, 5, 7)),
    ({"size": 3, "stride": 2}, (3, 7, 9)),
    ({"size": 3, "stride": 2, "pad": 1}, (3, 9, 7)),
    ({"size": 3, "stride": 2, "ceil": True}, (3, 8, 6)),
    ({"size": 3, "stride": 2, "pad": 1, "ceil": True}, (3, 8, 8)),
    ({"size": [2, 3], "stride": [1, 2], "pad": [1, 0]}, (3, 6, 7)),
    ({"size": [3, 2], "stride": [2, 1], "pad": [1, 1, 0, 1]}, (3, 7, 6)),
    ({"size": 3, "pad": "same"}, (3, 8, 7)),
    ({"size": 3, "stride": 2, "pad": "same"}, (3, 8, 7)),
    ({"size": 3, "stride": 1, "pad": "same"}, (3, 5, 6)),
    ({"size": 2, "stride": 3}, (3, 8, 5)),
    ({"size": 2, "stride": 3, "ceil": True}, (3, 6, 7)),
    ({"size": 4, "stride": 3, "pad": 2, "ceil": True}, (3, 6, 9)),
    ({"size": 5, "stride": 1, "pad": 4}, (3, 3, 4)),
    ({"size": 1}, (3, 4, 5)),
]


@pytest.mark.parametrize("op", ["max", "avg", "l2"])
@pytest.mark.parametrize("raw,in_shape", CASES)
def test_forward_matches_reference(op, raw, in_shape):
    rng = np.random.default_rng(0)
    layer = make(POOLS[op], raw, in_shape)
    assert layer.output_shape[1:] == ref_shape(raw, *in_shape[1:])
    x = rng.standard_normal((2,) + in_shape)
    y, cache = layer.forward(x, train=False)
    expected = ref_forward(layer, x, op)
    if op == "max":
        expected, arg = expected
        np.testing.assert_array_equal(cache.arg, arg)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", ["max", "avg", "l2"])
@pytest.mark.parametrize("raw,in_shape", CASES)
def test_backward_matches_reference(op, raw, in_shape):
    rng = np.random.default_rng(1)
    layer = make(POOLS[op], raw, in_shape)
    x = rng.standard_normal((2,) + in_shape)
    y, cache = layer.forward(x, train=True)
    dy = rng.standard_normal(y.shape)
    g = layer.geom
    expected = ref.pool2d_backward(x, dy, op, g.kh, g.kw, g.sh, g.sw, g.pt, g.pl)
    np.testing.assert_allclose(layer.backward(dy, cache), expected, rtol=1e-12, atol=1e-12)


GRAD_CASES = [
    ({"size": 2}, (2, 4, 6)),
    ({"size": 3, "stride": 2, "pad": 1}, (2, 5, 7)),                 # padded borders
    ({"size": 3, "stride": 1, "pad": "same"}, (1, 4, 5)),             # overlapping + borders
    ({"size": 3, "stride": 2, "ceil": True}, (2, 6, 4)),              # hanging windows
    ({"size": [2, 3], "stride": [1, 2], "pad": [0, 1, 1, 0]}, (2, 4, 6)),
]


@pytest.mark.parametrize("op", ["max", "avg", "l2"])
@pytest.mark.parametrize("raw,in_shape", GRAD_CASES)
def test_gradient_central_differences(op, raw, in_shape):
    rng = np.random.default_rng(2)
    layer = make(POOLS[op], raw, in_shape)
    x = rng.standard_normal((2,) + in_shape)          # continuous: no max-pool ties
    y, cache = layer.forward(x, train=True)
    r = rng.standard_normal(y.shape)
    dx = layer.backward(r, cache)
    num = ref.numeric_grad(lambda z: float((layer.forward(z, train=True)[0] * r).sum()), x)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("in_shape,raw", [((2, 6, 8), {"size": 2}),
                                          ((2, 7, 9), {"size": 2, "floor": True}),
                                          ((2, 7, 9), {"size": 2, "ceil": True}),
                                          ((2, 6, 8), {"size": 2, "stride": 1}),
                                          ((2, 7, 9), {"size": 2, "pad": [0, 1, 0, 1]})])
def test_max_pool_ties_go_to_the_first_maximum(in_shape, raw):
    rng = np.random.default_rng(3)
    layer = make(MaxPool, raw, in_shape)
    x = rng.integers(0, 3, size=(3,) + in_shape).astype(np.float64)   # many ties
    y, cache = layer.forward(x, train=True)
    g = layer.geom
    ey, earg = ref.pool2d(x, "max", g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, g.oh, g.ow)
    np.testing.assert_array_equal(y, ey)
    np.testing.assert_array_equal(cache.arg, earg)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(layer.backward(dy, cache),
                                  ref.pool2d_backward(x, dy, "max", g.kh, g.kw, g.sh, g.sw,
                                                      g.pt, g.pl))


@pytest.mark.parametrize("H,W", [(6, 8), (7, 9), (2, 2), (9, 4)])
def test_fast_2x2_path_equals_general_kernel(H, W):
    rng = np.random.default_rng(4)
    layer = make(MaxPool, {"size": 2, "floor": True}, (3, H, W), dtype=np.float32)
    assert layer._fast()
    x = rng.standard_normal((2, 3, H, W)).astype(np.float32)
    x[0, 0, :2, :2] = 1.0                                   # a tie in one window
    y, cache = layer.forward(x, train=True)
    oh, ow = layer.geom.oh, layer.geom.ow
    y2 = np.empty_like(y)
    arg2 = np.empty_like(cache.arg)
    kernels.max_pool_fwd(x.reshape(6, H, W), y2.reshape(6, oh, ow), arg2.reshape(6, oh, ow),
                         2, 2, 2, 2, 0, 0)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(cache.arg, arg2)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy, cache)
    dx2 = np.empty_like(x)
    kernels.max_pool_bwd(dy.reshape(6, oh, ow), arg2.reshape(6, oh, ow), dx2.reshape(6, H * W))
    np.testing.assert_array_equal(dx, dx2)


@pytest.mark.parametrize("H,W", [(6, 8), (7, 9), (2, 3)])
def test_fast_2x2_avg_path_equals_general_kernel(H, W):
    rng = np.random.default_rng(4)
    layer = make(AvgPool, {"size": 2, "floor": True}, (3, H, W))
    assert layer._fast()
    x = rng.standard_normal((2, 3, H, W))
    y, cache = layer.forward(x, train=True)
    oh, ow = layer.geom.oh, layer.geom.ow
    y2 = np.empty_like(y)
    kernels.avg_pool_fwd(x.reshape(6, H, W), y2.reshape(6, oh, ow), 2, 2, 2, 2, 0, 0)
    np.testing.assert_allclose(y, y2, rtol=1e-15, atol=1e-15)
    dy = rng.standard_normal(y.shape)
    dx2 = np.empty_like(x)
    kernels.avg_pool_bwd(dy.reshape(6, oh, ow), dx2.reshape(6, H, W), 2, 2, 2, 2, 0, 0)
    np.testing.assert_allclose(layer.backward(dy, cache), dx2, rtol=1e-15, atol=1e-15)


def test_max_pool_not_fast_with_padding_or_ceil():
    assert not make(MaxPool, {"size": 2, "ceil": True}, (1, 7, 7))._fast()
    assert not make(MaxPool, {"size": 2, "pad": [1, 0, 1, 0]}, (1, 7, 7))._fast()
    assert not make(MaxPool, {"size": 2, "stride": 1}, (1, 7, 7))._fast()


def test_max_pool_ignores_padding_even_when_all_negative():
    layer = make(MaxPool, {"size": 3, "stride": 2, "pad": 1}, (1, 5, 5))
    x = -1.0 - np.arange(25.0).reshape(1, 1, 5, 5)
    y, _ = layer.forward(x, train=False)
    assert y[0, 0, 0, 0] == -1.0          # not 0 from the padding
    assert (y < 0).all()


def test_avg_pool_excludes_padding():
    layer = make(AvgPool, {"size": 3, "stride": 1, "pad": 1}, (1, 3, 3))
    y, _ = layer.forward(np.ones((1, 1, 3, 3)), train=False)
    np.testing.assert_allclose(y, 1.0)


def test_l2_pool_eps():
    layer = make(L2Pool, {"size": 2, "eps": 0.25}, (1, 2, 2))
    y, cache = layer.forward(np.zeros((1, 1, 2, 2)), train=True)
    np.testing.assert_allclose(y, 0.5)
    np.testing.assert_array_equal(layer.backward(np.ones_like(y), cache), 0.0)


# --- channel pool ------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["max", "avg", "l2"])
@pytest.mark.parametrize("size,in_shape", [(2, (6, 3, 4)), (3, (6, 2, 5)), (1, (3, 2, 2)),
                                           (4, (8,)), (6, (6, 1, 1))])
def test_channel_pool(op, size, in_shape):
    rng = np.random.default_rng(5)
    layer = make(ChannelPool, {"size": size, "op": op}, in_shape)
    assert layer.output_shape == (in_shape[0] // size,) + in_shape[1:]
    x = rng.standard_normal((2,) + in_shape)
    y, cache = layer.forward(x, train=True)
    np.testing.assert_allclose(y, ref.channel_pool(x, size, op), rtol=1e-12, atol=1e-12)
    r = rng.standard_normal(y.shape)
    dx = layer.backward(r, cache)
    num = ref.numeric_grad(lambda z: float((layer.forward(z, train=True)[0] * r).sum()), x)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


def test_channel_pool_max_ties_first():
    layer = make(ChannelPool, {"size": 3}, (3, 1, 2))
    x = np.array([[[[1.0, 0.0]], [[1.0, 2.0]], [[0.0, 2.0]]]])
    y, cache = layer.forward(x, train=True)
    np.testing.assert_array_equal(cache.arg.ravel(), [0, 1])
    dx = layer.backward(np.ones_like(y), cache)
    np.testing.assert_array_equal(dx[0, :, 0], [[1, 0], [0, 1], [0, 0]])


def test_channel_pool_size_must_divide():
    with pytest.raises(ShapeError, match="sizes that divide 12: 1, 2, 3, 4, 6, 12"):
        make(ChannelPool, {"size": 5}, (12, 4, 4))


# --- shapes, specs, errors ---------------------------------------------------------------------

def test_window_that_does_not_tile_says_what_fits():
    with pytest.raises(ShapeError) as e:
        make(MaxPool, {"size": 3}, (4, 7, 7))
    msg = str(e.value)
    assert "max_pool 3x3 stride 3 does not fit a 7x7 input" in msg
    assert "try stride 2" in msg and "pad 1" in msg and "ceil: true" in msg
    for hint in ({"size": 3, "stride": 2}, {"size": 3, "pad": 1}, {"size": 3, "ceil": True},
                 {"size": 3, "floor": True}, {"size": 3, "pad": "same"}):
        make(MaxPool, hint, (4, 7, 7))


def test_hint_for_2x2_on_odd_input():
    with pytest.raises(ShapeError, match=r"pad \[0, 1, 0, 1\]") as e:
        make(MaxPool, {"size": 2}, (4, 7, 7))
    assert "avg_pool" not in str(e.value)
    make(MaxPool, {"size": 2, "pad": [0, 1, 0, 1]}, (4, 7, 7))


def test_window_larger_than_input():
    with pytest.raises(ShapeError, match="larger than the 3x3 input"):
        make(AvgPool, {"size": 5}, (1, 3, 3))


def test_vector_input_is_refused():
    with pytest.raises(ShapeError, match=r"needs an image input \(C, H, W\)"):
        make(MaxPool, {"size": 2}, (10,))


@pytest.mark.parametrize("raw,message", [
    ({"size": 2, "ceil": True, "floor": True}, "ceil and floor"),
    ({"size": 2, "pad": 2}, "smaller than the window"),
    ({"size": 0}, ">= 1"),
    ({"size": 2, "stride": 0}, ">= 1"),
    ({"size": 2, "pad": "sane"}, "did you mean 'same'"),
    ({"stride": 2}, "is required"),
    ({"size": 2, "strides": 2}, "did you mean 'stride'"),
])
def test_spec_errors(raw, message):
    with pytest.raises(SpecError, match=message):
        build_spec(MaxPool.Spec, raw)


def test_spec_defaults_and_short_form():
    spec = build_spec(MaxPool.Spec, {"size": 2, "stride": None})
    assert (spec.size, spec.stride, spec.pad, spec.ceil, spec.floor) == ((2, 2), None,
                                                                        (0, 0, 0, 0), False, False)
    assert MaxPool.short == AvgPool.short == L2Pool.short == ChannelPool.short == "size"
    assert MaxPool.Spec(size=3).size == (3, 3)                 # raw values work in code too
    assert build_spec(L2Pool.Spec, {"size": 2}).eps == 1e-6
    assert build_spec(ChannelPool.Spec, {"size": 2}).op == "max"


def test_flops_count_reads_of_in_image_cells():
    assert make(MaxPool, {"size": 2}, (3, 4, 6)).flops((3, 4, 6)) == 3 * 4 * 6
    assert make(AvgPool, {"size": 3, "stride": 1}, (1, 5, 5)).flops((1, 5, 5)) == 9 * 9
    # padded 3x3 stride 1 on 3x3: rows read per output row 2, 3, 2 -> 7 x 7
    assert make(AvgPool, {"size": 3, "stride": 1, "pad": 1}, (2, 3, 3)).flops((2, 3, 3)) == 98
    assert make(ChannelPool, {"size": 2}, (4, 3, 3)).flops((4, 3, 3)) == 36


def test_describe():
    assert make(MaxPool, {"size": 2}, (1, 4, 4)).describe() == "2x2 s2"
    assert make(AvgPool, {"size": 3, "stride": 2, "pad": 1}, (1, 5, 5)).describe() == "3x3 s2 p1"
    assert make(MaxPool, {"size": 2, "ceil": True}, (1, 5, 5)).describe() == "2x2 s2 ceil"


# --- properties --------------------------------------------------------------------------------

@st.composite
def pool_configs(draw, ceil_ok=True):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pad = draw(st.one_of(st.just("same"),
                         st.tuples(st.integers(0, kh - 1), st.integers(0, kh - 1),
                                   st.integers(0, kw - 1), st.integers(0, kw - 1))))
    H, W = draw(st.integers(max(kh, 1), 9)), draw(st.integers(max(kw, 1), 9))
    rounding = draw(st.sampled_from(["ceil", "floor"] if ceil_ok else ["floor"]))
    raw = {"size": [kh, kw], "stride": [sh, sw],
           "pad": pad if pad == "same" else list(pad), rounding: True}
    return raw, (draw(st.integers(1, 3)), H, W)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=pool_configs(), value=st.floats(-100, 100))
def test_avg_pool_of_a_constant_is_the_constant(cfg, value):
    raw, in_shape = cfg
    layer = make(AvgPool, raw, in_shape)
    y, _ = layer.forward(np.full((2,) + in_shape, value), train=False)
    np.testing.assert_allclose(y, value, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=pool_configs(), op=st.sampled_from(["max", "avg", "l2"]), seed=st.integers(0, 2**16))
def test_batch_is_the_stack_of_single_samples(cfg, op, seed):
    raw, in_shape = cfg
    layer = make(POOLS[op], raw, in_shape)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3,) + in_shape)
    y, cache = layer.forward(x, train=True)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy, cache)
    for n in range(3):
        yn, cn = layer.forward(x[n:n + 1], train=True)
        np.testing.assert_array_equal(y[n:n + 1], yn)
        np.testing.assert_array_equal(dx[n:n + 1], layer.backward(dy[n:n + 1], cn))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=pool_configs(), op=st.sampled_from(["max", "avg", "l2"]), seed=st.integers(0, 2**16))
def test_float32_matches_float64(cfg, op, seed):
    raw, in_shape = cfg
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2,) + in_shape)
    l64 = make(POOLS[op], raw, in_shape, np.float64)
    l32 = make(POOLS[op], raw, in_shape, np.float32)
    y64, c64 = l64.forward(x, train=True)
    y32, c32 = l32.forward(x.astype(np.float32), train=True)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5)
    dy = rng.standard_normal(y64.shape)
    dx64 = l64.backward(dy, c64)
    dx32 = l32.backward(dy.astype(np.float32), c32)
    assert dx32.dtype == np.float32
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-4)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(1, 4), groups=st.integers(1, 3), H=st.integers(1, 5), W=st.integers(1, 5),
       op=st.sampled_from(["max", "avg", "l2"]), vector=st.booleans(), seed=st.integers(0, 2**16))
def test_channel_pool_batch_and_float32(size, groups, H, W, op, vector, seed):
    in_shape = (size * groups,) if vector else (size * groups, H, W)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3,) + in_shape)
    l64 = make(ChannelPool, {"size": size, "op": op}, in_shape)
    l32 = make(ChannelPool, {"size": size, "op": op}, in_shape, np.float32)
    y, cache = l64.forward(x, train=True)
    dy = rng.standard_normal(y.shape)
    dx = l64.backward(dy, cache)
    for n in range(3):
        yn, cn = l64.forward(x[n:n + 1], train=True)
        np.testing.assert_array_equal(y[n:n + 1], yn)
        np.testing.assert_array_equal(dx[n:n + 1], l64.backward(dy[n:n + 1], cn))
    y32, c32 = l32.forward(x.astype(np.float32), train=True)
    np.testing.assert_allclose(y32, y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(l32.backward(dy.astype(np.float32), c32), dx, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls,raw", [
    (MaxPool, {"size": 2}), (AvgPool, {"size": [3, 2], "pad": "same"}),
    (L2Pool, {"size": 3, "stride": 2, "pad": [1, 0], "ceil": True}),
    (ChannelPool, {"size": 4, "op": "l2"})])
def test_resolved_spec_round_trips(cls, raw):
    spec = build_spec(cls.Spec, raw)
    assert build_spec(cls.Spec, spec_to_dict(spec)) == spec


def test_no_new_compilations_after_warm_up():
    layers = [make(MaxPool, {"size": 2}, (2, 4, 4), np.float32),
              make(MaxPool, {"size": 3, "stride": 1}, (2, 4, 4), np.float32),
              make(AvgPool, {"size": 2}, (2, 4, 4), np.float32),
              make(AvgPool, {"size": 3, "stride": 1}, (2, 4, 4), np.float32),
              make(L2Pool, {"size": 2}, (2, 4, 4), np.float32)] + [
              make(ChannelPool, {"size": 2, "op": op}, (2, 4, 4), np.float32)
              for op in ("max", "avg", "l2")]
    assert_layers_compile_once(layers, (2, 4, 4), kernels)


# --- separable 3-wide kernels (kw 3, stride 1 or 2) ---------------------------------------------

SEPARABLE = [  # (size, stride, pad, ceil, H, W): ceil edges, odd sizes, padding, 1-3 row windows
    (3, 2, 0, True, 32, 32), (3, 2, 0, True, 9, 7), (3, 2, 0, False, 9, 7), (3, 2, 1, True, 8, 8),
    (3, 2, 1, False, 7, 10), (3, 1, 1, False, 6, 5), (3, 1, 0, True, 5, 9),
    ([2, 3], [1, 2], [1, 1, 0, 1], True, 6, 7), ([4, 3], [3, 2], [2, 2, 2, 2], True, 9, 8),
    ([1, 3], [1, 1], 0, False, 3, 3),
    (3, 2, 0, True, 9, 700),         # 700 wide: chunks of 2 output rows
    (3, 2, 0, False, 4, 3000),       # wider than the scratch: the general loops
]


def _separable_layer(cls, case, dtype):
    size, stride, pad, ceil, H, W = case
    raw = {"size": size, "stride": stride, "pad": pad, ("ceil" if ceil else "floor"): True}
    return make(cls, raw, (2, H, W), dtype), (2, H, W)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("values", ["normal", "ties", "special"])
@pytest.mark.parametrize("case", SEPARABLE)
def test_separable_max_pool_matches_reference(case, values, dtype):
    layer, in_shape = _separable_layer(MaxPool, case, dtype)
    rng = np.random.default_rng(7)
    shape = (2,) + in_shape
    if values == "normal":
        x = rng.standard_normal(shape)
    elif values == "ties":
        x = rng.integers(0, 3, size=shape).astype(np.float64)
    else:              # -inf in whole windows (argmax on -inf ties), +inf, signed zeros
        x = rng.choice(np.array([-np.inf, np.inf, 0.0, -0.0, 1.0]), size=shape)
    x = x.astype(dtype)
    y, cache = layer.forward(x, train=True)
    g = layer.geom
    ey, earg = ref.pool2d(x.astype(np.float64), "max", g.kh, g.kw, g.sh, g.sw, g.pt, g.pl,
                          g.oh, g.ow)
    np.testing.assert_array_equal(y, ey)
    np.testing.assert_array_equal(cache.arg, earg)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_separable_max_pool_nan_as_the_general_loop(dtype):
    """A NaN wins only as a window's first in-image cell (it fails every `>`), as in the general
    loop; a NaN above a column's maximum must not hide it."""
    x = np.array([[[0.0, np.nan, np.nan, 5.0, 1.0],
                   [0.0, np.inf, -1.0, 2.0, np.nan],
                   [3.0, 1.0, 4.0, np.nan, 2.0]]], dtype=dtype)
    y = np.empty((1, 1, 2), dtype)
    arg = np.empty((1, 1, 2), np.int32)
    kernels.max_pool_fwd(x, y, arg, 3, 3, 2, 2, 0, 0)
    np.testing.assert_array_equal(y.ravel(), [np.inf, np.nan])
    np.testing.assert_array_equal(arg.ravel(), [6, 2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SEPARABLE)
def test_separable_avg_pool_matches_reference(case, dtype):
    layer, in_shape = _separable_layer(AvgPool, case, dtype)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2,) + in_shape).astype(dtype)
    y, cache = layer.forward(x, train=True)
    g = layer.geom
    x64 = x.astype(np.float64)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref_forward(layer, x64, "avg"), rtol=tol, atol=tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    expected = ref.pool2d_backward(x64, dy.astype(np.float64), "avg", g.kh, g.kw, g.sh, g.sw,
                                   g.pt, g.pl)
    np.testing.assert_allclose(layer.backward(dy, cache), expected, rtol=tol, atol=tol)
