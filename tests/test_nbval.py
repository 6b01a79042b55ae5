"""nbval executes every notebook top to bottom too: a second executor, which finds errors the runner's does not.

It runs on papermill ``--prepare-only`` copies with the runner's test parameters except
SECOND_RUN_EPOCHS: nbval is there to find errors, and test_notebooks.py asserts the first run's
numbers. Notebook 06 keeps its own KerasHub preset name here, which it builds offline with random
weights as in ``make run WEIGHTS=none`` (the runner's run loads a preset folder). It has a feature
cache of its own, so that it can run on one pytest worker while
test_notebooks.py runs the same notebooks through the runner on another (``make test`` uses
pytest-xdist).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXPECTED_CACHE_FILES, NOTEBOOKS, SECOND_RUN_EPOCHS, cached_splits, notebook_parameters


def test_nbval_runs_every_notebook(tmp_path: Path) -> None:
    copies, cache = tmp_path / "notebooks", tmp_path / "feature_cache"
    copies.mkdir()
    for notebook in NOTEBOOKS:
        args = [sys.executable, "-m", "papermill", "--prepare-only", str(notebook), str(copies / notebook.name)]
        for name, value in {**notebook_parameters(notebook, local_preset=False), "EPOCHS": SECOND_RUN_EPOCHS}.items():
            args += ["-y", json.dumps({name: value})]
        subprocess.run(args, check=True, capture_output=True, timeout=120)
    env = {**os.environ, "TLHELPERS_FEATURE_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(copies), str(copies)],
                          capture_output=True, text=True, timeout=1800, cwd=copies, env=env)
    assert done.returncode == 0, done.stdout[-6000:]
    assert " passed" in done.stdout and " failed" not in done.stdout, done.stdout[-3000:]
    assert cached_splits(cache) == EXPECTED_CACHE_FILES, "nbval's notebooks extracted a split twice"
