"""train.schedules: the registry of schedule types, each with its own options and formula."""
import dataclasses
import math

import pytest

from convtrain.train.schedules import SCHEDULES, Schedule, factor


def sched(type_, **options):
    return SCHEDULES[type_](**options)


def f(s, step, total=100, per_epoch=10):
    return factor(s, step, total=total, per_epoch=per_epoch)


def options(type_):
    return {f.name for f in dataclasses.fields(SCHEDULES[type_]) if f.init}


def test_registry_names_each_class_by_its_type():
    assert list(SCHEDULES) == ["constant", "step", "multistep", "exponential", "inverse",
                               "cosine", "poly"]
    for name, cls in SCHEDULES.items():
        assert cls.type == name and issubclass(cls, Schedule)


def test_each_type_declares_its_own_options_and_warmup():
    assert options("constant") == {"warmup_steps"}
    assert options("step") == {"step_epochs", "gamma", "warmup_steps"}
    assert options("multistep") == {"milestones", "gamma", "warmup_steps"}
    assert options("exponential") == {"final_factor", "warmup_steps"}
    assert options("inverse") == {"inv_gamma", "power", "warmup_steps"}
    assert options("cosine") == {"min_factor", "warmup_steps"}
    assert options("poly") == {"power", "min_factor", "warmup_steps"}


def test_every_option_is_documented():
    for name, cls in SCHEDULES.items():
        assert cls.__doc__, name
        for field in dataclasses.fields(cls):
            assert field.metadata.get("doc"), f"{name}.{field.name}"


def test_constant():
    assert [f(sched("constant"), s) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]


def test_step_every_two_epochs():
    s = sched("step", step_epochs=2, gamma=0.5)
    assert [f(s, st) for st in (0, 19, 20, 39, 40, 99)] == [1, 1, 0.5, 0.5, 0.25, 0.0625]


def test_multistep_milestones():
    s = sched("multistep", milestones=(3, 7), gamma=0.1)
    assert f(s, 29) == 1 and f(s, 30) == pytest.approx(0.1) and f(s, 70) == pytest.approx(0.01)


def test_exponential_reaches_final_factor():
    s = sched("exponential", final_factor=1e-3)
    assert f(s, 0) == 1
    assert f(s, 50) == pytest.approx(math.sqrt(1e-3))
    assert f(s, 100) == pytest.approx(1e-3)


def test_exponential_last_step_is_final_factor_to_the_t_minus_one_over_t():
    """The option's doc: the last step trained (T - 1 of T) takes final_factor^((T-1)/T)."""
    for total, final in ((100, 1e-3), (7, 0.01), (1, 0.5)):
        s = sched("exponential", final_factor=final)
        last = f(s, total - 1, total=total)
        assert last == pytest.approx(final ** ((total - 1) / total))
        assert last > final


def test_inverse_is_caffes_inv():
    s = sched("inverse", inv_gamma=0.01, power=0.75)
    assert f(s, 40) == pytest.approx((1 + 0.01 * 40) ** -0.75)


def test_cosine_and_poly():
    c = sched("cosine", min_factor=0.1)
    assert f(c, 0) == 1 and f(c, 50) == pytest.approx(0.55) and f(c, 100) == pytest.approx(0.1)
    p = sched("poly", power=2.0)
    assert f(p, 50) == pytest.approx(0.25)


def test_poly_min_factor_is_affine_not_a_floor():
    """The option's doc: min + (1 - min)(1 - t)^power, higher than Caffe's poly at every t < 1."""
    p = sched("poly", power=2.0, min_factor=0.1)
    for step in (0, 25, 50, 90, 100):
        t = step / 100
        assert f(p, step) == pytest.approx(0.1 + 0.9 * (1 - t) ** 2)
    assert f(p, 50) == pytest.approx(0.325)                # a floor would give max(0.1, 0.25)
    assert f(p, 90) == pytest.approx(0.109)                # a floor would give 0.1


def test_cosine_min_factor_rescales_the_cosine():
    c = sched("cosine", min_factor=0.2)
    for step in (0, 30, 60, 100):
        t = step / 100
        assert f(c, step) == pytest.approx(0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * t)))


def test_warmup_is_linear_then_schedule():
    s = sched("constant", warmup_steps=4)
    assert [f(s, st) for st in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_warmup_multiplies_every_type():
    for name in SCHEDULES:
        plain, warm = sched(name), sched(name, warmup_steps=10)
        assert f(warm, 4) == pytest.approx(f(plain, 4) * 0.5), name
        assert f(warm, 10) == f(plain, 10), name


def test_factor_is_the_schedules_own_method():
    s = sched("cosine", min_factor=0.3)
    assert factor(s, 17, total=40, per_epoch=5) == s.factor(17, total=40, per_epoch=5)
