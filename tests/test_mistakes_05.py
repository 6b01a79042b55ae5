"""Notebook 05's checks stop the classic fine-tuning mistakes, each at its own assert, with its message.

Each test makes the mistake in an in-memory copy of the notebook (tests/notebook05.py) and runs only
the cells up to the check that guards it. The check is in the notebook, not here: the test only
reads where the run stopped and what it said.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.notebook05 import CHECK_CELL, RECOMPILE_LINE, UNFREEZE_CELL, UNFREEZE_LINES, run_notebook


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("feature_cache")


def test_batchnorm_unfrozen_with_base_trainable_is_stopped(tmp_path: Path, cache_dir: Path) -> None:
    """`base_model.trainable = True` instead of the unfreeze loop (exercise 4): the BatchNorm check stops the run."""
    run = run_notebook(tmp_path, edits=((UNFREEZE_LINES, "base_model.trainable = True\n"),),
                       stop_after=UNFREEZE_CELL, cache_dir=cache_dir)
    assert run.error is not None, "the notebook ran on with BatchNormalization layers trainable"
    assert run.error.ename == "AssertionError"
    assert run.error.evalue == ("53 BatchNormalization layers are trainable (conv1_bn, ...): "
                                "keep them frozen while fine-tuning")


def test_unfreezing_after_fit_without_recompiling_is_stopped(tmp_path: Path, cache_dir: Path) -> None:
    """The Keras guide's order (the head trained with fit on the assembled model), then no new compile:
    conv5 is silently not trained, and the check after fine-tuning says so."""
    head_fit = ("tlhelpers.scaling.check_in_scope(model, strategy)\n",
                "tlhelpers.scaling.check_in_scope(model, strategy)\nmodel.fit(train_ds, epochs=1, verbose=0)\n")
    no_recompile = (RECOMPILE_LINE, "    # " + RECOMPILE_LINE.lstrip())
    run = run_notebook(tmp_path, edits=(head_fit, no_recompile), stop_after=CHECK_CELL, cache_dir=cache_dir)
    assert run.error is not None, "the notebook did not notice that conv5 did not train"
    assert run.error.ename == "AssertionError"
    assert run.error.evalue == "conv5_block1_1_conv did not train: compile again after changing trainable"
    assert "BatchNorm moving statistics" not in run.text()
