"""Winograd F(2x2, 5x5) convolution and its gradients (kernels/winograd.py) against the direct
kernels and the naive reference, and the layer's choice between them."""
import numpy as np
import pytest
import ref_conv as R

from convtrain.nn.kernels import conv as KC
from convtrain.nn.kernels import winograd as W
from convtrain.nn.layers.conv import Conv2D, ConvSpec, data_gradient, slack_rows
from convtrain.config.spec import build_spec


def test_transforms_compute_the_correlation():
    """AT [(G g G^T) * (BT d B)] A is the 2x2 valid correlation of an (r+1)^2 patch d with g."""
    r = W.SIZE
    AT, G, BT, _ = W.matrices()
    rng = np.random.default_rng(r)
    d = rng.standard_normal((r + 1, r + 1))
    g = rng.standard_normal((r, r))
    got = AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T
    want = np.array([[np.sum(d[i:i + r, j:j + r] * g) for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def padded(rng, N, C, H, Wd, r, dtype, slack=2):
    """A zero-padded ('same') input with NaN in the rows past the last one an output reads."""
    p = r // 2
    xp = np.zeros((N, C, H + r - 1 + slack, Wd + r - 1), dtype)
    xp[:, :, p:p + H, p:p + Wd] = rng.standard_normal((N, C, H, Wd))
    xp[:, :, H + r - 1:] = np.nan
    return xp


@pytest.mark.parametrize("N,C,F,H,Wd,r", [
    (3, 16, 16, 14, 14, 5),
    (2, 20, 33, 7, 9, 5),      # odd map sides: the last tile row and column are half outside
    (2, 17, 40, 5, 6, 5),      # channels and filters not multiples of the lanes
    (1, 32, 64, 4, 3, 5),      # fewer tiles than one product tile
    (2, 16, 70, 9, 8, 5),
])
@pytest.mark.parametrize("relu", [False, True])
def test_forward_matches_direct_float64(N, C, F, H, Wd, r, relu):
    rng = np.random.default_rng(1)
    xp = padded(rng, N, C, H, Wd, r, np.float64)
    w = rng.standard_normal((F, C, r, r))
    b = rng.standard_normal(F)
    want = np.empty((N, F, H, Wd))
    KC.conv_forward(np.nan_to_num(xp), w, b, want, relu)
    got = np.full_like(want, 7.0)
    W.winograd_forward(xp, W.transform_weights(w), b, got, relu, r, 2)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("r,tol", [(5, 2e-5)])
def test_float32_error_is_small(r, tol):
    """The transforms' rounding: max error relative to the output's scale, against float64."""
    rng = np.random.default_rng(2)
    xp = padded(rng, 4, 32, 14, 14, r, np.float64)
    w = rng.standard_normal((64, 32, r, r)) / (5 * r)
    b = np.zeros(64)
    want = np.empty((4, 64, 14, 14))
    KC.conv_forward(np.nan_to_num(xp), w, b, want, False)
    got = np.empty(want.shape, np.float32)
    W.winograd_forward(xp.astype(np.float32), W.transform_weights(w.astype(np.float32)),
                       b.astype(np.float32), got, False, r, 2)
    assert np.abs(got - want).max() / np.abs(want).max() < tol


def test_choice_follows_the_measured_cost():
    """Winograd for fmnist-lcn's conv2 (32->64 5x5 at 14x14) and cifar-like's second conv
    (32->32 at 16x16) both ways; for the 8x8 maps of cifar-like's third conv only the gradients
    (its forward measured slower); direct for first layers (too few channels for the lanes) and
    for windows it has no transform for."""
    for C, F, H in ((32, 64, 14), (32, 32, 16)):
        assert W.use_forward(C, F, 5, 5, H, H) and W.use_backward(C, F, 5, 5, H, H)
    assert W.use_backward(32, 64, 5, 5, 8, 8) and not W.use_forward(32, 64, 5, 5, 8, 8)
    for C, F, KH, KW, H in ((1, 32, 5, 5, 28), (3, 32, 5, 5, 32), (32, 64, 3, 5, 14),
                            (64, 64, 3, 3, 32), (32, 64, 7, 7, 14), (32, 64, 5, 5, 4)):
        assert not W.use_forward(C, F, KH, KW, H, H)
        assert not W.use_backward(C, F, KH, KW, H, H)


def test_layer_on_the_winograd_path_matches_reference():
    """A conv layer whose forward, data gradient and weight gradient all take the Winograd path:
    output, input gradient and parameter gradients against the naive reference (float64), with
    the ReLU fused."""
    C, F, H = 32, 64, 14
    assert W.use_forward(C, F, 5, 5, H, H) and W.use_backward(C, F, 5, 5, H, H)
    layer = Conv2D(build_spec(ConvSpec, {"filters": F, "size": 5, "pad": "same"}), (C, H, H),
                   dtype=np.float64)
    rng = np.random.default_rng(3)
    layer.init_params(rng, ("he", 2.0))
    layer.params["bias"][...] = rng.standard_normal(F)
    x = rng.standard_normal((2, C, H, H))
    y, cache = layer.forward(x, train=True, relu=True)
    dout = rng.standard_normal(y.shape)
    dx = layer.backward(dout, cache)
    w, b = layer.params["weight"], layer.params["bias"]
    z = R.conv2d(x, w, b, (1, 1), (2, 2, 2, 2))
    np.testing.assert_allclose(y, np.maximum(z, 0), rtol=1e-10, atol=1e-10)
    rdx, rdw, rdb = R.conv2d_backward(x, w, np.where(z > 0, dout, 0), (1, 1), (2, 2, 2, 2))
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grads["weight"], rdw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grads["bias"], rdb, rtol=1e-10, atol=1e-10)


def test_slack_rows_are_never_read():
    """The layer's padded input has slack rows below the last one an output reads; NaN there
    must not reach the output (the last tile row reads one row past an odd map)."""
    rng = np.random.default_rng(4)
    H, Wd, r = 13, 15, 5
    xp = np.full((2, 16, H + r - 1 + slack_rows(Wd + r - 1), Wd + r - 1), np.nan)
    xp[:, :, :H + r - 1] = rng.standard_normal((2, 16, H + r - 1, Wd + r - 1))
    out = np.empty((2, 48, H, Wd))
    w = rng.standard_normal((48, 16, r, r))
    W.winograd_forward(xp, W.transform_weights(w), np.zeros(48), out, False, r, 2)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("N,C,F,H,Wd,r,relu", [
    (3, 16, 16, 14, 14, 5, False),
    (2, 20, 33, 7, 9, 5, True),     # odd sides, filters not a multiple of the lanes
    (2, 17, 40, 5, 6, 5, True),     # channels not a multiple of the 7-channel tiles
    (1, 16, 64, 3, 4, 5, False),    # fewer tiles than one product tile
])
def test_weight_gradient_matches_direct_float64(N, C, F, H, Wd, r, relu):
    """dw and db (added into what is there), through a fused ReLU's mask or not."""
    rng = np.random.default_rng(5)
    xp = padded(rng, N, C, H, Wd, r, np.float64)
    dout = rng.standard_normal((N, F, H, Wd))
    mask = rng.standard_normal((N, F, H, Wd)) if relu else dout
    dw0, db0 = rng.standard_normal((F, C, r, r)), rng.standard_normal(F)
    want_w, want_b = dw0.copy(), db0.copy()
    KC.conv_backward_weight(np.nan_to_num(xp), dout, mask, relu, want_w, want_b, 2)
    got_w, got_b = dw0.copy(), db0.copy()
    W.winograd_weight_gradient(xp, dout, mask, relu, got_w, got_b, 2)
    np.testing.assert_allclose(got_w, want_w, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_b, want_b, rtol=1e-12, atol=1e-12)


def test_weight_gradient_float32_error_is_small():
    rng = np.random.default_rng(6)
    xp = padded(rng, 8, 32, 14, 14, 5, np.float64)
    dout = rng.standard_normal((8, 64, 14, 14))
    want_w, want_b = np.zeros((64, 32, 5, 5)), np.zeros(64)
    KC.conv_backward_weight(np.nan_to_num(xp), dout, dout, False, want_w, want_b, 2)
    got_w, got_b = np.zeros((64, 32, 5, 5), np.float32), np.zeros(64, np.float32)
    W.winograd_weight_gradient(xp.astype(np.float32), dout.astype(np.float32),
                                dout.astype(np.float32), False, got_w, got_b, 2)
    assert np.abs(got_w - want_w).max() / np.abs(want_w).max() < 2e-5


@pytest.mark.parametrize("N,C,F,H,Wd,r,pads,relu", [
    (2, 16, 16, 14, 14, 5, (2, 2, 2, 2), True),
    (2, 20, 33, 7, 9, 5, (1, 1, 1, 1), False),
    (2, 16, 18, 9, 8, 5, (3, 1, 0, 4), True),     # uneven padding, more than r - 1 on one side
    (1, 16, 16, 6, 7, 5, (0, 0, 0, 0), False),    # no padding ('valid')
])
def test_backward_data_gradient_matches_direct(N, C, F, H, Wd, r, pads, relu):
    """winograd_backward's dx (the transposed Winograd form) against the direct data gradient,
    and its dw against the direct weight gradient, in one call."""
    pt, pb, pl, pr = pads
    OH, OW = H + pt + pb - r + 1, Wd + pl + pr - r + 1
    rng = np.random.default_rng(8)
    xp = np.full((N, C, OH + r - 1 + 2, OW + r - 1), np.nan)    # NaN: rows never read
    xp[:, :, :OH + r - 1] = 0
    xp[:, :, pt:pt + H, pl:pl + Wd] = rng.standard_normal((N, C, H, Wd))
    dout = rng.standard_normal((N, F, OH, OW))
    mask = rng.standard_normal((N, F, OH, OW)) if relu else dout
    w = rng.standard_normal((F, C, r, r))
    want_dx = data_gradient(dout, mask if relu else None, w, H, Wd, pads)
    want_w, want_b = np.zeros_like(w), np.zeros(F)
    KC.conv_backward_weight(np.nan_to_num(xp), dout, mask, relu, want_w, want_b, 2)
    dx = np.full((N, C, H, Wd), 7.0)
    got_w, got_b = np.zeros_like(w), np.zeros(F)
    W.winograd_backward(xp, dout, mask, relu, w, got_w, got_b, dx, pt, pl, 2)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_w, want_w, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_b, want_b, rtol=1e-12, atol=1e-12)
