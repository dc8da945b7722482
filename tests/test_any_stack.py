"""`summary` and `gradcheck` take any stack of layers, not only classifiers: the lecture's counting
examples, counted by hand, without allocating; what trains (fit, lr-search, doctor) still needs
class scores at the end."""
import json
import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner

from convtrain import config as configmod
from convtrain.cli import main
from convtrain.errors import ConfigError
from convtrain.nn.network import Network
from convtrain.tools.gradcheck import check_network, run_config_gradcheck

from synthetic import write_config

NOT_CLASS_SCORES = "must end in a vector of class scores (e.g. `- dense: 10`); it ends in shape"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def counts_by_hand():
    """The lecture's examples on a one-channel 200x200 image, as (config, per-layer
    (output shape, weights, biases, FLOPs)). FLOPs are 2 x multiply-adds; an output pixel of a
    window layer takes C * K * K of them."""
    conv_out = 200 - 10 + 1                                  # 100 filters of 10x10, valid: 191
    local_out = conv_out - 5 + 1                             # then 10 local 5x5 filters: 187
    return {
        "conv": ("- conv: {filters: 100, size: 10}",
                 [((100, conv_out, conv_out), 100 * 10 * 10, 100,
                   2 * 100 * conv_out ** 2 * 10 * 10)]),
        # 40,000 hidden units, each with its own 10x10 field: 4M weights
        "local": ("- local: {filters: 1, size: 10, pad: same}",
                  [((1, 200, 200), 200 * 200 * 10 * 10, 200 * 200, 2 * 200 * 200 * 10 * 10)]),
        # 40,000 hidden units fully connected to the 40,000 pixels: 1.6 billion weights
        "dense": ("- dense: 40000",
                  [((40_000,), 40_000 * 40_000, 40_000, 2 * 40_000 * 40_000)]),
        # a stack: filters shared, then unshared (one filter per output pixel and channel)
        "stack": ("- conv: {filters: 100, size: 10}\n  - relu\n  - local: {filters: 10, size: 5}",
                  [((100, conv_out, conv_out), 100 * 10 * 10, 100,
                    2 * 100 * conv_out ** 2 * 10 * 10),
                   ((100, conv_out, conv_out), 0, 0, 100 * conv_out ** 2),
                   ((10, local_out, local_out), local_out ** 2 * 10 * (100 * 5 * 5),
                    10 * local_out ** 2, 2 * 10 * local_out ** 2 * 100 * 5 * 5)]),
    }


EXAMPLES = counts_by_hand()


def config_text(layers):
    return f"input: [1, 200, 200]\nmodel:\n  {layers}\n"


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_summary_counts_the_lecture_examples_without_allocating(name):
    layers, want = EXAMPLES[name]
    tracemalloc.start()
    try:
        net = Network.build(configmod.loads(config_text(layers)).model, (1, 200, 200),
                            allocate=False)
        rows = net.summary_rows()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20                     # the local stack alone holds 874M weights
    assert all(not layer.params for layer in net.layers)
    got = [(tuple(r["output_shape"]), r["weights"], r["biases"], r["flops"]) for r in rows]
    assert got == want
    assert all(r["params"] == r["weights"] + r["biases"] for r in rows)


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_summary_json_of_the_lecture_examples(tmp_path, name):
    layers, want = EXAMPLES[name]
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(config_text(layers))
    res = run("summary", cfg, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    got = [(tuple(r["output_shape"]), r["weights"], r["biases"], r["flops"])
           for r in data["layers"]]
    assert got == want
    assert data["total_params"] == sum(w + b for _, w, b, _ in want)
    assert data["total_flops"] == sum(f for _, _, _, f in want)
    text = run("summary", cfg)
    assert text.exit_code == 0 and f"{want[-1][1]:,}" in text.output


# --- gradcheck: a random projection of the output when there are no class scores ---------------

SMALL_STACKS = [
    "- conv: {filters: 3, size: 3, pad: 1}\n  - relu\n  - lcn: 3\n  - max_pool: 2",
    "- local: {filters: 2, size: 3}\n  - tanh",
    "- conv: {filters: 4, size: 3}\n  - batch_norm\n  - channel_pool: 2\n  - flatten\n"
    "  - dense: 6\n  - sigmoid",                          # a vector, but not the last dense
]


@pytest.mark.parametrize("layers", SMALL_STACKS)
def test_gradcheck_cli_on_stacks_without_class_scores(tmp_path, layers):
    cfg = tmp_path / "stack.yaml"
    cfg.write_text(f"input: [2, 8, 8]\nmodel:\n  {layers}\n")
    res = run("gradcheck", cfg)
    assert res.exit_code == 0, res.output
    assert "PASS" in res.output and "input" in res.output


def conv_stack(text="- conv: {filters: 3, size: 3, pad: 1}\n  - relu\n  - avg_pool: 2"):
    cfg = configmod.loads(f"input: [2, 6, 6]\nmodel:\n  {text}\n")
    return cfg, Network.build(cfg.model, (2, 6, 6), dtype=np.float64, seed=0)


def test_the_projection_loss_is_the_output_against_a_fixed_random_tensor():
    """Without labels the loss is <output, R>: its gradient at the output is R, which the
    gradient check compares with finite differences of that same scalar."""
    _, net = conv_stack("- conv: {filters: 3, size: 3, pad: 1}")
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6))
    results = check_network(net, x, None, seed=4, limit=50)
    assert {r.name for r in results} == {"input", "conv1.weight", "conv1.bias"}
    assert all(r.checked > 0 and r.max_rel_error < 1e-8 for r in results), results
    # the bias gradient of <conv(x), R> is R summed over the batch and the pixels
    projection = np.random.default_rng(4).standard_normal((2, 3, 6, 6))
    np.testing.assert_allclose(net.layers[0].grads["bias"], projection.sum(axis=(0, 2, 3)))


def test_gradcheck_without_class_scores_still_catches_a_wrong_backward(monkeypatch):
    cfg, net = conv_stack()
    layer_cls = type(net.layers[0])
    right = layer_cls.backward

    def off_by_one_percent(self, dout, cache, **kw):
        dx = right(self, dout, cache, **kw)
        self.grads["weight"] *= 1.01
        return dx

    monkeypatch.setattr(layer_cls, "backward", off_by_one_percent)
    results = {r.name: r for r in run_config_gradcheck(cfg, (2, 6, 6))}
    assert results["conv1.weight"].max_rel_error > 1e-3
    assert results["conv1.bias"].ok(1e-6)


def test_gradcheck_of_a_classifier_keeps_the_cross_entropy():
    cfg, net = conv_stack("- conv: {filters: 3, size: 3}\n  - dense: 4")
    assert net.ends_in_class_scores
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 6, 6))
    y = rng.integers(0, 4, size=2)
    want = check_network(net, x, y)
    assert [(r.name, r.max_rel_error) for r in run_config_gradcheck(cfg, (2, 6, 6))] == \
        [(r.name, r.max_rel_error) for r in want]


# --- what trains still needs class scores --------------------------------------------------------

def test_require_class_scores_names_the_source_and_the_shape():
    _, net = conv_stack()
    assert not net.ends_in_class_scores and net.output_shape == (3, 3, 3)
    with pytest.raises(ConfigError, match="x.yaml: the model must end in a vector of class "
                                          r"scores \(e.g. `- dense: 10`\); it ends in shape 3x3x3"):
        net.require_class_scores("x.yaml")


@pytest.mark.parametrize("command", ["fit", "lr-search", "doctor"])
def test_training_commands_refuse_a_model_without_class_scores(tmp_path, command):
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("  - dense: 4\n", ""))
    out = tmp_path / "run"
    res = run(command, cfg, *(["--out", out] if command == "fit" else []))
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and str(cfg) in errors[0], res.output
    assert NOT_CLASS_SCORES + " 4x4x4" in errors[0]
    assert not out.exists() or not list(out.glob("*.npz"))    # nothing trained
