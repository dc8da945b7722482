"""Checkpoints: one .npz of plain arrays plus JSON metadata. No pickle, written atomically.

Layout inside the .npz:
    __meta__           uint8 bytes of a JSON object: format, version and the fields of
                       CheckpointMeta (checkpoint_meta.py): config text, epoch, step...
    param/<name>       network state (parameters and batch-norm statistics)
    velocity/<name>    optimiser state
The file is written to a temporary name in the same folder, fsynced, then os.replace'd, so a
crash or Ctrl-C at any moment leaves either the old or the new checkpoint, never half of one.
"""
from __future__ import annotations

import json
import os
import secrets
import zipfile

import numpy as np

from ..errors import CheckpointError
from .checkpoint_meta import CheckpointMeta, EpochSums, GuardRecord  # noqa: F401 (re-exported)

FORMAT = "convtrain-checkpoint"
VERSION = 1
META_KEY = "__meta__"


def save(path: str, *, state: dict, velocities: dict | None = None,
         meta: CheckpointMeta | dict) -> None:
    """Write a checkpoint atomically. Refuses non-finite arrays: a diverged state never lands.
    `meta` is a CheckpointMeta, or a plain dict of the same keys (at least config, epoch, step)."""
    arrays = {}
    for prefix, group in (("param/", state), ("velocity/", velocities or {})):
        for key, value in group.items():
            value = np.asarray(value)
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise CheckpointError(f"refusing to write {path}: {prefix}{key} is not finite")
            arrays[prefix + key] = value
    meta = meta.to_json() if isinstance(meta, CheckpointMeta) else dict(meta)
    meta.update(format=FORMAT, version=VERSION)
    arrays[META_KEY] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = _create_temp(folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


def _create_temp(folder: str) -> tuple[int, str]:
    """A new .tmp-*.npz in `folder` -> (fd, path). Unlike mkstemp (always 0600) it gets the mode
    of the run's other files, 0666 less the umask, so a checkpoint is as readable as they are."""
    while True:
        tmp = os.path.join(folder, f".tmp-{secrets.token_hex(8)}.npz")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:   # 64 random bits taken: draw again
            continue


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Checkpoint:
    """A loaded checkpoint: typed metadata, the network's state and the optimiser's velocities."""

    def __init__(self, path: str, meta: CheckpointMeta, state: dict, velocities: dict):
        self.path = path
        self.meta = meta
        self.state = state
        self.velocities = velocities

    def require(self, *fields: str) -> None:
        """CheckpointError unless every named metadata field was written."""
        for name in fields:
            if getattr(self.meta, name) is None:
                raise CheckpointError(f"{self.path}: malformed metadata: no {name!r} "
                                      f"(this use needs {', '.join(map(repr, fields))})")


def load(path: str) -> Checkpoint:
    """Read and validate a checkpoint; every failure is a CheckpointError naming the file."""
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such checkpoint")
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror}") from None
    if head[:2] != b"PK":
        hint = " (it looks like a pickle, which convtrain never loads)" if head[:1] == b"\x80" else ""
        raise CheckpointError(f"{path}: not a convtrain checkpoint (not an .npz archive){hint}")
    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            if META_KEY not in names:
                raise CheckpointError(f"{path}: not a convtrain checkpoint (no metadata)")
            arrays = {name: z[name] for name in names}
    except CheckpointError:
        raise
    except MemoryError:   # an entry's header declares a shape beyond memory: forged or damaged
        raise CheckpointError(f"{path}: an entry declares an array too large for memory "
                              "(a damaged checkpoint?)") from None
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, RuntimeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "pickle" in reason.lower():
            reason = "it holds pickled objects, which convtrain never loads"
        raise CheckpointError(f"{path}: damaged or truncated checkpoint ({reason})") from None
    meta = CheckpointMeta.from_json(path, _read_meta(path, arrays.pop(META_KEY)))
    state, velocities = {}, {}
    for name, value in arrays.items():
        if name.startswith("param/"):
            state[name[6:]] = value
        elif name.startswith("velocity/"):
            velocities[name[9:]] = value
        else:
            raise CheckpointError(f"{path}: unexpected entry {name!r}")
        if value.dtype.kind != "f":
            raise CheckpointError(f"{path}: {name} has dtype {value.dtype}, expected floats")
        if not np.isfinite(value).all():
            raise CheckpointError(f"{path}: {name} holds non-finite values")
    return Checkpoint(path, meta, state, velocities)


def _read_meta(path, raw: np.ndarray) -> dict:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path}: malformed metadata")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: malformed metadata (not JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a convtrain checkpoint (format {meta.get('format')!r})"
                              if isinstance(meta, dict) else f"{path}: malformed metadata")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {meta.get('version')!r} is not "
                              f"supported (this convtrain reads version {VERSION})")
    return meta
