"""The training step and the divergence guard shared by the trainer, lr-search and doctor."""
import math

import numpy as np
import pytest

from convtrain import config as configmod
from convtrain.nn.network import Network
from convtrain.train.step import CLIMB, RISE, WATCH_BATCH, DivergenceGuard, train_step

K = 10
LN_K = math.log(K)


def guard(recent=(), threshold=10.0, window=50):
    return DivergenceGuard(K, threshold=threshold, window=window, recent=recent)


def feed(g, losses):
    """Judge and accept each loss as a caller does; -> the index and reason of the first verdict."""
    for i, loss in enumerate(losses):
        why = g.judge(loss)
        if why is not None:
            return i, why
        g.accept(loss)
    return None


# --- the step -------------------------------------------------------------------------------------

def small_net(dropout=False):
    text = "input: [6]\nmodel: [dense: 8, relu, " + ("dropout: 0.5, " if dropout else "") + "dense: 3]\n"
    cfg = configmod.loads(text)
    return Network.build(cfg.model, (6,), seed=0)


def test_the_step_computes_loss_gradients_and_errors(rng):
    net = small_net()
    x = rng.standard_normal((5, 6)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1])
    r = train_step(net, x, y, seed=0, step=0)
    assert r.n == 5 and 0 <= r.errors <= 5
    assert math.isfinite(r.loss) and r.loss > 0
    assert any(np.abs(g).sum() > 0 for layer in net.layers for g in layer.grads.values())
    logits = net.predict(x)
    assert r.errors == int((logits.argmax(axis=1) != y).sum())


def test_the_step_zeroes_gradients_and_is_a_pure_function_of_seed_and_step(rng):
    net = small_net(dropout=True)
    x = rng.standard_normal((8, 6)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    a = train_step(net, x, y, seed=3, step=7)
    grads = {(layer.name, k): g.copy() for layer in net.layers for k, g in layer.grads.items()}
    b = train_step(net, x, y, seed=3, step=7)   # the grads are not accumulated on top
    assert a == b
    for layer in net.layers:
        for k, g in layer.grads.items():
            assert np.array_equal(g, grads[layer.name, k])
    assert train_step(net, x, y, seed=3, step=8).loss != a.loss   # another dropout mask


def test_a_non_finite_gradient_makes_the_loss_nan(rng):
    net = small_net()
    x = rng.standard_normal((4, 6)).astype(np.float32)
    x[0, 0] = np.inf
    r = train_step(net, x, np.array([0, 1, 2, 0]), seed=0, step=0)
    assert math.isnan(r.loss)
    assert DivergenceGuard(3, threshold=10.0, window=50).judge(r.loss) == "not finite"


# --- the guard ------------------------------------------------------------------------------------

def test_every_step_is_judged_from_the_first_against_ln_k():
    g = guard()
    assert g.limit() == pytest.approx(10 * LN_K)
    assert g.judge(10 * LN_K + 0.01) is not None    # the very first step
    assert g.judge(10 * LN_K - 0.01) is None
    for bad in (math.nan, math.inf, -math.inf):
        assert g.judge(bad) == "not finite"


def test_judging_changes_nothing_and_divergent_losses_never_enter_the_reference():
    g = guard([0.5] * 50)
    before = g.state()
    assert g.judge(1e6) is not None
    assert g.judge(0.4) is None
    assert g.state() == before


def test_the_reference_ignores_a_few_huge_good_losses():
    g = guard([18.0, 20.0] + [0.5] * 48)     # e.g. accepted in the first steps, from a bad init
    assert g.limit() == pytest.approx(5.0)   # 10 x 0.5: the two outliers do not move it
    assert g.judge(6.0) is not None
    assert guard([0.5] * 48 + [18.0, 20.0]).limit() == pytest.approx(5.0)


def test_the_limit_stays_between_ln_k_and_threshold_times_ln_k():
    assert guard([0.001] * 50).limit() == pytest.approx(LN_K)     # noise of a net that fits
    assert guard([5.0] * 50).limit() == pytest.approx(10 * LN_K)  # worse than guessing
    assert guard([0.5] * 50).limit() == pytest.approx(5.0)
    assert guard([0.5] * 50, threshold=4.0).limit() == pytest.approx(LN_K)


def test_a_loss_that_keeps_rising_diverges():
    g = guard(window=50)
    steady = [3.0] * 50
    risen = 3.0 * RISE * 1.1
    assert feed(g, steady + [risen] * 49) is None    # two full windows are needed
    assert "rising" in g.judge(risen)
    assert g.judge(risen) == "rising: median 3 -> 6.6 over 50 steps"


def test_a_slow_climb_to_near_the_cap_is_caught_long_before():
    losses = (0.5 * 1.02 ** np.arange(400)).tolist()   # 0.5 -> 1400, 2 % a step
    at, why = feed(guard(), losses)
    assert "rising" in why and losses[at] < 10 * LN_K


def test_a_rise_near_or_below_ln_k_is_noise_not_divergence():
    assert feed(guard(), [0.05] * 50 + [0.5] * 200) is None     # 10x, still below ln K
    assert feed(guard(), [1.5] * 50 + [4.0] * 200) is None      # 2.7x, below 2 ln K


def test_noisy_training_with_single_image_batches_never_fires():
    """Batches of one image: the cross-entropy of an example whose correct-class margin is normal
    around a mean that grows as the net learns, with a spread that leaves 13 % of the examples
    misclassified at the end. Noisier than single-image batches measured on Fashion-MNIST (a
    loss reaches 200x the running median)."""
    rng = np.random.default_rng(0)
    steps = np.arange(20000)
    margin = rng.normal(5 * (1 - np.exp(-steps / 2000)), 3.9)
    losses = np.log1p((K - 1) * np.exp(-margin))
    assert losses.max() > 100 * np.median(losses[-1000:])
    assert feed(guard(), losses.tolist()) is None


def test_the_state_round_trips_and_holds_two_windows():
    g = guard(window=5)
    for i in range(20):
        g.accept(float(i))
    assert g.state() == [float(i) for i in range(10, 20)]
    h = guard(window=5)
    h.load_state(g.state())
    assert h.state() == g.state() and h.limit() == g.limit()
    assert h.judge(100.0) == g.judge(100.0)


# --- the watch after a rollback -----------------------------------------------------------------

def test_after_a_rollback_a_loss_that_does_not_fall_diverges():
    """Tiny at 4x its rate, rolled back to step 0: 3.75, 5.16, 7.06 (measured)."""
    g = guard()
    g.watch()
    assert feed(g, [3.75, 5.16]) is None          # too few losses to tell
    assert g.judge(7.06) == ("not falling: median 5.16 over 3 steps since the rollback point, "
                             "whose loss was 3.75")
    assert g.watched == [3.75, 5.16]               # judging changed nothing
    g.settle()
    assert g.judge(7.06) is None and not g.watching and g.watched == []


def test_a_falling_or_noisy_start_after_a_rollback_is_healthy():
    g = guard()
    g.watch()
    assert feed(g, [3.75, 3.6, 2.8, 2.7, 2.5, 2.2, 2.2, 1.6, 1.7, 1.8]) is None  # 2x its rate
    g = guard()
    g.watch()
    # a plateau at ln K, as many nets start: noise of a few percent is no climb
    assert feed(g, [LN_K * (1 + 0.08 * (-1) ** i) for i in range(50)]) is None
    g = guard()
    g.watch()
    assert feed(g, [LN_K] + [CLIMB * LN_K * 1.01] * 3) == (2, (
        "not falling: median 2.907 over 3 steps since the rollback point, whose loss was 2.303"))


def test_the_watch_judges_from_ln_k_at_least():
    """A rollback point late in training has a small loss: noise above it is no climb."""
    g = guard([0.2] * 50)
    g.watch()
    assert feed(g, [0.05] + [0.6, 1.5, 2.0, 0.3] * 10) is None   # median below 1.25 ln K
    g = guard([0.5] * 50)                          # below the sharp limit, 5
    g.watch()
    assert feed(g, [0.05, 3.5, 3.5]) == (2, "not falling: median 3.5 over 3 steps since the "
                                            "rollback point, whose loss was 0.05")


def test_no_watch_without_a_rollback_and_none_on_small_batches():
    assert feed(guard(), [3.75, 5.16, 7.06, 7.0]) is None
    small = DivergenceGuard.for_network(small_net(), configmod.loads(
        "input: [6]\nmodel: [dense: 3]\n").divergence, batch_size=WATCH_BATCH - 1)
    small.watch()
    assert feed(small, [1.0, 5.0, 5.0, 5.0]) is None    # such batch means are too noisy
    assert DivergenceGuard.for_network(small_net(), configmod.loads(
        "input: [6]\nmodel: [dense: 3]\n").divergence, batch_size=WATCH_BATCH).judge_climbs


def test_a_watch_resumes_where_it_was():
    g = guard()
    g.watch()
    feed(g, [3.75, 5.16])
    h = guard(g.state())
    h.watch(g.watched)
    assert h.watching and h.judge(7.06) == g.judge(7.06) is not None
