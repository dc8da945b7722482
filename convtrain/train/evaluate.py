"""Loss, error, per-class accuracy and the confusion matrix of a network on a data set."""
from __future__ import annotations

import numpy as np

from .. import data as datamod
from ..errors import DataError
from ..nn.loss import softmax_cross_entropy


def predict_logits(net, x_raw: np.ndarray, mean, std, batch_size: int = 512) -> np.ndarray:
    n = len(x_raw)
    out = None
    for lo in range(0, n, batch_size):
        xb = datamod.normalize(x_raw[lo:lo + batch_size], mean, std)
        if net.dtype != np.float32:
            xb = xb.astype(net.dtype)
        logits = net.predict(xb)
        if out is None:
            out = np.empty((n, logits.shape[1]), dtype=np.float64)
        out[lo:lo + len(logits)] = logits
    return out if out is not None else np.zeros((0, 0))


def loss_and_wrong(net, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> tuple[float, int]:
    """Mean loss and number of misclassified examples of normalised inputs, in evaluation mode."""
    total, wrong = 0.0, 0
    for lo in range(0, len(y), batch_size):
        logits, yb = net.predict(x[lo:lo + batch_size]), y[lo:lo + batch_size]
        total += softmax_cross_entropy(logits, yb)[0] * len(yb)
        wrong += int((logits.argmax(axis=1) != yb).sum())
    return total / len(y), wrong


def evaluate(net, dataset, mean, std, *, batch_size: int = 512, num_classes: int | None = None) -> dict:
    """-> {n, loss, accuracy, error, confusion (K x K, rows = true class), per_class_accuracy}."""
    n = len(dataset.y)
    outputs = net.layers[-1].output_shape[0]
    k = max(num_classes or 0, outputs)       # every label and every prediction has a row
    if n == 0:
        return {"n": 0, "loss": float("nan"), "accuracy": float("nan"), "error": float("nan"),
                "confusion": np.zeros((k, k), dtype=np.int64), "per_class_accuracy": [None] * k}
    if int(dataset.y.max()) >= outputs:
        raise DataError(f"the data has labels up to {int(dataset.y.max())}, but the model "
                        f"predicts {outputs} classes")
    logits = predict_logits(net, dataset.x, mean, std, batch_size)
    loss, _, _ = softmax_cross_entropy(logits, dataset.y)
    pred = logits.argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (dataset.y, pred), 1)
    totals = confusion.sum(axis=1)
    per_class = [float(confusion[i, i] / totals[i]) if totals[i] else None for i in range(k)]
    accuracy = float((pred == dataset.y).mean())
    return {"n": int(n), "loss": float(loss), "accuracy": accuracy, "error": 1.0 - accuracy,
            "confusion": confusion, "per_class_accuracy": per_class, "predictions": pred}
