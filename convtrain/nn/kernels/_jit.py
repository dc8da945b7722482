"""The one place numba options are chosen.

`cache=True` so kernels compile once per machine; fastmath without `nnan`/`ninf` so that a NaN
produced by a diverging run stays a NaN and the trainer's `np.isfinite` guard sees it.
No eager signatures: every kernel compiles lazily for float32 (training) and float64 (gradcheck).
The cache folder and the CPU features are chosen by convtrain.runtime.configure(), not here:
importing a kernel module sets nothing up.
"""
import numba

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def wide_vectors() -> bool:
    """Whether numba compiles for 512-bit vectors: AVX-512 without LLVM's preference for 256-bit
    ones (runtime.configure() turns it off on AVX-512 CPUs). Kernels size their register tiles by
    this when their module is imported. It reads the features numba's code generator was created
    with, which are part of every cache entry's key, so a tile size always matches the code
    cached with it, whether configure() ran first or not."""
    from numba.core.registry import cpu_target
    features = cpu_target.target_context.codegen().magic_tuple()[2].split(",")
    return "+avx512f" in features and "-prefer-256-bit" in features


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
