"""Every figure the notebooks show: images, learning curves, heatmaps, mistakes (notebook 01).

Images are drawn through :func:`tlhelpers.images.to_uint8`, titled by :func:`prediction_title` and overlaid
with a heatmap by :func:`overlay`, so every figure shows pixels, predictions and heatmaps the
same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

from tlhelpers.evaluation import predicted_classes
from tlhelpers.images import to_uint8


def overlay(ax: Axes, image: Any, heatmap: Any, alpha: float = 0.5) -> None:
    """Draw ``image`` with a coarse ``heatmap`` in ``[0, 1]`` stretched over it (bilinear, ``jet``).

    The heatmap's extent is ``imshow``'s own pixel grid, ``(-0.5, width - 0.5, height - 0.5, -0.5)``,
    so heatmap and image cover exactly the same area.
    """
    height, width = np.shape(image)[:2]
    ax.imshow(to_uint8(image))
    ax.imshow(heatmap, cmap="jet", alpha=alpha, vmin=0, vmax=1, interpolation="bilinear",
              extent=(-0.5, width - 0.5, height - 0.5, -0.5))


def image_grid(count: int, panel: tuple[float, float] = (2.6, 2.6)) -> tuple[Figure, list[Any]]:
    """Make a figure of ``count`` image panels, three per row, axes hidden.

    Returns:
        The figure and the first ``count`` axes, row by row (the rest stay blank).
    """
    cols = min(count, 3) or 1
    rows = max(math.ceil(count / cols), 1)
    fig, axes = plt.subplots(rows, cols, figsize=(panel[0] * cols, panel[1] * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, list(axes.flat)[:count]


def prediction_title(class_names: Sequence[str], probabilities: Any, label: int | None = None) -> tuple[str, str]:
    """Title an image with its predicted class and probability, after its true class if given.

    Returns:
        ``("true -> predicted (0.97)", colour)``: red when the prediction is wrong, else black;
        without ``label``, ``("predicted (0.97)", "black")``.
    """
    guess = int(np.argmax(probabilities))
    title = f"{class_names[guess]} ({float(probabilities[guess]):.2f})"
    if label is None:
        return title, "black"
    return f"{class_names[int(label)]} -> {title}", "black" if guess == int(label) else "red"


def plot_batch(
    images: Any,
    labels: Any,
    class_names: Sequence[str],
    predictions: Any = None,
    max_images: int = 9,
) -> Figure:
    """Show images in a grid, titled with their class (and prediction, if given).

    Args:
        images: ``(batch, height, width, 3)`` RGB values in ``[0, 255]``
            (what :func:`tlhelpers.load_image_folder` yields). Not modified.
        labels: ``(batch,)`` integer labels.
        class_names: Name of each label.
        predictions: Optional ``(batch, num_classes)`` probabilities; each title
            then reads ``"true -> predicted (p)"`` and wrong ones are red.
        max_images: At most this many images are drawn.

    Returns:
        The figure, one axis per image.
    """
    images = np.asarray(images)[:max_images]
    labels = np.asarray(labels)[: len(images)]
    fig, axes = image_grid(len(images))
    for i, ax in enumerate(axes):
        ax.imshow(to_uint8(images[i]))
        title, colour = class_names[int(labels[i])], "black"
        if predictions is not None:
            title, colour = prediction_title(class_names, predictions[i], labels[i])
        ax.set_title(title, fontsize=9, color=colour)
    fig.tight_layout()
    return fig


def _label_epoch_axes(ax: Axes, metric: str) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers: no 1.5 tick
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(metric)


def plot_history(
    history: Any,
    metrics: Sequence[str] = ("loss", "accuracy"),
    phase_starts: Mapping[str, int] | None = None,
) -> Figure:
    """Plot training and validation curves, one panel per metric.

    Args:
        history: A ``keras.callbacks.History`` or its ``.history`` dict
            (``{"loss": [...], "val_loss": [...], ...}``).
        metrics: Metric names to plot; each gets its ``val_`` twin when present.
        phase_starts: Optional ``{label: epoch}``: a dashed vertical line marks
            where each training phase (such as fine-tuning) begins.

    Returns:
        The figure, one axis per metric, x axis labelled "epoch".

    Raises:
        KeyError: If a metric is not in the history; the message lists what is.
    """
    logs = getattr(history, "history", history)
    missing = [m for m in metrics if m not in logs]
    if missing:
        raise KeyError(f"metrics {missing} are not in the history; it has {sorted(logs)}")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=True):
        epochs = np.arange(1, len(logs[metric]) + 1)
        ax.plot(epochs, logs[metric], "o-", label=f"train {metric}")
        if f"val_{metric}" in logs:
            ax.plot(epochs, logs[f"val_{metric}"], "s-", label=f"validation {metric}")
        for label, epoch in (phase_starts or {}).items():
            ax.axvline(epoch + 0.5, color="grey", linestyle="--")
            ax.annotate(label, (epoch + 0.5, 1), xycoords=("data", "axes fraction"), fontsize=8, va="top")
        _label_epoch_axes(ax, metric)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_heatmaps(
    image: Any,
    heatmaps: Any,
    titles: Sequence[str],
    alpha: float = 0.5,
) -> Figure:
    """Overlay low-resolution heatmaps on an image, one panel each, after the image itself.

    Used for the channels of a 1x1 convolution (notebook 03) and for Grad-CAM.

    Args:
        image: ``(height, width, 3)`` RGB in ``[0, 255]``.
        heatmaps: ``(n, h, w)`` maps on the feature grid (``7 x 7`` at 224 pixels); each is
            stretched over the whole image with bilinear interpolation and scaled to its own
            ``[min, max]``.
        titles: One title per heatmap.
        alpha: Opacity of the heatmaps.

    Returns:
        The figure: ``n + 1`` axes, the first showing the plain image.

    Raises:
        ValueError: If the number of titles differs from the number of heatmaps.
    """
    heatmaps = np.asarray(heatmaps, dtype="float32")
    if len(titles) != len(heatmaps):
        raise ValueError(f"{len(titles)} titles for {len(heatmaps)} heatmaps")
    fig, axes = plt.subplots(1, len(heatmaps) + 1, figsize=(2.6 * (len(heatmaps) + 1), 2.8), squeeze=False)
    axes[0, 0].imshow(to_uint8(image))
    axes[0, 0].set_title("image", fontsize=9)
    for ax, heatmap, title in zip(axes[0, 1:], heatmaps, titles, strict=True):
        span = float(heatmap.max() - heatmap.min()) or 1.0
        overlay(ax, image, (heatmap - heatmap.min()) / span, alpha)
        ax.set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_histories(
    histories: Mapping[str, Any],
    metrics: Sequence[str] = ("loss", "accuracy"),
) -> Figure:
    """Overlay the learning curves of several runs, one colour per run (notebook 04).

    Args:
        histories: ``{name: History or its .history dict}``.
        metrics: Metrics to plot, one panel each: validation as solid lines, training dashed.

    Returns:
        The figure, one axis per metric, with a legend naming each run.

    Raises:
        KeyError: If a run lacks a metric; the message names the run.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.8), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, history) in enumerate(histories.items()):
        logs = getattr(history, "history", history)
        for ax, metric in zip(axes.flat, metrics, strict=True):
            if metric not in logs:
                raise KeyError(f"run {name!r} has no {metric!r}; it has {sorted(logs)}")
            epochs = np.arange(1, len(logs[metric]) + 1)
            colour = colours[i % len(colours)]
            if f"val_{metric}" in logs:
                ax.plot(epochs, logs[f"val_{metric}"], "-", color=colour, label=f"{name} (validation)")
            ax.plot(epochs, logs[metric], "--", color=colour, alpha=0.6, label=f"{name} (training)")
    for ax, metric in zip(axes.flat, metrics, strict=True):
        _label_epoch_axes(ax, metric)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_grad_cam(
    images: Any,
    heatmaps: Any,
    class_names: Sequence[str],
    probabilities: Any,
    labels: Any = None,
    max_images: int = 6,
    alpha: float = 0.45,
) -> Figure:
    """Overlay Grad-CAM heatmaps on their images, titled with the predicted class.

    Each coarse heatmap is stretched over its whole image with bilinear smoothing;
    red-yellow marks the regions that raised the class score most.

    Args:
        images: ``(batch, height, width, 3)`` RGB in ``[0, 255]``.
        heatmaps: ``(batch, h, w)`` in ``[0, 1]``, from :func:`tlhelpers.grad_cam`.
        class_names: Name of each label.
        probabilities: ``(batch, num_classes)``, from :func:`tlhelpers.grad_cam`.
        labels: Optional ``(batch,)`` true labels; titles then read ``"true -> predicted (p)"``
            and wrong predictions are red.
        max_images: At most this many images are drawn.
        alpha: Opacity of the heatmap over the image.

    Returns:
        The figure, one axis per image, each holding the image and the heatmap.
    """
    images = np.asarray(images)[:max_images]
    heatmaps, probabilities = np.asarray(heatmaps), np.asarray(probabilities)
    fig, axes = image_grid(len(images), panel=(2.8, 2.8))
    for i, ax in enumerate(axes):
        overlay(ax, images[i], heatmaps[i], alpha)
        title, colour = prediction_title(class_names, probabilities[i], None if labels is None else labels[i])
        ax.set_title(title, fontsize=9, color=colour)
    fig.suptitle("Grad-CAM: where the evidence for the predicted class is")
    fig.tight_layout()
    return fig


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
    labels, predicted = np.asarray(labels), predicted_classes(predictions)
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
        images: ``(n, height, width, 3)`` RGB in ``[0, 255]`` (``tlhelpers.predict_dataset(...,
            keep_images=True).images``).
        labels: ``(n,)`` true labels.
        probabilities: ``(n, num_classes)`` model outputs.
        class_names: Name of each label.
        max_images: At most this many mistakes are shown.

    Returns:
        The figure, one axis per mistake titled ``"true -> predicted (0.97)"`` in red, or, when
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
        ax.imshow(to_uint8(images[i]))
        title, colour = prediction_title(class_names, probabilities[i], labels[i])
        ax.set_title(title, fontsize=9, color=colour)
    n_wrong = int((predicted != labels).sum())
    fig.suptitle(f"Most confident mistakes ({len(wrong)} shown of {n_wrong} wrong in {len(labels)})")
    fig.tight_layout()
    return fig
