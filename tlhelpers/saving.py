"""Save a trained model, reload it, predict one image file, export for serving (notebook 01).

The ``.keras`` format stores the architecture (the preprocessing inside the model and the
frozen, nested ResNet50 included) and the weights in one file. Reloading it with
``safe_mode=True`` refuses arbitrary Python code such as ``Lambda`` layers, which is why
the notebooks' models contain none.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tlhelpers.images import load_image


def save_and_reload(model: keras.Model, path: str | os.PathLike, batch: Any) -> keras.Model:
    """Save ``model`` as ``.keras``, reload it in safe mode and check that nothing was lost.

    Args:
        model: The trained image-to-probabilities model.
        path: File to write, ending in ``.keras``; missing folders are created and an
            existing file is replaced.
        batch: ``(batch, height, width, 3)`` images in ``[0, 255]`` to compare predictions on.

    Returns:
        The reloaded model.

    Raises:
        ValueError: If ``path`` does not end in ``.keras``.
        AssertionError: If the reloaded model predicts differently or has a different
            number of trainable weights (a frozen base that came back unfrozen).
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"'{path}' must end in .keras, the Keras 3 format (.h5 loses the model's structure)")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    reloaded = keras.models.load_model(path, safe_mode=True)
    if len(reloaded.trainable_weights) != len(model.trainable_weights):
        raise AssertionError(f"reloaded model has {len(reloaded.trainable_weights)} trainable weight tensors, "
                             f"the saved one {len(model.trainable_weights)}: a frozen layer came back trainable")
    np.testing.assert_allclose(
        reloaded(batch, training=False), model(batch, training=False), rtol=1e-5, atol=1e-6,
        err_msg=f"the model reloaded from '{path}' predicts differently from the one saved")
    return reloaded


def predict_file(
    model: keras.Model,
    path: str | os.PathLike,
    class_names: Sequence[str],
    image_size: Sequence[int] | None = None,
    top: int = 3,
) -> list[tuple[str, float]]:
    """Predict the class of one image file.

    Args:
        model: Image-to-probabilities model, raw ``[0, 255]`` images in.
        path: The image file.
        class_names: Name of each label, as many as the model has outputs.
        image_size: ``(height, width)``; default: the model's input size.
        top: How many classes to return.

    Returns:
        The ``top`` most probable ``(class_name, probability)`` pairs, most probable first.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        ValueError: If the file is not an image, or ``class_names`` does not match the model.
    """
    if image_size is None:
        image_size = model.input_shape[1:3]
    image = load_image(path, image_size)
    probabilities = np.asarray(model(image[np.newaxis], training=False))[0]
    if len(probabilities) != len(class_names):
        raise ValueError(f"the model predicts {len(probabilities)} classes but class_names has "
                         f"{len(class_names)}: {list(class_names)}")
    order = np.argsort(-probabilities, kind="stable")[: max(int(top), 1)]
    return [(class_names[i], float(probabilities[i])) for i in order]


def export_for_serving(model: keras.Model, directory: str | os.PathLike, batch: Any = None) -> Path:
    """Export ``model`` as a TensorFlow SavedModel for serving.

    A SavedModel runs without Keras or this package: ``tf.saved_model.load(directory)``
    gives an object whose ``serve`` function takes ``(batch, height, width, 3)`` float32
    images in ``[0, 255]`` and returns ``(batch, num_classes)`` probabilities; TensorFlow
    Serving uses its ``serving_default`` signature (input ``"image"``).

    Args:
        model: A single-input image-to-probabilities model.
        directory: Folder to write; files already in it are overwritten.
        batch: Optional images; if given, the export is loaded back and must predict what
            ``model`` predicts on them.

    Returns:
        The folder, as a ``Path``.

    Raises:
        AssertionError: If ``batch`` is given and the predictions differ.
    """
    directory = Path(directory)
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="image")
    model.export(str(directory), format="tf_saved_model", verbose=False, input_signature=[spec])
    if batch is not None:
        loaded = tf.saved_model.load(str(directory))  # keep a reference: serve() needs its variables alive
        served = loaded.serve(tf.cast(batch, tf.float32))
        np.testing.assert_allclose(
            np.asarray(served), model(batch, training=False), rtol=1e-5, atol=1e-6,
            err_msg=f"the SavedModel in '{directory}' predicts differently from the model")
    return directory
