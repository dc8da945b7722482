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
