"""The frozen ResNet50 base and where its weights come from (taught in notebook 01).

``weights`` is one of:

* ``"imagenet"``: Keras' pre-trained file, taken from Keras' cache
  (``$KERAS_HOME/models``, default ``~/.keras/models``) or downloaded once (94 MB);
* ``None`` (or the string ``"none"``): random weights, for offline runs and tests;
* a path to a local copy of ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import h5py
import keras

WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/" + WEIGHTS_FILE
WEIGHTS_MD5 = "4d473c1dd8becc155b73f8504c6f6626"  # the hash Keras itself checks
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_TOP_LAYERS = ("probs", "predictions", "fc1000")  # the 1000-class classifier, by Keras version


MIN_IMAGE_SIZE = 32  # ResNet50 downsamples 32x; smaller inputs fail inside Keras


def check_image_size(image_size: tuple[int, int]) -> tuple[int, int]:
    """Return ``image_size`` as two ints.

    Raises:
        ValueError: If a side is below ResNet50's minimum of 32 pixels.
    """
    size = (int(image_size[0]), int(image_size[1]))
    if min(size) < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size {size} is below ResNet50's minimum of {MIN_IMAGE_SIZE} pixels; "
                         "use at least (32, 32), ideally (224, 224)")
    return size


class WeightsError(RuntimeError):
    """The ResNet50 weights could not be found, downloaded or loaded."""


def keras_weights_path() -> Path:
    """Return where Keras keeps (or will keep) the ImageNet ``notop`` weights file."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models" / WEIGHTS_FILE


def _how_to_fix(problem: str) -> str:
    return (f"{problem}\nTo fix it, do one of:\n"
            f"  * download {WEIGHTS_URL} on a machine with internet and copy it to {keras_weights_path()}\n"
            f"    (or anywhere, and pass its path: WEIGHTS='/path/to/{WEIGHTS_FILE}');\n"
            "  * run with random weights, offline: WEIGHTS=None in a notebook, `make run WEIGHTS=none`.")


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _cache_problem(cached: Path) -> str | None:
    if not cached.is_file():
        return f"ImageNet weights are not in Keras' cache ({cached})."
    if _md5(cached) != WEIGHTS_MD5:  # an interrupted download, or a proxy's error page
        return f"The ImageNet weights in Keras' cache ({cached}) are incomplete or damaged (wrong MD5)."
    return None


def _check_weights_file(path: Path) -> None:
    """Raise :class:`WeightsError` unless ``path`` is a readable HDF5 file of ResNet50 ``notop`` weights."""
    if path.is_dir():
        inside = path / WEIGHTS_FILE
        hint = f"; it holds {WEIGHTS_FILE}: pass '{inside}'" if inside.is_file() else ""
        raise WeightsError(_how_to_fix(f"'{path}' is a folder, not a weights file{hint}."))
    if not path.is_file():
        raise WeightsError(_how_to_fix(f"Weights file '{path}' does not exist."))
    with open(path, "rb") as file:
        if file.read(8) != _HDF5_SIGNATURE:
            raise WeightsError(_how_to_fix(f"'{path}' is not an HDF5 (.h5) weights file."))
    try:
        with h5py.File(path, "r") as file:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in file.attrs.get("layer_names", [])]
    except OSError as error:
        raise WeightsError(_how_to_fix(f"'{path}' is truncated or damaged ({error}); download it again.")) from None
    if not names:  # a Keras 3 ``.weights.h5`` file: Keras itself checks it when loading
        return
    # ResNet50 (v1) has conv4_block1..6; ResNet101/152 have more, ResNet50V2 has "preact" layers.
    resnet50 = "conv4_block6_3_conv" in names and "conv4_block7_1_conv" not in names
    if not resnet50 or any("preact" in name for name in names):
        problem = "weights of another architecture"
    elif set(names) & set(_TOP_LAYERS):
        problem = "weights with the top (include_top=True, the 1000-class classifier)"
    else:
        return
    raise WeightsError(_how_to_fix(f"'{path}' does not hold ResNet50 weights without the top "
                                   f"({WEIGHTS_FILE}): it holds {problem}."))


def resolve_weights(weights: str | os.PathLike | None, download: bool = True) -> str | None:
    """Check a ``weights`` choice and turn it into what ``keras.applications.ResNet50`` takes.

    Args:
        weights: ``"imagenet"``, ``None``/``"none"``, or a path to an ``.h5`` file.
        download: For ``"imagenet"``, download the file into Keras' cache when it
            is missing. With ``False`` a missing file raises instead.

    Returns:
        ``"imagenet"`` (the file is then in Keras' cache), ``None``, or the path as a string.

    Raises:
        WeightsError: Offline without a complete cached file, a missing path, a folder,
            a file that is not HDF5 or is truncated, or weights of another model (another
            architecture, or ``include_top=True``). The message says where the file goes
            and how to run offline.
    """
    if weights is None or (isinstance(weights, str) and weights.lower() == "none"):
        return None
    if isinstance(weights, str) and weights.lower() == "imagenet":
        problem = _cache_problem(keras_weights_path())
        if problem:
            if not download:
                raise WeightsError(_how_to_fix(problem))
            try:
                keras.utils.get_file(WEIGHTS_FILE, WEIGHTS_URL, cache_subdir="models", file_hash=WEIGHTS_MD5)
            except Exception as error:  # Keras raises a bare Exception on network errors
                raise WeightsError(_how_to_fix(f"Could not download the ImageNet weights ({error}).")) from None
        return "imagenet"
    path = Path(weights).expanduser()
    _check_weights_file(path)
    return str(path)


def build_base_model(
    image_size: tuple[int, int] = (224, 224),
    weights: str | os.PathLike | None = "imagenet",
) -> keras.Model:
    """Build the frozen ResNet50 feature extractor with its preprocessing inside.

    The model takes raw RGB images with values in ``[0, 255]`` and applies
    ``keras.applications.resnet50.preprocess_input`` (RGB to BGR, ImageNet mean
    subtracted; not ``/255``) as part of the graph, so callers never preprocess
    and their arrays are never modified. The ResNet50 inside is frozen, which keeps
    its BatchNorm layers in inference mode, and is called with ``training=False``.
    In Keras 3 ``fit`` overrides that ``training=False`` for nested models
    (keras-team/keras#20285), so after unfreezing keep BatchNorm frozen:
    :func:`tlhelpers.finetune.unfreeze_from` does.

    Args:
        image_size: ``(height, width)`` of the input images, each at least 32.
        weights: See :func:`resolve_weights`.

    Returns:
        A frozen ``keras.Model`` named ``"base_model"``: ``(batch, height, width, 3)``
        in, feature maps ``(batch, ceil(height/32), ceil(width/32), 2048)`` out
        (``(batch, 7, 7, 2048)`` at 224 x 224).

    Raises:
        WeightsError: See :func:`resolve_weights`, or the file holds weights for
            another architecture (or for ``include_top=True``).
        ValueError: If ``image_size`` is below 32 pixels.
    """
    shape = (*check_image_size(image_size), 3)
    resolved = resolve_weights(weights)
    try:
        resnet = keras.applications.ResNet50(include_top=False, weights=resolved, input_shape=shape)
    except (ValueError, OSError) as error:  # OSError: h5py on a file damaged inside
        raise WeightsError(_how_to_fix(
            f"'{resolved}' does not hold ResNet50 weights without the top ({WEIGHTS_FILE}): {error}")) from None
    resnet.trainable = False
    inputs = keras.Input(shape=shape, name="image")
    x = keras.applications.resnet50.preprocess_input(inputs)
    outputs = resnet(x, training=False)
    base_model = keras.Model(inputs, outputs, name="base_model")
    base_model.trainable = False
    return base_model
