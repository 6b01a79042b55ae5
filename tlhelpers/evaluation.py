"""Evaluate a trained classifier beyond accuracy (taught in notebook 01, used by every notebook).

:func:`predict_dataset` runs the model over a dataset once; the other functions read its
labels and probabilities: a per-class precision/recall/F1 table, a confusion matrix and a
gallery of the most confident mistakes. The grid of predictions is
:func:`tlhelpers.plot_batch` with ``predictions=``, and the learning curves are
:func:`tlhelpers.plot_history`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, classification_report, confusion_matrix

from tlhelpers.plots import image_grid


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
            (150 KB per 224 x 224 image); needed by :func:`plot_mistakes`.

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
            images.append(np.clip(np.rint(np.asarray(batch_images)), 0, 255).astype("uint8"))
    if not labels:
        raise ValueError("the dataset yielded no batches; check that the split holds images")
    return Predictions(
        np.concatenate(labels).astype("int64"),
        np.concatenate(probabilities).astype("float32"),
        np.concatenate(images) if keep_images else None,
    )


def _predicted_classes(predictions: Any) -> np.ndarray:
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
        np.asarray(labels), _predicted_classes(predictions), labels=list(range(len(class_names))),
        target_names=list(class_names), digits=3, zero_division=0,
    )


def plot_confusion_matrix(labels: Any, predictions: Any, class_names: Sequence[str]) -> Figure:
    """Draw the confusion matrix twice: as counts, and normalised per true class.

    Rows are true classes, columns predicted classes; the diagonal holds the correct
    predictions. In the normalised matrix each row sums to 1 and the diagonal is each
    class's recall, which makes classes with few images comparable.

    Args:
        labels: ``(n,)`` true labels.
        predictions: ``(n, num_classes)`` probabilities or ``(n,)`` predicted labels.
        class_names: Name of each label, used on both axes.

    Returns:
        The figure, two axes titled ``"counts"`` and ``"normalised per true class"``, each
        with x label ``"predicted"`` and y label ``"true"``.
    """
    every_class = list(range(len(class_names)))
    labels, predicted = np.asarray(labels), _predicted_classes(predictions)
    size = 1.2 + 0.6 * len(class_names)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    for ax, normalize, title, fmt in ((axes[0], None, "counts", "d"),
                                      (axes[1], "true", "normalised per true class", ".2f")):
        matrix = confusion_matrix(labels, predicted, labels=every_class, normalize=normalize)
        ConfusionMatrixDisplay(matrix, display_labels=list(class_names)).plot(
            ax=ax, colorbar=False, cmap="Blues", values_format=fmt, xticks_rotation=45)
        ax.set_title(title)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    fig.tight_layout()
    return fig


def plot_mistakes(
    images: Any, labels: Any, probabilities: Any, class_names: Sequence[str], max_images: int = 9,
) -> Figure:
    """Show the misclassified images the model was most sure about, most confident first.

    Confident mistakes are the most telling: a wrong label in the data, a class that
    looks like another, or a shortcut the model learned (a background, a watermark).

    Args:
        images: ``(n, height, width, 3)`` RGB in ``[0, 255]`` (``predict_dataset(...,
            keep_images=True).images``).
        labels: ``(n,)`` true labels.
        probabilities: ``(n, num_classes)`` model outputs.
        class_names: Name of each label.
        max_images: At most this many mistakes are shown.

    Returns:
        The figure, one axis per mistake titled ``"true: T\\npredicted: P (0.97)"``, or, when
        there is no mistake, a single axis saying so.
    """
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:max_images]
    if len(wrong) == 0:
        fig, ax = plt.subplots(figsize=(4, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, f"No mistakes: all {len(labels)} images are classified correctly.",
                ha="center", va="center", transform=ax.transAxes)
        return fig
    fig, axes = image_grid(len(wrong), panel=(2.8, 3.0))
    for ax, i in zip(axes, wrong, strict=True):
        ax.imshow(np.clip(np.asarray(images[i]), 0, 255).astype("uint8"))
        ax.set_title(f"true: {class_names[int(labels[i])]}\npredicted: {class_names[int(predicted[i])]} "
                     f"({confidence[i]:.2f})", fontsize=9, color="red")
    n_wrong = int((predicted != labels).sum())
    fig.suptitle(f"Most confident mistakes ({len(wrong)} shown of {n_wrong} wrong in {len(labels)})")
    fig.tight_layout()
    return fig
