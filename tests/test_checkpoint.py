import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from convtrain.train import checkpoint as ckpt
from convtrain.errors import CheckpointError

META = {"config": "model: [dense: 2]", "epoch": 1, "step": 10}


def write(tmp_path, **kw):
    path = tmp_path / "c.npz"
    ckpt.save(str(path), state=kw.get("state", {"dense1.weight": np.ones((2, 3), np.float32)}),
              velocities=kw.get("velocities", {"dense1.weight": np.zeros((2, 3), np.float32)}),
              meta=kw.get("meta", META))
    return path


def test_round_trip(tmp_path):
    path = write(tmp_path)
    c = ckpt.load(str(path))
    assert np.array_equal(c.state["dense1.weight"], np.ones((2, 3)))
    assert c.meta.step == 10 and c.meta.config == META["config"]
    with np.load(path) as z:
        assert json.loads(z["__meta__"].tobytes())["format"] == ckpt.FORMAT
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_refuses_to_write_non_finite_state(tmp_path):
    with pytest.raises(CheckpointError, match="not finite"):
        write(tmp_path, state={"w": np.array([1.0, np.nan])})
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("payload,message", [
    (b"", "not a convtrain checkpoint"),
    (b"hello world", "not a convtrain checkpoint"),
    (pickle.dumps({"a": 1}), "pickle"),
    (b"PK\x03\x04garbage", "damaged or truncated"),
])
def test_bad_files(tmp_path, payload, message):
    path = tmp_path / "bad.npz"
    path.write_bytes(payload)
    with pytest.raises(CheckpointError, match=message):
        ckpt.load(str(path))


def test_truncated_checkpoint(tmp_path):
    path = write(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        ckpt.load(str(path))


def test_object_array_is_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, __meta__=np.frombuffer(json.dumps(dict(META, format=ckpt.FORMAT, version=1)).encode(), np.uint8),
             **{"param/w": np.array([{"evil": 1}], dtype=object)})
    with pytest.raises(CheckpointError, match="pickle"):
        ckpt.load(str(path))


def test_wrong_format_and_version(tmp_path):
    for meta, msg in ((dict(META, format="other"), "not a convtrain checkpoint"),
                      (dict(META, format=ckpt.FORMAT, version=99), "version 99")):
        path = tmp_path / "m.npz"
        np.savez(path, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8))
        with pytest.raises(CheckpointError, match=msg):
            ckpt.load(str(path))


def test_missing_and_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        ckpt.load(str(tmp_path / "nope.npz"))
    with pytest.raises(CheckpointError, match="folder"):
        ckpt.load(str(tmp_path))


def test_a_plain_zip_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "z.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(CheckpointError):
        ckpt.load(str(path))


# --- the typed metadata ---------------------------------------------------------------------------

# Metadata as the trainer wrote it before CheckpointMeta existed (format version 1).
OLD_META = {
    "config": "model: [dense: 2]", "name": "x", "epoch": 1, "step": 10, "steps_per_epoch": 10,
    "batch_size": 32, "lr": 0.05, "lr_scale": 0.5, "seed": 0,
    "guard": {"recent": [2.0, 1.5], "retries": 1, "fail_step": 7, "history": [0.1]},
    "best_val_error": 0.25, "best_epoch": 1,
    "epoch_sums": {"loss": 3.5, "errors": 2, "seen": 64, "seconds": 0.5, "divergences": 1},
    "input_shape": [1, 8, 8], "mean": [0.5], "std": [0.25], "classes": ["a", "b"],
    "rng": "counter-based", "format": ckpt.FORMAT, "version": 1,
}


def test_old_metadata_loads_into_the_typed_class_and_writes_back_the_same_keys(tmp_path):
    path = tmp_path / "old.npz"
    np.savez(path, __meta__=np.frombuffer(json.dumps(OLD_META).encode(), np.uint8))
    m = ckpt.load(str(path)).meta
    assert isinstance(m, ckpt.CheckpointMeta)
    assert (m.step, m.lr_scale, m.best_val_error, m.classes) == (10, 0.5, 0.25, ["a", "b"])
    assert m.guard == ckpt.GuardRecord(recent=[2.0, 1.5], retries=1, fail_step=7, history=[0.1])
    assert m.epoch_sums == ckpt.EpochSums(loss=3.5, errors=2, seen=64, seconds=0.5, divergences=1)
    written = dict(m.to_json(), format=ckpt.FORMAT, version=1)
    assert written == OLD_META
    again = write(tmp_path, meta=m)
    with np.load(again) as z:
        assert json.loads(z["__meta__"].tobytes()) == OLD_META


def test_a_minimal_checkpoint_gets_defaults_and_require_names_what_is_missing(tmp_path):
    c = ckpt.load(str(write(tmp_path)))
    assert c.meta.lr_scale == 1.0 and c.meta.guard == ckpt.GuardRecord()
    assert c.meta.input_shape is None
    with pytest.raises(CheckpointError, match=r"c\.npz: malformed metadata: no 'input_shape'"):
        c.require("input_shape", "mean")


@pytest.mark.parametrize("change, field", [
    ({"step": -1}, "'step' must not be negative"),
    ({"epoch": 1.5}, "'epoch' must be an integer"),
    ({"config": None}, "'config' missing"),
    ({"lr_scale": 0}, "'lr_scale' must be > 0"),
    ({"lr": "fast"}, "'lr' must be a finite number"),
    ({"batch_size": 0}, "'batch_size' must be >= 1"),
    ({"guard": {"retries": "x"}}, "'guard.retries' must be an integer"),
    ({"guard": {"recent": [1.0, True]}}, "'guard.recent' must be a finite number"),
    ({"epoch_sums": {"seen": 1.5}}, "'epoch_sums.seen' must be an integer"),
    ({"epoch_sums": []}, "'epoch_sums' must be a JSON object"),
    ({"input_shape": [1, 8]}, "'input_shape': the input shape"),
    ({"mean": [1e39]}, "'mean': the normalisation must be finite"),
    ({"std": [0.5, 0.5]}, "'std': the normalisation does not match the input"),
    ({"classes": "ab"}, "'classes' must be a list"),
])
def test_malformed_metadata_names_the_file_and_the_field(tmp_path, change, field):
    meta = {k: v for k, v in dict(OLD_META, **change).items() if v is not None}
    path = tmp_path / "bad.npz"
    np.savez(path, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    with pytest.raises(CheckpointError) as err:
        ckpt.load(str(path))
    assert str(err.value).startswith(f"{path}: malformed metadata: {field}")
