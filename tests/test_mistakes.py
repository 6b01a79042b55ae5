"""Notebook 01's self-checks stop the classic mistakes they guard.

Each test makes one mistake from PITFALLS.md in an in-memory copy of notebook 01 (the file is not
touched), runs the notebook's cells from the data onwards, and asserts that the run stops at the
notebook's own check for that mistake, with its message, before any training. The cells before
the data (imports, parameters, seed) run once, in one kernel shared by the tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import NOTEBOOKS, notebook_parameters
from tests.notebook_cells import CellError, edited, index_of, kernel, load, run_cells, with_parameters

NOTEBOOK = next(nb for nb in NOTEBOOKS if nb.name.startswith("01_"))
DATA_CELL = "data = tlhelpers.load_image_folder("
TRAIN_CELL = "history = model.fit("

PREPROCESS = "x = keras.applications.resnet50.preprocess_input(inputs)"
FREEZE = "resnet.trainable = False"
TRAINS_ONLY = "tlhelpers.heads.assert_trains_only(model, head)"
MISTAKES = [
    pytest.param(
        {"train_ds, val_ds, test_ds = data.train_ds,": "scaled = lambda x, y: (x / 255, y)\n"
         "train_ds, val_ds, test_ds = data.train_ds.map(scaled), data.val_ds.map(scaled), data.test_ds.map(scaled)\n#"},
        "low, high = float(tf.reduce_min(images))", "not raw RGB values in [0, 255]",
        id="pipeline-divides-by-255",
    ),
    pytest.param(
        {"train_ds, val_ds, test_ds = data.train_ds,": "scaled = lambda x, y: (x / 127.5 - 1, y)\n"
         "train_ds, val_ds, test_ds = data.train_ds.map(scaled), data.val_ds.map(scaled), data.test_ds.map(scaled)\n#"},
        "low, high = float(tf.reduce_min(images))", "not raw RGB values in [0, 255]",
        id="pipeline-scales-to-minus-one-one",
    ),
    pytest.param(
        {PREPROCESS: "x = keras.layers.Rescaling(1 / 255)(inputs)"},
        "np.testing.assert_allclose(\n    preprocessed", "is not keras.applications.resnet50.preprocess_input",
        id="rescaling-instead-of-preprocess-input",
    ),
    pytest.param(
        {FREEZE: "pass"},
        TRAINS_ONLY, "layer(s) outside the head: conv1_bn, conv1_conv, conv2_block1_0_bn,",
        id="base-left-trainable",
    ),
    pytest.param(  # the container's own list stays empty: only the check on the model sees it
        {FREEZE: f"{FREEZE}\nfor layer in resnet.layers:\n    if layer.name.startswith('conv5_block3'):\n"
         "        layer.trainable = True\nassert not resnet.trainable_weights\n"},
        TRAINS_ONLY, "fit would train 6 layer(s) outside the head: conv5_block3_1_bn, conv5_block3_1_conv,",
        id="top-block-unfrozen-before-the-head-is-trained",
    ),
    pytest.param(
        {'keras.layers.Dense(num_classes, activation="softmax")': "keras.layers.Dense(num_classes)"},
        "ends_in_softmax = ", "does not end in a softmax and the loss has from_logits=False",
        id="logits-head-with-from-logits-false",
    ),
    pytest.param(
        {"loss = keras.losses.SparseCategoricalCrossentropy(from_logits=False)":
         "loss = keras.losses.CategoricalCrossentropy()"},
        "ends_in_softmax = ", "use SparseCategoricalCrossentropy",
        id="integer-labels-with-categorical-crossentropy",
    ),
]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NotebookClient, nbformat.NotebookNode]]:
    """A kernel that has run notebook 01's cells before the data, with the tests' parameters."""
    out = tmp_path_factory.mktemp("mistakes")
    nb = with_parameters(load(NOTEBOOK), **{**notebook_parameters(NOTEBOOK), "OUTPUT_DIR": str(out)})
    with kernel() as client:
        run_cells(client, nb, stop=index_of(nb, DATA_CELL))
        yield client, nb


@pytest.mark.parametrize(("replacements", "check", "message"), MISTAKES)
def test_mistake_stops_at_its_check(prepared, replacements: dict[str, str], check: str, message: str) -> None:
    client, nb = prepared
    mistaken = edited(nb, replacements)
    with pytest.raises(CellError) as stopped:
        run_cells(client, mistaken, start=index_of(mistaken, DATA_CELL), stop=index_of(mistaken, TRAIN_CELL))
    error = stopped.value
    assert check in error.source, f"stopped at the wrong cell:\n{error}"
    assert error.ename == "AssertionError" and message in error.evalue, str(error)


def test_without_mistakes_the_checked_cells_pass(prepared) -> None:
    """The same cells, unedited, pass every check: the checks above fire on the mistake, not always."""
    client, nb = prepared
    run_cells(client, nb, start=index_of(nb, DATA_CELL), stop=index_of(nb, TRAIN_CELL))
