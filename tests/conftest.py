"""Shared fixtures: the repository paths, tiny notebook parameters, small image folders.

Comparing floats, in every test (../shared/PITFALLS.md, row 15): exact equality
(``assert_array_equal``, ``==``) only for the very same computation on the same inputs in the same
batching in the same model object, and for values no arithmetic touched (weights that must be
unchanged, a copy, a reload of the same bytes, labels, a channel flip). Anything computed through
another batch size, another model object (a reloaded one), another kernel or device gets
:func:`assert_close`: oneDNN picks kernels by CPU (AVX-512 or not), by batch size and by thread
count, and a GPU picks its own, so such results differ in the last bits. Try a float-sensitive test
file under ``ONEDNN_MAX_CPU_ISA=AVX2`` and under ``TF_ENABLE_ONEDNN_OPTS=0``; CI runs ``make test-fast``
under the latter.
"""

from __future__ import annotations

import hashlib
import os
from fnmatch import fnmatch

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow
# `make test` runs several pytest workers (pytest-xdist), each with its notebook kernels: on a GPU,
# each process takes the memory it needs instead of all of it, so they can share the device.
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scripts.run_notebooks import OFFLINE_NOTEBOOK_PARAMETERS, OFFLINE_PARAMETERS

ROOT = Path(__file__).resolve().parents[1]


def assert_close(actual, expected, ulps: int = 64, err_msg: str = "") -> None:
    """Equal up to ``ulps`` units in the last place of the values' dtype (float32: 64 ulps = 7.6e-6), relative
    to the magnitude, and as much absolute near zero: for one result computed two ways (batchings, kernels,
    devices, model objects)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    tolerance = ulps * float(np.finfo(np.result_type(actual.dtype, expected.dtype, np.float16)).eps)
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance, err_msg=err_msg)

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# Notebook 06 and any other notebook on KerasHub: the `hub` extra, a preset, its own feature cache files.
HUB_NOTEBOOKS = [nb for nb in NOTEBOOKS if "import keras_hub" in nb.read_text()]
BUNDLED_DATA = ROOT / "data" / "shapes"
RECOLOURED_DATA = ROOT / "data" / "shapes_recoloured"  # notebook 01's second test set, colours swapped

# What the notebook tests inject: random weights (offline) at the parameters `make run WEIGHTS=none` uses,
# small images and enough epochs for a head on random features to learn the bundled shapes (the reasons
# are in scripts/run_notebooks.py, beside the values).
TINY_PARAMETERS = {"WEIGHTS": None, "DATA_DIR": str(BUNDLED_DATA), **OFFLINE_PARAMETERS}
NOTEBOOK_PARAMETERS = OFFLINE_NOTEBOOK_PARAMETERS
# The runs that check that a notebook executes somewhere else (nbval, JupyterLab), not what it
# learns: tests/test_notebooks.py asserts the numbers of the runner's run.
SECOND_RUN_EPOCHS = 2


# Test files of these kinds execute notebooks, example scripts or a browser, and so do the README
# blocks that run an example script and the few tests in other files named in SLOW_TEST_IDS;
# `make test-fast` (pytest -m "not slow") leaves them out, `make test` runs them. New files and
# blocks that match are picked up without editing anything. They run first, longest first, so
# that `make test`'s workers (pytest-xdist, one file per worker at a time) finish together.
SLOW_TEST_FILES = (
    "test_notebooks.py",
    "test_nbval.py",
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
    """Mark every test in a SLOW_TEST_FILES file, and every test whose id matches SLOW_TEST_IDS, ``slow``.

    Then order the files: SLOW_TEST_FILES' files in that order, then other files with a slow test, then
    the rest (a stable sort keeps the order inside a file).
    """
    def file_rank(item: pytest.Item) -> int:
        ranks = [i for i, pattern in enumerate(SLOW_TEST_FILES) if fnmatch(item.path.name, pattern)]
        return ranks[0] if ranks else len(SLOW_TEST_FILES) + (item.path not in files_with_slow_ids)

    slow_by_id = [item for item in items if any(fnmatch(item.name, pattern) for pattern in SLOW_TEST_IDS)]
    files_with_slow_ids = {item.path for item in slow_by_id}
    for item in items:
        if file_rank(item) < len(SLOW_TEST_FILES) or item in slow_by_id:
            item.add_marker(pytest.mark.slow)
    items.sort(key=file_rank)


def notebook_parameters(notebook: Path, local_preset: bool = True) -> dict:
    """The parameters the tests inject into ``notebook``.

    Notebook 06 (KerasHub) also gets ``PRESET``: a local preset folder with random weights,
    written once per session (tests/hub_preset.py), so that its ``from_preset`` code runs without
    Kaggle. With ``local_preset=False`` it keeps its own preset name, which it builds offline with
    random weights, as in ``make run WEIGHTS=none`` (test_nbval.py runs it so).
    """
    parameters = {**TINY_PARAMETERS, **NOTEBOOK_PARAMETERS.get(notebook.stem, {})}
    if "RECOLOURED_DIR =" in notebook.read_text():  # absolute, for copies run from another folder
        parameters["RECOLOURED_DIR"] = str(RECOLOURED_DATA)
    if local_preset and notebook in HUB_NOTEBOOKS:
        from tests.hub_preset import random_preset

        parameters["PRESET"] = str(random_preset())
    return parameters


# Each extraction with a new key writes a new file to the feature cache, ``split-HxW-dtype-key.npz``.
# All notebooks in a row at the test parameters leave one per split for the keras.applications base of
# notebooks 01-05, and one train and one val file for a KerasHub base (it evaluates the test split on images).
EXPECTED_CACHE_FILES = sorted([f"{split}-64x64-float32" for split in ("test", "train", "val")]
                              + (["train-64x64-float32", "val-64x64-float32"] if HUB_NOTEBOOKS else []))


def cached_splits(folder: Path) -> list[str]:
    """The split, size and dtype of every file in a feature cache, sorted: a repeat means a second extraction."""
    return sorted(path.name.rsplit("-", 1)[0] for path in folder.glob("*.npz"))


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


@pytest.fixture(scope="session")
def stand_in_preset(tmp_path_factory) -> Path:
    """A preset folder as notebook 06's, small: a 1-block ResNet backbone and the preset's converter (save_to_preset).
    Read it, do not change it: the tests of a session share it."""
    pytest.importorskip("keras_hub")
    from tests.hub_preset import write_random_preset

    folder = tmp_path_factory.mktemp("preset")
    write_random_preset(folder, blocks=[1, 1, 1, 1])
    return folder


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Three classes (red, green, blue) of 10 images each, in the one-folder-per-class layout."""
    root = tmp_path / "images"
    for name, colour in {"red": (200, 0, 0), "green": (0, 200, 0), "blue": (0, 0, 200)}.items():
        for i in range(10):
            write_image(root / name / f"{name}_{i}.png", colour)
    return root
