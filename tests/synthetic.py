"""A small learnable data set and config for end-to-end tests: 4 classes of 1x8x8 images, each
class a bright bar at its own place, plus noise."""
import numpy as np

CONFIG = """\
name: synth
seed: 0
input: [1, 8, 8]
data:
  dataset: npz
  path: {path}
  validation: 64
model:
  - conv: {{filters: 4, size: 3, pad: 1}}
  - relu
  - max_pool: 2
  - dense: 4
optim: {{lr: 0.05, momentum: 0.9}}
schedule: {{type: constant}}
train: {{epochs: {epochs}, batch_size: 32}}
checkpoint: {{every: 1, keep: 2}}
"""


def images(n, rng):
    y = rng.integers(0, 4, n)
    x = rng.integers(0, 60, (n, 8, 8)).astype(np.uint8)
    for i, k in enumerate(y):
        x[i, 2 * k:2 * k + 2, :] = 230
    return x, y.astype(np.uint8)


def write_dataset(folder, n_train=320, n_test=96, seed=0):
    rng = np.random.default_rng(seed)
    x_train, y_train = images(n_train, rng)
    x_test, y_test = images(n_test, rng)
    path = folder / "synth.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def write_config(folder, epochs=2, extra=""):
    data = write_dataset(folder)
    cfg = folder / "synth.yaml"
    cfg.write_text(CONFIG.format(path=data, epochs=epochs) + extra)
    return cfg
