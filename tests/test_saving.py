"""tlhelpers.saving: the real model structure survives .keras and SavedModel round trips."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.conftest import assert_close, write_image
from tlhelpers import saving
from tlhelpers.images import load_image
from tlhelpers.model import build_base_model
from tlhelpers.saving import export_for_serving, predict_file, save_and_reload

CLASS_NAMES = ["circle", "square", "triangle"]


def conv1x1_head(feature_shape: tuple[int, ...]) -> keras.Sequential:
    return keras.Sequential([keras.Input(feature_shape), keras.layers.Conv2D(8, 1, activation="relu", name="conv1x1"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")],
                            name="head")


@pytest.fixture(scope="module")
def model() -> keras.Model:
    """The notebooks' structure: preprocessing ops, the frozen nested ResNet50, a Sequential head."""
    keras.utils.set_random_seed(0)
    base_model = build_base_model((64, 64), weights=None)
    return keras.Model(base_model.inputs, conv1x1_head(base_model.output.shape[1:])(base_model.outputs[0]))


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, size=(4, 64, 64, 3)).astype("float32")


def test_keras_round_trip_in_safe_mode_predicts_the_same_and_stays_frozen(
    model: keras.Model, batch: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "outputs" / "model.keras"
    reloaded = save_and_reload(model, path, batch)
    assert path.is_file()
    assert_close(reloaded(batch), model(batch))  # another model object: its own kernels on a GPU
    assert len(reloaded.trainable_weights) == len(model.trainable_weights) == 4  # the head's kernels and biases
    assert not reloaded.get_layer("resnet50").trainable


def test_round_trip_of_a_base_model_called_as_a_layer(batch: np.ndarray, tmp_path: Path) -> None:
    keras.utils.set_random_seed(1)
    base_model = build_base_model((64, 64), weights=None)
    inputs = keras.Input((64, 64, 3))
    model = keras.Model(inputs, conv1x1_head(base_model.output.shape[1:])(base_model(inputs, training=False)))
    reloaded = save_and_reload(model, tmp_path / "nested.keras", batch)
    assert not reloaded.get_layer("base_model").trainable and len(reloaded.trainable_weights) == 4


def test_save_and_reload_wants_the_keras_format(model: keras.Model, batch: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model.h5' must end in .keras"):
        save_and_reload(model, tmp_path / "model.h5", batch)


def tiny_model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                             keras.layers.Dense(3, activation="softmax")])


def test_save_and_reload_notices_a_different_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images = np.ones((2, 8, 8, 3), dtype="float32")
    other = tiny_model(seed=2)
    monkeypatch.setattr(saving.keras.models, "load_model", lambda *args, **kwargs: other)
    with pytest.raises(AssertionError, match="predicts differently"):
        save_and_reload(tiny_model(seed=1), tmp_path / "m.keras", images)
    other.trainable = False
    with pytest.raises(AssertionError, match="0 trainable weight tensors, the saved one 2"):
        save_and_reload(tiny_model(seed=1), tmp_path / "m.keras", images)


def test_load_image_decodes_like_the_dataset_pipeline(tmp_path: Path) -> None:
    path = write_image(tmp_path / "red.png", (200, 0, 0), size=40)
    image = load_image(path, (64, 48))
    assert image.shape == (64, 48, 3) and image.dtype == np.float32
    expected = tf.image.resize(tf.io.decode_png(tf.io.read_file(str(path)), channels=3), (64, 48))
    np.testing.assert_allclose(image, expected, atol=1e-4)


def test_load_image_makes_grey_and_transparent_images_rgb(tmp_path: Path) -> None:
    Image.new("L", (40, 40), 90).save(tmp_path / "grey.png")
    Image.new("RGBA", (40, 40), (10, 20, 30, 0)).save(tmp_path / "clear.png")
    np.testing.assert_allclose(load_image(tmp_path / "grey.png", (32, 32))[0, 0], [90, 90, 90])
    np.testing.assert_allclose(load_image(tmp_path / "clear.png", (32, 32))[0, 0], [10, 20, 30])


def test_load_image_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.jpg' does not exist"):
        load_image(tmp_path / "nowhere.jpg", (32, 32))
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(ValueError, match="notes.jpg' could not be decoded as an image"):
        load_image(tmp_path / "notes.jpg", (32, 32))


def test_predict_file_returns_the_top_classes_with_probabilities(model: keras.Model, tmp_path: Path) -> None:
    path = write_image(tmp_path / "photo.jpg", (0, 200, 0), size=100)
    top = predict_file(model, path, CLASS_NAMES)
    assert len(top) == 3 and sorted(name for name, _ in top) == sorted(CLASS_NAMES)
    probabilities = [p for _, p in top]
    assert probabilities == sorted(probabilities, reverse=True) and abs(sum(probabilities) - 1) < 1e-5
    expected = np.asarray(model(load_image(path, (64, 64))[np.newaxis]))[0]
    assert top[0] == (CLASS_NAMES[int(expected.argmax())], pytest.approx(float(expected.max()), rel=1e-5))
    assert predict_file(model, path, CLASS_NAMES, top=1) == top[:1]


def test_predict_file_checks_the_class_names(model: keras.Model, tmp_path: Path) -> None:
    path = write_image(tmp_path / "photo.png", (0, 200, 0))
    with pytest.raises(ValueError, match="predicts 3 classes but class_names has 2"):
        predict_file(model, path, ["cat", "dog"])


def test_exported_saved_model_serves_the_same_predictions(
    model: keras.Model, batch: np.ndarray, tmp_path: Path
) -> None:
    directory = export_for_serving(model, tmp_path / "serving")
    assert directory == tmp_path / "serving" and (directory / "saved_model.pb").is_file()
    serving = tf.saved_model.load(str(directory))
    expected = model(batch)
    np.testing.assert_allclose(serving.serve(batch), expected, rtol=1e-5, atol=1e-6)
    served = serving.signatures["serving_default"](image=tf.constant(batch))
    np.testing.assert_allclose(next(iter(served.values())), expected, rtol=1e-5, atol=1e-6)


def test_export_for_serving_checks_a_batch_when_given(tmp_path: Path) -> None:
    model = tiny_model(seed=3)
    images = np.random.default_rng(1).uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")
    assert export_for_serving(model, tmp_path / "tiny", images) == tmp_path / "tiny"
