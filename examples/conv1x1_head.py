"""Train a 1x1 convolution head on a frozen ImageNet ResNet50, on your own folder of images.

A standalone starting point to copy into your project: it needs only TensorFlow 2.16+
(Keras 3), not this repository. The folder holds one sub-folder per class. The lesson behind
every line is notebooks/03_conv1x1_head.ipynb.

    python examples/conv1x1_head.py path/to/images --epochs 10 --out conv1x1_head.keras
    python examples/conv1x1_head.py data/shapes --weights none --image-size 64 --epochs 3  # offline

It uses keras.utils.image_dataset_from_directory, which stops on an unreadable image file;
for messy folders see tlhelpers.load_image_folder in this repository.
"""

from __future__ import annotations

import argparse
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quiet TensorFlow's C++ logs; before the import

import keras

# Keras 3 warns on every fit() with a tf.data dataset that shuffle= is ignored; these datasets shuffle themselves.
warnings.filterwarnings("ignore", message="`shuffle=True` was passed")


def build_head(feature_shape: tuple[int, ...], num_classes: int) -> keras.Sequential:
    """Conv2D(256, 1x1, relu) on the (h, w, 2048) feature map -> GlobalAveragePooling2D -> Dense softmax."""
    return keras.Sequential(
        [
            keras.Input(shape=feature_shape),
            keras.layers.Conv2D(256, kernel_size=1, activation="relu", name="conv1x1"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes, activation="softmax"),
        ],
        name="head",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", help="folder with one sub-folder of images per class")
    parser.add_argument("--weights", default="imagenet",
                        help='"imagenet" (downloads 94 MB once), "none" (random, offline) or a path to '
                             "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=224, help="side in pixels, at least 32")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="conv1x1_head.keras", help="where to save the trained model (.keras)")
    args = parser.parse_args(argv)
    if args.image_size < 32:
        parser.error(f"--image-size {args.image_size} is below ResNet50's minimum of 32")
    keras.utils.set_random_seed(args.seed)
    shape = (args.image_size, args.image_size, 3)

    # Integer labels (label_mode="int") go with SparseCategoricalCrossentropy below.
    train_ds, val_ds = keras.utils.image_dataset_from_directory(
        args.data_dir, label_mode="int", image_size=shape[:2], batch_size=args.batch_size,
        validation_split=0.2, subset="both", seed=args.seed,
    )
    class_names = train_ds.class_names

    weights = None if args.weights.lower() == "none" else args.weights
    resnet = keras.applications.ResNet50(include_top=False, weights=weights, input_shape=shape)
    resnet.trainable = False  # freeze the weights; a frozen BatchNorm also runs in inference mode

    inputs = keras.Input(shape=shape)  # raw RGB in [0, 255]
    x = keras.applications.resnet50.preprocess_input(inputs)  # BGR minus the ImageNet mean, not /255
    features = resnet(x, training=False)
    outputs = build_head(tuple(features.shape[1:]), len(class_names))(features)
    model = keras.Model(inputs, outputs)

    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False),  # softmax output
        metrics=["accuracy"],
    )
    model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, verbose=2)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    model.save(args.out)
    print(f"saved {args.out}; classes in label order: {class_names}")


if __name__ == "__main__":
    main()
