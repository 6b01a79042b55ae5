"""The frozen ResNet50 base and where its weights come from (taught in notebook 01).

``weights`` is one of:

* ``"imagenet"``: Keras' pre-trained file, taken from Keras' cache
  (``$KERAS_HOME/models``, default ``~/.keras/models``) or downloaded once (94 MB);
* ``None`` (or the string ``"none"``): random weights, for offline runs and tests;
* a path to a local copy of ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/" + WEIGHTS_FILE
WEIGHTS_MD5 = "4d473c1dd8becc155b73f8504c6f6626"  # the hash Keras itself checks
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


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


def resolve_weights(weights: str | os.PathLike | None, download: bool = True) -> str | None:
    """Check a ``weights`` choice and turn it into what ``keras.applications.ResNet50`` takes.

    Args:
        weights: ``"imagenet"``, ``None``/``"none"``, or a path to an ``.h5`` file.
        download: For ``"imagenet"``, download the file into Keras' cache when it
            is missing. With ``False`` a missing file raises instead.

    Returns:
        ``"imagenet"`` (the file is then in Keras' cache), ``None``, or the path as a string.

    Raises:
        WeightsError: Offline without a cached file, a missing path, or a file
            that is not HDF5. The message says where the file goes and how to run offline.
    """
    if weights is None or (isinstance(weights, str) and weights.lower() == "none"):
        return None
    if isinstance(weights, str) and weights.lower() == "imagenet":
        if not keras_weights_path().is_file():
            if not download:
                raise WeightsError(_how_to_fix(f"ImageNet weights are not in Keras' cache ({keras_weights_path()})."))
            try:
                keras.utils.get_file(WEIGHTS_FILE, WEIGHTS_URL, cache_subdir="models", file_hash=WEIGHTS_MD5)
            except Exception as error:  # Keras raises a bare Exception on network errors
                raise WeightsError(_how_to_fix(f"Could not download the ImageNet weights ({error}).")) from None
        return "imagenet"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(_how_to_fix(f"Weights file '{path}' does not exist."))
    with open(path, "rb") as file:
        if file.read(8) != _HDF5_SIGNATURE:
            raise WeightsError(_how_to_fix(f"'{path}' is not an HDF5 (.h5) weights file."))
    return str(path)


def build_base_model(
    image_size: tuple[int, int] = (224, 224),
    weights: str | os.PathLike | None = "imagenet",
) -> keras.Model:
    """Build the frozen ResNet50 feature extractor with its preprocessing inside.

    The model takes raw RGB images with values in ``[0, 255]`` and applies
    ``keras.applications.resnet50.preprocess_input`` (RGB to BGR, ImageNet mean
    subtracted; not ``/255``) as part of the graph, so callers never preprocess
    and their arrays are never modified. The ResNet50 inside is called with
    ``training=False`` so its BatchNorm layers stay in inference mode.

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
    if min(image_size) < 32:
        raise ValueError(f"image_size {tuple(image_size)} is below ResNet50's minimum of 32 pixels")
    resolved = resolve_weights(weights)
    shape = (int(image_size[0]), int(image_size[1]), 3)
    try:
        resnet = keras.applications.ResNet50(include_top=False, weights=resolved, input_shape=shape)
    except ValueError as error:
        raise WeightsError(_how_to_fix(
            f"'{resolved}' does not hold ResNet50 weights without the top ({WEIGHTS_FILE}): {error}")) from None
    resnet.trainable = False
    inputs = keras.Input(shape=shape, name="image")
    x = keras.applications.resnet50.preprocess_input(inputs)
    outputs = resnet(x, training=False)
    base_model = keras.Model(inputs, outputs, name="base_model")
    base_model.trainable = False
    return base_model
