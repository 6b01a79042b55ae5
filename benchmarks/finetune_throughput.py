"""Measure fine-tuning throughput (images per second): float32 or mixed precision, XLA on or off.

The model is notebook 05's: the ResNet50 base with ``conv5`` unfrozen (BatchNorm
frozen) and a pooling + softmax head, random weights, trained on one synthetic
batch repeated. Each combination gets a fresh model, warm-up steps (tracing,
XLA compilation and cuDNN autotuning happen here and are reported apart), then
timed steps. Mixed precision is skipped without a GPU. With two or more GPUs the
model is mirrored over them and ``--batch-size`` is the global batch.

Usage::

    python benchmarks/finetune_throughput.py                                  # 224 x 224, batch 64, 20 steps
    python benchmarks/finetune_throughput.py --steps 3 --batch-size 8 --image-size 96   # a quick CPU check
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tlhelpers.finetune import unfreeze_from  # noqa: E402
from tlhelpers.model import build_base_model  # noqa: E402
from tlhelpers.scaling import check_float32_output, configure_precision, get_strategy  # noqa: E402


def build_model(image_size: int, num_classes: int, start: str, xla: bool) -> keras.Model:
    """Base with ``start`` and above unfrozen, plus a float32 softmax head, compiled."""
    base_model = build_base_model((image_size, image_size), weights=None)
    unfreeze_from(base_model, start)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    features = keras.layers.GlobalAveragePooling2D()(base_model(inputs))
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(features)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-5), loss="sparse_categorical_crossentropy", jit_compile=xla)
    check_float32_output(model)
    return model


def synthetic_batches(batch_size: int, image_size: int, num_classes: int) -> tf.data.Dataset:
    """One random batch of raw 0-255 images and integer labels, repeated forever."""
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch_size, image_size, image_size, 3)).astype("float32")
    labels = rng.integers(0, num_classes, batch_size)
    return tf.data.Dataset.from_tensors((images, labels)).repeat().prefetch(tf.data.AUTOTUNE)


def measure(model: keras.Model, batches: tf.data.Dataset, warmup: int, steps: int) -> tuple[float, float]:
    """Return (seconds for the warm-up steps, seconds per timed step)."""
    start = time.perf_counter()
    model.fit(batches, epochs=1, steps_per_epoch=warmup, shuffle=False, verbose=0)
    warm = time.perf_counter()
    model.fit(batches, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
    return warm - start, (time.perf_counter() - warm) / steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch (over all replicas)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per combination")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation happens here)")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--start", default="conv5", help="stage or layer to unfreeze from")
    args = parser.parse_args(argv)

    strategy = get_strategy(verbose=False)
    gpus = tf.config.list_logical_devices("GPU")
    gpu_names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
                 for gpu in tf.config.list_physical_devices("GPU")]
    device = ", ".join(gpu_names) if gpu_names else f"CPU ({platform.machine()}, {os.cpu_count()} cores)"
    print(f"Fine-tuning throughput: ResNet50 from {args.start} up + softmax head, random weights, synthetic data")
    print(f"device: {device}; replicas: {strategy.num_replicas_in_sync}; TensorFlow {tf.__version__}, "
          f"Keras {keras.__version__}")
    print(f"image size {args.image_size}, global batch {args.batch_size}, {args.warmup} warm-up + "
          f"{args.steps} timed steps\n")
    print("| precision | XLA | images/s | ms/step | warm-up (s) |")
    print("|---|---|---:|---:|---:|")
    batches = synthetic_batches(args.batch_size, args.image_size, args.num_classes)
    for mixed in (False, True):
        for xla in (False, True):
            label = f"| {'mixed_float16' if mixed else 'float32'} | {'on' if xla else 'off'} |"
            if mixed and not gpus:
                print(f"{label} skipped: needs a GPU | | |", flush=True)
                continue
            keras.backend.clear_session()
            keras.utils.set_random_seed(0)
            configure_precision(mixed)
            try:
                with strategy.scope():
                    model = build_model(args.image_size, args.num_classes, args.start, xla)
                warm, per_step = measure(model, batches, args.warmup, args.steps)
            except Exception as error:  # one failing combination (say XLA) should not hide the others
                print(f"{label} failed: {type(error).__name__}: {str(error).splitlines()[0][:80]} | | |", flush=True)
                continue
            print(f"{label} {args.batch_size / per_step:.1f} | {1000 * per_step:.1f} | {warm:.1f} |", flush=True)
    configure_precision(False)


if __name__ == "__main__":
    main()
