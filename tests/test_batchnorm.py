"""The batch-norm kernels against the numpy formulas they replaced, and against PyTorch."""
import numpy as np
import pytest

from convtrain.config.spec import build_spec
from convtrain.nn.kernels import batchnorm as kernels
from convtrain.nn.layers.batchnorm import BatchNorm

from compile_checks import assert_layers_compile_once


# ---- the numpy reference: the layer's code before the kernels, kept verbatim in substance ----

def ref_forward(x, gamma, beta, running_mean, running_var, momentum, eps, train):
    """-> y, xhat, inv_std; updates running_mean / running_var in place in training."""
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if train:
        rough = x.mean(axis=axes, keepdims=True)
        centred = x - rough
        delta = centred.mean(axis=axes, keepdims=True)
        var = np.maximum(np.square(centred).mean(axis=axes) - np.square(delta).reshape(-1), 0)
        centred -= delta
        mean = rough.reshape(-1).astype(np.float64) + delta.reshape(-1)
        count = x.size // x.shape[1]
        running_mean *= momentum
        running_mean += (1 - momentum) * mean
        running_var *= momentum
        running_var += (1 - momentum) * var * (count / max(count - 1, 1))
    else:
        centred = x - running_mean.reshape(shape)
        var = running_var
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    xhat = centred * inv_std.reshape(shape)
    return xhat * gamma.reshape(shape) + beta.reshape(shape), xhat, inv_std


def ref_backward(dout, xhat, inv_std, gamma, train):
    """-> dx, dgamma, dbeta."""
    axes = (0,) if dout.ndim == 2 else (0, 2, 3)
    shape = (1, dout.shape[1]) + (1,) * (dout.ndim - 2)
    dgamma = (dout * xhat).sum(axis=axes)
    dbeta = dout.sum(axis=axes)
    dxhat = dout * gamma.reshape(shape)
    if not train:
        return dxhat * inv_std.reshape(shape), dgamma, dbeta
    m = dout.size // dout.shape[1]
    mean_dxhat = dxhat.sum(axis=axes).reshape(shape) / m
    mean_dxhat_xhat = (dxhat * xhat).sum(axis=axes).reshape(shape) / m
    return (dxhat - mean_dxhat - xhat * mean_dxhat_xhat) * inv_std.reshape(shape), dgamma, dbeta


# ------------------------------------------------------------------------------------------------

def make(shape, dtype, momentum=0.9, eps=1e-5, seed=0):
    layer = BatchNorm(build_spec(BatchNorm.Spec, {"momentum": momentum, "eps": eps}), shape,
                      dtype=dtype, name="bn")
    layer.init_params(np.random.default_rng(seed), ("normal", 0.5))
    rng = np.random.default_rng(seed + 1)
    layer.params["weight"][...] = rng.normal(1.0, 0.3, shape[0])
    layer.params["bias"][...] = rng.normal(0.0, 0.5, shape[0])
    layer.buffers["running_mean"][...] = rng.normal(0.0, 0.5, shape[0])
    layer.buffers["running_var"][...] = rng.uniform(0.5, 2.0, shape[0])
    return layer


SHAPES = [(64, 32, 7, 7), (5, 3, 4, 6), (16, 8, 1, 1), (32, 10)]
# (offset, spread): plain, and a channel sitting far from zero (the precision the old code kept)
INPUTS = [(0.0, 1.0), (100.0, 0.01), (-3.0, 5.0)]


def relative_error(got, want):
    return np.abs(got.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-30)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 2e-5)])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("offset,spread", INPUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_kernels_match_the_numpy_formulas(shape, offset, spread, train, dtype, tol):
    """Output, running statistics, input and parameter gradients. The float32 kernels are held to
    the float64 reference (the old float32 code is no more exact than that on an offset)."""
    rng = np.random.default_rng(len(shape) + int(abs(offset)))
    x = (offset + spread * rng.standard_normal(shape)).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    layer = make(shape[1:], dtype)
    rm = layer.buffers["running_mean"].astype(np.float64)
    rv = layer.buffers["running_var"].astype(np.float64)
    gamma = layer.params["weight"].astype(np.float64)
    beta = layer.params["bias"].astype(np.float64)
    y_want, xhat, inv_std = ref_forward(x.astype(np.float64), gamma, beta, rm, rv, 0.9, 1e-5, train)
    dx_want, dg_want, db_want = ref_backward(dout.astype(np.float64), xhat, inv_std, gamma, train)

    y, cache = layer.forward(x, train=train)
    dx = layer.backward(dout, cache)
    assert y.dtype == dx.dtype == dtype
    assert relative_error(y, y_want) < tol
    assert relative_error(cache.xhat, xhat) < tol
    assert relative_error(dx, dx_want) < tol
    assert relative_error(layer.grads["weight"], dg_want) < tol
    assert relative_error(layer.grads["bias"], db_want) < tol
    np.testing.assert_allclose(layer.buffers["running_mean"], rm, rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.buffers["running_var"], rv, rtol=tol, atol=tol)


def test_statistics_keep_their_precision_on_an_offset():
    """100 + 0.01 noise in float32: the per-channel variance is the noise's, to float64 digits."""
    x = (100 + 0.01 * np.random.default_rng(3).standard_normal((64, 4, 9))).astype(np.float32)
    mean, var = np.empty(4), np.empty(4)
    kernels.channel_stats(x, mean, var)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2)), rtol=1e-14)
    np.testing.assert_allclose(var, x64.var(axis=(0, 2)), rtol=1e-9)


def test_need_dx_false_adds_the_same_parameter_gradients():
    layer = make((6, 5, 5), np.float32)
    x = np.random.default_rng(1).standard_normal((8, 6, 5, 5)).astype(np.float32)
    y, cache = layer.forward(x, train=True)
    layer.backward(y, cache)
    want = {k: g.copy() for k, g in layer.grads.items()}
    layer.backward(y, cache, need_dx=False)      # grads add up
    for k, g in layer.grads.items():
        np.testing.assert_allclose(g, 2 * want[k], rtol=1e-6)


def test_matches_pytorch_in_training_and_evaluation():
    torch = pytest.importorskip("torch")
    shape = (16, 6, 5, 7)
    rng = np.random.default_rng(2)
    x = rng.normal(2.0, 3.0, shape)
    dout = rng.standard_normal(shape)
    for train in (True, False):
        layer = make(shape[1:], np.float64, momentum=0.8, eps=1e-3)
        rm = torch.tensor(layer.buffers["running_mean"].copy())
        rv = torch.tensor(layer.buffers["running_var"].copy())
        w = torch.tensor(layer.params["weight"].copy(), requires_grad=True)
        b = torch.tensor(layer.params["bias"].copy(), requires_grad=True)
        xt = torch.tensor(x, requires_grad=True)
        yt = torch.nn.functional.batch_norm(xt, rm, rv, w, b, training=train, momentum=0.2,
                                            eps=1e-3)   # torch's momentum weighs the batch
        yt.backward(torch.tensor(dout))
        y, cache = layer.forward(x, train=train)
        dx = layer.backward(dout, cache)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(layer.grads["weight"], w.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(layer.grads["bias"], b.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(layer.buffers["running_mean"], rm.numpy(), rtol=1e-12)
        np.testing.assert_allclose(layer.buffers["running_var"], rv.numpy(), rtol=1e-12)


def test_kernels_compile_once_per_dtype():
    """Float64 inputs into float32 layers, images or vectors: one float32 signature a kernel."""
    assert_layers_compile_once([make((2, 5, 4), np.float32)], (2, 5, 4), kernels)
    assert_layers_compile_once([make((3,), np.float32)], (3,), kernels)
