"""The fixture writers of scripts/ (make_cifar10_fixture.py, make_image_folder_fixture.py),
imported by the tests instead of run as commands."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from make_cifar10_fixture import write_cifar10  # noqa: E402
from make_image_folder_fixture import write_image_folder  # noqa: E402

__all__ = ["write_cifar10", "write_image_folder"]
