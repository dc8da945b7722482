"""Batches on the fly: which examples each step uses, their normalisation from the stored
uint8 / float32 images, and the random augmentation of a normalised batch.

    order = batch_order(len(splits.train), seed=cfg.seed, epoch=e)
    for b in range(num_batches(len(order), batch_size)):
        idx = order[b * batch_size:(b + 1) * batch_size]
        xb = normalize(splits.train.x, splits.mean, splits.std, index=idx)
        xb = augment(xb, cfg.data.augment, np.random.default_rng([seed, step]))
"""
from __future__ import annotations

import numpy as np

from . import kernels as _k

# The batch order has a random stream of its own: it never shares a seed sequence with the
# validation split nor with the trainer's np.random.default_rng([seed, step]).
_ORDER_STREAM = 0x6F726472   # 'ordr'


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


def _nchw(x, kept: tuple, problem: str) -> np.ndarray:
    """`x` as a C-contiguous NCHW array for a kernel: dtypes in `kept` as they are, any other
    as float32 (each dtype a kernel sees compiles a specialisation of its own)."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{problem}, got shape {x.shape}")
    if x.dtype not in kept:
        x = x.astype(np.float32)
    return np.ascontiguousarray(x)


def normalize(x: np.ndarray, mean, std, out: np.ndarray | None = None, *,
              index: np.ndarray | None = None) -> np.ndarray:
    """((x / 255 if uint8 else x) - mean[c]) / std[c] as float32 NCHW C-contiguous.

    `index` (optional, int array) gathers x[index] first, fused into the same pass, so a batch
    is normalised straight from the full uint8 training array. `out` (float32, C-contiguous,
    the result's shape) is written and returned when given. A zero std counts as 1."""
    x = _nchw(x, (np.uint8, np.float32), "normalize expects NCHW images")
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


def is_augmenting(aug) -> bool:
    """True when `aug` changes anything (translate, crop_pad, hflip, cutout or noise set)."""
    if aug is None:
        return False
    return bool(getattr(aug, "translate", 0) > 0 or getattr(aug, "crop_pad", 0) > 0
                or getattr(aug, "hflip", False) or getattr(aug, "noise", 0.0) > 0
                or getattr(aug, "cutout", 0) > 0)


def augment(x: np.ndarray, aug, rng: np.random.Generator, *, fill=0.0) -> np.ndarray:
    """A randomly augmented copy of a normalised NCHW batch; `x` is not modified.

    Per sample, in this order (each drawn from `rng` only when enabled, so the result is a
    function of the rng's state):
      translate t: shift by dy, dx uniform in [-t, t];
      crop_pad p:  pad by p and crop back to H x W at a random offset, i.e. a second shift
                   uniform in [-p, p] (applied after the first: pixels the first pushed out
                   stay out);
      hflip:       mirror left-right with probability 0.5;
      cutout s:    set an s x s square centred on a uniform random pixel (clipped at the
                   borders) to 0, the training mean (DeVries & Taylor 2017);
      noise s:     add Gaussian noise of std s (normalised units) to every pixel.
    Uncovered pixels take `fill` (a scalar or (C,) per channel) — by default 0, which after
    normalisation is the training mean; pass `splits.black` to fill with black instead."""
    x = _nchw(x, (np.float32, np.float64), "augment expects an NCHW batch")
    n, c, h, w = x.shape
    t = int(getattr(aug, "translate", 0) or 0) if aug is not None else 0
    p = int(getattr(aug, "crop_pad", 0) or 0) if aug is not None else 0
    hflip = bool(getattr(aug, "hflip", False)) if aug is not None else False
    noise = float(getattr(aug, "noise", 0.0) or 0.0) if aug is not None else 0.0
    cutout = int(getattr(aug, "cutout", 0) or 0) if aug is not None else 0

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
    if cutout > 0:
        out *= _cutout_keep(n, h, w, cutout, rng)
    if noise > 0:
        z = rng.standard_normal(out.shape, dtype=out.dtype)
        z *= out.dtype.type(noise)
        out += z
    return out


def _cutout_keep(n: int, h: int, w: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """(N, 1, H, W) float32 mask, 0 inside each sample's cutout square and 1 elsewhere."""
    cy, cx = rng.integers(0, (h, w), size=(n, 2), dtype=np.int64).T
    top, left = cy - side // 2, cx - side // 2
    rows = np.arange(h)[None, :]
    cols = np.arange(w)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + side)
    return (~(in_rows[:, :, None] & in_cols[:, None, :]))[:, None].astype(np.float32)


def _window(d1: np.ndarray, d2: np.ndarray, size: int) -> np.ndarray:
    """(N, 2) int64 [lo, hi) output range that holds pixels after a shift by d1 then d2, each
    with fill: out[i] = x[i - d1 - d2] when 0 <= i - d2 < size and 0 <= i - d1 - d2 < size."""
    lo = np.maximum(np.maximum(d2, d1 + d2), 0)
    hi = np.minimum(np.minimum(d2, d1 + d2) + size, size)
    hi = np.maximum(hi, lo)
    return np.ascontiguousarray(np.stack([lo, hi], axis=1), dtype=np.int64)
