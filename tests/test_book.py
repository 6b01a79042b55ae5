"""The book (scripts/build_book.py, book/): what it is built from, the tested marks, the claims page, the buttons.

Built once here from the stored notebooks, as if they had been executed (they carry no outputs), with a run
record written by the runner's own :func:`record_run`: no notebook runs, so these tests stay in
``make test-fast``. The book of really executed notebooks, with its figures, is built and opened page by page in
Chromium in ``tests/test_notebooks.py`` (``test_the_book_of_the_executed_notebooks_opens_offline``).
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from scripts import build_book, run_notebooks
from tests.conftest import NOTEBOOKS, ROOT
from tests.test_badges import repository_url
from tests.test_claims import MARKER

DOCS = sorted((ROOT / "docs").glob("*.md"))
MARK_HREF = re.compile(r'href="(?:\.\./)*claims\.html#(claim-[a-z0-9-]+)"')


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The book of the stored notebooks, 01 recorded as run with random weights, 02 with ImageNet weights."""
    root = tmp_path_factory.mktemp("book")
    executed = root / "executed"
    executed.mkdir()
    for notebook in NOTEBOOKS:
        shutil.copy(notebook, executed / notebook.name)
    about = run_notebooks.machine()
    run_notebooks.record_run(executed, NOTEBOOKS[0], 61.0, {"WEIGHTS": None, "EPOCHS": 20}, about)
    run_notebooks.record_run(executed, NOTEBOOKS[1], 42.0, {"WEIGHTS": "imagenet"}, about)
    index = build_book.build(executed, root / "book", root / "src")
    assert index == root / "book" / "index.html" and index.is_file()
    return root / "book"


def _page(book: Path, source: Path) -> str:
    return (book / source.parent.name / f"{source.stem}.html").read_text()


def _markers(source: Path) -> Counter:
    if source.suffix == ".ipynb":
        text = "\n".join(c.source for c in nbformat.read(source, as_version=4).cells if c.cell_type == "markdown")
    else:
        text = source.read_text()
    return Counter(MARKER.findall(text))


def test_without_executed_notebooks_it_says_to_run_make_run(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no executed notebooks .*run `make run` first"):
        build_book.stage(tmp_path, tmp_path / "src")
    for notebook in NOTEBOOKS[:-1]:
        shutil.copy(notebook, tmp_path / notebook.name)
    with pytest.raises(SystemExit, match=rf"lacks the executed {NOTEBOOKS[-1].name}: run `make run`"):
        build_book.stage(tmp_path, tmp_path / "src")


@pytest.mark.parametrize("source", NOTEBOOKS + DOCS, ids=[p.name for p in NOTEBOOKS + DOCS])
def test_every_claim_marker_shows_a_tested_mark(book: Path, source: Path) -> None:
    """Each marker in a lesson or guide is a visible mark on its page, linking to that claim's entry."""
    marks = Counter(m.removeprefix("claim-") for m in MARK_HREF.findall(_page(book, source)))
    assert marks == _markers(source), f"{source.name}: markers and marks differ"
    assert "&lt;!-- claim" not in _page(book, source)


def test_the_lessons_carry_at_least_30_marks_and_each_resolves(book: Path) -> None:
    claims = (book / "claims.html").read_text()
    marks = [m for notebook in NOTEBOOKS for m in MARK_HREF.findall(_page(book, notebook))]
    assert len(marks) >= 30, len(marks)
    for anchor in set(marks):
        assert f'id="{anchor}"' in claims, f"{anchor} has no entry on the claims page"


def test_the_claims_page_names_each_sentence_its_test_and_where_the_source_is(book: Path) -> None:
    claims = (book / "claims.html").read_text()
    tests = build_book.claim_tests()
    ids = {i for source in NOTEBOOKS + DOCS for i in _markers(source)}
    repository = repository_url()
    for claim_id in ids:
        path, function, line = tests[claim_id]
        entry = claims.split(f'id="claim-{claim_id}"', 1)[1].split('<section id="claim-', 1)[0]
        assert f"{repository}/blob/main/{path}#L{line}" in entry, claim_id
        assert re.search(r"::(test_\w+)", entry).group(1) == function, claim_id
        assert (ROOT / path).read_text().splitlines()[line - 1].startswith(f"def {function}("), (claim_id, line)
        assert "<blockquote>" in entry, f"{claim_id}: no sentence quoted"
    # One sentence, checked word for word: the one before 01's softmax-from-logits marker.
    assert "only earns a warning" in claims or "from_logits" in claims


def test_sentence_before_takes_the_last_sentence_of_the_paragraph() -> None:
    text = "First part.\n\nOne sentence here. With a softmax output, `from_logits=True` only warns."
    assert build_book.sentence_before(text) == "With a softmax output, `from_logits=True` only warns."
    claims = build_book.claims_in("# T\n\n## Part\n\nA [link](x.ipynb) says so. <!-- claim: a-b -->", "p", "T")
    assert [(c.id, c.sentence, c.section) for c in claims] == [("a-b", "A link says so.", "Part")]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_lesson_pages_load_nothing_from_other_hosts(book: Path, notebook: Path) -> None:
    page = _page(book, notebook)
    remote = re.findall(r'<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)="((?:https?:)?//[^"]+)"', page)
    assert not remote, remote
    assert "colab-badge.svg" not in page and "badge_logo.svg" not in page


def test_each_lesson_says_how_it_was_made_and_random_weights_are_flagged(book: Path) -> None:
    first, second = _page(book, NOTEBOOKS[0]), _page(book, NOTEBOOKS[1])
    assert "How this page was made" in first and "random weights" in first
    assert "say nothing about ImageNet features" in first and 'class="warning admonition"' in first
    assert "ImageNet weights" in second and "say nothing about ImageNet" not in second
    for page in (first, second):
        assert re.search(r"TensorFlow \d+\.\d+", page) and re.search(r"Keras \d+\.\d+", page)
        assert re.search(r"Executed on \d{4}-\d\d-\d\d in \d+ s", page) and " cores" in page
    assert "recorded no provenance" in _page(book, NOTEBOOKS[2])  # not in the record: said, not invented


def test_launch_source_and_repository_buttons_follow_the_repository_setting(book: Path) -> None:
    owner_and_name = repository_url().removeprefix("https://github.com/")
    page = _page(book, NOTEBOOKS[0])
    name = NOTEBOOKS[0].name
    assert f"https://colab.research.google.com/github/{owner_and_name}/blob/main/notebooks/{name}" in page
    assert f"https://mybinder.org/v2/gh/{owner_and_name}/main?urlpath=lab/tree/notebooks/{name}" in page
    assert f'href="{repository_url()}"' in page
    assert f"{repository_url()}/blob/main/notebooks/{name}" in page
    assert "github.com" not in (ROOT / "book" / "conf.py").read_text(), "conf.py reads the address from pyproject"


def test_every_colab_and_binder_link_follows_the_repository_setting() -> None:
    """README, docs, notebooks and the book's sources open this repository, the one in pyproject.toml."""
    owner_and_name = repository_url().removeprefix("https://github.com/")
    files = [ROOT / "README.md", *DOCS, *NOTEBOOKS, *sorted((ROOT / "book").glob("*.md"))]
    pattern = re.compile(r"(?:colab\.research\.google\.com/github|mybinder\.org/v2/gh)/([\w.-]+/[\w.-]+)")
    found = [(f.name, m) for f in files for m in pattern.findall(f.read_text())]
    assert found, "no Colab or Binder link found"
    assert all(m == owner_and_name for _, m in found), [x for x in found if x[1] != owner_and_name]


def test_package_source_links_and_the_api_reference(book: Path) -> None:
    api = (book / "api.html").read_text()
    for module in sorted(p.stem for p in (ROOT / "tlhelpers").glob("*.py") if p.stem != "__init__"):
        assert f'id="tlhelpers{module}"' in api, module
        assert (book / "_modules" / "tlhelpers" / f"{module}.html").is_file(), module
    # was ../tlhelpers/model.py; Sphinx names the section by its first id
    assert re.search(r'href="\.\./api\.html#tlhelpers-?model"', _page(book, NOTEBOOKS[1]))
    assert "build_base_model" in api and "Args" not in api.split("build_base_model", 1)[1][:200]


def test_heading_links_between_lessons_resolve(book: Path) -> None:
    """A Jupyter-style link to another notebook's heading lands on that heading's anchor in the book."""
    from bookext import from_jupyter, github_slug  # scripts/build_book.py put book/ on sys.path

    assert from_jupyter("Save,-reload-and-predict") == github_slug("Save, reload and predict") == \
        "save-reload-and-predict"
    assert 'id="save-reload-and-predict"' in _page(book, NOTEBOOKS[0])
    for notebook in NOTEBOOKS:  # Sphinx fails on a missing anchor; this checks what the pages hold
        for target, anchor in re.findall(r'href="(\w+)\.html#([^"]+)"', _page(book, notebook)):
            if (book / "notebooks" / f"{target}.html").exists():
                assert f'id="{anchor}"' in (book / "notebooks" / f"{target}.html").read_text(), (notebook, anchor)


def test_the_landing_page_lists_the_lessons_with_their_run_times_and_the_two_commands(book: Path) -> None:
    index = (book / "index.html").read_text()
    positions = [index.find(f'href="notebooks/{nb.stem}.html"') for nb in NOTEBOOKS]
    assert -1 not in positions and positions == sorted(positions), positions
    assert "61 s" in index and "42 s" in index and "not recorded" in index
    text = re.sub(r"<[^>]+>", "", index)
    assert "make run" in text and "make test" in text
    for page in ("claims.html", "api.html", "docs/teaching.html"):
        assert f'href="{page}' in index, page


def _recipe(makefile: str, target: str) -> list[str]:
    block = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, flags=re.M)
    assert block, f"no `{target}` target in the Makefile"
    return [line.strip() for line in block.group(1).splitlines()]


def test_make_run_ends_by_building_the_book_and_make_book_builds_it_alone() -> None:
    makefile = (ROOT / "Makefile").read_text()
    run = _recipe(makefile, "run")
    assert "scripts/run_notebooks.py" in run[0] and run[-1].endswith("python scripts/build_book.py"), run
    assert _recipe(makefile, "book") == [run[-1]]
    readme = (ROOT / "README.md").read_text()
    assert "build/book/index.html" in readme and "make book" in readme


def test_links_to_files_outside_the_book_go_to_the_repository() -> None:
    repository = repository_url()
    text = ("[a](../README.md) [b](../scripts/doctor.py#L3) [c](../notebooks/01_single_dense_head.ipynb#Add-the-head) "
            "[d](../tlhelpers/heads.py) [e](https://keras.io/) [f](#Local) [g](../no/such/file.md) [h](../data)")
    assert build_book.with_marks("[x](#Save,-reload-and-predict)", "notebooks") == "[x](#save-reload-and-predict)"
    assert build_book.with_marks(text, "docs") == (
        f"[a]({repository}/blob/main/README.md) [b]({repository}/blob/main/scripts/doctor.py#L3) "
        "[c](../notebooks/01_single_dense_head.ipynb#add-the-head) [d](../api.md#tlhelpersheads) "
        f"[e](https://keras.io/) [f](#Local) [g](../no/such/file.md) [h]({repository}/tree/main/data)")
