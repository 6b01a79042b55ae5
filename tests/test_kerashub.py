"""tlhelpers.kerashub's constants are KerasHub's resnet_50_imagenet preset's (notebook 06 builds it from them).

The reference is the preset's ``config.json`` and ``image_converter.json`` in
``tests/fixtures/kerashub_resnet_50_imagenet/`` (written by KerasHub's own conversion code; the README
there names the origin), never a copy of the constants themselves.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.hub_preset import FIXTURE, fixture_config
from tlhelpers import kerashub

ARCHITECTURE = ("input_conv_filters", "input_conv_kernel_sizes", "stackwise_num_filters", "stackwise_num_blocks",
                "stackwise_num_strides", "block_type", "use_pre_activation")


def test_the_backbone_arguments_are_the_presets() -> None:
    preset = fixture_config("config.json")
    assert set(kerashub.RESNET_50) == set(ARCHITECTURE)
    assert {name: preset[name] for name in ARCHITECTURE} == kerashub.RESNET_50
    assert preset["use_pre_activation"] is False and preset["stackwise_num_blocks"] == [3, 4, 6, 3]  # ResNet-50 v1


def test_the_converter_arguments_are_the_presets() -> None:
    preset = fixture_config("image_converter.json")
    np.testing.assert_allclose(kerashub.RESNET_50_CONVERTER["scale"], preset["scale"], rtol=1e-12)
    np.testing.assert_allclose(kerashub.RESNET_50_CONVERTER["offset"], preset["offset"], rtol=1e-12)
    assert kerashub.RESNET_50_CONVERTER["interpolation"] == preset["interpolation"] == "bicubic"
    assert preset["image_size"] == [224, 224]  # the notebook passes its own IMAGE_SIZE instead


def test_the_fixture_loads_as_a_preset() -> None:
    """KerasHub reads the fixture folder as it reads the downloaded preset (weights aside)."""
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.Backbone.from_preset(str(FIXTURE), load_weights=False)
    converter = keras_hub.layers.ImageConverter.from_preset(str(FIXTURE))
    assert type(backbone) is keras_hub.models.ResNetBackbone
    assert backbone.count_params() == keras_hub.models.Backbone.presets[kerashub.PRESET]["metadata"]["params"]
    assert type(converter) is keras_hub.layers.ResNetImageConverter and tuple(converter.image_size) == (224, 224)
