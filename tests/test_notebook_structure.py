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


# What notebook 01 teaches in three sections, 02 and 03 recap in one: the data, the base, the freeze.
RECAP = ["## Load the data", "## Load the base model", "## Freeze the base model"]
RECAP_IN_ONE = "## Load the data and the frozen base model"


def test_head_notebooks_share_one_skeleton() -> None:
    """Notebooks 01-03 differ in their head, not in their structure: a diff shows the head."""
    assert len(HEAD_NOTEBOOKS) == 3
    first = _headings(HEAD_NOTEBOOKS[0])
    assert first[:3] == ["## Overview", "## Setup", "## Parameters"]
    assert first[-3:] == ["## Summary", "## Exercises", "## Next steps"]
    start = first.index(RECAP[0])
    assert first[start:start + 3] == RECAP, first
    recapped = [*first[:start], RECAP_IN_ONE, *first[start + 3:]]
    for notebook in HEAD_NOTEBOOKS[1:]:
        assert _headings(notebook) == recapped, notebook.name
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


# "A lesson in one sitting": notebook 01 is the core path; 02 and 03 recap it briefly and stay about their head.
MAX_CELLS, MAX_WORDS_01, MAX_RECAP_CELLS = 32, 2200, 4


def _markdown_words(nb: nbformat.NotebookNode) -> int:
    return sum(len(c.source.split()) for c in nb.cells if c.cell_type == "markdown")


def test_notebook_01_is_one_sitting_long() -> None:
    nb = nbformat.read(HEAD_NOTEBOOKS[0], as_version=4)
    assert len(nb.cells) <= MAX_CELLS, f"notebook 01 has {len(nb.cells)} cells; the core path fits in {MAX_CELLS}"
    words = _markdown_words(nb)
    assert words <= MAX_WORDS_01, f"notebook 01 has {words} Markdown words; the core path fits in {MAX_WORDS_01}"


def _recap_cells(nb: nbformat.NotebookNode) -> list[int]:
    """The cells that repeat notebook 01: from after the parameters cell to the head, and the labels-and-loss
    section (its Markdown and the code cell after it)."""
    cells = nb.cells
    tagged = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    head = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## Add the head" in c.source)
    loss = next(i for i, c in enumerate(cells) if c.cell_type == "markdown"
                and "## Choose labels and loss that match" in c.source)
    return [*range(tagged + 1, head), loss, loss + 1]


@pytest.mark.parametrize("notebook", HEAD_NOTEBOOKS[1:], ids=[nb.stem for nb in HEAD_NOTEBOOKS[1:]])
def test_head_notebooks_stay_about_their_head(notebook: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    assert len(nb.cells) <= MAX_CELLS, f"{notebook.name} has {len(nb.cells)} cells, more than {MAX_CELLS}"
    recap = _recap_cells(nb)
    assert len(recap) <= MAX_RECAP_CELLS, f"{notebook.name} recaps notebook 01 in {len(recap)} cells: {recap}"
    assert nb.cells[recap[-1]].cell_type == "code" and "loss = " in nb.cells[recap[-1]].source


def test_what_left_notebook_01_is_reachable_from_its_next_steps() -> None:
    """The image_dataset_from_directory comparison and the shortcut check went to docs/own-images.md, training on
    cached features to notebook 04, the proof that Grad-CAM is CAM to notebook 03: 01's Next steps links each."""
    nb = nbformat.read(HEAD_NOTEBOOKS[0], as_version=4)
    next_steps = next(c.source for c in nb.cells if c.source.startswith("## Next steps"))
    notebooks = ROOT / "notebooks"
    moved = {  # link in Next steps -> (file, text that must be there)
        "../docs/own-images.md": (ROOT / "docs" / "own-images.md", ("image_dataset_from_directory(",
                                                                     "colour_accuracy = ")),
        "04_compare_heads.ipynb#Extract-the-features-once": (notebooks / "04_compare_heads.ipynb",
                                                             ("## Extract the features once", "augment_copies=")),
        "03_conv1x1_head.ipynb#See-where-the-model-looks:-Grad-CAM": (notebooks / "03_conv1x1_head.ipynb",
                                                                        ("CAM", "Grad-CAM")),
    }
    for link, (path, texts) in moved.items():
        assert f"]({link})" in next_steps, f"notebook 01's Next steps does not link {link}"
        text = path.read_text()
        for needed in texts:
            assert needed in text, f"{path.name} lacks {needed!r}"
    source = "\n".join(c.source for c in nb.cells)
    for gone in ("image_dataset_from_directory(", "cached_features(", "mean_colours("):
        assert gone not in source, f"{gone} is back in notebook 01: it moved out (see its Next steps)"
