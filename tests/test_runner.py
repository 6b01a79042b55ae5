"""scripts/run_notebooks.py, the runner: the main job stops at once, with instructions, without weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import run_notebooks as runner
from tlhelpers import model as tl_model
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


def test_calling_the_runner_directly_prints_no_tensorflow_start_up_lines() -> None:
    """The README's Windows and pip paths call the script without make, which sets TF_CPP_MIN_LOG_LEVEL: the
    script sets it before tlhelpers imports TensorFlow, so no C++ log line ("I0000 ...", "2026-... I tensorflow/...",
    oneDNN, cuda probes) comes before its own output."""
    import os
    import re
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "scripts/run_notebooks.py", "--help"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "usage:" in result.stdout
    c_log = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: |[IWE]\d{4} )", re.MULTILINE)
    assert not c_log.search(result.stderr), result.stderr
