"""tlhelpers.heads: shapes, parameter formulas, Dropout at inference, save and reload."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from tests.conftest import assert_close
from tlhelpers.heads import assert_same_architecture, assert_trains_only, conv1x1_head, dense_head, mlp_dropout_head


def dense_params(num_classes: int) -> int:
    return 2048 * num_classes + num_classes


def mlp_params(num_classes: int, units=(256, 128)) -> int:
    widths = [2048, *units, num_classes]
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))


def conv_params(num_classes: int, filters: int = 256) -> int:
    return (2048 * filters + filters) + (filters * num_classes + num_classes)


@pytest.mark.parametrize("grid", [(1, 1), (2, 2), (7, 7), (5, 10)])  # 32, 64, 224 and 160x320 pixels
@pytest.mark.parametrize("num_classes", [2, 5, 1000])
def test_shapes_and_parameter_counts(grid: tuple[int, int], num_classes: int) -> None:
    shape = (*grid, 2048)
    features = np.random.default_rng(0).random((3, *shape), dtype=np.float32)
    for head, expected in [
        (dense_head(shape, num_classes), dense_params(num_classes)),
        (mlp_dropout_head(shape, num_classes), mlp_params(num_classes)),
        (conv1x1_head(shape, num_classes), conv_params(num_classes)),
    ]:
        assert head.count_params() == expected, head.layers
        probabilities = head.predict(features, verbose=0)
        assert probabilities.shape == (3, num_classes)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_options_change_the_formula() -> None:
    assert mlp_dropout_head((7, 7, 2048), 3, units=(64,), dropout=(0.2,)).count_params() == mlp_params(3, (64,))
    assert conv1x1_head((7, 7, 2048), 3, filters=32).count_params() == conv_params(3, 32)
    with pytest.raises(ValueError, match="one rate per hidden layer"):
        mlp_dropout_head((7, 7, 2048), 3, units=(64, 32), dropout=(0.5,))
    with pytest.raises(ValueError, match="must be in \\[0, 1\\)"):
        mlp_dropout_head((7, 7, 2048), 3, dropout=(1.0, 0.3))


def test_dropout_is_active_only_in_training() -> None:
    head = mlp_dropout_head((2, 2, 2048), 4)
    features = np.random.default_rng(1).random((8, 2, 2, 2048), dtype=np.float32)
    hidden = keras.Model(head.inputs, head.layers[2].output)  # after the first Dropout
    assert not np.array_equal(hidden(features, training=True), hidden(features, training=True))
    np.testing.assert_array_equal(hidden(features, training=False), hidden(features, training=False))
    np.testing.assert_allclose(head.predict(features, verbose=0), head(features, training=False), rtol=1e-5)


def test_assert_same_architecture_names_the_difference() -> None:
    assert_same_architecture(dense_head((7, 7, 2048), 3), dense_head((7, 7, 2048), 3))
    with pytest.raises(AssertionError, match="layers differ"):
        assert_same_architecture(dense_head((7, 7, 2048), 3), conv1x1_head((7, 7, 2048), 3))
    with pytest.raises(AssertionError, match="layers differ"):  # the output shape (batch, 4) differs first
        assert_same_architecture(dense_head((7, 7, 2048), 3), dense_head((7, 7, 2048), 4))
    no_bias = keras.Sequential([keras.Input((7, 7, 2048)), keras.layers.GlobalAveragePooling2D(),
                                keras.layers.Dense(3, activation="softmax", use_bias=False)])
    with pytest.raises(AssertionError, match="the head has 6,144 parameters, the reference 6,147"):
        assert_same_architecture(no_bias, dense_head((7, 7, 2048), 3))


@pytest.mark.parametrize("builder", [dense_head, mlp_dropout_head, conv1x1_head])
def test_trained_head_round_trips_through_keras_file(builder, tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    features = rng.random((16, 2, 2, 2048), dtype=np.float32)
    labels = rng.integers(0, 3, 16)
    head = builder((2, 2, 2048), 3)
    head.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    head.fit(features, labels, epochs=2, verbose=0)
    head.save(tmp_path / "head.keras")
    reloaded = keras.models.load_model(tmp_path / "head.keras", safe_mode=True)
    assert_close(reloaded.predict(features, verbose=0), head.predict(features, verbose=0))  # another model object


def _base_and_model(head_builder=dense_head) -> tuple[keras.Model, keras.Model, keras.Model]:
    """A frozen toy base (Conv2D "bottom" -> Conv2D "top", (batch, 8, 8, 3) -> (batch, 1, 1, 16)) called inside
    a model with the head on it, as ResNet50 is in notebook 01: (model, base, head)."""
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(8, 3, strides=2, name="bottom"),
                             keras.layers.Conv2D(16, 3, name="top")], name="toy_resnet")
    base.trainable = False
    inputs = keras.Input((8, 8, 3))
    features = base(inputs, training=False)
    head = head_builder(features.shape[1:], 3)
    return keras.Model(inputs, head(features)), base, head


@pytest.mark.parametrize("builder", [dense_head, mlp_dropout_head, conv1x1_head])
def test_assert_trains_only_passes_on_a_frozen_base(builder) -> None:
    model, base, head = _base_and_model(builder)
    assert_trains_only(model, head)
    batchnorm_head = keras.Sequential([keras.Input(base.output.shape[1:]), keras.layers.GlobalAveragePooling2D(),
                                       keras.layers.BatchNormalization(), keras.layers.Dense(3, activation="softmax")])
    inputs = keras.Input((8, 8, 3))
    assert_trains_only(keras.Model(inputs, batchnorm_head(base(inputs))), batchnorm_head)  # moving stats never train


def test_assert_trains_only_names_an_unfrozen_layer_inside_the_frozen_base() -> None:
    model, base, head = _base_and_model()
    base.get_layer("top").trainable = True  # after base.trainable = False: fit trains it
    assert not base.trainable_weights  # the container looks frozen ...
    with pytest.raises(AssertionError, match=r"fit would train 1 layer\(s\) outside the head: toy_resnet/top;"):
        assert_trains_only(model, head)  # ... the model does not

    model, base, head = _base_and_model()
    base.trainable = True
    with pytest.raises(AssertionError, match="2 layer.* toy_resnet/bottom, toy_resnet/top"):
        assert_trains_only(model, head)


def test_assert_trains_only_names_head_weights_that_would_not_train() -> None:
    model, _, head = _base_and_model(mlp_dropout_head)
    last = head.layers[-1]
    last.trainable = False
    with pytest.raises(AssertionError, match=f"not train the head's weights {last.kernel.path}, {last.bias.path}:"):
        assert_trains_only(model, head)

    model, _, head = _base_and_model()
    model.trainable = False
    with pytest.raises(AssertionError, match="not train the head's weights .*kernel, .*bias: their layer is frozen"):
        assert_trains_only(model, head)

    model, _, head = _base_and_model()
    other_head = dense_head(head.input.shape[1:], 3)  # not the head inside the model
    with pytest.raises(AssertionError, match="outside the head"):
        assert_trains_only(model, other_head)

    model, _, head = _base_and_model()
    head.trainable = False
    head.layers[-1].trainable = True  # the same trap as the base's, on the head's side: fit trains it
    assert_trains_only(model, head)
