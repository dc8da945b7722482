"""Commands that take a CONFIG: fit (train), lr-search, gradcheck, doctor."""
from __future__ import annotations

import json
import os
import shlex
import sys

import click

from .common import EXIT_INTERRUPTED, POSITIVE, input_shape, set_option

AUTO_LR = "auto"


class _RateOrAuto(click.ParamType):
    """A positive finite number, or `auto`: the rate lr-search chooses."""
    name = "LR|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.strip().lower() == AUTO_LR:
            return AUTO_LR
        try:
            return POSITIVE.convert(value, param, ctx)
        except click.BadParameter:
            self.fail(f"{value!r} is not a learning rate: give a positive number (e.g. 0.05) "
                      f"or `{AUTO_LR}` (run lr-search first and train at the rate it chooses)",
                      param, ctx)


# --- fit --------------------------------------------------------------------------------------

@click.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--epochs", type=click.IntRange(min=1), help="Override train.epochs.")
@click.option("--seed", type=click.IntRange(min=0), help="Override the config's seed.")
@click.option("--lr", type=_RateOrAuto(),
              help="Override optim.lr; `auto`: run lr-search first (its defaults, on the "
                   "config's training set) and train at the rate it chooses.")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default runs/<name>).")
@click.option("--resume", is_flag=False, flag_value="auto", default=None, metavar="[auto|PATH]",
              help="Continue from a checkpoint; `auto` (or no value) uses <out>/last.npz if present.")
@click.option("--fresh", is_flag=True, help="Start over; an earlier run in the folder is moved aside.")
@click.option("--quiet", "-q", is_flag=True, help="No per-epoch lines.")
@set_option
@click.option("--print-config", is_flag=True,
              help="Print the resolved config (every default filled in, after --set and the "
                   "other options) and exit without training.")
def fit(config_path, epochs, seed, lr, out, resume, fresh, quiet, sets, print_config):
    """Train the network a config describes; checkpoints go to the run folder."""
    from .. import config as configmod
    from ..tools import precompile
    from ..train.session import run_fit
    from ..train.trainer import Interrupted
    from .console import ConsoleReporter, echo_note

    if out is not None and not out.strip():
        raise click.BadParameter("must not be empty", param_hint="--out")
    if resume is not None and not resume.strip():
        raise click.BadParameter("must not be empty (give a checkpoint, `auto`, or no value)",
                                 param_hint="--resume")
    if resume and fresh:
        raise click.UsageError("pass --resume or --fresh, not both")
    auto = lr == AUTO_LR
    cfg = configmod.with_overrides(configmod.load(config_path, sets=sets), epochs=epochs,
                                   seed=seed, lr=None if auto else lr)
    if print_config:
        click.echo(configmod.dump(cfg), nl=False)
        return
    try:
        result = run_fit(cfg, config_path=config_path, out_dir=out, resume=resume, fresh=fresh,
                         reporter=ConsoleReporter(quiet=quiet),
                         auto_lr=_auto_rate if auto else None, compile_helper=precompile,
                         on_note=echo_note)
    except Interrupted as stop:
        click.echo(f"\ninterrupted: checkpoint written to {stop.path}\n"
                   f"resume with: convtrain fit {config_path} --resume {stop.path}"
                   + (f" --out {out}" if out else "") + _given(epochs=epochs, seed=seed, lr=lr)
                   + "".join(f" --set {shlex.quote(s)}" for s in sets), err=True)
        sys.exit(EXIT_INTERRUPTED)
    best = result.best_val_error
    done = "done, with the warnings above" if result.warnings else "done"
    if best is None:
        click.echo(f"{done}: {result.steps} steps; checkpoints in {result.run_dir}")
    else:
        shown = f"{100 * best:.2f}%" if result.metric == "validation error" else f"{best:.4f}"
        click.echo(f"{done}: best {result.metric} {shown} at epoch {result.best_epoch}; "
                   f"best checkpoint {result.best_checkpoint}")
    _maybe_plot(result.run_dir)


def _given(**options) -> str:
    """The override options a run was started with, as they go on a resume command line."""
    return "".join(f" --{name} {value:g}" if isinstance(value, float) else f" --{name} {value}"
                   for name, value in options.items() if value is not None)


def _auto_rate(cfg, splits, checkpoint) -> float:
    """`fit --lr auto`: the rate lr-search chooses; a resumed run keeps the rate it started with."""
    from .. import config as configmod

    if checkpoint is not None:
        rate = configmod.loads(checkpoint.meta.config, source=checkpoint.path, stored=True).optim.lr
        click.echo(f"learning rate: {rate:g}, the rate this run started with (--lr auto)")
        return rate
    result = _search(cfg, splits)
    click.echo(f"learning rate: {result.chosen:g}, chosen by lr-search (--lr auto; "
               f"the config says {cfg.optim.lr:g})")
    return result.chosen


def _maybe_plot(out_dir):
    from ..errors import ConvtrainError
    from ..tools import charts, viz
    try:
        click.echo(f"curves: {charts.plot_curves(out_dir)}")
        filters = viz.save_run_filters(out_dir)
        if filters:
            click.echo(f"filters: {filters}")
    except ImportError:   # the optional `viz` extra is not installed
        pass
    except ConvtrainError as e:   # e.g. a resumed run that had nothing left to train
        click.echo(f"note: no pictures: {e}", err=True)


# --- gradcheck --------------------------------------------------------------------------------

@click.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--batch", type=click.IntRange(min=1, max=64), default=2, show_default=True)
@click.option("--tol", type=POSITIVE, default=1e-6, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--samples", type=click.IntRange(min=1), default=20, show_default=True,
              help="Entries checked per tensor (sampled when a tensor is larger).")
@set_option
def gradcheck(config_path, batch, tol, seed, samples, sets):
    """Compare back-propagated gradients with finite differences (float64)."""
    from .. import config as configmod
    from ..fmt import table
    from ..tools.gradcheck import run_config_gradcheck

    cfg = configmod.load(config_path, sets=sets)
    results = run_config_gradcheck(cfg, input_shape(cfg), batch=batch, seed=seed, samples=samples)
    rows = [[r.name, "x".join(map(str, r.shape)), r.checked, r.kinks, f"{r.max_rel_error:.2e}",
             "ok" if r.ok(tol) else "FAIL"] for r in results]
    click.echo(table(["tensor", "shape", "checked", "kinks", "max rel error", ""], rows, "llrrrl"))
    bad = [r.name for r in results if not r.ok(tol)]
    if bad:
        click.echo(f"FAIL: {len(bad)} tensor(s) above tolerance {tol:g}: {', '.join(bad)}", err=True)
        sys.exit(1)
    click.echo(f"PASS: every gradient within {tol:g}")


# --- lr-search --------------------------------------------------------------------------------

@click.command("lr-search")
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
              help="Write a copy of the config with the chosen rate and its own run name "
                   "(only those lines change).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Draw loss against rate into this PNG (default with --write: "
                   "<OUT>-lr-search.png beside it).")
@set_option
def lr_search(config_path, subset, start, min_lr, steps, epochs, write_path, plot_path, sets):
    """Find a learning rate (Bottou 2012): train the same initial net for the same budget at
    each rate of a halving grid from --start; choose the one that lowers the subset loss most."""
    from .. import config as configmod
    from .. import data as datamod
    from ..config.edit import retarget
    from ..tools import lr_search as search_mod

    if min_lr > start:
        raise click.BadParameter(f"--min {min_lr:g} is above --start {start:g}", param_hint="--min")
    for path, option in ((write_path, "--write"), (plot_path, "--plot")):
        _check_output(path, config_path, option)   # fail now, not after the search
    cfg = configmod.load(config_path, sets=sets)
    carried = _changes_for_the_copy(sets) if write_path else {}
    splits = datamod.load(cfg.data, seed=cfg.seed, input_shape=cfg.input)
    result = _search(cfg, splits, subset=subset, start=start, min_lr=min_lr, steps=steps,
                     epochs=epochs)
    if write_path:
        name = search_mod.own_name(cfg, write_path, result.chosen)
        text = retarget(cfg, write_path, {**carried, "optim.lr": result.chosen, "name": name})
        with open(write_path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        click.echo(f"wrote {write_path} (optim.lr: {result.chosen:g}, name: {name})")
        plot_path = plot_path or os.path.splitext(write_path)[0] + "-lr-search.png"
    if plot_path:
        _plot_search(result, plot_path, cfg.name)


def _changes_for_the_copy(sets) -> dict:
    """lr-search --write: the --set changes the copy carries. The copy is CONFIG's own text
    edited in place (config/edit.py), which takes one value of a section (`optim.momentum=0.5`)
    or of the top (`seed=3`); anything else is refused before the search, not after it."""
    from ..config.overrides import parse_set

    changes = {}
    for text in sets:
        setting = parse_set(text)
        if (len(setting.path) > 2 or any(isinstance(key, int) for key in setting.path)
                or isinstance(setting.value, (list, dict))):
            raise click.BadParameter(f"{setting.key}: --write can carry only single values of "
                                     "a section (e.g. --set optim.momentum=0.5) into the copy; "
                                     "edit CONFIG for this one", param_hint="--set")
        changes[setting.key] = setting.value
    return changes


def _check_output(path, config_path, option):
    if not path:
        return
    if os.path.exists(path) and os.path.exists(config_path) and os.path.samefile(path, config_path):
        raise click.BadParameter("would overwrite CONFIG itself; write the copy elsewhere",
                                 param_hint=option)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise click.BadParameter(f"{folder} is not a folder", param_hint=option)


def _search(cfg, splits, **options):
    """Run lr-search with its trials shown as they end, then the table -> the SearchResult."""
    from ..fmt import table
    from ..tools import lr_search as search_mod

    n = min(options.get("subset", search_mod.SUBSET), len(splits.train.y))
    start = options.get("start", search_mod.START)
    click.echo(f"lr-search: {n:,} training images; rates from {start:g}, halving")

    def show(trial):   # progress on stderr; the table below is the result
        click.echo(f"  lr {trial.lr:<10g} loss {trial.final_loss:.4f}"
                   + (" (diverged)" if trial.diverged else ""), err=True)

    result = search_mod.search(cfg, splits, on_trial=show, **options)
    rows = [[f"{t.lr:g}", _loss(t.initial_loss), _loss(t.final_loss), _verdict(t),
             "<- chosen" if t.lr == result.chosen else ""] for t in result.trials]
    click.echo(table(["rate", "initial loss", "final loss", "diverged", ""], rows, "rrrll"))
    click.echo(f"{result.stopped}; {result.steps} steps per rate")
    click.echo(f"chosen learning rate: {result.chosen:g} (the lowest loss on the subset)")
    return result


def _loss(value):
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def _verdict(trial):
    if trial.diverged:
        return f"yes: {trial.why} at step {trial.steps + 1}"
    return "no" if trial.ok else "no (loss did not fall)"


def _plot_search(result, out, title):
    try:
        from ..tools import charts
        click.echo(f"plot: {charts.plot_lr_search(result, out, title)}")
    except ImportError:
        click.echo("note: no plot (it needs matplotlib: pip install 'convtrain[viz]')", err=True)


# --- doctor -----------------------------------------------------------------------------------

@click.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--subset", type=click.IntRange(min=1), default=64, show_default=True,
              help="Training images the overfit check must learn by heart.")
@click.option("--steps", type=click.IntRange(min=1), default=300, show_default=True,
              help="Step budget of the overfit check.")
@click.option("--lr", "lr_check", is_flag=True, help="Also run the learning-rate search check.")
@click.option("--verbose", "-v", is_flag=True, help="Per-layer tables for every check.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@set_option
def doctor(config_path, subset, steps, lr_check, verbose, as_json, sets):
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

    from .. import config as configmod
    from ..tools import doctor as doc

    cfg = configmod.load(config_path, sets=sets)
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
    from ..fmt import fmt_flops, fmt_int, table

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
        indent(table(["rate", "initial loss", "final loss", "diverged", ""],
                     [[f"{t['lr']:.4g}", f"{t['initial_loss']:.4f}", num(t["final_loss"], ".4f"),
                       f"yes: {t['why']}" if t["diverged"] else "no",
                       "<- chosen" if t["lr"] == d["chosen"] else ""] for t in d["trials"]],
                     "rrrll"))


COMMANDS = [fit, lr_search, gradcheck, doctor]
