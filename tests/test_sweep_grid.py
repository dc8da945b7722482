"""A sweep's points: grid files, `random: N` samples, `--set key=v1,v2` (sweep/grid.py)."""
import math

import pytest

from convtrain.errors import ConfigError
from convtrain.sweep import grid


def write(tmp_path, text):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return str(path)


def test_product_of_a_grid_file_and_sets(tmp_path):
    path = write(tmp_path, "# lr first\noptim.lr: [0.01, 0.1]\nmodel[0].conv.filters: [4, 8]\n"
                           "train.epochs: 3\n")
    pts = grid.points(path, ("optim.momentum=0.5,0.9", "model[0].conv.filters=16"))
    assert len(pts) == 2 * 1 * 1 * 2
    assert pts[0] == {"optim.lr": 0.01, "model[0].conv.filters": 16, "train.epochs": 3,
                      "optim.momentum": 0.5}
    assert [p["optim.lr"] for p in pts] == [0.01, 0.01, 0.1, 0.1]


def test_set_values_split_at_top_level_commas():
    assert grid.parse_set_values("optim.lr=1e-3,0.1") == ("optim.lr", [0.001, 0.1])
    assert grid.parse_set_values("input=[1, 8, 8],[3,8,8]") == ("input", [[1, 8, 8], [3, 8, 8]])
    with pytest.raises(ConfigError, match="an empty value"):
        grid.parse_set_values("optim.lr=0.1,")
    with pytest.raises(ConfigError, match="expected key.path=v1,v2"):
        grid.points(None, ("optim.lr",))
    with pytest.raises(ConfigError, match="nothing to sweep"):
        grid.points(None, ())


def test_random_samples_are_deterministic_and_in_range(tmp_path):
    path = write(tmp_path, "random: {samples: 20, seed: 3}\noptim.lr: {loguniform: [0.001, 0.1]}\n"
                           "optim.momentum: {uniform: [0.8, 0.9]}\ntrain.batch_size: [16, 32]\n")
    pts = grid.points(path)
    assert pts == grid.points(path) and len(pts) == 20
    assert all(0.001 <= p["optim.lr"] <= 0.1 and 0.8 <= p["optim.momentum"] <= 0.9 for p in pts)
    assert {p["train.batch_size"] for p in pts} == {16, 32}
    # log-uniform: as many draws below the geometric middle (0.01) as above, roughly
    below = sum(p["optim.lr"] < 0.01 for p in pts)
    assert 4 <= below <= 16
    other = write(tmp_path, "random: {samples: 20, seed: 4}\noptim.lr: {loguniform: [0.001, 0.1]}\n")
    assert [p["optim.lr"] for p in grid.points(other)] != [p["optim.lr"] for p in pts]
    assert all(math.isfinite(p["optim.lr"]) for p in pts)


@pytest.mark.parametrize("text, message", [
    ("optim.lr: []\n", r"grid.yaml:1: optim.lr: an empty list"),
    ("optim.lr: {loguniform: [0.001, 0.1]}\n", r"grid.yaml:1: optim.lr: a range \(loguniform\) "
                                               r"needs `random: N`"),
    ("random: 4\noptim.lr: {loguniform: [0, 0.1]}\n", r"grid.yaml:2: optim.lr.loguniform: needs low > 0"),
    ("random: 4\noptim.lr: {uniform: [0.1, 0.01]}\n", r"optim.lr.uniform: must be \[low, high\]"),
    ("random: 4\noptim.lr: {normal: [0, 1]}\n", r"grid.yaml:2: optim.lr: a list of values or"),
    ("random: 0\noptim.lr: [1]\n", r"grid.yaml:1: random: samples must be an integer >= 1"),
    ("random: {samples: 2, sed: 1}\noptim.lr: [1]\n", r"random.sed: unknown key"),
    ("optim..lr: [1]\n", r"grid.yaml:1: optim..lr: is not a key path"),
    ("[1, 2]\n", r"grid.yaml: a grid file maps key paths"),
])
def test_grid_errors_name_the_file_line_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        grid.points(write(tmp_path, text))


def test_a_huge_product_is_refused(tmp_path):
    path = write(tmp_path, "".join(f"k{i}.x: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" for i in range(5)))
    with pytest.raises(ConfigError, match="use `random: N`"):
        grid.points(path)
