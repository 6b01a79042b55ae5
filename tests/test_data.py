"""tlhelpers.data: listing, splitting, decoding and refusing bad folders."""

from __future__ import annotations

import hashlib
import io
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.conftest import write_image
from tlhelpers import images as tl_images
from tlhelpers.data import load_image_folder, make_dataset
from tlhelpers.images import read_rgb


def _hashes(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_classes_counts_and_batches(image_folder: Path) -> None:
    data = load_image_folder(image_folder, image_size=(48, 40), batch_size=4, validation_split=0.2, test_split=0.0,
                             seed=1)
    assert data.class_names == ["blue", "green", "red"]
    assert data.counts == {"train": {"blue": 8, "green": 8, "red": 8}, "val": {"blue": 2, "green": 2, "red": 2},
                           "test": {"blue": 0, "green": 0, "red": 0}}
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
    assert first.files == again.files, "the same seed picks the same files on every run"
    assert first.files["val"] != other.files["val"] and first.files["test"] != other.files["test"]
    train, val, test = ({p for p, _ in first.files[s]} for s in ("train", "val", "test"))
    assert not train & val and not train & test and not val & test
    assert len(train | val | test) == 30
    assert first.counts == {"train": dict.fromkeys(first.class_names, 6), "val": dict.fromkeys(first.class_names, 2),
                            "test": dict.fromkeys(first.class_names, 2)}, "stratified: each class split 6/2/2"
    for split in ("train", "val", "test"):
        assert all(p.parent.name == first.class_names[y] for p, y in first.files[split]), "labels follow folders"


def test_default_split_gives_test_ds(image_folder: Path) -> None:
    data = load_image_folder(image_folder, image_size=(32, 32), batch_size=4)
    assert data.test_ds is not None
    labels = np.concatenate([y.numpy() for _, y in data.test_ds])
    assert sorted(labels.tolist()) == [0, 0, 1, 1, 2, 2], "the test split, in dataset order, not shuffled"
    assert np.array_equal(labels, [y for _, y in data.files["test"]])
    assert "test" in data.summary().splitlines()[0]


def test_test_split_does_not_move_when_validation_split_changes(image_folder: Path) -> None:
    """Test first, then validation, from one shuffle: the test images depend on the seed and test_split only."""
    small = load_image_folder(image_folder, image_size=(32, 32), validation_split=0.1, test_split=0.2)
    large = load_image_folder(image_folder, image_size=(32, 32), validation_split=0.4, test_split=0.2)
    assert small.files["test"] == large.files["test"]
    assert {p for p, _ in small.files["val"]} < {p for p, _ in large.files["val"]}
    no_test = load_image_folder(image_folder, image_size=(32, 32), validation_split=0.2, test_split=0.0)
    assert no_test.test_ds is None and no_test.files["test"] == []
    assert sum(no_test.counts["train"].values()) == 24


def test_bundled_shapes_split_24_8_8() -> None:
    data = load_image_folder(Path(__file__).parents[1] / "data" / "shapes", image_size=(32, 32))
    for split, n in (("train", 24), ("val", 8), ("test", 8)):
        assert data.counts[split] == dict.fromkeys(data.class_names, n), split


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"test_split": 1.0}, r"test_split=1.0 must be in \[0, 1\)"),
    ({"test_split": -0.1}, r"test_split=-0.1 must be in"),
    ({"validation_split": 0.5, "test_split": 0.5}, r"validation_split=0.5 \+ test_split=0.5 must be below 1"),
])
def test_refuses_bad_test_split(image_folder: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_image_folder(image_folder, **kwargs)


def test_refuses_a_class_left_without_training_images(image_folder: Path) -> None:
    for path in sorted((image_folder / "green").iterdir())[2:]:
        path.unlink()  # the test's own copy: green keeps 2 images, one for validation and one for test
    with pytest.raises(ValueError, match=r"class 'green' has 2 usable image\(s\).*keep one for training"):
        load_image_folder(image_folder, image_size=(32, 32))
    data = load_image_folder(image_folder, image_size=(32, 32), test_split=0.0)
    assert data.counts["train"]["green"] == 1 and data.counts["val"]["green"] == 1


def test_classes_argument_selects_and_orders(image_folder: Path) -> None:
    data = load_image_folder(image_folder, image_size=(32, 32), classes=["red", "blue"])
    assert data.class_names == ["red", "blue"]
    assert sum(sum(c.values()) for c in data.counts.values()) == 20


def test_skips_non_images_and_empty_files_and_modifies_nothing(image_folder: Path) -> None:
    (image_folder / "red" / ".DS_Store").write_bytes(b"\x00\x01")
    (image_folder / "red" / "notes.txt").write_text("not an image")
    (image_folder / "blue" / "empty.png").write_bytes(b"")
    write_image(image_folder / "green" / "UPPER.PNG", (0, 200, 0))
    before = _hashes(image_folder)
    with pytest.warns(UserWarning, match="3 file"):
        data = load_image_folder(image_folder, image_size=(32, 32), validation_split=0.0, test_split=0.0)
    assert sorted(p.name for p, _ in data.skipped) == [".DS_Store", "empty.png", "notes.txt"]
    assert all(reason for _, reason in data.skipped)
    assert data.counts["train"]["green"] == 11, "upper-case extensions are images too"
    assert data.val_ds is None and data.test_ds is None
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


# --- A messy folder, as users' own folders are ------------------------------------------------

RED = (200, 40, 40)


def _solid(colour: tuple[int, int, int] = RED, size: tuple[int, int] = (40, 30)) -> Image.Image:
    return Image.new("RGB", size, colour)


def _gif(path: Path) -> None:
    frames = [_solid(RED).convert("P"), _solid((0, 0, 255)).convert("P")]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)


def _sixteen_bit(path: Path) -> None:
    Image.fromarray(np.full((30, 40), 120 * 257, dtype=np.uint16)).save(path)  # 16-bit greyscale PNG


def _rgba(path: Path) -> None:
    image = _solid().convert("RGBA")
    image.putalpha(60)
    image.save(path)


# file name -> (writer, RGB the loader must give). Every one is a usable image.
GOOD_FILES = {
    "rgb.png": (lambda p: _solid().save(p), RED),
    "grey.png": (lambda p: Image.new("L", (40, 30), 120).save(p), (120, 120, 120)),
    "rgba.png": (_rgba, RED),
    "palette.png": (lambda p: _solid().convert("P").save(p), RED),
    "sixteen_bit.png": (_sixteen_bit, (120, 120, 120)),
    "cmyk.jpg": (lambda p: _solid().convert("CMYK").save(p, quality=95), RED),
    "grey.jpg": (lambda p: Image.new("L", (40, 30), 120).save(p, quality=95), (120, 120, 120)),
    "bitmap.bmp": (lambda p: _solid().save(p), RED),
    "animated.gif": (_gif, RED),  # the first frame
    "web.webp": (lambda p: _solid().save(p, lossless=True), RED),
    "scan.tiff": (lambda p: _solid().save(p), RED),
    "UPPER.JPG": (lambda p: _solid().save(p, "JPEG", quality=95), RED),
    "UPPER.JPEG": (lambda p: _solid().save(p, "JPEG", quality=95), RED),
    "UPPER.PNG": (lambda p: _solid().save(p, "PNG"), RED),
    "chat_été_猫.png": (lambda p: _solid().save(p), RED),
    "no_extension": (lambda p: _solid().save(p, "PNG"), RED),
    "nested/deeper.png": (lambda p: _solid().save(p), RED),
}


def _jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


# file name -> (content, a word the reason must contain). None of them is usable.
BAD_FILES = {
    "empty.jpg": (b"", "empty"),
    "truncated.jpg": (_jpeg_bytes()[:1500], "truncated"),
    "truncated.png": (_png_bytes()[:2000], "truncated"),
    "random.png": (bytes(np.random.default_rng(1).integers(0, 255, 500, dtype=np.uint8)), "not an image"),
    "page.jpg": (b"<html><body>Proxy login required</body></html>", "not an image"),
    ".DS_Store": (b"\x00\x00\x00\x01Bud1" + bytes(200), "not an image"),
    "Thumbs.db": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(200), "not an image"),
    "notes.txt": (b"cats I photographed", "not an image"),
    "labels.csv": (b"file,label\nrgb.png,cat\n", "not an image"),
    "._rgb.png": (b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ", "not an image"),  # macOS AppleDouble
}


@pytest.fixture
def messy_folder(tmp_path: Path) -> Path:
    """``cats/`` holds every kind of image file and every kind of junk; ``dogs/`` is plain.

    Also: a stray file beside the class folders, and hidden and ``__MACOSX`` folders that
    must not become classes.
    """
    root = tmp_path / "messy"
    for name, (writer, _) in GOOD_FILES.items():
        (root / "cats" / name).parent.mkdir(parents=True, exist_ok=True)
        writer(root / "cats" / name)
    for name, (content, _) in BAD_FILES.items():
        (root / "cats" / name).write_bytes(content)
    for i in range(4):
        write_image(root / "dogs" / f"dog_{i}.png", (0, 200, 0))
    (root / "README.txt").write_text("my photos")
    write_image(root / "__MACOSX" / "cats" / "x.png", (1, 2, 3))
    write_image(root / ".thumbnails" / "x" / "y.png", (1, 2, 3))
    return root


def test_messy_folder_uses_every_image_and_lists_the_rest(messy_folder: Path) -> None:
    before = _hashes(messy_folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_image_folder(messy_folder, image_size=(32, 32), batch_size=5, validation_split=0.0,
                                 test_split=0.0)
    assert data.class_names == ["cats", "dogs"], "hidden and __MACOSX folders are not classes"
    used = {str(p.relative_to(messy_folder / "cats").as_posix()) for p, y in data.files["train"] if y == 0}
    assert used == set(GOOD_FILES)
    reasons = {p.name: reason for p, reason in data.skipped}
    assert set(reasons) == {*BAD_FILES, "README.txt"}
    for name, (_, word) in BAD_FILES.items():
        assert word in reasons[name], (name, reasons[name])
    assert "not inside a class folder" in reasons["README.txt"]
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    skipped_warnings = [m for m in messages if ".skipped" in m]  # the other one: identical red PNGs, .duplicates
    assert len(skipped_warnings) == 1 and f"{len(BAD_FILES) + 1} file(s)" in skipped_warnings[0]
    assert len(messages) == 2 and data.duplicates and all(not g.leaks for g in data.duplicates)
    summary = data.summary(max_skipped=3)
    assert f"skipped files: {len(BAD_FILES) + 1}" in summary and "more: see .skipped" in summary
    n = 0
    for images, _ in data.train_ds:  # a full epoch: no file stops it
        assert images.shape[1:] == (32, 32, 3) and images.dtype == tf.float32
        assert 0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 255
        n += len(images)
    assert n == len(GOOD_FILES) + 4
    assert _hashes(messy_folder) == before, "the user's folder must not change"


@pytest.mark.parametrize("name", list(GOOD_FILES))
def test_every_kind_of_image_becomes_rgb_in_0_255(messy_folder: Path, name: str) -> None:
    path = messy_folder / "cats" / name
    pixels = read_rgb(path)
    assert pixels.shape == (30, 40, 3) and pixels.dtype == np.uint8
    images, _ = next(iter(make_dataset([(path, 0)], (32, 32), 1)))
    colour = images[0].numpy().reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(colour, GOOD_FILES[name][1], atol=8)  # JPEG is lossy


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), RED)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(tmp_path / "phone.jpg", exif=exif)
    assert read_rgb(tmp_path / "phone.jpg").shape == (40, 20, 3)


def test_a_file_damaged_after_the_check_is_named(image_folder: Path) -> None:
    data = load_image_folder(image_folder, image_size=(32, 32), validation_split=0.0)
    victim = data.files["train"][0][0]
    victim.write_bytes(victim.read_bytes()[:60])  # in the test's own copy
    with pytest.raises(tf.errors.OpError, match=f"{victim.name}.*Run load_image_folder again"):
        for _ in data.train_ds:
            pass


def test_class_with_only_junk_is_refused_with_reasons(image_folder: Path) -> None:
    (image_folder / "junk").mkdir()
    (image_folder / "junk" / "a.jpg").write_bytes(b"")
    (image_folder / "junk" / "b.png").write_text("text")
    with pytest.raises(ValueError, match=r"junk' holds no usable images \(a.jpg: empty.*b.png: not an image"):
        load_image_folder(image_folder)


@pytest.mark.parametrize(("kwargs", "match"), [({"classes": ["red", "red"]}, "twice"),
                                               ({"batch_size": 0}, "batch_size")])
def test_refuses_more_bad_arguments(image_folder: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_image_folder(image_folder, **kwargs)


def test_progress_bar_only_for_large_folders(image_folder: Path, monkeypatch, capsys) -> None:
    load_image_folder(image_folder, image_size=(32, 32))
    assert "Checking images" not in capsys.readouterr().err
    monkeypatch.setattr(tl_images, "PROGRESS_MIN_FILES", 10)
    load_image_folder(image_folder, image_size=(32, 32))
    assert "Checking images" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:1 group\\(s\\) of identical files \\(1000 files\\)")  # one image saved 1000 times
def test_a_thousand_files_are_checked_in_seconds(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    for i in range(1000):
        folder = tmp_path / f"class_{i % 4}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{i}.png", compress_level=1)
    start = time.perf_counter()
    data = load_image_folder(tmp_path, image_size=(32, 32))
    elapsed = time.perf_counter() - start
    assert sum(sum(c.values()) for c in data.counts.values()) == 1000
    assert elapsed < 15, f"checking 1000 small files took {elapsed:.1f} s"


# --- Folders that come split into train/, val/ and test/ --------------------------------------


def _split_layout(root: Path, splits: dict[str, list[str]], per_class: int = 3) -> Path:
    colours = {"red": (200, 0, 0), "green": (0, 200, 0), "blue": (0, 0, 200)}
    for split, names in splits.items():
        for name in names:
            for i in range(per_class):
                write_image(root / split / name / f"{i}.png", colours[name])
    return root


def test_train_val_test_folders_are_the_split(tmp_path: Path) -> None:
    root = _split_layout(tmp_path, {s: ["red", "green"] for s in ("train", "val", "test")})
    data = load_image_folder(root, image_size=(32, 32), validation_split=0.5, test_split=0.3)
    assert data.class_names == ["green", "red"]
    assert data.counts == {s: {"green": 3, "red": 3} for s in ("train", "val", "test")}
    for split in ("train", "val", "test"):
        assert all(p.parts[-3] == split for p, _ in data.files[split])
    assert data.test_ds is not None and sum(len(y) for _, y in data.test_ds) == 6
    assert "test" in data.summary()


def test_validation_folder_name_and_train_only_split(tmp_path: Path) -> None:
    data = load_image_folder(_split_layout(tmp_path / "a", {"train": ["red", "green"], "validation": ["red", "green"]},
                                           per_class=5), image_size=(32, 32), test_split=0.2)
    assert data.counts["val"] == {"green": 5, "red": 5}, "the validation/ folder is the validation split"
    assert data.counts["train"] == {"green": 4, "red": 4}, "without test/, test comes out of train/"
    assert data.counts["test"] == {"green": 1, "red": 1} and data.test_ds is not None
    assert all(p.parts[-3] == "train" for p, _ in data.files["test"])
    data = load_image_folder(_split_layout(tmp_path / "b", {"train": ["red", "green"], "test": ["red", "green"]},
                                           per_class=5), image_size=(32, 32), validation_split=0.2, test_split=0.4)
    assert data.counts["train"] == {"green": 4, "red": 4}, "without val/, validation comes out of train/"
    assert data.counts["val"] == {"green": 1, "red": 1} and data.counts["test"] == {"green": 5, "red": 5}
    assert all(p.parts[-3] == "test" for p, _ in data.files["test"]), "test_split is unused with a test/ folder"


def test_split_folders_must_agree_on_classes(tmp_path: Path) -> None:
    root = _split_layout(tmp_path, {"train": ["red", "green", "blue"], "val": ["red", "green"]})
    with pytest.raises(ValueError, match=r"differ.*missing from val: \['blue'\].*classes="):
        load_image_folder(root)
    data = load_image_folder(root, image_size=(32, 32), classes=["red", "green"])
    assert data.class_names == ["red", "green"]


def test_split_folders_mixed_with_class_folders_are_refused(tmp_path: Path) -> None:
    root = _split_layout(tmp_path, {"train": ["red", "green"], "val": ["red", "green"]})
    write_image(root / "cats" / "a.png", (1, 2, 3))
    with pytest.raises(ValueError, match=r"mixes split folders.*other folders \['cats'\]"):
        load_image_folder(root)
    (root / "train").rename(root / "dogs")
    with pytest.raises(ValueError, match=r"has split folder\(s\) \['val'\] but no train/ folder"):
        load_image_folder(root)


def test_pipelines_keep_tf_data_autotuning_as_the_guides_teach(image_folder: Path) -> None:
    """``num_parallel_calls`` and ``prefetch`` are ``tf.data.AUTOTUNE``; autotuning is not switched off."""
    data = load_image_folder(image_folder, image_size=(32, 32), batch_size=8, seed=0)
    for ds in (data.train_ds, data.val_ds, make_dataset(data.files["val"], (32, 32), 4)):
        assert ds.options().autotune.enabled is not False
    images = np.concatenate([x.numpy() for x, _ in make_dataset(data.files["val"], (32, 32), 4)])
    assert images.shape == (len(data.files["val"]), 32, 32, 3), "every image, in batches of 4"
