"""A KerasHub ResNet-50 preset with random weights, written to a folder: what notebook 06 reads offline.

``python -m tests.hub_preset FOLDER`` writes ``config.json``, ``model.weights.h5`` (random,
seed 0), ``image_converter.json`` and ``metadata.json`` with ``save_to_preset``. The architecture
and the converter are those KerasHub's timm loader gives ``resnet_50_imagenet`` (converted from
timm's ``resnet50.a1_in1k``: ImageNet mean and std, 224 x 224, bicubic), so the notebook runs the
same code on it as on the real preset, without Kaggle.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_FOLDER: Path | None = None


def write_random_preset(folder: Path) -> None:
    """Write the preset into ``folder`` (in this process: imports TensorFlow and keras_hub)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[3, 4, 6, 3], stackwise_num_strides=[1, 2, 2, 2], block_type="bottleneck_block",
        use_pre_activation=False)
    converter = keras_hub.layers.ResNetImageConverter(
        image_size=(224, 224), scale=[1 / 255 / s for s in IMAGENET_STD],
        offset=[-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)], interpolation="bicubic")
    backbone.save_to_preset(str(folder))
    converter.save_to_preset(str(folder))


def random_preset() -> Path:
    """The folder of the random preset, written once per test session in a fresh interpreter."""
    global _FOLDER
    if _FOLDER is None:
        root = Path(tempfile.mkdtemp(prefix="kerashub-preset-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        folder = root / "resnet_50_random"
        subprocess.run([sys.executable, "-m", "tests.hub_preset", str(folder)], check=True, capture_output=True,
                       timeout=600, cwd=Path(__file__).resolve().parents[1])
        _FOLDER = folder
    return _FOLDER


if __name__ == "__main__":
    write_random_preset(Path(sys.argv[1]))
