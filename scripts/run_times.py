"""One source for the lessons' run times: ``docs/run-times.json``, from real runs, and the tables made from it.

Usage, from the repository root::

    # after `make run WEIGHTS=none RUN_ARGS="--own-parameters --out build/own"` and `make run WEIGHTS=none`:
    python scripts/run_times.py --own build/own/run.json --offline build/notebooks/run.json --note "..."
    python scripts/run_times.py --write      # put the committed times into README.md and docs/teaching.md
    python scripts/run_times.py --check      # exit 1 where README.md, docs/teaching.md or a notebook disagree

The runner records every notebook's time, parameters, weights, date and machine in ``run.json`` beside the
executed copies (``scripts/run_notebooks.py``). This script keeps two of those records, a run at the notebooks'
own settings (224 x 224; random weights cost the same compute as ImageNet weights) and one at the offline
settings that ``make run WEIGHTS=none`` and the tests use, with where they were measured, in
``docs/run-times.json``; the README's lessons table, the teaching guide's run-time table and each notebook's
"**Time**:" line are written from it (the notebooks by hand), and ``tests/test_run_times.py`` fails when they
disagree.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMES = ROOT / "docs" / "run-times.json"
README = ROOT / "README.md"
TEACHING = ROOT / "docs" / "teaching.md"


def load(path: Path = TIMES) -> dict:
    return json.loads(path.read_text())


def seconds_text(seconds: float) -> str:
    """``57 s``, ``2 min 10 s``: rounded to 5 s, which is below what two runs on one machine differ by."""
    rounded = max(5, int(5 * round(seconds / 5)))
    minutes, rest = divmod(rounded, 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min" + (f" {rest} s" if rest else "")


def headers() -> dict[Path, tuple[str, dict[int, str]]]:
    """Each document's run-time table, found by a header cell, and which of its columns holds which run."""
    return {README: ("run time, 2-core CPU", {-1: "own"}),
            TEACHING: ("run time, own settings", {1: "own", 2: "offline"})}


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split(" | ")]


def _table_rows(lines: list[str], header: str) -> list[int]:
    """The indices of the body rows of the first table whose header row has the cell ``header``."""
    for index, line in enumerate(lines):
        if line.startswith("|") and header in _cells(line):
            rows = []
            for body in range(index + 2, len(lines)):  # after the header and its |---| line
                if not lines[body].startswith("|"):
                    break
                rows.append(body)
            return rows
    raise SystemExit(f"run_times: no table with a column {header!r}")


def _expected(times: dict, run: str) -> dict[str, str]:
    return {stem[:2]: seconds_text(seconds) for stem, seconds in times[run]["seconds"].items()}


def _number(cells: list[str]) -> str:
    match = re.match(r"\[?(\d\d)\b", cells[0])
    return match.group(1) if match else cells[0]


def disagreements(times: dict) -> list[str]:
    """Each time cell that differs from the committed measurement, as ``file: lesson: found != expected``."""
    found = []
    for path, (header, columns) in headers().items():
        lines = path.read_text().splitlines()
        numbers = []
        for row in _table_rows(lines, header):
            cells = _cells(lines[row])
            number = _number(cells)
            numbers.append(number)
            for column, run in columns.items():
                expected = _expected(times, run).get(number)
                if expected is None:
                    found.append(f"{path.name}: {number}: not in {TIMES.name}")
                elif cells[column] != expected:
                    found.append(f"{path.name}: {number}: {cells[column]!r} != {expected!r}")
        for number in sorted(set(_expected(times, "own")) - set(numbers)):
            found.append(f"{path.name}: {number}: no row")
    return found


# A notebook's Overview says how long it runs: "**Time**: 2 min 15 s on a 2-core CPU ...".
NOTEBOOK_TIME = re.compile(r"(\*\*Time\*\*: )(.+?)( on a 2-core CPU)")


def notebook_disagreements(times: dict) -> list[str]:
    """Each notebook whose Overview gives another run time than the committed measurement."""
    found = []
    for stem, expected in ((stem, seconds_text(s)) for stem, s in times["own"]["seconds"].items()):
        text = (ROOT / "notebooks" / f"{stem}.ipynb").read_text()
        stated = NOTEBOOK_TIME.findall(text)
        if [value for _, value, _ in stated] != [expected]:
            found.append(f"{stem}.ipynb: Overview's '**Time**: ... on a 2-core CPU' says "
                         f"{[value for _, value, _ in stated]}, not {expected!r}")
    return found


def write(times: dict) -> None:
    """Put the committed times into the tables of README.md and docs/teaching.md."""
    for path, (header, columns) in headers().items():
        lines = path.read_text().splitlines(keepends=True)
        for row in _table_rows(lines, header):
            cells = _cells(lines[row])
            for column, run in columns.items():
                cells[column] = _expected(times, run).get(_number(cells), cells[column])
            lines[row] = "| " + " | ".join(cells) + " |\n"
        path.write_text("".join(lines))


def _summary(record_file: Path) -> dict:
    notebooks = json.loads(record_file.read_text())["notebooks"]
    first = next(iter(notebooks.values()))
    return {
        "seconds": {stem: entry["seconds"] for stem, entry in notebooks.items()},
        "parameters": {stem: entry["parameters"] for stem, entry in notebooks.items()},
        "weights": first["weights"],
        "date": min(entry["finished"] for entry in notebooks.values())[:10],
        "machine": first["machine"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--own", type=Path, help="run.json of a run at the notebooks' own settings")
    parser.add_argument("--offline", type=Path,
                        help="run.json of a run at the offline settings (make run WEIGHTS=none)")
    parser.add_argument("--note", default="", help="where and how it was measured (load, other jobs)")
    parser.add_argument("--write", action="store_true", help="write the times into README.md and docs/teaching.md")
    parser.add_argument("--check", action="store_true", help="exit 1 where the documents disagree with the file")
    args = parser.parse_args(argv)
    if args.own or args.offline:
        if not (args.own and args.offline):
            parser.error("give both --own and --offline")
        TIMES.write_text(json.dumps({"note": args.note, "own": _summary(args.own), "offline": _summary(args.offline)},
                                    indent=1) + "\n")
        print(f"wrote {TIMES.relative_to(ROOT)}")
    times = load()
    if args.write:
        write(times)
        print("wrote the time columns of README.md and docs/teaching.md")
    if args.check and (problems := disagreements(times) + notebook_disagreements(times)):
        print("\n".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
