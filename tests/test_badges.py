"""Every notebook opens in Colab from its badge and follows the same skeleton (see STYLE.md).

The repository's address is written once, in ``pyproject.toml`` under ``[project.urls]``
(``Repository``). Each notebook's "Open in Colab" badge must point at that repository's
``blob/main/notebooks/<the notebook's own file name>``, and its Colab setup cell must clone the
same address. When the repository moves, change ``pyproject.toml`` and these tests name every
notebook that still points at the old place.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.conftest import NOTEBOOKS, ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib

COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE_IMAGE = "https://mybinder.org/badge_logo.svg"
# The H2 sections every notebook has, in this order; content sections go between Parameters and Summary.
FIRST_SECTIONS = ["Overview", "Setup", "Parameters"]
LAST_SECTIONS = ["Summary", "Exercises", "Next steps"]
COLAB_GUARD = '"google.colab" in sys.modules'

ids = [nb.stem for nb in NOTEBOOKS]


def repository_url() -> str:
    """The GitHub address from pyproject.toml's [project.urls] Repository, without a trailing slash."""
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("urls", {})
    url = urls.get("Repository", "")
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+/?", url), (
        "pyproject.toml needs [project.urls] Repository = \"https://github.com/OWNER/NAME\" "
        f"(the one place the notebooks' Colab badges and setup cells are checked against); found {url!r}")
    return url.rstrip("/")


def binder_url(notebook: Path) -> str:
    owner_and_name = repository_url().removeprefix("https://github.com/")
    return f"https://mybinder.org/v2/gh/{owner_and_name}/main?labpath=notebooks%2F{notebook.name}"


def colab_url(notebook: Path) -> str:
    owner_and_name = repository_url().removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_and_name}/blob/main/notebooks/{notebook.name}"


def _without_code_blocks(markdown: str) -> str:
    return re.sub(r"^(```|~~~).*?^\1", "", markdown, flags=re.S | re.M)


def headings(markdown: str, level: int) -> list[str]:
    """The titles of the ATX headings of one level, outside fenced code blocks."""
    pattern = rf"^ {{0,3}}{'#' * level}[ \t]+(.+?)[ \t#]*$"
    return [m.group(1) for m in re.finditer(pattern, _without_code_blocks(markdown), flags=re.M)]


def _read(notebook: Path) -> nbformat.NotebookNode:
    return nbformat.read(notebook, as_version=4)


# (alt text, image, a host that identifies the badge, the address it must open); Binder builds environment.yml.
BADGES = {
    "colab": ("Open In Colab", COLAB_BADGE_IMAGE, "colab.research.google.com", colab_url),
    "binder": ("Binder", BINDER_BADGE_IMAGE, "mybinder.org", binder_url),
}


@pytest.mark.parametrize("kind", BADGES)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_badge_opens_this_notebook(notebook: Path, kind: str) -> None:
    expected_alt, expected_image, host, url = BADGES[kind]
    first = _read(notebook).cells[0]
    assert first.cell_type == "markdown", "the first cell is the title and the badges, in markdown"
    badges = re.findall(r"\[!\[([^\]]*)\]\(([^)\s]+)\)\]\(([^)\s]+)\)", first.source)
    found = [(alt, image, link) for alt, image, link in badges if host in link + image]
    assert len(found) == 1, f"exactly one {expected_alt} badge in the first cell, found {found}"
    alt, image, link = found[0]
    assert alt == expected_alt and image == expected_image, found[0]
    assert link == url(notebook), f"the badge opens {link}, not this notebook ({url(notebook)})"
    assert (ROOT / "environment.yml").is_file(), "Binder builds environment.yml"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_notebook_follows_the_skeleton(notebook: Path) -> None:
    cells = _read(notebook).cells
    h1 = [(i, title) for i, cell in enumerate(cells) if cell.cell_type == "markdown"
          for title in headings(cell.source, 1)]
    assert len(h1) == 1 and h1[0][0] == 0, f"exactly one '# ' title, in the first cell; found {h1}"

    # (cell index, title) of every '## ' heading, and where the parameters cell sits among them.
    h2 = [(i, title) for i, cell in enumerate(cells) if cell.cell_type == "markdown"
          for title in headings(cell.source, 2)]
    titles = [title for _, title in h2]
    assert titles[:3] == FIRST_SECTIONS, f"the first '## ' sections must be {FIRST_SECTIONS}, found {titles}"
    assert titles[-3:] == LAST_SECTIONS, f"the last '## ' sections must be {LAST_SECTIONS}, found {titles}"
    for title in FIRST_SECTIONS + LAST_SECTIONS:
        assert titles.count(title) == 1, f"'## {title}' appears {titles.count(title)} times"

    tagged = [i for i, cell in enumerate(cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"exactly one cell tagged 'parameters', found cells {tagged}"
    section = [title for i, title in h2 if i < tagged[0]][-1:]
    assert section == ["Parameters"], f"the parameters cell must sit under '## Parameters', not {section}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_links_to_other_notebooks_resolve(notebook: Path) -> None:
    markdown = "\n".join(cell.source for cell in _read(notebook).cells if cell.cell_type == "markdown")
    for target in re.findall(r"\]\(([^)\s#]+\.ipynb)(?:#[^)]*)?\)", markdown):
        if "://" not in target:
            assert (notebook.parent / target).exists(), f"{notebook.name} links to {target}, which does not exist"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_colab_setup_cell_comes_first_and_clones_this_repository(notebook: Path) -> None:
    cells = _read(notebook).cells
    code = [i for i, cell in enumerate(cells) if cell.cell_type == "code"]
    assert code, "no code cells"
    source = cells[code[0]].source
    assert COLAB_GUARD in source, f"the first code cell must be the Colab set-up, guarded by `if {COLAB_GUARD}:`"
    assert f'REPO = "{repository_url()}"' in source, f"the Colab set-up must clone {repository_url()}"
    setup = [i for i, cell in enumerate(cells) if cell.cell_type == "markdown" and "Setup" in headings(cell.source, 2)]
    assert setup and setup[0] < code[0], "the Colab set-up cell belongs to '## Setup'"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_colab_setup_cell_does_nothing_outside_colab(notebook: Path, tmp_path: Path) -> None:
    cells = _read(notebook).cells
    source = next(cell.source for cell in cells if cell.cell_type == "code")
    assert COLAB_GUARD in source
    # Should the guard ever fail, the cell must not clone, install or move: refuse all three.
    refuse = ("import os, subprocess\n"
              "def _refuse(*args, **kwargs):\n"
              "    raise SystemExit(f'outside Colab the set-up cell tried to run {args}')\n"
              "subprocess.run = subprocess.call = subprocess.check_call = subprocess.Popen = _refuse\n"
              "os.system = os.chdir = _refuse\n")
    check = refuse + source + "\nprint(os.getcwd())\n"
    done = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [str(tmp_path)], "outside Colab the cell must print nothing and stay put"
    assert not any(tmp_path.iterdir()), "outside Colab the cell must not write files"
