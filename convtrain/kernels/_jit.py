"""The one place numba options are chosen.

`cache=True` so kernels compile once per machine; fastmath without `nnan`/`ninf` so that a NaN
produced by a diverging run stays a NaN and the trainer's `np.isfinite` guard sees it.
No eager signatures: every kernel compiles lazily for float32 (training) and float64 (gradcheck).
"""
import os
import sys
import tempfile

import numba

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def _ensure_writable_cache() -> None:
    """numba silently skips caching (or fails) when the package folder is read-only."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = os.path.dirname(os.path.abspath(__file__))
    probe = os.path.join(here, "__pycache__")
    try:
        os.makedirs(probe, exist_ok=True)
        with tempfile.TemporaryFile(dir=probe):
            pass
        return
    except OSError:
        pass
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    fallback = os.path.join(base, "convtrain", "numba")
    os.makedirs(fallback, exist_ok=True)
    numba.config.CACHE_DIR = fallback
    print(f"convtrain: {probe} is not writable; caching compiled kernels in {fallback}",
          file=sys.stderr)


_ensure_writable_cache()


def jit(fn=None, **extra):
    """Serial kernel."""
    opts = dict(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy")
    opts.update(extra)
    if fn is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(fn)


def pjit(fn=None, **extra):
    """Parallel kernel: use numba.prange only over the axis the loop writes."""
    return jit(fn, parallel=True, **extra)


prange = numba.prange
