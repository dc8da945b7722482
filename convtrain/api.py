"""The Python API: a trained network in a program, training from a program.

    import convtrain
    net = convtrain.load("runs/default/best.npz")      # or the run folder "runs/default"
    probs = net.predict(images)                         # (N, K) float32, rows sum to 1
    net.classes[probs.argmax(1)[0]]

    result = convtrain.fit("configs/tiny.yaml", epochs=2, **{"optim.lr": 0.01})
    result.best_checkpoint, result.best_val_error

    convtrain.evaluate("runs/default", split="test")    # what `convtrain eval --json` prints

Images for `predict` are scaled as training scaled the stored data: uint8 pixels (0..255) are
divided by 255; floats are taken as already on that scale (0..1), as a float data set is stored.
Either layout works: NCHW or NHWC, a batch or a single image (C,H,W), (H,W,C), or (H,W) for a
1-channel net; a shape that fits both layouts is read as NCHW.

Each function sets the process up first (`runtime.configure()`, idempotent): call them before
importing numpy yourself so that BLAS stays single-threaded (see runtime.py); notices come as
`RuntimeWarning`s. Nothing here prints unless `fit(..., quiet=False)`.
"""
from __future__ import annotations

import os
import warnings
from typing import Any

BATCH = 256   # images per forward pass: bounds the memory of a large `predict`

# fit's short option names -> (where they go); anything with a dot is a config key path
_RUN_OPTIONS = ("out", "resume", "fresh", "quiet")
_CONFIG_OPTIONS = ("epochs", "lr", "seed", "batch_size", "data_path")


def _configure() -> None:
    from . import runtime
    for notice in runtime.configure():
        warnings.warn(f"convtrain: {notice}", RuntimeWarning, stacklevel=3)


class Model:
    """A trained network ready for inference (dropout off, batch norm's running statistics).

    `classes`: the class names, one per output; `input_shape`: (C, H, W); `config`: the Config
    it was trained with; `path`: the checkpoint it came from."""

    def __init__(self, loaded, path: str):
        self._loaded = loaded
        self.path = path
        self.classes = list(loaded.classes)
        self.input_shape = tuple(int(v) for v in loaded.input_shape)
        self.config = loaded.cfg

    def __repr__(self) -> str:
        return (f"Model({self.path!r}, input_shape={self.input_shape}, "
                f"{len(self.classes)} classes)")

    def predict(self, images, *, labels: bool = False, batch_size: int = BATCH):
        """Class probabilities: (N, K) float32 for a batch, (K,) for a single image.
        `labels=True`: the most probable class index instead (an int, or (N,) int64)."""
        import numpy as np

        from .nn.loss import softmax
        from .train.evaluate import predict_logits

        batch, single = as_batch(images, self.input_shape)
        m = self._loaded
        out = np.empty((len(batch), len(self.classes)), dtype=np.float32)
        for lo in range(0, len(batch), batch_size):
            x = to_nchw(batch[lo:lo + batch_size], self.input_shape)
            out[lo:lo + len(x)] = softmax(predict_logits(m.net, x, m.mean, m.std))
        result = out.argmax(axis=1) if labels else out
        if single:
            return int(result[0]) if labels else result[0]
        return result

    def predict_classes(self, images):
        """The most probable class index of each image (see `predict`)."""
        return self.predict(images, labels=True)


def load(path) -> Model:
    """A trained network from a checkpoint (.npz) or a run folder (its best.npz, else last.npz).
    ConvtrainError when there is none or it is damaged."""
    _configure()
    from .tools.restore import load_for_inference
    from .train.runs import checkpoint_in

    path = checkpoint_in(os.fspath(path))
    return Model(load_for_inference(path), path)


def as_batch(images, input_shape) -> tuple[Any, bool]:
    """-> (a batch: (N, C, H, W) or (N, H, W, C) as given, is it a single image?).
    ValueError saying the expected shape when `images` fits neither layout."""
    import numpy as np

    x = np.asarray(images)
    shape = x.shape
    c, h, w = input_shape
    if x.ndim == 4 and shape[1:] in ((c, h, w), (h, w, c)):
        return x, False
    if x.ndim == 3 and shape in ((c, h, w), (h, w, c)):
        return x[None], True
    if c == 1 and x.ndim == 3 and shape[1:] == (h, w):
        return x[:, None], False
    if c == 1 and shape == (h, w):
        return x[None, None], True
    gray = f", (N, {h}, {w}) or ({h}, {w})" if c == 1 else ""
    raise ValueError(f"images of shape {shape} do not fit this network: it takes (N, {c}, {h}, "
                     f"{w}) or (N, {h}, {w}, {c}), or one image ({c}, {h}, {w}) or "
                     f"({h}, {w}, {c}){gray}")


def to_nchw(x, input_shape):
    """A batch from `as_batch` -> NCHW uint8 (0..255) or float32 (0..1), what training reads."""
    import numpy as np

    if x.shape[1:] != tuple(input_shape):
        x = x.transpose(0, 3, 1, 2)
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if np.issubdtype(x.dtype, np.integer):
        if x.size and (x.min() < 0 or x.max() > 255):
            raise ValueError("integer images must hold pixels 0..255 (or pass floats in 0..1)")
        return np.ascontiguousarray(x, dtype=np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        return np.ascontiguousarray(x, dtype=np.float32)
    raise ValueError(f"images must be numbers (uint8 0..255 or floats 0..1), got {x.dtype}")


def fit(config, **overrides):
    """Train the network `config` (a YAML file) describes -> train.session.FitResult.

    overrides: config key paths (`**{"optim.lr": 0.01, "model[0].conv.filters": 16}`), the
    short names fit's options take (epochs, lr (a number or "auto"), seed, batch_size,
    data_path) and where the run goes: out (default runs/<name>), resume (a checkpoint or
    "auto"), fresh, quiet (default True: no output). `trainer.Interrupted` on Ctrl-C, after
    writing a resumable checkpoint."""
    _configure()
    from . import config as configmod
    from .tools import precompile
    from .train.session import run_fit

    run = {key: overrides.pop(key) for key in _RUN_OPTIONS if key in overrides}
    short = {key: overrides.pop(key) for key in _CONFIG_OPTIONS if key in overrides}
    unknown = [key for key in overrides
               if "." not in key and "[" not in key and key not in configmod.TOP_KEYS]
    if unknown:
        raise TypeError(f"fit() got unknown option(s) {', '.join(unknown)}; known: "
                        f"{', '.join(_RUN_OPTIONS + _CONFIG_OPTIONS)}, or a config key or key "
                        "path such as 'name' or 'optim.lr'")
    auto = isinstance(short.get("lr"), str) and short["lr"].strip().lower() == "auto"
    if auto:
        short["lr"] = None
    path = os.fspath(config)
    cfg = configmod.with_overrides(
        configmod.load(path, sets=configmod.overrides_from_mapping(overrides)), **short)
    reporter = on_note = None
    if not run.get("quiet", True):
        from .cli.console import ConsoleReporter, echo_note
        reporter, on_note = ConsoleReporter(), echo_note
    return run_fit(cfg, config_path=path, out_dir=run.get("out"), resume=run.get("resume"),
                   fresh=bool(run.get("fresh", False)), reporter=reporter,
                   auto_lr=_searched_rate if auto else None, compile_helper=precompile,
                   on_note=on_note)


def _searched_rate(cfg, splits, checkpoint) -> float:
    """lr="auto": the rate lr-search chooses; a resumed run keeps the rate it started with."""
    from . import config as configmod
    from .tools import lr_search

    if checkpoint is not None:
        return configmod.loads(checkpoint.meta.config, source=checkpoint.path,
                               stored=True).optim.lr
    return lr_search.search(cfg, splits).chosen


def evaluate(path, split: str = "test", *, data_path=None) -> dict:
    """A checkpoint or run folder on a split of its data set ("test", "val", "train") -> what
    `convtrain eval --json` prints: {split, n, loss, accuracy, error, per_class, confusion}."""
    _configure()
    from .tools.predict import nonempty_split
    from .tools.restore import load_for_inference
    from .train.evaluate import evaluate as run_evaluate
    from .train.runs import checkpoint_in

    if split not in ("test", "val", "train"):
        raise ValueError(f"split must be 'test', 'val' or 'train', got {split!r}")
    path = checkpoint_in(os.fspath(path))
    model = load_for_inference(path, data_path=data_path, need_data=True)
    res = run_evaluate(model.net, nonempty_split(model, split, path), model.mean, model.std,
                       num_classes=len(model.classes))
    return {"split": split, "n": res["n"], "loss": res["loss"], "accuracy": res["accuracy"],
            "error": res["error"],
            "per_class": dict(zip(model.classes, res["per_class_accuracy"])),
            "confusion": res["confusion"].tolist()}
