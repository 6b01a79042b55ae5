"""Build the book: the executed lessons, docs/, the claims and the API reference as static HTML (``make book``).

Usage, from the repository root (``make run`` ends with it)::

    python scripts/build_book.py                       # build/notebooks/ -> build/book/
    python scripts/build_book.py --executed DIR --out DIR

Nothing is executed: the pages show the outputs that ``make run`` stored in ``build/notebooks/``, with the
time, weights, versions and machine it recorded in ``build/notebooks/run.json``. The sources are staged in
``build/book-src/`` (``book/`` + the executed notebooks + ``docs/`` + generated pages), where:

- the launch badges of each notebook's first cell are dropped (the theme's launch buttons replace them, and
  their images would be loaded from other hosts);
- each claim marker ``<!-- claim: ID -->`` becomes a "tested" mark linking to ID's entry on the claims page,
  which names the sentence, the test that proves it and where its source is;
- links to the package's source (``../tlhelpers/model.py``) point at the API reference, whose ``[source]``
  links show the code, and links to other files of the repository (``../README.md``) at the code host;
- the notebooks' machine-readable results (``application/vnd.tlhelpers.results+json``) are dropped; their
  text/plain twin stays.

Sphinx runs with warnings as errors, so a link to a missing page or heading fails the build. Every page opens
offline: no script, font, style or image comes from another host (``tests/test_book.py`` checks in Chromium).
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the API reference imports tlhelpers, hence TensorFlow
ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
sys.path.insert(0, str(BOOK))
from bookext import from_jupyter, github_slug  # noqa: E402  (the book's heading anchors)

RESULTS_MIME = "application/vnd.tlhelpers.results+json"  # tlhelpers.runtime.RESULTS_MIME (no TensorFlow here)
MARKER = re.compile(r"[ \t]*<!--\s*claim:[ \t]*([a-z0-9]+(?:-[a-z0-9]+)*)[ \t]*-->")
BADGE = re.compile(r"^\s*\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)(\s*\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\))*\s*$", re.M)
CLAIMS_TEST_FILE = "tests/test_claims.py"
MARK_TEXT = "✓ tested"


def repository_url(root: Path = ROOT) -> str:
    """The repository's address: ``[project.urls] Repository`` in pyproject.toml, the one place it is written."""
    import tomllib

    return tomllib.loads((root / "pyproject.toml").read_text())["project"]["urls"]["Repository"].rstrip("/")


def label(claim_id: str) -> str:
    """The claims page's anchor for one claim."""
    return f"claim-{claim_id}"


def mark(claim_id: str) -> str:
    """The "tested" mark that replaces a claim marker: a MyST reference to the claim's entry."""
    return f" {{ref}}`{MARK_TEXT} <{label(claim_id)}>`"


@dataclass
class Claim:
    """One claim marker: its id, the sentence it follows, and the page and section it sits in."""

    id: str
    sentence: str
    page: str  # the staged file, e.g. notebooks/01_single_dense_head.ipynb
    title: str  # that page's title
    section: str  # the heading above the sentence


def _plain(markdown: str) -> str:
    """Markdown reduced to readable text: links to their text, emphasis and heading marks off, one line."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", markdown)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"^\s*(?:[#>]+|[-*]|\d+\.)\s+", "", text, flags=re.M)
    text = re.sub(r"(\*\*|__|(?<!\w)[*_](?!\s))", "", text)
    return re.sub(r"\s+", " ", text).strip()


def sentence_before(text: str) -> str:
    """The sentence a marker follows: the last sentence of the paragraph (or list item) that ends at it."""
    paragraph = re.split(r"\n\s*\n|\n\s*(?:[-*]|\d+\.)\s+|\n(?=\|)", text)[-1]
    plain = _plain(paragraph).strip("| ").replace(" | ", " — ")  # a table row's cells, one after the other
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z`(\"*])", plain)
    return parts[-1] if parts else plain


def claims_in(markdown: str, page: str, title: str) -> list[Claim]:
    """Every claim marker in one page's Markdown, in order, with the sentence before it."""
    found = []
    section = title
    position = 0
    for match in re.finditer(rf"{MARKER.pattern}|^#+\s+(.+)$", markdown, flags=re.M):
        if match.group(2):
            section = match.group(2).strip()
            position = match.end()
            continue
        # From the section's start, so a second marker in one sentence still quotes the whole sentence.
        found.append(Claim(match.group(1), sentence_before(markdown[position:match.start()]), page, title, section))
    return found


def claim_tests(root: Path = ROOT) -> dict[str, tuple[str, str, int]]:
    """Each claim id with the file, name and line of the test that proves it (read from the source, not imported)."""
    tree = ast.parse((root / CLAIMS_TEST_FILE).read_text())
    names: dict[str, object] = {}
    tests = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            tests[node.name] = (CLAIMS_TEST_FILE, node.name, node.lineno)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                names[node.targets[0].id] = _literal(node.value, names)
            except ValueError:
                pass
    found = {}
    for claim_id, where in dict(names.get("TESTED_ELSEWHERE", {})).items():
        module, function = where.split("::")
        path = module.replace(".", "/") + ".py"
        found[claim_id] = (path, function, _line_of(root / path, function))
    for name, where in tests.items():
        found.setdefault(name.removeprefix("test_").replace("_", "-"), where)
    return found


def _literal(node: ast.AST, names: dict[str, object]) -> object:
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.Dict):
        return {_literal(k, names): _literal(v, names) for k, v in zip(node.keys, node.values, strict=True)}
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError) as error:
        raise ValueError("not a literal") from error


def _line_of(path: Path, function: str) -> int:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return node.lineno
    raise SystemExit(f"build_book: {path} has no test {function}")


LINK = re.compile(r"(\]\()([^)\s#]*)(?:#([^)\s]*))?(\))")


def _link_target(target: str, fragment: str | None, folder: str, root: Path, repository: str) -> str:
    """Where a relative link ``target#fragment`` of a page in ``folder`` (``notebooks`` or ``docs``) points in the
    book.

    Lessons and docs pages stay as they are (Sphinx checks them), a link to a notebook's heading with the book's
    anchor for it; the package's modules go to the API reference; any other file of the repository (README.md,
    scripts/, data/README.md) to its page on the code host.
    """
    tail = f"#{fragment}" if fragment is not None else ""
    if not target:  # a heading of the same page
        return f"#{from_jupyter(fragment)}" if folder == "notebooks" and fragment else tail
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
        return target + tail
    path = (root / folder / target).resolve()
    try:
        relative = path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return target + tail
    if re.fullmatch(r"notebooks/[^/]+\.ipynb|docs/[^/]+\.md", relative):
        if fragment and relative.endswith(".ipynb"):
            return f"{target}#{from_jupyter(fragment)}"  # Jupyter's anchor as the book's
        return target + (f"#{fragment}" if fragment else "")
    if module := re.fullmatch(r"tlhelpers/(\w+)\.py", relative):
        return f"../api.md#tlhelpers{module.group(1)}"  # the heading "tlhelpers.NAME"
    if path.exists():
        return f"{repository}/{'tree' if path.is_dir() else 'blob'}/main/{relative}{tail}"
    return target + tail  # missing: Sphinx's warning, an error here, names it


def with_marks(markdown: str, folder: str = "notebooks", root: Path = ROOT, repository: str | None = None) -> str:
    """Markdown with every claim marker replaced by its "tested" mark and its relative links pointed at what the
    book holds: lessons and docs as they are, the package's source at the API reference, other files at the
    repository (:func:`_link_target`)."""
    markdown = MARKER.sub(lambda m: mark(m.group(1)), markdown)
    repository = repository or repository_url(root)
    return LINK.sub(lambda m: m.group(1) + _link_target(m.group(2), m.group(3), folder, root, repository)
                    + m.group(4), markdown)


def _title(markdown: str) -> str:
    match = re.search(r"^#\s+(.+)$", markdown, flags=re.M)
    return match.group(1).strip() if match else ""


def provenance(entry: dict | None) -> str:
    """The Markdown note on a lesson page: where, when, with what and with which weights it was executed."""
    if not entry:
        return ("```{admonition} How this page was made\n:class: note\n\nThis page shows the outputs of an earlier "
                "run that recorded no provenance (no `run.json`): run `make run` to execute the lessons again.\n```\n")
    about = entry.get("machine", {})
    versions = about.get("versions", {})
    gpus = about.get("gpus") or []
    device = f"{len(gpus)} GPU(s) ({', '.join(gpus)})" if gpus else "the CPU (no GPU visible to TensorFlow)"
    weights = entry.get("weights")
    weights_text = {"random": "**random weights** (`WEIGHTS = None`)",
                    "imagenet": "ImageNet weights"}.get(weights, f"the weights file `{Path(str(weights)).name}`")
    parameters = ", ".join(f"`{k} = {v!r}`" for k, v in entry.get("parameters", {}).items() if k != "OUTPUT_DIR")
    lines = [
        f"Executed on {entry.get('finished', '?')[:10]} in {entry.get('seconds', 0):.0f} s, with {weights_text}, "
        f"on {device}: {about.get('cpu', '?')}, {about.get('cores', '?')} cores, {about.get('system', '?')}; "
        f"TensorFlow {versions.get('tensorflow', '?')}, Keras {versions.get('keras', '?')}, "
        f"Python {versions.get('python', '?')}." + (f" Parameters: {parameters}." if parameters else ""),
    ]
    if weights == "random":
        kind = "warning"
        lines.append("\nWith random weights the numbers on this page say nothing about ImageNet features or about "
                     "transfer learning: they show that the code runs. Run `make run` online (or with the weights "
                     "file) to see what pre-trained features do.")
    else:
        kind = "note"
    return f"```{{admonition}} How this page was made\n:class: {kind}\n\n" + "\n".join(lines) + "\n```\n"


def stage_notebook(executed: Path, target: Path, entry: dict | None, repository: str | None = None) -> str:
    """Write the book's copy of one executed notebook to ``target``; return its title."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    title = ""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            if index == 0:
                cell.source = BADGE.sub("", cell.source)
                title = _title(cell.source)
            cell.source = with_marks(cell.source, repository=repository)
        for output in cell.get("outputs", []):
            output.get("data", {}).pop(RESULTS_MIME, None)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(provenance(entry)))
    nbformat.write(nb, target)
    return title


def claims_page(claims: list[Claim], tests: dict[str, tuple[str, str, int]], repository: str) -> str:
    """The claims page: one entry per claim id, with its sentences, the test's name and where its source is."""
    by_id: dict[str, list[Claim]] = {}
    for claim in claims:
        by_id.setdefault(claim.id, []).append(claim)
    lines = [
        "# Tested claims", "",
        "Each sentence in the lessons and guides that is marked as a claim about how Keras, TensorFlow or ResNet50 "
        f"behaves carries a *{MARK_TEXT}* mark that leads here. Each claim has a test in this repository that "
        "shows that behaviour, usually on a small model, runs in `make test`, and fails when an upgrade makes the "
        "sentence false. "
        f"{len(by_id)} claims, marked {len(claims)} times.", "",
    ]
    for claim_id in sorted(by_id):
        if claim_id not in tests:
            raise SystemExit(f"build_book: claim {claim_id!r} has no test in {CLAIMS_TEST_FILE}")
        path, function, line = tests[claim_id]
        lines += [f"({label(claim_id)})=", f"## {claim_id}", ""]
        for claim in by_id[claim_id]:
            anchor = github_slug(_plain(claim.section).replace("`", ""))
            lines.append(f"> {claim.sentence}\n>\n> — [{claim.title}, *{_plain(claim.section)}*]"
                         f"({claim.page}#{anchor})\n")
        lines += [f"Test: `{path}::{function}`, line {line} "
                  f"([source]({repository}/blob/main/{path}#L{line})).", ""]
    return "\n".join(lines)


def api_page(root: Path = ROOT) -> str:
    """The API reference: one section per module of ``tlhelpers``, from the docstrings."""
    modules = sorted(p.stem for p in (root / "tlhelpers").glob("*.py") if p.stem != "__init__")
    lines = ["# API reference: `tlhelpers`", "",
             "What the notebooks import, from the package's docstrings. The `[source]` links show the code.", ""]
    for module in modules:
        lines += [f"## tlhelpers.{module}", "", "```{eval-rst}", f".. automodule:: tlhelpers.{module}",
                  "   :members:", "```", ""]
    return "\n".join(lines)


def index_page(lessons: list[tuple[str, str, dict | None]], docs: list[tuple[str, str]]) -> str:
    """The landing page: what you will learn, the lessons in order with their run times, the two commands."""
    template = (BOOK / "index.md").read_text()
    rows = ["| Lesson | Run time here | Weights |", "|---|---|---|"]
    for stem, title, entry in lessons:
        seconds = f"{entry['seconds']:.0f} s" if entry else "not recorded"
        weights = entry.get("weights", "?") if entry else "?"
        rows.append(f"| [{title}](notebooks/{stem}.ipynb) | {seconds} | {weights} |")
    toctree = ["```{toctree}", ":maxdepth: 1", ":caption: Lessons", ":hidden:", "",
               *[f"notebooks/{stem}" for stem, _, _ in lessons], "```", "",
               "```{toctree}", ":maxdepth: 1", ":caption: Guides and reference", ":hidden:", "",
               *[f"docs/{stem}" for stem, _ in docs], "claims", "api", "```"]
    return template.replace("{{ lessons }}", "\n".join(rows)).rstrip() + "\n\n" + "\n".join(toctree) + "\n"


def stage(executed_dir: Path, stage_dir: Path, root: Path = ROOT) -> list[Claim]:
    """Put every source of the book into ``stage_dir``; return the claims found."""
    import nbformat

    executed = sorted(executed_dir.glob("*.ipynb"))
    expected = sorted(p.name for p in (root / "notebooks").glob("*.ipynb"))
    missing = [name for name in expected if not (executed_dir / name).exists()]
    if not executed:
        raise SystemExit(f"build_book: no executed notebooks in {executed_dir}/: run `make run` first "
                         "(it executes the lessons, then builds the book)")
    if missing:
        raise SystemExit(f"build_book: {executed_dir}/ lacks the executed {', '.join(missing)}: run `make run` "
                         "to execute every lesson")
    try:
        record = json.loads((executed_dir / "run.json").read_text()).get("notebooks", {})
    except (OSError, ValueError):
        record = {}
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    shutil.copytree(BOOK, stage_dir, ignore=shutil.ignore_patterns("__pycache__"))
    (stage_dir / "notebooks").mkdir()
    (stage_dir / "docs").mkdir()
    claims: list[Claim] = []
    repository = repository_url(root)  # read once: every link to a file outside the book points there
    lessons = []
    for path in executed:
        if path.name not in expected:
            continue
        entry = record.get(path.stem)
        title = stage_notebook(path, stage_dir / "notebooks" / path.name, entry, repository)
        lessons.append((path.stem, title, entry))
        cells = nbformat.read(root / "notebooks" / path.name, as_version=4).cells
        source = "\n\n".join(cell.source for cell in cells if cell.cell_type == "markdown")
        claims += claims_in(source, f"notebooks/{path.name}", title)
    docs = []
    for path in sorted((root / "docs").glob("*.md")):
        text = path.read_text()
        (stage_dir / "docs" / path.name).write_text(with_marks(text, "docs", root, repository))
        docs.append((path.stem, _title(text)))
        claims += claims_in(text, f"docs/{path.name}", _title(text))
    (stage_dir / "claims.md").write_text(claims_page(claims, claim_tests(root), repository))
    (stage_dir / "api.md").write_text(api_page(root))
    (stage_dir / "index.md").write_text(index_page(lessons, docs))
    return claims


def build(executed_dir: Path, out_dir: Path, stage_dir: Path, quiet: bool = True) -> Path:
    """Stage the sources and run Sphinx (warnings are errors); return the built ``index.html``."""
    from sphinx.cmd.build import build_main

    stage(executed_dir, stage_dir)
    os.environ["TLHELPERS_ROOT"] = str(ROOT)  # conf.py: pyproject.toml's address, tlhelpers for the API
    if out_dir.exists():
        shutil.rmtree(out_dir)
    args = ["-W", "--keep-going", "-b", "html", "-d", str(stage_dir / "_doctrees"), str(stage_dir), str(out_dir)]
    if build_main((["-q"] if quiet else []) + args) != 0:
        raise SystemExit(f"build_book: Sphinx failed (warnings count as errors); the sources are in {stage_dir}/")
    return out_dir / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the book from the executed notebooks (no execution).")
    parser.add_argument("--executed", type=Path, default=ROOT / "build" / "notebooks",
                        help="the executed notebooks, from make run (default: build/notebooks)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "book", help="default: build/book")
    parser.add_argument("--stage", type=Path, default=ROOT / "build" / "book-src",
                        help="where the sources are staged (default: build/book-src)")
    parser.add_argument("--verbose", action="store_true", help="show Sphinx's progress")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    index = build(args.executed, args.out, args.stage, quiet=not args.verbose)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file()) / 1e6
    print(f"book built in {time.perf_counter() - start:.0f} s ({size:.0f} MB, "
          f"{datetime.date.today().isoformat()}): open {index.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
