"""IDX files (read_idx) and the folders of four IDX files that hold MNIST and Fashion-MNIST.

The folder comes from data.path, then $CONVTRAIN_DATA, then (Fashion-MNIST only) the folder of
Debian's dataset-fashion-mnist package.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib

import numpy as np

from ..errors import DataError
from .raw import RawData, images, labels

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
ENV_VAR = "CONVTRAIN_DATA"

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MNIST_CLASSES = [str(i) for i in range(10)]

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# IDX type codes (third magic byte) -> big-endian numpy dtypes.
IDX_TYPES = {
    0x08: np.dtype(">u1"),   # unsigned byte
    0x09: np.dtype(">i1"),   # signed byte
    0x0B: np.dtype(">i2"),   # short
    0x0C: np.dtype(">i4"),   # int
    0x0D: np.dtype(">f4"),   # float
    0x0E: np.dtype(">f8"),   # double
}

_CHUNK = 1 << 22             # read gzip payloads 4 MiB at a time


def read_idx(path) -> np.ndarray:
    """Read an IDX file (plain or gzip-compressed, told apart by the magic bytes).

    Returns the array in native byte order with the file's shape: uint8 for type 0x08, int8,
    int16, int32, float32, float64 for 0x09, 0x0B, 0x0C, 0x0D, 0x0E. The payload must be exactly
    as long as the dimensions say (trailing bytes are an error too). The payload is read
    straight into the result array, so the data is held in memory once."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, expected an IDX file")
    compressed = False
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            if compressed:
                limit = 1100 * os.fstat(raw.fileno()).st_size + 4096
                with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                    return _read_idx_stream(f, path, None, limit)
            return _read_idx_stream(raw, path, os.fstat(raw.fileno()).st_size)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except MemoryError:
        raise DataError(f"{path}: not enough memory for the array its header describes") from None
    except (OSError, EOFError, zlib.error) as e:
        kind = "corrupt or truncated gzip stream" if compressed else "cannot read"
        raise DataError(f"{path}: {kind}: {e}") from None


def _read_exact(f, n: int) -> bytes:
    data = f.read(n)
    while len(data) < n:
        more = f.read(n - len(data))
        if not more:
            break
        data += more
    return data


def _read_idx_stream(f, path: str, size: int | None, limit: int | None = None) -> np.ndarray:
    """`size` is the file size for plain files (checked exactly, up front), None for gzip
    streams, whose payload is bounded by `limit` bytes."""
    magic = _read_exact(f, 4)
    if not magic:
        raise DataError(f"{path}: empty file, expected an IDX file")
    if len(magic) < 4:
        raise DataError(f"{path}: truncated header ({len(magic)} of 4 magic bytes)")
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(f"{path}: not an IDX file: the magic number 0x{magic.hex()} does not "
                        f"start with two zero bytes")
    code, ndim = magic[2], magic[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise DataError(f"{path}: unknown IDX type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise DataError(f"{path}: the IDX header declares 0 dimensions")
    dims = _read_exact(f, 4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{path}: truncated header ({4 + len(dims)} of {4 + 4 * ndim} bytes "
                        f"for {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", dims)
    dtype = IDX_TYPES[code]
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    header = 4 + 4 * ndim
    what = f"{'x'.join(map(str, shape))} {dtype.name} payload"
    if size is not None:
        if size < header + nbytes:
            raise DataError(f"{path}: truncated: the header declares a {what} of {nbytes} bytes, "
                            f"the file holds {size - header}")
        if size > header + nbytes:
            raise DataError(f"{path}: {size - header - nbytes} unexpected bytes after the "
                            f"{what} of {nbytes} bytes")
    if limit is not None and nbytes > limit:
        # deflate expands at most ~1032:1, so the stream cannot hold that many bytes
        raise DataError(f"{path}: truncated or corrupt: the header declares a {what} of "
                        f"{nbytes} bytes, more than the compressed file can hold")
    try:
        arr = np.empty(count, dtype=dtype)
    except (MemoryError, ValueError):
        raise DataError(f"{path}: the header declares a {what} of {nbytes} bytes, too large "
                        f"to allocate") from None
    buf = memoryview(arr).cast("B")
    pos = 0
    while pos < nbytes:
        got = f.readinto(buf[pos:min(pos + _CHUNK, nbytes)])
        if not got:
            break
        pos += got
    if pos < nbytes:
        raise DataError(f"{path}: truncated: the header declares a {what} of {nbytes} bytes, "
                        f"the file holds {pos}")
    if size is None:
        # reading past the payload also makes gzip check the stream's CRC and length
        extra = f.read(_CHUNK)
        if extra:
            more = "" if len(extra) < _CHUNK else " or more"
            raise DataError(f"{path}: {len(extra)}{more} unexpected bytes after the {what} of "
                            f"{nbytes} bytes")
    if dtype.itemsize > 1:
        arr = arr.byteswap(inplace=True).view(dtype.newbyteorder("="))
    else:
        arr = arr.view(dtype.newbyteorder("="))
    return arr.reshape(shape)


def _find_idx(folder: str, stem: str) -> str | None:
    """The file for `stem`, plain or .gz; also the 'train-images.idx3-ubyte' spelling."""
    alt = stem.replace("-idx", ".idx", 1)
    for name in (stem, stem + ".gz", alt, alt + ".gz"):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            return p
    return None


def _four_files() -> str:
    return ", ".join(f"{n}[.gz]" for n in IDX_FILES.values())


def _install_hint() -> str:
    return (f"install it with `apt-get install dataset-fashion-mnist` (Debian), or set data.path "
            f"or the {ENV_VAR} environment variable to a folder holding the four IDX files "
            f"({_four_files()})")


def read_fashion_mnist(data, input_shape=None) -> RawData:
    """dataset: fashion-mnist, a folder of the four IDX files; Debian's folder by default."""
    return _read_folder(data, "Fashion-MNIST", FASHION_MNIST_CLASSES, FASHION_MNIST_DIR)


def read_mnist(data, input_shape=None) -> RawData:
    """dataset: mnist, a folder of the four IDX files (no default folder)."""
    return _read_folder(data, "MNIST", MNIST_CLASSES, None)


def _folder(data, default: str | None) -> tuple[str, str]:
    """(folder, origin): data.path, then $CONVTRAIN_DATA, then `default` when there is one."""
    if getattr(data, "path", None):
        return os.path.expanduser(os.fspath(data.path)), "data.path"
    env = os.environ.get(ENV_VAR)
    if env:
        return os.path.expanduser(env), f"${ENV_VAR}"
    if default is not None:
        return default, "the default folder"
    raise DataError(f"dataset {data.dataset} needs a folder: set data.path or the {ENV_VAR} "
                    f"environment variable to a folder holding the four IDX files "
                    f"({_four_files()})")


def _read_folder(data, label: str, classes: list[str], default: str | None) -> RawData:
    folder, origin = _folder(data, default)
    if not os.path.exists(folder):
        raise DataError(f"{label} not found: {folder} ({origin}) does not exist; {_install_hint()}")
    if not os.path.isdir(folder):
        raise DataError(f"{folder} ({origin}) is a file; dataset {data.dataset} reads a folder "
                        f"of IDX files (use dataset: npz for .npz files)")
    paths = {}
    for key, stem in IDX_FILES.items():
        p = _find_idx(folder, stem)
        if p is None:
            raise DataError(f"{label}: {folder} has no {stem} or {stem}.gz; {_install_hint()}")
        paths[key] = p
    parts = []
    for part in ("train", "test"):
        ip, lp = paths[f"{part}_images"], paths[f"{part}_labels"]
        x = images(read_idx(ip), ip)
        y = labels(read_idx(lp), lp)
        if len(x) != len(y):
            raise DataError(f"{ip} holds {len(x)} images but {lp} holds {len(y)} labels")
        parts.append((x, y))
    (x_train, y_train), (x_test, y_test) = parts
    return RawData(x_train, y_train, x_test, y_test, source=folder, classes=list(classes))
