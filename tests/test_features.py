"""tlhelpers.features: features computed once, cached, and trusted only when intact.

The three guarantees a user feels: features are never reused after the images, the image size
or the base's weights changed; a damaged cache file is recomputed with a warning; a second
notebook (a new base built after seeding) reuses what the first one computed.
"""

from __future__ import annotations

import gc
import os
import weakref
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.conftest import assert_close, write_image
from tlhelpers import features as tl_features
from tlhelpers import runtime
from tlhelpers.data import ImageFolder, load_image_folder, make_dataset
from tlhelpers.features import cached_features, default_augmentation, extraction_batch_size
from tlhelpers.model import build_base_model

SIZE = 32  # the smallest ResNet50 input: (1, 1, 2048) feature maps, fast on a CPU


def make_base(size: int = SIZE, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)  # random weights that depend only on the seed, as in a notebook
    return build_base_model((size, size), weights=None)


@pytest.fixture(scope="module")
def base() -> keras.Model:
    return make_base()


@pytest.fixture
def folder(image_folder: Path) -> ImageFolder:
    return load_image_folder(image_folder, image_size=(SIZE, SIZE), batch_size=8, seed=0, test_split=0.0)


def images_of(data: ImageFolder, split: str) -> np.ndarray:
    """The split's images, decoded as the dataset decodes them, in ``data.files`` order."""
    size = tuple(data.train_ds.element_spec[0].shape[1:3])
    return np.concatenate([x.numpy() for x, _ in make_dataset(data.files[split], size, 64)])


def extractions(cache_dir: Path) -> int:
    """Cache files written: a new key means a new extraction and a new file."""
    return len(list(cache_dir.glob("*.npz")))


def test_features_are_the_base_models_output_in_file_order(base, folder, tmp_path: Path) -> None:
    train = cached_features(base, folder, "train", cache_dir=tmp_path, progress=False)
    assert train.features.shape == (24, 1, 1, 2048) and train.features.dtype == np.float32
    np.testing.assert_array_equal(train.labels, [label for _, label in folder.files["train"]])
    expected = base.predict(images_of(folder, "train"), verbose=0)
    np.testing.assert_allclose(train.features, expected, rtol=1e-5, atol=1e-5)
    assert not train.from_cache and train.path.parent == tmp_path and train.path.suffix == ".npz"


def test_second_call_reads_the_cache_without_running_the_base(base, folder, tmp_path: Path) -> None:
    first = cached_features(base, folder, "val", cache_dir=tmp_path, progress=False)
    assert extractions(tmp_path) == 1
    again = cached_features(base, folder, "val", cache_dir=tmp_path, progress=False)
    assert again.from_cache and again.key == first.key and extractions(tmp_path) == 1
    np.testing.assert_array_equal(again.features, first.features)
    assert first.path.name.startswith(f"val-{SIZE}x{SIZE}-float32-") and len(again.labels) == 6
    assert not list(tmp_path.glob("*.tmp")), "the write under a temporary name leaves no temporary file"


def test_notebooks_in_a_row_extract_once_per_split(folder, tmp_path: Path) -> None:
    """Each notebook builds its own base after seeding; the second one finds the first one's features."""
    for _notebook in range(2):
        base_model = make_base(seed=42)
        for split in ("train", "val"):
            cached_features(base_model, folder, split, cache_dir=tmp_path, progress=False)
    assert sorted(path.name.split("-")[0] for path in tmp_path.glob("*.npz")) == ["train", "val"]


def test_a_touched_image_changes_the_key(base, image_folder: Path, tmp_path: Path) -> None:
    data = load_image_folder(image_folder, image_size=(SIZE, SIZE), seed=0)
    first = cached_features(base, data, "train", cache_dir=tmp_path, progress=False)
    path = data.files["train"][0][0]
    stat = path.stat()
    write_image(path, (10, 20, 30), size=48)  # new content, size and modification time
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = cached_features(base, data, "train", cache_dir=tmp_path, progress=False)
    assert not second.from_cache and second.key != first.key and extractions(tmp_path) == 2
    assert not np.allclose(second.features[0], first.features[0])
    np.testing.assert_allclose(second.features[1:], first.features[1:], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("change", ["image size", "weights", "dtype", "preprocessing"])
def test_what_the_features_depend_on_is_in_the_key(change, base, image_folder: Path, tmp_path: Path) -> None:
    data = load_image_folder(image_folder, image_size=(SIZE, SIZE), seed=0)
    first = cached_features(base, data, "val", cache_dir=tmp_path, progress=False)
    other_base, other_data, dtype = base, data, "float32"
    if change == "image size":
        other_base = make_base(size=64)
        other_data = load_image_folder(image_folder, image_size=(64, 64), seed=0)
    elif change == "weights":
        other_base = make_base(seed=1)  # another random initialisation, same weights source (None)
    elif change == "dtype":
        dtype = "float16"
    else:  # pitfall 1: the same ResNet50 weights fed /255 images instead of preprocess_input
        inputs = keras.Input(shape=(SIZE, SIZE, 3))
        other_base = keras.Model(inputs, base.get_layer("resnet50")(keras.layers.Rescaling(1 / 255)(inputs),
                                                                    training=False))
    second = cached_features(other_base, other_data, "val", cache_dir=tmp_path, dtype=dtype, progress=False)
    assert not second.from_cache and second.key != first.key and extractions(tmp_path) == 2
    assert cached_features(base, data, "val", cache_dir=tmp_path, progress=False).from_cache, "both stay cached"


def test_one_changed_weight_of_the_same_model_changes_the_key(folder, tmp_path: Path) -> None:
    """Fine-tuning changes the base in place: the key is computed from the weights at every call."""
    model = make_base()
    first = cached_features(model, folder, "val", cache_dir=tmp_path, progress=False)
    kernel = model.get_layer("resnet50").get_layer("conv5_block3_3_conv").kernel
    kernel.assign(kernel.numpy() * 1.5)
    second = cached_features(model, folder, "val", cache_dir=tmp_path, progress=False)
    assert not second.from_cache and second.key != first.key and extractions(tmp_path) == 2
    assert not np.allclose(second.features, first.features)
    expected = model.predict(images_of(folder, "val"), verbose=0)  # the traced pass reads the new weights
    np.testing.assert_allclose(second.features, expected, rtol=1e-5, atol=1e-5)


def test_any_batch_size_gives_the_same_features_with_one_trace(base, folder, tmp_path: Path) -> None:
    """24 training and 6 validation images in batches of 5: the last, smaller batch is not padded or retraced."""
    whole = cached_features(base, folder, "train", cache_dir=tmp_path / "a", batch_size=64, progress=False)
    fives = cached_features(base, folder, "train", cache_dir=tmp_path / "b", batch_size=5, progress=False)
    cached_features(base, folder, "val", cache_dir=tmp_path / "b", batch_size=5, progress=False)
    np.testing.assert_allclose(fives.features, whole.features, rtol=1e-5, atol=1e-5)
    assert tl_features._FORWARD[base].experimental_get_tracing_count() == 1


def test_the_traced_forward_pass_does_not_keep_the_model_alive(folder, tmp_path: Path) -> None:
    model = make_base()
    cached_features(model, folder, "val", cache_dir=tmp_path, progress=False)
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None


def test_extraction_batches_hold_about_the_pixels_of_32_images_at_224() -> None:
    assert extraction_batch_size((224, 224)) == 32
    assert extraction_batch_size((64, 64)) == 392
    assert extraction_batch_size((448, 448)) == 8
    assert extraction_batch_size((1000, 1000)) == 1
    for size in [(32, 32), (96, 128), (160, 160), (300, 200)]:
        pixels = extraction_batch_size(size) * size[0] * size[1]
        assert 32 * 224 * 224 - size[0] * size[1] < pixels <= 32 * 224 * 224


def _flip_a_byte_of_the_features(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the features: plausible values, but zip's CRC no longer matches
    path.write_bytes(bytes(data))


def _rewrite_with_other_shape(path: Path) -> None:
    with np.load(path) as stored:
        features, labels = stored["features"][:-1], stored["labels"][:-1]
    with open(path, "wb") as file:
        np.savez(file, features=features, labels=labels)


DAMAGE = {
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "garbage": lambda path: path.write_bytes(b"not a cache file"),
    "empty": lambda path: path.write_bytes(b""),
    "flipped byte": _flip_a_byte_of_the_features,
    "wrong shape": _rewrite_with_other_shape,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_cache_file_is_recomputed_with_a_warning(damage, base, folder, tmp_path: Path) -> None:
    first = cached_features(base, folder, "val", cache_dir=tmp_path, progress=False)
    DAMAGE[damage](first.path)
    with pytest.warns(UserWarning, match="is not usable .*recomputing it"):
        second = cached_features(base, folder, "val", cache_dir=tmp_path, progress=False)
    assert not second.from_cache and second.path == first.path
    np.testing.assert_allclose(second.features, first.features, rtol=1e-5, atol=1e-5)
    assert cached_features(base, folder, "val", cache_dir=tmp_path, progress=False).from_cache, "repaired"


def test_a_failed_write_leaves_no_file(base, folder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tl_features.np, "savez", disk_full)
    with pytest.raises(OSError, match="No space left"):
        cached_features(base, folder, "val", cache_dir=tmp_path, progress=False)
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".npz", ".tmp")]


def test_float16_halves_the_memory_and_stays_close(base, folder, tmp_path: Path) -> None:
    full = cached_features(base, folder, "train", cache_dir=tmp_path, progress=False)
    half = cached_features(base, folder, "train", cache_dir=tmp_path, dtype="float16", progress=False)
    again = cached_features(base, folder, "train", cache_dir=tmp_path, dtype="float16", progress=False)
    assert half.features.dtype == np.float16 and half.features.nbytes * 2 == full.features.nbytes
    assert again.from_cache and again.features.dtype == np.float16
    np.testing.assert_allclose(half.features.astype("float32"), full.features, rtol=2e-3, atol=1e-3)
    batch, labels = next(iter(half.dataset(batch_size=5)))
    assert batch.dtype.name == "float16" and batch.shape == (5, 1, 1, 2048) and labels.shape == (5,)
    head = keras.Sequential([keras.Input(shape=half.features.shape[1:]), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(3, activation="softmax")])
    on_half = head.predict(half.dataset(batch_size=5), verbose=0)  # the head casts float16 to float32 exactly
    assert_close(on_half, head.predict(half.features.astype("float32"), verbose=0))  # batch 5 vs 32: other kernels


def test_head_trained_on_features_is_the_same_head_on_the_base(base, folder, tmp_path: Path) -> None:
    train = cached_features(base, folder, "train", cache_dir=tmp_path, progress=False)
    val = cached_features(base, folder, "val", cache_dir=tmp_path, progress=False)
    keras.utils.set_random_seed(0)
    head = keras.Sequential([keras.Input(shape=train.features.shape[1:]), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(3, activation="softmax")])
    head.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    head.fit(train.dataset(batch_size=8, shuffle_seed=0), validation_data=val.dataset(8), epochs=2, verbose=0)
    inputs = keras.Input(shape=(SIZE, SIZE, 3))
    model = keras.Model(inputs, head(base(inputs)))
    on_images = model.predict(images_of(folder, "val"), verbose=0)
    np.testing.assert_allclose(on_images, head.predict(val.features, verbose=0), rtol=1e-4, atol=1e-4)


def test_augmented_copies_are_seeded_and_keyed(base, folder, tmp_path: Path) -> None:
    plain = cached_features(base, folder, "train", cache_dir=tmp_path, progress=False)
    augmented = cached_features(base, folder, "train", cache_dir=tmp_path, augment_copies=2, progress=False)
    n = len(plain.labels)
    assert augmented.features.shape == (3 * n, 1, 1, 2048)
    assert augmented.key != plain.key and not augmented.from_cache
    np.testing.assert_array_equal(augmented.labels, np.tile(plain.labels, 3))
    np.testing.assert_allclose(augmented.features[:n], plain.features, rtol=1e-5, atol=1e-5)
    assert not np.allclose(augmented.features[n : 2 * n], plain.features)
    assert not np.allclose(augmented.features[n : 2 * n], augmented.features[2 * n :])
    elsewhere = cached_features(base, folder, "train", cache_dir=tmp_path / "other", augment_copies=2, progress=False)
    np.testing.assert_allclose(elsewhere.features, augmented.features, rtol=1e-5, atol=1e-5)  # seeded
    other_seed = cached_features(base, folder, "train", cache_dir=tmp_path, augment_copies=2, seed=1, progress=False)
    assert other_seed.key != augmented.key
    other_pipeline = keras.Sequential([keras.layers.RandomFlip("vertical", seed=0)])
    assert cached_features(base, folder, "train", cache_dir=tmp_path, augment_copies=2,
                           augmentation=other_pipeline, progress=False).key != augmented.key
    assert isinstance(default_augmentation(0), keras.Sequential)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"split": "test"}, "split 'test' has no images"),
     ({"dtype": "float64"}, "dtype='float64' is not supported"),
     ({"split": "val", "augment_copies": 1}, "training split only"),
     ({"augment_copies": -1}, "augment_copies=-1"),
     ({"batch_size": 0}, "batch_size=0: use a positive whole number")],
)
def test_bad_arguments_say_what_to_do(kwargs, message, base, folder, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        cached_features(base, folder, cache_dir=tmp_path, progress=False, **kwargs)


def test_image_sizes_of_base_and_folder_must_agree(base, image_folder: Path, tmp_path: Path) -> None:
    data = load_image_folder(image_folder, image_size=(64, 64))
    with pytest.raises(ValueError, match=r"takes \(32, 32\) images but the folder was loaded at \(64, 64\)"):
        cached_features(base, data, "val", cache_dir=tmp_path, progress=False)


def test_default_cache_dir_is_git_ignored_build_or_the_environment(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tl_features.CACHE_ENV, raising=False)
    default = runtime.default_dir("feature_cache", tl_features.CACHE_ENV)
    assert default.parts[-2:] == ("build", "feature_cache")
    monkeypatch.setenv(tl_features.CACHE_ENV, str(tmp_path))
    assert runtime.default_dir("feature_cache", tl_features.CACHE_ENV) == tmp_path
    monkeypatch.setattr(runtime, "_CHECKOUT", tmp_path)  # installed from a wheel: no pyproject.toml beside it
    assert runtime.default_dir("downloads") == Path.home() / ".cache" / "tlhelpers" / "downloads"


def test_cache_files_are_written_to_the_default_dir(base, folder, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tl_features.CACHE_ENV, str(tmp_path))
    assert cached_features(base, folder, "val", progress=False).path.parent == tmp_path
