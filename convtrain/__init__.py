"""convtrain: train convolutional networks on the CPU from YAML configs.

Importing the package sets nothing up: entry points call `convtrain.runtime.configure()` first.
The Python API (api.py) is imported on first use, so `import convtrain` stays cheap:

    net = convtrain.load("runs/x/best.npz"); net.predict(images); net.classes
    result = convtrain.fit("config.yaml", epochs=2, **{"optim.lr": 0.01})
    convtrain.evaluate("runs/x", split="test")
"""

__version__ = "0.1.0"

_API = ("load", "fit", "evaluate", "Model")
__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'convtrain' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
