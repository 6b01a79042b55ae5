"""Evaluate a trained classifier beyond accuracy (taught in notebook 01, used by every notebook).

:func:`predict_dataset` runs the model over a dataset once; the other functions read its
labels and probabilities: a per-class precision/recall/F1 table, a confusion matrix and a
gallery of the most confident mistakes (the figures are drawn by :mod:`tlhelpers.plots`).
:func:`paired_bootstrap` compares two models' accuracies on the same images (notebook 04).
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


class PairedDifference(NamedTuple):
    """What :func:`paired_bootstrap` returns: the accuracy difference ``a - b`` and its interval."""

    difference: float
    low: float
    high: float

    def contains_zero(self) -> bool:
        """Whether the interval includes no difference at all: then the gap is within noise."""
        return self.low <= 0 <= self.high


def paired_bootstrap(correct_a: Any, correct_b: Any, resamples: int = 2000, level: float = 0.95,
                     seed: int = 0) -> PairedDifference:
    """The difference in accuracy of two models on the same images, with a paired bootstrap interval (notebook 04).

    Resamples the images with replacement, ``resamples`` times, keeping each image's pair of scores
    together, and takes the central ``level`` of the resampled differences. It measures how much the
    difference could change with another draw of as many images from the same source; it knows
    nothing of images unlike these.

    Args:
        correct_a: ``(n,)`` per-image score of model a: 1 right, 0 wrong, or the fraction of its
            seeds that are right on that image.
        correct_b: ``(n,)`` the same for model b, on the same images in the same order.
        resamples: Number of bootstrap resamples.
        level: Coverage of the interval, e.g. 0.95.
        seed: Seed of the resampling; the same seed gives the same interval.

    Returns:
        :class:`PairedDifference` ``(difference, low, high)``, in accuracy units.

    Raises:
        ValueError: If the two score arrays differ in shape or are empty.
    """
    a, b = np.asarray(correct_a, dtype="float64"), np.asarray(correct_b, dtype="float64")
    if a.shape != b.shape or a.ndim != 1 or not a.size:
        raise ValueError(f"scores of shapes {a.shape} and {b.shape}: pass one score per image, (n,), for the "
                         "same non-empty list of images")
    gaps = a - b
    picks = np.random.default_rng(seed).integers(0, gaps.size, (resamples, gaps.size))
    low, high = np.quantile(gaps[picks].mean(axis=1), [(1 - level) / 2, (1 + level) / 2])
    return PairedDifference(float(gaps.mean()), float(low), float(high))
