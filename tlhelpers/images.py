"""Read any image file as RGB, and check a folder's files before training (used by ``data``).

Every file is decoded once by :func:`check_images` before the first epoch, with the same
:func:`read_rgb` that the ``tf.data`` pipeline of :func:`make_dataset` uses, so a file that
passes the check cannot stop training half-way through an epoch. Files are only read, never
written, moved or deleted.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

# Recognised by content, not by extension; this list only guards against Pillow's looser
# formats (TGA, for one, has no signature and would "decode" random bytes).
FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")  # JPEG includes MPO (phone cameras)
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
PROGRESS_MIN_FILES = 500  # show a progress bar when checking at least this many files
# What make_dataset does to a file before the model sees it (for caches keyed on it); bump on change.
DECODING = ("Pillow read_rgb: first frame, EXIF orientation, JPEG draft >= image_size, 16-bit / 257, alpha dropped"
            " -> tf.image.resize(bilinear) float32 [0, 255]; v2")


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode.startswith("I"):  # 16-bit greyscale ("I;16", or "I" in older Pillow)
        pixels = np.asarray(image, dtype=np.float64) / 257.0  # 65535 -> 255
        pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
        return np.repeat(pixels[..., np.newaxis], 3, axis=-1)
    if image.mode == "F":
        pixels = np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)
        return np.repeat(pixels[..., np.newaxis], 3, axis=-1)
    return np.asarray(image.convert("RGB"))  # alpha is dropped, as tf.io.decode_image does


def read_rgb(path: str | os.PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode one image file into RGB pixels, whatever its format, mode or name.

    Greyscale, palette, RGBA, CMYK and 16-bit images all become 8-bit RGB (16-bit
    values are scaled to ``[0, 255]``), a GIF or other animation gives its first
    frame, and the camera's EXIF orientation is applied.

    Args:
        path: The image file.
        size: ``(height, width)`` the caller will resize to; lets JPEG decode at a
            reduced scale that is still at least this size. ``None`` decodes in full.

    Returns:
        A uint8 array of shape ``(height, width, 3)``.

    Raises:
        PIL.UnidentifiedImageError: The file is not an image in one of ``FORMATS``.
        OSError: The file is truncated, damaged or unreadable.
    """
    Image.init()  # registers the WEBP and TIFF plugins; fast after the first call
    with Image.open(path, formats=FORMATS) as image:
        if size is not None and image.format in ("JPEG", "MPO"):
            image.draft("RGB", (size[1], size[0]))
        image.load()  # decodes every byte: raises here on a truncated or damaged file
        try:
            image = ImageOps.exif_transpose(image)
        except Exception:  # noqa: BLE001 - a damaged EXIF block leaves the pixels as stored
            pass
        return _to_rgb(image)


def problem(path: Path) -> str | None:
    """Return why ``path`` cannot be used as an image, or ``None`` when it can."""
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        read_rgb(path, size=(1, 1))  # JPEG at 1/8 scale: cheap, yet reads the whole file
    except UnidentifiedImageError:
        return f"not an image (not one of {', '.join(FORMATS)})"
    except OSError as error:
        if error.errno is None:  # Pillow's own "image file is truncated" and the like
            return f"truncated or damaged, cannot be decoded: {error}"
        return f"cannot be read: {error.strerror}"
    except Image.DecompressionBombError as error:
        return f"too large to decode safely: {error}"
    except Exception as error:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError, ...
        return f"truncated or damaged, cannot be decoded: {error}"
    return None


def check_images(paths: list[Path]) -> dict[Path, str]:
    """Decode every file once, in threads, with a progress bar for large folders.

    Args:
        paths: Files to check.

    Returns:
        ``{path: reason}`` for each file that cannot be used; the others are images.
    """
    bar = tqdm(total=len(paths), desc="Checking images", unit="file", leave=False,
               disable=len(paths) < PROGRESS_MIN_FILES)
    problems = {}
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool, bar:
        for path, reason in zip(paths, pool.map(problem, paths), strict=True):
            bar.update()
            if reason is not None:
                problems[path] = reason
    return problems


def _read_for_pipeline(path: bytes, image_size: tuple[int, int]) -> np.ndarray:
    name = os.fsdecode(path)
    try:
        return read_rgb(name, image_size)
    except Exception as error:
        raise ValueError(f"could not read '{name}' ({error}); it was readable when the folder was "
                         "checked: was it changed or deleted? Run load_image_folder again") from error


def _pipeline_options() -> tf.data.Options:
    options = tf.data.Options()
    # Measured with TensorFlow 2.20 on a 2-core CPU: with tf.data's autotuning on, creating an iterator
    # (as fit does for every epoch, for training and validation) sometimes took 0.3-1.1 s after heavy
    # computation, against 0.01 s without it; decoding was as fast with a fixed parallelism of one call
    # per CPU core and two batches prefetched. benchmarks/head_training.py shows the effect.
    options.autotune.enabled = False
    return options


PIPELINE_OPTIONS = _pipeline_options()


def make_dataset(
    files: list[tuple[Path, int]],
    image_size: tuple[int, int],
    batch_size: int,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Build a batched ``tf.data`` pipeline over ``(path, label)`` pairs.

    Images are decoded with :func:`read_rgb` (Pillow) and resized by
    ``tf.image.resize`` (bilinear), as ``keras.utils.image_dataset_from_directory`` does.

    Args:
        files: Image paths, already checked by :func:`check_images`, with integer labels.
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
    ds = ds.map(load, num_parallel_calls=os.cpu_count() or 1)
    return ds.batch(batch_size).prefetch(2).with_options(PIPELINE_OPTIONS)
