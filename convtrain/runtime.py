"""Process set-up for convtrain's entry points: BLAS threads, malloc, numba's cache folder and CPU.

Importing convtrain does none of this. The entry points (the CLI's main, the benchmarks, the
tests' conftest) call `configure()` first; a library user calls it once, before importing numpy
or any convtrain module that holds kernels:

    from convtrain import runtime
    notices = runtime.configure()     # things the user should know, for the caller to show

What it does, and what happens when it comes too late:
- OPENBLAS_NUM_THREADS=1 unless the variable is set: numba's thread pool and a multi-threaded
  OpenBLAS spin against each other when they alternate (DESIGN.md, numba speed rule 1), so the
  kernels own the cores and BLAS runs on one thread. OpenBLAS reads the variable once, when numpy
  loads it: if numpy was imported first, BLAS keeps its default threads for this process (a
  notice says so; set the variable before Python starts, or limit BLAS's threads yourself, e.g.
  with threadpoolctl). Processes started later inherit the variable.
- glibc's malloc keeps freed memory in the heap (see _reuse_freed_memory). Any time is fine.
- numba's cache folder: the kernels' own __pycache__, or, when that is not writable and
  NUMBA_CACHE_DIR is unset, $XDG_CACHE_HOME/convtrain/numba (a notice says so).
- numba's CPU features: 512-bit vectors on a CPU with AVX-512 (see _prefer_512_bit_vectors).
  numba picks a kernel's cache folder when the kernel is defined (its module imported), and the
  CPU features of the whole process at the first @njit of any module: both apply only to what is
  imported after configure(). Called later, the kernels keep what numba chose; their register
  tiles follow it (nn/kernels/_jit.wide_vectors), so they are right either way, only slower.
The numba settings are environment variables (and numba's config, if numba is loaded already),
so that the processes convtrain starts, such as the precompile helper, compile the same code into
the same cache. Later calls change nothing and return the first call's notices.
"""
from __future__ import annotations

import os
import sys
import tempfile

KERNEL_CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn", "kernels",
                            "__pycache__")

_notices: tuple[str, ...] | None = None


def configure() -> tuple[str, ...]:
    """Set up this process for training (see the module docstring); idempotent.

    Returns notices for the user (the library never prints: the CLI shows them)."""
    global _notices
    if _notices is None:
        blas = _single_threaded_blas()
        _reuse_freed_memory()
        cache = _writable_kernel_cache(KERNEL_CACHE)
        _prefer_512_bit_vectors()
        _notices = tuple(notice for notice in (blas, cache) if notice)
    return _notices


def _single_threaded_blas() -> str | None:
    if "OPENBLAS_NUM_THREADS" in os.environ:
        return None
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    if "numpy" in sys.modules:
        return ("numpy was imported before runtime.configure(): OpenBLAS keeps its default "
                "threads, which compete with numba's (set OPENBLAS_NUM_THREADS=1 before Python "
                "starts)")
    return None


def _reuse_freed_memory() -> None:
    """A training step allocates the same large arrays every step. glibc hands arrays over 128 KiB
    back to the kernel on free (mmap/munmap), so every step would page-fault its activations in
    again. Keep freed memory in the heap instead: peak memory is unchanged, the faults are gone."""
    import ctypes
    try:   # the process's own symbols: ctypes.util.find_library would run ldconfig
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):    # not glibc: nothing to tune
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    mallopt(M_MMAP_THRESHOLD, 1 << 30)
    mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1)


def _writable_kernel_cache(folder: str) -> str | None:
    """Point numba at a writable cache folder when `folder` (where `cache=True` writes by default)
    is not: convtrain picks the fallback, rather than numba silently, so that the user is told and
    the precompile helper's marker lands beside the kernels it marks."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        return None
    except OSError:
        pass
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    fallback = os.path.join(base, "convtrain", "numba")
    os.makedirs(fallback, exist_ok=True)
    _set_numba_option("CACHE_DIR", fallback)
    return f"{folder} is not writable; caching compiled kernels in {fallback}"


def _prefer_512_bit_vectors() -> None:
    """LLVM's tuning for AVX-512 CPUs prefers 256-bit vectors (older Xeons lowered their clock for
    512-bit code); the kernels are FMA-bound register tiles that run faster with 512-bit ones
    (benchmarks/RESULTS.md, "Kernel notes"). Turn the preference off when the CPU has AVX-512,
    unless the user chose numba's CPU (NUMBA_CPU_NAME or NUMBA_CPU_FEATURES)."""
    if os.environ.get("NUMBA_CPU_FEATURES") or os.environ.get("NUMBA_CPU_NAME"):
        return
    import llvmlite.binding as llvm
    try:
        features = llvm.get_host_cpu_features()
    except RuntimeError:    # LLVM cannot tell on this platform: numba's defaults stand
        return
    if features.get("avx512f"):
        _set_numba_option("CPU_FEATURES", features.flatten() + ",-prefer-256-bit")


def _set_numba_option(name: str, value: str) -> None:
    """numba reads NUMBA_<name> when it loads (and again before a compile, if such a variable
    changed); when it is loaded already its config is set as well."""
    os.environ[f"NUMBA_{name}"] = value
    numba = sys.modules.get("numba")
    if numba is not None:
        setattr(numba.config, name, value)
