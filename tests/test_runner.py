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

    def fake_run(notebooks, out_dir, parameters, log_output=False, log_file=None, defaults=None):
        seen.update(notebooks=notebooks, out_dir=out_dir, parameters=parameters, log_file=log_file, defaults=defaults)
        return []

    monkeypatch.setattr(runner, "run_notebooks", fake_run)
    nb = tmp_path / "x.ipynb"
    assert runner.main([str(nb), "--weights", "none", "--param", "EPOCHS", "2", "--param", "DATA_DIR", "my data",
                        "--out", str(tmp_path), "--log", str(tmp_path / "run.log")]) == 0
    assert seen["parameters"] == {"WEIGHTS": None, "EPOCHS": 2, "DATA_DIR": "my data"}
    assert seen["log_file"] == tmp_path / "run.log"
    assert seen["notebooks"] == [nb]
    assert seen["defaults"] is runner.offline_parameters  # random weights: the offline parameters below --param


def test_random_weights_run_at_the_offline_parameters_below_param(tmp_path, monkeypatch, capsys) -> None:
    """`make run WEIGHTS=none` runs each notebook at the tests' offline parameters (64 x 64 pixels, 20 epochs;
    notebook 02 at its own learning rate), says so, and a --param still wins; ImageNet weights run the notebooks'
    own defaults."""
    import nbformat
    import papermill

    received = {}

    def fake_execute(source, target, parameters, **kwargs):
        received[Path(source).stem] = parameters
        nbformat.write(nbformat.v4.new_notebook(), target)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    notebooks = [tmp_path / "01_single_dense_head.ipynb", tmp_path / "02_mlp_dropout_head.ipynb"]
    assert runner.main([*map(str, notebooks), "--weights", "none", "--param", "EPOCHS", "3", "--out", str(tmp_path),
                        "--log", str(tmp_path / "run.log")]) == 0
    assert received["01_single_dense_head"] == {"IMAGE_SIZE": 64, "BATCH_SIZE": 16, "EPOCHS": 3, "WEIGHTS": None}
    assert received["02_mlp_dropout_head"] == {"IMAGE_SIZE": 64, "BATCH_SIZE": 16, "EPOCHS": 3,
                                               "LEARNING_RATE": 1e-4, "WEIGHTS": None}
    assert "random weights: the notebooks run at IMAGE_SIZE=64, BATCH_SIZE=16 (02 at LEARNING_RATE=0.0001)" in (
        capsys.readouterr().out)
    names = ("IMAGE_SIZE", "BATCH_SIZE", "EPOCHS", "LEARNING_RATE")
    every = [item for name in names for item in ("--param", name, "1")]
    runner.main([str(notebooks[1]), "--weights", "none", *every, "--out", str(tmp_path), "--log", str(tmp_path / "l")])
    assert "random weights" not in capsys.readouterr().out  # every offline parameter given: nothing to say

    received.clear()
    runner.main([str(notebooks[0]), "--weights", "none", "--own-parameters", "--out", str(tmp_path),
                 "--log", str(tmp_path / "l")])
    assert received["01_single_dense_head"] == {"WEIGHTS": None}

    received.clear()
    monkeypatch.setattr(runner, "resolve_weights", lambda weights: weights)
    runner.main([str(notebooks[0]), "--weights", "imagenet", "--out", str(tmp_path), "--log", str(tmp_path / "l")])
    assert received["01_single_dense_head"] == {"WEIGHTS": "imagenet"}


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


@pytest.mark.parametrize("case", ["preset missing", "preset cached", "random weights", "without notebook 06"])
def test_offline_notebook_06_without_its_preset_stops_before_any_notebook(tmp_path, monkeypatch, capsys, case,
                                                                          stand_in_preset) -> None:
    """Keras' weights file cached, KerasHub's preset not in kagglehub's cache and Kaggle unreachable: `make run`
    would run 01-05 for minutes and then fail inside 06 with a connection error, so it stops at once instead."""
    pytest.importorskip("keras_hub")
    from tests.conftest import HUB_NOTEBOOKS, NOTEBOOKS
    from tests.hub_preset import fill_kaggle_cache, offline_kaggle

    offline_kaggle(monkeypatch, tmp_path)  # an empty cache; every request fails
    if case == "preset cached":
        fill_kaggle_cache(stand_in_preset)
    resolve = runner.resolve_weights  # "imagenet" as if Keras' file were cached; "none" as it is
    monkeypatch.setattr(runner, "resolve_weights", lambda name: name if name == "imagenet" else resolve(name))
    ran = []
    monkeypatch.setattr(runner, "run_notebooks", lambda notebooks, *args, **kwargs: ran.extend(notebooks) or [])
    notebooks = [nb for nb in NOTEBOOKS if nb not in HUB_NOTEBOOKS] if case == "without notebook 06" else NOTEBOOKS
    code = runner.main([*map(str, notebooks), "--out", str(tmp_path / "out"), "--log", str(tmp_path / "run.log"),
                        "--weights", "none" if case == "random weights" else "imagenet"])
    if case == "preset missing":
        message = capsys.readouterr().err
        assert code == 2 and not ran, "no notebook may start"
        assert HUB_NOTEBOOKS[0].name in message and "resnet_50_imagenet" in message, message
        assert "model.weights.h5" in message and "make run WEIGHTS=none" in message and "make doctor" in message
    else:
        assert code == 0 and ran == notebooks


def test_the_kaggle_probe_leaves_urlopen_alone(monkeypatch, tmp_path) -> None:
    """The probe goes through the proxies set at that moment. urlopen's shared opener, built on its first call,
    would keep a test's dead proxy for the rest of the process: the browser test after it then never reached
    JupyterLab on 127.0.0.1."""
    import http.server
    import threading
    import urllib.request

    from tests.hub_preset import offline_kaggle

    monkeypatch.setattr(urllib.request, "_opener", None)  # as in a fresh process: no shared opener built yet
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with monkeypatch.context() as offline:
            offline_kaggle(offline, tmp_path)
            assert runner._kaggle_answers() is False
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/", timeout=5) as response:
            assert response.status == 200
    finally:
        server.shutdown()


def test_the_runner_reports_tensorflow_warnings_in_the_executed_copies(tmp_path, monkeypatch, capsys) -> None:
    """`make run` at any parameters (not only the tests') scans each executed copy and names the cell of every
    TensorFlow warning or C++ log line in it; a clean copy gets no report."""
    import nbformat
    import papermill

    def fake_execute(source, target, **kwargs):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("model.predict(x)"),
                                             nbformat.v4.new_code_cell("print('accuracy 0.9')")])
        if "noisy" in source:
            nb.cells[0].outputs = [nbformat.v4.new_output(
                "stream", name="stderr", text="1/1 - 0s\nWARNING:tensorflow:5 out of the last 5 calls to "
                "<function one_step_on_data> triggered tf.function retracing.\n")]
        nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="accuracy 0.9\n")]
        nbformat.write(nb, target)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    written = runner.run_notebooks([Path("clean.ipynb"), Path("noisy.ipynb")], tmp_path, {})
    assert runner.unwanted_output(written[0]) == []
    assert runner.unwanted_output(written[1]) == [
        "cell 0: WARNING:tensorflow:5 out of the last 5 calls to <function one_step_on_data> triggered tf.function "
        "retracing."]
    terminal = capsys.readouterr().out
    assert "clean.ipynb carries" not in terminal
    assert ("noisy.ipynb carries output a learner cannot act on (please report it): cell 0: WARNING:tensorflow"
            in terminal)


def test_the_runner_records_time_parameters_weights_date_and_machine(tmp_path, monkeypatch) -> None:
    """Each executed notebook gets an entry in run.json, which the book's provenance notes and run times read;
    a notebook run again replaces its own entry and keeps the others."""
    import json

    import nbformat
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda source, target, parameters, **kwargs: nbformat.write(nbformat.v4.new_notebook(), target))
    notebooks = [tmp_path / "01_single_dense_head.ipynb", tmp_path / "02_mlp_dropout_head.ipynb"]
    out = tmp_path / "out"
    assert runner.main([*map(str, notebooks), "--weights", "none", "--out", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())["notebooks"]
    assert sorted(record) == ["01_single_dense_head", "02_mlp_dropout_head"]
    first = record["01_single_dense_head"]
    assert first["weights"] == "random" and first["parameters"] == runner.offline_parameters(notebooks[0])
    assert record["02_mlp_dropout_head"]["parameters"]["LEARNING_RATE"] == 1e-4
    assert first["seconds"] >= 0 and first["finished"][:4].isdigit()
    machine = first["machine"]
    assert machine["cores"] >= 1 and machine["cpu"] and isinstance(machine["gpus"], list)
    assert {"python", "tensorflow", "keras"} <= set(machine["versions"])

    assert runner.main([str(notebooks[1]), "--weights", "none", "--param", "EPOCHS", "7", "--out", str(out)]) == 0
    again = json.loads((out / "run.json").read_text())["notebooks"]
    assert again["01_single_dense_head"] == first
    assert again["02_mlp_dropout_head"]["parameters"]["EPOCHS"] == 7
