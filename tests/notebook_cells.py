"""Run some cells of a notebook, edited in memory, in one kernel: for tests that need only part of a notebook.

tests/test_notebooks.py runs every notebook whole. Tests that inject a mistake or try an exercise
need only the cells up to the check they are about, often with one line changed; this module gives
them an in-memory copy of the notebook (parameters injected as papermill would, lines replaced) and a
kernel to run its cells in. The notebook files are never written.

    nb = edited(with_parameters(load(path), **params), {"old line": "new line"})
    with kernel() as client:
        run_cells(client, nb, stop=index_of(nb, "model.fit("))
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


class CellError(Exception):
    """A cell raised: which one (index and source), the exception's name and its message."""

    def __init__(self, index: int, source: str, ename: str, evalue: str) -> None:
        super().__init__(f"cell {index} raised {ename}: {evalue}\n--- cell source ---\n{source}")
        self.index, self.source, self.ename, self.evalue = index, source, ename, evalue


def load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def with_parameters(nb: nbformat.NotebookNode, **parameters: object) -> nbformat.NotebookNode:
    """A copy with a cell setting ``parameters`` right after the cell tagged ``parameters`` (as papermill does)."""
    nb = copy.deepcopy(nb)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"expected one cell tagged 'parameters', found {len(tagged)}"
    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(tagged[0] + 1, cell)
    return nb


def edited(nb: nbformat.NotebookNode, replacements: Mapping[str, str]) -> nbformat.NotebookNode:
    """A copy with each ``old`` text replaced by ``new``; each ``old`` must occur exactly once in the code cells."""
    nb = copy.deepcopy(nb)
    for old, new in replacements.items():
        found = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
        count = sum(c.source.count(old) for c in found)
        assert count == 1, f"{old!r} occurs {count} times in the notebook's code; it must occur once"
        found[0].source = found[0].source.replace(old, new)
    return nb


def index_of(nb: nbformat.NotebookNode, text: str) -> int:
    """The index of the one code cell whose source contains ``text``."""
    found = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and text in c.source]
    assert len(found) == 1, f"{text!r} is in {len(found)} code cells; it must be in one"
    return found[0]


@contextmanager
def kernel(cwd: Path = NOTEBOOK_DIR, timeout: int = 900) -> Iterator[NotebookClient]:
    """Start one Python kernel in ``cwd`` (the notebooks' folder, so their relative paths work)."""
    client = NotebookClient(nbformat.v4.new_notebook(), timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    with client.setup_kernel():
        yield client


def run_cells(client: NotebookClient, nb: nbformat.NotebookNode, start: int = 0, stop: int | None = None) -> None:
    """Execute the code cells ``nb.cells[start:stop]`` in order in ``client``'s kernel.

    Raises:
        CellError: naming the first cell that raised, with the exception's name and message.
    """
    client.nb = nb
    for index in range(start, len(nb.cells) if stop is None else stop):
        cell = nb.cells[index]
        if cell.cell_type != "code":
            continue
        try:
            client.execute_cell(cell, index)
        except CellExecutionError as error:
            raise CellError(index, cell.source, error.ename, error.evalue) from None


def run_code(client: NotebookClient, source: str) -> str:
    """Execute ``source`` in ``client``'s kernel, after the cells run so far; return what it printed.

    Raises:
        CellError: If the code raises (index -1: it is no cell of the notebook).
    """
    cell = nbformat.v4.new_code_cell(source)
    client.nb.cells.append(cell)  # nbclient stores the executed cell at its index
    try:
        client.execute_cell(cell, len(client.nb.cells) - 1)
    except CellExecutionError as error:
        raise CellError(-1, source, error.ename, error.evalue) from None
    finally:
        client.nb.cells.pop()
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
