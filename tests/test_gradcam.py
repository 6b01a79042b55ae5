"""tlhelpers.gradcam: on a model whose answer is known, the heatmap points at the evidence.

The tiny model sees 32 x 32 images on a 4 x 4 grid of 8 x 8 cells. Its base has two hand-set
channels: "red" (mean red minus mean green of a cell) and "grey" (mean green). Its head calls an
image "red corner" when the red channel is high, "plain" when the grey channel is. In a grey
image with one red cell, Grad-CAM for "red corner" must point at that cell and only there.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest

from tlhelpers.gradcam import grad_cam
from tlhelpers.model import build_base_model
from tlhelpers.plots import plot_grad_cam

CLASS_NAMES = ["plain", "red corner"]
PLAIN, RED = 0, 1


def teardown_function() -> None:
    plt.close("all")


def grey_image(red_cell: tuple[int, int] | None, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = 128 + rng.uniform(-20, 20, size=(32, 32, 3))
    if red_cell is not None:
        row, col = red_cell
        image[8 * row : 8 * row + 8, 8 * col : 8 * col + 8] = (255, 0, 0)
    return image.astype("float32")


def tiny_base() -> keras.Model:
    conv = keras.layers.Conv2D(2, kernel_size=8, strides=8, activation="relu", name="cells")
    base = keras.Sequential([keras.Input((32, 32, 3)), conv], name="base_model")
    kernel = np.zeros((8, 8, 3, 2), dtype="float32")
    kernel[:, :, 0, 0], kernel[:, :, 1, 0] = 1 / (64 * 255), -1 / (64 * 255)  # red: mean(R - G) / 255
    kernel[:, :, 1, 1] = 1 / (64 * 255)  # grey: mean(G) / 255
    conv.set_weights([kernel, np.zeros(2, dtype="float32")])
    return base


def tiny_head(scale: float = 1.0, conv1x1: bool = False) -> keras.Sequential:
    layers = [keras.Input((4, 4, 2))]
    if conv1x1:
        layers.append(keras.layers.Conv2D(2, 1, activation="relu", name="conv1x1"))
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")]
    head = keras.Sequential(layers, name="head")
    dense = np.array([[-40.0, 40.0], [2.0, -2.0]], dtype="float32") * scale  # rows: red, grey channels
    weights = [dense, np.zeros(2, dtype="float32")]
    if conv1x1:
        weights = [np.eye(2, dtype="float32").reshape(1, 1, 2, 2), np.zeros(2, dtype="float32"), *weights]
    head.set_weights(weights)
    return head


def argmax_cell(heatmap: np.ndarray) -> tuple[int, int]:
    return tuple(int(i) for i in np.unravel_index(np.argmax(heatmap), heatmap.shape))


def test_heatmap_points_at_the_only_informative_corner() -> None:
    images = np.stack([grey_image((0, 0)), grey_image((3, 3), seed=1)])
    heatmaps, probabilities = grad_cam(tiny_base(), tiny_head(), images)
    assert heatmaps.shape == (2, 4, 4) and heatmaps.dtype == np.float32
    assert probabilities.argmax(axis=1).tolist() == [RED, RED]
    assert argmax_cell(heatmaps[0]) == (0, 0) and argmax_cell(heatmaps[1]) == (3, 3)
    assert heatmaps.max(axis=(1, 2)).tolist() == [1.0, 1.0] and heatmaps.min() >= 0
    outside = heatmaps[0].copy()
    outside[0, 0] = 0
    assert outside.max() < 0.1, "only the red cell speaks for 'red corner'"


def test_probabilities_are_the_heads() -> None:
    base, head = tiny_base(), tiny_head()
    images = np.stack([grey_image((1, 2)), grey_image(None)])
    _, probabilities = grad_cam(base, head, images)
    np.testing.assert_allclose(probabilities, head(base(images)), rtol=1e-5, atol=1e-6)
    assert probabilities.argmax(axis=1).tolist() == [RED, PLAIN]


def test_class_index_chooses_the_class_to_explain() -> None:
    image = grey_image((0, 0))[np.newaxis]
    heatmaps, _ = grad_cam(tiny_base(), tiny_head(), image, class_index=PLAIN)
    assert heatmaps[0, 0, 0] == 0, "the red cell is evidence against 'plain'"
    assert heatmaps[0].max() == 1.0
    per_image, _ = grad_cam(tiny_base(), tiny_head(), np.concatenate([image, image]), class_index=[RED, PLAIN])
    assert argmax_cell(per_image[0]) == (0, 0) and per_image[1, 0, 0] == 0


def test_uint8_images_are_accepted() -> None:
    images = np.rint(np.stack([grey_image((1, 1)), grey_image(None)]))
    as_float, _ = grad_cam(tiny_base(), tiny_head(), images)
    as_uint8, _ = grad_cam(tiny_base(), tiny_head(), images.astype("uint8"))
    np.testing.assert_allclose(as_uint8, as_float, atol=1e-6)


def test_a_saturated_softmax_still_gives_a_heatmap() -> None:
    heatmaps, probabilities = grad_cam(tiny_base(), tiny_head(scale=1000.0), grey_image((2, 1))[np.newaxis])
    assert probabilities[0, RED] == 1.0, "the probability's gradient is 0 here; Grad-CAM uses the score before softmax"
    assert argmax_cell(heatmaps[0]) == (2, 1)


def test_layer_explains_a_1x1_convolution_inside_the_head() -> None:
    images = np.stack([grey_image((0, 3)), grey_image((3, 0), seed=2)])
    heatmaps, probabilities = grad_cam(tiny_base(), tiny_head(conv1x1=True), images, layer="conv1x1")
    assert heatmaps.shape == (2, 4, 4)
    assert argmax_cell(heatmaps[0]) == (0, 3) and argmax_cell(heatmaps[1]) == (3, 0)
    assert probabilities.argmax(axis=1).tolist() == [RED, RED]


def test_unknown_or_unusable_layers_are_refused() -> None:
    base, head = tiny_base(), tiny_head(conv1x1=True)
    image = grey_image(None)[np.newaxis]
    with pytest.raises(ValueError, match="no layer 'conv_1'.*'conv1x1'"):
        grad_cam(base, head, image, layer="conv_1")
    with pytest.raises(ValueError, match=f"no layer '{head.layers[-1].name}' before its output layer"):
        grad_cam(base, head, image, layer=head.layers[-1].name)
    with pytest.raises(ValueError, match="needs a \\(batch, h, w, channels\\) feature map"):
        grad_cam(base, head, image, layer=head.layers[1].name)  # the pooling layer: (batch, channels)
    with pytest.raises(ValueError, match="class_index 2 is out of range for 2 classes"):
        grad_cam(base, head, image, class_index=2)
    functional = keras.Model(head.inputs, head.outputs)
    with pytest.raises(TypeError, match="keras.Sequential"):
        grad_cam(base, functional, image)


def test_works_on_the_real_base_with_each_kind_of_head() -> None:
    keras.utils.set_random_seed(0)
    base = build_base_model((64, 64), weights=None)
    images = np.random.default_rng(0).uniform(0, 255, size=(2, 64, 64, 3)).astype("float32")
    untouched = images.copy()
    heads = {
        None: keras.Sequential([keras.Input((2, 2, 2048)), keras.layers.GlobalAveragePooling2D(),
                                keras.layers.Dense(128, activation="relu"), keras.layers.Dropout(0.5),
                                keras.layers.Dense(3, activation="softmax")]),
        "conv1x1": keras.Sequential([keras.Input((2, 2, 2048)),
                                     keras.layers.Conv2D(16, 1, activation="relu", name="conv1x1"),
                                     keras.layers.GlobalAveragePooling2D(),
                                     keras.layers.Dense(3, activation="softmax")]),
    }
    for layer, head in heads.items():
        heatmaps, probabilities = grad_cam(base, head, images, layer=layer)
        assert heatmaps.shape == (2, 2, 2) and 0 <= heatmaps.min() and heatmaps.max() <= 1
        model = keras.Model(base.inputs, head(base.outputs[0]))
        np.testing.assert_allclose(probabilities, model.predict(images, verbose=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(images, untouched)


def test_plot_grad_cam_overlays_each_heatmap_with_the_prediction() -> None:
    images = np.stack([grey_image((0, 0)), grey_image(None), grey_image((3, 3))])
    heatmaps = np.random.default_rng(0).random((3, 4, 4))
    probabilities = np.array([[0.1, 0.9], [0.8, 0.2], [0.7, 0.3]])
    fig = plot_grad_cam(images, heatmaps, CLASS_NAMES, probabilities, labels=[RED, PLAIN, RED])
    assert [ax.get_title() for ax in fig.axes] == [
        "red corner -> red corner (0.90)", "plain -> plain (0.80)", "red corner -> plain (0.70)"]
    assert [ax.title.get_color() for ax in fig.axes] == ["black", "black", "red"]
    assert all(len(ax.images) == 2 for ax in fig.axes), "image and heatmap"
    assert fig.axes[0].images[1].get_extent() == fig.axes[0].images[0].get_extent(), "on imshow's pixel grid"
    assert fig._suptitle.get_text().startswith("Grad-CAM")
    unlabelled = plot_grad_cam(images, heatmaps, CLASS_NAMES, probabilities, max_images=2)
    assert [ax.get_title() for ax in unlabelled.axes] == ["red corner (0.90)", "plain (0.80)"]
