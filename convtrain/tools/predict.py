"""Inference on a restored model (eval, predict, show): class probabilities, the top-k classes
of image files or of examples of a split.

An image file (PNG, JPEG, anything Pillow reads) is converted to what the model was trained on:
grayscale for a 1-channel model, RGB for a 3-channel one; transparency is composited onto black;
the image is scaled to fit H x W keeping its aspect ratio and centred on a canvas of its own
background colour (the median of its border, judged before padding: black bars around a white
photo would make its border look dark); then it is normalised with the training mean and std
stored in the checkpoint, exactly as `eval` does.

Fashion-MNIST images are light objects on a black background. A photo of a dark object on a
light background has to be inverted to match (`invert=True`, `--invert`); `brightness_note`
says when an image looks like it needs that, whatever the photo's aspect ratio (the padding
has the photo's background colour, so the result's border is the photo's own).
"""
from __future__ import annotations

import os

import numpy as np

from ..data.image_file import open_image, to_model_input
from ..errors import DataError
from ..nn.loss import softmax


def load_image(path: str, input_shape, *, invert: bool = False) -> np.ndarray:
    """-> uint8 (C, H, W) for a model taking `input_shape` (C, H, W). DataError when the file
    is missing or not an image, or the model takes neither 1 nor 3 channels."""
    if len(input_shape) != 3:
        raise DataError(f"the model takes vectors of {input_shape[0]} values, not images")
    c, h, w = (int(v) for v in input_shape)
    if c not in (1, 3):
        raise DataError(f"the model takes {c} input channels; an image file gives 1 (grayscale) "
                        f"or 3 (RGB)")
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    return to_model_input(open_image(path), (c, h, w), invert=invert)


def brightness_note(image: np.ndarray, train_mean) -> str | None:
    """A hint when a 1-channel image's background (its border) is light but the training
    images are dark on average, or the other way round: the image probably needs --invert."""
    if image.shape[0] != 1:
        return None
    x = image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1.0)
    border = np.concatenate([x[0, 0], x[0, -1], x[0, :, 0], x[0, :, -1]])
    m = float(np.mean(train_mean))
    b = float(border.mean())
    if m < 0.5 and b > 0.5:
        return (f"the image's background is light (border mean {b:.2f}) but the training images "
                f"are dark (mean {m:.2f}): the model expects a light object on black; try --invert")
    if m > 0.5 and b < 0.5:
        return (f"the image's background is dark (border mean {b:.2f}) but the training images "
                f"are light (mean {m:.2f}); try --invert")
    return None


def probabilities(model, x_raw: np.ndarray) -> np.ndarray:
    """(N, K) class probabilities of raw images (N, C, H, W) (uint8 or float, as stored),
    normalised the way `eval` does."""
    from ..train.evaluate import predict_logits
    logits = predict_logits(model.net, x_raw, model.mean, model.std)
    return softmax(logits)


def top_k(probs: np.ndarray, k: int, classes: list[str]) -> list[dict]:
    """The k most probable classes of one (K,) row: [{class, name, probability}] best first
    (ties broken by the lower class index)."""
    k = max(1, min(int(k), len(probs)))
    order = np.lexsort((np.arange(len(probs)), -probs))[:k]
    return [{"class": int(i), "name": classes[i] if i < len(classes) else str(i),
             "probability": float(probs[i])} for i in order]


def predict_files(model, paths, *, top: int, invert: bool = False) -> list[dict]:
    """The `top` classes of each image file: [{source, label: None, top[, note]}] in order;
    `note` is the brightness_note, left out when there is none or with `invert`."""
    x = np.stack([load_image(p, model.input_shape, invert=invert) for p in paths])
    results = []
    for path, image, probs in zip(paths, x, probabilities(model, x)):
        note = None if invert else brightness_note(image, model.mean)
        results.append({"source": path, "label": None, "top": top_k(probs, top, model.classes),
                        **({"note": note} if note else {})})
    return results


def predict_examples(model, split: str, indices, *, top: int) -> list[dict]:
    """The `top` classes of examples of a split: [{source "split[i]", label, label_name, top}]."""
    x, y = split_examples(model, split, list(indices))
    return [{"source": f"{split}[{i}]", "label": int(yi), "label_name": model.classes[int(yi)],
             "top": top_k(probs, top, model.classes)}
            for i, yi, probs in zip(indices, y, probabilities(model, x))]


def nonempty_split(model, split: str, checkpoint_path: str):
    """The `split` data set of the model; DataError naming the checkpoint when it is empty."""
    dataset = getattr(model.splits, split)
    if len(dataset.y) == 0:
        why = {"val": " (the config's data.validation is 0)",
               "test": " (the data set has no test images; try --split val)"}.get(split, "")
        raise DataError(f"{checkpoint_path}: the {split} split of its data set is empty{why}")
    return dataset


def split_examples(model, split: str, indices) -> tuple[np.ndarray, np.ndarray]:
    """-> (raw images, labels) of `indices` in a split of the model's data set."""
    dataset = getattr(model.splits, split)
    n = len(dataset.y)
    for i in indices:
        if not -n <= i < n:
            raise DataError(f"index {i} is out of range: the {split} split has {n:,} images")
    idx = np.asarray(indices, dtype=np.int64)
    return np.ascontiguousarray(dataset.x[idx]), dataset.y[idx]
