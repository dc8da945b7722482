"""The command line: one click group; commands parse, call the library and print. No maths here.

Heavy modules (numpy, numba, the layers) are imported inside the commands so that
`convtrain --help` stays fast.
"""
from __future__ import annotations

import fnmatch
import functools
import json
import math
import os
import sys

import click

EXIT_INTERRUPTED = 130


class _PositiveFloat(click.FloatRange):
    """A finite number > 0 (click's FloatRange lets `inf` and `nan` through)."""

    def __init__(self):
        super().__init__(min=0, min_open=True)

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if not math.isfinite(value):
            self.fail(f"{value} is not a finite number.", param, ctx)
        return value


POSITIVE = _PositiveFloat()


def handle_errors(fn):
    """ConvtrainError -> one `Error:` line and exit 1; Ctrl-C outside training -> exit 130."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ..errors import ConvtrainError
        try:
            return fn(*args, **kwargs)
        except ConvtrainError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except MemoryError:
            raise click.ClickException("out of memory: lower train.batch_size or the model size") from None
        except OSError as e:   # a folder that cannot be created, a full disk, /proc...
            where = f"{e.filename}: " if e.filename else ""
            raise click.ClickException(f"{where}{e.strerror or e}") from None
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="convtrain")
def main():
    """Train convolutional networks on the CPU from YAML configs.

    \b
    Start with:  convtrain fit configs/default.yaml
    Then:        convtrain eval runs/<name>/best.npz
    """


# --- helpers shared by commands ---------------------------------------------------------------

def _load_config(path, **overrides):
    from .. import config as configmod
    cfg = configmod.load(path)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return configmod.with_overrides(cfg, **overrides) if overrides else cfg


def _input_shape(cfg, splits=None):
    if cfg.input is not None:
        return tuple(cfg.input)
    if splits is not None:
        return tuple(splits.input_shape)
    from .. import data as datamod
    return tuple(datamod.load(cfg.data, seed=cfg.seed).input_shape)


def _load_splits(cfg):
    from .. import data as datamod
    return datamod.load(cfg.data, seed=cfg.seed, input_shape=cfg.input)


def _prepare_run_dir(out_dir: str, resume: str | None, fresh: bool) -> str | None:
    """-> the checkpoint to resume from, or None. Never silently overwrites an earlier run."""
    from ..errors import ConvtrainError
    last = os.path.join(out_dir, "last.npz")
    holds_run = os.path.exists(last) or os.path.exists(os.path.join(out_dir, "metrics.jsonl"))
    if resume and resume != "auto":
        here = os.path.realpath(os.path.dirname(os.path.abspath(resume)))
        if holds_run and here != os.path.realpath(out_dir):
            raise ConvtrainError(
                f"{out_dir} already holds another run; resuming {resume} there would overwrite "
                f"its checkpoints: pass --out with a new folder (or {os.path.dirname(resume) or '.'})")
        return resume
    if resume == "auto":
        return last if os.path.exists(last) else None
    if holds_run:
        if not fresh:
            raise ConvtrainError(
                f"{out_dir} already holds a run; pass --resume to continue it or --fresh to start "
                f"over (the old files are kept in {out_dir}/previous-*/)")
        import time
        keep = os.path.join(out_dir, time.strftime("previous-%Y%m%d-%H%M%S"))
        n = 1
        while os.path.exists(keep if n == 1 else f"{keep}-{n}"):   # two --fresh in one second
            n += 1
        keep = keep if n == 1 else f"{keep}-{n}"
        os.makedirs(keep)
        for name in os.listdir(out_dir):   # the run's own files only: not the user's data or notes
            path = os.path.join(out_dir, name)
            if os.path.isfile(path) and any(fnmatch.fnmatchcase(name, p) for p in RUN_FILES):
                os.replace(path, os.path.join(keep, name))
    return None


RUN_FILES = ("config.yaml", "metrics.jsonl", "metrics.csv", "last.npz", "best.npz", "epoch-*.npz",
             "step-*.npz", ".tmp-*.npz", "curves.png", "filters.png", "features-*.png")


def _check_own_config(out_dir: str, config_path: str) -> None:
    """`fit` writes <out>/config.yaml: refuse when that is the user's own config file."""
    from ..errors import ConvtrainError
    own = os.path.join(out_dir, "config.yaml")
    if not (os.path.isfile(own) and os.path.exists(config_path) and os.path.samefile(own, config_path)):
        return
    with open(own, encoding="utf-8", errors="replace") as f:
        if f.readline().startswith("# resolved config"):   # a run's own: rewriting it is harmless
            return
    raise ConvtrainError(f"the run folder {out_dir} is where CONFIG lives: writing the run's "
                         f"resolved config.yaml would overwrite {config_path}; pass another --out")


# --- fit --------------------------------------------------------------------------------------

@main.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--epochs", type=click.IntRange(min=1), help="Override train.epochs.")
@click.option("--seed", type=click.IntRange(min=0), help="Override the config's seed.")
@click.option("--lr", type=POSITIVE, help="Override optim.lr.")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default runs/<name>).")
@click.option("--resume", is_flag=False, flag_value="auto", default=None, metavar="[auto|PATH]",
              help="Continue from a checkpoint; `auto` (or no value) uses <out>/last.npz if present.")
@click.option("--fresh", is_flag=True, help="Start over; an earlier run in the folder is moved aside.")
@click.option("--quiet", "-q", is_flag=True, help="No per-epoch lines.")
@handle_errors
def fit(config_path, epochs, seed, lr, out, resume, fresh, quiet):
    """Train the network a config describes; checkpoints go to the run folder."""
    from ..train import checkpoint as ckpt
    from .. import config as configmod
    from ..tools import precompile
    from .console import ConsoleReporter
    from ..nn.network import Network
    from ..train.trainer import Interrupted, Trainer

    if out is not None and not out.strip():
        raise click.BadParameter("must not be empty", param_hint="--out")
    if resume is not None and not resume.strip():
        raise click.BadParameter("must not be empty (give a checkpoint, `auto`, or no value)",
                                 param_hint="--resume")
    if resume and fresh:
        raise click.UsageError("pass --resume or --fresh, not both")
    cfg = _load_config(config_path, epochs=epochs, seed=seed, lr=lr)
    out_dir = out or os.path.join("runs", cfg.name)
    _check_own_config(out_dir, config_path)
    resume_path = _prepare_run_dir(out_dir, resume, fresh)
    checkpoint = ckpt.load(resume_path) if resume_path else None
    # On a cold cache a helper process compiles the kernels from the network's end while this
    # one loads the data and compiles from the start (precompile.py).
    helper = precompile.start(cfg, cfg.input) if cfg.input else None
    try:
        splits = _load_splits(cfg)
        net = Network.build(cfg.model, splits.input_shape, seed=cfg.seed, source=cfg.source)
        if not cfg.input:   # (with cfg.input, the data's shape is that one: already checked)
            helper = precompile.start(cfg, splits.input_shape)
        reporter = ConsoleReporter(quiet=quiet)
        trainer = Trainer(cfg, net, splits, out_dir, reporter=reporter)
        if checkpoint is not None:
            for note in trainer.restore(checkpoint):
                click.echo(f"note: {note}", err=True)
            click.echo(f"resuming from {resume_path} at step {trainer.step}")
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "config.yaml"), "w") as f:
            f.write(configmod.dump(cfg))
        result = trainer.fit()
    except Interrupted as stop:
        click.echo(f"\ninterrupted: checkpoint written to {stop.path}\n"
                   f"resume with: convtrain fit {config_path} --resume {stop.path}"
                   + (f" --out {out_dir}" if out else ""), err=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        precompile.stop(helper)
    best = result["best_val_error"]
    metric = "validation error" if len(splits.val.y) else "training loss"
    if best is None:
        click.echo(f"done: {result['step']} steps; checkpoints in {out_dir}")
    else:
        shown = f"{100 * best:.2f}%" if len(splits.val.y) else f"{best:.4f}"
        click.echo(f"done: best {metric} {shown} at epoch {result['best_epoch']}; "
                   f"best checkpoint {result['best_checkpoint']}")
    _maybe_plot(out_dir)


def _maybe_plot(out_dir):
    from ..errors import ConvtrainError
    try:
        from ..tools import viz
    except ImportError:
        return
    try:
        click.echo(f"curves: {viz.plot_curves(out_dir)}")
        filters = viz.save_run_filters(out_dir)
        if filters:
            click.echo(f"filters: {filters}")
    except ImportError:   # the optional `viz` extra is not installed
        pass
    except ConvtrainError as e:   # e.g. a resumed run that had nothing left to train
        click.echo(f"note: no pictures: {e}", err=True)


# --- eval -------------------------------------------------------------------------------------

@main.command("eval")
@click.argument("checkpoint_path", metavar="CHECKPOINT", type=click.Path(dir_okay=False))
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--data", "data_path", type=click.Path(), help="Read the data set from this path instead.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def eval_(checkpoint_path, split, data_path, as_json):
    """Loss, accuracy, per-class accuracy and confusion matrix of a checkpoint."""
    from .console import table
    from ..train.evaluate import evaluate
    from ..tools.restore import load_for_inference

    model = load_for_inference(checkpoint_path, data_path=data_path, need_data=True)
    dataset = getattr(model.splits, split)
    if len(dataset.y) == 0:
        from ..errors import DataError
        why = " (the config's data.validation is 0)" if split == "val" else ""
        raise DataError(f"{checkpoint_path}: the {split} split of its data set is empty{why}")
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

@main.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@handle_errors
def summary(config_path, as_json):
    """Per-layer output shapes, parameters, FLOPs and activation memory (no training)."""
    from .console import fmt_bytes, fmt_flops, fmt_int, table
    from ..nn.network import Network

    cfg = _load_config(config_path)
    shape = _input_shape(cfg)
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


# --- gradcheck --------------------------------------------------------------------------------

@main.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--batch", type=click.IntRange(min=1, max=64), default=2, show_default=True)
@click.option("--tol", type=POSITIVE, default=1e-6, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--samples", type=click.IntRange(min=1), default=20, show_default=True,
              help="Entries checked per tensor (sampled when a tensor is larger).")
@handle_errors
def gradcheck(config_path, batch, tol, seed, samples):
    """Compare back-propagated gradients with finite differences (float64)."""
    from .console import table
    from ..tools.gradcheck import run_config_gradcheck

    cfg = _load_config(config_path)
    results = run_config_gradcheck(cfg, _input_shape(cfg), batch=batch, seed=seed, samples=samples)
    rows = [[r.name, "x".join(map(str, r.shape)), r.checked, r.kinks, f"{r.max_rel_error:.2e}",
             "ok" if r.ok(tol) else "FAIL"] for r in results]
    click.echo(table(["tensor", "shape", "checked", "kinks", "max rel error", ""], rows, "llrrrl"))
    bad = [r.name for r in results if not r.ok(tol)]
    if bad:
        click.echo(f"FAIL: {len(bad)} tensor(s) above tolerance {tol:g}: {', '.join(bad)}", err=True)
        sys.exit(1)
    click.echo(f"PASS: every gradient within {tol:g}")


# --- lr-search --------------------------------------------------------------------------------

@main.command("lr-search")
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--subset", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Training examples to search on.")
@click.option("--start", type=POSITIVE, default=1.0, show_default=True)
@click.option("--min", "min_lr", type=POSITIVE, default=1e-6,
              show_default=True, help="Give up below this rate.")
@click.option("--steps", type=click.IntRange(min=1), help="Steps per trial (default: --epochs).")
@click.option("--epochs", type=click.IntRange(min=1), default=2, show_default=True,
              help="Passes over the subset per trial.")
@click.option("--write", "write_path", type=click.Path(dir_okay=False),
              help="Write a copy of the config with the chosen rate.")
@handle_errors
def lr_search(config_path, subset, start, min_lr, steps, epochs, write_path):
    """Find a learning rate: start large, halve until the loss goes down (Bottou 2012)."""
    from .. import config as configmod
    from ..tools import lr_search as search_mod
    from .console import table

    if min_lr > start:
        raise click.BadParameter(f"--min {min_lr:g} is above --start {start:g}", param_hint="--min")
    if write_path:   # fail now, not after the search
        if (os.path.exists(write_path) and os.path.exists(config_path)
                and os.path.samefile(write_path, config_path)):
            raise click.BadParameter("would overwrite CONFIG itself; write the copy elsewhere",
                                     param_hint="--write")
        folder = os.path.dirname(os.path.abspath(write_path))
        if not os.path.isdir(folder):
            raise click.BadParameter(f"{folder} is not a folder", param_hint="--write")
    cfg = _load_config(config_path)
    splits = _load_splits(cfg)
    click.echo(f"searching on {min(subset, len(splits.train.y)):,} training images, from {start:g}")

    def show(trial):
        verdict = "diverged" if trial.diverged else ("ok" if trial.ok else "no progress")
        click.echo(f"  lr {trial.lr:<10.4g} loss {trial.initial_loss:.4f} -> {trial.final_loss:.4f}  {verdict}")

    trials, chosen = search_mod.search(cfg, splits, subset=subset, start=start, min_lr=min_lr,
                                       steps=steps, epochs=epochs, on_trial=show)
    rows = [[f"{t.lr:.4g}", f"{t.initial_loss:.4f}", f"{t.final_loss:.4f}",
             "yes" if t.diverged else "no"] for t in trials]
    click.echo(table(["rate", "initial loss", "final loss", "diverged"], rows, "rrrl"))
    click.echo(f"chosen learning rate: {chosen:.4g}")
    if write_path:
        new = configmod.with_overrides(cfg, lr=chosen)
        with open(write_path, "w") as f:
            f.write(configmod.dump(new))
        click.echo(f"wrote {write_path}")


# --- doctor -----------------------------------------------------------------------------------

@main.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--subset", type=click.IntRange(min=1), default=64, show_default=True,
              help="Training images the overfit check must learn by heart.")
@click.option("--steps", type=click.IntRange(min=1), default=300, show_default=True,
              help="Step budget of the overfit check.")
@click.option("--lr", "lr_check", is_flag=True, help="Also run the learning-rate search check.")
@click.option("--verbose", "-v", is_flag=True, help="Per-layer tables for every check.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@handle_errors
def doctor(config_path, subset, steps, lr_check, verbose, as_json):
    """Run the practitioner's checklist on a config.

    Each check ends PASS, WARN or FAIL with a one-line hint:

    \b
    1. gradient check   backprop against finite differences (float64, 2 images)
    2. init health      activation mean/std, dead and saturated units, |grad W|/|W|
    3. overfit          a fresh net must learn --subset training images by heart
    4. cost             parameters and FLOPs per layer, measured speed
    5. lr (--lr)        Bottou's learning-rate search against the config's rate
    Exit status 1 when any check FAILs.
    """
    import time

    from ..tools import doctor as doc

    cfg = _load_config(config_path)
    checks = []
    t0 = time.perf_counter()
    if not as_json:
        click.echo(f"doctor: {config_path} ({cfg.name})")
    for check in doc.run(cfg, subset=subset, steps=steps, lr=lr_check):
        checks.append(check)
        if not as_json:
            _echo_check(check, verbose)
    status = doc.overall(checks)
    if as_json:
        click.echo(json.dumps({"config": config_path, "status": status,
                               "checks": [c.to_dict() for c in checks]}))
    else:
        counts = {s: sum(c.status == s for c in checks) for s in (doc.PASS, doc.WARN, doc.FAIL)}
        click.echo(f"\n{status}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
                   + f" in {time.perf_counter() - t0:.1f} s")
    if status == doc.FAIL:
        sys.exit(1)


_STATUS_COLOURS = {"PASS": "green", "WARN": "yellow", "FAIL": "red"}


def _echo_check(check, verbose):
    from .console import fmt_flops, fmt_int, table

    tag = click.style(f"{check.status:<4}", fg=_STATUS_COLOURS[check.status], bold=True)
    secs = check.details.get("seconds")
    click.echo(f"\n{tag}  {check.title}" + (f"  ({secs:.1f} s)" if secs is not None else ""))
    click.echo(f"      {check.summary}")
    if check.hint:
        click.echo(f"      hint: {check.hint}")
    d = check.details
    show = verbose or check.status != "PASS"

    def indent(text):
        click.echo("\n".join("      " + line for line in text.splitlines()))

    def num(v, spec):
        return "-" if v is None else format(v, spec)

    if check.name == "gradients" and show and d.get("tensors"):
        indent(table(["tensor", "checked", "kinks", "max rel error"],
                     [[t["name"], t["checked"], t["kinks"], f"{t['max_rel_error']:.2e}"]
                      for t in d["tensors"]], "lrrr"))
    elif check.name == "init" and show and d.get("layers"):
        indent(table(["layer", "output", "mean", "std", "dead", "saturated", "|dW|/|W|"],
                     [[r["name"], "x".join(map(str, r["shape"])), num(r["mean"], ".3f"),
                       num(r["std"], ".3f"),
                       "-" if r["dead"] is None else f"{100 * r['dead']:.0f}%",
                       "-" if r["saturated"] is None else f"{100 * r['saturated']:.0f}%",
                       num(r["grad_weight_ratio"], ".2e")] for r in d["layers"]], "llrrrrr"))
    elif check.name == "cost" and d.get("layers"):
        rows = [r for r in d["layers"] if verbose or r["params"] or r["flops_share"] >= 0.01]
        indent(table(["layer", "output", "params", "", "FLOPs", ""],
                     [[r["name"], "x".join(map(str, r["output_shape"])), fmt_int(r["params"]),
                       f"{100 * r['params_share']:.0f}%", fmt_flops(r["flops"]),
                       f"{100 * r['flops_share']:.0f}%"] for r in rows], "llrrrr"))
    elif check.name == "lr" and show and d.get("trials"):
        indent(table(["rate", "initial loss", "final loss", "diverged"],
                     [[f"{t['lr']:.4g}", f"{t['initial_loss']:.4f}", num(t["final_loss"], ".4f"),
                       "yes" if t["diverged"] else "no"] for t in d["trials"]], "rrrl"))


# --- pictures ---------------------------------------------------------------------------------

def _viz():
    try:
        from ..tools import viz
        import matplotlib  # noqa: F401
        import PIL  # noqa: F401
    except ImportError:
        raise click.ClickException("pictures need matplotlib and Pillow: "
                                   "pip install 'convtrain[viz]'") from None
    return viz


@main.command()
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), help="Output PNG (default RUN_DIR/curves.png).")
@handle_errors
def plot(run_dir, out):
    """Draw curves.png: loss, error and learning rate.

    Training and validation loss and error per epoch, the learning rate on its own log axis,
    divergence events as dashed red lines."""
    viz = _viz()
    path = viz.plot_curves(run_dir, out)
    click.echo(f"wrote {path}")


@main.command()
@click.argument("checkpoint_path", metavar="CHECKPOINT", type=click.Path(dir_okay=False))
@click.option("--filters", is_flag=True, help="A grid of a layer's filters (-> filters.png).")
@click.option("--features", "feature_index", type=int, metavar="INDEX",
              help="The feature maps of every layer for image INDEX of --split (-> features-INDEX.png).")
@click.option("--layer", help="The layer to show (default: the first conv layer; with "
                              "--features: only this layer's maps).")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--data", "data_path", type=click.Path(), help="Read the data set from this path instead.")
@click.option("--out", type=click.Path(dir_okay=False), help="Output PNG (default: next to the checkpoint).")
@handle_errors
def show(checkpoint_path, filters, feature_index, layer, split, data_path, out):
    """Draw a layer's filters or an image's feature maps.

    \b
    --filters: the first layer shows one tile per filter (gray = 0, white > 0, black < 0);
    deeper layers one row per filter, one tile per input channel (up to 64 x 32).
    --features INDEX: one tall PNG, a grid of maps per layer, each map min-max scaled.
    """
    if filters == (feature_index is not None):
        raise click.UsageError("pass exactly one of --filters or --features INDEX")
    viz = _viz()
    from ..tools.restore import load_for_inference
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
    from ..nn.loss import softmax
    from ..tools.predict import split_examples
    model = load_for_inference(checkpoint_path, data_path=data_path, need_data=True)
    x_raw, y = split_examples(model, split, [feature_index])
    x = datamod.normalize(x_raw, model.mean, model.std)
    probs = softmax(model.net.predict(x).astype("float64"))[0]
    guess = int(probs.argmax())
    title = (f"{split}[{feature_index}]: label {model.classes[int(y[0])]}, predicted "
             f"{model.classes[guess]} ({100 * probs[guess]:.1f}%)")
    path, sections = viz.save_feature_maps(
        model.net, x, out or os.path.join(folder, f"features-{feature_index}.png"), title=title,
        layers=[layer] if layer else None)
    click.echo(title)
    click.echo(f"wrote {path}: " + ", ".join(s["name"] for s in sections))


@main.command()
@click.argument("checkpoint_path", metavar="CHECKPOINT", type=click.Path(dir_okay=False))
@click.argument("images", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--split", type=click.Choice(["test", "val", "train"]), default=None,
              help="Predict examples of this split (with --index).")
@click.option("--index", "indices", type=int, multiple=True, help="Example index (repeatable).")
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--invert", is_flag=True, help="Invert image files (a dark object on a light "
                                             "background, for a model trained white-on-black).")
@click.option("--data", "data_path", type=click.Path(), help="Read the data set from this path instead.")
@click.option("--json", "as_json", is_flag=True, help="Print the predictions as JSON.")
@handle_errors
def predict(checkpoint_path, images, split, indices, top, invert, data_path, as_json):
    """Top classes of image files or of data set examples.

    Prints the --top classes with their probabilities, for image files or for --index
    examples of --split.

    Image files (PNG, JPEG...) are converted to the model's input: grayscale or RGB, scaled to
    fit H x W (aspect kept, centred on black). Fashion-MNIST items are light on a black
    background: a photo has to match (use --invert for a dark object on a light background).
    """
    import numpy as np

    from ..tools.predict import brightness_note, load_image, probabilities, split_examples, top_k
    from ..tools.restore import load_for_inference

    if images and indices:
        raise click.UsageError("pass image files or --index, not both")
    if not images and not indices:
        raise click.UsageError("pass image files, or --index I (with --split, default test)")
    if split and not indices:
        raise click.UsageError("--split goes with --index")
    model = load_for_inference(checkpoint_path, data_path=data_path, need_data=bool(indices))
    results = []
    if images:
        try:
            x = np.stack([load_image(p, model.input_shape, invert=invert) for p in images])
        except ImportError:
            raise click.ClickException("reading image files needs Pillow: "
                                       "pip install 'convtrain[viz]'") from None
        probs = probabilities(model, x)
        for p, xi, pr in zip(images, x, probs):
            note = None if invert else brightness_note(xi, model.mean)
            results.append({"source": p, "label": None, "top": top_k(pr, top, model.classes),
                            **({"note": note} if note else {})})
    else:
        split = split or "test"
        x, y = split_examples(model, split, list(indices))
        probs = probabilities(model, x)
        for i, yi, pr in zip(indices, y, probs):
            results.append({"source": f"{split}[{i}]", "label": int(yi),
                            "label_name": model.classes[int(yi)],
                            "top": top_k(pr, top, model.classes)})
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


if __name__ == "__main__":  # pragma: no cover
    main()
