"""Commands on a model: eval, predict and show (a checkpoint), summary (a config), plot (a run)."""
from __future__ import annotations

import json
import os

import click

from .common import input_shape


# --- eval -------------------------------------------------------------------------------------

@click.command("eval")
@click.argument("checkpoint_path", metavar="CHECKPOINT|RUN_DIR", type=click.Path())
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--data", "data_path", type=click.Path(), help="Read the data set from this path instead.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def eval_(checkpoint_path, split, data_path, as_json):
    """Loss, accuracy, per-class accuracy and confusion matrix of a checkpoint.

    A run folder stands for its best.npz (else its last.npz)."""
    from ..fmt import table
    from ..tools.predict import nonempty_split
    from ..tools.restore import load_for_inference
    from ..train.evaluate import evaluate
    from ..train.runs import checkpoint_in

    checkpoint_path = checkpoint_in(checkpoint_path)
    model = load_for_inference(checkpoint_path, data_path=data_path, need_data=True)
    dataset = nonempty_split(model, split, checkpoint_path)
    res = evaluate(model.net, dataset, model.mean, model.std, num_classes=len(model.classes))
    per_class = {name: acc for name, acc in zip(model.classes, res["per_class_accuracy"])}
    if as_json:
        click.echo(json.dumps({"split": split, "n": res["n"], "loss": res["loss"],
                               "accuracy": res["accuracy"], "error": res["error"],
                               "per_class": per_class, "confusion": res["confusion"].tolist()}))
        return
    click.echo(f"{checkpoint_path} on {split} ({res['n']:,} images)")
    click.echo(f"loss {res['loss']:.4f}  accuracy {100 * res['accuracy']:.2f}%  "
               f"error {100 * res['error']:.2f}%\n")
    rows = [[name, "-" if acc is None else f"{100 * acc:.2f}%", int(res["confusion"][i].sum())]
            for i, (name, acc) in enumerate(per_class.items())]
    click.echo(table(["class", "accuracy", "n"], rows, "lrr"))
    k = len(model.classes)
    click.echo("\nconfusion matrix (rows: true class, columns: predicted)")
    conf_rows = [[str(i)] + [int(v) for v in res["confusion"][i]] for i in range(k)]
    click.echo(table(["true"] + [str(j) for j in range(k)], conf_rows, "l" + "r" * k))


# --- summary ----------------------------------------------------------------------------------

@click.command()
@click.argument("config_path", metavar="CONFIG|RUN_DIR", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def summary(config_path, as_json):
    """Per-layer output shapes, parameters, FLOPs and activation memory (no training).

    A run folder stands for its resolved config.yaml."""
    from .. import config as configmod
    from ..fmt import fmt_bytes, fmt_flops, fmt_int, table
    from ..nn.network import Network
    from ..train.runs import config_in

    cfg = configmod.load(config_in(config_path))
    shape = input_shape(cfg)
    net = Network.build(cfg.model, shape, allocate=False, source=cfg.source)
    rows = net.summary_rows()
    total_params = sum(r["params"] for r in rows)
    total_flops = sum(r["flops"] for r in rows)
    if as_json:
        click.echo(json.dumps({
            "input_shape": list(shape),
            "layers": [{k: r[k] for k in ("name", "type", "output_shape", "params", "weights",
                                          "biases", "flops", "activation_bytes")} for r in rows],
            "total_params": total_params, "total_flops": total_flops}))
        return
    click.echo(f"{cfg.name}: input {'x'.join(map(str, shape))}  "
               "(FLOPs = 2 x multiply-adds per image, forward pass; memory = float32 output per image)")
    body = [[r["name"], r["describe"], "x".join(map(str, r["output_shape"])), fmt_int(r["weights"]),
             fmt_int(r["biases"]), fmt_int(r["params"]), fmt_flops(r["flops"]),
             fmt_bytes(r["activation_bytes"])] for r in rows]
    body.append(["total", "", "", fmt_int(sum(r["weights"] for r in rows)),
                 fmt_int(sum(r["biases"] for r in rows)), fmt_int(total_params),
                 fmt_flops(total_flops), fmt_bytes(sum(r["activation_bytes"] for r in rows))])
    click.echo(table(["layer", "", "output", "weights", "biases", "params", "FLOPs", "memory"],
                     body, "lllrrrrr"))


# --- pictures ---------------------------------------------------------------------------------

def _viz():
    try:
        from ..tools import viz
        import matplotlib  # noqa: F401
        import PIL  # noqa: F401
    except ImportError:
        raise click.ClickException("pictures need matplotlib: "
                                   "pip install 'convtrain[viz]'") from None
    return viz


@click.command()
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), help="Output PNG (default RUN_DIR/curves.png).")
def plot(run_dir, out):
    """Draw curves.png: loss, error and learning rate.

    Training and validation loss and error per epoch, the learning rate on its own log axis,
    divergence events as dashed red lines. RUN_DIR may also be its metrics.jsonl or any other
    file of the run (a checkpoint: its folder is drawn)."""
    _viz()
    from ..tools import charts
    from ..train.runs import metrics_in
    path = charts.plot_curves(metrics_in(run_dir), out)
    click.echo(f"wrote {path}")


@click.command()
@click.argument("checkpoint_path", metavar="CHECKPOINT|RUN_DIR", type=click.Path())
@click.option("--filters", is_flag=True, help="A grid of a layer's filters (-> filters.png).")
@click.option("--features", "feature_index", type=int, metavar="INDEX",
              help="The feature maps of every layer for image INDEX of --split (-> features-INDEX.png).")
@click.option("--layer", help="The layer to show (default: the first conv layer; with "
                              "--features: only this layer's maps).")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--data", "data_path", type=click.Path(), help="Read the data set from this path instead.")
@click.option("--out", type=click.Path(dir_okay=False), help="Output PNG (default: next to the checkpoint).")
def show(checkpoint_path, filters, feature_index, layer, split, data_path, out):
    """Draw a layer's filters or an image's feature maps.

    \b
    --filters: the first layer shows one tile per filter (gray = 0, white > 0, black < 0);
    deeper layers one row per filter, one tile per input channel (up to 64 x 32).
    --features INDEX: one tall PNG, a grid of maps per layer, each map min-max scaled.
    A run folder stands for its best.npz (else its last.npz).
    """
    if filters == (feature_index is not None):
        raise click.UsageError("pass exactly one of --filters or --features INDEX")
    viz = _viz()
    from ..tools.restore import load_for_inference
    from ..train.runs import checkpoint_in
    checkpoint_path = checkpoint_in(checkpoint_path)
    folder = os.path.dirname(os.path.abspath(checkpoint_path))
    if filters:
        model = load_for_inference(checkpoint_path)
        path, info = viz.save_filters(model.net, out or os.path.join(folder, "filters.png"), layer)
        k = "x".join(map(str, info["kernel"]))
        what = (f"{info['filters']} filters {info['channels']}x{k}, one tile per filter"
                if info["mode"] == "per filter" else
                f"{info['filters']} filters x {info['channels']} input channels of {k}, shown "
                f"{info['shown_filters']} x {info['shown_channels']} (rows: filters)")
        click.echo(f"{info['layer']}: {what}; gray = 0, white > 0, black < 0")
        click.echo(f"wrote {path} ({info['size'][0]}x{info['size'][1]})")
        return
    from .. import data as datamod
    from ..tools.predict import predict_examples, split_examples
    model = load_for_inference(checkpoint_path, data_path=data_path, need_data=True)
    (example,) = predict_examples(model, split, [feature_index], top=1)
    best = example["top"][0]
    title = (f"{example['source']}: label {example['label_name']}, predicted "
             f"{best['name']} ({100 * best['probability']:.1f}%)")
    x = datamod.normalize(split_examples(model, split, [feature_index])[0], model.mean, model.std)
    path, sections = viz.save_feature_maps(
        model.net, x, out or os.path.join(folder, f"features-{feature_index}.png"), title=title,
        layers=[layer] if layer else None)
    click.echo(title)
    click.echo(f"wrote {path}: " + ", ".join(s["name"] for s in sections))


@click.command()
@click.argument("checkpoint_path", metavar="CHECKPOINT|RUN_DIR", type=click.Path())
@click.argument("images", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--split", type=click.Choice(["test", "val", "train"]), default=None,
              help="Predict examples of this split (with --index).")
@click.option("--index", "indices", type=int, multiple=True, help="Example index (repeatable).")
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--invert", is_flag=True, help="Invert image files (a dark object on a light "
                                             "background, for a model trained white-on-black).")
@click.option("--data", "data_path", type=click.Path(), help="Read the data set from this path instead.")
@click.option("--json", "as_json", is_flag=True, help="Print the predictions as JSON.")
def predict(checkpoint_path, images, split, indices, top, invert, data_path, as_json):
    """Top classes of image files or of data set examples.

    Prints the --top classes with their probabilities, for image files or for --index
    examples of --split.

    Image files (PNG, JPEG...) are converted to the model's input: grayscale or RGB, scaled to
    fit H x W (aspect kept, centred on the image's own background colour). Fashion-MNIST items
    are light on a black background: a photo has to match (use --invert for a dark object on a
    light background; a note says so when the photo's background is light).
    A run folder stands for its best.npz (else its last.npz).
    """
    from ..tools.predict import predict_examples, predict_files
    from ..tools.restore import load_for_inference
    from ..train.runs import checkpoint_in

    if images and indices:
        raise click.UsageError("pass image files or --index, not both")
    if not images and not indices:
        raise click.UsageError("pass image files, or --index I (with --split, default test)")
    if split and not indices:
        raise click.UsageError("--split goes with --index")
    checkpoint_path = checkpoint_in(checkpoint_path)
    model = load_for_inference(checkpoint_path, data_path=data_path, need_data=bool(indices))
    if images:
        results = predict_files(model, images, top=top, invert=invert)
    else:
        results = predict_examples(model, split or "test", indices, top=top)
    if as_json:
        click.echo(json.dumps({"checkpoint": checkpoint_path, "predictions": results}))
        return
    for r in results:
        head = r["source"] + (f"  (label: {r['label_name']})" if r["label"] is not None else "")
        click.echo(head)
        for t in r["top"]:
            click.echo(f"  {100 * t['probability']:6.2f}%  {t['name']}")
        if r.get("note"):
            click.echo(f"note: {r['note']}", err=True)


COMMANDS = [eval_, predict, show, summary, plot]
