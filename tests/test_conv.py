"""The `conv` and `local` layers and their kernels, against the naive references in ref_conv.py."""
import numpy as np
import pytest
import ref_conv as R

from convtrain.errors import ShapeError
from convtrain.nn.kernels import conv as KC
from convtrain.nn.kernels import local as KL
from convtrain.nn.layers.base import resolve_padding
from convtrain.nn.layers.conv import Conv2D, ConvSpec, slack_rows
from convtrain.nn.layers.local import LocallyConnected, LocalSpec
from convtrain.config.spec import SpecError, build_spec

LAYERS = {"conv": (Conv2D, ConvSpec, R.conv2d, R.conv2d_backward),
          "local": (LocallyConnected, LocalSpec, R.local2d, R.local2d_backward)}

STRIDES = [1, 2, [2, 1]]
PADS = [0, "same", [0, 1, 2, 1], 3]          # 3 is more than size - 1 for every size below
SIZES = [3, [2, 3]]


def fitting_input(spec, C, h0=6, w0=7):
    """The smallest (C, H, W) with H >= h0, W >= w0 whose windows tile exactly."""
    kh, kw = spec.size
    sh, sw = spec.stride
    t, b, l, r = resolve_padding(spec.pad, kh, kw)
    H = next(h for h in range(h0, h0 + sh + 1) if (h + t + b - kh) % sh == 0)
    W = next(w for w in range(w0, w0 + sw + 1) if (w + l + r - kw) % sw == 0)
    return (C, H, W)


def make(kind, raw, in_shape, dtype=np.float64, seed=0):
    cls, spec_cls, _, _ = LAYERS[kind]
    layer = cls(build_spec(spec_cls, raw), in_shape, dtype=dtype)
    rng = np.random.default_rng(seed)
    layer.init_params(rng, ("he", 2.0))
    if "bias" in layer.params:
        layer.params["bias"][...] = rng.standard_normal(layer.params["bias"].shape)
    return layer


def run_both(layer, kind, x, dout):
    """The layer's (y, dx, dw, db) and the reference's, in float64."""
    _, _, ref_fwd, ref_bwd = LAYERS[kind]
    kh, kw = layer.spec.size
    pad = resolve_padding(layer.spec.pad, kh, kw)
    w = layer.params["weight"].astype(np.float64)
    b = layer.params["bias"].astype(np.float64) if "bias" in layer.params else None
    y, cache = layer.forward(x, train=True)
    dx = layer.backward(dout, cache)
    got = (y, dx, layer.grads["weight"], layer.grads.get("bias"))
    x64, d64 = x.astype(np.float64), dout.astype(np.float64)
    ry = ref_fwd(x64, w, b, layer.spec.stride, pad)
    rdx, rdw, rdb = ref_bwd(x64, w, d64, layer.spec.stride, pad)
    return got, (ry, rdx, rdw, rdb if b is not None else None)


def assert_all_close(got, want, rtol, atol):
    for name, g, r in zip(("y", "dx", "dweight", "dbias"), got, want):
        if r is None:
            assert g is None
            continue
        assert g.shape == r.shape, name
        np.testing.assert_allclose(g, r, rtol=rtol, atol=atol, err_msg=name)


# --- forward and backward against the naive reference ------------------------------------------

@pytest.mark.parametrize("kind", ["conv", "local"])
@pytest.mark.parametrize("stride", STRIDES)
@pytest.mark.parametrize("pad", PADS)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("C", [1, 3])
def test_matches_reference_float64(kind, stride, pad, size, C):
    raw = {"filters": 5, "size": size, "stride": stride, "pad": pad}
    spec = build_spec(LAYERS[kind][1], raw)
    in_shape = fitting_input(spec, C)
    layer = make(kind, raw, in_shape)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3,) + in_shape)
    dout = rng.standard_normal((3,) + layer.output_shape)
    got, want = run_both(layer, kind, x, dout)
    assert_all_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", ["conv", "local"])
@pytest.mark.parametrize("raw,in_shape", [
    ({"filters": 6, "size": 5, "pad": 2}, (1, 12, 12)),            # first LeNet layer, smaller
    ({"filters": 16, "size": 5}, (6, 14, 14)),                     # second LeNet layer
    ({"filters": 7, "size": [3, 2], "pad": "same"}, (5, 9, 11)),  # odd F, odd taps
    ({"filters": 3, "size": 3, "stride": 2, "pad": [1, 0, 1, 0]}, (3, 10, 10)),
])
def test_matches_reference_float32(kind, raw, in_shape):
    layer = make(kind, raw, in_shape, dtype=np.float32)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4,) + in_shape).astype(np.float32)
    dout = rng.standard_normal((4,) + layer.output_shape).astype(np.float32)
    got, want = run_both(layer, kind, x, dout)
    for g in got:
        assert g is None or g.dtype == np.float32
    assert_all_close(got, want, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("raw,in_shape", [
    ({"filters": 9, "size": 3, "pad": 1}, (2, 40, 37)),    # many position tiles, F % 8 == 1
    ({"filters": 4, "size": [1, 4]}, (1, 3, 4)),           # 1-pixel-wide output
    ({"filters": 2, "size": 1}, (3, 5, 5)),                # 1x1 convolution
    ({"filters": 5, "size": [5, 2], "pad": [4, 0, 1, 1]}, (2, 1, 3)),  # taller window than input
    ({"filters": 3, "size": 1, "stride": 2}, (2, 7, 9)),                 # window < stride
    ({"filters": 2, "size": [3, 1], "stride": [3, 2], "pad": [1, 2, 0, 1]}, (2, 9, 6)),
    ({"filters": 6, "size": 5, "stride": 2, "pad": [2, 1]}, (3, 13, 11)),
])
def test_conv_edge_shapes(raw, in_shape):
    layer = make("conv", raw, in_shape)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2,) + in_shape)
    dout = rng.standard_normal((2,) + layer.output_shape)
    got, want = run_both(layer, "conv", x, dout)
    assert_all_close(got, want, rtol=1e-10, atol=1e-10)


def test_stride1_kernels_without_slack_rows():
    """The stride-1 kernels must not read past a padded input that has no spare rows."""
    rng = np.random.default_rng(4)
    for Wp in (5, 7, 17):
        xp = rng.standard_normal((2, 3, 6, Wp))
        w = rng.standard_normal((5, 3, 3, 3))
        b = rng.standard_normal(5)
        out = np.empty((2, 5, 4, Wp - 2))
        KC.conv_forward(xp, w, b, out, False)
        np.testing.assert_allclose(out, R.conv2d(xp, w, b, (1, 1), (0, 0, 0, 0)), rtol=1e-12, atol=1e-12)
        dw = np.zeros_like(w)
        db = np.zeros_like(b)
        dout = rng.standard_normal(out.shape)
        KC.conv_backward_weight(xp, dout, dout, False, dw, db, 2)
        _, rdw, rdb = R.conv2d_backward(xp, w, dout, (1, 1), (0, 0, 0, 0))
        np.testing.assert_allclose(dw, rdw, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(db, rdb, rtol=1e-12, atol=1e-12)
        # the locally-connected stride-1 kernels too
        wl = rng.standard_normal((5, 4, Wp - 2, 3, 3, 3))
        bl = rng.standard_normal((5, 4, Wp - 2))
        KL.local_forward(xp, wl, bl, out, False)
        np.testing.assert_allclose(out, R.local2d(xp, wl, bl, (1, 1), (0, 0, 0, 0)), rtol=1e-12, atol=1e-12)
        dwl = np.zeros_like(wl)
        dbl = np.zeros_like(bl)
        KL.local_backward_weight(xp, dout, dwl, dbl)
        dxp = np.empty_like(xp)
        KL.local_backward_data(dout, wl, dxp)
        rdx, rdw, rdb = R.local2d_backward(xp, wl, dout, (1, 1), (0, 0, 0, 0))
        for got, want in ((dxp, rdx), (dwl, rdw), (dbl, rdb)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


WIDE, ROWS, NARROW = KC.WIDE, KC.ROWS, KC.NARROW_TILES
LANES_8, LANES_7 = KC.LANES_8, KC.LANES_7


@pytest.mark.parametrize("F,C,H,W,K,tiling", [
    (9, 3, 14, 14, 5, ROWS),     # 14 of 16 lanes, F % 8 == 1
    (16, 2, 7, 16, 5, ROWS),     # odd rows: the last row tile overlaps the one before
    (10, 1, 28, 28, 5, ROWS),    # 2 column tiles, the second overlapping the first
    (8, 2, 10, 10, 7, ROWS),     # rows shorter than a vector (computed lanes not stored)
    (12, 3, 16, 16, 5, ROWS),    # exact fit
    (8, 2, 9, 9, 3, WIDE),       # 8 filters, short rows: the wide runs waste least
    (64, 5, 8, 8, 5, LANES_8),   # short rows, many filters: filters along the lanes
    (64, 16, 14, 14, 5, LANES_7),  # two tiles of 7 columns per row
    (64, 3, 14, 14, 5, ROWS),    # the same with few taps: the lanes' scalar stores would dominate
    (56, 16, 3, 12, 3, LANES_7),  # F % 32 == 24, the last column tile overlapping
    (60, 16, 8, 8, 3, LANES_8),  # F % 32 == 28
    (64, 8, 5, 5, 5, LANES_7),   # rows shorter than the tile (computed columns not stored)
    (3, 2, 9, 9, 3, NARROW),     # few filters: the narrow tile
])
def test_forward_tilings(F, C, H, W, K, tiling):
    """Each of conv_forward's tilings against the reference (float64 and float32), with the
    last sample read from the very end of the buffer (no slack rows)."""
    rng = np.random.default_rng(6)
    Hp, Wp = H + K - 1, W + K - 1
    assert KC.forward_tiling(F, H, W, Wp, C * K * K) == tiling
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 2e-5)):
        xp = rng.standard_normal((3, C, Hp, Wp)).astype(dtype)
        w = rng.standard_normal((F, C, K, K)).astype(dtype)
        b = rng.standard_normal(F).astype(dtype)
        out = np.empty((3, F, H, W), dtype)
        KC.conv_forward(xp, w, b, out, False)
        want = R.conv2d(xp.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                        (1, 1), (0, 0, 0, 0))
        np.testing.assert_allclose(out, want, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("raw,in_shape", [
    ({"filters": 16, "size": 3, "pad": 1}, (24, 5, 7)),              # the fewest channels for it
    ({"filters": 21, "size": [3, 2], "pad": [0, 1, 2, 0]}, (37, 6, 4)),  # C % 32, F % 8 != 0
    ({"filters": 16, "size": 5, "stride": 2, "pad": 2}, (8, 9, 9)),   # 4 stride phases: C' = 32
    ({"filters": 16, "size": 3, "pad": 1}, (24, 3, 18)),              # rows longer than a vector
])
def test_channels_last_weight_gradient(raw, in_shape):
    """Layers with many channels take the channels-last grad-weight micro-kernel."""
    layer = make("conv", raw, in_shape)
    xp_channels = in_shape[0] * layer.geom.SH * layer.geom.SW
    assert xp_channels >= KC.CHANNELS_LAST_MIN and raw["filters"] >= 2 * KC.FB
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3,) + in_shape)
    dout = rng.standard_normal((3,) + layer.output_shape)
    got, want = run_both(layer, "conv", x, dout)
    assert_all_close(got, want, rtol=1e-10, atol=1e-10)
    layer32 = make("conv", raw, in_shape, dtype=np.float32)
    got32, want32 = run_both(layer32, "conv", x.astype(np.float32), dout.astype(np.float32))
    assert_all_close(got32, want32, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("kind", ["conv", "local"])
@pytest.mark.parametrize("stride", [1, 2])
def test_first_layer_skips_the_input_gradient(kind, stride):
    """backward(need_dx=False) (the first layer in training): no dx, the same parameter
    gradients."""
    raw = {"filters": 3, "size": 3, "stride": stride, "pad": 1}
    layer = make(kind, raw, (2, 7, 7))
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 2, 7, 7))
    y, cache = layer.forward(x, train=True)
    dout = rng.standard_normal(y.shape)
    assert layer.backward(dout, cache) is not None
    want = {k: g.copy() for k, g in layer.grads.items()}
    layer.zero_grads()
    assert layer.backward(dout, cache, need_dx=False) is None
    for k, g in layer.grads.items():
        np.testing.assert_array_equal(g, want[k], err_msg=k)


@pytest.mark.parametrize("kind", ["conv", "local"])
def test_without_bias(kind):
    layer = make(kind, {"filters": 3, "size": 3, "pad": 1, "bias": False}, (2, 5, 6))
    assert set(layer.params) == {"weight"} and set(layer.param_shapes()) == {"weight"}
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 5, 6))
    dout = rng.standard_normal((2,) + layer.output_shape)
    got, want = run_both(layer, kind, x, dout)
    assert_all_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", ["conv", "local"])
@pytest.mark.parametrize("stride", [1, 2])
def test_backward_adds_into_grads(kind, stride):
    layer = make(kind, {"filters": 3, "size": 3, "stride": stride}, (2, 7, 7))
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 2, 7, 7))
    y, cache = layer.forward(x, train=True)
    dout = rng.standard_normal(y.shape)
    layer.backward(dout, cache)
    once = {k: g.copy() for k, g in layer.grads.items()}
    layer.backward(dout, cache)
    for k, g in layer.grads.items():
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-12, atol=1e-12)
    layer.zero_grads()
    assert all(not g.any() for g in layer.grads.values())


@pytest.mark.parametrize("kind,raw,in_shape", [
    ("conv", {"filters": 3, "size": 3, "pad": 1}, (2, 7, 6)),
    ("conv", {"filters": 16, "size": 3, "pad": 1}, (24, 5, 7)),            # channels-last dw
    ("conv", {"filters": 4, "size": 3, "stride": 2, "pad": 1}, (2, 9, 7)),
    ("conv", {"filters": 3, "size": 2, "pad": [3, 1, 0, 2]}, (2, 5, 6)),   # pad > size - 1
    ("local", {"filters": 3, "size": 3, "pad": 1}, (2, 6, 5)),
])
def test_fused_relu_matches_conv_then_relu(kind, raw, in_shape):
    """forward(relu=True) and its backward (the network's fused ReLU) against the layer followed
    by a separate ReLU: same output, input gradient and parameter gradients."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3,) + in_shape)
    fused, plain = make(kind, raw, in_shape), make(kind, raw, in_shape)
    y, cache = fused.forward(x, train=True, relu=True)
    z, pcache = plain.forward(x, train=True)
    dout = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(y, np.maximum(z, 0))
    dx = fused.backward(dout, cache)
    want_dx = plain.backward(np.where(z > 0, dout, 0), pcache)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
    for k in plain.grads:
        np.testing.assert_allclose(fused.grads[k], plain.grads[k], rtol=1e-12, atol=1e-12)


# --- finite differences ------------------------------------------------------------------------

def numeric_grad(f, a, eps=1e-6):
    """Central differences of the scalar f() with respect to every element of `a` (in place)."""
    g = np.zeros_like(a)
    flat, gflat = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        hi = f()
        flat[i] = old - eps
        lo = f()
        flat[i] = old
        gflat[i] = (hi - lo) / (2 * eps)
    return g


@pytest.mark.parametrize("kind", ["conv", "local"])
@pytest.mark.parametrize("raw,in_shape", [
    ({"filters": 2, "size": 3, "pad": "same"}, (2, 4, 5)),
    ({"filters": 3, "size": [2, 3], "stride": [2, 1], "pad": [0, 1, 2, 1]}, (1, 5, 4)),
    ({"filters": 2, "size": 3, "stride": 2}, (2, 5, 7)),
])
def test_gradient_check(kind, raw, in_shape):
    layer = make(kind, raw, in_shape)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2,) + in_shape)
    proj = rng.standard_normal((2,) + layer.output_shape)

    def loss():
        y, _ = layer.forward(x, train=False)
        return float(np.sum(y * proj))

    _, cache = layer.forward(x, train=True)
    dx = layer.backward(proj, cache)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-7)
    for key in ("weight", "bias"):
        np.testing.assert_allclose(layer.grads[key], numeric_grad(loss, layer.params[key]),
                                   rtol=1e-6, atol=1e-7, err_msg=key)


# --- specs, shapes, counts ---------------------------------------------------------------------

def test_spec_defaults_and_forms():
    spec = build_spec(ConvSpec, {"filters": 8})
    assert (spec.size, spec.stride, spec.pad, spec.bias) == ((3, 3), (1, 1), (0, 0, 0, 0), True)
    spec = build_spec(ConvSpec, {"filters": 8, "size": [3, 5], "stride": 2, "pad": [1, 2]})
    assert (spec.size, spec.stride, spec.pad) == ((3, 5), (2, 2), (1, 1, 2, 2))
    # built directly in Python: normalised the same way
    spec = ConvSpec(filters=4, size=5, pad="same")
    assert (spec.size, spec.stride, spec.pad) == ((5, 5), (1, 1), "same")
    assert Conv2D.short == "filters" and LocallyConnected.short == "filters"
    assert Conv2D.type == "conv" and LocallyConnected.type == "local"


@pytest.mark.parametrize("raw,path,words", [
    ({}, ("filters",), "required"),
    ({"filters": 0}, ("filters",), ">= 1"),
    ({"filters": 2, "size": [3]}, ("size",), "[h, w]"),
    ({"filters": 2, "size": 0}, ("size",), ">= 1"),
    ({"filters": 2, "stride": 0}, ("stride",), ">= 1"),
    ({"filters": 2, "pad": "sme"}, ("pad",), "did you mean 'same'"),
    ({"filters": 2, "pad": [1, 2, 3]}, ("pad",), "list of 3"),
    ({"filters": 2, "pad": -1}, ("pad",), ">= 0"),
    ({"filters": 2, "sizes": 3}, ("sizes",), "did you mean 'size'"),
])
@pytest.mark.parametrize("spec_cls", [ConvSpec, LocalSpec])
def test_spec_errors(spec_cls, raw, path, words):
    with pytest.raises(SpecError) as e:
        build_spec(spec_cls, raw)
    assert e.value.path == path
    assert words in e.value.message


@pytest.mark.parametrize("cls", [Conv2D, LocallyConnected])
def test_vector_input_is_a_shape_error(cls):
    with pytest.raises(ShapeError, match=r"needs an image input \(C, H, W\), got a vector of 784"):
        cls(cls.Spec(filters=4), (784,), name="c1")


@pytest.mark.parametrize("cls", [Conv2D, LocallyConnected])
def test_window_larger_than_input(cls):
    with pytest.raises(ShapeError, match="c1: height: window 7 is larger than the padded input 6"):
        cls(cls.Spec(filters=4, size=7, pad=1), (1, 4, 9), name="c1")


@pytest.mark.parametrize("cls", [Conv2D, LocallyConnected])
def test_stride_that_does_not_tile(cls):
    # 28 + 4 - 5 = 27 is odd: stride 2 would ignore the last row and column
    with pytest.raises(ShapeError) as e:
        cls(cls.Spec(filters=4, size=5, stride=2, pad="same"), (1, 28, 28), name="c1")
    msg = str(e.value)
    assert msg.startswith("c1: height: size 5 stride 2 does not fit an input of 28 with padding 2+2")
    assert "try stride 1" in msg and "pad 1 more" in msg
    assert "ceil" not in msg        # conv has no ceil/floor option
    # the suggested fix works
    cls(cls.Spec(filters=4, size=5, stride=2, pad=[2, 3, 2, 3]), (1, 28, 28))


@pytest.mark.parametrize("kind", ["conv", "local"])
def test_forward_checks_the_batch_shape(kind):
    layer = make(kind, {"filters": 2}, (1, 5, 5))
    with pytest.raises(ShapeError, match=r"expected a batch of shape \(N, 1, 5, 5\)"):
        layer.forward(np.zeros((2, 1, 5, 6)), train=False)


def test_lecture_example_counts_without_memory():
    """100 filters of 10x10 on a one-channel 200x200 image: 10,000 weights plus 100 biases,
    counted without allocating anything."""
    conv = Conv2D(ConvSpec(filters=100, size=10), (1, 200, 200))
    assert conv.params == {} and conv.grads == {}
    assert conv.output_shape == (100, 191, 191)
    assert conv.param_shapes() == {"weight": (100, 1, 10, 10), "bias": (100,)}
    assert conv.num_params() == 10_000 + 100
    assert conv.flops((1, 200, 200)) == 2 * 100 * 191 * 191 * 10 * 10
    assert conv.fans() == (100, 100 * 100)
    assert conv.describe() == "100@10x10 s1 p0"
    # the same layer unshared: one 10x10 filter per output pixel and filter
    local = LocallyConnected(LocalSpec(filters=100, size=10), (1, 200, 200))
    assert local.params == {}
    assert local.param_shapes() == {"weight": (100, 191, 191, 1, 10, 10), "bias": (100, 191, 191)}
    assert local.num_params() == 100 * 191 * 191 * 100 + 100 * 191 * 191
    assert local.flops((1, 200, 200)) == conv.flops((1, 200, 200))
    # the lecture's locally-connected example: 40K hidden units with 10x10 fields -> 4M weights
    lc = LocallyConnected(LocalSpec(filters=1, size=10, pad="same"), (1, 200, 200))
    assert lc.output_shape == (1, 200, 200)
    assert lc.num_params() - 40_000 == 4_000_000


@pytest.mark.parametrize("raw,in_shape,text,fans", [
    ({"filters": 32, "size": 5, "pad": 2}, (3, 32, 32), "32@5x5 s1 p2", (75, 800)),
    ({"filters": 8, "size": [3, 5], "stride": [2, 1], "pad": "same"}, (4, 9, 9),
     "8@3x5 s2x1 p1x2", (60, 120)),
    ({"filters": 6, "size": 3, "pad": [0, 1, 2, 1]}, (1, 8, 8), "6@3x3 s1 p[0,1,2,1]", (9, 54)),
])
def test_describe_fans_flops(raw, in_shape, text, fans):
    layer = Conv2D(build_spec(ConvSpec, raw), in_shape)
    assert layer.describe() == text
    assert layer.fans() == fans
    F, OH, OW = layer.output_shape
    C, KH, KW = in_shape[0], *layer.spec.size
    assert layer.flops(in_shape) == 2 * F * OH * OW * C * KH * KW
    local = LocallyConnected(build_spec(LocalSpec, raw), in_shape)
    assert local.describe() == text and local.fans() == fans
    assert local.num_params() == F * OH * OW * (C * KH * KW + 1)


def test_slack_rows_cover_the_rounding():
    for width in (1, 3, 8, 15, 16, 17, 100):
        assert slack_rows(width) * width >= KC.ROUND


def test_kernels_compile_once_per_dtype():
    """float32 and float64 only: ints are Python ints and arrays C-contiguous at the boundary."""
    rng = np.random.default_rng(8)
    for dtype in (np.float32, np.float64):
        for kind in ("conv", "local"):
            for stride in (1, 2):
                layer = make(kind, {"filters": 5, "size": 3, "stride": stride}, (2, 7, 7), dtype=dtype)
                for _ in range(2):
                    x = rng.standard_normal((3, 2, 7, 7)).astype(dtype)
                    y, cache = layer.forward(x[:, :, :, :], train=True)
                    layer.backward(np.ones_like(y), cache)
    kernels = [KC._forward_rows, KC._forward_lanes_8, KC._forward_lanes_7, KC._forward_wide,
               KC._forward_narrow, KC.conv_backward_weight, KC.conv_backward_weight_channels_last,
               KC.pad_into, KC.crop_into,
               KC.pad_phases, KC.merge_phases,
               KC.tap_offsets, KC.wide_length,
               KL._forward, KL._backward_data, KL._backward_weight]
    for k in kernels:
        assert len(k.signatures) <= 2, (k.__name__, k.signatures)
