"""Numba kernels: @njit functions over flat arrays. Nothing here imports the package but _jit."""
