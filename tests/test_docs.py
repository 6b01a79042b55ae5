"""docs/teaching.md stays true to the repository: its links resolve, the sections it names exist."""

from __future__ import annotations

import re

import nbformat

from tests.conftest import NOTEBOOKS, ROOT

GUIDE = ROOT / "docs" / "teaching.md"


def test_the_guide_is_linked_from_the_readme() -> None:
    assert "(docs/teaching.md)" in (ROOT / "README.md").read_text()


def test_every_relative_link_resolves() -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", GUIDE.read_text())
    relative = [link for link in links if "://" not in link]
    assert relative, "the guide links the notebooks"
    missing = [link for link in relative if not (GUIDE.parent / link).resolve().exists()]
    assert not missing, missing


def test_every_section_it_names_exists() -> None:
    """Rows such as `01, "Load the base model"` name a heading of notebook 01 (or of the README)."""
    text = GUIDE.read_text()
    named = re.findall(r"(0\d|README), \"([^\"]+)\"", text)
    assert len(named) >= 8, named  # the mistakes table and the workshop plan name them; links are test_links.py's
    headings = {"README": {line.lstrip("# ").strip() for line in (ROOT / "README.md").read_text().splitlines()
                           if line.startswith("#")}}
    for notebook in NOTEBOOKS:
        cells = nbformat.read(notebook, as_version=4).cells
        headings[notebook.name[:2]] = {line.lstrip("# ").strip() for cell in cells if cell.cell_type == "markdown"
                                       for line in cell.source.splitlines() if line.startswith("#")}
    wrong = [(where, title) for where, title in named if title not in headings[where]]
    assert not wrong, f"the guide names sections that do not exist: {wrong}"
