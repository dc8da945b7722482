"""convtrain: train convolutional networks on the CPU from YAML configs."""
import os as _os

# numba's OpenMP pool and a multi-threaded OpenBLAS spin against each other when they alternate
# (a 0.2 ms hand-off became 16 ms here). The numba kernels own the cores; BLAS runs single-threaded.
# This only takes effect when convtrain is imported before numpy.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
