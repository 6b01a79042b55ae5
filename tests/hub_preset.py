"""A KerasHub ResNet-50 preset with random weights, written to a folder: what notebook 06 reads offline.

``python -m tests.hub_preset FOLDER`` writes ``config.json``, ``model.weights.h5`` (random,
seed 0), ``image_converter.json`` and ``metadata.json`` with ``save_to_preset``. The backbone and
the converter are built from the real preset's ``config.json`` and ``image_converter.json``
(``tests/fixtures/kerashub_resnet_50_imagenet/``, whose README names their origin), not from
``tlhelpers.kerashub``, so the tests run the notebook's ``from_preset`` code on the preset's own
configuration, with random weights, without Kaggle.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_FOLDER: Path | None = None
# KerasHub's resnet_50_imagenet preset without its weights: the reference for notebook 06 and tlhelpers.kerashub.
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "kerashub_resnet_50_imagenet"


def fixture_config(name: str = "config.json") -> dict:
    """The constructor arguments in one of the fixture's files (``config.json`` or ``image_converter.json``)."""
    return json.loads((FIXTURE / name).read_text())["config"]


def write_random_preset(folder: Path, blocks: list[int] | None = None):
    """Write the preset into ``folder`` (in this process: imports TensorFlow and keras_hub); return its backbone.

    ``blocks`` replaces ResNet-50's 3, 4, 6 and 3 blocks per stage, e.g. ``[1, 1, 1, 1]`` for a small stand-in
    that builds and loads in a fraction of the time.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ResNetBackbone.from_config(
        {**fixture_config(), **({"stackwise_num_blocks": blocks} if blocks else {})})
    converter = keras_hub.layers.ImageConverter.from_preset(str(FIXTURE))
    backbone.save_to_preset(str(folder))
    converter.save_to_preset(str(folder))
    return backbone


def offline_kaggle(monkeypatch, tmp_path: Path) -> Path:
    """An empty kagglehub cache under ``tmp_path``, and every web request failing through a proxy nobody listens
    on, so that a download fails at once on any machine; returns the cache folder (not created)."""
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "kagglehub"


def fill_kaggle_cache(preset: Path):
    """Copy a preset folder into kagglehub's cache as its download of ``resnet_50_imagenet`` leaves it: the files
    under the preset's versioned handle, each marked complete. Returns the cache and the handle."""
    from tlhelpers.kerashub import cached_preset

    cache, handle, _ = cached_preset()
    for file in preset.iterdir():
        Path(cache.get_path(handle, file.name)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, cache.get_path(handle, file.name))
        cache.mark_as_complete(handle, file.name)
    return cache, handle


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
