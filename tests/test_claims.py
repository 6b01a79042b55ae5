"""The claims registry: every sentence in the docs about how Keras, TensorFlow or ResNet50 behaves, proved.

A sentence in a notebook's Markdown, in ``README.md`` or in ``docs/*.md`` that states a behaviour
of Keras, TensorFlow or ResNet50 is followed by a marker naming it::

    With a softmax output, `from_logits=True` only earns a warning. <!-- claim: softmax-from-logits-warns -->

and this module holds one test per id (or, for the few that need processes of their own, names it
in ``TESTED_ELSEWHERE``), named ``test_`` + the id with ``-`` replaced by ``_``
(``test_softmax_from_logits_warns``). Its docstring quotes the claim; its body shows exactly that on
a tiny model, so it fails when an upgrade changes the behaviour, naming the sentence to fix.

To add a claim: put ``<!-- claim: your-id -->`` right after the sentence (ids are lowercase words
joined by ``-``), then add ``test_your_id`` here. To retire one, remove the marker and the test
together. :func:`test_every_claim_has_a_test_and_every_test_a_claim` fails on a marker without a
test, a test without a marker, and a malformed marker.

The tests are small and run on the CPU in seconds; none assumes there is no GPU.
"""

from __future__ import annotations

import importlib
import inspect
import json
import platform
import re
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.applications import resnet50

from tests.conftest import ROOT, write_image
from tests.hub_preset import FIXTURE, fill_kaggle_cache, fixture_config, offline_kaggle, write_random_preset
from tlhelpers import kerashub
from tlhelpers.finetune import unfreeze_from
from tlhelpers.gradcam import grad_cam
from tlhelpers.heads import conv1x1_head, dense_head

CLAIM_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MARKER_START = re.compile(r"<!--\s*claim", re.IGNORECASE)
MARKER = re.compile(r"<!--\s*claim:[ \t]*(\S*?)[ \t]*-->")
# Claims whose proof needs more than a tiny in-process model (fresh interpreters with logical devices, two worker
# processes): the test that proves each lives in another module, named here as "module::function".
_MIRRORED = "tests.test_scaling::test_mirrored_strategy_trains_on_two_logical_cpus"
TESTED_ELSEWHERE = {
    "strategy-batch-is-global": _MIRRORED,
    "unfreeze-after-evaluate-under-strategy-fails": _MIRRORED,
    "multiworker-fit-fails-in-keras": "tests.test_multiworker::test_keras_fit_under_multiworker_still_fails",
    "multiworker-recipe-keeps-workers-in-sync":
        "tests.test_multiworker::test_two_workers_fine_tune_to_the_same_weights",
}
STRUCTURE_TESTS = {
    "test_claims_tested_elsewhere_name_existing_tests",
    "test_every_claim_has_a_test_and_every_test_a_claim",
    "test_marker_scanner_finds_ids_and_bad_markers",
}


# --- helpers ---------------------------------------------------------------------------------------------------------


def _toy_problem(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs in 4-D: ``x`` of shape ``(n, 4)`` float32, integer labels ``y`` of shape ``(n,)``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = 2 * np.eye(3, 4, dtype="float32")
    return (centres[y] + rng.normal(0, 1, (n, 4))).astype("float32"), y


def _mlp(activation: str | None, seed: int = 0) -> keras.Sequential:
    """Dense(16, relu) -> Dense(3, activation) on 4 inputs; the same initial weights for the same seed."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3, activation=activation)]
    )


def _fit_recording_warnings(model: keras.Model, loss: keras.losses.Loss, epochs: int = 10) -> tuple[dict, list[str]]:
    """Compile with Adam(0.01), fit on the toy problem in a fixed order; return the history and all warnings."""
    x, y = _toy_problem()
    model.compile(keras.optimizers.Adam(0.01), loss, metrics=["accuracy"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=epochs, batch_size=32, shuffle=False, verbose=0)
    return history.history, [str(warning.message) for warning in caught]


def _logits_warnings(messages: list[str]) -> list[str]:
    return [message for message in messages if "from_logits" in message]


def _nested_batchnorm_model(base_trainable: bool) -> tuple[keras.Model, keras.Model, keras.layers.BatchNormalization]:
    """An outer model calling a functional ``base`` (Dense -> BatchNormalization) with ``training=False``.

    The BatchNorm's moving statistics start away from their defaults (mean 0.5, variance 4), so that
    inference mode and training mode give clearly different outputs on the toy inputs.
    """
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    batchnorm = keras.layers.BatchNormalization(name="bn")
    base = keras.Model(inputs, batchnorm(keras.layers.Dense(8)(inputs)), name="base")
    batchnorm.moving_mean.assign(np.full(8, 0.5, "float32"))
    batchnorm.moving_variance.assign(np.full(8, 4.0, "float32"))
    outer_inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3, activation="softmax")(base(outer_inputs, training=False))
    model = keras.Model(outer_inputs, outputs)
    base.trainable = base_trainable
    return model, base, batchnorm


def _model_with_frozen_first_layer() -> keras.Sequential:
    """Dense "first" (frozen) -> Dense softmax, compiled with SGD(0.1)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, name="first"), keras.layers.Dense(3, activation="softmax")]
    )
    model.get_layer("first").trainable = False
    _compile_sgd(model)
    return model


def _compile_sgd(model: keras.Model) -> None:
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")  # a new optimizer each time


def _kernel(model: keras.Model, name: str) -> np.ndarray:
    return keras.ops.convert_to_numpy(model.get_layer(name).kernel).copy()


def _random_feature_map(channels: int, seed: int = 0, batch: int = 2) -> np.ndarray:
    """Non-negative (post-ReLU, like ResNet50's) features of shape ``(batch, 7, 7, channels)``."""
    return np.random.default_rng(seed).uniform(0, 3, (batch, 7, 7, channels)).astype("float32")


def _small_resnet(size: int = 32) -> keras.Model:
    return keras.applications.ResNet50(include_top=False, weights=None, input_shape=(size, size, 3))


# --- claims ----------------------------------------------------------------------------------------------------------


def test_softmax_from_logits_warns() -> None:
    """A softmax output with `from_logits=True` only earns a warning on the TensorFlow backend, and trains as
    `from_logits=False` would."""
    assert keras.backend.backend() == "tensorflow"
    model = _mlp("softmax")
    initial = model.get_weights()
    wrong, wrong_warnings = _fit_recording_warnings(model, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model = _mlp("softmax")
    model.set_weights(initial)
    right, right_warnings = _fit_recording_warnings(model, keras.losses.SparseCategoricalCrossentropy())

    assert _logits_warnings(wrong_warnings), wrong_warnings
    assert all("from_logits=True" in m and "Softmax" in m for m in _logits_warnings(wrong_warnings))
    assert not _logits_warnings(right_warnings), right_warnings
    np.testing.assert_allclose(wrong["loss"], right["loss"], rtol=1e-4)  # room for GPU reduction order
    assert right["loss"][-1] < 0.6 * right["loss"][0]  # both learned, not just both stuck


def test_logits_with_probability_loss_is_silent() -> None:
    """Logits (a head without softmax) with `from_logits=False` give no warning and no error: the loss reads
    arbitrary numbers as probabilities, and the model trains badly. Logits with `from_logits=True` are the
    correct pairing (with `test_softmax_from_logits_warns`, all four softmax / from_logits combinations)."""
    model = _mlp(None)
    initial = model.get_weights()
    wrong, wrong_warnings = _fit_recording_warnings(model, keras.losses.SparseCategoricalCrossentropy())
    model = _mlp(None)
    model.set_weights(initial)
    right, right_warnings = _fit_recording_warnings(model, keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    assert not _logits_warnings(wrong_warnings) and not _logits_warnings(right_warnings)
    assert right["accuracy"][-1] >= 0.75, right["accuracy"]
    assert wrong["accuracy"][-1] <= right["accuracy"][-1] - 0.25, (wrong["accuracy"], right["accuracy"])


def test_integer_labels_categorical_crossentropy_raises() -> None:
    """`CategoricalCrossentropy` expects one-hot labels; given integer labels (shape `(batch,)`) `fit` raises
    ValueError ("must have the same rank"), while `SparseCategoricalCrossentropy` accepts them."""
    x, y = _toy_problem(n=32)
    model = _mlp("softmax")
    model.compile("sgd", keras.losses.CategoricalCrossentropy())
    with pytest.raises(ValueError, match="must have the same rank"):
        model.fit(x, y, epochs=1, verbose=0)
    model = _mlp("softmax")
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy())
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"][0])


def test_image_dataset_from_directory_stops_on_empty_file(tmp_path: Path) -> None:
    """`keras.utils.image_dataset_from_directory` does not open the files before training: an empty file with an
    image extension stops the epoch that reaches it, with `Input is empty`, in the middle of the epoch."""
    for name, colour in (("a", (200, 0, 0)), ("b", (0, 0, 200))):
        for i in range(3):
            write_image(tmp_path / name / f"{name}_{i}.png", colour)
    (tmp_path / "b" / "z_empty.jpg").write_bytes(b"")  # sorts last: the epoch's final batch
    dataset = keras.utils.image_dataset_from_directory(
        tmp_path, image_size=(32, 32), batch_size=1, shuffle=False, verbose=False
    )  # built without complaint
    batches = 0
    with pytest.raises(tf.errors.InvalidArgumentError, match="Input is empty"):
        for _ in dataset:
            batches += 1
    assert batches == 6  # every good image came out before the empty file stopped the epoch


def test_fit_training_reaches_nested_base() -> None:
    """In Keras 3, `fit` calls the whole model with `training=True`, and that reaches the (trainable)
    BatchNormalization layers inside a nested base even though it was called with `training=False`
    (keras-team/keras#20285): their moving statistics change."""
    model, _, batchnorm = _nested_batchnorm_model(base_trainable=True)
    before = keras.ops.convert_to_numpy(batchnorm.moving_mean).copy()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(*_toy_problem(n=64), epochs=1, batch_size=32, verbose=0)
    assert not np.allclose(before, keras.ops.convert_to_numpy(batchnorm.moving_mean))


def test_frozen_batchnorm_runs_in_inference_mode() -> None:
    """Keras runs a frozen (`trainable = False`) BatchNormalization layer in inference mode whatever `training`
    says: `fit` (which calls with `training=True`) leaves its moving statistics unchanged, and it normalises
    with them, not with the batch's statistics."""
    model, base, batchnorm = _nested_batchnorm_model(base_trainable=False)
    x, y = _toy_problem(n=64)
    before = [keras.ops.convert_to_numpy(v).copy() for v in (batchnorm.moving_mean, batchnorm.moving_variance)]
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    after = [keras.ops.convert_to_numpy(v) for v in (batchnorm.moving_mean, batchnorm.moving_variance)]
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])

    dense_out = keras.ops.convert_to_numpy(base.layers[1](x))
    gamma, beta = (keras.ops.convert_to_numpy(w) for w in (batchnorm.gamma, batchnorm.beta))
    with_moving_stats = gamma * (dense_out - after[0]) / np.sqrt(after[1] + batchnorm.epsilon) + beta
    np.testing.assert_allclose(keras.ops.convert_to_numpy(base(x, training=True)), with_moving_stats, atol=1e-5)
    np.testing.assert_allclose(model(x, training=True), model(x, training=False), atol=1e-6)
    # What fit itself computes: with a zero learning rate its loss is the inference-mode loss.
    model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    fit_loss = model.fit(x, y, epochs=1, batch_size=64, verbose=0).history["loss"][0]
    assert fit_loss == pytest.approx(model.evaluate(x, y, batch_size=64, verbose=0), rel=1e-5)


def test_trainable_change_after_evaluate_takes_effect() -> None:
    """compile -> evaluate -> set a frozen layer trainable -> fit, without compiling again: the change takes
    effect (the layer's weights change), because `fit` has not yet traced its train step."""
    model = _model_with_frozen_first_layer()
    x, y = _toy_problem(n=64)
    model.evaluate(x, y, verbose=0)
    before = _kernel(model, "first")
    model.get_layer("first").trainable = True
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(before, _kernel(model, "first"))


def test_trainable_change_after_fit_needs_recompile() -> None:
    """compile -> fit -> change a layer's `trainable` -> fit, without compiling again: the change is silently
    ignored, in both directions. A frozen layer set trainable stays unchanged; a trained layer set frozen keeps
    training. No warning either way (Keras 3.15.1's `_warn_if_trainable_state_changed` sits after a `raise` and
    never runs). After `compile` again (with a new optimizer) the change takes effect."""

    def fit_recording_warnings(model: keras.Model) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x, y, epochs=1, verbose=0)
        return [str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)]

    x, y = _toy_problem(n=64)
    # Unfreezing after fit: ignored until compile.
    model = _model_with_frozen_first_layer()
    model.fit(x, y, epochs=1, verbose=0)
    before = _kernel(model, "first")
    model.get_layer("first").trainable = True
    assert not fit_recording_warnings(model), "silently"
    np.testing.assert_array_equal(before, _kernel(model, "first"))  # untouched weights: exactly the same
    _compile_sgd(model)
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.allclose(before, _kernel(model, "first"))

    # Freezing after fit: the layer keeps training until compile.
    model = _model_with_frozen_first_layer()
    model.get_layer("first").trainable = True
    _compile_sgd(model)
    model.fit(x, y, epochs=1, verbose=0)
    before = _kernel(model, "first")
    model.get_layer("first").trainable = False
    assert not fit_recording_warnings(model), "silently"
    assert not np.allclose(before, _kernel(model, "first")), "a layer frozen after fit still trains"
    _compile_sgd(model)
    before = _kernel(model, "first")
    model.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(before, _kernel(model, "first"))  # untouched weights: exactly the same


def test_dropout_is_identity_at_inference() -> None:
    """Dropout returns its input unchanged with `training=False` and in `predict`; with `training=True` it zeros
    a fraction `rate` of the units and scales the others by `1 / (1 - rate)`."""
    rate = 0.25
    x = np.ones((8, 500), dtype="float32")
    layer = keras.layers.Dropout(rate, seed=1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    np.testing.assert_array_equal(keras.Sequential([keras.Input((500,)), layer]).predict(x, verbose=0), x)
    trained = keras.ops.convert_to_numpy(layer(x, training=True))
    kept = trained[trained != 0]
    np.testing.assert_allclose(kept, 1 / (1 - rate), rtol=1e-6)
    assert abs((trained == 0).mean() - rate) < 0.05


def test_preprocess_input_mutates_numpy_in_place() -> None:
    """Called on a NumPy float array, `resnet50.preprocess_input` changes that array in place; a tf.Tensor is
    left unchanged. (Precisely: the caller's array has the channel means subtracted, still in RGB order, and
    the function returns a BGR view of the same memory, not the same object; integer arrays are copied.)"""
    rgb = np.array([[[[10.0, 20.0, 30.0]]]], dtype="float32")
    original = rgb.copy()
    returned = resnet50.preprocess_input(rgb)
    np.testing.assert_allclose(rgb, original - [123.68, 116.779, 103.939], rtol=1e-6)
    assert np.shares_memory(returned, rgb)
    np.testing.assert_array_equal(returned, rgb[..., ::-1])

    tensor = tf.constant(original)
    resnet50.preprocess_input(tensor)
    np.testing.assert_array_equal(tensor.numpy(), original)
    pixels = original.astype("uint8")
    resnet50.preprocess_input(pixels)
    np.testing.assert_array_equal(pixels, original.astype("uint8"))


def test_resnet50_preprocess_is_caffe() -> None:
    """ResNet50's `preprocess_input` is "caffe" style: channels flipped from RGB to BGR and the ImageNet mean
    pixel (103.939, 116.779, 123.68 in BGR order) subtracted, not scaled to [0, 1] or [-1, 1]."""
    rgb = np.array([[[[0, 0, 0], [255, 255, 255], [10, 20, 30]]]], dtype="float32")
    expected = rgb[..., ::-1] - np.array([103.939, 116.779, 123.68], dtype="float32")
    np.testing.assert_allclose(resnet50.preprocess_input(tf.constant(rgb)), expected, rtol=1e-6)
    np.testing.assert_allclose(resnet50.preprocess_input(rgb.copy()), expected, rtol=1e-6)


def test_resnet50_feature_map_is_size_over_32() -> None:
    """`include_top=False` turns an s x s image into a ceil(s/32) x ceil(s/32) x 2048 feature map: one cell per
    32 x 32 pixels, rounded up (7 x 7 x 2048 at 224, and at 200 too); with `pooling=None` (the default) the output
    is 4-D. Each of its five stride-2 steps maps n to ceil(n/2)."""
    for size in (33, 64, 100, 200, 224, 225):
        base = _small_resnet(size)
        cells = -(-size // 32)
        assert tuple(base.output.shape) == (None, cells, cells, 2048), size
    assert -(-200 // 32) == 7 and 200 // 32 == 6  # 200 tells rounding up from rounding down


def test_random_resnet50_features_are_nearly_parallel() -> None:
    """With random weights, ResNet50's pooled features of any two bundled images point in nearly the same direction
    (cosine similarity above 0.95), whatever the class: the classes differ by a small part on top of a large shared
    one. (64 x 64 here, for speed; measured 0.988 or more at 224 x 224.)"""
    from tests.conftest import BUNDLED_DATA
    from tlhelpers.images import load_image

    files = [sorted((BUNDLED_DATA / name).iterdir())[index] for name in ("circle", "square", "star", "triangle")
             for index in (0, 1)]
    images = np.stack([load_image(path, (64, 64)) for path in files]).astype("float32")
    for seed in (0, 1):
        keras.utils.set_random_seed(seed)
        base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3), pooling="avg")
        pooled = keras.ops.convert_to_numpy(base(resnet50.preprocess_input(images.copy()), training=False))
        unit = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        assert (unit @ unit.T).min() > 0.95, (seed, (unit @ unit.T).min())


def test_resnet50_refuses_below_32_pixels() -> None:
    """ResNet50 (`include_top=False`) needs images of at least 32 x 32 pixels: 31 raises ValueError, 32 works
    and gives a 1 x 1 x 2048 map."""
    with pytest.raises(ValueError, match="at least 32x32"):
        _small_resnet(31)
    assert tuple(_small_resnet(32).output.shape) == (None, 1, 1, 2048)


def test_dense_head_equals_conv1x1_then_average() -> None:
    """GlobalAveragePooling2D -> Dense (pre-softmax logits) equals a 1 x 1 convolution with the same kernel and bias
    at every cell, followed by the average; so Grad-CAM on the feature map such a head reads (ResNet50's output in
    notebook 01, the 1x1 convolution's output in notebook 03) is exactly the class activation map (CAM), up to a
    positive factor."""
    channels, classes = 32, 3
    features = _random_feature_map(channels)
    dense = keras.layers.Dense(classes)
    logits = dense(keras.layers.GlobalAveragePooling2D()(features))
    conv = keras.layers.Conv2D(classes, 1)
    conv.build(features.shape)
    conv.set_weights([dense.get_weights()[0].reshape(1, 1, channels, classes), dense.get_weights()[1]])
    maps = keras.ops.convert_to_numpy(conv(features))
    np.testing.assert_allclose(maps.mean(axis=(1, 2)), logits, rtol=1e-5, atol=1e-5)

    feature_tensor = tf.constant(features)
    with tf.GradientTape() as tape:
        tape.watch(feature_tensor)
        score = dense(keras.layers.GlobalAveragePooling2D()(feature_tensor))[:, 1]
    channel_weights = tf.reduce_mean(tape.gradient(score, feature_tensor), axis=(1, 2))  # Grad-CAM's alpha
    by_hand = np.maximum(np.einsum("bhwc,bc->bhw", features, channel_weights.numpy()), 0)
    cam = np.maximum(maps[..., 1] - dense.get_weights()[1][1], 0)  # sum_k w_k,c A_k
    np.testing.assert_allclose(by_hand * 49, cam, rtol=1e-4, atol=1e-4)

    # The same with what notebook 01 runs: tlhelpers.grad_cam (maps scaled to [0, 1]) on its head.
    head = dense_head((7, 7, channels), classes)
    head.layers[-1].set_weights(dense.get_weights())
    identity = keras.Model(inputs := keras.Input((7, 7, channels)), inputs)
    heatmaps, _ = grad_cam(identity, head, features, class_index=1)
    peak = cam.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(heatmaps, cam / peak, atol=1e-5)


def test_conv1x1_equals_dense_at_each_position() -> None:
    """A Dense layer on a 4-D feature map (no pooling) is applied at every grid cell and the output stays 4-D;
    it equals a `Conv2D(filters, 1)` with the same weights."""
    channels, filters = 32, 5
    features = _random_feature_map(channels)
    dense = keras.layers.Dense(filters)
    per_cell = keras.ops.convert_to_numpy(dense(features))
    assert per_cell.shape == (2, 7, 7, filters)
    conv = keras.layers.Conv2D(filters, 1)
    conv.build(features.shape)
    conv.set_weights([dense.get_weights()[0].reshape(1, 1, channels, filters), dense.get_weights()[1]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(conv(features)), per_cell, rtol=1e-5, atol=1e-5)


def test_conv1x1_head_ignores_positions() -> None:
    """Notebook 03's head (Conv2D 1 x 1 -> GlobalAveragePooling2D -> Dense softmax) gives the same output when the
    cells of its input are shuffled: it uses location no more than notebook 01's head does."""
    keras.utils.set_random_seed(0)
    features = _random_feature_map(64)
    order = np.random.default_rng(1).permutation(49)
    shuffled = features.reshape(2, 49, 64)[:, order].reshape(features.shape)
    assert not np.array_equal(features, shuffled)
    for head in (conv1x1_head((7, 7, 64), 3, filters=16), dense_head((7, 7, 64), 3)):
        np.testing.assert_allclose(head(shuffled), head(features), rtol=1e-5, atol=1e-6)


def test_batchnorm_moving_stats_are_a_moving_average() -> None:
    """A trainable BatchNormalization in training mode normalises with the batch's own statistics, and its stored
    statistics are a moving average: `moving_mean = momentum * old + (1 - momentum) * batch_mean`, momentum 0.99
    by default, so they drift towards your batches' step by step."""
    layer = keras.layers.BatchNormalization()
    assert layer.momentum == 0.99
    rng = np.random.default_rng(0)
    first, second = (rng.normal(5, 2, (16, 4)).astype("float32") for _ in range(2))
    layer(first, training=True)
    expected = 0.01 * first.mean(axis=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_mean), expected, rtol=1e-5)
    out = keras.ops.convert_to_numpy(layer(second, training=True))
    expected = 0.99 * expected + 0.01 * second.mean(axis=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_mean), expected, rtol=1e-5)

    batch_normalised = (second - second.mean(axis=0)) / np.sqrt(second.var(axis=0) + layer.epsilon)
    np.testing.assert_allclose(out, batch_normalised, atol=1e-4)
    assert not np.allclose(keras.ops.convert_to_numpy(layer(second, training=False)), out, atol=0.1)


def test_trainable_inner_layer_of_frozen_base_trains() -> None:
    """`resnet.trainable = False` sets the flag of every layer inside it, once. A layer inside it that you set
    `trainable = True` afterwards is trained by `fit` all the same: `fit` trains the model's `trainable_weights`,
    which list that layer's weights, while the container's own `trainable_weights` stays empty (notebook 01; 05 says
    the same)."""
    keras.utils.set_random_seed(0)
    layers = [keras.Input((4,)), keras.layers.Dense(8, name="bottom"), keras.layers.Dense(8, name="top")]
    base = keras.Sequential(layers, name="base")
    base.trainable = False
    assert not any(layer.trainable for layer in base.layers)  # every inner flag set
    top = base.get_layer("top")
    top.trainable = True  # afterwards: the container keeps trainable = False
    inputs = keras.Input((4,))
    wrapper = keras.Model(inputs, base(inputs, training=False))  # as notebook 01's base_model holds ResNet50
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(wrapper(inputs)))
    assert not base.trainable and not base.trainable_weights
    trained = {id(weight) for weight in model.trainable_weights}
    assert {id(top.kernel), id(top.bias)} <= trained
    assert not {id(weight) for weight in base.get_layer("bottom").weights} & trained

    bottom_before, top_before = _kernel(base, "bottom"), _kernel(base, "top")
    _compile_sgd(model)
    model.fit(*_toy_problem(32), epochs=1, verbose=0)
    np.testing.assert_array_equal(_kernel(base, "bottom"), bottom_before)  # frozen: not touched at all
    assert np.abs(_kernel(base, "top") - top_before).max() > 1e-4  # trained, inside a frozen container


def test_base_trainable_true_unfreezes_batchnorm() -> None:
    """`base.trainable = True` makes every layer of ResNet50 trainable, its BatchNormalization layers too (their
    gamma and beta train), which is why notebook 05 unfreezes with `tlhelpers.unfreeze_from`, which keeps
    BatchNormalization frozen."""
    base = _small_resnet(32)
    base.trainable = False
    base.trainable = True
    batchnorms = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(layer.trainable for layer in base.layers) and len(batchnorms) == 53
    trainable = {id(w) for w in base.trainable_weights}
    assert all(id(layer.gamma) in trainable and id(layer.beta) in trainable for layer in batchnorms)

    unfrozen = unfreeze_from(base, "conv5")
    assert unfrozen and all(name.startswith("conv5_") for name in unfrozen)
    assert not any(layer.trainable or layer.trainable_weights for layer in batchnorms)
    assert not {id(w) for layer in batchnorms for w in layer.weights} & {id(w) for w in base.trainable_weights}


def test_variables_outside_scope_are_not_distributed() -> None:
    """Under `tf.distribute.MirroredStrategy`, a model built inside `strategy.scope()` has distributed (mirrored)
    variables; one built outside does not (and is not trained with the strategy)."""

    def build() -> keras.Model:
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])

    strategy = tf.distribute.MirroredStrategy()  # every GPU, or the CPU when there is none
    with strategy.scope():
        inside = build()
    outside = build()
    for variable in inside.weights:
        assert isinstance(variable.value, tf.distribute.DistributedValues)
        assert strategy.extended.variable_created_in_scope(variable.value)
    for variable in outside.weights:
        assert not isinstance(variable.value, tf.distribute.DistributedValues)
        assert not strategy.extended.variable_created_in_scope(variable.value)
    assert inside.distribute_strategy is strategy and outside.distribute_strategy is not strategy


class _NoXlaLayer(keras.layers.Layer):
    """An identity layer that declares it cannot be compiled with XLA (as StringLookup does)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.supports_jit = False

    def call(self, inputs):
        return inputs


def test_compile_jit_compile_defaults_to_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    """`compile` without `jit_compile` uses "auto", which on TensorFlow turns XLA on only when there is a non-CPU
    device, the model is not run eagerly nor built under a tf.distribute strategy, every layer supports XLA and op
    determinism is off (and not an Apple-silicon Mac with a GPU); so it is False on a CPU-only machine.

    Both branches run on any machine: the device list Keras reads is replaced by a CPU-only one, then by one
    with a GPU (Keras only reads the list; nothing is placed on the pretend GPU)."""
    from tensorflow.python.framework.config import disable_op_determinism, enable_op_determinism

    def build(*extra: keras.layers.Layer) -> keras.Model:
        return keras.Sequential([keras.Input((4,)), *extra, keras.layers.Dense(3)])

    def compiled(model: keras.Model, **kwargs) -> bool:
        model.compile(loss="mse", **kwargs)
        return model.jit_compile

    strategy = tf.distribute.MirroredStrategy()  # on the real devices, before the list is replaced
    with strategy.scope():
        under_strategy = build()
    cpu = tf.config.PhysicalDevice("/physical_device:CPU:0", "CPU")
    gpu = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
    apple_silicon = platform.system() == "Darwin" and "arm" in platform.processor().lower()

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [cpu] if kind in (None, "CPU") else [])
    assert compiled(build()) is False  # CPU only: no XLA

    devices = {None: [cpu, gpu], "CPU": [cpu], "GPU": [gpu]}
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: devices.get(kind, []))
    assert compiled(build()) is not apple_silicon  # a GPU: XLA on (off on an Apple-silicon Mac)
    assert compiled(build(), run_eagerly=True) is False
    assert compiled(build(_NoXlaLayer())) is False
    with strategy.scope():
        assert compiled(under_strategy) is False
    assert compiled(under_strategy) is False  # what counts is the strategy the model was built under
    enable_op_determinism()
    try:
        assert compiled(build()) is False
    finally:
        disable_op_determinism()


def test_keras_file_round_trip_keeps_predictions(tmp_path: Path) -> None:
    """A model with a frozen nested base, saved as `.keras` and loaded with `safe_mode=True`, has the saved weights bit
    for bit, predicts what the saved one does to within 1e-6, and its base is still frozen."""
    model, base, _ = _nested_batchnorm_model(base_trainable=False)
    x, y = _toy_problem(n=64)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)

    assert loaded.get_layer("base").trainable is False
    assert len(loaded.trainable_weights) == len(model.trainable_weights) == 2
    for saved, reloaded in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, reloaded)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=0, atol=1e-6)


def test_lambda_layer_refused_in_safe_mode(tmp_path: Path) -> None:
    """`load_model(..., safe_mode=True)` (the default) refuses a `.keras` file whose `Lambda` layer wraps a Python
    lambda (ValueError naming `Lambda` and `safe_mode=False`); `safe_mode=False` loads it."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2)])
    path = tmp_path / "lambda.keras"
    model.save(path)
    for load in (lambda: keras.models.load_model(path, safe_mode=True), lambda: keras.models.load_model(path)):
        with pytest.raises(ValueError, match=r"(?s)`Lambda`.*safe_mode=False"):
            load()
    loaded = keras.models.load_model(path, safe_mode=False)
    np.testing.assert_array_equal(loaded.predict(np.ones((1, 4)), verbose=0), np.full((1, 4), 2.0))


def test_early_stopping_restores_without_early_stop() -> None:
    """04, exercise 2: `restore_best_weights=True` puts back the best epoch's weights at the end of training even
    when training ran all its epochs and did not stop early."""
    x, y = _toy_problem(n=60)
    model = _mlp("softmax")
    model.compile(keras.optimizers.SGD(1.0), "sparse_categorical_crossentropy")  # large steps: val loss jumps around
    epochs, snapshots = 12, []
    snapshot = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(([w.numpy().copy() for w in model.weights], logs["val_loss"]))
    )
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=epochs, restore_best_weights=True)
    history = model.fit(x[:40], y[:40], validation_data=(x[40:], y[40:]), epochs=epochs, batch_size=8,
                        callbacks=[snapshot, stop], verbose=0)
    assert len(history.history["loss"]) == epochs, "it ran every epoch: no early stop"
    best = int(np.argmin([val_loss for _, val_loss in snapshots]))
    assert best < epochs - 1, "the toy problem must have its best epoch before the last one"
    for kept, weight in zip(snapshots[best][0], model.weights, strict=True):
        np.testing.assert_array_equal(kept, weight.numpy())


# --- structure -------------------------------------------------------------------------------------------------------


def _scan_markers(text: str, where: str) -> tuple[dict[str, list[str]], list[str]]:
    """Find ``<!-- claim: ID -->`` markers in ``text``.

    Returns:
        ``{id: [location, ...]}`` and a list of problems, one per malformed marker, each naming its location
        (``where`` plus the line number).
    """
    found: dict[str, list[str]] = {}
    problems = []
    for start in MARKER_START.finditer(text):
        location = f"{where} line {text.count(chr(10), 0, start.start()) + 1}"
        marker = MARKER.match(text, start.start())
        if marker is None or not CLAIM_ID.fullmatch(marker.group(1)):
            snippet = text[start.start() : start.start() + 60].split("\n")[0]
            problems.append(f"{location}: malformed claim marker {snippet!r}; write <!-- claim: some-id --> "
                            "with an id of lowercase letters and digits joined by '-'")
        else:
            found.setdefault(marker.group(1), []).append(location)
    return found, problems


def _documented_claims() -> tuple[dict[str, list[str]], list[str]]:
    """Markers in the Markdown cells of notebooks/*.ipynb, README.md and docs/*.md: ``{id: locations}``, problems."""
    texts = []
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for index, cell in enumerate(json.loads(notebook.read_text(encoding="utf-8"))["cells"]):
            if cell["cell_type"] == "markdown":
                source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
                texts.append((source, f"notebooks/{notebook.name} cell {index}"))
    for document in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if document.exists():
            texts.append((document.read_text(encoding="utf-8"), str(document.relative_to(ROOT))))
    claims: dict[str, list[str]] = {}
    problems: list[str] = []
    for text, where in texts:
        found, bad = _scan_markers(text, where)
        for claim, locations in found.items():
            claims.setdefault(claim, []).extend(locations)
        problems += bad
    return claims, problems


def _tested_claims() -> dict[str, str]:
    """``{id: test function name}`` for the claim tests of this module and those in TESTED_ELSEWHERE."""
    functions = inspect.getmembers(sys.modules[__name__], inspect.isfunction)
    tested = {
        name.removeprefix("test_").replace("_", "-"): name
        for name, function in functions
        if name.startswith("test_") and name not in STRUCTURE_TESTS and function.__module__ == __name__
    }
    return {**tested, **TESTED_ELSEWHERE}


def test_claims_tested_elsewhere_name_existing_tests() -> None:
    for claim, target in TESTED_ELSEWHERE.items():
        module, function = target.split("::")
        assert callable(getattr(importlib.import_module(module), function, None)), f"{claim}: no test {target}"


def test_marker_scanner_finds_ids_and_bad_markers() -> None:
    text = (
        "ResNet50 wants 32 pixels. <!-- claim: resnet50-min-32 -->\nIt is caffe.<!--claim:caffe-->\n"
        "<!-- claim: -->\n<!-- claim: Bad_Id -->\n<!-- claim: two ids -->\n<!-- claims: x -->\n<!-- claim: open"
    )
    found, problems = _scan_markers(text, "doc.md")
    assert found == {"resnet50-min-32": ["doc.md line 1"], "caffe": ["doc.md line 2"]}
    assert [problem.split(":")[0] for problem in problems] == [f"doc.md line {n}" for n in range(3, 8)]


def test_every_claim_has_a_test_and_every_test_a_claim() -> None:
    documented, problems = _documented_claims()
    tested = _tested_claims()
    problems += [
        f"claim {claim!r} ({', '.join(locations)}) has no test: add test_{claim.replace('-', '_')} to {__name__}"
        for claim, locations in sorted(documented.items())
        if claim not in tested
    ]
    problems += [
        f"{name} tests claim {claim!r}, which no <!-- claim: {claim} --> marker in notebooks/*.ipynb, README.md "
        "or docs/*.md names: mark the sentence it proves, or remove the test"
        for claim, name in sorted(tested.items())
        if claim not in documented
    ]
    assert not problems, "\n".join(problems)


# Notebook 06: KerasHub's ResNet-50 (the `hub` extra).

def _kerashub_resnet50():
    keras_hub = pytest.importorskip("keras_hub")
    return keras_hub.models.ResNetBackbone(**kerashub.RESNET_50)


def test_from_preset_downloads_config_without_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A preset name is fetched from Kaggle even with `load_weights=False`: both calls download the preset's
    `config.json` first."""
    keras_hub = pytest.importorskip("keras_hub")
    from keras_hub.src.utils import preset_utils

    requested = []

    def no_download(handle: str, path: str | None = None, **kwargs: object) -> str:
        requested.append(path)
        raise ConnectionError(f"this test downloads nothing: {handle} {path}")

    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path))
    monkeypatch.setattr(preset_utils.kagglehub, "model_download", no_download)
    with pytest.raises(ConnectionError):
        keras_hub.models.Backbone.from_preset(kerashub.PRESET, load_weights=False)
    with pytest.raises(ConnectionError):
        keras_hub.layers.ImageConverter.from_preset(kerashub.PRESET, image_size=(64, 64))
    assert requested == ["config.json", "config.json"]


def test_kerashub_preset_loads_from_cache_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Notebook 06 loads KerasHub's ResNet-50 weights from Kaggle into `~/.cache/kagglehub/` (or
    `$KAGGLEHUB_CACHE`), and once a run online has put them there it loads them from there without a network.

    The cache is filled as kagglehub's download leaves it (the preset's files under its versioned handle, each
    marked complete), with a small stand-in backbone; every web request fails through a proxy nobody listens on."""
    keras_hub = pytest.importorskip("keras_hub")
    offline_kaggle(monkeypatch, tmp_path)
    stand_in = write_random_preset(tmp_path / "preset", blocks=[1, 1, 1, 1])
    fill_kaggle_cache(tmp_path / "preset")
    with pytest.raises(Exception, match="127.0.0.1"):  # not in the cache: a download, which fails here
        keras_hub.models.Backbone.from_preset("resnet_18_imagenet", load_weights=False)
    backbone = keras_hub.models.Backbone.from_preset(kerashub.PRESET)  # with its weights, from the cache
    np.testing.assert_array_equal(backbone.weights[0].numpy(), stand_in.weights[0].numpy())  # the same bytes
    converter = keras_hub.layers.ImageConverter.from_preset(kerashub.PRESET)  # the preprocessing, from the cache
    assert type(converter) is keras_hub.layers.ResNetImageConverter and tuple(converter.image_size) == (224, 224)
    np.testing.assert_allclose(converter.scale, fixture_config("image_converter.json")["scale"], rtol=1e-6)


def test_kerashub_resnet50_arguments_build_the_preset() -> None:
    """`ResNetBackbone` builds the preset's network from tlhelpers.kerashub's arguments, with the parameter count
    KerasHub lists for it: the arguments are the preset's config.json (tests/fixtures), ResNet v1 (post-activation:
    BatchNormalization after each convolution, the stem's included, ReLU after the addition), which the count
    alone would not tell: the same arguments with `use_pre_activation=True` (ResNet v2) give another count."""
    keras_hub = pytest.importorskip("keras_hub")
    listed = keras_hub.models.Backbone.presets[kerashub.PRESET]["metadata"]["params"]
    preset = fixture_config("config.json")
    assert {name: preset[name] for name in kerashub.RESNET_50} == kerashub.RESNET_50
    backbone = _kerashub_resnet50()
    assert type(backbone) is keras_hub.models.ResNetBackbone
    assert backbone.count_params() == listed == 23_561_152
    names = {layer.name for layer in backbone.layers}
    assert {"conv1_bn", "stack0_block0_3_bn", "stack0_block0_add"} <= names  # v1: BatchNorm before the addition
    assert not {"post_bn", "stack0_block0_pre_activation_bn"} & names  # v2's layers
    v2 = keras_hub.models.ResNetBackbone(**{**kerashub.RESNET_50, "use_pre_activation": True})
    assert "post_bn" in {layer.name for layer in v2.layers} and v2.count_params() != listed


def test_image_converter_resizes_to_its_image_size() -> None:
    """A KerasHub ImageConverter resizes every image to its own image_size (224 x 224 for resnet_50_imagenet, read
    here from the preset's image_converter.json): a 64 x 64 batch comes out 224 x 224, unless image_size is passed."""
    keras_hub = pytest.importorskip("keras_hub")
    converter = keras_hub.layers.ImageConverter.from_preset(str(FIXTURE))
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    assert tuple(converter(images).shape) == (2, 224, 224, 3)
    same = keras_hub.layers.ImageConverter.from_preset(str(FIXTURE), image_size=(64, 64))
    assert tuple(same(images).shape) == (2, 64, 64, 3)
    scale, offset = (np.array(fixture_config("image_converter.json")[key]) for key in ("scale", "offset"))
    np.testing.assert_allclose(same(images), images * scale + offset, rtol=1e-5, atol=1e-4)  # same size: no resize


def test_kerashub_resnet50_is_applications_resnet50_without_conv_biases() -> None:
    """KerasHub's ResNet-50 backbone has the parameters of keras.applications' ResNet50 (include_top=False)
    minus its convolution biases (26,560), and the same 7 x 7 x 2048 feature map at 224."""
    backbone = _kerashub_resnet50()
    applications = resnet50.ResNet50(include_top=False, weights=None, input_shape=(224, 224, 3))
    biases = sum(layer.bias.shape[0] for layer in applications.layers
                 if isinstance(layer, keras.layers.Conv2D) and layer.use_bias)
    assert biases == 26_560
    assert applications.count_params() - backbone.count_params() == biases
    assert not any(getattr(layer, "use_bias", False) for layer in backbone.layers
                   if isinstance(layer, keras.layers.Conv2D))
    assert tuple(backbone(np.zeros((1, 224, 224, 3), "float32")).shape) == (1, 7, 7, 2048)


def test_kerashub_resnet50_downsamples_in_3x3_conv() -> None:
    """Stages 3-5 downsample with stride 2 in the first 1 x 1 convolution of keras.applications' ResNet50 (v1),
    in the 3 x 3 convolution of KerasHub's (v1.5), stem and shortcuts aside; where the stride sits changes no weight
    shape (the two bases have the same convolution kernel shapes)."""
    def strided(layers) -> list:
        return [layer.kernel_size for layer in layers if isinstance(layer, keras.layers.Conv2D)
                and layer.strides == (2, 2) and not layer.name.endswith(("conv1_conv", "_0_conv"))]

    def kernel_shapes(layers) -> list:
        return sorted(tuple(layer.kernel.shape) for layer in layers if isinstance(layer, keras.layers.Conv2D))

    applications = resnet50.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3))
    hub = _kerashub_resnet50()
    assert strided(applications.layers) == [(1, 1)] * 3
    assert strided(hub.layers) == [(3, 3)] * 3
    assert kernel_shapes(applications.layers) == kernel_shapes(hub.layers)  # the stride changes no weight shape


def test_kerashub_model_round_trips_through_keras_file(tmp_path: Path) -> None:
    """A model with a KerasHub converter and frozen backbone inside saves to one .keras file and reloads with
    safe_mode=True (keras_hub imported), with the same predictions to within 1e-6 and the backbone still frozen."""
    keras_hub = pytest.importorskip("keras_hub")
    backbone = _kerashub_resnet50()
    backbone.trainable = False
    converter = keras_hub.layers.ResNetImageConverter(image_size=(64, 64), scale=1 / 255)
    inputs = keras.Input((64, 64, 3))
    features = backbone(converter(inputs), training=False)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(features))
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)


def test_kerashub_backbone_reloads_with_trainable_layers(tmp_path: Path) -> None:
    """A frozen KerasHub backbone inside a model reloads from .keras with trainable == False but its layers
    trainable: the model's trainable_weights list the whole backbone until its layers are frozen again
    (keras.applications' ResNet50 keeps its layers frozen)."""
    backbone = _kerashub_resnet50()
    backbone.trainable = False
    inputs = keras.Input((64, 64, 3))
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(backbone(inputs, training=False)))
    model = keras.Model(inputs, outputs)
    assert len(model.trainable_weights) == 2
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    inner = reloaded.get_layer(backbone.name)
    assert inner.trainable is False
    assert len(reloaded.trainable_weights) > 100, "fixed upstream? then reword notebook 06's sentence"
    for layer in inner.layers:
        layer.trainable = False
    assert len(reloaded.trainable_weights) == 2
