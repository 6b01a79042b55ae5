"""tlhelpers.data: listing, splitting, decoding and refusing bad folders."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_image
from tlhelpers.data import load_image_folder


def _hashes(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_classes_counts_and_batches(image_folder: Path) -> None:
    data = load_image_folder(image_folder, image_size=(48, 40), batch_size=4, validation_split=0.2, seed=1)
    assert data.class_names == ["blue", "green", "red"]
    assert data.counts == {"train": {"blue": 8, "green": 8, "red": 8}, "val": {"blue": 2, "green": 2, "red": 2}}
    images, labels = next(iter(data.train_ds))
    assert images.shape == (4, 48, 40, 3) and images.dtype.name == "float32"
    assert labels.dtype.name == "int32"
    assert 0 <= float(np.min(images)) and float(np.max(images)) > 1.5, "raw [0, 255] values, not /255"
    assert data.test_ds is None
    assert "total" in data.summary() and "skipped files: 0" in data.summary()


def test_labels_match_folders(image_folder: Path) -> None:
    data = load_image_folder(image_folder, image_size=(32, 32), batch_size=64, validation_split=0.2)
    images, labels = next(iter(data.val_ds))
    for image, label in zip(images.numpy(), labels.numpy(), strict=True):
        channel = {"red": 0, "green": 1, "blue": 2}[data.class_names[label]]
        assert image[0, 0].argmax() == channel  # the background colour names the class


def test_split_is_seeded_stratified_and_disjoint(image_folder: Path) -> None:
    first = load_image_folder(image_folder, image_size=(32, 32), seed=3)
    again = load_image_folder(image_folder, image_size=(32, 32), seed=3)
    other = load_image_folder(image_folder, image_size=(32, 32), seed=4)
    assert first.files == again.files
    assert first.files["val"] != other.files["val"]
    train = {p for p, _ in first.files["train"]}
    val = {p for p, _ in first.files["val"]}
    assert not train & val and len(train | val) == 30


def test_classes_argument_selects_and_orders(image_folder: Path) -> None:
    data = load_image_folder(image_folder, image_size=(32, 32), classes=["red", "blue"])
    assert data.class_names == ["red", "blue"]
    assert sum(data.counts["train"].values()) + sum(data.counts["val"].values()) == 20


def test_skips_non_images_and_empty_files_and_modifies_nothing(image_folder: Path) -> None:
    (image_folder / "red" / ".DS_Store").write_bytes(b"\x00\x01")
    (image_folder / "red" / "notes.txt").write_text("not an image")
    (image_folder / "blue" / "empty.png").write_bytes(b"")
    write_image(image_folder / "green" / "UPPER.PNG", (0, 200, 0))
    before = _hashes(image_folder)
    with pytest.warns(UserWarning, match="3 file"):
        data = load_image_folder(image_folder, image_size=(32, 32), validation_split=0.0)
    assert sorted(p.name for p, _ in data.skipped) == [".DS_Store", "empty.png", "notes.txt"]
    assert all(reason for _, reason in data.skipped)
    assert data.counts["train"]["green"] == 11, "upper-case extensions are images too"
    assert data.val_ds is None
    for _ in data.train_ds:  # a full epoch decodes every listed file
        pass
    assert _hashes(image_folder) == before, "the user's folder must not change"


def test_refuses_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.*does not exist"):
        load_image_folder(tmp_path / "missing")


def test_refuses_fewer_than_two_classes(tmp_path: Path) -> None:
    write_image(tmp_path / "only" / "a.png", (1, 2, 3))
    with pytest.raises(ValueError, match="at least two"):
        load_image_folder(tmp_path)


def test_refuses_class_without_images(image_folder: Path) -> None:
    (image_folder / "empty_class").mkdir()
    (image_folder / "empty_class" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="empty_class' holds no usable images.*classes="):
        load_image_folder(image_folder)


def test_refuses_unknown_class(image_folder: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        load_image_folder(image_folder, classes=["red", "nope"])


@pytest.mark.parametrize(("kwargs", "match"), [({"image_size": (31, 64)}, "minimum of 32"),
                                               ({"validation_split": 1.0}, "validation_split")])
def test_refuses_bad_arguments(image_folder: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_image_folder(image_folder, **kwargs)
