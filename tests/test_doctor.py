"""`convtrain doctor`: passes on healthy configs, fails on a planted backprop bug and on lr 1e3."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from convtrain import config as configmod
from convtrain.tools import doctor
from convtrain.tools.doctor_gradients import suspect_layers
from convtrain.cli import main
from convtrain.tools.gradcheck import TensorCheck
from convtrain.tools.lr_search import TIE
from convtrain.nn.layers.activation import ReLU
from convtrain.nn.layers.registry import LAYER_TYPES
from convtrain.nn.network import Network

from conftest import needs_fmnist
from synthetic import write_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ["gradients", "init", "overfit", "cost"]


def run_doctor(*args):
    result = CliRunner().invoke(main, ["doctor", *map(str, args)])
    return result


def doctor_json(*args):
    result = run_doctor(*args, "--json")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output)


def by_name(report):
    return {c["name"]: c for c in report["checks"]}


def test_doctor_passes_on_the_synthetic_config(tmp_path):
    code, report = doctor_json(write_config(tmp_path))
    assert code == 0
    assert report["status"] == "PASS"
    assert [c["name"] for c in report["checks"]] == NAMES
    for c in report["checks"]:
        assert set(c) >= {"name", "status", "summary", "hint", "details"}
        assert c["status"] == "PASS", c
    checks = by_name(report)
    assert checks["overfit"]["details"]["wrong"] == 0
    assert checks["overfit"]["details"]["subset"] == 64
    layers = checks["init"]["details"]["layers"]
    assert [r["name"] for r in layers] == ["conv1", "relu1", "max_pool1", "dense1"]
    assert layers[1]["dead"] is not None and layers[0]["grad_weight_ratio"] > 0
    assert checks["cost"]["details"]["total_params"] == 4 * 9 + 4 + 4 * 16 * 4 + 4


def test_doctor_text_output_and_lr_check(tmp_path):
    result = run_doctor(write_config(tmp_path), "--lr", "--subset", "32")
    assert result.exit_code == 0, result.output
    for title in ("gradient check", "initialisation health", "overfit a tiny subset",
                  "parameters and FLOPs", "learning-rate search"):
        assert title in result.output
    assert "PASS: 5 PASS" in result.output
    assert "0/32 wrong" in result.output


def test_the_lr_check_reports_the_rate_with_the_lowest_loss(tmp_path):
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("lr: 0.05", "lr: 500.0"))
    code, report = doctor_json(cfg, "--lr", "--subset", "32", "--steps", "20")
    lr = by_name(report)["lr"]
    d = lr["details"]
    done = [t for t in d["trials"] if not t["diverged"] and t["final_loss"] < t["initial_loss"]]
    lowest = min(t["final_loss"] for t in done)
    assert d["chosen"] == min(t["lr"] for t in done if t["final_loss"] <= lowest * (1 + TIE))
    assert d["trials"][0]["lr"] == 1000.0 and d["trials"][0]["diverged"] and d["trials"][0]["why"]
    assert lr["status"] == "WARN" and "above every rate that lowered the loss" in lr["hint"]


@needs_fmnist
@pytest.mark.parametrize("name", ["lenet5", "tiny"])
def test_doctor_passes_on_the_shipped_configs(name):
    code, report = doctor_json(os.path.join(ROOT, "configs", f"{name}.yaml"))
    assert code == 0, report
    assert [c["status"] for c in report["checks"]] == ["PASS"] * 4, report


class DoubledReLU(ReLU):
    """A planted bug: the backward pass returns twice the right gradient."""

    def backward(self, dout, cache):
        return 2 * super().backward(dout, cache)


def test_a_wrong_backward_fails_the_gradient_check(tmp_path, monkeypatch):
    monkeypatch.setitem(LAYER_TYPES, "relu", DoubledReLU)
    code, report = doctor_json(write_config(tmp_path))
    assert code == 1
    assert report["status"] == "FAIL"
    grad = by_name(report)["gradients"]
    assert grad["status"] == "FAIL"
    wrong = {t["name"] for t in grad["details"]["tensors"] if t["max_rel_error"] > 1e-3}
    assert wrong == {"input", "conv1.weight", "conv1.bias"}     # below the broken relu only
    assert "relu1" in grad["details"]["suspects"]
    assert "backward" in grad["hint"]


def test_a_huge_learning_rate_fails_the_overfit_check(tmp_path):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("lr: 0.05", "lr: 1000.0"))
    code, report = doctor_json(path)
    assert code == 1
    checks = by_name(report)
    assert checks["gradients"]["status"] == "PASS"        # the code is fine...
    assert checks["overfit"]["status"] == "FAIL"          # ...the rate is not
    assert checks["overfit"]["details"]["diverged_at"] is not None
    assert checks["overfit"]["details"]["divergence"]      # the shared guard's reason
    assert "lower the learning rate" in checks["overfit"]["hint"]


def test_a_collapsing_init_warns(tmp_path):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("pad: 1}", "pad: 1, init: {normal: 1.0e-4}}"))
    cfg = configmod.load(str(path))
    checks = {c.name: c for c in doctor.run(cfg, steps=20)}
    assert checks["init"].status == "WARN"
    assert "collapses" in checks["init"].summary
    assert checks["gradients"].status in ("PASS", "WARN")   # never blames correct code


def test_missing_data_fails_the_data_checks_but_runs_the_others(tmp_path):
    path = write_config(tmp_path)
    os.unlink(tmp_path / "synth.npz")
    code, report = doctor_json(path)
    assert code == 1
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert status == {"gradients": "PASS", "init": "FAIL", "overfit": "FAIL", "cost": "PASS"}
    assert "cannot load the data" in by_name(report)["init"]["summary"]


def test_suspects_lie_between_the_deepest_failure_and_the_next_correct_layer(tmp_path):
    cfg = configmod.load(str(write_config(tmp_path)))
    net = Network.build(cfg.model, (1, 8, 8), allocate=False)

    def t(name, err):
        return TensorCheck(name, (1,), 1, 0, err, err)

    results = [t("input", 0.5), t("conv1.weight", 0.5), t("conv1.bias", 1e-9),
               t("dense1.weight", 1e-9), t("dense1.bias", 1e-9)]
    assert suspect_layers(net, results) == ["conv1", "relu1", "max_pool1", "dense1"]
    results = [t("input", 0.5), t("conv1.weight", 0.5), t("dense1.weight", 0.5)]
    assert suspect_layers(net, results) == ["dense1", "the loss"]


def test_overall_status():
    def c(s):
        return doctor.Check("x", "x", s, "")
    assert doctor.overall([]) == "PASS"
    assert doctor.overall([c("PASS"), c("WARN")]) == "WARN"
    assert doctor.overall([c("WARN"), c("FAIL"), c("PASS")]) == "FAIL"
    d = doctor.Check("x", "x", "PASS", "", details={"a": np.float32(1.5), "b": float("nan"),
                                                     "c": [np.int64(2)]}).to_dict()
    assert json.loads(json.dumps(d))["details"] == {"a": 1.5, "b": None, "c": [2]}
