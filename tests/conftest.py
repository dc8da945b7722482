import os

from convtrain import runtime

# Before numpy or any kernel loads: single-threaded BLAS, numba's cache folder and CPU features.
runtime.configure()

import numpy as np  # noqa: E402
import pytest  # noqa: E402

FMNIST = "/usr/share/datasets/fashion-mnist"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def has_fashion_mnist() -> bool:
    folder = os.environ.get("CONVTRAIN_DATA") or FMNIST
    return os.path.exists(os.path.join(folder, "train-images-idx3-ubyte.gz")) or \
        os.path.exists(os.path.join(folder, "train-images-idx3-ubyte"))


needs_fmnist = pytest.mark.skipif(not has_fashion_mnist(), reason="Fashion-MNIST not installed")
