"""dataset: cifar10, the CIFAR-10 binary batches: reading, class names, every malformed case,
and `convtrain fit` / `eval` of cifar-like's architecture on the fixture the script writes."""
import json
import os
import pickle
import types
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from convtrain import config as C
from convtrain import data as D
from convtrain.cli import main
from convtrain.data import cifar10
from convtrain.errors import DataError

from fixture_scripts import write_cifar10

ROOT = Path(__file__).resolve().parents[1]


def cfg(path, validation=0, subset=None):
    return types.SimpleNamespace(dataset="cifar10", path=None if path is None else str(path),
                                 layout="nchw", validation=validation, subset=subset)


@pytest.fixture
def batches(tmp_path):
    return Path(write_cifar10(tmp_path / "cifar-10-batches-bin", per_class=4, seed=3))


def error(path) -> str:
    with pytest.raises(DataError) as e:
        D.load(cfg(path), seed=0)
    return str(e.value)


def test_reads_the_fixture(batches):
    s = D.load(cfg(batches, validation=8), seed=0, input_shape=(3, 32, 32))
    assert (len(s.train), len(s.val), len(s.test)) == (32, 8, 20)
    assert s.input_shape == (3, 32, 32) and s.train.x.dtype == np.uint8
    assert s.classes == cifar10.CLASSES and s.source == str(batches)
    assert np.bincount(np.concatenate([s.train.y, s.val.y]), minlength=10).tolist() == [4] * 10
    assert np.bincount(s.test.y, minlength=10).tolist() == [2] * 10


def test_records_are_a_label_byte_then_the_rgb_planes(tmp_path):
    folder = write_cifar10(tmp_path, per_class=1)
    image = np.arange(3072, dtype=np.uint32).astype(np.uint8).reshape(3, 32, 32)
    with open(os.path.join(folder, "test_batch.bin"), "wb") as f:
        f.write(bytes([7]) + image.tobytes() + bytes([2]) + image[::-1].tobytes())
    raw = cifar10.read_cifar10(cfg(folder), None)
    assert raw.y_test.tolist() == [7, 2]
    np.testing.assert_array_equal(raw.x_test[0], image)            # red plane first: CHW
    np.testing.assert_array_equal(raw.x_test[1], image[::-1])
    assert raw.x_train.shape == (10, 3, 32, 32)


def test_the_folder_that_holds_cifar_10_batches_bin_is_accepted(batches):
    raw = cifar10.read_cifar10(cfg(batches.parent), None)
    assert raw.source == str(batches) and len(raw.y_train) == 40


def test_class_names_come_from_batches_meta_txt(batches):
    (batches / "batches.meta.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    assert cifar10.read_cifar10(cfg(batches), None).classes == [f"c{i}" for i in range(10)]
    (batches / "batches.meta.txt").unlink()
    assert cifar10.read_cifar10(cfg(batches), None).classes == cifar10.CLASSES
    (batches / "batches.meta.txt").write_text("a\nb\n")
    assert error(batches) == f"{batches / 'batches.meta.txt'}: 2 class names; CIFAR-10 has 10 (one a line)"


def test_a_truncated_batch_is_named(batches):
    p = batches / "data_batch_3.bin"
    p.write_bytes(p.read_bytes()[:-100])
    assert error(batches) == (f"{p}: truncated or not a CIFAR-10 binary batch: 24,484 bytes is "
                              f"not a whole number of 3073-byte records")
    p.write_bytes(b"")
    assert "data_batch_3.bin: truncated" in error(batches)


def test_a_label_above_9_is_named(batches):
    p = batches / "test_batch.bin"
    b = bytearray(p.read_bytes())
    b[3 * 3073] = 57
    p.write_bytes(bytes(b))
    assert error(batches) == (f"{p}: record 3 has label 57; CIFAR-10 labels are 0..9 (is this "
                              f"CIFAR-100 or another file?)")


@pytest.mark.parametrize("name", ["data_batch_5.bin", "test_batch.bin"])
def test_a_missing_batch_is_named(batches, name):
    (batches / name).unlink()
    msg = error(batches)
    assert msg.startswith(f"{batches / name}: missing CIFAR-10 batch") and "binary version" in msg


def test_the_pickled_python_batches_are_refused_unopened(tmp_path):
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    py = tmp_path / "cifar-10-batches-py"
    py.mkdir()
    for name in ["data_batch_1", "data_batch_2", "test_batch", "batches.meta"]:
        (py / name).write_bytes(pickle.dumps(Evil()))
    for path in (py, tmp_path):
        msg = error(path)
        assert "Python version of CIFAR-10" in msg and "never loads" in msg
        assert cifar10.URL in msg and "binary version" in msg
    assert not marker.exists()


def test_a_missing_or_wrong_path(tmp_path):
    assert error(None).startswith("dataset cifar10 needs data.path")
    assert error(tmp_path / "nope").startswith(f"{tmp_path / 'nope'}: does not exist")
    (tmp_path / "f").write_bytes(b"x")
    assert error(tmp_path / "f").startswith(f"{tmp_path / 'f'}: is a file, not a folder")
    assert error(tmp_path).startswith(f"{tmp_path / 'data_batch_1.bin'}: missing CIFAR-10 batch")


def test_the_input_shape_is_checked(batches):
    with pytest.raises(DataError, match=r"the config's input \(1, 32, 32\) differs from the "
                                        r"data's \(3, 32, 32\)"):
        D.load(cfg(batches), seed=0, input_shape=(1, 32, 32))


def test_the_script_writes_the_fixture(tmp_path, capsys):
    import make_cifar10_fixture
    make_cifar10_fixture.main([str(tmp_path / "o"), "--per-class", "3", "--seed", "1"])
    assert "wrote 30 training images" in capsys.readouterr().out
    names = sorted(os.listdir(tmp_path / "o"))
    assert names == ["batches.meta.txt"] + [f"data_batch_{i}.bin" for i in range(1, 6)] + [
        "test_batch.bin"]
    assert sum(os.path.getsize(tmp_path / "o" / n) for n in names if n.startswith("data")) == \
        30 * 3073


# --- the done-when: fit trains cifar-like on it, eval reads the result ---------------

def cifar_like_config(folder: Path, data: dict, epochs: int = 1) -> Path:
    """configs/cifar-like.yaml with its data section replaced: the same model."""
    cfg = yaml.safe_load((ROOT / "configs" / "cifar-like.yaml").read_text())
    cfg["data"] = {**data, "augment": cfg["data"]["augment"]}
    cfg["train"] = {"epochs": epochs, "batch_size": 32}
    path = folder / "cifar.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert C.load(path).model == C.load(ROOT / "configs" / "cifar-like.yaml").model
    return path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_fit_trains_cifar_like_on_the_binary_batches_then_eval(tmp_path):
    folder = write_cifar10(tmp_path / "cifar", per_class=8, seed=1)
    config = cifar_like_config(tmp_path, {"dataset": "cifar10", "path": "cifar",
                                          "validation": 16, "subset": 64})
    res = run("fit", config, "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert any(rec.get("epoch") == 1 for rec in lines)
    res = run("eval", tmp_path / "run" / "best.npz", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["n"] == 40 and set(out["per_class"]) == set(cifar10.CLASSES)
    assert str(folder) in (tmp_path / "run" / "config.yaml").read_text()
