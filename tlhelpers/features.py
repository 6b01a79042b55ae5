"""Run the frozen base once and train heads on its cached feature maps (taught in notebook 04).

With a frozen base, every epoch of ``fit`` on images recomputes the same ResNet50 features.
:func:`cached_features` computes them once per split and saves them in an ``.npz`` file, where the
next call, in this notebook or another, finds them. Its name holds a SHA-256 of everything the
features depend on: the base (configuration and every weight), each image file (path, label, size,
modification time), the image size, the dtype and the augmentation; change one and you get a new
file, never an old answer. A file that cannot be read (truncated, failing zip's CRC check) or does
not match is computed again, with a warning. Maps are kept before pooling: 392 KiB per image at 224.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tlhelpers.data import ImageFolder, make_dataset
from tlhelpers.runtime import default_dir

CACHE_ENV = "TLHELPERS_FEATURE_CACHE"


@dataclass
class Features:
    """What :func:`cached_features` returns.

    Attributes:
        features: ``(n, h/32, w/32, 2048)`` float32 or float16; with augmentation, the images then each copy.
        labels: ``(n,)`` int32 class indices, in the order of ``folder.files[split]``.
        from_cache: ``True`` when read from the disk cache, ``False`` when just computed.
        path: The cache file; its name ends with the start of ``key``, the SHA-256 of what the features depend on.
        key: The cache key.
    """

    features: np.ndarray
    labels: np.ndarray
    from_cache: bool
    path: Path
    key: str

    def dataset(self, batch_size: int = 32, shuffle_seed: int | None = None) -> tf.data.Dataset:
        """Return batches of ``(features, labels)``, reshuffled every epoch unless ``shuffle_seed=None``.
        float16 features stay float16 here; a float32 head casts them at its input, exactly."""
        ds = tf.data.Dataset.from_tensor_slices((self.features, self.labels))
        if shuffle_seed is not None:
            ds = ds.shuffle(len(self.labels), seed=shuffle_seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def default_augmentation(seed: int = 0) -> keras.Sequential:
    """Return the seeded pipeline used for ``augment_copies``: flip, rotate up to 36 degrees, zoom 10 %."""
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(0.1, seed=seed + 1),
        keras.layers.RandomZoom(0.1, seed=seed + 2),
    ], name="augmentation")


def extraction_batch_size(image_size: tuple[int, int]) -> int:
    """Return the images per forward pass: as many pixels (so about as much memory) as 32 at 224 x 224.

    >>> extraction_batch_size((224, 224)), extraction_batch_size((64, 64)), extraction_batch_size((448, 448))
    (32, 392, 8)
    """
    return max(1, 32 * 224 * 224 // (image_size[0] * image_size[1]))


# One traced forward pass per base model, for any batch size (model.predict traces again whenever the batch
# size changes, and tracing ResNet50 takes seconds). It refers to the model weakly, so the model can be freed.
_FORWARD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _extract(base_model: keras.Model, images: tf.data.Dataset, augmentation: keras.Layer | None, progress: bool):
    if base_model not in _FORWARD:
        model, spec = weakref.ref(base_model), tf.TensorSpec((None, *base_model.input_shape[1:]), tf.float32)
        _FORWARD[base_model] = tf.function(lambda x: model()(x, training=False), input_signature=[spec])
    if augmentation is not None:
        images = images.map(lambda x, y: (augmentation(x, training=True), y))
    batches = tqdm(images, desc="features", unit="batch", disable=not progress)
    return np.concatenate([np.asarray(_FORWARD[base_model](x), dtype=np.float32) for x, _ in batches])


def _without_names(config: Any) -> Any:
    """A Keras config without layer names, which differ between two builds of the same model."""
    if isinstance(config, dict):
        names = ("name", "keras_history", "input_layers", "output_layers", "trainable")
        return {k: _without_names(v) for k, v in config.items() if k not in names}
    return [_without_names(v) for v in config] if isinstance(config, list | tuple) else config


def _model_hash(model: keras.Model) -> str:
    """SHA-256 of the model's configuration (its preprocessing included) and of every weight's value."""
    digest = hashlib.sha256(json.dumps(_without_names(model.get_config()), default=str).encode())
    for weight in model.weights:
        digest.update(np.ascontiguousarray(tf.convert_to_tensor(weight)))  # reads the values without a copy
    return digest.hexdigest()


def cache_key(base_model: keras.Model, files: list[tuple[Path, int]], dtype: str, augmentation: Any) -> str:
    """Return the SHA-256 of everything the features of ``files`` depend on (see the module's docstring)."""
    images = [(str(Path(p).resolve()), label, Path(p).stat().st_size, Path(p).stat().st_mtime_ns) for p, label in files]
    parts = [_model_hash(base_model), images, base_model.input_shape, dtype, _without_names(augmentation)]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def _load(path: Path, labels: np.ndarray, shape: tuple, dtype: str) -> np.ndarray:
    try:
        with np.load(path) as stored:
            features, stored_labels = stored["features"], stored["labels"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot read it: {error}") from None
    if features.shape != shape or features.dtype != dtype or not np.array_equal(stored_labels, labels):
        raise ValueError(f"it holds {features.dtype} features {features.shape}, expected {dtype} {shape}")
    return features


def _save(path: Path, features: np.ndarray, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # renamed when complete: never half a file
    try:
        np.savez(temporary, features=features, labels=labels)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def cached_features(base_model: keras.Model, folder: ImageFolder, split: str = "train", *,
                    cache_dir: str | os.PathLike | None = None, dtype: str = "float32",
                    batch_size: int | None = None, augment_copies: int = 0,
                    augmentation: keras.Layer | None = None, seed: int = 0, progress: bool = True) -> Features:
    """Return the base's feature maps of one split, from the disk cache or computed once.

    Args:
        base_model: The frozen base, raw RGB ``(batch, h, w, 3)`` in ``[0, 255]`` in,
            ``(batch, h/32, w/32, 2048)`` out, e.g. from :func:`tlhelpers.build_base_model`.
        folder: What :func:`tlhelpers.load_image_folder` returned, at the same image size.
        split: ``"train"``, ``"val"`` or ``"test"`` (a key of ``folder.files``).
        cache_dir: Default ``$TLHELPERS_FEATURE_CACHE``, else ``build/feature_cache/`` in a checkout of
            this repository, else ``~/.cache/tlhelpers/feature_cache``.
        dtype: ``"float32"``, or ``"float16"`` for half the memory (about 3 significant digits).
        batch_size: Images per forward pass; default :func:`extraction_batch_size`.
        augment_copies: Augmented copies of each training image, cached after the originals
            (``K + 1`` times the memory). Unlike augmentation on images, each epoch sees the same copies.
        augmentation: The pipeline for them; default :func:`default_augmentation` with ``seed``.
        seed: Seed of the default augmentation.
        progress: Show a progress bar while extracting.

    Returns:
        A :class:`Features`: ``(n, h/32, w/32, 2048)`` ``.features``, ``.labels``, ``.from_cache``.

    Raises:
        ValueError: An argument out of range, or a base and folder of different image sizes.
    """
    size, loaded = tuple(base_model.input_shape[1:3]), tuple(folder.train_ds.element_spec[0].shape[1:3])
    if not folder.files.get(split):
        raise ValueError(f"split {split!r} has no images; the folder has {sorted(folder.files)}")
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype={dtype!r} is not supported; use 'float32' or 'float16'")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size={batch_size!r}: use a positive whole number, or None for the default")
    if augment_copies < 0 or (augment_copies and split != "train"):
        raise ValueError(f"augment_copies={augment_copies} with split {split!r}: use 0, or a positive number "
                         "for the training split only (augmented validation images measure nothing)")
    if size != loaded:
        raise ValueError(f"the base model takes {size} images but the folder was loaded at {loaded}; "
                         "build both with the same IMAGE_SIZE")
    files = folder.files[split]
    labels = np.tile(np.array([label for _, label in files], dtype=np.int32), 1 + augment_copies)
    augmentation = (augmentation or default_augmentation(seed)) if augment_copies else None
    key = cache_key(base_model, files, dtype, augmentation and [augment_copies, seed, augmentation.get_config()])
    cache_dir = Path(cache_dir) if cache_dir is not None else default_dir("feature_cache", CACHE_ENV, "build")
    name = f"{split}-{size[0]}x{size[1]}-{dtype}" + (f"-aug{augment_copies}" if augment_copies else "")
    path = cache_dir / f"{name}-{key[:16]}.npz"
    if path.exists():
        try:
            features = _load(path, labels, (len(labels), *base_model.output.shape[1:]), dtype)
            return Features(features, labels, True, path, key)
        except ValueError as error:
            warnings.warn(f"feature cache file '{path}' is not usable ({error}); recomputing it", stacklevel=2)
    images = make_dataset(files, size, batch_size or extraction_batch_size(size))  # in the order of files
    features = np.concatenate([_extract(base_model, images, augmentation if copy else None, progress)
                               for copy in range(1 + augment_copies)])
    if np.abs(features).max() > np.finfo(dtype).max:
        raise ValueError(f"a feature of magnitude {np.abs(features).max():.3g} does not fit {dtype}; use 'float32'")
    features = features.astype(dtype, copy=False)
    _save(path, features, labels)
    return Features(features, labels, False, path, key)
