"""A run started at a bad learning rate recovers and still learns; a dead run says so.

The trainer watches the run after each rollback (a loss that does not fall, units that die:
train/step.py rule 4 and train/health.py), and checks the network's health at the end."""
import json
import math
import os

import numpy as np
import pytest

from convtrain import config as configmod
from convtrain import data as datamod
from convtrain.nn.network import Network
from convtrain.train import checkpoint as ckpt
from convtrain.train import health
from convtrain.train.step import StepResult
from convtrain.train.trainer import Interrupted, SilentReporter, Trainer

from conftest import needs_fmnist
from test_trainer import Losses, StopAt, make

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def events(t, kind):
    rows = [json.loads(line) for line in open(os.path.join(t.out_dir, "metrics.jsonl"))]
    return [r for r in rows if r.get("event") == kind]


def snapshot_every(n):
    return lambda s: s.replace("train: {", f"divergence: {{snapshot_every: {n}}}\ntrain: {{")


def poison_once(t, at):
    """Step `at` gets a NaN image the first time it runs: a divergence that starts a watch."""
    original, done = t.batch, []

    def batch(step):
        x, y = original(step)
        if step == at and not done:
            done.append(step)
            x = x.copy()
            x[0, 0, 0, 0] = np.nan
        return x, y

    t.batch = batch


def test_a_halved_rate_whose_loss_does_not_fall_is_rolled_back_and_halved_again(tmp_path):
    t = make(tmp_path, epochs=1)

    def step(s):
        scale = t.halvings.lr_scale
        if s == 0 or scale < 0.5:
            return StepResult(3.0, 0, 32)
        return StepResult(math.nan if scale == 1 else 5.0, 0, 32)   # 5: below the sharp limit

    t.train_step = step
    t.fit()
    div = events(t, "divergence")
    assert [e["reason"] for e in div] == [
        "not finite",
        "not falling: median 5 over 3 steps since the rollback point, whose loss was 3"]
    assert [e["lr"] for e in div] == [0.025, 0.0125] and div[1]["rollback_to"] == 0
    assert t.halvings.lr_scale == 0.25 and t.step == t.total_steps
    assert t.guard.watching                 # the 8 steps never got 50 past the failure point


def test_the_watch_ends_once_the_run_got_past_the_failure_point(tmp_path):
    t = make(tmp_path, epochs=2, text_edit=snapshot_every(4))
    poison_once(t, 2)
    t.fit()
    assert [e["reason"] for e in events(t, "divergence")] == ["not finite"]
    assert not t.guard.watching and t.guard.watched == [] and t.halvings.retries == 0


def test_a_halved_rate_that_kills_units_is_rolled_back_before_a_snapshot_keeps_it(tmp_path):
    t = make(tmp_path, epochs=1, text_edit=snapshot_every(4))
    poison_once(t, 2)
    original = t.train_step

    def step(s):
        if s == 3 and t.halvings.lr_scale == 0.5:   # the halved rate "kills" every filter
            t.net.layers[0].params["bias"][:] = -1e3
        return original(s)

    t.train_step = step
    t.fit()
    div = events(t, "divergence")
    assert [e["reason"] for e in div] == ["not finite", "units died: 100% of conv1 dead"]
    assert div[1]["step"] == 4 and div[1]["rollback_to"] == 0
    assert t.halvings.lr_scale == 0.25 and t.step == t.total_steps
    assert t.measure_health().dead["conv1"] < health.MOSTLY_DEAD
    assert events(t, "warning") == []


def test_a_run_resumed_during_a_watch_is_bit_identical(tmp_path):
    full = make(tmp_path, epochs=2, text_edit=snapshot_every(4), out="full")
    poison_once(full, 2)
    full.fit()
    part = make(tmp_path, epochs=2, text_edit=snapshot_every(4), out="part")
    poison_once(part, 2)
    part.reporter = StopAt(3)
    with pytest.raises(Interrupted) as stop:
        part.fit()
    meta = ckpt.load(stop.value.path).meta
    assert meta.guard.watching and len(meta.guard.watched) == 3   # steps 0, 1, 2
    assert set(meta.guard.rollback_dead) == {"conv1"}
    resumed = make(tmp_path, epochs=2, text_edit=snapshot_every(4), out="part")
    resumed.restore(ckpt.load(stop.value.path))
    assert resumed.guard.watched == part.guard.watched
    assert resumed.halvings == part.halvings
    resumed.fit()
    a, b = full.net.state_dict(), resumed.net.state_dict()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert resumed.guard.state() == full.guard.state() and resumed.halvings == full.halvings
    # a checkpoint of a run that is not watching has version 1's keys only
    guard_keys = set(ckpt.load(os.path.join(resumed.out_dir, "last.npz")).meta.to_json()["guard"])
    assert guard_keys == {"recent", "retries", "fail_step", "history"}


class Told(SilentReporter):
    def __init__(self):
        self.warnings = []

    def warning(self, message):
        self.warnings.append(message)


def test_a_run_whose_units_died_ends_with_warnings_in_metrics_and_result(tmp_path):
    t = make(tmp_path, epochs=2)
    t.reporter = told = Told()
    t.net.layers[0].params["bias"][:] = -1e3      # no filter ever fires: nothing to learn from
    result = t.fit()
    reasons = ["learned_nothing", "dead_units"]
    assert [w["reason"] for w in result["warnings"]] == reasons
    logged = events(t, "warning")
    assert [e["reason"] for e in logged] == reasons and all(e["step"] == 16 for e in logged)
    assert [e["message"] for e in logged] == [w["message"] for w in result["warnings"]]
    assert told.warnings == [w["message"] for w in result["warnings"]]
    assert "100% of conv1" in told.warnings[1]


# --- the promise on real data ------------------------------------------------------------------

def fit_tiny(tmp_path, name, lr, batch_size=None):
    cfg = configmod.with_overrides(configmod.load(os.path.join(ROOT, "configs", "tiny.yaml")),
                                   lr=lr)
    splits = datamod.load(cfg.data, seed=cfg.seed, input_shape=cfg.input)
    net = Network.build(cfg.model, splits.input_shape, seed=cfg.seed)
    t = Trainer(cfg, net, splits, str(tmp_path / name), reporter=Losses())
    return t, t.fit()


@needs_fmnist
def test_tiny_at_1000_times_its_rate_ends_within_2_points_of_its_own_rate(tmp_path):
    own, own_result = fit_tiny(tmp_path, "own", 0.05)
    assert events(own, "divergence") == [] and own_result["warnings"] == []
    bad, bad_result = fit_tiny(tmp_path, "bad", 50.0)
    assert bad_result["best_val_error"] <= own_result["best_val_error"] + 0.02
    assert bad_result["warnings"] == []
    # every halving is in metrics.jsonl, and no update followed a loss above 10 ln K
    halvings = round(-math.log2(bad.halvings.lr_scale))
    assert halvings == 9 and len(events(bad, "divergence")) == halvings   # 50 -> 0.098
    assert max(bad.reporter.losses) <= 10 * math.log(10)
