"""Unfreeze the top of ResNet50 for fine-tuning, BatchNorm kept frozen (taught in notebook 05).

ResNet50's layers are named by stage: ``conv1_*``, then ``pool1_*``, then
``conv2_block1_1_conv`` ... ``conv5_block3_out``. :func:`unfreeze_from` makes one
layer and every layer after it trainable, except the BatchNormalization layers.

Why BatchNorm stays frozen: a frozen ``BatchNormalization`` layer always runs
in inference mode, with the ImageNet moving mean and variance. In Keras 3,
``fit`` calls the model with ``training=True``, and that value reaches the
nested ResNet50 even though it was called with ``training=False`` when the
model was built; so a trainable BatchNorm layer would update its statistics
from your small batches and undo what the base learned.
"""

from __future__ import annotations

import keras

STAGES = ("conv1", "conv2", "conv3", "conv4", "conv5")
_EXAMPLE_LAYERS = ("conv4_block1_1_conv", "conv5_block1_1_conv", "conv5_block2_1_conv", "conv5_block3_out")


def _is_resnet(layer: keras.layers.Layer) -> bool:
    names = {sublayer.name for sublayer in getattr(layer, "layers", ())}
    return {"conv1_conv", "conv5_block3_out"} <= names


def _path_to_resnet(model: keras.Model) -> list[keras.Model]:
    """Return the containers from ``model`` down to the ResNet50, both included."""
    if _is_resnet(model):
        return [model]
    for layer in getattr(model, "layers", ()):
        if isinstance(layer, keras.Model):
            path = _path_to_resnet(layer)
            if path:
                return [model, *path]
    return []


def _layer_tree(layer: keras.layers.Layer, skip: keras.layers.Layer) -> list[keras.layers.Layer]:
    """All layers below ``layer`` in pre-order (parents before children), not entering ``skip``."""
    found = []
    for child in getattr(layer, "layers", ()):
        found.append(child)
        if child is not skip:
            found.extend(_layer_tree(child, skip))
    return found


def find_resnet(model: keras.Model) -> keras.Model:
    """Return the ResNet50 inside ``model`` (``base_model``, a full model, or the ResNet50 itself).

    Args:
        model: A ``keras.Model`` that is, or contains at any depth, a ResNet50.

    Returns:
        The nested ResNet50 ``keras.Model`` (named ``"resnet50"`` in ``base_model``).

    Raises:
        ValueError: If ``model`` holds no layer named like ResNet50's
            (``conv1_conv`` ... ``conv5_block3_out``).
    """
    path = _path_to_resnet(model)
    if not path:
        raise ValueError(f"model {model.name!r} holds no ResNet50 (no layers 'conv1_conv' ... 'conv5_block3_out'); "
                         "pass base_model from tlhelpers.build_base_model or a keras.applications.ResNet50")
    return path[-1]


def _start_index(resnet: keras.Model, start: str) -> int:
    names = [layer.name for layer in resnet.layers]
    if start in STAGES:
        return next(i for i, name in enumerate(names) if name.startswith(start + "_"))
    if start in names:
        return names.index(start)
    raise ValueError(f"unknown layer or stage {start!r}; pass a stage ({', '.join(STAGES)}) or a layer name "
                     f"of the ResNet50, e.g. {', '.join(_EXAMPLE_LAYERS)} (all names: [l.name for l in "
                     "base_model.get_layer('resnet50').layers])")


def unfreeze_from(model_or_resnet: keras.Model, start: str = "conv5") -> list[str]:
    """Make ResNet50 trainable from ``start`` upward, with every BatchNormalization layer frozen.

    The layers before ``start`` stay frozen. Every container on the way to the
    ResNet50 (``base_model``, or your full model) becomes trainable so that the
    unfrozen weights do train; the other layers of those containers (your
    head, say) keep the ``trainable`` setting they had. Compile the model
    again afterwards: ``fit`` only trains what was trainable at ``compile``.

    Args:
        model_or_resnet: ``base_model`` from :func:`tlhelpers.build_base_model`,
            a full model that contains it, or a ResNet50 ``keras.Model``. Pass
            the outermost model you have: given the ResNet50 alone, the
            containers around it cannot be found, and a frozen container hides
            all its layers' weights from ``fit``.
        start: A stage, ``"conv1"`` to ``"conv5"``, meaning its first layer
            (``"conv5"`` is ``conv5_block1_1_conv``), or an exact layer name
            such as ``"conv5_block2_1_conv"``.

    Returns:
        The names of the layers whose weights now train, in model order
        (20 weights in 10 layers for ``"conv5"``: kernels and biases of the convolutions).

    Raises:
        ValueError: If ``start`` is neither a stage nor a layer of the ResNet50
            (the message lists the stages), or if the model holds no ResNet50.
    """
    path = _path_to_resnet(model_or_resnet)
    resnet = find_resnet(model_or_resnet)
    first = _start_index(resnet, start)
    for container in path[:-1]:
        others = [(layer, layer.trainable) for layer in _layer_tree(container, skip=resnet)]
        container.trainable = True  # recursive in Keras: every layer below becomes trainable ...
        for layer, trainable in others:  # ... so restore what was set outside the ResNet50
            if layer not in path:
                layer.trainable = trainable
    resnet.trainable = True
    for index, layer in enumerate(resnet.layers):
        layer.trainable = index >= first and not isinstance(layer, keras.layers.BatchNormalization)
    return [layer.name for layer in resnet.layers if layer.trainable_weights]
