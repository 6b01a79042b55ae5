"""The three heads the notebooks put on the frozen ResNet50 feature map.

Each builder returns a ``keras.Sequential`` named ``"head"`` that takes the base's feature
map ``(batch, h, w, 2048)`` (``(batch, 7, 7, 2048)`` at 224 x 224 pixels) and returns class
probabilities ``(batch, num_classes)``. The notebooks write the same head inline, as the
lesson, and check it against these builders with :func:`assert_same_architecture`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

CHANNELS = 2048  # channels of ResNet50's last feature map


def dense_head(feature_shape: Sequence[int], num_classes: int) -> keras.Sequential:
    """GlobalAveragePooling2D + Dense softmax (notebook 01).

    Parameters: ``2048 * num_classes + num_classes`` (weights + biases).

    Args:
        feature_shape: ``(h, w, 2048)``, the base's output without the batch axis.
        num_classes: Number of classes.
    """
    return keras.Sequential(
        [
            keras.Input(shape=tuple(feature_shape)),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes, activation="softmax"),
        ],
        name="head",
    )


def mlp_dropout_head(
    feature_shape: Sequence[int],
    num_classes: int,
    units: Sequence[int] = (256, 128),
    dropout: Sequence[float] = (0.5, 0.3),
) -> keras.Sequential:
    """GlobalAveragePooling2D, then Dense/ReLU layers each followed by Dropout, then Dense softmax (notebook 02).

    Parameters with the defaults: ``(2048 * 256 + 256) + (256 * 128 + 128) + (128 * num_classes + num_classes)``;
    in general each Dense layer has ``inputs * units + units``. Dropout has none.

    Args:
        feature_shape: ``(h, w, 2048)``.
        num_classes: Number of classes.
        units: Width of each hidden Dense/ReLU layer.
        dropout: Dropout rate after each hidden layer, one per entry of ``units``.

    Raises:
        ValueError: If ``units`` and ``dropout`` differ in length or a rate is outside ``[0, 1)``.
    """
    if len(units) != len(dropout):
        raise ValueError(f"units {tuple(units)} and dropout {tuple(dropout)} need one rate per hidden layer")
    if not all(0 <= rate < 1 for rate in dropout):
        raise ValueError(f"dropout rates {tuple(dropout)} must be in [0, 1)")
    layers: list[keras.layers.Layer] = [keras.Input(shape=tuple(feature_shape)), keras.layers.GlobalAveragePooling2D()]
    for width, rate in zip(units, dropout, strict=True):
        layers += [keras.layers.Dense(width, activation="relu"), keras.layers.Dropout(rate)]
    layers.append(keras.layers.Dense(num_classes, activation="softmax"))
    return keras.Sequential(layers, name="head")


def conv1x1_head(feature_shape: Sequence[int], num_classes: int, filters: int = 256) -> keras.Sequential:
    """Conv2D(filters, 1x1, relu) on the feature map, then GlobalAveragePooling2D + Dense softmax (notebook 03).

    A 1x1 convolution is one small Dense layer ``2048 -> filters`` applied at every spatial
    position. Parameters: ``(2048 * filters + filters) + (filters * num_classes + num_classes)``.

    Args:
        feature_shape: ``(h, w, 2048)``; any ``h`` and ``w`` (it follows the image size).
        num_classes: Number of classes.
        filters: Output channels of the 1x1 convolution.
    """
    return keras.Sequential(
        [
            keras.Input(shape=tuple(feature_shape)),
            keras.layers.Conv2D(filters, kernel_size=1, activation="relu", name="conv1x1"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes, activation="softmax"),
        ],
        name="head",
    )


def assert_same_architecture(head: keras.Model, reference: keras.Model) -> None:
    """Check that two heads have the same layer types, output shapes and parameter count.

    Like ``np.testing.assert_*``, it raises even under ``python -O``, which strips ``assert``.

    Raises:
        AssertionError: Naming the first difference.
    """

    def describe(model: keras.Model) -> list[tuple[str, tuple]]:
        return [(type(layer).__name__, tuple(layer.output.shape)) for layer in model.layers]

    if describe(head) != describe(reference):
        raise AssertionError(f"layers differ: the head has {describe(head)}, the reference {describe(reference)}; "
                             "write the head with the layers of the reference")
    if head.count_params() != reference.count_params():
        raise AssertionError(f"the head has {head.count_params():,} parameters, the reference "
                             f"{reference.count_params():,}; check the units, filters and bias of each layer")


def _leaf_layers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The layers inside ``layer`` that hold weights themselves, at any depth (``layer`` if it has no ``layers``)."""
    if not hasattr(layer, "layers"):
        return [layer] if layer.weights else []
    return [leaf for child in layer.layers for leaf in _leaf_layers(child)]


def _layer_path(weight: keras.Variable) -> str:
    return weight.path.rsplit("/", 1)[0]  # "conv5_block3_1_conv/kernel" -> "conv5_block3_1_conv"


def assert_trains_only(model: keras.Model, head: keras.Model) -> None:
    """Check that ``model.fit`` would train exactly the head's weights (notebooks 01, 02, 03 and 06).

    Look at the model, not at the base: ``base.trainable = False`` empties ``base.trainable_weights``
    even when a layer inside it was set ``trainable = True`` afterwards, and ``fit`` trains that
    layer all the same, because it reads ``model.trainable_weights``. The head's side is checked
    layer by layer, so a frozen head layer is caught too (BatchNormalization's moving statistics,
    which never train, are not asked for). Like ``np.testing.assert_*``, it raises even under
    ``python -O``.

    Args:
        model: The model you will ``fit``, from images to class probabilities.
        head: The head inside it, whose weights, and only they, should train.

    Raises:
        AssertionError: Naming the layers outside the head that would train, or the head's weights
            that would not.
    """
    trained = {id(weight) for weight in model.trainable_weights}
    in_head = {id(weight) for weight in head.weights}
    extra = sorted({_layer_path(weight) for weight in model.trainable_weights if id(weight) not in in_head})
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise AssertionError(f"fit would train {len(extra)} layer(s) outside the head: {shown}; freeze them "
                             "(base_model.trainable = False freezes every layer inside it) and compile again")
    missing = [weight.path for layer in _leaf_layers(head)
               for weight in (layer.trainable_weights if layer.trainable else layer.weights)
               if id(weight) not in trained]
    if missing:
        raise AssertionError(f"fit would not train the head's weights {', '.join(missing)}: their layer is frozen "
                             "or not in the model; set head.trainable = True and compile again")
