import numpy as np

from convtrain.nn.kernels.elementwise import sgd_update


def reference(w, g, v, lr, mu, nesterov, wd, l1):
    g = g + wd * w + l1 * np.sign(w)
    v = mu * v + g
    w = w - lr * (g + mu * v if nesterov else v)
    return w, v


def test_sgd_update_matches_reference():
    rng = np.random.default_rng(0)
    for nesterov in (False, True):
        w, g, v = (rng.standard_normal(40000) for _ in range(3))
        ew, ev = reference(w, g, v, 0.1, 0.9, nesterov, 1e-3, 1e-4)
        sgd_update(w, g, v, 0.1, 0.9, nesterov, 1e-3, 1e-4)
        np.testing.assert_allclose(w, ew, rtol=1e-10)
        np.testing.assert_allclose(v, ev, rtol=1e-10)


def test_learning_rate_sits_outside_the_velocity():
    w = np.ones(4)
    v = np.zeros(4)
    g = np.ones(4)
    sgd_update(w, g, v, 0.5, 0.9, False, 0.0, 0.0)
    assert np.allclose(v, 1.0) and np.allclose(w, 0.5)
