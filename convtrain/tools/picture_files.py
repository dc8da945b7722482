"""Writing pictures: a PNG may replace an earlier picture, never a checkpoint or a config."""
from __future__ import annotations

import os

from ..errors import DataError


def make_folder(out: str) -> None:
    folder = os.path.dirname(os.path.abspath(out))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:   # a file where a folder should be, /proc, a read-only disk
        raise DataError(f"{out}: cannot create its folder {folder} ({e.strerror})") from None


def check_overwrite(out: str) -> None:
    """Pictures may replace an earlier picture, never a checkpoint or a config (`--out` typos)."""
    if os.path.isfile(out) and os.path.getsize(out) > 0:
        with open(out, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                raise DataError(f"{out}: exists and is not a PNG picture; refusing to overwrite it")


def save_png(image, out: str) -> None:
    check_overwrite(out)
    make_folder(out)
    image.save(out, format="PNG")
