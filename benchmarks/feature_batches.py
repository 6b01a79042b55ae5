"""Time heads trained on cached features from `Features.dataset` against the pipelines it could have been.

    python benchmarks/feature_batches.py [--runs 6] [--epochs 20]

Notebook 04 trains fifteen small heads on cached features, and `fit` builds a new tf.data iterator
for training and one for validation every epoch, so what an iterator costs to create shows. This
script trains notebook 04's Dense head on random 2 x 2 x 2048 maps (the 64 x 64 test setting, 24
training and 8 validation maps, batch 16), in one process, the pipelines taking turns:

- dataset: `Features.dataset` as it is: batch, then `prefetch(tf.data.AUTOTUNE)`;
- with map: the same with a per-batch `map` casting to float32 (a function each iterator instantiates);
- no autotune: the same with a map and `options.autotune.enabled = False`, 2 batches prefetched;
- numpy: `fit` on the NumPy arrays, which Keras batches itself.

It prints the median seconds per run over `--runs` runs of `--epochs` epochs each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tlhelpers.features import Features  # noqa: E402
from tlhelpers.heads import dense_head  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    rng = np.random.default_rng(0)
    train, val = (Features(rng.normal(size=(n, 2, 2, 2048)).astype("float32"), rng.integers(0, 4, n).astype("int32"),
                           False, None, "") for n in (24, 8))

    def with_map(features: Features, seed: int | None, autotune: bool) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices((features.features, features.labels))
        if seed is not None:
            ds = ds.shuffle(len(features.labels), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(16).map(lambda x, y: (tf.cast(x, tf.float32), y))
        if autotune:
            return ds.prefetch(tf.data.AUTOTUNE)
        options = tf.data.Options()
        options.autotune.enabled = False
        return ds.prefetch(2).with_options(options)

    pipelines = {
        "dataset": lambda f, seed: f.dataset(16, shuffle_seed=seed),
        "with map": lambda f, seed: with_map(f, seed, autotune=True),
        "no autotune": lambda f, seed: with_map(f, seed, autotune=False),
        "numpy": None,
    }
    seconds: dict[str, list[float]] = {name: [] for name in pipelines}
    for run in range(args.runs + 1):  # the first round compiles what every later one reuses: not counted
        for name, make in pipelines.items():
            keras.utils.set_random_seed(run)
            head = dense_head(train.features.shape[1:], 4)
            head.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            start = time.perf_counter()
            if make is None:
                head.fit(train.features, train.labels, batch_size=16, validation_data=(val.features, val.labels),
                         epochs=args.epochs, verbose=0)
            else:
                head.fit(make(train, run), validation_data=make(val, None), epochs=args.epochs, verbose=0)
            if run:
                seconds[name].append(time.perf_counter() - start)
    print(f"{args.runs} runs of {args.epochs} epochs, Dense head, 24 + 8 maps of 2 x 2 x 2048, batch 16: "
          "median seconds per run")
    for name, values in seconds.items():
        print(f"  {name:12s} {statistics.median(values):.2f} s  (min {min(values):.2f}, max {max(values):.2f})")


if __name__ == "__main__":
    main()
