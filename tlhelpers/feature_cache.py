"""The on-disk cache behind :func:`tlhelpers.cached_features` (taught in notebook 01).

One ``.npz`` file per cache key holds the feature maps, the labels and a JSON
record of what they were computed from. The key is a SHA-256 of everything the
features depend on (see :func:`tlhelpers.features.cached_features`), so a
changed input gives another file name and never an old answer. A file is
written under a temporary name and renamed, so a crash leaves no half-written
cache; a file that fails any check on loading (unreadable, truncated, other key,
shape or dtype, checksum of the arrays) raises :class:`DamagedCacheError`.

Every extraction appends one JSON line to ``extractions.log`` in the cache
folder: :func:`read_extraction_log` lets a test count how often the base ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import weakref
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import xxhash

from tlhelpers.images import DECODING

CACHE_ENV = "TLHELPERS_FEATURE_CACHE"
# What happens to an image outside the base model; it follows tlhelpers.images.DECODING.
PREPROCESSING = f"{DECODING} -> base model"
LOG_NAME = "extractions.log"
_REPO_ROOT = Path(__file__).resolve().parents[1]


class DamagedCacheError(RuntimeError):
    """A feature cache file exists but cannot be trusted; it is recomputed."""


def default_cache_dir() -> Path:
    """Return the cache folder: ``$TLHELPERS_FEATURE_CACHE`` if set, else ``build/feature_cache``.

    ``build/`` is the git-ignored folder at the repository root (when the package
    is installed from a checkout, as ``make`` does), else ``~/.cache/tlhelpers/features``.
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if (_REPO_ROOT / "pyproject.toml").is_file():
        return _REPO_ROOT / "build" / "feature_cache"
    return Path.home() / ".cache" / "tlhelpers" / "features"


def files_fingerprint(files: Sequence[tuple[Path, int]]) -> list[list[Any]]:
    """Describe image files for a cache key: ``[path, label, size, mtime_ns]`` in dataset order.

    Raises:
        FileNotFoundError: If a listed image no longer exists.
    """
    rows = []
    for path, label in files:
        stat = Path(path).stat()
        rows.append([str(Path(path).resolve()), int(label), stat.st_size, stat.st_mtime_ns])
    return rows


# Keys of a Keras model config that name layers or describe training, not what the model computes.
_IRRELEVANT_KEYS = ("name", "keras_history", "input_layers", "output_layers", "trainable", "compile_config")


def _without_names(config: Any) -> Any:
    if isinstance(config, dict):
        return {k: _without_names(v) for k, v in config.items() if k not in _IRRELEVANT_KEYS}
    if isinstance(config, list | tuple):
        return [_without_names(v) for v in config]
    return config


# The configuration's JSON per model object: a built Keras model's layers and their settings are fixed at
# construction, and get_config deep-copies the whole model (about 0.15 s for ResNet50).
_CONFIG_JSON: weakref.WeakKeyDictionary[keras.Model, bytes] = weakref.WeakKeyDictionary()


def _config_json(model: keras.Model) -> bytes:
    if model not in _CONFIG_JSON:
        try:
            config = _without_names(model.get_config())
        except NotImplementedError:  # a subclassed model: fall back to the layer types
            config = [type(layer).__name__ for layer in model.layers]
        _CONFIG_JSON[model] = json.dumps(config, sort_keys=True, default=str).encode()
    return _CONFIG_JSON[model]


def model_fingerprint(model: keras.Model) -> str:
    """Hash what a model computes: its configuration and every weight (about 0.02 s for ResNet50's 94 MB).

    The configuration covers the preprocessing inside the base (the ImageNet
    mean it subtracts, or a ``Rescaling(1/255)`` put there instead) and the
    ``training=False`` call; layer names and ``trainable`` flags are left out, as
    they do not change the features. It is read once per model object (a built
    model's layers do not change); the weights are read and hashed at every
    call. Hashing the loaded weight values, not the weights' source, also tells
    apart two random initialisations (``weights=None``) and a base changed by
    fine-tuning.
    """
    digest = xxhash.xxh3_128(_config_json(model))  # 128-bit, about 15 GB/s: 94 MB take ~6 ms (SHA-1: ~70 ms)
    for weight in model.weights:
        # np.asarray of the TensorFlow tensor reads the weight without copying it (convert_to_numpy copies).
        value = np.ascontiguousarray(np.asarray(tf.convert_to_tensor(weight)))
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(memoryview(value).cast("B"))
    return digest.hexdigest()


def layers_config(layers: keras.Layer | None) -> list[dict[str, Any]] | None:
    """Describe a layer or a ``keras.Sequential`` (e.g. an augmentation pipeline) without layer names."""
    if layers is None:
        return None
    members = layers.layers if isinstance(layers, keras.Sequential) else [layers]
    return [{"class": type(layer).__name__, **_without_names(layer.get_config())} for layer in members]


def feature_key(base_model: keras.Model, files: Sequence[tuple[Path, int]], image_size: tuple[int, int],
                dtype: str, augmentation: dict[str, Any] | None) -> str:
    """Return the cache key (SHA-256, hex) of the features of ``files`` through ``base_model``.

    It covers :func:`model_fingerprint`, :func:`files_fingerprint`, the image
    size, :data:`PREPROCESSING`, the TensorFlow and Keras versions, the dtype and
    the augmentation (``None``, or its number of copies, seed and layers).
    """
    parts = {
        "preprocessing": PREPROCESSING, "tensorflow": tf.__version__, "keras": keras.__version__,
        "base_model": model_fingerprint(base_model), "files": files_fingerprint(files),
        "image_size": list(image_size), "dtype": dtype, "augmentation": augmentation,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _checksum(array: np.ndarray) -> str:
    return xxhash.xxh3_128(memoryview(np.ascontiguousarray(array)).cast("B")).hexdigest()


def save_arrays(path: Path, features: np.ndarray, labels: np.ndarray, meta: dict[str, Any]) -> None:
    """Write features, labels and ``meta`` (plus checksums) to ``path`` atomically.

    The file is written as ``<name>.<random>.tmp`` in the same folder, flushed to
    disk, then renamed over ``path``; readers see the old file or the new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "features_xxh3_128": _checksum(features)}
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, features=features, labels=labels, meta=np.array(json.dumps(meta)))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_arrays(path: Path, key: str, shape: tuple[int, ...], dtype: str,
                labels: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Read and check a cache file written by :func:`save_arrays`.

    Args:
        path: The ``.npz`` file.
        key: The cache key it must have been written for.
        shape: The features' expected shape, e.g. ``(n, 7, 7, 2048)``.
        dtype: The features' expected dtype, ``"float32"`` or ``"float16"``.
        labels: The labels it must hold, ``(n,)``.

    Returns:
        The features and the stored record.

    Raises:
        DamagedCacheError: If the file cannot be read or any check fails; the
            message says which.
    """
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            features, stored_labels = stored["features"], stored["labels"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise DamagedCacheError(f"cannot read it ({type(error).__name__}: {error})") from None
    problems = {
        "it was written for another cache key": meta.get("key") != key,
        f"features have shape {features.shape}, expected {shape}": features.shape != tuple(shape),
        f"features are {features.dtype}, expected {dtype}": features.dtype != np.dtype(dtype),
        "its labels differ from the image folder's": not np.array_equal(stored_labels, labels),
        "the features' checksum does not match": meta.get("features_xxh3_128") != _checksum(features),
    }
    wrong = [problem for problem, failed in problems.items() if failed]
    if wrong:
        raise DamagedCacheError("; ".join(wrong))
    return features, meta


def log_extraction(cache_dir: Path, record: dict[str, Any]) -> None:
    """Append one JSON line describing an extraction to ``cache_dir/extractions.log``."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / LOG_NAME, "a", encoding="utf-8") as file:
        file.write(json.dumps(record, sort_keys=True) + "\n")


def read_extraction_log(cache_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Return every extraction recorded in a cache folder, oldest first.

    Each record has ``split``, ``root`` (the image folder), ``image_size``,
    ``images``, ``copies``, ``dtype``, ``key``, ``seconds`` and ``time``. Use it to
    check that a second run found its features in the cache (no new record).

    Args:
        cache_dir: The cache folder; default :func:`default_cache_dir`.
    """
    path = Path(cache_dir or default_cache_dir()) / LOG_NAME
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
