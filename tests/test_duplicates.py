"""tlhelpers.duplicates through load_image_folder: planted copies are reported by name, nothing is changed."""

from __future__ import annotations

import hashlib
import shutil
import warnings
from pathlib import Path

from tests.conftest import write_image
from tlhelpers.data import load_image_folder
from tlhelpers.duplicates import describe, find_duplicates

COLOURS = {"cats": (200, 0, 0), "dogs": (0, 200, 0)}


def _hashes(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _split_folder(root: Path, per_class: int = 3) -> Path:
    for split in ("train", "val", "test"):
        for name, colour in COLOURS.items():
            for i in range(per_class):
                write_image(root / split / name / f"{i}.png", colour)
    return root


def _load(root: Path, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_image_folder(root, image_size=(32, 32), **kwargs)
    return data, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_no_copies_no_warning(tmp_path: Path) -> None:
    data, messages = _load(_split_folder(tmp_path))
    assert data.duplicates == [] and messages == []
    assert "identical files: 0 group(s), 0 across splits" in data.summary()


def test_a_copy_across_train_and_test_is_named_as_a_leak(tmp_path: Path) -> None:
    root = _split_folder(tmp_path)
    shutil.copyfile(root / "train" / "cats" / "0.png", root / "test" / "cats" / "copy.png")
    before = _hashes(root)
    data, messages = _load(root)
    assert len(data.duplicates) == 1
    group = data.duplicates[0]
    assert group.leaks and group.splits == ["train", "test"] and group.classes == ["cats"]
    assert [p.relative_to(root).as_posix() for _, p, _ in group.files] == ["train/cats/0.png", "test/cats/copy.png"]
    assert len(messages) == 1, "one warning for all the copies"
    message = messages[0]
    for expected in ("train/cats/0.png", "test/cats/copy.png", "inflated", "See .duplicates", "nothing was changed"):
        assert expected in message, (expected, message)
    assert "'train/cats/0.png' [train] = 'test/cats/copy.png' [test]" in message, "each copy with its split"
    summary = data.summary()
    assert "identical files: 1 group(s), 1 across splits (a leak" in summary and "test/cats/copy.png" in summary
    assert _hashes(root) == before, "the user's folder must not change"


def test_a_copy_in_another_class_and_in_the_same_class(tmp_path: Path) -> None:
    root = _split_folder(tmp_path)
    shutil.copyfile(root / "train" / "cats" / "1.png", root / "train" / "dogs" / "cat_as_dog.png")
    shutil.copyfile(root / "train" / "dogs" / "2.png", root / "train" / "dogs" / "2 (1).png")
    data, messages = _load(root)
    across, within = data.duplicates
    assert across.classes == ["cats", "dogs"] and not across.leaks and "several labels" in across.kind
    assert within.classes == ["dogs"] and not within.leaks and "counted twice" in within.kind
    assert len(messages) == 1 and "cat_as_dog.png" in messages[0] and "inflated" not in messages[0]


def test_leaks_come_first_and_the_warning_names_a_few(tmp_path: Path) -> None:
    root = _split_folder(tmp_path, per_class=4)
    for i in range(4):  # four copies within train/dogs, then one leak
        shutil.copyfile(root / "train" / "dogs" / f"{i}.png", root / "train" / "dogs" / f"again_{i}.png")
    shutil.copyfile(root / "val" / "cats" / "3.png", root / "train" / "cats" / "from_val.png")
    data, messages = _load(root)
    assert len(data.duplicates) == 5 and data.duplicates[0].leaks
    assert data.duplicates[0].splits == ["train", "val"] and "inflates the val accuracy" in data.duplicates[0].kind
    assert len(messages) == 1 and "from_val.png" in messages[0] and "and 2 more" in messages[0]
    assert "1 group(s) span train/validation/test" in messages[0]


def test_copies_split_apart_by_the_seed_are_a_leak(tmp_path: Path) -> None:
    """Without split folders the split is made in Python: a photo saved twice can land in train and test."""
    for name, colour in COLOURS.items():
        for i in range(10):
            write_image(tmp_path / name / f"{i}.png", colour)
    for i in range(6):
        shutil.copyfile(tmp_path / "cats" / "0.png", tmp_path / "cats" / f"copy_{i}.png")
    data, messages = _load(tmp_path, seed=0)
    (group,) = data.duplicates
    where = {p: split for split, pairs in data.files.items() for p, _ in pairs}
    assert [split for split, _, _ in group.files] == sorted((where[p] for _, p, _ in group.files),
                                                            key=["train", "val", "test"].index)
    assert len(group.files) == 7 and group.leaks, "at seed 0 the 7 copies do not all land in one split"
    assert len(messages) == 1 and "inflated" in messages[0]


def test_files_of_equal_size_but_other_content_are_not_copies(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * 100)
    b.write_bytes(b"y" * 100)
    assert find_duplicates({"train": [(a, 0), (b, 1)]}, ["a", "b"]) == []
    b.write_bytes(b"x" * 100)
    (group,) = find_duplicates({"train": [(a, 0)], "test": [(b, 1)]}, ["a", "b"])
    assert group.leaks and group.classes == ["a", "b"]


def test_a_large_group_names_a_few_copies(tmp_path: Path) -> None:
    a = write_image(tmp_path / "a" / "0.png", (1, 2, 3))
    pairs = [(a, 0)]
    for i in range(20):
        shutil.copyfile(a, tmp_path / "a" / f"copy_{i}.png")
        pairs.append((tmp_path / "a" / f"copy_{i}.png", 0))
    (group,) = find_duplicates({"train": pairs}, ["a"])
    line = describe(group, tmp_path)
    assert line.count("'") == 6 and "and 18 more copies" in line and "within class a (train)" in line
