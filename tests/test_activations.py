"""The non-linearities' values where float rounding bites: sigmoid far below zero."""
import numpy as np
import pytest

from convtrain.config.spec import build_spec
from convtrain.nn.layers.activation import Sigmoid


def sigmoid(x, dtype):
    layer = Sigmoid(build_spec(Sigmoid.Spec, {}), x.shape[1:], dtype=dtype)
    return layer.forward(x, train=True)[0]


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-14), (np.float32, 1e-6)])
def test_sigmoid_keeps_relative_precision_below_minus_15(dtype, tol):
    """Relative error against float64 1 / (1 + exp(-x)) over [-80, 20], wherever the true value is
    a normal number of the dtype (1 + tanh(x / 2) cancels: at -30 it kept 3 digits)."""
    x = np.linspace(-80, 20, 4001).astype(dtype)[None]
    exact = 1 / (1 + np.exp(-x.astype(np.float64)))
    y = sigmoid(x, dtype)
    assert y.dtype == dtype
    normal = exact >= np.finfo(dtype).tiny
    assert normal.all()
    rel = np.abs(y - exact) / exact
    assert rel.max() <= tol, (x[rel > tol], rel.max())
    at_30 = sigmoid(np.array([[-30.0]], dtype=dtype), dtype)[0, 0]
    assert abs(at_30 / 9.357622968839299e-14 - 1) <= tol


def test_sigmoid_saturates_without_overflow_and_passes_nan():
    with np.errstate(over="raise", invalid="raise"):
        y = sigmoid(np.array([[-1000.0, 1000.0, 0.0]]), np.float64)
    assert y.tolist() == [[0.0, 1.0, 0.5]]
    assert np.isnan(sigmoid(np.array([[np.nan]], dtype=np.float32), np.float32)).all()
