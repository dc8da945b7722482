"""Model selection on Dask distributed: sweep (a grid of configs) and cv (K-fold
cross-validation), the logic in convtrain/sweep/."""
from __future__ import annotations

import sys

import click

from .common import EXIT_INTERRUPTED
from .train_commands import _check_output


def _cluster_options(command):
    """--scheduler, --workers, --out, --resume: what sweep and cv share."""
    for decorator in reversed((
        click.option("--scheduler", metavar="tcp://HOST:PORT",
                     help="Run the trials on this Dask cluster (`dask scheduler` + `dask "
                          "worker`); by default a local cluster sized to this machine."),
        click.option("--workers", type=click.IntRange(min=1),
                     help="Local cluster: this many workers (default: one per core, at most one "
                          "per trial); the cores are shared out among them as numba threads."),
        click.option("--out", type=click.Path(file_okay=False),
                     help="The sweep's folder (default runs/<name>/<sweep|cv>-<id>)."),
        click.option("--resume", is_flag=True,
                     help="Continue the same sweep: finished trials are kept, the others run "
                          "(an interrupted one from its last checkpoint)."),
    )):
        command = decorator(command)
    return command


@click.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--grid", "grid_path", type=click.Path(dir_okay=False),
              help="A grid file: key paths and the values to try, or `random: N` and ranges.")
@click.option("--set", "sets", multiple=True, metavar="KEY=V1,V2,...",
              help="Values to try for one key path, e.g. --set optim.lr=0.01,0.1 or --set "
                   "model[0].conv.filters=16,32 (repeatable; the product is swept).")
@click.option("--cv", "folds", type=click.IntRange(min=2),
              help="Cross-validate every config on K folds of the training set.")
@click.option("--write-best", type=click.Path(dir_okay=False),
              help="Write the best config here: CONFIG with the swept keys changed.")
@_cluster_options
def sweep(config_path, grid_path, sets, folds, write_best, scheduler, workers, out, resume):
    """Train CONFIG once per point of a grid and rank the results by validation error."""
    _check_cluster_options(scheduler, workers)
    from ..sweep import grid, results, runner
    points = grid.points(grid_path, sets)
    if write_best:   # refused now, not after the sweep ran
        _check_output(write_best, config_path, "--write-best")
        results.check_best_keys(dict.fromkeys(k for point in points for k in point), write_best)
    p = runner.plan(config_path, points, folds=folds, out=out)
    summary = _run(p, scheduler, workers, resume)
    if write_best:
        _write_best(p, summary, write_best)


@click.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="K: train K times, each time holding out another fold for validation.")
@_cluster_options
def cv(config_path, folds, scheduler, workers, out, resume):
    """K-fold cross-validation of CONFIG: mean and std of the validation error."""
    _check_cluster_options(scheduler, workers)
    from ..sweep import runner
    p = runner.plan(config_path, [{}], folds=folds, out=out, kind="cv")
    _run(p, scheduler, workers, resume)


COMMANDS = [sweep, cv]


def _check_cluster_options(scheduler, workers):
    if scheduler and workers:   # an existing cluster has the workers `dask worker` started
        raise click.UsageError("--workers sizes the local cluster; with --scheduler the "
                               "cluster's workers are those started with `dask worker`")


def _run(p, scheduler, workers, resume):
    """Prepare the folder, run the trials not done yet, print and write the results."""
    from ..sweep import cluster, runner
    done = runner.prepare(p, resume=resume)
    todo = len(p.trials) - len(done)
    click.echo(f"{p.kind}: {len(p.trials)} trials in {p.folder}"
               + (f" ({len(done)} finished already)" if done else ""))
    rows = done
    if todo:
        try:
            with cluster.connect(scheduler, trials=todo, workers=workers) as (client, where):
                click.echo(f"running on {where}")
                if not scheduler:
                    _warm(p, done)
                progress = _Progress(len(p.trials), len(done))
                try:
                    rows = runner.execute(p, client, done, progress.update)
                finally:
                    progress.close()
        except KeyboardInterrupt:
            click.echo(f"\ninterrupted: finished trials are kept in {p.folder}\n"
                       f"continue with the same command and --resume", err=True)
            sys.exit(EXIT_INTERRUPTED)
    summary = runner.finish(p, rows)
    click.echo(_table(summary, p))
    note = _ranking_note(summary)
    if note:
        click.echo(note)
    click.echo(f"results: {p.folder}/results.csv")
    return summary


def _warm(p, done):
    """Compile the kernels once into the shared cache: the local workers are up but idle, no
    trial is submitted until this returns."""
    from .. import config as configmod
    from ..sweep import cluster
    finished = {row["index"] for row in done}
    cluster.warm_kernel_cache(configmod.loads(t.config_text, source=t.config_path)
                              for t in p.trials if t.index not in finished)


class _Progress:
    """One line per finished trial; a tqdm bar under them on a terminal."""

    def __init__(self, total: int, done: int):
        self.bar = None
        if sys.stdout.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=done, unit="trial", leave=False)

    def update(self, row: dict):
        line = _trial_line(row)
        if self.bar is not None:
            self.bar.write(line)
            self.bar.update(1)
        else:
            click.echo(line)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _trial_line(row: dict) -> str:
    from ..sweep.results import describe_point
    what = describe_point(row["point"]) or "the config"
    if row.get("fold") is not None:
        what += f" fold {row['fold']}"
    if row["status"] != "ok":
        return f"{row['trial']}  {what}  FAILED: {row.get('error')}"
    err = row["val_error"]
    shown = (f"validation error {100 * err:.2f}%" if err is not None
             else _no_validation(row.get("best_loss")))
    extra = f", {row['seconds']:.1f} s" if row.get("seconds") is not None else ""
    if row.get("resumed_from_step"):
        extra += f", resumed at step {row['resumed_from_step']}"
    return f"{row['trial']}  {what}  {shown}{extra}"


def _table(summary, p) -> str:
    from ..fmt import table
    from ..sweep.results import format_value
    keys = p.keys
    headers = ["rank", *keys, "val error" + (" (mean ± std)" if p.folds else ""), "trials"]
    rows = []
    for r in summary:
        if r["val_error"] is None and r["error"] is None:
            err = _no_validation(r.get("best_loss"))
        elif r["val_error"] is None:
            err = "failed: " + _shorten(r["error"] or "", 50)
        else:
            err = f"{100 * r['val_error']:.2f}%"
            if r["val_error_std"] is not None:
                err += f" ± {100 * r['val_error_std']:.2f}"
            if r["failed"]:
                err += f" ({r['failed']} failed)"
        trials = r["trials"][0] if len(r["trials"]) == 1 else f"{r['trials'][0]}..{r['trials'][-1]}"
        rows.append([r["rank"], *(format_value(r["point"][k]) for k in keys), err, trials])
    return table(headers, rows, "r" + "l" * (len(headers) - 1))


def _no_validation(loss) -> str:
    """A trial or config trained without a validation split: its loss is not an error rate."""
    return "no validation set" + ("" if loss is None else f" (training loss {loss:.4f})")


def _ranking_note(summary) -> str | None:
    """Under the table when some configs have no validation error: what their order means."""
    if all(r["val_error"] is not None or r["error"] is not None for r in summary):
        return None
    return ("ranked by validation error; configs trained without a validation split "
            "(data.validation: 0) come after, ordered by training loss, which is not a "
            "validation error")


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3].rstrip() + "..."


def _write_best(p, summary, out_path):
    from ..sweep import results
    top = results.best(summary)
    if top is None:
        raise click.ClickException("no config finished every trial with a validation error: "
                                   "nothing to write")
    results.write_best(p.base, top["point"], out_path)
    click.echo(f"best config ({results.describe_point(top['point'])}) written to {out_path}")

