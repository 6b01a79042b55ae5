"""Figures the notebooks show: a batch of images, and learning curves (notebook 01)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


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
        ax.imshow(np.clip(images[i], 0, 255).astype("uint8"))
        title, colour = class_names[int(labels[i])], "black"
        if predictions is not None:
            title, colour = prediction_title(class_names, predictions[i], labels[i])
        ax.set_title(title, fontsize=9, color=colour)
    fig.tight_layout()
    return fig


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
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
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
    image = np.clip(np.asarray(image), 0, 255).astype("uint8")
    heatmaps = np.asarray(heatmaps, dtype="float32")
    if len(titles) != len(heatmaps):
        raise ValueError(f"{len(titles)} titles for {len(heatmaps)} heatmaps")
    fig, axes = plt.subplots(1, len(heatmaps) + 1, figsize=(2.6 * (len(heatmaps) + 1), 2.8), squeeze=False)
    axes[0, 0].imshow(image)
    axes[0, 0].set_title("image", fontsize=9)
    extent = (0, image.shape[1], image.shape[0], 0)
    for ax, heatmap, title in zip(axes[0, 1:], heatmaps, titles, strict=True):
        span = float(heatmap.max() - heatmap.min()) or 1.0
        ax.imshow(image)
        ax.imshow((heatmap - heatmap.min()) / span, cmap="jet", alpha=alpha, extent=extent, interpolation="bilinear")
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
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
