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


def _use_512_bit_vectors() -> bool:
    """LLVM's tuning for AVX-512 CPUs prefers 256-bit vectors (older Xeons slowed their clock for
    zmm code); our kernels are FMA-bound register tiles that run 1.3-1.9x faster with zmm. Turn the
    preference off when the CPU has AVX-512, unless the user chose features (NUMBA_CPU_FEATURES)."""
    if os.environ.get("NUMBA_CPU_FEATURES") or os.environ.get("NUMBA_CPU_NAME"):
        return False
    import llvmlite.binding as llvm
    features = llvm.get_host_cpu_features()
    if not features.get("avx512f"):
        return False
    numba.config.CPU_FEATURES = features.flatten() + ",-prefer-256-bit"
    return True


WIDE_VECTORS = _use_512_bit_vectors()   # read by kernels that size register tiles


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
