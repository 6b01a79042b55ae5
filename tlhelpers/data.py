"""Load a folder of images, one sub-folder per class (taught in notebook 01).

The layout is the one most image datasets and most users' own photos have::

    my_images/                          or, already split:   my_images/
        cats/  001.jpg  002.png ...                              train/  cats/ dogs/
        dogs/  a.jpeg ...                                        val/    cats/ dogs/   (or validation/)
                                                                 test/   cats/ dogs/   (optional)

Every file is decoded once before training (see :mod:`tlhelpers.images`): files that are not
usable images are listed in ``skipped`` with the reason, and never stop an epoch half-way.
Without split folders the train / validation / test split is made in Python, stratified by
class and the same on every run with the same seed; with ``train/`` and ``val/`` but no ``test/``,
the test split is held out of ``train/``. Files with identical content are reported (see
:mod:`tlhelpers.duplicates`). Nothing in the folder is ever modified, moved or deleted.
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from tlhelpers.duplicates import DuplicateGroup, describe, find_duplicates, warning_message
from tlhelpers.images import check_images, read_rgb
from tlhelpers.model import check_image_size

SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation"), "test": ("test",)}

@dataclass
class ImageFolder:
    """What :func:`load_image_folder` returns.

    Attributes:
        class_names: Class names; label ``i`` means ``class_names[i]``.
        train_ds: Shuffled batches of ``(images, labels)``: images are float32
            RGB in ``[0, 255]`` of shape ``(batch, height, width, 3)``, labels
            int32 class indices of shape ``(batch,)``.
        val_ds: The same for the validation split (not shuffled), or ``None``.
        test_ds: The test split (not shuffled): the ``test/`` folder if there is one, else
            ``test_split`` of each class; ``None`` when ``test_split=0`` and there is no ``test/``.
        counts: ``{split: {class_name: number_of_images}}``.
        files: ``{split: [(path, label), ...]}`` in the order the dataset uses.
        skipped: ``(path, reason)`` for every file that is not used.
        directory: The folder that was loaded.
        duplicates: Groups of files with identical content (see :mod:`tlhelpers.duplicates`),
            those that span train/validation/test first.
    """

    class_names: list[str]
    train_ds: tf.data.Dataset
    val_ds: tf.data.Dataset | None
    test_ds: tf.data.Dataset | None
    counts: dict[str, dict[str, int]]
    files: dict[str, list[tuple[Path, int]]]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    directory: Path | None = None
    duplicates: list[DuplicateGroup] = field(default_factory=list)

    def summary(self, max_skipped: int = 10) -> str:
        """Return a short table: classes, images per split, the first skipped files and why, then identical files."""
        splits = list(self.counts)
        lines = [f"{'class':<20}" + "".join(f"{s:>8}" for s in splits)]
        for name in self.class_names:
            lines.append(f"{name:<20}" + "".join(f"{self.counts[s][name]:>8}" for s in splits))
        lines.append(f"{'total':<20}" + "".join(f"{sum(self.counts[s].values()):>8}" for s in splits))
        lines.append(f"skipped files: {len(self.skipped)}")
        for path, reason in self.skipped[:max_skipped]:
            shown = path.relative_to(self.directory) if self.directory in path.parents else path
            lines.append(f"  {shown}: {reason}")
        if len(self.skipped) > max_skipped:
            lines.append(f"  ... and {len(self.skipped) - max_skipped} more: see .skipped")
        leaks = sum(g.leaks for g in self.duplicates)
        lines.append(f"identical files: {len(self.duplicates)} group(s), {leaks} across splits"
                     + (" (a leak: inflates validation/test accuracy)" if leaks else ""))
        lines += [f"  {describe(g, self.directory)}" for g in self.duplicates[:max_skipped]]
        if len(self.duplicates) > max_skipped:
            lines.append(f"  ... and {len(self.duplicates) - max_skipped} more: see .duplicates")
        return "\n".join(lines)


def _read_for_pipeline(path: bytes, image_size: tuple[int, int]) -> np.ndarray:
    name = os.fsdecode(path)
    try:
        return read_rgb(name, image_size)
    except Exception as error:
        raise ValueError(f"could not read '{name}' ({error}); it was readable when the folder was "
                         "checked: was it changed or deleted? Run load_image_folder again") from error


def make_dataset(
    files: list[tuple[Path, int]],
    image_size: tuple[int, int],
    batch_size: int,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Build a batched ``tf.data`` pipeline over ``(path, label)`` pairs.

    Images are decoded with :func:`tlhelpers.images.read_rgb` (Pillow) and resized by
    ``tf.image.resize`` (bilinear), as ``keras.utils.image_dataset_from_directory`` does.

    Args:
        files: Image paths, already checked by :func:`tlhelpers.images.check_images`, with integer labels.
        image_size: ``(height, width)`` every image is resized to.
        batch_size: Images per batch.
        shuffle_seed: Shuffle every epoch with this seed; ``None`` keeps order.

    Returns:
        Batches of ``(images, labels)``: ``(batch, height, width, 3)`` float32
        in ``[0, 255]`` and ``(batch,)`` int32.
    """
    paths = tf.constant([os.fsencode(p) for p, _ in files], dtype=tf.string)
    labels = tf.constant([label for _, label in files], dtype=tf.int32)

    def load(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.numpy_function(lambda p: _read_for_pipeline(p, image_size), [path], tf.uint8, stateful=False)
        image.set_shape((None, None, 3))
        image = tf.image.resize(image, image_size)  # float32, still in [0, 255]
        image.set_shape((*image_size, 3))
        return image, label

    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _folders(folder: Path) -> list[str]:
    """Visible sub-folders, sorted; hidden ones and macOS' ``__MACOSX`` are not classes."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX")))


def _stray_files(folder: Path) -> list[tuple[Path, str]]:
    return [(p, "not inside a class folder") for p in sorted(folder.iterdir()) if p.is_file()]


def _split_folders(root: Path) -> dict[str, Path]:
    """Return ``{split: folder}`` when ``root`` holds train/val/test folders, else ``{}``."""
    names = _folders(root)
    found: dict[str, Path] = {}
    for split, aliases in SPLIT_FOLDERS.items():
        matches = [n for n in names if n.lower() in aliases]
        if len(matches) > 1:
            raise ValueError(f"'{root}' has {len(matches)} {split} folders {matches}; keep one")
        if matches:
            found[split] = root / matches[0]
    if not found:
        return {}
    split_names = [p.name for p in found.values()]
    if "train" not in found:
        raise ValueError(f"'{root}' has split folder(s) {split_names} but no train/ folder; put the training "
                         f"images in train/<class>/, or rename {split_names} if they are classes")
    others = [n for n in names if n not in split_names]
    if others:
        raise ValueError(f"'{root}' mixes split folders {split_names} with other folders {others}; use either "
                         "class folders only, or train/ (+ val/ and test/) each holding the class folders")
    return found


def _class_names(splits: dict[str, Path], classes: list[str] | None) -> list[str]:
    """Class names shared by every split folder (or ``classes``), after checking they agree."""
    per_split = {split: _folders(folder) for split, folder in splits.items()}
    if classes is not None:
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes={classes} names a class twice")
        for split, folder in splits.items():
            missing = [c for c in classes if c not in per_split[split]]
            if missing:
                raise FileNotFoundError(f"class folder(s) {missing} do not exist in '{folder}'; "
                                        f"it has {per_split[split]}; check classes={classes}")
        return list(classes)
    first = next(iter(splits))  # "train", or "all" without split folders
    names = per_split[first]
    for split, found in per_split.items():
        if found != names:
            raise ValueError(f"class folders differ between '{splits[first]}' {names} and '{splits[split]}' "
                             f"{found} (missing from {split}: {sorted(set(names) - set(found))}, only in {split}: "
                             f"{sorted(set(found) - set(names))}); make them agree, or choose classes=[...]")
    return names


def _held_out(n: int, fraction: float) -> int:
    """Images of a class of ``n`` to hold out: at least one when ``fraction > 0``, so every class is in every split."""
    return max(round(n * fraction), 1) if fraction > 0 else 0


def _three_way_split(paths: list[Path], validation_split: float, test_split: float,
                     seed: int) -> tuple[list[Path], list[Path], list[Path]]:
    """Split one class with one seeded shuffle: test first, then validation, the rest is train.

    Taking test first means the test images depend only on the seed and ``test_split``:
    changing ``validation_split`` never moves an image into or out of the test split.
    """
    shuffled = list(paths)
    random.Random(seed).shuffle(shuffled)
    n_test = _held_out(len(shuffled), test_split)
    n_val = _held_out(len(shuffled), validation_split)
    return shuffled[n_test + n_val:], shuffled[n_test:n_test + n_val], shuffled[:n_test]


def _check_arguments(root: Path, batch_size: int, validation_split: float, test_split: float) -> None:
    for name, value in (("validation_split", validation_split), ("test_split", test_split)):
        if not 0 <= value < 1:
            raise ValueError(f"{name}={value} must be in [0, 1), e.g. 0.2")
    if validation_split + test_split >= 1:
        raise ValueError(f"validation_split={validation_split} + test_split={test_split} must be below 1, "
                         "so that images are left for training; e.g. 0.2 and 0.2")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be at least 1")
    if not root.is_dir():
        raise FileNotFoundError(f"image folder '{root}' does not exist; "
                                "point DATA_DIR at a folder with one sub-folder per class")


def load_image_folder(
    directory: str | Path,
    image_size: tuple[int, int] = (224, 224),
    batch_size: int = 32,
    validation_split: float = 0.2,
    test_split: float = 0.2,
    seed: int = 0,
    classes: list[str] | None = None,
) -> ImageFolder:
    """Check a one-folder-per-class image folder and turn it into train/validation/test datasets.

    Args:
        directory: The folder holding one sub-folder per class, or ``train/``,
            ``val/`` (or ``validation/``) and optionally ``test/`` folders that each hold them.
        image_size: ``(height, width)`` to resize to; at least 32 x 32.
        batch_size: Images per batch.
        validation_split: Fraction of each class held out for validation
            (stratified, seeded), in ``[0, 1)``; unused when there is a ``val/`` folder.
        test_split: Fraction of each class held out for the test split, in ``[0, 1)``,
            taken before validation from the same seeded shuffle; unused when there is a
            ``test/`` folder. ``validation_split + test_split`` must be below 1.
        seed: Seed of the split and of the training shuffle: the same seed picks the
            same files for each split on every run.
        classes: Use only these class folders, in this order; default: every
            sub-folder, sorted by name.

    Returns:
        An :class:`ImageFolder` with datasets, class names, counts, skipped files and
        groups of identical files (one warning names them; copies across splits are a leak).

    Raises:
        FileNotFoundError: If ``directory`` or a requested class folder does not exist.
        ValueError: If there are fewer than two classes, a class has no usable images or
            too few to keep a training image after the held-out splits, split folders
            disagree on the classes, or an argument is out of range.
    """
    root = Path(directory).expanduser()
    image_size = check_image_size(image_size)
    _check_arguments(root, batch_size, validation_split, test_split)
    splits = _split_folders(root) or {"all": root}
    names = _class_names(splits, classes)
    if len(names) < 2:
        raise ValueError(f"'{root}' holds {len(names)} class folder(s) {names}; "
                         "a classifier needs at least two, one sub-folder per class")
    skipped = [s for folder in {root, *splits.values()} for s in _stray_files(folder)]
    listed = {(split, name): sorted(p for p in (folder / name).rglob("*") if p.is_file())
              for split, folder in splits.items() for name in names}
    problems = check_images([p for paths in listed.values() for p in paths])
    skipped = sorted(skipped + list(problems.items()))
    split_files: dict[str, list[tuple[Path, int]]] = {"train": [], "val": [], "test": []}
    fractions = (0.0 if "val" in splits else validation_split, 0.0 if "test" in splits else test_split)
    for (split, name), paths in listed.items():
        usable = [p for p in paths if p not in problems]
        if not usable:
            reasons = "; ".join(f"{p.name}: {problems[p]}" for p in paths[:3]) or "it is empty"
            raise ValueError(f"class folder '{splits[split] / name}' holds no usable images ({reasons}); "
                             "add images, remove the folder, or choose classes with classes=[...]")
        label = names.index(name)
        if split in ("val", "test"):
            split_files[split] += [(p, label) for p in usable]
            continue
        parts = dict(zip(("train", "val", "test"), _three_way_split(usable, *fractions, seed), strict=True))
        if not parts["train"]:
            raise ValueError(f"class '{name}' has {len(usable)} usable image(s) in '{splits[split]}': too few to "
                             f"hold out validation_split={fractions[0]} and test_split={fractions[1]} and keep "
                             "one for training; add images, or lower validation_split / test_split")
        for part, part_paths in parts.items():
            split_files[part] += [(p, label) for p in part_paths]
    if skipped:
        warnings.warn(f"{len(skipped)} file(s) in '{root}' are not used (first: '{skipped[0][0].name}', "
                      f"{skipped[0][1]}); see .skipped for each path and reason", stacklevel=2)
    duplicates = find_duplicates(split_files, names)
    if duplicates:
        warnings.warn(warning_message(duplicates, root), stacklevel=2)
    counts = {s: {n: sum(1 for _, y in f if y == i) for i, n in enumerate(names)} for s, f in split_files.items()}
    held_out = {s: make_dataset(f, image_size, batch_size) for s, f in split_files.items() if f and s != "train"}
    return ImageFolder(
        class_names=list(names),
        train_ds=make_dataset(split_files["train"], image_size, batch_size, shuffle_seed=seed),
        val_ds=held_out.get("val"),
        test_ds=held_out.get("test"),
        counts=counts,
        files=split_files,
        skipped=skipped,
        directory=root,
        duplicates=duplicates,
    )
