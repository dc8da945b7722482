"""convtrain: train convolutional networks on the CPU from YAML configs."""
import os as _os

# numba's OpenMP pool and a multi-threaded OpenBLAS spin against each other when they alternate
# (a 0.2 ms hand-off became 16 ms here). The numba kernels own the cores; BLAS runs single-threaded.
# This only takes effect when convtrain is imported before numpy.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _reuse_freed_memory() -> None:
    """A training step allocates the same large arrays every step. glibc hands arrays over 128 KiB
    back to the kernel on free (mmap/munmap), so every step page-faulted its activations in again
    (~10 % of a step on the LCN net). Keep freed memory in the heap instead: peak memory is
    unchanged, the faults are gone."""
    import ctypes
    try:   # the process's own symbols: ctypes.util.find_library would run ldconfig at start-up
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):    # not glibc: nothing to tune
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    mallopt(M_MMAP_THRESHOLD, 1 << 30)
    mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1)


_reuse_freed_memory()

__version__ = "0.1.0"
