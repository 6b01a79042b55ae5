"""Grad-CAM: which part of an image made the model choose a class (taught in notebook 01).

Grad-CAM (Selvaraju et al., 2017) weights each channel of a convolutional feature map by
how much the class score rises when that channel rises (the gradient, averaged over the
map), sums the weighted channels and keeps the positive part. The result is a coarse
heatmap, one cell per feature-map position: ``7 x 7`` for ResNet50 at 224 x 224 pixels.

The notebooks' models are ``base_model`` (image to feature map) followed by a
``keras.Sequential`` ``head``, so :func:`grad_cam` takes the two parts and never rebuilds
the nested ResNet50 by layer names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf


def _is_softmax(layer: keras.layers.Layer) -> bool:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) == "softmax" or isinstance(layer, keras.layers.Softmax)


def _scores_layer(layer: keras.layers.Layer, input_shape: tuple) -> tuple[Any, bool]:
    """Return a callable giving the class scores before softmax, and whether softmax was removed.

    The gradient of a saturated softmax probability is close to zero, so Grad-CAM uses the
    score before it. The last layer is copied with a linear activation (the head is not changed).
    """
    if not _is_softmax(layer):
        return layer, False
    if isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
        return (lambda x: x), True
    linear = layer.__class__.from_config({**layer.get_config(), "activation": "linear"})
    linear.build(input_shape)
    linear.set_weights(layer.get_weights())
    return linear, True


def grad_cam(
    base_model: keras.Model,
    head: keras.Sequential,
    images: Any,
    class_index: int | Sequence[int] | None = None,
    layer: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Compute Grad-CAM heatmaps for a frozen base followed by a Sequential head.

    Args:
        base_model: Image-to-feature-map model, such as the notebooks' ``base_model``:
            ``(batch, height, width, 3)`` in ``[0, 255]`` to ``(batch, h, w, channels)``.
        head: The ``keras.Sequential`` that turns the feature map into class probabilities.
        images: ``(batch, height, width, 3)`` RGB in ``[0, 255]``, float or uint8. Not modified.
        class_index: The class each heatmap explains: one index for all images, one per
            image (for example the true labels), or ``None`` for each image's predicted class.
        layer: Name of a layer inside ``head`` whose output is the feature map to explain,
            such as ``"conv1x1"``; ``None`` explains the base's output, ResNet50's last
            feature map.

    Returns:
        ``(heatmaps, probabilities)``: ``(batch, h, w)`` float32, each image's map scaled to
        ``[0, 1]`` (all zeros where no position speaks for the class), and the head's
        ``(batch, num_classes)`` probabilities.

    Raises:
        TypeError: If ``head`` is not a ``keras.Sequential``.
        ValueError: If ``layer`` is not one of the head's layers before the last, its output
            is not 4-D, or a class index is out of range.
    """
    if not isinstance(head, keras.Sequential):
        raise TypeError(f"head must be a keras.Sequential, got {type(head).__name__}; "
                        "build the head as in the notebooks, keras.Sequential([...], name='head')")
    names = [each.name for each in head.layers]
    if layer is not None and layer not in names[:-1]:
        raise ValueError(f"head has no layer {layer!r} before its output layer; its layers are {names}")
    features = tf.convert_to_tensor(base_model(tf.cast(images, tf.float32), training=False))
    with tf.GradientTape() as tape:
        x, feature_map = features, None
        if layer is None:
            tape.watch(x)
            feature_map = x
        for each in head.layers[:-1]:
            x = each(x, training=False)
            if each.name == layer:
                tape.watch(x)
                feature_map = x
        scores_layer, removed_softmax = _scores_layer(head.layers[-1], tuple(x.shape))
        scores = scores_layer(x)
        chosen = _chosen_classes(class_index, scores)
        score = tf.gather(scores, chosen, axis=1, batch_dims=1)
    if feature_map.shape.rank != 4:
        raise ValueError(f"Grad-CAM needs a (batch, h, w, channels) feature map; layer {layer!r} gives "
                         f"{tuple(feature_map.shape)}; choose a convolutional layer")
    gradients = tape.gradient(score, feature_map)
    channel_weights = tf.reduce_mean(gradients, axis=(1, 2))
    cam = tf.nn.relu(tf.einsum("bhwc,bc->bhw", feature_map, channel_weights)).numpy()
    peak = cam.max(axis=(1, 2), keepdims=True)
    heatmaps = np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0).astype("float32")
    probabilities = tf.nn.softmax(scores) if removed_softmax else scores
    return heatmaps, np.asarray(probabilities, dtype="float32")


def _chosen_classes(class_index: int | Sequence[int] | None, scores: tf.Tensor) -> tf.Tensor:
    batch, num_classes = int(scores.shape[0]), int(scores.shape[1])
    if class_index is None:
        return tf.argmax(scores, axis=1, output_type=tf.int32)
    chosen = np.broadcast_to(np.asarray(class_index, dtype="int32"), (batch,))
    if chosen.min() < 0 or chosen.max() >= num_classes:
        raise ValueError(f"class_index {class_index} is out of range for {num_classes} classes")
    return tf.constant(chosen)
