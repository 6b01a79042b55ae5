"""The stored notebooks' structure: clean, one parameters cell, one skeleton (no execution)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tests.conftest import NOTEBOOKS, ROOT

ids = [nb.stem for nb in NOTEBOOKS]
HEAD_NOTEBOOKS = [nb for nb in NOTEBOOKS if nb.name[:2] in {"01", "02", "03"}]


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


def test_fine_tuning_comes_in_a_learners_order() -> None:
    """Notebook 05: after the data, the trained head; devices and strategies only after fine-tuning."""
    from tests.test_badges import headings

    notebook = ROOT / "notebooks" / "05_fine_tuning.ipynb"
    titles = [title for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "markdown"
              for title in headings(cell.source, 2)]
    assert titles[titles.index("Load the data") + 1] == "Start from a trained head", titles
    assert titles.index("Scale past one device") > titles.index("Fine-tune on augmented images"), titles
    assert not any("device" in title.lower() for title in titles[:titles.index("Fine-tune on augmented images")])


ANY_WEIGHTS, IMAGENET_WEIGHTS = "*Any weights.*", "*Needs ImageNet weights.*"
# An exercise that asks for a count or a shape: a notebook has at most one (the others change code and predict
# the effect, use your own folder, or break something on purpose).
COUNT_OR_SHAPE = re.compile(r"parameter count|number of trainable parameters|shape of the feature map|"
                            r"size of the feature grid", re.IGNORECASE)


def _exercises(notebook: Path) -> list[str]:
    """Each exercise's statement: the numbered item's text before its solution."""
    cell = next(c for c in nbformat.read(notebook, as_version=4).cells if c.source.startswith("## Exercises"))
    return [" ".join(text.split()) for text in re.findall(r"^\d+\. (.*?)<details>", cell.source, flags=re.M | re.S)]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_exercises_say_which_weights_and_ask_for_one_count_at_most(notebook: Path) -> None:
    exercises = _exercises(notebook)
    assert len(exercises) >= 2, exercises
    for text in exercises:
        assert (text.endswith(ANY_WEIGHTS)) != (text.endswith(IMAGENET_WEIGHTS)), \
            f"end each exercise with {ANY_WEIGHTS} or {IMAGENET_WEIGHTS}: {text}"
        if "imagenet" in text.lower().replace(IMAGENET_WEIGHTS.lower(), ""):
            assert text.endswith(IMAGENET_WEIGHTS), f"asks for ImageNet weights: {text}"
    counts = [text for text in exercises if COUNT_OR_SHAPE.search(text)]
    assert len(counts) <= 1, f"{len(counts)} exercises ask for a count or a shape: {counts}"
