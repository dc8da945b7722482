"""Export a trained network to ONNX; the only package that knows ONNX (imported lazily).

    from convtrain.export import export_checkpoint
    export_checkpoint("runs/default", "model.onnx")          # a run folder or a .npz

    layers.py       EMITTERS: layer class -> the function that writes its ONNX nodes
    graph.py        GraphBuilder: nodes and constants under unique names
    onnx_model.py   build_model: the whole graph (normalisation, layers, output), its metadata
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from .onnx_model import INPUT_NAME, OPSET, ExportError, build_model, check_exportable, require_onnx

__all__ = ["ExportError", "Exported", "INPUT_NAME", "OPSET", "build_model", "check_exportable",
           "export_checkpoint"]


@dataclass
class Exported:
    checkpoint: str      # the .npz that was exported
    path: str            # the .onnx written
    output: str          # "logits" or "probabilities"
    input_shape: tuple
    classes: list
    bytes: int


def _check_out_path(out: str) -> None:
    if not out.endswith(".onnx"):
        raise ExportError(f"{out}: the output file must end in .onnx")
    folder = os.path.dirname(out) or "."
    if not os.path.isdir(folder):
        raise ExportError(f"{out}: the folder {folder} does not exist")
    if os.path.isdir(out):
        raise ExportError(f"{out}: is a folder; give a file name ending in .onnx")


def _write_atomic(data: bytes, out: str) -> None:
    """Temporary file in the same folder, fsynced, then renamed over `out` (mode as umask)."""
    folder = os.path.dirname(out) or "."
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".onnx.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def export_checkpoint(path: str, out: str, *, softmax: bool = False) -> Exported:
    """Write the network of a checkpoint (or a run folder's best) to `out` as ONNX."""
    from ..tools.restore import load_for_inference
    from ..train.runs import checkpoint_in
    _check_out_path(out)
    require_onnx()
    checkpoint = checkpoint_in(path)
    model = load_for_inference(checkpoint)
    proto = build_model(model.net, mean=model.mean, std=model.std, classes=model.classes,
                        softmax=softmax, source=os.path.basename(checkpoint))
    data = proto.SerializeToString()
    _write_atomic(data, out)
    return Exported(checkpoint, out, "probabilities" if softmax else "logits",
                    tuple(model.input_shape), list(model.classes), len(data))
