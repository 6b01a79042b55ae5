"""One source for run times: docs/run-times.json (two real runs, and where) feeds README's and the guide's tables."""

from __future__ import annotations

from pathlib import Path

from scripts import run_times
from scripts.run_notebooks import offline_parameters
from tests.conftest import NOTEBOOKS


def test_readme_and_the_teaching_guide_give_the_measured_times() -> None:
    problems = run_times.disagreements(run_times.load())
    assert not problems, "run `python scripts/run_times.py --write`, or measure again:\n" + "\n".join(problems)


def test_each_notebook_gives_its_measured_time() -> None:
    times = run_times.load()
    assert not run_times.notebook_disagreements(times)
    times["own"]["seconds"]["01_single_dense_head"] += 60
    assert [p.split(":")[0] for p in run_times.notebook_disagreements(times)] == ["01_single_dense_head.ipynb"]


def test_the_measurement_covers_every_notebook_and_says_where_it_was_made() -> None:
    times = run_times.load()
    assert times["note"].strip(), "say where and how it was measured"
    stems = sorted(nb.stem for nb in NOTEBOOKS)
    for run in ("own", "offline"):
        assert sorted(times[run]["seconds"]) == stems, run
        assert all(seconds > 0 for seconds in times[run]["seconds"].values())
        assert times[run]["machine"]["cores"] >= 1 and times[run]["machine"]["cpu"], run
        assert times[run]["date"][:2] == "20" and times[run]["weights"] == "random"
    for notebook in NOTEBOOKS:
        assert times["offline"]["parameters"][notebook.stem] == offline_parameters(notebook)
        own = times["own"]["parameters"][notebook.stem]
        assert not set(own) & {"IMAGE_SIZE", "EPOCHS", "BATCH_SIZE", "LEARNING_RATE"}, own  # the notebook's own


def test_a_changed_cell_is_named_and_write_puts_it_back(tmp_path: Path, monkeypatch) -> None:
    readme, teaching = tmp_path / "README.md", tmp_path / "teaching.md"
    readme.write_text("| notebook | what |\n|---|---|\n| [01 x](a.ipynb) | y |\n\n"
                      "| notebook | what | run time, 2-core CPU |\n|---|---|---|\n| [01 x](a.ipynb) | y | 9 min |\n")
    teaching.write_text("| notebook | run time, own settings | offline settings (64 x 64) |\n|---|---|---|\n"
                        "| 01 | 1 s | 2 s |\n| 07 | 3 s | 4 s |\n")
    monkeypatch.setattr(run_times, "README", readme)
    monkeypatch.setattr(run_times, "TEACHING", teaching)
    times = {"own": {"seconds": {"01_a": 61.0, "02_b": 9.0}}, "offline": {"seconds": {"01_a": 33.0, "02_b": 5.0}}}
    assert run_times.disagreements(times) == [
        "README.md: 01: '9 min' != '1 min'", "README.md: 02: no row",
        "teaching.md: 01: '1 s' != '1 min'", "teaching.md: 01: '2 s' != '35 s'",
        "teaching.md: 07: not in run-times.json", "teaching.md: 07: not in run-times.json", "teaching.md: 02: no row"]
    run_times.write(times)
    assert readme.read_text().splitlines()[2] == "| [01 x](a.ipynb) | y |", "a table without the time column"
    assert readme.read_text().splitlines()[6] == "| [01 x](a.ipynb) | y | 1 min |"
    assert teaching.read_text().splitlines()[2] == "| 01 | 1 min | 35 s |"


def test_seconds_are_rounded_to_five() -> None:
    assert [run_times.seconds_text(s) for s in (2, 57.2, 61, 128.6, 180)] == ["5 s", "55 s", "1 min", "2 min 10 s",
                                                                             "3 min"]
