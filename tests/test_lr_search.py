import numpy as np

from convtrain import config as configmod
from convtrain import data as datamod
from convtrain.tools import lr_search

from synthetic import write_config


def test_search_is_within_a_factor_2_of_the_largest_stable_rate(tmp_path):
    cfg = configmod.load(str(write_config(tmp_path)))
    splits = datamod.load(cfg.data, seed=cfg.seed, input_shape=cfg.input)
    trials, chosen = lr_search.search(cfg, splits, subset=128, start=256.0, steps=8)
    assert trials[-1].ok and trials[-1].lr == chosen
    assert all(not t.ok for t in trials[:-1])
    assert [t.lr for t in trials] == [256.0 / 2 ** i for i in range(len(trials))]
    # an independent finer scan (quarter octaves) for the largest rate that works
    n = 128
    x = datamod.normalize(splits.train.x[:n], splits.mean, splits.std)
    y = splits.train.y[:n]
    rates = [256.0 * 2 ** (-i / 4) for i in range(4 * len(trials) + 1)]
    largest = next(r for r in rates
                   if lr_search.run_trial(cfg, splits.input_shape, x, y, r, 8, 32).ok)
    assert largest / 2 <= chosen <= largest


def test_trials_start_from_the_same_weights(tmp_path):
    cfg = configmod.load(str(write_config(tmp_path)))
    splits = datamod.load(cfg.data, seed=cfg.seed, input_shape=cfg.input)
    trials, _ = lr_search.search(cfg, splits, subset=64, start=1e3, steps=4)
    assert len({round(t.initial_loss, 12) for t in trials}) == 1
    assert np.isfinite(trials[-1].final_loss)


def test_a_trial_that_diverges_stops_and_says_why(tmp_path):
    cfg = configmod.load(str(write_config(tmp_path)))
    splits = datamod.load(cfg.data, seed=cfg.seed, input_shape=cfg.input)
    x = datamod.normalize(splits.train.x[:64], splits.mean, splits.std)
    y = splits.train.y[:64]
    bad = lr_search.run_trial(cfg, splits.input_shape, x, y, 1e4, 8, 32)
    assert bad.diverged and not bad.ok
    assert bad.why == "not finite" or bad.why.startswith(("above", "rising"))
    good = lr_search.run_trial(cfg, splits.input_shape, x, y, 0.05, 8, 32)
    assert good.ok and good.why is None
