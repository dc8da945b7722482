"""build_model: a Network (with the training mean and std) -> an onnx.ModelProto.

The model's input `pixels` is what `convtrain eval` reads before normalising: float32 NCHW
images scaled to [0, 1] (a uint8 image / 255), any batch size. The graph normalises them with
the checkpoint's per-channel mean and std, runs the layers in inference mode and returns the
class scores as `logits` (or `probabilities` with softmax=True).
"""
from __future__ import annotations

import json

import numpy as np

from ..errors import ConvtrainError
from .graph import GraphBuilder
from .layers import EMITTERS

OPSET = 18          # Reduce* take their axes as an input from opset 18 on
INPUT_NAME = "pixels"


class ExportError(ConvtrainError):
    """A model cannot be written as ONNX (a layer without an equivalent, onnx missing)."""


def require_onnx():
    """-> the onnx module, or an ExportError that says what to install."""
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install 'convtrain[onnx]' "
                          "(or: pip install onnx onnxruntime)") from None
    return onnx


def check_exportable(net) -> None:
    """ExportError naming the first layer that has no ONNX equivalent."""
    for i, layer in enumerate(net.layers):
        if type(layer) not in EMITTERS:
            known = ", ".join(sorted(cls.type for cls in EMITTERS))
            raise ExportError(f"cannot export layer {i} ({layer.name}: {layer.type}): no ONNX "
                              f"equivalent; exportable: {known}")


def _normalise(g: GraphBuilder, x: str, mean, std, ndim: int) -> str:
    """(x - mean[c]) / std[c] as x * scale + shift, the arithmetic of data.normalize
    (a zero std counts as 1)."""
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    std = np.where(std == 0, 1.0, std)
    shape = (1, len(mean)) + (1,) * (ndim - 1)
    scaled = g.node("Mul", [x, g.const("input_scale", (1.0 / std).reshape(shape))], "scaled")
    return g.node("Add", [scaled, g.const("input_shift", (-mean / std).reshape(shape))],
                  "normalised")


def describe(input_shape, classes, mean, std, softmax: bool) -> tuple[str, dict]:
    """-> (doc_string, metadata_props) telling a user what goes in and what comes out."""
    shape = "x".join(str(d) for d in input_shape)
    output = "probabilities" if softmax else "logits"
    doc = (f"Input '{INPUT_NAME}': float32 (N, {', '.join(map(str, input_shape))}) images scaled to "
           f"[0, 1] (uint8 / 255), NCHW, any N; the model normalises them with the training "
           f"mean and std. Output '{output}': (N, {len(classes)}) class "
           f"{'probabilities (softmax)' if softmax else 'scores before softmax'}, in the order "
           f"of the metadata's classes.")
    meta = {"classes": json.dumps(list(classes)), "mean": json.dumps([float(v) for v in mean]),
            "std": json.dumps([float(v) for v in std]), "input_shape": shape,
            "input": f"{INPUT_NAME}: float32 NCHW in [0, 1] (uint8 / 255)", "output": output}
    return doc, meta


def build_model(net, *, mean, std, classes, softmax: bool = False, source: str = ""):
    """-> a checked onnx.ModelProto computing `net`'s inference forward on raw [0, 1] images."""
    onnx = require_onnx()
    from onnx import TensorProto, helper
    check_exportable(net)
    g = GraphBuilder()
    ndim = len(net.input_shape)
    x_in = g.reserve(INPUT_NAME)
    output_name = g.reserve("probabilities" if softmax else "logits")
    x = _normalise(g, x_in, mean, std, ndim)
    for layer in net.layers:
        x = EMITTERS[type(layer)](g, layer, x)
    out_shape = [int(d) for d in net.layers[-1].output_shape]
    if softmax:
        g.node("Softmax", [x], "softmax", output=output_name, axis=1)
    else:
        g.node("Identity", [x], "logits", output=output_name)
    graph = helper.make_graph(
        g.nodes, "convtrain",
        [helper.make_tensor_value_info(x_in, TensorProto.FLOAT,
                                       ["N"] + [int(d) for d in net.input_shape])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N"] + out_shape)],
        initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="convtrain")
    model.ir_version = min(model.ir_version, 8)    # readable by onnxruntime >= 1.14
    doc, meta = describe(net.input_shape, classes, mean, std, softmax)
    model.doc_string = doc
    if source:
        meta["source"] = source
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    return model
