"""ONNX export (convtrain/export/, `convtrain export`): onnxruntime runs the exported graph and
must give convtrain's inference forward within 1e-4 relative (of the output's largest magnitude),
layer by layer and for the shipped nets, through a checkpoint like `convtrain eval`."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from convtrain import config as configmod
from convtrain.cli import main
from convtrain.config.common import LayerCommon
from convtrain.config.spec import build_spec
from convtrain.nn.layers.registry import LAYER_TYPES
from convtrain.nn.network import Network
from convtrain.train import checkpoint as ckpt

from conftest import needs_fmnist
from synthetic import write_config

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from convtrain.export import (  # noqa: E402  (after the skip: it needs onnx)
    ExportError, build_model, export_checkpoint)

ROOT = Path(__file__).resolve().parent.parent
REL = 1e-4

# type -> list of (spec options, per-sample input shape): every registered type, the awkward
# geometries included (strides, uneven padding, ceil mode, windows larger than the image).
EXAMPLES = {
    "conv": [({"filters": 3, "size": 3, "pad": 1}, (2, 5, 6)),
             ({"filters": 2, "size": [3, 2], "stride": 2, "pad": [1, 1, 2, 1]}, (3, 7, 7)),
             ({"filters": 4, "size": 5, "pad": "same", "bias": False}, (3, 9, 8))],
    "local": [({"filters": 2, "size": 3}, (2, 5, 4)),
              ({"filters": 2, "size": 2, "stride": 2, "pad": 1}, (1, 4, 6)),
              ({"filters": 3, "size": [3, 2], "pad": [1, 0, 0, 1], "bias": False}, (2, 5, 5))],
    "dense": [({"units": 4}, (3, 2, 2)), ({"units": 3, "bias": False}, (5,))],
    "flatten": [({}, (2, 3, 4))],
    "max_pool": [({"size": 2}, (2, 4, 6)), ({"size": 3, "stride": 2, "pad": 1}, (2, 7, 5)),
                 ({"size": 3, "stride": 2, "ceil": True}, (1, 6, 6)),
                 ({"size": 3, "stride": 2, "pad": "same"}, (2, 8, 7)),
                 ({"size": 2, "floor": True}, (1, 5, 5))],
    "avg_pool": [({"size": 2}, (2, 4, 4)), ({"size": 3, "stride": 2, "pad": 1}, (2, 5, 7)),
                 ({"size": 3, "stride": 2, "ceil": True}, (1, 6, 6)),
                 ({"size": 3, "stride": 2, "ceil": True, "pad": 1}, (2, 8, 8)),
                 ({"size": [2, 3], "stride": [1, 2], "pad": "same"}, (1, 6, 7))],
    "l2_pool": [({"size": 2}, (2, 4, 4)), ({"size": 3, "stride": 2, "pad": 1}, (2, 5, 7)),
                ({"size": 3, "stride": 2, "ceil": True, "eps": 1e-3}, (1, 6, 6))],
    "channel_pool": [({"size": 2}, (4, 3, 3)), ({"size": 3, "op": "l2"}, (6, 2, 3)),
                     ({"size": 2, "op": "avg"}, (6,))],
    "lcn": [({"size": 5}, (3, 7, 6)), ({"size": 9, "window": "box"}, (2, 5, 5)),
            ({"size": 3, "mode": "jarrett"}, (2, 6, 5)), ({"size": 9}, (4, 12, 12)),
            ({"size": 7, "sigma": 1.2, "threshold": 0.5}, (2, 6, 6))],
    "subtractive_norm": [({"size": 5}, (2, 6, 7))],
    "divisive_norm": [({"size": 5}, (2, 6, 7)), ({"size": 7, "mode": "jarrett"}, (1, 5, 6))],
    "relu": [({}, (2, 3, 3)), ({}, (7,))],
    "leaky_relu": [({"slope": 0.1}, (2, 3, 3))],
    "tanh": [({}, (2, 3, 3))],
    "sigmoid": [({}, (2, 3, 3))],
    "abs": [({}, (2, 3, 3))],
    "dropout": [({"rate": 0.5}, (2, 3, 3))],
    "batch_norm": [({}, (3, 4, 4)), ({"eps": 1e-3}, (6,))],
}
CASES = [(t, opts, shape) for t, examples in EXAMPLES.items() for opts, shape in examples]


def assert_close(got, want, rel=REL):
    assert got.shape == want.shape
    err = float(np.max(np.abs(got.astype(np.float64) - want)))
    scale = float(np.max(np.abs(want)))
    assert err <= rel * scale, f"max error {err:.3g} > {rel:g} x {scale:.3g}"


def session(model_bytes):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def run_onnx(model_bytes, pixels):
    sess = session(model_bytes)
    return sess.run(None, {sess.get_inputs()[0].name: pixels.astype(np.float32)})[0]


def one_layer_net(type_, opts, shape, seed=0):
    cls = LAYER_TYPES[type_]
    layer = cls(build_spec(cls.Spec, opts), shape, name=f"{type_}1")
    rng = np.random.default_rng(seed)
    layer.init_params(rng, ("normal", 0.5))
    for key, p in layer.params.items():    # non-trivial biases and batch-norm scales
        if key != "weight":
            p[...] = rng.normal(0.5, 0.3, p.shape)
    for key, b in layer.buffers.items():   # batch norm's running statistics
        b[...] = rng.uniform(0.5, 1.5, b.shape) if key == "running_var" else rng.normal(0, 1, b.shape)
    return Network([layer], [LayerCommon()], shape, np.float32)


# Registered types that have no ONNX equivalent (export refuses them by name): none today.
NOT_EXPORTABLE: set[str] = set()


def test_every_registered_layer_is_exported_and_tested():
    from convtrain.export.layers import EMITTERS
    exported = {cls.type for cls in EMITTERS}
    missing = sorted(set(LAYER_TYPES) - exported - NOT_EXPORTABLE)
    assert not missing, (f"no ONNX emitter for {missing}: add one to convtrain/export/layers.py "
                         "(and an example here), or list the type in NOT_EXPORTABLE")
    assert sorted(exported) == sorted(EXAMPLES)


@pytest.mark.parametrize("type_,opts,shape", CASES,
                         ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(CASES)])
def test_one_layer_matches_convtrain(type_, opts, shape):
    net = one_layer_net(type_, opts, shape)
    c = shape[0]
    model = build_model(net, mean=np.zeros(c), std=np.ones(c), classes=[])
    x = (np.random.default_rng(7).standard_normal((5,) + shape) * 2).astype(np.float32)
    assert_close(run_onnx(model.SerializeToString(), x), net.predict(x))


def test_a_layer_followed_by_relu_exports_the_relu_convtrain_fuses():
    net = Network.build(configmod.loads(
        "input: [2, 6, 6]\nmodel: [{conv: {filters: 3, size: 3}}, relu, {local: 2}, relu, "
        "{dense: 3}]").model, (2, 6, 6), seed=3)
    assert net.relu_fused                  # the convtrain side skips the ReLU layers
    x = np.random.default_rng(1).uniform(0, 1, (4, 2, 6, 6)).astype(np.float32)
    model = build_model(net, mean=[0.3, 0.5], std=[0.2, 0.0], classes=list("abc"))
    from convtrain.train.evaluate import predict_logits
    assert_close(run_onnx(model.SerializeToString(), x), predict_logits(net, x, [0.3, 0.5], [0.2, 0.0]))


def test_softmax_output_and_metadata():
    net = one_layer_net("dense", {"units": 3}, (1, 2, 2))
    model = build_model(net, mean=[0.5], std=[0.25], classes=["cat", "dog", "owl"], softmax=True)
    assert [o.name for o in model.graph.output] == ["probabilities"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", 1, 2, 2]
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["classes"]) == ["cat", "dog", "owl"]
    assert json.loads(props["mean"]) == [0.5] and json.loads(props["std"]) == [0.25]
    assert props["input_shape"] == "1x2x2" and "[0, 1]" in model.doc_string
    x = np.random.default_rng(2).uniform(0, 1, (6, 1, 2, 2)).astype(np.float32)
    p = run_onnx(model.SerializeToString(), x)
    logits = net.predict((x - 0.5) / 0.25)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    assert_close(p, e / e.sum(axis=1, keepdims=True))
    assert model.opset_import[0].version >= 17


def test_a_layer_without_an_equivalent_is_refused_by_name(monkeypatch):
    from convtrain.export import layers as export_layers
    from convtrain.nn.layers.activation import Tanh
    monkeypatch.delitem(export_layers.EMITTERS, Tanh)
    net = Network.build(configmod.loads("input: [4]\nmodel: [{dense: 3}, tanh, {dense: 2}]").model,
                        (4,))
    with pytest.raises(ExportError) as e:
        build_model(net, mean=[0.0], std=[1.0], classes=["a", "b"])
    msg = str(e.value)
    assert msg.startswith("cannot export layer 1 (tanh1: tanh): no ONNX equivalent; exportable:")
    assert "conv" in msg and "lcn" in msg and "tanh," not in msg


# --- the shipped nets, through a checkpoint, against what `convtrain eval` computes ------------

def write_checkpoint(path, cfg_path, net, mean, std, classes):
    text = Path(cfg_path).read_text()
    ckpt.save(str(path), state=net.state_dict(),
              meta={"config": text, "epoch": 0, "step": 0, "input_shape": list(net.input_shape),
                    "mean": [float(v) for v in mean], "std": [float(v) for v in std],
                    "classes": classes})


def check_config(tmp_path, config, pixels_uint8, mean, std, classes):
    """Build the config's net at its seed (initialised, not trained), save it as a checkpoint,
    export it, and compare onnxruntime's logits with eval's forward (predict_logits)."""
    from convtrain.tools.restore import load_for_inference
    from convtrain.train.evaluate import predict_logits
    cfg = configmod.load(str(ROOT / config))
    net = Network.build(cfg.model, tuple(cfg.input), seed=cfg.seed)
    path = tmp_path / "best.npz"
    write_checkpoint(path, ROOT / config, net, mean, std, classes)
    done = export_checkpoint(str(tmp_path), str(tmp_path / "m.onnx"))
    assert done.checkpoint == str(path) and done.output == "logits"
    model = load_for_inference(str(path))
    want = predict_logits(model.net, pixels_uint8, model.mean, model.std)
    got = run_onnx((tmp_path / "m.onnx").read_bytes(), pixels_uint8.astype(np.float32) / 255)
    assert_close(got, want)
    assert np.array_equal(got.argmax(axis=1), want.argmax(axis=1))


@pytest.fixture(scope="module")
def fmnist_test_images():
    from convtrain import data as datamod
    cfg = configmod.load(str(ROOT / "configs/lenet5.yaml"))
    splits = datamod.load(cfg.data, seed=cfg.seed, input_shape=tuple(cfg.input))
    return splits.test.x[:200], splits.mean, splits.std, list(splits.classes)


@needs_fmnist
@pytest.mark.parametrize("config", ["configs/lenet5.yaml", "configs/default.yaml"])
def test_fashion_mnist_nets_match_eval(tmp_path, fmnist_test_images, config):
    x, mean, std, classes = fmnist_test_images
    check_config(tmp_path, config, x, mean, std, classes)


def test_cifar_like_matches_eval_on_synthetic_images(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (64, 3, 32, 32)).astype(np.uint8)
    check_config(tmp_path, "configs/cifar-like.yaml", x, [0.49, 0.48, 0.45], [0.25, 0.24, 0.26],
                 [str(i) for i in range(10)])


# --- the command ---------------------------------------------------------------------------------

def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    cfg = write_config(tmp, epochs=2)
    out = tmp / "run"
    res = run("fit", cfg, "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    return out


def test_cli_exports_a_run_folder_and_a_checkpoint(trained_run, tmp_path):
    res = run("export", trained_run, "--onnx", tmp_path / "m.onnx")
    assert res.exit_code == 0, res.output
    assert "best.npz" in res.output and "m.onnx" in res.output
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")))
    assert oct(os.stat(tmp_path / "m.onnx").st_mode & 0o777) == oct(0o666 & ~_umask())
    res = run("export", trained_run / "last.npz", "--onnx", tmp_path / "p.onnx", "--softmax")
    assert res.exit_code == 0, res.output
    x = np.random.default_rng(0).uniform(0, 1, (3, 1, 8, 8)).astype(np.float32)
    p = run_onnx((tmp_path / "p.onnx").read_bytes(), x)
    assert p.shape == (3, 4) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    assert not list(tmp_path.glob(".export-*"))


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_cli_bad_paths_give_one_clear_error(trained_run, tmp_path):
    cases = [
        ((tmp_path / "nothing.npz", "--onnx", tmp_path / "m.onnx"), "nothing.npz"),
        ((tmp_path, "--onnx", tmp_path / "m.onnx"), "a folder without a checkpoint"),
        ((trained_run, "--onnx", tmp_path / "m.npz"), "must end in .onnx"),
        ((trained_run, "--onnx", tmp_path / "no" / "m.onnx"), "does not exist"),
    ]
    for args, words in cases:
        res = run("export", *args)
        assert res.exit_code == 1, res.output
        assert res.output.startswith("Error: ") and words in res.output, res.output
        assert "Traceback" not in res.output
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a checkpoint")
    res = run("export", garbage, "--onnx", tmp_path / "m.onnx")
    assert res.exit_code == 1 and "garbage.npz" in res.output
    assert not (tmp_path / "m.onnx").exists()
    res = run("export", trained_run)                       # --onnx is required
    assert res.exit_code == 2 and "--onnx" in res.output
