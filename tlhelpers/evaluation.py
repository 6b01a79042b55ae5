"""Evaluate a trained classifier beyond accuracy (taught in notebook 01, used by every notebook).

:func:`predict_dataset` runs the model over a dataset once; the other functions read its
labels and probabilities: a per-class precision/recall/F1 table, a confusion matrix and a
gallery of the most confident mistakes (the figures are drawn by :mod:`tlhelpers.plots`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import keras
import numpy as np
from sklearn.metrics import classification_report

from tlhelpers.images import to_uint8


class Predictions(NamedTuple):
    """What :func:`predict_dataset` returns; unpack it as ``labels, probabilities, images``.

    Attributes:
        labels: ``(n,)`` int true labels.
        probabilities: ``(n, num_classes)`` float32 model outputs.
        images: ``(n, height, width, 3)`` uint8 copies of the images, or ``None``.
    """

    labels: np.ndarray
    probabilities: np.ndarray
    images: np.ndarray | None


def predict_dataset(model: keras.Model, ds: Any, keep_images: bool = False) -> Predictions:
    """Predict every batch of a dataset, keeping labels and predictions aligned.

    The dataset is read once, so this is right even for a dataset that reshuffles every
    epoch (calling ``model.predict(ds)`` and then reading the labels from ``ds`` again is not).

    Args:
        model: Image-to-probabilities model, ``(batch, h, w, 3)`` in ``[0, 255]`` in.
        ds: Batches of ``(images, labels)``, such as ``val_ds`` from
            :func:`tlhelpers.load_image_folder`.
        keep_images: Also return the images, as uint8 to save memory
            (150 KB per 224 x 224 image); needed by :func:`tlhelpers.plot_mistakes`.

    Returns:
        :class:`Predictions` ``(labels, probabilities, images)``; ``images`` is ``None``
        unless ``keep_images``.

    Raises:
        ValueError: If the dataset is empty or its labels are one-hot.
    """
    labels, probabilities, images = [], [], []
    for batch_images, batch_labels in ds:
        # A plain call rather than predict_on_batch: no tf.function is traced per model and batch
        # shape, so a notebook that predicts with several models gets no retracing warning.
        probabilities.append(keras.ops.convert_to_numpy(model(batch_images, training=False)))
        batch_labels = np.asarray(batch_labels)
        if batch_labels.ndim > 1 and batch_labels.shape[-1] > 1:
            raise ValueError(f"labels of shape {batch_labels.shape} look one-hot; predict_dataset expects "
                             "integer class indices (batch,), as load_image_folder yields")
        labels.append(batch_labels.reshape(-1))
        if keep_images:
            images.append(to_uint8(batch_images))
    if not labels:
        raise ValueError("the dataset yielded no batches; check that the split holds images")
    return Predictions(
        np.concatenate(labels).astype("int64"),
        np.concatenate(probabilities).astype("float32"),
        np.concatenate(images) if keep_images else None,
    )


def predicted_classes(predictions: Any) -> np.ndarray:
    """Return ``(n,)`` class indices from ``(n, num_classes)`` probabilities, or ``(n,)`` labels as they are."""
    predictions = np.asarray(predictions)
    return predictions.argmax(axis=-1) if predictions.ndim == 2 else predictions.astype("int64")


def classification_table(labels: Any, predictions: Any, class_names: Sequence[str]) -> str:
    """Per-class precision, recall, F1 and support, as a text table (scikit-learn's report).

    Read a row as: of the images predicted as this class, the fraction that are
    (precision); of the images of this class, the fraction found (recall); F1 is their
    harmonic mean; support is the number of images of the class.

    Args:
        labels: ``(n,)`` true labels.
        predictions: ``(n, num_classes)`` probabilities or ``(n,)`` predicted labels.
        class_names: Name of each label; every class gets a row, even one absent from ``labels``.

    Returns:
        The table as a string, ready to ``print``. Use
        ``sklearn.metrics.classification_report(..., output_dict=True)`` for the numbers.
    """
    return classification_report(
        np.asarray(labels), predicted_classes(predictions), labels=list(range(len(class_names))),
        target_names=list(class_names), digits=3, zero_division=0,
    )
