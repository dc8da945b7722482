"""Data sets: readers (one per `data.dataset`, in readers.READERS), the train / validation / test
split with per-channel statistics, batch order, normalisation and augmentation.

Images are kept as they were stored (uint8, or float32 for float data) in NCHW order; batches are
normalised (and augmented) on the fly:

    splits = load(cfg.data, seed=cfg.seed)
    order = batch_order(len(splits.train), seed=cfg.seed, epoch=e)
    for b in range(num_batches(len(order), batch_size)):
        idx = order[b * batch_size:(b + 1) * batch_size]
        xb = normalize(splits.train.x, splits.mean, splits.std, index=idx)
        xb = augment(xb, cfg.data.augment, np.random.default_rng([seed, step]))

Every problem with the data raises `DataError` with the path and what is wrong.

    raw.py      RawData (what a reader returns) and the checks every reader applies
    idx.py      IDX files and the MNIST / Fashion-MNIST folders
    npz.py      one .npz archive (Keras's mnist.npz layout)
    cifar10.py  the CIFAR-10 binary batches
    folder.py   a folder of image files, one sub-folder per class
    cache.py    the decoded images of a folder kept as an .npz (data.cache)
    readers.py  READERS: data.dataset -> reader
    splits.py   load: validation split, subset, statistics, shape checks -> Splits
    batches.py  batch order, normalisation, augmentation
    kernels.py  the @njit loops behind normalize, augment and channel_stats
"""
from .batches import BatchSchedule, augment, batch_order, is_augmenting, normalize, num_batches
from .idx import (ENV_VAR, FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, IDX_FILES, IDX_TYPES,
                  MNIST_CLASSES, read_idx)
from .npz import NPZ_KEYS
from .raw import MAX_CLASSES, RawData
from .readers import READERS, reader_names
from .splits import Dataset, Splits, channel_stats, load

__all__ = [
    "BatchSchedule", "Dataset", "ENV_VAR", "FASHION_MNIST_CLASSES", "FASHION_MNIST_DIR",
    "IDX_FILES", "IDX_TYPES", "MAX_CLASSES", "MNIST_CLASSES", "NPZ_KEYS", "READERS", "RawData",
    "Splits", "augment", "batch_order", "channel_stats", "is_augmenting", "load", "normalize",
    "num_batches", "read_idx", "reader_names",
]
