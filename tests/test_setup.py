"""Set-up with uv: the lock matches pyproject.toml, the Python range is one truth, and a Python
outside it gets one clear message (scripts/uv-run, what `make run` and `make test` call)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "uv-run"
SUPPORTED = ["3.11", "3.12", "3.13"]


def _uv() -> str:
    found = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    assert found, "uv is a dev dependency: `make test` installs it into .venv/"
    return found


def _run_uv(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_uv(), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_uv_lock_matches_pyproject() -> None:
    done = _run_uv("lock", "--check", "--offline")
    assert done.returncode == 0, f"uv.lock is out of date with pyproject.toml: run `make lock`\n{done.stderr}"


def test_requirements_lock_is_the_export_of_uv_lock() -> None:
    """pip users install the same pins: requirements.lock is `uv export` of uv.lock, byte for byte."""
    exported = _run_uv("export", "--quiet", "--offline", "--format", "requirements-txt", "--no-hashes",
                       "--extra", "dev", "--extra", "hub", "--no-emit-project")
    assert exported.returncode == 0, exported.stderr
    committed = (ROOT / "requirements.lock").read_text()
    body = "\n".join(line for line in committed.splitlines() if not line.startswith("#"))
    assert body == "\n".join(line for line in exported.stdout.splitlines() if not line.startswith("#"))
    assert "uv export" in committed.splitlines()[1], "keep uv's header: it says how the file is made"


def test_python_range_is_the_same_everywhere() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == ">=3.11,<3.14"
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    assert lock["requires-python"].replace(" ", "") == ">=3.11,<3.14"
    script = SCRIPT.read_text()
    assert "SUPPORTED_MIN=11" in script and "SUPPORTED_MAX=13" in script
    assert 'SUPPORTED_TEXT="3.11, 3.12 or 3.13"' in script
    assert "Python 3.11, 3.12 or 3.13" in (ROOT / "README.md").read_text()
    conda_python = re.search(r"python=3\.(\d+)", (ROOT / "environment.yml").read_text())
    assert conda_python and 11 <= int(conda_python.group(1)) <= 13


def test_tensorflow_has_a_wheel_for_every_supported_python_and_system() -> None:
    """The lock is universal: each supported Python finds TensorFlow on Linux, macOS and Windows."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (tensorflow,) = [p for p in lock["package"] if p["name"] == "tensorflow"]
    wheels = [Path(w["url"]).name for w in tensorflow["wheels"]]
    for version in SUPPORTED:
        tag = "cp" + version.replace(".", "")
        for system in ("manylinux", "macosx", "win_amd64"):
            assert any(f"-{tag}-" in w and system in w for w in wheels), f"no TensorFlow wheel for {tag} {system}"
    assert not any("-cp314-" in w for w in wheels), "TensorFlow ships 3.14 wheels now: widen the range"


def _fake_python(folder: Path, name: str, version: str) -> None:
    """An executable that answers the version question the way python does, and nothing else."""
    path = folder / name
    path.write_text(f"#!/bin/sh\nif [ \"$1\" = -c ]; then echo {version}; exit 0; fi\necho 'fake python' >&2; exit 1\n")
    path.chmod(0o755)


def _run_setup(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run scripts/uv-run with only fake interpreters (and the tools it uses) on PATH, offline."""
    bin_dir = tmp_path / "bin"
    for tool in ("dirname", "cut", "sh"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "uv").symlink_to(_uv())
    environment = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path / "home"),
        "UV_PYTHON_INSTALL_DIR": str(tmp_path / "uv-python"),  # no uv-managed Pythons
        "UV_PYTHON_DOWNLOADS": "never",  # what an offline machine gets, without waiting for the network
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
        "VENV": str(tmp_path / "venv"),
        **(env or {}),
    }
    return subprocess.run([shutil.which("bash"), str(SCRIPT), *args], env=environment, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir()
    return tmp_path / "bin"


@pytest.mark.parametrize("version", ["3.14.0", "3.10.12"])
def test_unsupported_python_stops_at_once_with_one_message(version: str, tmp_path: Path, fake_bin: Path) -> None:
    _fake_python(fake_bin, "python3", version)
    done = _run_setup(tmp_path, "python", "-c", "print('ran')")
    assert done.returncode == 2
    assert "ran" not in done.stdout
    message = done.stderr
    assert "needs Python 3.11, 3.12 or 3.13" in message
    assert f"python3 is {version}" in message
    assert "python install 3.13" in message and "make test PYTHON=python3.13" in message
    assert "Traceback" not in message and len(message.strip().splitlines()) <= 10, message
    assert not (tmp_path / "venv").exists(), "nothing is installed for an unsupported Python"


def test_a_python_asked_for_by_name_is_checked_too(tmp_path: Path, fake_bin: Path) -> None:
    _fake_python(fake_bin, "python3.14", "3.14.1")
    _fake_python(fake_bin, "python3.12", "3.12.3")  # would do, but the user asked for 3.14
    done = _run_setup(tmp_path, "python", "-c", "print('ran')", env={"PYTHON": "python3.14"})
    assert done.returncode == 2
    assert "python3.14 is 3.14.1" in done.stderr and "needs Python 3.11, 3.12 or 3.13" in done.stderr


def test_a_supported_python_beside_an_unsupported_one_is_chosen(tmp_path: Path, fake_bin: Path) -> None:
    _fake_python(fake_bin, "python3", "3.14.0")
    (fake_bin / "python3.11").symlink_to(sys.executable)  # the tests' own Python, 3.11 to 3.13
    done = _run_setup(tmp_path, "--find-python")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(fake_bin / "python3.11")


def test_version_is_written_once() -> None:
    import importlib.metadata

    import tlhelpers

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert importlib.metadata.version("tlhelpers") == tlhelpers.__version__


def test_colab_pins_are_dated_and_above_our_floors() -> None:
    """Colab installs tlhelpers with --no-deps: its versions must satisfy our floors."""
    from packaging.requirements import Requirement

    text = (ROOT / "constraints" / "colab.txt").read_text()
    assert re.search(r"taken 20\d\d-\d\d", text), "say when the Colab versions were taken"
    pins = {Requirement(line).name.lower(): Requirement(line).specifier for line in text.splitlines()
            if line and not line.startswith("#")}
    assert {"tensorflow", "keras", "numpy"} <= set(pins)
    for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        if requirement.name.lower() in pins:
            (pin,) = pins[requirement.name.lower()]
            assert requirement.specifier.contains(pin.version), f"Colab has {requirement.name} {pin.version}: {line}"
    month = re.search(r"taken (20\d\d-\d\d)", text).group(1)
    assert f"Colab's versions of {month}" in (ROOT / "docs" / "setup.md").read_text(), \
        "docs/setup.md, 'Google Colab and Binder', says what was checked"


@pytest.mark.parametrize(("path", "name", "slow"), [
    ("tests/test_notebooks.py", "test_runs_without_errors[01_single_dense_head]", True),
    ("tests/test_browser.py", "test_notebook_01_runs_all_cells_in_jupyterlab", True),
    ("tests/test_examples.py", "test_example_trains_saves_and_reloads[dense_head]", True),
    ("tests/test_exercises_01.py", "test_solution[3]", True),  # files added later: no list to edit
    ("tests/test_mistakes.py", "test_mistake[twice-softmax]", True),
    ("tests/test_multiworker.py", "test_two_workers", True),
    ("tests/test_readme.py", "test_runnable_block[examples/dense_head.py]", True),
    ("tests/test_readme.py", "test_runnable_block[scripts/make_tiny_dataset.py]", False),
    ("tests/test_notebook_structure.py", "test_committed_notebook_is_clean[01_single_dense_head]", False),
    ("tests/test_claims.py", "test_softmax_from_logits_warns", False),
    ("tests/test_features.py", "test_features_are_the_base_models_output_in_file_order", False),
])
def test_make_test_fast_leaves_out_what_executes_notebooks(path: str, name: str, slow: bool) -> None:
    from types import SimpleNamespace

    from tests.conftest import pytest_collection_modifyitems

    markers: list = []
    item = SimpleNamespace(path=ROOT / path, name=name, add_marker=markers.append)
    pytest_collection_modifyitems(None, [item])
    assert [m.name for m in markers] == (["slow"] if slow else [])
    assert 'pytest -m "not slow"' in (ROOT / "Makefile").read_text()
