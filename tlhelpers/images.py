"""Read any image file as RGB with Pillow, the one place where image files are decoded.

:func:`read_rgb` decodes for the ``tf.data`` pipeline of :func:`tlhelpers.data.make_dataset`,
for :func:`check_images`, which decodes every file of a folder once before the first epoch (so
a file that passes cannot stop training half-way through an epoch), and for :func:`load_image`
(one file, as :func:`tlhelpers.predict_file` reads it). Files are only read, never written,
moved or deleted.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

# Recognised by content, not by extension; this list only guards against Pillow's looser
# formats (TGA, for one, has no signature and would "decode" random bytes).
FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")  # JPEG includes MPO (phone cameras)
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
PROGRESS_MIN_FILES = 500  # show a progress bar when checking at least this many files


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode.startswith("I"):  # 16-bit greyscale ("I;16", or "I" in older Pillow)
        pixels = np.asarray(image, dtype=np.float64) / 257.0  # 65535 -> 255
        pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
        return np.repeat(pixels[..., np.newaxis], 3, axis=-1)
    if image.mode == "F":
        pixels = np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)
        return np.repeat(pixels[..., np.newaxis], 3, axis=-1)
    return np.asarray(image.convert("RGB"))  # alpha is dropped, as tf.io.decode_image does


def to_uint8(images: Any) -> np.ndarray:
    """Return ``[0, 255]`` pixels (float or int, any shape) as uint8, rounded and clipped, e.g. for ``imshow``."""
    return np.clip(np.rint(np.asarray(images, dtype="float32")), 0, 255).astype("uint8")


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


def load_image(path: str | os.PathLike, image_size: tuple[int, int]) -> np.ndarray:
    """Read one image file as the dataset pipeline does: RGB, resized, float32 in ``[0, 255]``.

    :func:`read_rgb` decodes it (any mode, EXIF orientation, a GIF's first frame) and
    ``tf.image.resize`` resizes it bilinearly, as in :func:`tlhelpers.data.make_dataset`.

    Args:
        path: A JPEG, PNG, BMP, GIF or other image file Pillow reads.
        image_size: ``(height, width)`` to resize to.

    Returns:
        ``(height, width, 3)`` float32 array.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        ValueError: If the file cannot be decoded as an image.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"image file '{path}' does not exist; check the path")
    size = (int(image_size[0]), int(image_size[1]))
    try:
        pixels = read_rgb(path, size)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"'{path}' could not be decoded as an image ({error}); "
                         "use a JPEG, PNG, BMP or GIF file") from None
    return tf.image.resize(pixels, size).numpy()
