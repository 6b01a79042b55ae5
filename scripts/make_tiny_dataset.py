"""Regenerate the bundled tiny datasets in ``data/shapes`` and ``data/shapes_recoloured`` deterministically.

Run from the repository root::

    python scripts/make_tiny_dataset.py            # writes data/shapes/<class>/*.png and data/shapes_recoloured/
    python scripts/make_tiny_dataset.py --check    # exits 1 if either folder differs
    python scripts/make_tiny_dataset.py --out /tmp/shapes320 --images-per-class 80  # a larger set
                                                   # (and its recoloured set in /tmp/shapes320_recoloured)

Each image is a single filled shape (circle, square, star or triangle) with a
shade of its class's colour (red, blue, yellow, green), random size, position
and rotation on a random light background with a soft
gradient. The recoloured set draws the same shapes the same way, from a seed of its
own, but each class in another class's colour family (``RECOLOURED``: no class keeps
its own), so that a model that learned colour instead of shape fails on it (notebook 01,
"Test on recoloured shapes"). The random generators are seeded, so every run writes
byte-identical files with the same Pillow version. The images are synthetic: no licence
of a third party applies (see ``data/README.md``).
"""

from __future__ import annotations

import argparse
import colorsys
import hashlib
import io
import math
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "star", "triangle")
# Each class has its own colour family as well as its own shape, so that even the
# features of a randomly initialised ResNet50 (the offline tests) separate the classes.
HUES = {"circle": 0.0, "square": 0.6, "star": 0.13, "triangle": 0.33}
IMAGES_PER_CLASS = 40
SIZE = 96
SEED = 20261126
OUT_DIR = Path(__file__).resolve().parents[1] / "data" / "shapes"
# The recoloured set: each class drawn in the colour family of the class named here. A derangement (no class
# keeps its own colour), so a model that classifies by colour gets none of these images right.
RECOLOURED = {"circle": "square", "square": "star", "star": "triangle", "triangle": "circle"}
RECOLOURED_PER_CLASS = 8
RECOLOURED_SEED = 20261127
RECOLOURED_SUFFIX = "_recoloured"  # data/shapes -> data/shapes_recoloured


def _polygon(cx: float, cy: float, radius: float, angle: float, kind: str) -> list[tuple[float, float]]:
    if kind == "square":
        corners, radii = 4, [radius]
    elif kind == "triangle":
        corners, radii = 3, [radius]
    else:  # star: alternate outer and inner radius
        corners, radii = 10, [radius, radius * 0.45]
    return [
        (
            cx + radii[i % len(radii)] * math.cos(angle + 2 * math.pi * i / corners),
            cy + radii[i % len(radii)] * math.sin(angle + 2 * math.pi * i / corners),
        )
        for i in range(corners)
    ]


def draw_shape(kind: str, rng: random.Random, colour_of: str | None = None) -> Image.Image:
    """Draw one ``SIZE`` x ``SIZE`` RGB image of ``kind``, in the colour family of ``colour_of`` (default: ``kind``)."""
    top = tuple(rng.randint(215, 250) for _ in range(3))
    bottom = tuple(rng.randint(215, 250) for _ in range(3))
    image = Image.new("RGB", (SIZE, SIZE))
    pixels = ImageDraw.Draw(image)
    for y in range(SIZE):
        t = y / (SIZE - 1)
        pixels.line([(0, y), (SIZE, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    hue = (HUES[colour_of or kind] + rng.uniform(-0.04, 0.04)) % 1.0
    fill = tuple(round(255 * c) for c in colorsys.hsv_to_rgb(hue, rng.uniform(0.7, 1.0), rng.uniform(0.55, 0.9)))
    radius = rng.uniform(0.26, 0.40) * SIZE
    cx = rng.uniform(radius, SIZE - radius)
    cy = rng.uniform(radius, SIZE - radius)
    if kind == "circle":
        pixels.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    else:
        pixels.polygon(_polygon(cx, cy, radius, rng.uniform(0, 2 * math.pi), kind), fill=fill)
    return image


def generate(images_per_class: int = IMAGES_PER_CLASS, seed: int = SEED,
             colour_of: dict[str, str] | None = None) -> dict[str, bytes]:
    """Return ``{relative_path: png_bytes}`` for the whole dataset.

    Args:
        images_per_class: Images drawn per class. The default gives the bundled
            ``data/shapes``; other values give larger or smaller datasets drawn
            the same way (the benchmark uses them).
        seed: Seed of the random generator that draws every image.
        colour_of: ``{class: class whose colour family it is drawn in}``; default: its own.
    """
    rng = random.Random(seed)
    files = {}
    for kind in CLASSES:
        for i in range(images_per_class):
            buffer = io.BytesIO()
            draw_shape(kind, rng, (colour_of or {}).get(kind)).save(buffer, format="PNG", optimize=True)
            files[f"{kind}/{kind}_{i:03d}.png"] = buffer.getvalue()
    return files


def generate_recoloured(images_per_class: int = RECOLOURED_PER_CLASS) -> dict[str, bytes]:
    """Return ``{relative_path: png_bytes}`` for the recoloured set: the same shapes, colours swapped (``RECOLOURED``).

    Args:
        images_per_class: Images drawn per class; the default gives the bundled ``data/shapes_recoloured``.
    """
    return generate(images_per_class, RECOLOURED_SEED, RECOLOURED)


def _differ(folder: Path, files: dict[str, bytes]) -> list[Path]:
    """The files of ``files`` that are missing from ``folder`` or hold other bytes."""
    return [folder / name for name, data in files.items()
            if not (folder / name).is_file() or (folder / name).read_bytes() != data]


def _write(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    digest = hashlib.sha256(b"".join(files[k] for k in sorted(files))).hexdigest()[:16]
    print(f"wrote {len(files)} images to {folder} (sha256 of all: {digest})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="target folder (default: data/shapes)")
    parser.add_argument("--check", action="store_true", help="compare with the folder instead of writing")
    parser.add_argument("--images-per-class", type=int, default=IMAGES_PER_CLASS,
                        help=f"images per class (default: {IMAGES_PER_CLASS}, the bundled data)")
    parser.add_argument("--recoloured-out", type=Path, default=None,
                        help=f"folder of the recoloured set (default: the --out folder's name + {RECOLOURED_SUFFIX}, "
                             "next to it)")
    parser.add_argument("--recoloured-per-class", type=int, default=RECOLOURED_PER_CLASS,
                        help=f"images per class of the recoloured set (default: {RECOLOURED_PER_CLASS}; 0: none)")
    args = parser.parse_args(argv)
    recoloured_out = args.recoloured_out or args.out.with_name(args.out.name + RECOLOURED_SUFFIX)
    sets = [(args.out, generate(args.images_per_class))]
    if args.recoloured_per_class > 0:
        sets.append((recoloured_out, generate_recoloured(args.recoloured_per_class)))
    if args.check:
        differ = [path for folder, files in sets for path in _differ(folder, files)]
        for path in differ:
            print(f"differs: {path}")
        return 1 if differ else 0
    for folder, files in sets:
        _write(folder, files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
