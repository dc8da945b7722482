"""The decoded-image cache of `data.cache: true`: uint8 arrays in an .npz, so that a data set
of image files is decoded once, not at every run.

The cache lives in `$XDG_CACHE_HOME/convtrain/data/` (`~/.cache/convtrain/data/` by default),
not beside the data, so that a read-only data folder can be cached too. Its file is named after
the data folder's absolute path and the image shape; inside, a fingerprint of the folder's
listing (every file's name, size and modification time) and of the shape says whether it is
still current: when it differs the images are decoded again and the cache rewritten. It is
written atomically (a temporary file renamed over it) and read without pickles.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

from ..errors import DataError

# Part of every fingerprint: bump it when the decoding changes, so that old caches are rebuilt.
FORMAT = "convtrain-image-cache-1"


def folder() -> str:
    """The folder of the cache files."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "convtrain", "data")


def location(source: str, shape) -> str:
    """The cache file of the data set at `source` decoded to `shape` (C, H, W)."""
    key = json.dumps([os.path.abspath(source), [int(d) for d in shape]])
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
    name = os.path.basename(os.path.normpath(source)) or "data"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:40]
    return os.path.join(folder(), f"{safe}-{digest}.npz")


def fingerprint(files, shape, extra=()) -> str:
    """A digest of the files (paths; their names, sizes and modification times), the shape and
    whatever else decides the arrays (`extra`: plain JSON values)."""
    h = hashlib.sha256(json.dumps([FORMAT, [int(d) for d in shape], list(extra)]).encode())
    for p in files:
        st = os.stat(p)
        h.update(json.dumps([p, st.st_size, st.st_mtime_ns]).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def load(path: str, digest: str) -> dict[str, np.ndarray] | None:
    """The cached arrays when the cache file exists and its fingerprint is `digest`, else None
    (an unreadable cache is as good as none: it is rebuilt)."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            if "fingerprint" not in z.files or str(z["fingerprint"]) != digest:
                return None
            return {k: z[k] for k in z.files if k != "fingerprint"}
    except (OSError, EOFError, ValueError, KeyError, zlib.error, zipfile.BadZipFile):
        return None


def save(path: str, arrays: dict[str, np.ndarray], digest: str) -> None:
    """Write the arrays and their fingerprint to `path` atomically."""
    tmp = None
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, fingerprint=np.array(digest), **arrays)
        os.replace(tmp, path)
    except BaseException as e:   # Ctrl-C or a full disk mid-write: no half file left behind
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if not isinstance(e, OSError):
            raise
        raise DataError(f"{path}: cannot write the data cache ({e}); set XDG_CACHE_HOME to a "
                        f"writable folder, or data.cache: false") from None
