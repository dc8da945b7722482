"""Cross-validation folds (data/folds.py, data.folds / data.fold) and `convtrain cv`."""
import numpy as np
import pytest

from convtrain import config as C
from convtrain import data as datamod
from convtrain.data import folds
from convtrain.errors import ConfigError, DataError

import synthetic


def test_folds_are_stratified_disjoint_cover_and_deterministic():
    rng = np.random.default_rng(3)
    labels = rng.choice(4, size=203, p=[0.1, 0.2, 0.3, 0.4])
    k = 5
    fold = folds.assign(labels, k, seed=7)
    assert np.array_equal(fold, folds.assign(labels, k, seed=7))
    assert not np.array_equal(fold, folds.assign(labels, k, seed=8))
    sizes = np.bincount(fold, minlength=k)
    assert sizes.sum() == len(labels) and sizes.max() - sizes.min() <= 1
    for c in range(4):   # each fold holds each class's share, to within one example
        per_fold = np.bincount(fold[labels == c], minlength=k)
        assert per_fold.max() - per_fold.min() <= 1, (c, per_fold)
    seen = []
    for i in range(k):
        cfg = C.DataConfig(folds=k, fold=i)
        train, val = folds.split(labels, cfg, seed=7, source="<t>")
        assert not set(train) & set(val)
        assert len(train) + len(val) == len(labels)
        seen.append(val)
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(len(labels)))


def test_folds_use_the_first_subset_examples():
    labels = np.arange(100) % 3
    train, val = folds.split(labels, C.DataConfig(folds=3, fold=1, subset=30), seed=0, source="<t>")
    assert len(train) + len(val) == 30 and max(train.max(), val.max()) < 30
    with pytest.raises(DataError, match="data.folds = 3 needs at least 3"):
        folds.split(labels[:2], C.DataConfig(folds=3), seed=0, source="<t>")


def test_load_holds_out_the_fold(tmp_path):
    path = synthetic.write_config(tmp_path)
    cfg = C.load(path)
    whole = datamod.load(C.with_overrides(cfg, **{"data.validation": 0}).data, seed=0)
    for i in range(4):
        data = C.with_overrides(cfg, **{"data.folds": 4, "data.fold": i}).data
        splits = datamod.load(data, seed=cfg.seed)
        assert len(splits.val) == 80 and len(splits.train) == 240
        # the validation images are the training file's, class counts as in the whole file
        counts = np.bincount(splits.val.y, minlength=4)
        expected = np.bincount(whole.train.y, minlength=4) / 4
        assert np.all(np.abs(counts - expected) <= 1)


def test_fold_keys_are_checked():
    with pytest.raises(ConfigError, match=r"<string>:3: data.fold: must be < folds \(3\), got 3"):
        C.loads("model: [{dense: 10}]\ndata:\n  fold: 3\n  folds: 3\n")
    with pytest.raises(ConfigError, match="data.fold: needs `folds`"):
        C.loads("model: [{dense: 10}]\ndata: {fold: 1}\n")
    with pytest.raises(ConfigError, match="data.folds: must be >= 2"):
        C.loads("model: [{dense: 10}]\ndata: {folds: 1}\n")
    cfg = C.loads("model: [{dense: 10}]\ndata: {folds: 5, fold: 4}\n")
    assert C.loads(C.dump(cfg)) == cfg
