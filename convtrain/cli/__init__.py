"""The command line: one click group; commands parse, call the library and print. No maths here.

Where the commands live:
    train_commands.py   fit, lr-search, gradcheck, doctor   (they take a CONFIG)
    model_commands.py   eval, predict, show, summary, plot  (a model, its checkpoint or its run)
    export_commands.py  export  (a trained network to ONNX)
    sweep_commands.py   sweep, cv  (many trainings of a CONFIG on Dask distributed)
    common.py           what commands share: option types, exit codes, the input shape
    console.py          fit's training reporter (tqdm bar or plain lines)

Adding a command: write it in one of the command modules (a `@click.command`, heavy imports
inside the function) and list it in that module's COMMANDS; a new module also goes into
COMMAND_MODULES below. Errors need no code in the command: the group turns a ConvtrainError into
one `Error:` line and exit status 1 (see `_user_errors`).

Heavy modules (numpy, numba, the layers) are imported inside the commands so that
`convtrain --help` stays fast.
"""
from __future__ import annotations

import contextlib
import sys

import click

from . import export_commands, model_commands, sweep_commands, train_commands
from .common import EXIT_INTERRUPTED
from .console import silence_stdout

COMMAND_MODULES = (train_commands, model_commands, export_commands, sweep_commands)


@contextlib.contextmanager
def _user_errors():
    """ConvtrainError -> one `Error:` line and exit 1; Ctrl-C outside training -> exit 130."""
    from ..errors import ConvtrainError
    try:
        yield
    except ConvtrainError as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:   # before OSError: `convtrain ... | head` is not a failure
        _reader_gone()
    except MemoryError:
        raise click.ClickException("out of memory: lower train.batch_size or the model size") from None
    except OSError as e:   # a folder that cannot be created, a full disk, /proc...
        where = f"{e.filename}: " if e.filename else ""
        raise click.ClickException(f"{where}{e.strerror or e}") from None


def _reader_gone():
    """stdout's reader has left (`convtrain ... | head`): end quietly with status 0, as a
    listing that was cut short is not a failure (fit keeps training: its reporter goes quiet)."""
    silence_stdout()
    sys.exit(0)


class _Group(click.Group):
    """A click group that runs every command inside `_user_errors`."""

    def invoke(self, ctx):
        with _user_errors():
            return super().invoke(ctx)

    def make_context(self, info_name, args, parent=None, **extra):
        try:   # --help and --version print here, before any command runs
            return super().make_context(info_name, args, parent=parent, **extra)
        except BrokenPipeError:
            _reader_gone()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="convtrain")
def main():
    """Train convolutional networks on the CPU from YAML configs.

    \b
    Start with:  convtrain fit configs/default.yaml
    Then:        convtrain eval runs/<name>/best.npz
    """
    from .. import runtime   # before any command imports numpy or a kernel
    for notice in runtime.configure():
        click.echo(f"convtrain: {notice}", err=True)


for _module in COMMAND_MODULES:
    for _command in _module.COMMANDS:
        main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
