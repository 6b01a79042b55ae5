"""Benchmark: train a head on images through the frozen base, or on features cached once.

Run from the repository root (``make bench``)::

    python benchmarks/head_training.py                 # 10 epochs, 320 generated images, 64 x 64, random weights
    python benchmarks/head_training.py --epochs 20 --image-size 96
    python benchmarks/head_training.py --weights imagenet --image-size 224 --data-dir data/shapes

Both ways train the same head (GlobalAveragePooling2D + Dense softmax) from the
same initial weights, on the same split, with the same seed, batch size and
number of epochs:

(a) the usual way: ``keras.Model(inputs, head(base_model(inputs)))`` with the
    base frozen, ``fit`` on images, validation images every epoch;
(b) :func:`tlhelpers.cached_features` on a fresh, empty cache (extraction time
    included, in the library's default extraction batches), then ``head.fit``
    on the features in batches of ``--batch-size``.

TensorFlow is warmed up first (both models built, one tiny predict each), so
neither way pays TensorFlow's start-up; each still pays the tracing of its own
functions, as it would in a notebook. (b) runs first, so any remaining warm-up
benefit goes to (a); the garbage collector runs before each way, so neither pays
for the other's garbage. The last line printed is ``speedup: <ratio>x``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tlhelpers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def generate_shapes(out: Path, images_per_class: int) -> Path:
    """Write the bundled dataset's generator output, with more images per class, to ``out``."""
    spec = importlib.util.spec_from_file_location("make_tiny_dataset", ROOT / "scripts" / "make_tiny_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, data in module.generate(images_per_class).items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    return out


def make_head(feature_shape: tuple[int, ...], num_classes: int, seed: int) -> keras.Sequential:
    """The head of notebook 01, with initial weights that depend only on ``seed``."""
    keras.utils.set_random_seed(seed)
    head = keras.Sequential([
        keras.Input(shape=feature_shape),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(num_classes, activation="softmax"),
    ], name="head")
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    return head


class EpochTimes(keras.callbacks.Callback):
    """Wall time of each epoch, validation included."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds = [*getattr(self, "seconds", []), time.perf_counter() - self.start]


def usual_way(model: keras.Model, data: tlhelpers.ImageFolder, epochs: int) -> tuple[float, float, list[float]]:
    timer = EpochTimes()
    start = time.perf_counter()
    history = model.fit(data.train_ds, validation_data=data.val_ds, epochs=epochs, verbose=0, callbacks=[timer])
    return time.perf_counter() - start, history.history["val_accuracy"][-1], timer.seconds


def cached_way(base_model: keras.Model, head: keras.Model, data: tlhelpers.ImageFolder, epochs: int,
               batch_size: int, seed: int, cache_dir: Path) -> tuple[float, float, float]:
    start = time.perf_counter()
    # Extraction batches are the library's default (tlhelpers.extraction_batch_size); training batches are
    # batch_size, as in (a).
    train, val = (tlhelpers.cached_features(base_model, data, split, cache_dir=cache_dir, progress=False)
                  for split in ("train", "val"))
    assert not train.from_cache and not val.from_cache, "the benchmark needs an empty cache"
    extraction = time.perf_counter() - start
    history = head.fit(train.dataset(batch_size, shuffle_seed=seed), validation_data=val.dataset(batch_size),
                       epochs=epochs, verbose=0)
    return time.perf_counter() - start, extraction, history.history["val_accuracy"][-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--weights", default="none", help="none (default, offline), imagenet, or an .h5 path")
    parser.add_argument("--data-dir", type=Path, help="default: the shapes dataset, generated into a temp folder")
    parser.add_argument("--images-per-class", type=int, default=80, help="for the generated data (default: 80)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")  # the datasets shuffle themselves

    with tempfile.TemporaryDirectory(prefix="head-bench-") as temp:
        data_dir = args.data_dir or generate_shapes(Path(temp) / "shapes", args.images_per_class)
        size = (args.image_size, args.image_size)
        tlhelpers.seed_everything(args.seed)
        data = tlhelpers.load_image_folder(data_dir, image_size=size, batch_size=args.batch_size, seed=args.seed,
                                           test_split=0.0)  # no test split: both ways are compared on validation
        base_model = tlhelpers.build_base_model(size, weights=args.weights)
        feature_shape, num_classes = tuple(base_model.output.shape[1:]), len(data.class_names)
        head_a = make_head(feature_shape, num_classes, args.seed)
        inputs = keras.Input(shape=(*size, 3))
        model = keras.Model(inputs, head_a(base_model(inputs)))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        head_b = make_head(feature_shape, num_classes, args.seed)
        np.testing.assert_array_equal(head_a.get_weights()[0], head_b.get_weights()[0])  # same start
        model.predict(np.zeros((1, *size, 3), "float32"), verbose=0)  # warm-up, untimed
        head_b.predict(np.zeros((1, *feature_shape), "float32"), verbose=0)

        n_train, n_val = len(data.files["train"]), len(data.files["val"])
        print(f"data: {n_train + n_val} images ({n_train} train, {n_val} validation), {num_classes} classes, "
              f"{size[0]} x {size[1]}, weights={args.weights}, batch {args.batch_size}, {args.epochs} epochs, "
              f"seed {args.seed}", flush=True)
        gc.collect()  # each way starts from a collected heap, as timeit does, and pays for its own garbage
        cached_s, extraction_s, cached_acc = cached_way(base_model, head_b, data, args.epochs, args.batch_size,
                                                        args.seed, Path(temp) / "feature_cache")
        gc.collect()
        usual_s, usual_acc, epoch_s = usual_way(model, data, args.epochs)
        assembled = keras.Model(inputs, head_b(base_model(inputs)))
        assembled.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        _, assembled_acc = assembled.evaluate(data.val_ds, verbose=0)
    later = f", later epochs {np.median(epoch_s[1:]):.1f} s each" if len(epoch_s) > 1 else ""
    print(f"(a) usual way, frozen base inside the model, fit on images: {usual_s:.1f} s "
          f"(first epoch {epoch_s[0]:.1f} s{later}), val accuracy {usual_acc:.3f}")
    print(f"(b) cached features, extraction {extraction_s:.1f} s + head training {cached_s - extraction_s:.1f} s: "
          f"{cached_s:.1f} s, val accuracy {cached_acc:.3f} (assembled model on images: {assembled_acc:.3f})")
    print(f"speedup: {usual_s / cached_s:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
