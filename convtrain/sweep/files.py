"""Whole-or-absent files: written to a temporary file beside the target, then renamed over it,
so that a killed process (Ctrl-C, a lost worker) never leaves half a file for --resume or a
script to read."""
from __future__ import annotations

import os


def write_atomic(path: str, text: str, *, newline: str | None = None) -> str:
    """Write `text` to `path` via a temporary file in the same folder and os.replace -> path."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline=newline) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
