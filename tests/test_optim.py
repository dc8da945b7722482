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


def test_weight_decay_spares_what_the_layers_declare():
    """Layers list the parameters that get no decay (`no_decay`): biases, batch norm's scale
    and shift; `decay_biases` decays them too."""
    from types import SimpleNamespace

    from convtrain import config as configmod
    from convtrain.nn.network import Network
    from convtrain.train.optim import init_velocities, sgd_step

    text = "input: [3]\nmodel:\n  - dense: 4\n  - batch_norm\n  - dense: 2\n"
    model = configmod.loads(text).model
    for decay_biases in (False, True):
        net = Network.build(model, (3,), dtype=np.float64, seed=0)
        for _, _, _, p in net.parameters():
            p[...] = 1.0
        net.zero_grads()
        optim = SimpleNamespace(momentum=0.0, nesterov=False, weight_decay=0.5, l1=0.0,
                                decay_biases=decay_biases)
        sgd_step(net, init_velocities(net), 1.0, optim)
        decayed = {key for key, _, _, p in net.parameters() if np.all(p == 0.5)}
        kept = {key for key, _, _, p in net.parameters() if np.all(p == 1.0)}
        everything = {key for key, _, _, _ in net.parameters()}
        if decay_biases:
            assert decayed == everything
        else:
            assert decayed == {"dense1.weight", "dense2.weight"}
            assert kept == everything - decayed
