"""Every relative link in README.md and docs/*.md resolves, and the README stays one screen (at most 10 KB).

A link resolves when its file or folder exists and, with a ``#fragment``, when that fragment names a heading
of the target: for a Markdown file (or the same page, ``#x``) the anchor GitHub gives the heading (lower case,
punctuation dropped, spaces to ``-``; the book uses the same, ``book/bookext.py``); for a notebook the anchor
Jupyter gives a heading of a Markdown cell (the heading's text with spaces replaced by ``-``, case and
punctuation kept: ``01_single_dense_head.ipynb#Save,-reload-and-predict``); for another file a line
(``#L12`` or ``#L12-L20``), as GitHub shows source. Links with a scheme (``https:``, ``mailto:``) are not
followed: the tests run without a network. Links in code blocks, code spans and HTML comments are not links.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
README_LIMIT = 10 * 1024  # bytes: "a README in one screen"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[`~]*[ \t]*$", re.M | re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
# [text](target "title") and ![alt](target); the target may be written <in angle brackets>
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+[\"'(][^)]*)?\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.M)
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.M)
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
HTML_ANCHOR = re.compile(r"<a\s[^>]*\b(?:id|name)=[\"']([^\"']+)[\"']", re.I)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
LINE_FRAGMENT = re.compile(r"L(\d+)(?:-L(\d+))?")


def _blank(match: re.Match) -> str:
    """The matched text with everything but its line breaks turned into spaces: offsets and line numbers stay."""
    return re.sub(r"[^\n]", " ", match.group(0))


def without_code(markdown: str) -> str:
    """Markdown with fenced code blocks, HTML comments and code spans blanked out."""
    return CODE_SPAN.sub(_blank, COMMENT.sub(_blank, FENCE.sub(_blank, markdown)))


def heading_text(heading: str) -> str:
    """A heading's text as rendered: code spans, links, emphasis and HTML tags reduced to their text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("`", "")
    text = re.sub(r"(\*\*|__|\*|(?<!\w)_(?=\S)|(?<=\S)_(?!\w))", "", text)
    return text.strip()


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to ``-``."""
    return re.sub(r"[^\w\- ]", "", heading_text(heading).lower()).replace(" ", "-")


def jupyter_anchor(heading: str) -> str:
    """The anchor Jupyter gives a heading in a Markdown cell: its text with spaces to ``-``, nothing else changed."""
    return heading_text(heading).replace(" ", "-")


def markdown_headings(markdown: str) -> list[str]:
    """The headings of a Markdown text (ATX ``#`` and setext underlined), outside code blocks and comments."""
    text = COMMENT.sub(_blank, FENCE.sub(_blank, markdown))
    headings = [match.group(2) for match in ATX_HEADING.finditer(text)]
    lines = text.splitlines()
    for before, line in zip(lines, lines[1:], strict=False):
        if before.strip() and not before.lstrip().startswith(("#", "|", "-", "*", ">")) \
                and SETEXT_UNDERLINE.match(line):
            headings.append(before.strip())
    return headings


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every fragment that lands on a heading (or an HTML anchor) of ``path``, the way its viewer names them."""
    if path.suffix == ".ipynb":
        cells = nbformat.read(path, as_version=4).cells
        return frozenset(jupyter_anchor(h) for cell in cells if cell.cell_type == "markdown"
                         for h in markdown_headings(cell.source))
    text = path.read_text(encoding="utf-8")
    slugs, seen = [], {}
    for heading in markdown_headings(text):
        slug = github_slug(heading)
        seen[slug] = seen.get(slug, -1) + 1
        slugs.append(f"{slug}-{seen[slug]}" if seen[slug] else slug)  # GitHub numbers repeats: x, x-1, x-2
    return frozenset(slugs) | frozenset(HTML_ANCHOR.findall(text))


def links(markdown: str) -> list[tuple[int, str]]:
    """``(line number, target)`` of each inline, image and reference link outside code and comments."""
    text = without_code(markdown)
    found = [(m.start(), m.group(1)) for pattern in (INLINE_LINK, REFERENCE_LINK) for m in pattern.finditer(text)]
    return [(text.count("\n", 0, start) + 1, target.strip("<>")) for start, target in sorted(found)]


def problem(document: Path, target: str) -> str | None:
    """Why ``target``, a link in ``document``, does not resolve; None when it does or is not followed."""
    if SCHEME.match(target):
        return None  # https:, mailto:, ...: no network here
    if target.startswith("/"):
        return "an absolute path: write it relative to this file (GitHub and the book resolve it differently)"
    path_part, _, fragment = target.partition("#")
    path = (document.parent / unquote(path_part)).resolve() if path_part else document
    if not path.exists():
        return f"no such file or folder: {path_part}"
    if not fragment:
        return None
    fragment = unquote(fragment)
    if path.is_dir():
        return "a fragment on a folder"
    if path.suffix in (".md", ".ipynb"):
        if fragment not in anchors(path):
            kind = "Jupyter's anchor" if path.suffix == ".ipynb" else "GitHub's anchor"
            near = sorted(a for a in anchors(path) if a.lower()[:4] == fragment.lower()[:4]) or sorted(anchors(path))
            return f"#{fragment} is not {kind} of a heading of {path.name}; its headings: {near}"
        return None
    lines = LINE_FRAGMENT.fullmatch(fragment)
    if not lines:
        return f"#{fragment}: only #L<line> or #L<line>-L<line> can be checked in {path.name}"
    count = len(path.read_text(encoding="utf-8", errors="replace").splitlines())
    last = int(lines.group(2) or lines.group(1))
    if not 1 <= int(lines.group(1)) <= last <= count:
        return f"#{fragment}: {path.name} has {count} lines"
    return None


def test_the_readme_is_at_most_10_kb() -> None:
    size = README.stat().st_size
    assert size <= README_LIMIT, (f"README.md is {size} bytes, over {README_LIMIT}: move the detail to a page under "
                                  "docs/ and link it")


@pytest.mark.parametrize("document", DOCUMENTS, ids=[d.relative_to(ROOT).as_posix() for d in DOCUMENTS])
def test_every_relative_link_resolves(document: Path) -> None:
    found = links(document.read_text(encoding="utf-8"))
    assert found or document != README, "README.md links nothing?"
    broken = [f"{document.relative_to(ROOT)}:{line}: ({target}): {why}" for line, target in found
              if (why := problem(document, target))]
    assert not broken, "\n".join(broken)


def test_the_readme_links_every_page_under_docs() -> None:
    linked = {(README.parent / target.partition("#")[0]).resolve() for _, target in links(README.read_text())
              if not SCHEME.match(target)}
    unlinked = [d.name for d in DOCUMENTS[1:] if d.resolve() not in linked]
    assert not unlinked, f"README.md links no docs/{unlinked}: add them to its list under 'More'"


def test_anchors_are_named_the_way_github_and_jupyter_name_them(tmp_path: Path) -> None:
    assert github_slug("Set-up: two commands") == "set-up-two-commands"
    assert github_slug("Without `make` (Windows), with pip or with conda") == \
        "without-make-windows-with-pip-or-with-conda"
    assert github_slug("Training on cached features: the benchmark") == "training-on-cached-features-the-benchmark"
    assert jupyter_anchor("Save, reload and predict") == "Save,-reload-and-predict"
    assert jupyter_anchor("Compare with `keras.utils.image_dataset_from_directory`") == \
        "Compare-with-keras.utils.image_dataset_from_directory"
    page = tmp_path / "page.md"
    (tmp_path / "script.py").write_text("one = 1\ntwo = 2\nthree = 3\n")
    page.write_text("# Title\n\n## Part\n\n```bash\n# not a heading\n```\n\n## Part\n\nSetext\n------\n\n"
                    "See [x](#part-1), [y](#not-a-heading), `[z](missing.md)` and <!-- [w](missing.md) -->.\n"
                    "[v](script.py#L2-L3) [u](script.py#L4) [t](https://example.com/missing) [s](missing.md)\n")
    assert anchors(page) == {"title", "part", "part-1", "setext"}
    assert [t for _, t in links(page.read_text())] == [
        "#part-1", "#not-a-heading", "script.py#L2-L3", "script.py#L4", "https://example.com/missing", "missing.md"]
    assert [bool(problem(page, t)) for _, t in links(page.read_text())] == [False, True, False, True, False, True]
