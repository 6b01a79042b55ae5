"""tlhelpers.runner: the main job stops at once, with instructions, when weights are unavailable."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlhelpers import model as tl_model
from tlhelpers import runner
from tlhelpers.model import WEIGHTS_FILE


def test_offline_without_switch_stops_before_any_notebook(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure")

    monkeypatch.setattr(tl_model.keras.utils, "get_file", offline)
    monkeypatch.setattr(runner, "run_notebooks", pytest.fail)  # no notebook may start
    assert runner.main(["--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err
    assert WEIGHTS_FILE in message and "make run WEIGHTS=none" in message
    assert str(tmp_path / "keras" / "models") in message


def test_weights_and_parameters_reach_the_notebooks(tmp_path, monkeypatch) -> None:
    seen = {}

    def fake_run(notebooks, out_dir, parameters, log_output=False, log_file=None):
        seen.update(notebooks=notebooks, out_dir=out_dir, parameters=parameters, log_file=log_file)
        return []

    monkeypatch.setattr(runner, "run_notebooks", fake_run)
    nb = tmp_path / "x.ipynb"
    assert runner.main([str(nb), "--weights", "none", "--param", "EPOCHS", "2", "--param", "DATA_DIR", "my data",
                        "--out", str(tmp_path), "--log", str(tmp_path / "run.log")]) == 0
    assert seen["parameters"] == {"WEIGHTS": None, "EPOCHS": 2, "DATA_DIR": "my data"}
    assert seen["log_file"] == tmp_path / "run.log"
    assert seen["notebooks"] == [nb]


def test_default_is_every_notebook_in_order(monkeypatch, tmp_path) -> None:
    seen = {}
    monkeypatch.setattr(runner, "run_notebooks", lambda notebooks, *a, **k: seen.setdefault("nbs", notebooks) and [])
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    runner.main(["--weights", "none", "--out", str(tmp_path), "--log", str(tmp_path / "run.log")])
    assert seen["nbs"] == sorted(Path("notebooks").glob("*.ipynb")) and seen["nbs"]
