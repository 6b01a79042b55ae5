"""Each exercise of notebook 05, run as its solution says, ends as its solution says.

The runs are in-memory copies of the notebook with the tests' tiny parameters (tests/notebook05.py),
trimmed after the cell that shows the outcome. Exercise 4 (the classic BatchNorm mistake) is run by
tests/test_mistakes_05.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.notebook05 import CHECK_CELL, RECOMPILE_LINE, UNFREEZE_CELL, Run, run_notebook


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("feature_cache")


@pytest.fixture(scope="module")
def without_recompile(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Run:
    """Exercise 2: the recompile line commented out, run to the check after fine-tuning."""
    return run_notebook(tmp_path_factory.mktemp("exercise2"), stop_after=CHECK_CELL, cache_dir=cache_dir,
                        edits=((RECOMPILE_LINE, "    # " + RECOMPILE_LINE.lstrip()),))


@pytest.mark.parametrize(("start", "printed"), [
    ("conv5", "10 ResNet50 layers now train (conv5_block1_1_conv ... conv5_block3_3_conv); "
              "14,961,668 trainable parameters with the head"),
    ("conv4", "29 ResNet50 layers now train (conv4_block1_1_conv ... conv5_block3_3_conv); "
              "22,049,796 trainable parameters with the head"),
])
def test_exercise_1_unfreeze_from_conv4(tmp_path: Path, cache_dir: Path, start: str, printed: str) -> None:
    run = run_notebook(tmp_path, {"UNFREEZE_FROM": start}, stop_after=UNFREEZE_CELL, cache_dir=cache_dir)
    assert run.error is None, run.error
    assert printed in run.text()
    assert 22_049_796 - 14_961_668 == 7_088_128  # "conv4 adds 7,088,128", as the solution says


def test_exercise_2_without_recompiling_conv5_still_trains(without_recompile: Run) -> None:
    assert without_recompile.error is None, without_recompile.error
    assert "toy model: the layer unfrozen after fit stayed put until compile ran again" in without_recompile.text()
    assert without_recompile.moved() > 0
    assert "conv5_block1_1_conv's kernel moved by" in without_recompile.text()


def test_exercise_3_a_learning_rate_100_times_higher_moves_conv5_more_than_10_times_further(
        tmp_path: Path, cache_dir: Path, without_recompile: Run) -> None:
    # The 1e-5 baseline: exercise 2's run, which fine-tunes with a fresh Adam(LEARNING_RATE) from the first
    # compile, the same optimizer the recompile cell would create.
    high = run_notebook(tmp_path, {"LEARNING_RATE": 1e-3}, stop_after=CHECK_CELL, cache_dir=cache_dir)
    assert high.error is None, high.error
    assert high.moved() > 10 * without_recompile.moved(), (high.moved(), without_recompile.moved())
