"""The training reporter of `fit`: warnings of a run that ended broken reach the person."""
from click.testing import CliRunner

from convtrain.cli import main
from convtrain.cli.console import ConsoleReporter
from convtrain.train import health

from synthetic import write_config


def test_a_warning_is_a_warn_line_even_when_quiet(capsys):
    ConsoleReporter(quiet=True).warning("the network learned nothing")
    assert capsys.readouterr().err == "WARN: the network learned nothing\n"


def test_fit_shows_the_warnings_of_a_dead_run(tmp_path, monkeypatch):
    cfg = write_config(tmp_path, epochs=1)
    dead = health.Health(1.386, {"conv1": 1.0})
    monkeypatch.setattr(health, "measure", lambda net, x, y: dead)
    res = CliRunner().invoke(main, ["fit", str(cfg), "--out", str(tmp_path / "run"), "--quiet"],
                             catch_exceptions=False)
    assert res.exit_code == 0
    warns = [line for line in res.output.splitlines() if line.startswith("WARN: ")]
    assert len(warns) == 2
    assert "learned nothing" in warns[0] and "100% of conv1" in warns[1]
