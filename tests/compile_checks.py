"""Counting the specialisations numba kernels have compiled (DESIGN.md: no recompiles in the loop)."""
import numpy as np


def signature_counts(module) -> dict[str, int]:
    """{name: number of compiled signatures} of the numba dispatchers defined in `module`."""
    return {name: len(obj.signatures) for name, obj in vars(module).items()
            if hasattr(obj, "signatures") and hasattr(obj, "py_func")}


def assert_layers_compile_once(layers, sample_shape, module, seed=6):
    """Forward and backward of each layer at batch 2, then at batch 3 with float64 inputs into
    float32 layers: the second round must not compile anything new in `module`."""
    rng = np.random.default_rng(seed)

    def run(n):
        for layer in layers:
            y, cache = layer.forward(rng.standard_normal((n,) + sample_shape), train=True)
            layer.backward(rng.standard_normal(y.shape), cache)

    run(2)
    before = signature_counts(module)
    assert before, f"no kernels found in {module.__name__}"
    run(3)
    assert signature_counts(module) == before
