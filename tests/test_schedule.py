import math
from types import SimpleNamespace

import pytest

from convtrain.train.schedules import factor


def sched(**kw):
    base = dict(type="constant", final_factor=1e-3, step_epochs=1, gamma=0.1, milestones=(),
                power=1.0, inv_gamma=1e-4, warmup_steps=0, min_factor=0.0)
    base.update(kw)
    return SimpleNamespace(**base)


def f(s, step, total=100, per_epoch=10):
    return factor(s, step, total=total, per_epoch=per_epoch)


def test_constant():
    assert [f(sched(), s) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]


def test_step_every_two_epochs():
    s = sched(type="step", step_epochs=2, gamma=0.5)
    assert [f(s, st) for st in (0, 19, 20, 39, 40, 99)] == [1, 1, 0.5, 0.5, 0.25, 0.0625]


def test_multistep_milestones():
    s = sched(type="multistep", milestones=(3, 7), gamma=0.1)
    assert f(s, 29) == 1 and f(s, 30) == pytest.approx(0.1) and f(s, 70) == pytest.approx(0.01)


def test_exponential_reaches_final_factor():
    s = sched(type="exponential", final_factor=1e-3)
    assert f(s, 0) == 1
    assert f(s, 50) == pytest.approx(math.sqrt(1e-3))
    assert f(s, 100) == pytest.approx(1e-3)


def test_inverse_is_caffes_inv():
    s = sched(type="inverse", inv_gamma=0.01, power=0.75)
    assert f(s, 40) == pytest.approx((1 + 0.01 * 40) ** -0.75)


def test_cosine_and_poly():
    c = sched(type="cosine", min_factor=0.1)
    assert f(c, 0) == 1 and f(c, 50) == pytest.approx(0.55) and f(c, 100) == pytest.approx(0.1)
    p = sched(type="poly", power=2.0)
    assert f(p, 50) == pytest.approx(0.25)


def test_warmup_is_linear_then_schedule():
    s = sched(warmup_steps=4)
    assert [f(s, st) for st in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
