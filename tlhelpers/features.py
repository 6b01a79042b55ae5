"""Run the frozen base once and train heads on its cached feature maps (taught in notebook 01).

With a frozen base, every epoch of ``model.fit`` on images recomputes the same
ResNet50 features. :func:`cached_features` computes them once per split, keeps
them in memory as NumPy arrays and on disk (``build/feature_cache/``), and
returns them the next time, in this notebook or another one, without running
the base. A head trained on them is the same head as one trained on images:
put it on the base (``keras.Model(inputs, head(base_model(inputs)))``) for
evaluation and saving.

The feature maps are kept before pooling, ``(h/32, w/32, 2048)`` per image
(rounded up), so every head, the convolutional one included, can use them.
Memory per image, in RAM and on disk:

=========== ============== =================== ==================
image size  feature map    float32             float16
=========== ============== =================== ==================
224 x 224   7 x 7 x 2048   401,408 B (392 KiB) 200,704 B (196 KiB)
160 x 160   5 x 5 x 2048   204,800 B (200 KiB) 102,400 B (100 KiB)
96 x 96     3 x 3 x 2048    73,728 B  (72 KiB)  36,864 B  (36 KiB)
64 x 64     2 x 2 x 2048    32,768 B  (32 KiB)  16,384 B  (16 KiB)
=========== ============== =================== ==================

So 1,000 training images at 224 x 224 take 401 MB in float32 (201 MB in
float16), times ``1 + augment_copies`` with augmentation, and
:meth:`Features.dataset` holds one more copy while training.
"""

from __future__ import annotations

import os
import time
import warnings
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tlhelpers import feature_cache as cache
from tlhelpers.data import ImageFolder, make_dataset
from tlhelpers.images import PIPELINE_OPTIONS


@dataclass
class Features:
    """What :func:`cached_features` returns.

    Attributes:
        features: ``(n, h/32, w/32, 2048)`` feature maps, ``(n, 7, 7, 2048)`` at 224 x 224,
            float32 or float16; with augmentation the ``n`` images, then each augmented copy.
        labels: ``(n,)`` int32 class indices, in the order of ``folder.files[split]``.
        from_cache: ``True`` when read from the disk cache, ``False`` when just computed.
        path: The cache file.
        key: The cache key (SHA-256 of everything the features depend on).
        copies: ``1 + augment_copies``.
    """

    features: np.ndarray
    labels: np.ndarray
    from_cache: bool
    path: Path
    key: str
    copies: int = 1

    def dataset(self, batch_size: int = 32, shuffle_seed: int | None = None) -> tf.data.Dataset:
        """Return batches of ``(features, labels)`` for ``head.fit``, features as float32.

        ``head.fit(train.features, train.labels, batch_size=...)`` works as well
        and does not copy the arrays.

        Args:
            batch_size: Feature maps per batch.
            shuffle_seed: Shuffle every epoch with this seed; ``None`` keeps the order.
        """
        ds = tf.data.Dataset.from_tensor_slices((self.features, self.labels))
        if shuffle_seed is not None:
            ds = ds.shuffle(len(self.labels), seed=shuffle_seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y))
        return ds.prefetch(2).with_options(PIPELINE_OPTIONS)  # no autotuning: see tlhelpers.images


def default_augmentation(seed: int = 0) -> keras.Sequential:
    """Return the seeded pipeline used for ``augment_copies``: flip, rotate up to 36 degrees, zoom 10 %.

    It works on raw ``[0, 255]`` images ``(batch, height, width, 3)``, before the base.
    """
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(0.1, seed=seed + 1),
        keras.layers.RandomZoom(0.1, seed=seed + 2),
    ], name="augmentation")


# One traced forward pass per base model, shared by every call (tracing ResNet50 takes about a second).
_FORWARD: weakref.WeakKeyDictionary[keras.Model, tf.types.experimental.PolymorphicFunction] = (
    weakref.WeakKeyDictionary())


def _forward_function(base_model: keras.Model) -> tf.types.experimental.PolymorphicFunction:
    """Return ``base_model(images, training=False)`` as a ``tf.function`` traced once for any batch size.

    The batch dimension is left open, so the last, smaller batch of a split
    runs without a second trace and without padding. The function reads the
    model's variables when called, so it follows later changes to the weights.
    """
    if base_model not in _FORWARD:
        spec = tf.TensorSpec((None, *base_model.input_shape[1:]), tf.float32)
        model = weakref.ref(base_model)  # a strong reference here would keep the model alive for ever
        _FORWARD[base_model] = tf.function(lambda images: model()(images, training=False),
                                           input_signature=[spec], autograph=False)
    return _FORWARD[base_model]


def extract_features(
    base_model: keras.Model,
    dataset: tf.data.Dataset,
    augmentation: keras.Layer | None = None,
    progress: bool = True,
    total: int | None = None,
    desc: str = "features",
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``base_model`` over every batch of ``dataset`` once; no cache.

    Args:
        base_model: Images ``(batch, height, width, 3)`` in, feature maps out.
        dataset: Batches of ``(images, labels)``, e.g. ``folder.val_ds``.
        augmentation: Applied to each batch (``training=True``) before the base.
        progress: Show a progress bar (tqdm), counting images.
        total: Images in ``dataset``, for the progress bar.
        desc: The progress bar's label.

    Returns:
        The feature maps ``(n, h/32, w/32, 2048)`` float32 and the labels ``(n,)``, in dataset order.
    """
    forward = _forward_function(base_model)
    features, labels = [], []
    with tqdm(total=total, desc=desc, unit="image", disable=not progress, mininterval=0.5) as bar:
        for images, batch_labels in dataset:
            if augmentation is not None:
                images = augmentation(images, training=True)
            features.append(forward(tf.cast(images, tf.float32)).numpy().astype(np.float32, copy=False))
            labels.append(np.asarray(batch_labels))
            bar.update(len(batch_labels))
    return np.concatenate(features), np.concatenate(labels)


def extraction_batch_size(image_size: tuple[int, int]) -> int:
    """Return the default images per forward pass: as many pixels as 32 images of 224 x 224.

    A forward pass needs memory in proportion to the pixels in the batch (about
    0.4 GB above the model itself for 32 images at 224 x 224, measured on CPU), so
    smaller images fit a larger batch in the same memory; and small images run
    faster per image in larger batches (at 64 x 64 on a 2-core CPU: 4.5 ms per
    image at 32, 3.2 ms at 256, 3.0 ms at 392), while at 224 x 224 the batch size
    makes no difference to speed. The batch size does not change the features.
    Training batches are chosen separately (``Features.dataset(batch_size)``).

    >>> extraction_batch_size((224, 224)), extraction_batch_size((64, 64)), extraction_batch_size((448, 448))
    (32, 392, 8)
    """
    height, width = image_size
    return max(1, 32 * 224 * 224 // (height * width))


def _image_size(base_model: keras.Model, folder: ImageFolder) -> tuple[int, int]:
    size = tuple(base_model.input_shape[1:3])
    loaded = tuple(folder.train_ds.element_spec[0].shape[1:3])
    if None in size or size != loaded:
        raise ValueError(f"the base model takes {size} images but the folder was loaded at {loaded}; "
                         "build both with the same IMAGE_SIZE")
    return int(size[0]), int(size[1])


def _extract_copies(base_model: keras.Model, images: tf.data.Dataset, n: int, dtype: str,
                    augmentation: keras.Layer | None, augment_copies: int, progress: bool, desc: str) -> np.ndarray:
    chunks = []
    for copy in range(1 + augment_copies):
        label = f"{desc}, augmented copy {copy}/{augment_copies}" if copy else desc
        chunk, _ = extract_features(base_model, images, augmentation if copy else None, progress, n, label)
        largest = float(np.abs(chunk).max())
        if largest > np.finfo(dtype).max:
            raise ValueError(f"a feature of magnitude {largest:.3g} does not fit {dtype}; use dtype='float32'")
        chunks.append(chunk.astype(dtype, copy=False))
    return np.concatenate(chunks)


def cached_features(
    base_model: keras.Model,
    folder: ImageFolder,
    split: str = "train",
    *,
    cache_dir: str | os.PathLike | None = None,
    dtype: str = "float32",
    batch_size: int | None = None,
    augment_copies: int = 0,
    augmentation: keras.Layer | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Features:
    """Return the base's feature maps of one split, from the disk cache or computed once.

    The cache key covers everything the features depend on: the base model (its
    configuration, preprocessing included, and a hash of every weight, so
    ``"imagenet"``, a weights file and each random initialisation differ), each
    image file of the split in dataset order (path, label, size, modification
    time), the image size, :data:`tlhelpers.feature_cache.PREPROCESSING`, the TensorFlow and Keras
    versions, ``dtype`` and the augmentation. A changed input gives another key
    and a new extraction. A cache file that cannot be read or fails a check
    (truncated, other key, shape or dtype, checksum) is recomputed with a warning.

    Augmentation: features of augmented images are new every epoch when training
    on images, but fixed once cached. ``augment_copies=K`` caches ``K`` augmented
    copies of each training image next to the original (``K + 1`` times the
    memory; an epoch then sees each image ``K + 1`` times).

    Args:
        base_model: The frozen base: raw RGB ``(batch, h, w, 3)`` in ``[0, 255]`` in,
            ``(batch, h/32, w/32, 2048)`` out, e.g. from :func:`tlhelpers.build_base_model`.
        folder: What :func:`tlhelpers.load_image_folder` returned, at the same image size.
        split: ``"train"`` or ``"val"`` (a key of ``folder.files``).
        cache_dir: The cache folder; default :func:`tlhelpers.feature_cache.default_cache_dir`
            (``build/feature_cache/``, or ``$TLHELPERS_FEATURE_CACHE``).
        dtype: ``"float32"``, or ``"float16"`` for half the memory (about 3 significant digits).
        batch_size: Images per forward pass; default :func:`extraction_batch_size` (32 at
            224 x 224, more for smaller images, at about the same memory).
        augment_copies: Augmented copies of each image to cache (training split only).
        augmentation: The pipeline for them; default :func:`default_augmentation` with ``seed``.
            Pass a newly built, seeded one: its random state is part of the result.
        seed: Seed of the default augmentation.
        progress: Show a progress bar while extracting.

    Returns:
        A :class:`Features` with ``.features``, ``.labels`` and ``.from_cache``.

    Raises:
        ValueError: An unknown split or dtype, negative ``augment_copies``,
            augmentation outside the training split, image sizes that differ, or
            features too large for float16.
    """
    if not folder.files.get(split):
        raise ValueError(f"split {split!r} has no images; the folder has {sorted(folder.files)}")
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype={dtype!r} is not supported; use 'float32' or 'float16'")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size={batch_size!r}: use a positive whole number, or None for the default")
    if augment_copies < 0 or (augment_copies and split != "train"):
        raise ValueError(f"augment_copies={augment_copies} with split {split!r}: use 0, or a positive "
                         "number for the training split only (augmented validation images measure nothing)")
    size = _image_size(base_model, folder)
    files = folder.files[split]
    labels = np.tile(np.array([label for _, label in files], dtype=np.int32), 1 + augment_copies)
    if augment_copies:
        augmentation = augmentation or default_augmentation(seed)
    augmented = {"copies": augment_copies, "seed": seed, "layers": cache.layers_config(augmentation)}
    key = cache.feature_key(base_model, files, size, dtype, augmented if augment_copies else None)
    cache_dir = Path(cache_dir) if cache_dir is not None else cache.default_cache_dir()
    name = f"{split}-{size[0]}x{size[1]}-{dtype}" + (f"-aug{augment_copies}" if augment_copies else "")
    path = cache_dir / f"{name}-{key[:16]}.npz"
    if path.exists():
        try:
            shape = (len(labels), *base_model.output.shape[1:])
            features, _ = cache.load_arrays(path, key, shape, dtype, labels)
            return Features(features, labels, True, path, key, 1 + augment_copies)
        except cache.DamagedCacheError as error:
            warnings.warn(f"feature cache file '{path}' is not usable ({error}); recomputing it", stacklevel=2)

    start = time.perf_counter()
    # Not shuffled: features come in the order of folder.files[split].
    images = make_dataset(files, size, batch_size or extraction_batch_size(size))
    features = _extract_copies(base_model, images, len(files), dtype, augmentation, augment_copies, progress,
                               desc=f"{split} features {size[0]}x{size[1]}")
    root = getattr(folder, "directory", None) or os.path.commonpath([Path(p).parent.parent for p, _ in files])
    record = {"key": key, "split": split, "image_size": list(size), "images": len(files), "root": str(root),
              "copies": 1 + augment_copies, "dtype": dtype, "seconds": round(time.perf_counter() - start, 3),
              "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    cache.save_arrays(path, features, labels, record)
    cache.log_extraction(cache_dir, record)
    return Features(features, labels, False, path, key, 1 + augment_copies)
