"""predict on photos of any aspect ratio: padded with the photo's own background colour, and a
light background on a model trained on dark ones gets a note suggesting --invert."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from convtrain.cli import main
from convtrain.data.image_file import background_colour
from convtrain.tools.predict import brightness_note, load_image

from synthetic import write_config

Image = pytest.importorskip("PIL.Image")


def photo(path, size, background=255, ink=20):
    """A dark square object (a third of the short side) centred on a uniform background."""
    w, h = size
    a = np.full((h, w), background, dtype=np.uint8)
    side = min(w, h) // 3
    top, left = (h - side) // 2, (w - side) // 2
    a[top:top + side, left:left + side] = ink
    Image.fromarray(a).save(path)
    return str(path)


@pytest.mark.parametrize("size", [(300, 200), (200, 300), (240, 240)])
def test_padding_has_the_photos_background_colour(tmp_path, size):
    x = load_image(photo(tmp_path / "p.png", size), (1, 28, 28))[0]
    border = np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]])
    assert border.min() > 240                       # white all round: no black bars
    assert brightness_note(x[None], [0.29]) is not None
    dark = np.argwhere(x < 128)                     # the object stays square and centred
    (r0, c0), (r1, c1) = dark.min(axis=0), dark.max(axis=0)
    assert abs((r1 - r0) - (c1 - c0)) <= 1
    assert abs((r0 + r1) / 2 - 13.5) <= 1 and abs((c0 + c1) / 2 - 13.5) <= 1


def test_inverted_photo_is_padded_with_its_inverted_background(tmp_path):
    x = load_image(photo(tmp_path / "p.png", (300, 200)), (1, 28, 28), invert=True)[0]
    assert x[0].max() < 15 and x[:, 0].max() < 15 and x[14, 14] > 200


def test_background_colour_is_the_border_median():
    rgb = np.zeros((6, 9, 3), dtype=np.uint8)
    rgb[...] = (250, 240, 230)
    rgb[2:4, 0] = (0, 0, 0)                         # an object touching the left edge
    assert background_colour(rgb) == (250, 240, 230)
    assert background_colour(np.full((5, 5), 7, dtype=np.uint8)) == 7


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A model trained on dark-background 8x8 images (mean well below 0.5)."""
    tmp = tmp_path_factory.mktemp("predict")
    res = CliRunner().invoke(main, ["fit", str(write_config(tmp, epochs=1)), "--out",
                                    str(tmp / "run"), "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return tmp / "run" / "best.npz"


@pytest.mark.parametrize("size", [(300, 200), (200, 300), (240, 240)])
def test_predict_suggests_invert_for_a_light_photo_of_any_aspect(checkpoint, tmp_path, size):
    path = photo(tmp_path / "light.png", size)
    res = CliRunner().invoke(main, ["predict", str(checkpoint), path], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "background is light" in res.stderr and "try --invert" in res.stderr
    inverted = CliRunner().invoke(main, ["predict", str(checkpoint), path, "--invert"])
    assert inverted.exit_code == 0 and "note:" not in inverted.stderr


def test_no_note_for_a_dark_photo(checkpoint, tmp_path):
    path = photo(tmp_path / "dark.png", (300, 200), background=0, ink=230)
    res = CliRunner().invoke(main, ["predict", str(checkpoint), path, "--json"])
    assert res.exit_code == 0, res.output
    (prediction,) = json.loads(res.stdout)["predictions"]
    assert "note" not in prediction and not res.stderr
