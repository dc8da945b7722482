"""The training reporter of `fit`: a tqdm bar per epoch on a terminal, plain lines otherwise.

Number and table formatting lives in convtrain/fmt.py."""
from __future__ import annotations

import functools
import os
import sys

import click


def silence_stdout() -> None:
    """Point stdout at devnull once its reader has gone (`convtrain ... | head`): later writes,
    and Python's last flush at exit, cannot fail (nor print "Exception ignored ...")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):   # a stdout without a file descriptor (tests' CliRunner)
        pass


def _keeps_training(method):
    """A reporter method whose stdout reader may leave mid-run (`fit ... | head`): the run goes
    on without output rather than dying after its last checkpoint."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except BrokenPipeError:
            silence_stdout()
            self.tty, self.quiet, self.bar = False, True, None
    return wrapper


class ConsoleReporter:
    """A tqdm bar per epoch on a terminal; one plain line per epoch otherwise."""

    def __init__(self, *, quiet: bool = False):
        self.tty = sys.stdout.isatty() and not quiet
        self.quiet = quiet
        self.bar = None

    @_keeps_training
    def start(self, trainer):
        epoch = trainer.step // trainer.steps_per_epoch
        if not self.quiet:
            click.echo(f"training {trainer.cfg.name}: {trainer.cfg.train.epochs} epochs x "
                       f"{trainer.steps_per_epoch} steps, batch {trainer.batch_size}, "
                       f"{len(trainer.splits.train.y):,} training images"
                       + (f", resuming at epoch {epoch + 1} step {trainer.step}" if trainer.step else ""))

    def _bar(self, trainer):
        if self.bar is None and self.tty:
            from tqdm import tqdm
            epoch = trainer.step // trainer.steps_per_epoch
            done = trainer.step % trainer.steps_per_epoch
            self.bar = tqdm(total=trainer.steps_per_epoch, initial=done, file=sys.stdout,
                            desc=f"epoch {epoch + 1}/{trainer.cfg.train.epochs}", leave=False,
                            dynamic_ncols=True, unit="step")
        return self.bar

    @_keeps_training
    def step(self, trainer, loss, lr):
        bar = self._bar(trainer)
        if bar is not None:
            bar.update(1)
            if trainer.step % 10 == 0:
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}", refresh=False)

    @_keeps_training
    def epoch(self, trainer, row):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.quiet:
            return
        val = ("" if row["val_error"] is None else
               f"  val loss {row['val_loss']:.4f} error {100 * row['val_error']:.2f}%")
        speed = f"  {row['images_per_s']:,.0f} img/s" if row["images_per_s"] else ""
        div = f"  divergences {row['divergences']}" if row["divergences"] else ""
        click.echo(f"epoch {row['epoch']:>3}/{trainer.cfg.train.epochs}  train loss "
                   f"{row['train_loss']:.4f} error {100 * row['train_error']:.2f}%{val}  "
                   f"lr {row['lr']:.3g}{speed}{div}")

    def event(self, message):
        if self.bar is not None:
            self.bar.write(message)
        else:
            click.echo(message, err=True)

    def warning(self, message):
        """A run that ended broken: shown even with --quiet."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        click.secho(f"WARN: {message}", fg="yellow", err=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def echo_note(note) -> None:
    """A training session's note (train/session.py's Note): where the run resumes on stdout,
    the rest on stderr, a changed config as `note: ...`."""
    if note.kind == "resuming":
        click.echo(note.message)
    elif note.kind == "changed":
        click.echo(f"note: {note.message}", err=True)
    else:
        click.echo(note.message, err=True)
