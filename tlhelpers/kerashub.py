"""What KerasHub's ``resnet_50_imagenet`` preset holds besides its weights (notebook 06).

A preset's ``config.json`` and ``image_converter.json`` are constructor arguments. Even with
``load_weights=False``, ``Backbone.from_preset("resnet_50_imagenet")`` and
``ImageConverter.from_preset`` download them from Kaggle; with random weights they are all a
preset adds, so notebook 06 passes these instead and builds the same network offline::

    backbone = keras_hub.models.ResNetBackbone(**tlhelpers.kerashub.RESNET_50)
    converter = keras_hub.layers.ResNetImageConverter(image_size=(224, 224), **tlhelpers.kerashub.RESNET_50_CONVERTER)

The constants import nothing: ``keras-hub`` (the ``hub`` extra) is needed only to call those
classes, and ``cached_preset``, which ``make doctor`` and ``make run`` call to look in kagglehub's cache.
"""

from __future__ import annotations

PRESET = "resnet_50_imagenet"
# What Backbone.from_preset (with weights) and ImageConverter.from_preset read from a Keras preset
# (keras_hub/src/utils/preset_utils.py); the preset's metadata.json is not read.
PRESET_FILES = ("config.json", "model.weights.h5", "image_converter.json")


# ResNetBackbone's arguments for ResNet-50, as KerasHub's timm converter writes them for resnet50:
# a 7 x 7 stem, then 3, 4, 6 and 3 bottleneck blocks; maps (batch, h, w, 3) to (batch, h/32, w/32, 2048).
RESNET_50 = {
    "input_conv_filters": [64],
    "input_conv_kernel_sizes": [7],
    "stackwise_num_filters": [64, 128, 256, 512],
    "stackwise_num_blocks": [3, 4, 6, 3],
    "stackwise_num_strides": [1, 2, 2, 2],
    "block_type": "bottleneck_block",
    "use_pre_activation": False,
}

# The preprocessing of timm's resnet50.a1_in1k, which the preset was converted from: RGB scaled to
# [0, 1], then (x - mean) / std per channel, as the converter's x * scale + offset on raw [0, 255].
# The preset resizes to 224 x 224 (bicubic); pass image_size yourself.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESNET_50_CONVERTER = {
    "scale": [1 / 255 / std for std in IMAGENET_STD],
    "offset": [-mean / std for mean, std in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)],
    "interpolation": "bicubic",
}


def cached_preset(preset: str = PRESET) -> tuple:
    """Return kagglehub's ``Cache``, the preset's handle and the ``PRESET_FILES`` it lacks (or has not marked
    complete, as after an interrupted download). Reads the cache, never downloads."""
    import keras_hub
    from kagglehub.cache import Cache
    from kagglehub.handle import parse_model_handle

    handle = parse_model_handle(keras_hub.models.Backbone.presets[preset]["kaggle_handle"].removeprefix("kaggle://"))
    cache = Cache()
    return cache, handle, [name for name in PRESET_FILES if cache.load_from_cache(handle, name) is None]
