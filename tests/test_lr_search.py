import math

import numpy as np
import pytest

from convtrain import config as configmod
from convtrain import data as datamod
from convtrain.errors import ConvtrainError
from convtrain.tools import lr_search
from convtrain.tools.lr_search import MARGIN, TIE, Trial, choose, grid, past_the_best, scan

from synthetic import write_config


def trial(lr, final, diverged=False, initial=2.0):
    return Trial(lr, initial, math.inf if final is None else final, diverged)


def curve(losses):
    """A fake `run`: the final loss of each rate from a table (None: the trial diverges)."""
    return lambda lr: trial(lr, losses[lr], diverged=losses[lr] is None)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    cfg = configmod.load(str(write_config(tmp_path_factory.mktemp("lr"))))
    return cfg, datamod.load(cfg.data, seed=cfg.seed, input_shape=cfg.input)


# --- the choice -------------------------------------------------------------------------------

def test_the_lowest_final_loss_is_chosen_not_the_first_that_lowers_it():
    trials = [trial(1.0, None, diverged=True), trial(0.5, 1.9), trial(0.25, 0.7), trial(0.125, 0.9)]
    assert choose(trials).lr == 0.25


def test_ties_go_to_the_smaller_rate():
    assert choose([trial(0.5, 0.700), trial(0.25, 0.700)]).lr == 0.25
    within = 0.7 * (1 + TIE / 2)
    assert choose([trial(0.5, 0.7), trial(0.25, within)]).lr == 0.25
    beyond = 0.7 * (1 + 2 * TIE)
    assert choose([trial(0.5, 0.7), trial(0.25, beyond)]).lr == 0.5


def test_a_diverged_trial_or_one_that_did_not_lower_the_loss_is_never_chosen():
    assert choose([trial(1.0, 0.1, diverged=True), trial(0.5, 1.0)]).lr == 0.5
    assert choose([trial(1.0, 0.1, diverged=True), trial(0.5, 2.5)]) is None
    assert choose([]) is None


# --- when the grid stops ----------------------------------------------------------------------

def test_two_clearly_worse_rates_in_a_row_end_the_scan():
    worse = 0.5 * (1 + 2 * MARGIN)
    losses = {1.0: None, 0.5: 0.5, 0.25: worse, 0.125: worse * 1.5, 0.0625: 0.1}
    trials, why = scan(curve(losses), sorted(losses, reverse=True))
    assert [t.lr for t in trials] == [1.0, 0.5, 0.25, 0.125]   # 0.0625 never tried
    assert why and "stopped early" in why
    assert choose(trials).lr == 0.5


def test_a_rate_within_the_margin_breaks_the_streak():
    near = 0.5 * (1 + MARGIN / 2)
    worse = 0.5 * (1 + 2 * MARGIN)
    losses = {0.5: 0.5, 0.25: worse, 0.125: near, 0.0625: worse, 0.03125: 0.3}
    trials, why = scan(curve(losses), sorted(losses, reverse=True))
    assert len(trials) == 5 and why is None
    assert choose(trials).lr == 0.03125


def test_diverged_trials_do_not_count_as_past_the_best():
    # a lucky survivor at a large rate, then divergences: the scan must go on to smaller rates
    losses = {1.0: 2.0, 0.5: None, 0.25: None, 0.125: 0.4, 0.0625: 0.6, 0.03125: 0.8}
    trials, why = scan(curve(losses), sorted(losses, reverse=True))
    assert [t.lr for t in trials] == [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125]
    assert why and choose(trials).lr == 0.125
    assert not past_the_best([trial(1.0, 2.0), trial(0.5, None, True), trial(0.25, None, True)])


def test_nothing_is_past_the_best_before_a_rate_lowered_the_loss():
    assert not past_the_best([trial(1.0, 3.0), trial(0.5, 3.5), trial(0.25, 4.0)])


def test_the_grid_halves_from_start_down_to_min():
    assert grid(1.0, 0.1) == [1.0, 0.5, 0.25, 0.125]
    assert grid(0.2, 0.05) == [0.2, 0.1, 0.05]
    assert grid(0.1, 0.2) == []


# --- on a real network ------------------------------------------------------------------------

def test_search_chooses_the_trial_with_the_lowest_subset_loss(synth):
    cfg, splits = synth
    result = lr_search.search(cfg, splits, subset=128, start=4.0, steps=4)
    trials = result.trials
    assert [t.lr for t in trials] == grid(4.0, 1e-6)[:len(trials)]
    assert trials[0].diverged                      # the grid starts above what trains
    assert result.chosen == choose(trials).lr
    best = result.best
    assert best.ok and all(best.final_loss <= t.final_loss * (1 + TIE) for t in trials if t.ok)
    # not the first rate that lowers the loss (what the search chose before Bottou's rule)
    first_ok = next(t for t in trials if t.ok)
    assert result.chosen < first_ok.lr and best.final_loss < first_ok.final_loss
    # it stopped early, clearly past the best, long before 1e-6
    assert "stopped early" in result.stopped and trials[-1].lr > 1e-3
    assert all(not t.diverged and t.final_loss > best.final_loss * (1 + MARGIN)
               for t in trials[-2:])


def test_trials_start_from_the_same_weights_and_a_rerun_gives_the_same_loss(synth):
    cfg, splits = synth
    result = lr_search.search(cfg, splits, subset=64, start=1e3, steps=4)
    assert len({round(t.initial_loss, 12) for t in result.trials}) == 1
    assert np.isfinite(result.best.final_loss) and result.steps == 4 and result.subset == 64
    n = 64
    x = datamod.normalize(splits.train.x[:n], splits.mean, splits.std)
    fresh = lr_search.Trials(cfg, splits.input_shape, x, splits.train.y[:n], steps=4,
                             batch_size=32)
    assert fresh.run(result.chosen).final_loss == pytest.approx(result.best.final_loss, rel=1e-6)


def test_the_search_stops_at_min(synth):
    cfg, splits = synth
    result = lr_search.search(cfg, splits, subset=64, start=0.2, min_lr=0.1, steps=4)
    assert [t.lr for t in result.trials] == [0.2, 0.1]
    assert "--min 0.1" in result.stopped


def test_no_rate_that_lowers_the_loss_is_an_error(synth):
    cfg, splits = synth
    with pytest.raises(ConvtrainError, match="no rate between 10000 and 1000 lowered the loss"):
        lr_search.search(cfg, splits, subset=64, start=1e4, min_lr=1e3, steps=8)


def test_a_trial_that_diverges_stops_and_says_why(synth):
    cfg, splits = synth
    x = datamod.normalize(splits.train.x[:64], splits.mean, splits.std)
    trials = lr_search.Trials(cfg, splits.input_shape, x, splits.train.y[:64], steps=8,
                              batch_size=32)
    bad = trials.run(1e4)
    assert bad.diverged and not bad.ok and bad.steps < 8
    assert bad.why == "not finite" or bad.why.startswith(("above", "rising"))
    good = trials.run(0.05)
    assert good.ok and good.why is None and good.steps == 8


def test_the_run_name_of_a_written_copy(synth):
    cfg, _ = synth
    assert lr_search.own_name(cfg, "/x/fast.yaml", 0.0625) == "fast"
    assert lr_search.own_name(cfg, f"/x/{cfg.name}.yaml", 0.0625) == f"{cfg.name}-lr0.0625"


def test_the_plot_is_a_png_even_when_most_trials_diverged(tmp_path):
    pytest.importorskip("matplotlib")
    from convtrain.tools import charts
    trials = [trial(1.0, 1e6, diverged=True), trial(0.5, None, diverged=True), trial(0.25, 1.5),
              trial(0.125, 1.9)]
    result = lr_search.SearchResult(trials, 0.25, subset=64, steps=4, stopped="")
    out = charts.plot_lr_search(result, str(tmp_path / "lr.png"), "synth")
    assert open(out, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
