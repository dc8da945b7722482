"""The trainer: divergence guard, exact resume, Ctrl-C, metrics, augmentation isolation."""
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from convtrain.train import checkpoint as ckpt
from convtrain import config as configmod
from convtrain import data as datamod
from convtrain.errors import DivergenceError
from convtrain.nn.network import Network
from convtrain.train.step import StepResult
from convtrain.train.trainer import Interrupted, SilentReporter, Trainer

from conftest import needs_fmnist
from synthetic import write_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RICH = """\
  - conv: {filters: 4, size: 3, pad: 1}
  - relu
  - dropout: 0.3
  - max_pool: 2
  - dense: 4
"""


def make(tmp_path, epochs=2, text_edit=None, out="run"):
    path = write_config(tmp_path, epochs=epochs)
    if text_edit:
        path.write_text(text_edit(path.read_text()))
    cfg = configmod.load(str(path))
    splits = datamod.load(cfg.data, seed=cfg.seed, input_shape=cfg.input)
    net = Network.build(cfg.model, splits.input_shape, seed=cfg.seed)
    return Trainer(cfg, net, splits, str(tmp_path / out))


def rich(text):
    """Dropout, augmentation, Nesterov, weight decay and an exponential schedule: every source of
    randomness and state that resume has to restore."""
    text = text.replace("  - conv: {filters: 4, size: 3, pad: 1}\n  - relu\n  - max_pool: 2\n  - dense: 4\n", RICH)
    text = text.replace("  validation: 64\n", "  validation: 64\n  augment: {translate: 1, hflip: true, noise: 0.1}\n")
    text = text.replace("optim: {lr: 0.05, momentum: 0.9}", "optim: {lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.001}")
    return text.replace("schedule: {type: constant}", "schedule: {type: exponential, final_factor: 0.01}")


class StopAt(SilentReporter):
    def __init__(self, step):
        self.at = step

    def step(self, trainer, loss, lr):
        if trainer.step == self.at:
            trainer._stop_signal = signal.SIGINT


def test_training_learns_and_writes_metrics(tmp_path):
    t = make(tmp_path, epochs=3)
    result = t.fit()
    rows = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl")]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    for key in ("epoch", "step", "train_loss", "train_error", "val_loss", "val_error", "lr",
                "seconds", "images_per_s"):
        assert key in rows[0]
    assert rows[-1]["val_error"] < 0.2
    assert result["best_val_error"] == min(r["val_error"] for r in rows)
    assert result["warnings"] == []          # a healthy run: no "event": "warning" line either
    for name in ("last.npz", "best.npz", "metrics.csv"):
        assert (tmp_path / "run" / name).exists()
    assert len(list((tmp_path / "run").glob("epoch-*.npz"))) == 2   # keep: 2


@pytest.mark.parametrize("stop_at", [3, 8, 13])   # mid-epoch, at the epoch boundary (8), epoch 2
def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, stop_at):
    full = make(tmp_path, epochs=2, text_edit=rich, out="full")
    full.fit()
    part = make(tmp_path, epochs=2, text_edit=rich, out="part")
    part.reporter = StopAt(stop_at)
    with pytest.raises(Interrupted) as stop:
        part.fit()
    resumed = make(tmp_path, epochs=2, text_edit=rich, out="part")
    resumed.restore(ckpt.load(stop.value.path))
    assert resumed.step == stop_at
    resumed.fit()
    a, b = full.net.state_dict(), resumed.net.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    for k in full.velocities:
        assert np.array_equal(full.velocities[k], resumed.velocities[k]), k
    assert resumed.guard.state() == full.guard.state()   # it judges as the uninterrupted run


def test_huge_learning_rate_is_halved_until_training_works(tmp_path):
    t = make(tmp_path, epochs=2, text_edit=lambda s: s.replace("lr: 0.05", "lr: 5000.0")
             .replace("train: {", "divergence: {max_retries: 30}\ntrain: {"))
    t.fit()
    events = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl")]
    div = [e for e in events if e.get("event") == "divergence"]
    assert div, "expected divergence events"
    assert all({"step", "loss", "lr"} <= set(e) for e in div)
    assert div[-1]["lr"] < div[0]["lr"]
    assert t.halvings.lr_scale < 1
    assert all(np.isfinite(v).all() for v in t.net.state_dict().values())
    epochs = [e for e in events if "epoch" in e]
    assert epochs[-1]["val_error"] < 0.5


def test_a_nan_batch_rolls_back_and_the_run_finishes(tmp_path):
    t = make(tmp_path, epochs=1)
    original = t.batch
    poisoned = {"done": False}

    def batch(step):
        x, y = original(step)
        if step == 5 and not poisoned["done"]:
            poisoned["done"] = True
            x = x.copy()
            x[0, 0, 0, 0] = np.nan
        return x, y

    t.batch = batch
    t.fit()
    assert t.halvings.lr_scale == 0.5
    assert t.step == t.total_steps
    assert all(np.isfinite(v).all() for v in t.net.state_dict().values())
    # the rollback to step 0 took the guard back too: it holds the losses of the kept steps only
    assert len(t.guard.state()) == t.total_steps


def test_gives_up_after_max_retries_with_a_clear_error(tmp_path):
    t = make(tmp_path, epochs=1, text_edit=lambda s: s.replace("train: {", "divergence: {max_retries: 2}\ntrain: {"))
    t.train_step = lambda step: StepResult(float("nan"), 0, 32)
    with pytest.raises(DivergenceError, match="after 2 halvings") as err:
        t.fit()
    assert "at step 0, before any update" in str(err.value)


class Losses(SilentReporter):
    """Records the loss of every step that updated the weights."""

    def __init__(self):
        self.losses = []

    def step(self, trainer, loss, lr):
        self.losses.append(loss)


def test_no_step_with_a_loss_above_ten_ln_k_is_ever_followed_by_an_update(tmp_path):
    t = make(tmp_path, epochs=3, text_edit=lambda s: s.replace("lr: 0.05", "lr: 5000.0")
             .replace("train: {", "divergence: {max_retries: 30}\ntrain: {"))
    t.reporter = updated = Losses()
    t.fit()
    limit = 10 * math.log(4)
    assert len(updated.losses) >= t.total_steps     # steps later rolled back count too
    assert max(updated.losses) <= limit
    assert max(t.guard.state()) <= limit
    events = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    div = [e for e in events if e.get("event") == "divergence"]
    assert div and all(e["loss"] is None or e["loss"] > limit or e["reason"].startswith("rising")
                       for e in div)
    assert all(e["train_loss"] <= limit for e in events if "epoch" in e)
    assert [e["epoch"] for e in events if "epoch" in e] == [1, 2, 3]


def test_a_loss_that_keeps_rising_is_rolled_back_and_the_rate_halved(tmp_path):
    t = make(tmp_path, epochs=1, text_edit=lambda s: s.replace(
        "train: {", "divergence: {window: 2}\ntrain: {"))
    # below the sharp limit (10 ln 4 = 13.9) at every step, but rising 1.5x a step at the full rate
    t.train_step = lambda step: StepResult(3.0 * 1.5 ** step if t.halvings.lr_scale == 1 else 3.0,
                                           0, 32)
    t.fit()
    events = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    div = [e for e in events if e.get("event") == "divergence"]
    assert len(div) == 1
    assert div[0]["step"] == 3 and div[0]["rollback_to"] == 0
    assert div[0]["reason"] == "rising: median 3.75 -> 8.438 over 2 steps"
    assert t.halvings.lr_scale == 0.5 and t.step == t.total_steps


@needs_fmnist
@pytest.mark.parametrize("batch_size", [1, 8])
def test_the_guard_never_fires_on_healthy_fashion_mnist_training(tmp_path, batch_size):
    """Real losses, single-image batches included: no divergence at the config's rate."""
    cfg = configmod.load(os.path.join(ROOT, "configs", "tiny.yaml"))
    lr = {1: 0.005, 8: 0.02}[batch_size]
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_size=batch_size),
                              optim=dataclasses.replace(cfg.optim, lr=lr),
                              data=dataclasses.replace(cfg.data, subset=1200))
    splits = datamod.load(cfg.data, seed=cfg.seed, input_shape=cfg.input)
    net = Network.build(cfg.model, splits.input_shape, seed=cfg.seed)
    t = Trainer(cfg, net, splits, str(tmp_path / "run"), reporter=Losses())
    t.fit()
    rows = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert [r.get("event") for r in rows] == [None]
    assert rows[0]["divergences"] == 0 and rows[0]["val_error"] < 0.5
    if batch_size == 1:   # noisy indeed
        assert max(t.reporter.losses[100:]) > 10 * np.median(t.reporter.losses[-100:])


def test_augmentation_never_touches_evaluation_data(tmp_path, monkeypatch):
    t = make(tmp_path, epochs=1, text_edit=rich)
    calls = []
    real = datamod.augment
    monkeypatch.setattr(datamod, "augment", lambda x, aug, rng, **kw: calls.append(x.shape) or real(x, aug, rng, **kw))
    before = t.splits.val.x.copy(), t.splits.test.x.copy()
    t.fit()
    assert calls and all(shape[0] <= 32 for shape in calls)   # training batches only
    assert np.array_equal(before[0], t.splits.val.x) and np.array_equal(before[1], t.splits.test.x)


def test_sigint_in_a_subprocess_leaves_a_resumable_checkpoint(tmp_path):
    cfg = write_config(tmp_path, epochs=2)
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "convtrain", "fit", str(cfg), "--out", str(out),
                             "--epochs", "400", "--seed", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "metrics.jsonl").exists():
        time.sleep(0.2)
    assert (out / "metrics.jsonl").exists(), proc.communicate(timeout=5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr
    assert "--epochs 400 --seed 3" in stderr     # the resume command resumes the same run
    c = ckpt.load(str(out / "last.npz"))
    assert c.meta.step > 0
