"""tlhelpers.model: weights resolution and the frozen, self-preprocessing base."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

from tlhelpers import model as tl_model
from tlhelpers.model import WEIGHTS_FILE, WeightsError, build_base_model, resolve_weights


def save_like_keras_applications(model: keras.Model, path: Path) -> Path:
    """Write weights in the layout of Keras' downloadable ``*_notop.h5`` files (legacy HDF5)."""
    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, model)
    return path


@pytest.fixture(scope="module")
def base64() -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_base_model((64, 64), weights=None)


def test_none_means_random_weights() -> None:
    assert resolve_weights(None) is None
    assert resolve_weights("None") is None


def test_missing_path_names_the_file_and_the_offline_switch(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as error:
        resolve_weights(tmp_path / "nowhere.h5")
    message = str(error.value)
    assert "nowhere.h5' does not exist" in message and WEIGHTS_FILE in message and "WEIGHTS=none" in message


def test_file_that_is_not_hdf5_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / WEIGHTS_FILE
    bogus.write_text("<html>proxy login page</html>")
    with pytest.raises(WeightsError, match="not an HDF5"):
        resolve_weights(bogus)


def test_imagenet_offline_gives_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -2] Name or service not known")

    monkeypatch.setattr(tl_model.keras.utils, "get_file", offline)
    with pytest.raises(WeightsError) as error:
        resolve_weights("imagenet")
    message = str(error.value)
    assert "Could not download" in message and str(tmp_path / "models" / WEIGHTS_FILE) in message
    with pytest.raises(WeightsError, match="not in Keras' cache"):
        resolve_weights("imagenet", download=False)


def test_imagenet_uses_keras_cache_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / WEIGHTS_FILE).write_bytes(b"cached")
    monkeypatch.setattr(tl_model, "WEIGHTS_MD5", hashlib.md5(b"cached").hexdigest())  # a complete file
    monkeypatch.setattr(tl_model.keras.utils, "get_file", pytest.fail)  # must not download
    assert resolve_weights("imagenet") == "imagenet"


def test_base_is_frozen_with_the_right_output_shape(base64: keras.Model) -> None:
    assert not base64.trainable_weights
    assert base64.output.shape[1:] == (2, 2, 2048)
    assert build_base_model((96, 128), weights=None).output.shape[1:] == (3, 4, 2048)


def test_preprocessing_is_resnet50s_own_and_leaves_input_alone(base64: keras.Model) -> None:
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    untouched = images.copy()
    features = base64.predict(images, verbose=0)
    assert np.array_equal(images, untouched), "the caller's array must not change"
    resnet = base64.get_layer("resnet50")
    expected = resnet(keras.applications.resnet50.preprocess_input(images.copy()), training=False)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)
    rescaled = resnet(images / 255.0, training=False)
    assert not np.allclose(features, rescaled, atol=1e-3), "/255 would be a different input"


def test_weights_from_a_local_file(base64: keras.Model, tmp_path: Path) -> None:
    path = save_like_keras_applications(base64.get_layer("resnet50"), tmp_path / WEIGHTS_FILE)
    loaded = build_base_model((64, 64), weights=path)
    images = np.random.default_rng(1).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), base64.predict(images, verbose=0), rtol=1e-5)


@pytest.mark.parametrize(
    "other",
    [lambda: keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(64, 64, 3)),
     lambda: keras.applications.ResNet50(include_top=True, weights=None)],
    ids=["another-architecture", "include_top-True"],
)
def test_weights_for_another_model_are_refused(tmp_path: Path, other) -> None:
    path = save_like_keras_applications(other(), tmp_path / "other.h5")
    with pytest.raises(WeightsError, match=f"does not hold ResNet50 weights without the top \\({WEIGHTS_FILE}"):
        build_base_model((64, 64), weights=path)


def test_too_small_images_are_refused() -> None:
    with pytest.raises(ValueError, match="minimum of 32"):
        build_base_model((16, 16), weights=None)


def test_a_folder_is_not_a_weights_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="is a folder, not a weights file") as error:
        resolve_weights(tmp_path)
    assert WEIGHTS_FILE in str(error.value) and "WEIGHTS=none" in str(error.value)
    (tmp_path / WEIGHTS_FILE).write_bytes(b"")
    with pytest.raises(WeightsError, match=f"pass '{tmp_path / WEIGHTS_FILE}'"):
        resolve_weights(tmp_path)


def test_truncated_hdf5_file_is_refused(base64: keras.Model, tmp_path: Path) -> None:
    whole = save_like_keras_applications(base64.get_layer("resnet50"), tmp_path / "whole.h5").read_bytes()
    cut = tmp_path / WEIGHTS_FILE
    cut.write_bytes(whole[: len(whole) // 2])  # an interrupted download: the HDF5 signature is still there
    for call in (lambda: resolve_weights(cut), lambda: build_base_model((64, 64), weights=cut)):
        with pytest.raises(WeightsError, match="truncated or damaged.*download it again") as error:
            call()
        assert "WEIGHTS=none" in str(error.value)


@pytest.mark.parametrize(
    ("other", "match"),
    [(lambda: keras.applications.ResNet101(include_top=False, weights=None, input_shape=(64, 64, 3)),
      "another architecture"),
     (lambda: keras.applications.ResNet50(include_top=True, weights=None), "with the top")],
    ids=["ResNet101", "include_top-True"],
)
def test_resolve_weights_itself_refuses_weights_for_another_model(tmp_path: Path, other, match: str) -> None:
    """The notebooks call resolve_weights, then keras.applications.ResNet50: the check must come first."""
    path = save_like_keras_applications(other(), tmp_path / WEIGHTS_FILE)
    with pytest.raises(WeightsError, match=f"does not hold ResNet50 weights without the top.*{match}"):
        resolve_weights(path)


def test_damaged_cached_imagenet_file_is_downloaded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / WEIGHTS_FILE).write_bytes(b"<html>half a download")
    with pytest.raises(WeightsError, match="incomplete or damaged"):
        resolve_weights("imagenet", download=False)
    calls = []
    monkeypatch.setattr(tl_model.keras.utils, "get_file", lambda *a, **k: calls.append(k["file_hash"]))
    assert resolve_weights("imagenet") == "imagenet"
    assert calls == [tl_model.WEIGHTS_MD5], "Keras' get_file replaces a file whose hash is wrong"
