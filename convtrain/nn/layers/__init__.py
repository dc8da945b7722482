"""Layers. The registry of layer types lives in `registry.py` (LAYER_TYPES)."""
