"""What the command modules share: option types, exit codes, the input shape of a config."""
from __future__ import annotations

import math

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

set_option = click.option(
    "--set", "sets", multiple=True, metavar="KEY.PATH=VALUE",
    help="Change one config value before the checks (repeatable), e.g. --set optim.lr=0.01 "
         "--set model[0].conv.filters=16 --set 'data.augment={hflip: true}'.")


def input_shape(cfg) -> tuple:
    """The config's `input` when it gives one (no data read), else the data set's shape."""
    if cfg.input is not None:
        return tuple(cfg.input)
    from .. import data as datamod
    return tuple(datamod.load(cfg.data, seed=cfg.seed).input_shape)
