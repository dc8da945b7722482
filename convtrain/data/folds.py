"""K-fold cross-validation: fold `data.fold` of `data.folds` stratified folds of the training
file is the validation set, the other folds are the training set.

Each class's examples are shuffled by the seed and dealt to the folds in turn (the classes one
after another, the deal continuing where the last class stopped), so every fold holds each
class's share of the data to within one example and the folds' sizes differ by at most one. The
folds depend only on the labels, K and the seed: the K trials of a cross-validation (and every
config of a sweep with the same seed) see the same folds.
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError

# Its own random stream: the folds never share a seed sequence with the validation hold-out,
# the batch order or the trainer's np.random.default_rng([seed, step]).
_FOLD_STREAM = 0x666F6C64   # 'fold'


def assign(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """(N,) int64: the fold (0 .. k-1) of each example."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([_FOLD_STREAM, int(seed)])
    fold = np.empty(len(labels), dtype=np.int64)
    dealt = 0
    for c in np.unique(labels):     # sorted: the order is part of the determinism
        members = rng.permutation(np.flatnonzero(labels == c))
        fold[members] = (dealt + np.arange(len(members))) % k
        dealt += len(members)
    return fold


def split(labels: np.ndarray, data, seed: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, validation indices) into the training file for `data.fold` of
    `data.folds`; `data.subset` first keeps the first N examples of the file."""
    k, i = int(data.folds), int(data.fold)
    n = len(labels)
    subset = getattr(data, "subset", None)
    if subset is not None:
        if subset > n:
            raise DataError(f"{source}: data.subset = {subset} but the training set has only "
                            f"{n} examples")
        n = int(subset)
    if n < k:
        raise DataError(f"{source}: data.folds = {k} needs at least {k} training examples, "
                        f"got {n}")
    fold = assign(labels[:n], k, seed)
    return np.flatnonzero(fold != i), np.flatnonzero(fold == i)
