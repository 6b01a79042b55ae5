"""Run a trimmed, edited in-memory copy of notebook 05 (for its exercise, mistake and strategy tests).

The file on disk is never changed: each run reads it, puts the tests' tiny parameters after the
``parameters`` cell (as papermill does), applies the edits a learner would make, drops the cells
after the last one the test needs, and executes the rest with nbclient in ``notebooks/``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.conftest import ROOT, TINY_PARAMETERS
from tests.notebook_cells import edited, index_of, load, with_parameters

NOTEBOOK = ROOT / "notebooks" / "05_fine_tuning.ipynb"
# Cells that end where a test can stop: each marker is found in exactly one code cell.
UNFREEZE_CELL = "tlhelpers.unfreeze_from(model, UNFREEZE_FROM)"
CHECK_CELL = "did not train: compile again after changing trainable"
RECOMPILE_LINE = "    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy()"
UNFREEZE_LINES = (  # the three lines of the unfreeze loop, as in the notebook
    "resnet.trainable = True  # recursive: every layer inside is trainable now, BatchNormalization too ...\n"
    "for index, layer in enumerate(resnet.layers):  # ... so set each layer: from `first` on, BatchNorm excepted\n"
    "    layer.trainable = index >= first and not isinstance(layer, keras.layers.BatchNormalization)\n"
)


@dataclass
class Run:
    """An executed copy: its cells, and the error that stopped it (``None`` if it ran to the end)."""

    nb: nbformat.NotebookNode
    error: CellExecutionError | None

    def text(self) -> str:
        """Everything the executed cells printed."""
        return "".join(output.get("text", "") for cell in self.nb.cells if cell.cell_type == "code"
                       for output in cell.get("outputs", []) if output.output_type == "stream")

    def moved(self) -> float:
        """How far the first unfrozen kernel moved in fine-tuning, relative to its norm (printed by the check)."""
        found = re.findall(r"kernel moved by ([0-9.e+-]+) of its norm", self.text())
        assert len(found) == 1, self.text()[-2000:]
        return float(found[0])


def run_notebook(
    tmp_path: Path,
    parameters: dict | None = None,
    edits: tuple[tuple[str, str], ...] = (),
    stop_after: str | None = None,
    first_cell: str | None = None,
    cache_dir: Path | None = None,
) -> Run:
    """Execute notebook 05 with tiny parameters, ``edits`` applied and the cells after ``stop_after`` dropped.

    Args:
        tmp_path: Where the outputs go (``OUTPUT_DIR``), so that no saved head is reused.
        parameters: Overrides on top of ``TINY_PARAMETERS`` (and ``FINE_TUNE_EPOCHS = 1``).
        edits: ``(old, new)`` source replacements; each ``old`` must occur exactly once in the code.
        stop_after: A marker of the last code cell to run (see the constants above); ``None`` runs all.
        first_cell: Code run before everything else (e.g. to set up logical devices).
        cache_dir: The feature cache (``TLHELPERS_FEATURE_CACHE``); share it to extract once.
    """
    values = {**TINY_PARAMETERS, "FINE_TUNE_EPOCHS": 1, "OUTPUT_DIR": str(tmp_path / "outputs"), **(parameters or {})}
    nb = edited(with_parameters(load(NOTEBOOK), **values), dict(edits))
    if stop_after is not None:
        nb.cells = nb.cells[: index_of(nb, stop_after) + 1]
    if first_cell:
        nb.cells.insert(0, nbformat.v4.new_code_cell(first_cell))
    env = {"TLHELPERS_FEATURE_CACHE": str(cache_dir or tmp_path / "feature_cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    client = NotebookClient(nb, kernel_name="python3", timeout=900,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    try:
        client.execute()
        error = None
    except CellExecutionError as caught:
        error = caught
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return Run(nb, error)
