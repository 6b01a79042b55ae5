"""Load a folder of images, one sub-folder per class (taught in notebook 01).

The layout is the one most image datasets and most users' own photos have::

    my_images/
        cats/  001.jpg  002.png ...
        dogs/  a.jpeg ...

Files are listed and split in Python first, then decoded by ``tf.data``, so the
split is stratified by class and is the same on every run with the same seed.
Nothing in the folder is ever modified, moved or deleted.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
MIN_IMAGE_SIZE = 32  # ResNet50 downsamples 32x; smaller inputs fail inside Keras


@dataclass
class ImageFolder:
    """What :func:`load_image_folder` returns.

    Attributes:
        class_names: Class names, sorted; label ``i`` means ``class_names[i]``.
        train_ds: Shuffled batches of ``(images, labels)``: images are float32
            RGB in ``[0, 255]`` of shape ``(batch, height, width, 3)``, labels
            int32 class indices of shape ``(batch,)``.
        val_ds: The same for the validation split (not shuffled), or ``None``.
        test_ds: The test split when the folder provides one, else ``None``.
        counts: ``{split: {class_name: number_of_images}}``.
        files: ``{split: [(path, label), ...]}`` in the order the dataset uses.
        skipped: ``(path, reason)`` for every file that is not used.
    """

    class_names: list[str]
    train_ds: tf.data.Dataset
    val_ds: tf.data.Dataset | None
    test_ds: tf.data.Dataset | None
    counts: dict[str, dict[str, int]]
    files: dict[str, list[tuple[Path, int]]]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        """Return a short table: classes, images per split, skipped files."""
        splits = list(self.counts)
        lines = [f"{'class':<20}" + "".join(f"{s:>8}" for s in splits)]
        for name in self.class_names:
            lines.append(f"{name:<20}" + "".join(f"{self.counts[s][name]:>8}" for s in splits))
        lines.append(f"{'total':<20}" + "".join(f"{sum(self.counts[s].values()):>8}" for s in splits))
        lines.append(f"skipped files: {len(self.skipped)}")
        return "\n".join(lines)


def _list_images(class_dir: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    images, skipped = [], []
    for path in sorted(p for p in class_dir.rglob("*") if p.is_file()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append((path, f"not an image file extension {IMAGE_EXTENSIONS}"))
        elif path.stat().st_size == 0:
            skipped.append((path, "empty file (0 bytes)"))
        else:
            images.append(path)
    return images, skipped


def _split(paths: list[Path], validation_split: float, seed: int) -> tuple[list[Path], list[Path]]:
    shuffled = list(paths)
    random.Random(seed).shuffle(shuffled)
    n_val = round(len(shuffled) * validation_split)
    if validation_split > 0 and len(shuffled) >= 2:
        n_val = min(max(n_val, 1), len(shuffled) - 1)
    return shuffled[n_val:], shuffled[:n_val]


def _decode(path: tf.Tensor, label: tf.Tensor, image_size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    data = tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image = tf.image.resize(image, image_size)  # float32, still in [0, 255]
    image.set_shape((*image_size, 3))
    return image, label


def make_dataset(
    files: list[tuple[Path, int]],
    image_size: tuple[int, int],
    batch_size: int,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Build a batched ``tf.data`` pipeline over ``(path, label)`` pairs.

    Args:
        files: Image paths with their integer labels.
        image_size: ``(height, width)`` every image is resized to.
        batch_size: Images per batch.
        shuffle_seed: Shuffle every epoch with this seed; ``None`` keeps order.

    Returns:
        Batches of ``(images, labels)``: ``(batch, height, width, 3)`` float32
        in ``[0, 255]`` and ``(batch,)`` int32.
    """
    paths = [str(p) for p, _ in files]
    labels = [label for _, label in files]
    ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, dtype=tf.int32)))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda p, y: _decode(p, y, image_size), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_image_folder(
    directory: str | Path,
    image_size: tuple[int, int] = (224, 224),
    batch_size: int = 32,
    validation_split: float = 0.2,
    seed: int = 0,
    classes: list[str] | None = None,
) -> ImageFolder:
    """Load a one-folder-per-class image folder into train/validation datasets.

    Args:
        directory: The folder holding one sub-folder per class.
        image_size: ``(height, width)`` to resize to; at least 32 x 32.
        batch_size: Images per batch.
        validation_split: Fraction of each class held out for validation
            (stratified, seeded), in ``[0, 1)``.
        seed: Seed of the split and of the training shuffle.
        classes: Use only these class folders, in this order; default: every
            sub-folder, sorted by name.

    Returns:
        An :class:`ImageFolder` with datasets, class names, counts and skipped files.

    Raises:
        FileNotFoundError: If ``directory`` or a requested class folder does not exist.
        ValueError: If there are fewer than two classes, a class has no images,
            or ``image_size`` / ``validation_split`` is out of range.
    """
    root = Path(directory).expanduser()
    image_size = (int(image_size[0]), int(image_size[1]))
    if min(image_size) < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size {image_size} is below ResNet50's minimum of {MIN_IMAGE_SIZE} pixels; "
                         "use at least (32, 32), ideally (224, 224)")
    if not 0 <= validation_split < 1:
        raise ValueError(f"validation_split={validation_split} must be in [0, 1)")
    if not root.is_dir():
        raise FileNotFoundError(f"image folder '{root}' does not exist; "
                                "point DATA_DIR at a folder with one sub-folder per class")
    names = classes or sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(names) < 2:
        raise ValueError(f"'{root}' holds {len(names)} class folder(s) {names}; "
                         "a classifier needs at least two, one sub-folder per class")
    split_files: dict[str, list[tuple[Path, int]]] = {"train": [], "val": []}
    skipped: list[tuple[Path, str]] = []
    for label, name in enumerate(names):
        if not (root / name).is_dir():
            raise FileNotFoundError(f"class folder '{root / name}' does not exist; check classes={classes}")
        images, class_skipped = _list_images(root / name)
        skipped += class_skipped
        if not images:
            raise ValueError(f"class folder '{root / name}' holds no usable images; add images, "
                             "remove the folder, or choose classes with classes=[...]")
        train, val = _split(images, validation_split, seed)
        split_files["train"] += [(p, label) for p in train]
        split_files["val"] += [(p, label) for p in val]
    if skipped:
        warnings.warn(f"{len(skipped)} file(s) in '{root}' are not used; see .skipped for each path and reason",
                      stacklevel=2)
    counts = {s: {n: sum(1 for _, y in f if y == i) for i, n in enumerate(names)} for s, f in split_files.items()}
    return ImageFolder(
        class_names=list(names),
        train_ds=make_dataset(split_files["train"], image_size, batch_size, shuffle_seed=seed),
        val_ds=make_dataset(split_files["val"], image_size, batch_size) if split_files["val"] else None,
        test_ds=None,
        counts=counts,
        files=split_files,
        skipped=skipped,
    )
