"""Unfreeze the top of ResNet50 for fine-tuning, BatchNorm kept frozen (taught in notebook 05).

ResNet50's layers are named by stage: ``conv1_*``, then ``pool1_*``, then
``conv2_block1_1_conv`` ... ``conv5_block3_out``. :func:`unfreeze_from` makes one
layer and every layer after it trainable, except the BatchNormalization layers.

Why BatchNorm stays frozen: a frozen ``BatchNormalization`` layer always runs
in inference mode, with the stored (ImageNet) moving mean and variance. In
Keras 3, ``fit`` calls the model with ``training=True``, and that value reaches
the nested ResNet50 even though it was called with ``training=False`` when the
model was built. A trainable BatchNorm layer would then normalise each training
batch with that batch's own statistics while validation uses the stored ones,
which drift towards your small batches (a moving average, momentum 0.99).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np

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
    ResNet50 (``base_model``, or your full model) becomes trainable too, so that
    its ``trainable_weights`` list the unfrozen weights. ``fit`` on the outer
    model trains them either way (it reads that model's ``trainable_weights``,
    which reach inside frozen containers), but a frozen container's own list
    stays empty, and ``fit`` on that container trains nothing. The other layers
    of those containers (your head, say) keep the ``trainable`` setting they
    had. Compile the model again afterwards: once ``fit`` has run, it keeps
    training what was trainable then until the next ``compile``.

    Args:
        model_or_resnet: ``base_model`` from :func:`tlhelpers.build_base_model`,
            a full model that contains it, or a ResNet50 ``keras.Model``. Pass
            the outermost model you have: given the ResNet50 alone, the
            containers around it cannot be found and stay frozen, so their
            ``trainable_weights`` look empty although ``fit`` on the outer
            model trains the unfrozen layers.
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


def class_names_path(model_path: str | os.PathLike) -> Path:
    """Where the class names of a saved model are kept: next to it, ``name.keras`` -> ``name.class_names.json``.

    A ``.keras`` file does not record which folder each output unit stands for;
    write ``json.dumps(class_names)`` to this path when you save a model whose
    head you want to reuse (notebook 05 reads it before reusing a head).
    """
    path = Path(model_path)
    return path.with_name(path.name.removesuffix(".keras") + ".class_names.json")


def reusable_head(
    model_path: str | os.PathLike, base_model: keras.Model, class_names: list[str], head_name: str = "head"
) -> tuple[keras.Model | None, str]:
    """Load the head of a saved model if it fits ``base_model`` and ``class_names``, else say why not.

    A head trained on other classes, another image size or another base would
    start fine-tuning from a wrong model without any error, so it is reused only
    when all of these hold: the file exists, the class names saved next to it
    (:func:`class_names_path`) are ``class_names`` in the same order, its input
    has ``base_model``'s image size, and its ResNet50 has exactly the weights of
    ``base_model``'s. Call it inside ``strategy.scope()``: loading creates the
    head's variables.

    Args:
        model_path: A ``.keras`` file saved by notebook 01 (base and head in one model).
        base_model: The base built for fine-tuning, from :func:`tlhelpers.build_base_model`.
        class_names: The class names of the data loaded now, in label order.
        head_name: The name of the head layer inside the saved model.

    Returns:
        ``(head, reason)``: the head ``keras.Model`` (feature maps
        ``(batch, h, w, 2048)`` in, probabilities ``(batch, classes)`` out) and a
        sentence saying it is reused; or ``(None, reason)`` with the reason it
        is not.
    """
    path = Path(model_path)
    if not path.exists():
        return None, f"no saved model at {path}"
    names_path = class_names_path(path)
    if not names_path.exists():
        return None, f"{path} has no class names saved next to it ({names_path.name}), so its classes are unknown"
    saved_names = json.loads(names_path.read_text())
    if saved_names != list(class_names):
        return None, f"{path} was trained on the classes {saved_names}, not on {list(class_names)}"
    saved = keras.models.load_model(path, safe_mode=True)
    if tuple(saved.input_shape) != tuple(base_model.input_shape):
        return None, f"{path} takes images of shape {saved.input_shape[1:]}, not {base_model.input_shape[1:]}"
    saved_weights = find_resnet(saved).get_weights()
    weights = find_resnet(base_model).get_weights()
    if len(saved_weights) != len(weights) or not all(map(np.array_equal, saved_weights, weights)):
        return None, f"the ResNet50 in {path} has other weights than the base built here (another WEIGHTS?)"
    return saved.get_layer(head_name), f"reusing the head of {path}: same classes, image size and base weights"
