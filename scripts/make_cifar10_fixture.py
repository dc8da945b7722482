#!/usr/bin/env python3
"""Write a small data set in the CIFAR-10 binary format: data_batch_1.bin .. data_batch_5.bin,
test_batch.bin and batches.meta.txt (the layout of cifar-10-batches-bin/).

Each record is 1 label byte and 3072 image bytes (the 32x32 R, G, B planes). The classes are
learnable: each has its own colour and stripe direction, under Gaussian noise.

    python scripts/make_cifar10_fixture.py OUT [--per-class N] [--seed S]
"""
from __future__ import annotations

import os

import numpy as np

import fixture_cli

CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"]
# one colour per class, far apart in RGB
COLOURS = np.array([[230, 40, 40], [40, 200, 40], [40, 40, 230], [230, 230, 40],
                    [230, 40, 230], [40, 230, 230], [140, 70, 20], [250, 150, 180],
                    [120, 120, 120], [20, 20, 20]], dtype=np.float64)


def make_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 3, 32, 32) uint8: the colour of each label, stripes (horizontal for even labels,
    vertical for odd ones) and noise."""
    n = len(labels)
    stripes = ((np.arange(32) // 4) % 2 * 40 - 20).astype(np.float64)
    x = np.empty((n, 3, 32, 32), dtype=np.float64)
    x[:] = COLOURS[labels][:, :, None, None]
    even = labels % 2 == 0
    x[even] += stripes[None, None, :, None]
    x[~even] += stripes[None, None, None, :]
    x += rng.normal(0.0, 25.0, x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def records(labels: np.ndarray, rng: np.random.Generator) -> bytes:
    """The batch file's bytes: per record, the label byte then the image's 3072 bytes."""
    rec = np.empty((len(labels), 1 + 3072), dtype=np.uint8)
    rec[:, 0] = labels
    rec[:, 1:] = make_images(labels, rng).reshape(len(labels), -1)
    return rec.tobytes()


def write_cifar10(out, per_class: int = 20, seed: int = 0, test_per_class: int | None = None):
    """Write the fixture into folder `out` (made if missing); returns its path. The training
    set has `per_class` images of each class, spread over the five batches in a shuffled
    order; the test set `test_per_class` (default per_class // 2, at least 1)."""
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    test_per_class = max(1, per_class // 2) if test_per_class is None else test_per_class
    train = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), per_class))
    for i, part in enumerate(np.array_split(train, 5), start=1):
        with open(os.path.join(out, f"data_batch_{i}.bin"), "wb") as f:
            f.write(records(part, rng))
    test = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), test_per_class))
    with open(os.path.join(out, "test_batch.bin"), "wb") as f:
        f.write(records(test, rng))
    with open(os.path.join(out, "batches.meta.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n\n")
    return out


def main(argv=None) -> None:
    path, n = fixture_cli.run(__doc__, write_cifar10, 20, argv)
    print(f"wrote {10 * n} training images in 5 batches and the test batch to {path}")


if __name__ == "__main__":
    main()
