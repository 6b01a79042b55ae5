"""Every notebook in notebooks/ runs end to end on the bundled data, offline, and proves itself.

New notebooks are picked up automatically. Each one is executed once through the main job's
runner (``python -m tlhelpers.runner``) with
conftest.notebook_parameters(), and once more through
``pytest --nbval-lax`` on papermill ``--prepare-only`` copies with the same parameters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.conftest import NOTEBOOKS, ROOT, notebook_parameters
from tlhelpers.runtime import RESULTS_MIME

_executed: dict[Path, nbformat.NotebookNode] = {}


def _runner_args(parameters: dict) -> list[str]:
    args = ["--weights", "none" if parameters["WEIGHTS"] is None else str(parameters["WEIGHTS"])]
    for name, value in parameters.items():
        if name != "WEIGHTS":
            args += ["--param", name, repr(value)]
    return args


def executed(notebook: Path, out_dir: Path) -> nbformat.NotebookNode:
    """Run one notebook through the main job's runner (once per session) and read the result."""
    if notebook not in _executed:
        command = [sys.executable, "-m", "tlhelpers.runner", str(notebook), "--out", str(out_dir),
                   *_runner_args({**notebook_parameters(notebook), "OUTPUT_DIR": str(out_dir / "outputs")})]
        env = {**os.environ, "TLHELPERS_FEATURE_CACHE": str(out_dir / "feature_cache")}
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
        assert done.returncode == 0, f"{notebook.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
        assert f"-> {out_dir / notebook.name}" in done.stdout
        _executed[notebook] = nbformat.read(out_dir / notebook.name, as_version=4)
    return _executed[notebook]


@pytest.fixture(scope="session")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("executed")


def _outputs(nb: nbformat.NotebookNode, source_contains: str | None = None) -> list:
    return [o for c in nb.cells if c.cell_type == "code" and (source_contains is None or source_contains in c.source)
            for o in c.get("outputs", [])]


ids = [nb.stem for nb in NOTEBOOKS]
HEAD_NOTEBOOKS = [nb for nb in NOTEBOOKS if nb.name[:2] in {"01", "02", "03"}]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_runs_without_errors(notebook: Path, out_dir: Path) -> None:
    nb = executed(notebook, out_dir)
    errors = [o for o in _outputs(nb) if o.output_type == "error"]
    assert not errors, errors


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_learns_well_above_chance(notebook: Path, out_dir: Path) -> None:
    nb = executed(notebook, out_dir)
    results = [o.data[RESULTS_MIME] for o in _outputs(nb) if RESULTS_MIME in o.get("data", {})]
    assert len(results) == 1, "the notebook must call tlhelpers.record_results once"
    result = results[0]
    assert result["weights"] == "None", "the tests run with random weights"
    threshold = max(2 * result["chance"], 0.5)
    assert "test_accuracy" in result, f"report the test split once: record_results(test_accuracy=...); got {result}"
    assert result["test_accuracy"] >= threshold, result
    if "val_accuracy" in result:  # optional: the number that chose the model
        assert result["val_accuracy"] >= threshold, result


FIGURES = ("plot_batch(images",)
EVALUATION_FIGURES = ("plot_batch(val_images", "plot_confusion_matrix(", "plot_mistakes(", "plot_grad_cam(")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_plots_the_data_the_curves_and_the_evaluation(notebook: Path, out_dir: Path) -> None:
    nb = executed(notebook, out_dir)
    def figures(call: str) -> list:
        return [o for o in _outputs(nb, call) if "image/png" in o.get("data", {})]

    for call in FIGURES + (EVALUATION_FIGURES if notebook in HEAD_NOTEBOOKS else ()):
        assert figures(call), f"no figure from the cell that calls {call}"
    assert figures("plot_history(") or figures("plot_histories("), "no learning curves"


@pytest.mark.parametrize("notebook", HEAD_NOTEBOOKS, ids=[nb.stem for nb in HEAD_NOTEBOOKS])
def test_saves_reloads_and_predicts_one_file(notebook: Path, out_dir: Path) -> None:
    nb = executed(notebook, out_dir)
    text = "".join(o.get("text", "") for o in _outputs(nb, "predict_file("))
    assert "identical predictions" in text
    top3 = [line for line in text.splitlines() if line.endswith(tuple("0123456789")) and ".png:" in line]
    assert len(top3) == 3, text
    table = "".join(o.get("text", "") for o in _outputs(nb, "classification_table("))
    assert "precision" in table and "recall" in table


def test_nbval_runs_every_notebook(tmp_path: Path) -> None:
    for notebook in NOTEBOOKS:
        args = [sys.executable, "-m", "papermill", "--prepare-only", str(notebook), str(tmp_path / notebook.name)]
        for name, value in notebook_parameters(notebook).items():
            args += ["-y", json.dumps({name: value})]
        subprocess.run(args, check=True, capture_output=True, timeout=120)
    env = {**os.environ, "TLHELPERS_FEATURE_CACHE": str(tmp_path / "feature_cache")}
    done = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path)],
                          capture_output=True, text=True, timeout=1800, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout[-6000:]
    assert f"{sum(1 for _ in NOTEBOOKS)} failed" not in done.stdout
    assert " passed" in done.stdout


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_committed_notebook_is_clean(notebook: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not any(c.outputs or c.execution_count for c in code), "strip outputs before committing"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    for line in tagged[0].source.splitlines():
        name = line.split("=")[0].strip()
        assert not line.strip() or line.lstrip().startswith("#") or name.isupper(), f"not an ALL_CAPS constant: {line}"
    for name in ("WEIGHTS", "DATA_DIR", "IMAGE_SIZE", "EPOCHS"):
        assert f"{name} = " in tagged[0].source, f"{name} missing from the parameters cell"
    assert 'WEIGHTS = "imagenet"' in tagged[0].source, "the real teaching default"


def _headings(notebook: Path) -> list[str]:
    nb = nbformat.read(notebook, as_version=4)
    return [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
            if line.startswith("## ")]


def test_head_notebooks_share_one_skeleton() -> None:
    """Notebooks 01-03 differ in their head, not in their structure: a diff shows the head."""
    assert len(HEAD_NOTEBOOKS) == 3
    first = _headings(HEAD_NOTEBOOKS[0])
    assert first[:3] == ["## Overview", "## Setup", "## Parameters"]
    assert first[-3:] == ["## Summary", "## Exercises", "## Next steps"]
    for notebook in HEAD_NOTEBOOKS[1:]:
        assert _headings(notebook) == first, notebook.name
    names = ("base_model", "head", "model", "train_ds", "val_ds", "class_names", "num_classes", "history")
    for notebook in HEAD_NOTEBOOKS:
        source = "\n".join(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code")
        for name in names:
            assert f"{name} = " in source or f"{name}, " in source, f"{notebook.name} does not define {name}"


def test_all_notebooks_in_a_row_extract_features_once(out_dir: Path) -> None:
    """The feature cache serves every notebook after the first: one cache file per split and size.

    Each extraction with a new key writes a new file (``split-HxW-dtype-key.npz``), so a notebook
    that extracted again instead of reusing the cache would leave a second file for its split.
    """
    for notebook in NOTEBOOKS:
        executed(notebook, out_dir)
    written = sorted(path.name.rsplit("-", 1)[0] for path in (out_dir / "feature_cache").glob("*.npz"))
    users = [nb for nb in NOTEBOOKS if "cached_features(" in nb.read_text()]
    assert len(users) >= 4, "notebooks 01-04 train on cached features"
    assert written == [f"{split}-64x64-float32" for split in ("test", "train", "val")], written
