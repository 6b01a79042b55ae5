"""The stored notebooks' structure: clean, one parameters cell, one skeleton (no execution)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.conftest import NOTEBOOKS

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
