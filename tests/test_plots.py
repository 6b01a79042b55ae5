"""tlhelpers.plots: each figure has the axes, titles and labels a learner reads."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from tlhelpers.plots import plot_batch, plot_history


def teardown_function() -> None:
    plt.close("all")


def test_plot_batch_titles_each_image_with_its_class() -> None:
    images = np.full((4, 32, 32, 3), 128.0, dtype="float32")
    fig = plot_batch(images, [0, 1, 1, 0], ["cat", "dog"])
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["cat", "dog", "dog", "cat"]
    assert len(fig.axes[0].images) == 1


def test_plot_batch_marks_wrong_predictions_in_red() -> None:
    images = np.zeros((2, 32, 32, 3), dtype="float32")
    predictions = np.array([[0.9, 0.1], [0.8, 0.2]])
    fig = plot_batch(images, [0, 1], ["cat", "dog"], predictions=predictions)
    assert fig.axes[0].get_title() == "cat -> cat (0.90)"
    assert fig.axes[1].get_title() == "dog -> cat (0.80)"
    assert fig.axes[1].title.get_color() == "red" and fig.axes[0].title.get_color() == "black"


def test_plot_batch_caps_the_number_of_images() -> None:
    fig = plot_batch(np.zeros((20, 32, 32, 3)), np.zeros(20, dtype=int), ["a"], max_images=6)
    assert sum(1 for ax in fig.axes if ax.images) == 6


def test_plot_history_draws_train_and_validation_per_metric() -> None:
    history = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6], "accuracy": [0.3, 0.6, 0.8]}
    fig = plot_history(history, phase_starts={"fine-tuning": 2})
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_xlabel() == "epoch" and loss_ax.get_ylabel() == "loss"
    assert [line.get_label() for line in loss_ax.lines[:2]] == ["train loss", "validation loss"]
    assert [line.get_label() for line in acc_ax.lines[:1]] == ["train accuracy"]
    assert any(line.get_linestyle() == "--" for line in loss_ax.lines), "phase marker"
    fig.canvas.draw()
    assert all(float(tick).is_integer() for tick in loss_ax.get_xticks()), "whole epochs only, no 1.5"


def test_plot_history_names_missing_metrics() -> None:
    with pytest.raises(KeyError, match="'auc'.*has \\['loss'\\]"):
        plot_history({"loss": [1.0]}, metrics=("auc",))


def test_plot_heatmaps_overlays_each_map_on_the_image() -> None:
    from tlhelpers.plots import plot_heatmaps

    maps = np.random.default_rng(0).random((3, 7, 7))
    fig = plot_heatmaps(np.zeros((64, 64, 3)), maps, ["a", "b", "c"])
    assert [ax.get_title() for ax in fig.axes] == ["image", "a", "b", "c"]
    assert [len(ax.images) for ax in fig.axes] == [1, 2, 2, 2]
    image_extent = fig.axes[1].images[0].get_extent()
    assert fig.axes[1].images[1].get_extent() == image_extent == [-0.5, 63.5, 63.5, -0.5], "imshow's pixel grid"
    with pytest.raises(ValueError, match="2 titles for 3 heatmaps"):
        plot_heatmaps(np.zeros((64, 64, 3)), maps, ["a", "b"])


def test_plot_histories_overlays_runs_one_colour_each() -> None:
    from tlhelpers.plots import plot_histories

    runs = {"a": {"loss": [1.0, 0.5], "val_loss": [1.1, 0.9]}, "b": {"loss": [0.9, 0.4], "val_loss": [1.0, 0.8]}}
    fig = plot_histories(runs, metrics=("loss",))
    (ax,) = fig.axes
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["a (validation)", "a (training)", "b (validation)", "b (training)"]
    assert ax.lines[0].get_color() == ax.lines[1].get_color() != ax.lines[2].get_color()
    assert ax.get_xlabel() == "epoch"
    fig.canvas.draw()
    assert all(float(tick).is_integer() for tick in ax.get_xticks()), "whole epochs only, no 1.5"
    with pytest.raises(KeyError, match="run 'b' has no 'accuracy'"):
        plot_histories({"a": {"loss": [1], "accuracy": [0.5]}, "b": {"loss": [1]}})


def test_to_uint8_rounds_and_clips_without_touching_the_input() -> None:
    from tlhelpers.images import to_uint8

    pixels = np.array([-3.0, 0.4, 0.6, 127.5, 254.6, 300.0], dtype="float32")
    converted = to_uint8(pixels)
    assert converted.dtype == np.uint8 and converted.tolist() == [0, 0, 1, 128, 255, 255]
    assert pixels[0] == -3.0, "the caller's array is unchanged"


def test_overlay_puts_the_heatmap_on_the_images_pixel_grid() -> None:
    from tlhelpers.plots import overlay

    fig, ax = plt.subplots()
    overlay(ax, np.zeros((20, 30, 3)), np.eye(2), alpha=0.3)
    image, heatmap = ax.images
    assert heatmap.get_extent() == image.get_extent() == [-0.5, 29.5, 19.5, -0.5]
    assert image.get_array().dtype == np.uint8 and heatmap.get_alpha() == 0.3
