"""Commands that take a trained model out of convtrain: export (ONNX)."""
from __future__ import annotations

import click


@click.command("export")
@click.argument("checkpoint_path", metavar="CHECKPOINT", type=click.Path())
@click.option("--onnx", "onnx_path", required=True, metavar="OUT.onnx", type=click.Path(),
              help="Write the network to this ONNX file.")
@click.option("--softmax", is_flag=True,
              help="End the graph with a softmax: class probabilities instead of logits.")
def export(checkpoint_path, onnx_path, softmax):
    """Write a trained network (a .npz checkpoint, or a run folder: its best.npz, else its
    last.npz) as ONNX.

    \b
    The model's input 'pixels': float32 NCHW images scaled to [0, 1] (uint8 / 255), any batch
    size; it normalises them with the training mean and std itself. Its output: 'logits'
    (or 'probabilities' with --softmax). The classes, mean and std are in its metadata.
    """
    from ..export import INPUT_NAME, OPSET, export_checkpoint
    from ..fmt import fmt_bytes

    done = export_checkpoint(checkpoint_path, onnx_path, softmax=softmax)
    shape = ", ".join(str(d) for d in done.input_shape)
    click.echo(f"{done.checkpoint} -> {done.path} ({fmt_bytes(done.bytes)}, opset {OPSET})")
    click.echo(f"input '{INPUT_NAME}': float32 (N, {shape}) in [0, 1]; output "
               f"'{done.output}': (N, {len(done.classes)})")


COMMANDS = [export]
