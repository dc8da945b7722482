"""Checkpoints get the mode of the run's other files (0666 less the umask), not mkstemp's 0600."""
import os
import stat

import numpy as np
import pytest
from click.testing import CliRunner

from convtrain.cli import main
from convtrain.train import checkpoint as ckpt

from synthetic import write_config


@pytest.fixture
def umask():
    """Set a umask for the test, restore the process's own afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_checkpoint_honours_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    path = tmp_path / "c.npz"
    ckpt.save(str(path), state={"w": np.ones(3, np.float32)},
              meta={"config": "model: [dense: 2]", "epoch": 1, "step": 1})
    assert mode(path) == expected
    assert ckpt.load(str(path)).meta.step == 1
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_a_runs_checkpoints_have_the_mode_of_its_other_files(tmp_path, umask):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["fit", str(write_config(tmp_path, epochs=1)), "--out", str(out),
                                    "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert mode(out / "metrics.jsonl") == 0o644
    for name in ("best.npz", "last.npz", "epoch-001.npz", "config.yaml"):
        assert mode(out / name) == 0o644, name
