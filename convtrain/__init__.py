"""convtrain: train convolutional networks on the CPU from YAML configs.

Importing the package sets nothing up: entry points call `convtrain.runtime.configure()` first.
"""

__version__ = "0.1.0"
