"""Shared fixtures: the repository paths, tiny notebook parameters, small image folders."""

from __future__ import annotations

import hashlib
import os
from fnmatch import fnmatch

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BUNDLED_DATA = ROOT / "data" / "shapes"

# What the notebook tests inject: random weights (offline), small images, enough epochs for a
# head on random features to learn the bundled shapes (see data/README.md).
TINY_PARAMETERS = {
    "WEIGHTS": None,
    "DATA_DIR": str(BUNDLED_DATA),
    "IMAGE_SIZE": 64,
    "BATCH_SIZE": 16,
    "EPOCHS": 20,
}
# Random ResNet50 features are large and strongly correlated; the MLP head's ReLU units die at
# the teaching learning rate of 1e-3 on them (they do not on ImageNet features), so its test
# run uses a smaller rate and more epochs.
NOTEBOOK_PARAMETERS = {
    "02_mlp_dropout_head": {"LEARNING_RATE": 1e-4, "EPOCHS": 30},
}


# Test files of these kinds execute notebooks, example scripts or a browser, and so do the README
# blocks that run an example script and the few tests in other files named in SLOW_TEST_IDS;
# `make test-fast` (pytest -m "not slow") leaves them out, `make test` runs them. New files and
# blocks that match are picked up without editing anything.
SLOW_TEST_FILES = (
    "test_notebooks.py",
    "test_browser.py",
    "test_examples.py",
    "test_exercises*.py",
    "test_mistakes*.py",
    "test_multiworker.py",
    "test_colab*.py",
)
SLOW_TEST_IDS = (
    "*[[]examples/*",
    "test_notebook_05_*",  # tests/test_finetune.py and test_scaling.py run notebook 05 whole
    "*_on_two_logical_cpus",  # a fresh interpreter with two logical devices fine-tunes a small model
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in a SLOW_TEST_FILES file, and every test whose id matches SLOW_TEST_IDS, ``slow``."""
    for item in items:
        if any(fnmatch(item.path.name, pattern) for pattern in SLOW_TEST_FILES) or any(
                fnmatch(item.name, pattern) for pattern in SLOW_TEST_IDS):
            item.add_marker(pytest.mark.slow)


def notebook_parameters(notebook: Path) -> dict:
    """The parameters the tests inject into ``notebook``.

    Notebook 06 (KerasHub) also gets ``PRESET``: a local preset folder with random weights,
    written once per session (tests/hub_preset.py), so that its ``from_preset`` code runs without
    Kaggle. Its own preset name, built offline with random weights, is tested in test_notebooks.py.
    """
    parameters = {**TINY_PARAMETERS, **NOTEBOOK_PARAMETERS.get(notebook.stem, {})}
    if "PRESET = " in notebook.read_text():
        from tests.hub_preset import random_preset

        parameters["PRESET"] = str(random_preset())
    return parameters


def write_image(path: Path, colour: tuple[int, int, int], size: int = 40) -> Path:
    """Write a small solid-colour PNG (or JPEG, by suffix) with a bright square in it.

    The last row's first pixels encode the last three parts of ``path``, so that two files
    written here are never identical copies (the loader reports those: tlhelpers.duplicates).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((size, size, 3), dtype=np.uint8) + np.array(colour, dtype=np.uint8)
    pixels[size // 4 : size // 2, size // 4 : size // 2] = 255
    stamp = hashlib.sha256("/".join(path.parts[-3:]).encode()).digest()[:12]
    pixels[-1, :4] = np.frombuffer(stamp, dtype=np.uint8).reshape(4, 3)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Three classes (red, green, blue) of 10 images each, in the one-folder-per-class layout."""
    root = tmp_path / "images"
    for name, colour in {"red": (200, 0, 0), "green": (0, 200, 0), "blue": (0, 0, 200)}.items():
        for i in range(10):
            write_image(root / name / f"{name}_{i}.png", colour)
    return root
