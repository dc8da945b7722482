"""The network: layers, their kernels, the loss."""
