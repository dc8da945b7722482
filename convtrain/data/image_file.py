"""One image file as a model's input: the conversion `dataset: folder` trains on and `predict`
feeds the model, in one place so that a trained model sees a file the same way in both.

Transparency is composited onto black; the image becomes grayscale for 1 channel or RGB for 3,
is scaled to fit H x W keeping its aspect ratio (Pillow's Lanczos filter, deterministic) and is
centred on its own background colour (the median of its border), so a white-background photo
is not framed in black bars that the model would read as part of the object.
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError


def open_image(path: str):
    """The decoded PIL image of `path`, upright by its EXIF orientation; DataError naming the
    file when Pillow cannot read it whole."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as opened:
            im = ImageOps.exif_transpose(opened)
            im.load()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: corrupt, truncated or not an image Pillow can read ({e})") \
            from None
    return im


def to_model_input(im, shape, *, invert: bool = False) -> np.ndarray:
    """A PIL image -> uint8 (C, H, W) of `shape` (C is 1 or 3); `invert` swaps dark and light
    before the padding."""
    from PIL import Image, ImageOps

    c, h, w = (int(v) for v in shape)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = Image.alpha_composite(Image.new("RGBA", im.size, (0, 0, 0, 255)), im.convert("RGBA"))
    im = im.convert("L" if c == 1 else "RGB")
    if invert:
        im = ImageOps.invert(im)
    if im.size != (w, h):
        fitted = ImageOps.contain(im, (w, h), method=Image.Resampling.LANCZOS)
        canvas = Image.new(im.mode, (w, h), background_colour(np.asarray(im)))
        canvas.paste(fitted, ((w - fitted.width) // 2, (h - fitted.height) // 2))
        im = canvas
    a = np.asarray(im, dtype=np.uint8)
    return np.ascontiguousarray(a[None] if c == 1 else a.transpose(2, 0, 1))


def background_colour(pixels: np.ndarray) -> int | tuple[int, ...]:
    """The colour of a picture's background, the median of its border pixels: an int for a
    (H, W) grayscale array, a tuple for (H, W, C). The median ignores an object that touches
    the border on one side."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
    median = np.median(border, axis=0)
    return int(median) if median.ndim == 0 else tuple(int(v) for v in median)
