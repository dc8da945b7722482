#!/usr/bin/env python3
"""Write a small image-folder data set: train/ and test/, one sub-folder per class, PNG and JPEG
files of mixed sizes and modes (RGB, grayscale, RGBA, non-square), and a README and a
.DS_Store that readers must skip.

The classes are learnable: each has its own pattern (stripes one way or the other, a square, a
ring), which survives conversion to grayscale, plus noise.

    python scripts/make_image_folder_fixture.py OUT [--per-class N] [--seed S]
"""
from __future__ import annotations

import os

import numpy as np

import fixture_cli

CLASSES = ["hstripes", "ring", "square", "vstripes"]
# (size (width, height), Pillow mode, file extension), used in turn
VARIANTS = [((32, 32), "RGB", ".png"), ((40, 40), "L", ".png"), ((32, 32), "RGBA", ".png"),
            ((48, 32), "RGB", ".jpg"), ((24, 24), "RGB", ".jpeg")]


def pattern(name: str, w: int, h: int) -> np.ndarray:
    """(h, w) float in 0..1: the class's pattern."""
    yy, xx = np.mgrid[0:h, 0:w]
    u, v = xx / w, yy / h
    if name == "hstripes":
        return ((yy * 8 // h) % 2).astype(np.float64)
    if name == "vstripes":
        return ((xx * 8 // w) % 2).astype(np.float64)
    if name == "square":
        return ((abs(u - 0.5) < 0.25) & (abs(v - 0.5) < 0.25)).astype(np.float64)
    r = np.hypot(u - 0.5, v - 0.5)
    return ((r > 0.2) & (r < 0.35)).astype(np.float64)


def make_image(name: str, index: int, rng: np.random.Generator):
    """A Pillow image of class `name`, in the size and mode of VARIANTS[index % 5]."""
    from PIL import Image

    (w, h), mode, ext = VARIANTS[index % len(VARIANTS)]
    tint = rng.uniform(0.6, 1.0, 3)
    rgb = pattern(name, w, h)[:, :, None] * 200 * tint + 30 + rng.normal(0, 12, (h, w, 3))
    rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    im = Image.fromarray(rgb, "RGB")
    if mode == "L":
        im = im.convert("L")
    elif mode == "RGBA":
        im = im.convert("RGBA")
        im.putalpha(255)
    return im, ext


def write_image_folder(out, per_class: int = 6, seed: int = 0, test_per_class: int | None = None):
    """Write the fixture into folder `out` (made if missing); returns its path."""
    out = os.fspath(out)
    rng = np.random.default_rng(seed)
    test_per_class = max(1, per_class // 2) if test_per_class is None else test_per_class
    for split, n in (("train", per_class), ("test", test_per_class)):
        for name in CLASSES:
            folder = os.path.join(out, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                im, ext = make_image(name, i, rng)
                im.save(os.path.join(folder, f"{name}-{i:03d}{ext}"),
                        **({"quality": 95} if ext != ".png" else {}))
            with open(os.path.join(folder, ".DS_Store"), "wb") as f:
                f.write(b"\0\0\0\1Bud1")
    with open(os.path.join(out, "train", "README.txt"), "w") as f:
        f.write("a fixture made by scripts/make_image_folder_fixture.py\n")
    return out


def main(argv=None) -> None:
    path, n = fixture_cli.run(__doc__, write_image_folder, 6, argv)
    print(f"wrote {len(CLASSES)} classes of {n} training images to {path}")


if __name__ == "__main__":
    main()
