"""Softmax cross-entropy, fused and numerically stable (log-sum-exp with the max subtracted)."""
from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray):
    """logits (N, K), labels (N,) int -> (mean loss as float, dlogits (N, K), per-sample loss (N,)).

    dlogits is the gradient of the MEAN loss: (softmax - onehot) / N.
    """
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    per_sample = np.log(s[:, 0]) - z[rows, labels]
    probs = e / s
    dlogits = probs
    dlogits[rows, labels] -= 1
    dlogits /= n
    return float(per_sample.mean(dtype=np.float64)), dlogits, per_sample
