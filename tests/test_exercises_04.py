"""Notebook 04's exercises: each solution is run (papermill parameters) and its stated outcome checked.

Only what random weights can show is checked (parameter counts, ratios, epochs, that the
notebook runs unchanged on another folder); the ImageNet outcomes are worded as expectations
in the solutions. Cheap settings: two seeds and few epochs, features cached once per session.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from tests.conftest import BUNDLED_DATA, ROOT, notebook_parameters
from tlhelpers.runtime import RESULTS_MIME

NOTEBOOK = ROOT / "notebooks" / "04_compare_heads.ipynb"
CHEAP = {"SEEDS": [0, 1], "EPOCHS": 6, "PATIENCE": 2}  # papermill passes tuples as strings: lists
ROW = re.compile(r"^(0\d [a-z0-9 +]+?)\s+([\d,]+)\s+([\d.]+)x\s+([\d.]+)\s+([\d,]+)\s+([\d,]+)\s+"
                 r"([\d.]+) \+/- ([\d.]+)$")


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("feature_cache_04")


def run_04(out: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, **parameters) -> nbformat.NotebookNode:
    import papermill

    monkeypatch.setenv("TLHELPERS_FEATURE_CACHE", str(cache))  # the kernel inherits the environment
    target = out / NOTEBOOK.name
    papermill.execute_notebook(str(NOTEBOOK), str(target), parameters={**notebook_parameters(NOTEBOOK), **CHEAP,
                                                                      **parameters},
                               cwd=str(NOTEBOOK.parent), kernel_name="python3", progress_bar=False,
                               execution_timeout=600)
    return nbformat.read(target, as_version=4)


def _text(nb: nbformat.NotebookNode, source_contains: str) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" and source_contains in c.source
                   for o in c.outputs)


def table(nb: nbformat.NotebookNode) -> dict[str, dict]:
    """The comparison table, one row per head: parameters, ratio, epochs run and kept per seed, accuracy."""
    rows = {}
    for line in _text(nb, '"x dense"').splitlines():
        match = ROW.match(line.strip())
        if match:
            name, params, ratio, _, run, kept, mean, std = match.groups()
            rows[name] = {"params": int(params.replace(",", "")), "ratio": ratio,
                          "epochs_run": [int(x) for x in run.split(",")], "kept": [int(x) for x in kept.split(",")],
                          "mean": float(mean), "std": float(std)}
    assert len(rows) == 3, _text(nb, '"x dense"')
    return rows


def results(nb: nbformat.NotebookNode) -> dict:
    found = [o.data[RESULTS_MIME] for c in nb.cells if c.cell_type == "code" for o in c.outputs
             if RESULTS_MIME in o.get("data", {})]
    assert len(found) == 1
    return found[0]


def dense(classes: int) -> int:
    return 2048 * classes + classes


def test_exercise_1_smaller_heads(tmp_path: Path, feature_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = run_04(tmp_path, feature_cache, monkeypatch, MLP_UNITS=[64], MLP_DROPOUT=[0.2], CONV_FILTERS=32)
    rows = table(nb)
    assert rows["01 dense"]["params"] == dense(4) == 8_196
    assert rows["02 mlp + dropout"]["params"] == 2048 * 64 + 64 + 64 * 4 + 4 == 131_396
    assert rows["03 conv 1x1"]["params"] == 2048 * 32 + 32 + 32 * 4 + 4 == 65_700
    assert (rows["02 mlp + dropout"]["ratio"], rows["03 conv 1x1"]["ratio"]) == ("16.0", "8.0")
    assert "test_accuracy" in results(nb), "the notebook runs to the end unchanged"


def test_exercise_2_patience_equal_to_epochs(tmp_path: Path, feature_cache: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    epochs = 12
    nb = run_04(tmp_path, feature_cache, monkeypatch, EPOCHS=epochs, PATIENCE=epochs)
    rows = table(nb)
    for name, row in rows.items():
        assert row["epochs_run"] == [epochs, epochs], f"{name}: no run stops early"
        assert all(1 <= kept <= epochs for kept in row["kept"]), name
    # The notebook's own asserts checked, on every run, that the kept epoch has the lowest validation
    # loss and that the accuracy reported is that of the kept weights; at least one run keeps an
    # earlier epoch than the last, so restore_best_weights did restore without an early stop.
    assert any(kept < epochs for row in rows.values() for kept in row["kept"]), rows
    assert "test_accuracy" in results(nb)


def test_exercise_3_another_folder(tmp_path: Path, feature_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "my_images"
    for name in ("circle", "square", "star"):
        shutil.copytree(BUNDLED_DATA / name, own / name)
    nb = run_04(tmp_path, feature_cache, monkeypatch, DATA_DIR=str(own))
    rows = table(nb)
    assert rows["01 dense"]["params"] == dense(3)
    for name, row in rows.items():
        assert row["ratio"] == f"{row['params'] / dense(3):.1f}", f"{name}: the ratio for 3 classes"
    assert rows["02 mlp + dropout"]["ratio"] != "68.1", "not the 4-class ratio"
    result = results(nb)
    assert result["heads_compared"] == 3 and result["chance"] == round(1 / 3, 4)
    assert result["chosen_head"] in rows and 0 <= result["test_accuracy"] <= 1
    assert f"chosen on validation: {result['chosen_head']}" in _text(nb, "within_noise(")


def test_augment_copies_cache_augmented_copies_of_the_training_images(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """"Extract the features once": `AUGMENT_COPIES = K` caches K augmented copies of each training image after the
    originals; validation stays as it is. Only the cells up to the extraction run."""
    from tests.notebook_cells import index_of, kernel, load, run_cells, run_code, with_parameters

    monkeypatch.setenv("TLHELPERS_FEATURE_CACHE", str(tmp_path / "cache"))  # the kernel inherits the environment
    nb = with_parameters(load(NOTEBOOK), **{**notebook_parameters(NOTEBOOK), "AUGMENT_COPIES": 2})
    with kernel() as client:
        run_cells(client, nb, stop=index_of(nb, 'val_features = tlhelpers.cached_features(') + 1)
        counts = run_code(client, "print(sum(data.counts['train'].values()), len(train_features.labels), "
                                  "sum(data.counts['val'].values()), len(val_features.labels))")
    train, cached_train, val, cached_val = (int(n) for n in counts.split())
    assert cached_train == 3 * train and cached_val == val, counts
