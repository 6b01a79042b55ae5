"""Every notebook in notebooks/ runs end to end on the bundled data, offline, and proves itself.

New notebooks are picked up automatically. Each one is executed once through the main job's
runner (``python scripts/run_notebooks.py``, papermill) with conftest.notebook_parameters(): one runner
process per set of parameters, the notebooks in order, sharing one feature cache. The tests
below read those executed copies. test_nbval.py executes every notebook once more, with nbval,
at the same time on another pytest worker. The structure of the stored notebooks is checked in
test_notebook_structure.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from scripts import run_notebooks
from tests.conftest import (
    EXPECTED_CACHE_FILES,
    HUB_NOTEBOOKS,
    NOTEBOOKS,
    ROOT,
    TINY_PARAMETERS,
    cached_splits,
    notebook_parameters,
)
from tests.hub_preset import offline_kaggle
from tests.notebook_cells import CellError, index_of, kernel, load, run_cells, run_code, with_parameters
from tlhelpers.runtime import RESULTS_MIME

_executed: dict[Path, nbformat.NotebookNode] = {}
_terminal: dict[Path, str] = {}
_logs: dict[Path, Path] = {}

# What the terminal of `make run` must not show, and the executed notebooks must not carry.
NOISE, TF_WARNING = run_notebooks.NOISE, run_notebooks.TF_WARNING


def _runner_args(parameters: dict) -> list[str]:
    args = ["--weights", "none" if parameters["WEIGHTS"] is None else str(parameters["WEIGHTS"])]
    for name, value in parameters.items():
        if name != "WEIGHTS":
            args += ["--param", name, repr(value)]
    return args


def _log(notebook: Path, out_dir: Path) -> Path:
    return out_dir / f"run-{notebook.stem}.log"


def _run_group(notebooks: list[Path], parameters: dict, out_dir: Path) -> None:
    """One runner process for notebooks that share their parameters (TensorFlow imported once)."""
    command = [sys.executable, "scripts/run_notebooks.py", *map(str, notebooks), "--out", str(out_dir),
               "--log", str(_log(notebooks[0], out_dir)),
               *_runner_args({**parameters, "OUTPUT_DIR": str(out_dir / "outputs")})]
    env = {**os.environ, "TLHELPERS_FEATURE_CACHE": str(out_dir / "feature_cache")}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900 * len(notebooks), env=env)
    for notebook in notebooks:
        _terminal[notebook] = done.stdout + done.stderr
        _logs[notebook] = _log(notebooks[0], out_dir)
        if done.returncode == 0:
            assert f"-> {out_dir / notebook.name}" in done.stdout
            _executed[notebook] = nbformat.read(out_dir / notebook.name, as_version=4)


def executed(notebook: Path, out_dir: Path) -> nbformat.NotebookNode:
    """Run the notebooks through the main job's runner (once per session) and read ``notebook``'s result.

    The first call runs every notebook, in order, grouped by their parameters.
    """
    if not _terminal:
        groups: list[tuple[dict, list[Path]]] = []
        for nb in NOTEBOOKS:
            parameters = notebook_parameters(nb)
            same = [group for group in groups if group[0] == parameters]
            if same:
                same[0][1].append(nb)
            else:
                groups.append((parameters, [nb]))
        for parameters, notebooks in groups:
            _run_group(notebooks, parameters, out_dir)
    assert notebook in _executed, f"{notebook.name} failed:\n{_terminal.get(notebook, '(not run)')[-6000:]}"
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


def _results(nb: nbformat.NotebookNode) -> dict:
    results = [o.data[RESULTS_MIME] for o in _outputs(nb) if RESULTS_MIME in o.get("data", {})]
    assert len(results) == 1, "the notebook must call tlhelpers.record_results once"
    return results[0]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_learns_well_above_chance(notebook: Path, out_dir: Path) -> None:
    result = _results(executed(notebook, out_dir))
    assert result["weights"] == "None", "the tests run with random weights"
    threshold = max(2 * result["chance"], 0.5)
    assert "test_accuracy" in result, f"report the test split once: record_results(test_accuracy=...); got {result}"
    assert result["test_accuracy"] >= threshold, result
    if "val_accuracy" in result:  # optional: the number that chose the model
        assert result["val_accuracy"] >= threshold, result


def test_fine_tuning_shows_what_a_trainable_batchnorm_does(out_dir: Path) -> None:
    """Notebook 05's copy with BatchNormalization trainable: after one epoch its moving means have moved (the
    frozen run's are unchanged, which the notebook asserts), and the moved statistics alone change its validation
    predictions, as its text says."""
    notebook = next(nb for nb in NOTEBOOKS if nb.name.startswith("05_"))
    result = _results(executed(notebook, out_dir))
    assert result["batchnorm_shift"] > 0 and result["batchnorm_effect"] > 0, result
    assert result["batchnorm_change"] > 0, result


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
    assert "the same predictions, to within 1e-6" in text
    top3 = [line for line in text.splitlines() if line.endswith(tuple("0123456789")) and ".png:" in line]
    assert len(top3) == 3, text
    table = "".join(o.get("text", "") for o in _outputs(nb, "classification_table("))
    assert "precision" in table and "recall" in table


def test_terminal_shows_progress_and_no_noise(out_dir: Path) -> None:
    """`make run` prints one line per notebook and real errors; kernel and C++ start-up lines go to the log."""
    for notebook in NOTEBOOKS:
        executed(notebook, out_dir)
    for notebook in NOTEBOOKS:
        terminal = _terminal[notebook]
        assert not NOISE.search(terminal) and not TF_WARNING.search(terminal), terminal[-3000:]
        assert re.search(rf"executed {re.escape(str(notebook))} in \d+ s -> ", terminal), terminal
        assert f"messages go to {_logs[notebook]}" in terminal
        assert f"--- {notebook}" in _logs[notebook].read_text(), "the log names the notebook its lines come from"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_executed_notebook_carries_no_noise_and_no_tensorflow_warning(notebook: Path, out_dir: Path) -> None:
    """No cell output a learner cannot act on: no cuInit line, no C++ log line, no transport warning, and no
    TensorFlow Python warning, such as the retracing warning that several predict() calls in a row give (the
    notebooks call the model directly on a batch in memory). The runner's own scan, which `make run` reports at
    any parameters, reads the executed copy."""
    executed(notebook, out_dir)
    assert not run_notebooks.unwanted_output(out_dir / notebook.name)


def test_all_notebooks_in_a_row_extract_features_once(out_dir: Path) -> None:
    """The feature cache serves every notebook after the first: one cache file per split and size.

    Each extraction with a new key writes a new file (``split-HxW-dtype-key.npz``), so a notebook
    that extracted again instead of reusing the cache would leave a second file for its split.
    """
    for notebook in NOTEBOOKS:
        executed(notebook, out_dir)
    users = [nb for nb in NOTEBOOKS if "cached_features(" in nb.read_text()]
    assert len(users) >= 4, "notebooks 01-04 train on cached features"
    assert cached_splits(out_dir / "feature_cache") == EXPECTED_CACHE_FILES


@pytest.mark.parametrize("notebook", HUB_NOTEBOOKS, ids=[nb.stem for nb in HUB_NOTEBOOKS])
def test_kerashub_notebook_builds_its_default_preset_offline(notebook: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`make run WEIGHTS=none` with notebook 06's own PRESET ("resnet_50_imagenet", a name, not the tests'
    folder) builds the backbone and converter without KerasHub's download from Kaggle: the cells through the
    preprocessing check and the comparison with ResNet50 run with every request failing and an empty
    KerasHub cache, which stays empty. The same kernel then shows that `from_preset` would have failed."""
    cache = offline_kaggle(monkeypatch, tmp_path)
    cache.mkdir()
    nb = with_parameters(load(notebook), **{**TINY_PARAMETERS, "OUTPUT_DIR": str(tmp_path / "outputs")})
    with kernel() as client:  # started here: it inherits the environment above
        run_cells(client, nb, stop=index_of(nb, "applications_base = ") + 1)
        built = "".join(o.get("text", "") for o in nb.cells[index_of(nb, "from_preset(PRESET")].outputs)
        assert "for 'resnet_50_imagenet' (built from the preset's arguments), random weights" in built, built
        assert not any(cache.iterdir()), "KerasHub tried to download the preset into KAGGLEHUB_CACHE"
        with pytest.raises(CellError, match="127.0.0.1"):
            run_code(client, "keras_hub.models.Backbone.from_preset(PRESET, load_weights=False)")


def test_the_book_of_the_executed_notebooks_opens_offline(out_dir: Path) -> None:
    """What `make run` ends with: the book of the executed notebooks (scripts/build_book.py, nothing executed again).

    Every page, opened in Chromium from a local server: every request goes to that server (no font, script, MathJax
    or image from another host), no console error, no request answered with an error, every ``<img>`` loaded, each
    lesson with its figures and the provenance note of a random-weights run; search finds "BatchNormalization".
    """
    from scripts import build_book
    from tests.book_browser import open_every_page
    from tests.test_browser import find_chromium

    for notebook in NOTEBOOKS:
        executed(notebook, out_dir)
    book = out_dir / "book"
    index = build_book.build(out_dir, book, out_dir / "book-src")
    size_mb = sum(p.stat().st_size for p in book.rglob("*") if p.is_file()) / 1e6
    assert size_mb < 50, f"the book is {size_mb:.0f} MB"
    assert index.is_file()
    for notebook in NOTEBOOKS:
        page = (book / "notebooks" / f"{notebook.stem}.html").read_text()
        assert len(re.findall(r'<img[^>]+src="\.\./_images/', page)) >= 1, f"{notebook.name}: no figure"
        assert "How this page was made" in page and "random weights" in page, notebook.name

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium found: install Debian's `chromium` package (.ci/run does) or set CHROMIUM")
    report = open_every_page(book, chromium)
    assert len(report.pages) >= len(NOTEBOOKS) + 4, report.pages
    assert not report.foreign_requests, report.foreign_requests
    assert not report.console_errors, report.console_errors
    assert not report.failed_requests, report.failed_requests
    assert not report.broken_images and report.images >= 2 * len(NOTEBOOKS), (report.images, report.broken_images)
    assert report.search_hits, "search found nothing for BatchNormalization"
