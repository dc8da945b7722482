"""GraphBuilder: collects ONNX nodes and constant tensors under unique names.

The layer emitters (export/layers.py) only call `node` and `const`; they never see onnx's
protobuf classes, so this is the one module besides export/onnx_model.py that imports onnx.
"""
from __future__ import annotations

import numpy as np


class GraphBuilder:
    """Nodes in order and constants (initializers), each with a unique name."""

    def __init__(self):
        from onnx import helper, numpy_helper
        self._helper = helper
        self._numpy_helper = numpy_helper
        self.nodes = []
        self.initializers = []
        self._used: set[str] = set()

    def _name(self, base: str) -> str:
        name, k = base, 1
        while name in self._used:
            k += 1
            name = f"{base}_{k}"
        self._used.add(name)
        return name

    def reserve(self, name: str) -> str:
        """Claim a fixed name (the graph's input and output)."""
        return self._name(name)

    def const(self, base: str, value, dtype=np.float32) -> str:
        """A constant tensor; float32 unless `dtype` says otherwise (int64 for shapes, axes)."""
        name = self._name(base)
        array = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        self.initializers.append(self._numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], base: str, *, output: str | None = None,
             **attrs) -> str:
        """Append one node with one output (named after `base` unless `output` is given)."""
        out = output if output is not None else self._name(base)
        self.nodes.append(self._helper.make_node(op, inputs, [out], name=self._name(f"{base}/{op}"),
                                                 **attrs))
        return out
