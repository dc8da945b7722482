"""Data sets: IDX / npz readers, the train/validation/test split, per-channel statistics,
batch order, normalisation and augmentation.

Images are kept as they were stored (uint8, or float32 for float data) in NCHW order; batches are
normalised (and augmented) on the fly:

    splits = load(cfg.data, seed=cfg.seed)
    order = batch_order(len(splits.train), seed=cfg.seed, epoch=e)
    for b in range(num_batches(len(order), batch_size)):
        idx = order[b * batch_size:(b + 1) * batch_size]
        xb = normalize(splits.train.x, splits.mean, splits.std, index=idx)
        xb = augment(xb, cfg.data.augment, np.random.default_rng([seed, step]))

Every problem with the data raises `DataError` with the path and what is wrong.
"""
from __future__ import annotations

import dataclasses
import gzip
import math
import os
import struct
import zipfile
import zlib

import numpy as np

from ..errors import DataError
from . import kernels as _k

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

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
MAX_CLASSES = 100_000         # a label beyond this is a mistake (and K x K confusion matrices)

# IDX type codes (third magic byte) -> big-endian numpy dtypes.
IDX_TYPES = {
    0x08: np.dtype(">u1"),   # unsigned byte
    0x09: np.dtype(">i1"),   # signed byte
    0x0B: np.dtype(">i2"),   # short
    0x0C: np.dtype(">i4"),   # int
    0x0D: np.dtype(">f4"),   # float
    0x0E: np.dtype(">f8"),   # double
}

# Separate random streams: the split and the batch order never share a seed sequence with each
# other nor with the trainer's np.random.default_rng([seed, step]).
_SPLIT_STREAM = 0x73706C74   # 'splt'
_ORDER_STREAM = 0x6F726472   # 'ordr'

_CHUNK = 1 << 22             # read gzip payloads 4 MiB at a time


# ------------------------------------------------------------------------------------------------
# Containers
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(eq=False)
class Dataset:
    """Images `x` (N, C, H, W) uint8 or float32 (as stored), labels `y` (N,) int64."""
    x: np.ndarray
    y: np.ndarray
    classes: list[str]

    def __post_init__(self):
        if self.x.ndim != 4 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise ValueError(f"Dataset needs x (N, C, H, W) and y (N,), got {self.x.shape} "
                             f"and {self.y.shape}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """Per-sample shape (C, H, W)."""
        return tuple(int(d) for d in self.x.shape[1:])


@dataclasses.dataclass(eq=False)
class Splits:
    """The three splits. `mean` and `std` (C,) float32 come from the training split only, in
    units of the scaled images (uint8 / 255); `std` is the population standard deviation."""
    train: Dataset
    val: Dataset
    test: Dataset
    classes: list[str]
    mean: np.ndarray
    std: np.ndarray
    input_shape: tuple[int, int, int]
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def black(self) -> np.ndarray:
        """(C,) float32: the normalised value of a zero (black) pixel, a possible `fill` for
        `augment`."""
        std = np.where(self.std == 0, np.float32(1), self.std)
        return (-self.mean / std).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# IDX
# ------------------------------------------------------------------------------------------------
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


def _install_hint() -> str:
    names = ", ".join(f"{n}[.gz]" for n in IDX_FILES.values())
    return (f"install it with `apt-get install dataset-fashion-mnist` (Debian), or set data.path "
            f"or the {ENV_VAR} environment variable to a folder holding the four IDX files "
            f"({names})")


def _idx_folder(data) -> tuple[str, str]:
    """(folder, origin) for the named IDX data sets: data.path, then $CONVTRAIN_DATA, then the
    Debian package's folder (fashion-mnist only)."""
    if getattr(data, "path", None):
        return os.path.expanduser(os.fspath(data.path)), "data.path"
    env = os.environ.get(ENV_VAR)
    if env:
        return os.path.expanduser(env), f"${ENV_VAR}"
    if data.dataset == "fashion-mnist":
        return FASHION_MNIST_DIR, "the default folder"
    names = ", ".join(f"{n}[.gz]" for n in IDX_FILES.values())
    raise DataError(f"dataset mnist needs a folder: set data.path or the {ENV_VAR} environment "
                    f"variable to a folder holding the four IDX files ({names})")


def _load_idx_folder(data) -> tuple[tuple, tuple, str]:
    folder, origin = _idx_folder(data)
    label = "Fashion-MNIST" if data.dataset == "fashion-mnist" else "MNIST"
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
    out = []
    for part in ("train", "test"):
        ip, lp = paths[f"{part}_images"], paths[f"{part}_labels"]
        x = _check_images(read_idx(ip), ip, "nchw")
        y = _check_labels(read_idx(lp), lp)
        if len(x) != len(y):
            raise DataError(f"{ip} holds {len(x)} images but {lp} holds {len(y)} labels")
        out.append((x, y))
    return out[0], out[1], folder


# ------------------------------------------------------------------------------------------------
# Checks shared by the readers
# ------------------------------------------------------------------------------------------------
def _check_images(x: np.ndarray, where: str, layout: str) -> np.ndarray:
    """(N, H, W) or (N, C, H, W) / (N, H, W, C) -> NCHW, uint8 kept, floats as float32."""
    if x.ndim == 3:
        x = x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])
    elif x.ndim == 4:
        if layout == "nhwc":
            x = x.transpose(0, 3, 1, 2)
    else:
        raise DataError(f"{where}: images have {x.ndim} dimensions {x.shape}; expected "
                        f"(N, H, W) or (N, C, H, W)" + (" (layout: nhwc: (N, H, W, C))"
                                                       if layout == "nhwc" else ""))
    if min(x.shape[1:]) < 1:
        raise DataError(f"{where}: images of shape {x.shape[1:]} are empty")
    kind = x.dtype.kind
    if x.dtype == np.uint8:
        pass
    elif kind == "f":
        x = x.astype(np.float32, copy=False)
        if x.size and not np.isfinite(x.sum(dtype=np.float64)):
            raise DataError(f"{where}: images hold NaN or infinite values")
    elif kind in "iu":
        lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
        if lo < 0 or hi > 255:
            raise DataError(f"{where}: integer images of dtype {x.dtype} must lie in 0..255 "
                            f"(got {lo}..{hi}); store uint8 or floats")
        x = x.astype(np.uint8)
    else:
        raise DataError(f"{where}: images of dtype {x.dtype}; expected uint8 or floating point")
    return np.ascontiguousarray(x)


def _check_labels(y: np.ndarray, where: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{where}: labels have shape {y.shape}; expected one integer class "
                        f"index per example, shape (N,)")
    if y.dtype.kind not in "iu":
        raise DataError(f"{where}: labels must be integers, got dtype {y.dtype}")
    if y.size and int(y.min()) < 0:
        raise DataError(f"{where}: negative label {int(y.min())}")
    if y.size and int(y.max()) >= MAX_CLASSES:
        raise DataError(f"{where}: label {int(y.max())} is not a class index (labels are "
                        f"0 .. K-1, for at most {MAX_CLASSES:,} classes)")
    return y.astype(np.int64)


# ------------------------------------------------------------------------------------------------
# npz
# ------------------------------------------------------------------------------------------------
def _load_npz(data) -> tuple[tuple, tuple, str, list[str] | None]:
    path = getattr(data, "path", None)
    if not path:
        raise DataError("dataset npz needs data.path: an .npz file with x_train, y_train, "
                        "x_test and y_test (Keras's mnist.npz layout)")
    path = os.path.expanduser(os.fspath(path))
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder; dataset npz reads one .npz file (use dataset: "
                        f"mnist or fashion-mnist for a folder of IDX files)")
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    layout = getattr(data, "layout", "nchw") or "nchw"
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if not head:
            raise DataError(f"{path}: empty file, expected an .npz archive")
        if head[:1] == b"\x80":
            raise DataError(f"{path}: is a pickle; pickles are refused (they can run code): "
                            f"save the arrays with numpy.savez")
        if head[:2] == b"PK":
            pass
        elif head[:4] == b"\x93NUM":
            raise DataError(f"{path}: is a single .npy array; expected an .npz archive with "
                            f"x_train, y_train, x_test and y_test")
        else:
            raise DataError(f"{path}: not an .npz (zip) archive")
        # np.load(path) leaks its file handle when the zip is corrupt: open the file ourselves
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            keys = set(z.files)
            missing = [k for k in NPZ_KEYS if k not in keys]
            if missing:
                raise DataError(f"{path}: missing key(s) {', '.join(missing)} (has: "
                                f"{', '.join(sorted(keys)) or 'nothing'}); expected x_train, "
                                f"y_train, x_test, y_test")
            arrays = {}
            for k in NPZ_KEYS + (("classes",) if "classes" in keys else ()):
                arrays[k] = _npz_member(z, k, path)
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{path}: not enough memory to load it") from None
    except (OSError, EOFError, ValueError, zlib.error, zipfile.BadZipFile, KeyError) as e:
        raise DataError(f"{path}: corrupt or truncated .npz archive: {e}") from None

    parts = []
    for part in ("train", "test"):
        xk, yk = f"x_{part}", f"y_{part}"
        x = _check_images(arrays.pop(xk), f"{path}: {xk}", layout)
        y = _check_labels(arrays.pop(yk), f"{path}: {yk}")
        if len(x) != len(y):
            raise DataError(f"{path}: {xk} holds {len(x)} examples but {yk} holds {len(y)}")
        parts.append((x, y))
    classes = None
    if "classes" in arrays:
        c = arrays["classes"]
        if c.ndim != 1 or c.dtype.kind not in "US":
            raise DataError(f"{path}: classes must be a 1-D array of strings, got {c.dtype} "
                            f"{c.shape}")
        classes = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                   for v in c.tolist()]
    return parts[0], parts[1], path, classes


def _npz_member(z, key: str, path: str) -> np.ndarray:
    try:
        return z[key]
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise DataError(f"{path}: {key} is an object array (a pickle); pickles are refused "
                            f"(they can run code): store numeric arrays") from None
        raise


# ------------------------------------------------------------------------------------------------
# load
# ------------------------------------------------------------------------------------------------
def load(data, *, seed: int, input_shape=None) -> Splits:
    """Read the data set `data` (the config's data section) and split it.

    Validation is a seeded random hold-out of `data.validation` training examples; `data.subset`
    then keeps the first N of the remaining ones (in file order). Mean and std per channel come
    from that final training split, after scaling uint8 images by 1/255."""
    name = data.dataset
    classes = None
    if name in ("fashion-mnist", "mnist"):
        (xtr, ytr), (xte, yte), source = _load_idx_folder(data)
        classes = list(FASHION_MNIST_CLASSES if name == "fashion-mnist" else MNIST_CLASSES)
    elif name == "npz":
        (xtr, ytr), (xte, yte), source, classes = _load_npz(data)
    else:
        raise DataError(f"unknown dataset {name!r}; known: fashion-mnist, mnist, npz")

    if len(xtr) == 0:
        raise DataError(f"{source}: the training set is empty")
    shape = tuple(int(d) for d in xtr.shape[1:])
    if tuple(xte.shape[1:]) != shape:
        raise DataError(f"{source}: training images are {_fmt(shape)} but test images are "
                        f"{_fmt(xte.shape[1:])}")
    if input_shape is not None and tuple(int(d) for d in input_shape) != shape:
        hint = ("; the arrays look channels-last: set data.layout: nhwc"
                if tuple(input_shape) == (shape[2], shape[0], shape[1]) else "")
        raise DataError(f"{source}: the config's input {_fmt(input_shape)} differs from the "
                        f"data's {_fmt(shape)} (C, H, W){hint}")

    top = max(int(ytr.max()), int(yte.max()) if len(yte) else -1)
    if classes is None:
        classes = [str(i) for i in range(top + 1)]
    if top >= len(classes):
        raise DataError(f"{source}: label {top} is out of range for {len(classes)} classes "
                        f"({', '.join(classes)})")

    ntr = len(xtr)
    nval = int(getattr(data, "validation", 0) or 0)
    if nval < 0:
        raise DataError(f"data.validation must be >= 0, got {nval}")
    if nval >= ntr:
        raise DataError(f"{source}: data.validation = {nval} leaves no training examples "
                        f"(the training set has {ntr}); use at most {ntr - 1}")
    held = np.zeros(ntr, dtype=bool)
    if nval:
        rng = np.random.default_rng([_SPLIT_STREAM, int(seed)])
        held[rng.choice(ntr, size=nval, replace=False)] = True
    keep = np.flatnonzero(~held)
    subset = getattr(data, "subset", None)
    if subset is not None:
        subset = int(subset)
        if subset < 1:
            raise DataError(f"data.subset must be >= 1, got {subset}")
        if subset > len(keep):
            raise DataError(f"{source}: data.subset = {subset} but only {len(keep)} training "
                            f"examples remain after holding out {nval} for validation")
        keep = keep[:subset]
    val_idx = np.flatnonzero(held)
    if len(keep) == ntr:
        train = Dataset(xtr, ytr, classes)
    else:
        train = Dataset(np.ascontiguousarray(xtr[keep]), ytr[keep], classes)
    val = Dataset(np.ascontiguousarray(xtr[val_idx]), ytr[val_idx], classes)
    del xtr, ytr
    test = Dataset(xte, yte, classes)
    mean, std = channel_stats(train.x)
    return Splits(train=train, val=val, test=test, classes=classes, mean=mean, std=std,
                  input_shape=shape, source=source)


def _fmt(shape) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and population std of NCHW images (uint8 scaled by 1/255), as (C,)
    float32 arrays. Two passes in float64 (the second centred on the first's mean)."""
    n, c = x.shape[:2]
    x3 = np.ascontiguousarray(x).reshape(n, c, -1)
    count = x3.shape[0] * x3.shape[2]
    if count == 0:
        return np.zeros(c, np.float32), np.ones(c, np.float32)
    part = np.empty((n, c, 2), dtype=np.float64)
    _k.channel_moments(x3, np.zeros(c, dtype=np.float64), part)
    center = part[:, :, 0].sum(axis=0) / count
    _k.channel_moments(x3, center, part)
    s1 = part[:, :, 0].sum(axis=0) / count
    s2 = part[:, :, 1].sum(axis=0) / count
    mean = center + s1
    var = np.maximum(s2 - s1 * s1, 0.0)
    std = np.sqrt(var)
    if x.dtype == np.uint8:
        mean, std = mean / 255.0, std / 255.0
    return mean.astype(np.float32), std.astype(np.float32)


# ------------------------------------------------------------------------------------------------
# batches
# ------------------------------------------------------------------------------------------------
def batch_order(n: int, *, seed: int, epoch: int) -> np.ndarray:
    """The permutation (int64) of `n` training examples for `epoch`: a pure function of
    (seed, epoch), so a resumed run continues mid-epoch bit-identically."""
    rng = np.random.default_rng([_ORDER_STREAM, int(seed), int(epoch)])
    return rng.permutation(int(n)).astype(np.int64, copy=False)


def num_batches(n: int, batch_size: int) -> int:
    """Batches per epoch, the last partial batch included."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return -(-int(n) // int(batch_size))


class BatchSchedule:
    """Which examples a training step uses: a pure function of (seed, step), with the epoch's
    permutation drawn once per epoch. Shared by the trainer, lr-search and doctor."""

    def __init__(self, n: int, batch_size: int, *, seed: int):
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)
        self.per_epoch = num_batches(self.n, self.batch_size)
        self._epoch, self._order = None, None

    def indices(self, step: int) -> np.ndarray:
        """Sorted example indices of `step` (sorted: the gather then reads memory in order)."""
        epoch, b = divmod(int(step), self.per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, batch_order(self.n, seed=self.seed, epoch=epoch)
        return np.sort(self._order[b * self.batch_size:(b + 1) * self.batch_size])


def normalize(x: np.ndarray, mean, std, out: np.ndarray | None = None, *,
              index: np.ndarray | None = None) -> np.ndarray:
    """((x / 255 if uint8 else x) - mean[c]) / std[c] as float32 NCHW C-contiguous.

    `index` (optional, int array) gathers x[index] first, fused into the same pass, so a batch
    is normalised straight from the full uint8 training array. `out` (float32, C-contiguous,
    the result's shape) is written and returned when given. A zero std counts as 1."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"normalize expects NCHW images, got shape {x.shape}")
    if x.dtype != np.uint8 and x.dtype != np.float32:
        x = x.astype(np.float32)
    x = np.ascontiguousarray(x)
    n, c, h, w = x.shape
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    if mean.shape != (c,) or std.shape != (c,):
        raise ValueError(f"mean and std must have {c} entries, got {mean.shape} and {std.shape}")
    std = np.where(std == 0, 1.0, std)
    unit = 1.0 / 255.0 if x.dtype == np.uint8 else 1.0
    scale = (unit / std).astype(np.float32)
    shift = (-mean / std).astype(np.float32)
    if index is None:
        idx = np.arange(n, dtype=np.int64)
    else:
        idx = np.ascontiguousarray(index, dtype=np.int64).reshape(-1)
        if idx.size and (int(idx.min()) < -n or int(idx.max()) >= n):
            raise IndexError(f"index out of range for {n} examples")
        if idx.size and int(idx.min()) < 0:
            idx = np.where(idx < 0, idx + n, idx)
    b = len(idx)
    if out is None:
        out = np.empty((b, c, h, w), dtype=np.float32)
    elif (out.shape != (b, c, h, w) or out.dtype != np.float32
          or not out.flags.c_contiguous or not out.flags.writeable):
        raise ValueError(f"out must be a writable C-contiguous float32 array of shape "
                         f"{(b, c, h, w)}, got {out.dtype} {out.shape}")
    if b:
        _k.normalize_gather(x.reshape(n, c, h * w), idx, scale, shift,
                            out.reshape(b, c, h * w))
    return out


# ------------------------------------------------------------------------------------------------
# augmentation
# ------------------------------------------------------------------------------------------------
def is_augmenting(aug) -> bool:
    """True when `aug` changes anything (translate, crop_pad, hflip or noise set)."""
    if aug is None:
        return False
    return bool(getattr(aug, "translate", 0) > 0 or getattr(aug, "crop_pad", 0) > 0
                or getattr(aug, "hflip", False) or getattr(aug, "noise", 0.0) > 0)


def augment(x: np.ndarray, aug, rng: np.random.Generator, *, fill=0.0) -> np.ndarray:
    """A randomly augmented copy of a normalised NCHW batch; `x` is not modified.

    Per sample, in this order (each drawn from `rng` only when enabled, so the result is a
    function of the rng's state):
      translate t: shift by dy, dx uniform in [-t, t];
      crop_pad p:  pad by p and crop back to H x W at a random offset, i.e. a second shift
                   uniform in [-p, p] (applied after the first: pixels the first pushed out
                   stay out);
      hflip:       mirror left-right with probability 0.5;
      noise s:     add Gaussian noise of std s (normalised units) to every pixel.
    Uncovered pixels take `fill` (a scalar or (C,) per channel) — by default 0, which after
    normalisation is the training mean; pass `splits.black` to fill with black instead."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"augment expects an NCHW batch, got shape {x.shape}")
    if x.dtype != np.float32 and x.dtype != np.float64:
        x = x.astype(np.float32)
    x = np.ascontiguousarray(x)
    n, c, h, w = x.shape
    t = int(getattr(aug, "translate", 0) or 0) if aug is not None else 0
    p = int(getattr(aug, "crop_pad", 0) or 0) if aug is not None else 0
    hflip = bool(getattr(aug, "hflip", False)) if aug is not None else False
    noise = float(getattr(aug, "noise", 0.0) or 0.0) if aug is not None else 0.0

    if t > 0 or p > 0 or hflip:
        dy1 = dx1 = dy2 = dx2 = np.zeros(n, dtype=np.int64)
        if t > 0:
            dy1, dx1 = rng.integers(-t, t + 1, size=(2, n), dtype=np.int64)
        if p > 0:
            off = rng.integers(0, 2 * p + 1, size=(2, n), dtype=np.int64)
            dy2, dx2 = p - off[0], p - off[1]
        flip = rng.random(n) < 0.5 if hflip else np.zeros(n, dtype=bool)
        rows = _window(dy1, dy2, h)
        cols = _window(dx1, dx2, w)
        fillc = np.broadcast_to(np.asarray(fill, dtype=x.dtype).reshape(-1), (c,))
        out = np.empty_like(x)
        _k.shift_flip(x, np.ascontiguousarray(dy1 + dy2), np.ascontiguousarray(dx1 + dx2),
                      rows, cols, np.ascontiguousarray(flip), np.ascontiguousarray(fillc), out)
    else:
        out = x.copy()
    if noise > 0:
        z = rng.standard_normal(out.shape, dtype=out.dtype)
        z *= out.dtype.type(noise)
        out += z
    return out


def _window(d1: np.ndarray, d2: np.ndarray, size: int) -> np.ndarray:
    """(N, 2) int64 [lo, hi) output range that holds pixels after a shift by d1 then d2, each
    with fill: out[i] = x[i - d1 - d2] when 0 <= i - d2 < size and 0 <= i - d1 - d2 < size."""
    lo = np.maximum(np.maximum(d2, d1 + d2), 0)
    hi = np.minimum(np.minimum(d2, d1 + d2) + size, size)
    hi = np.maximum(hi, lo)
    return np.ascontiguousarray(np.stack([lo, hi], axis=1), dtype=np.int64)
