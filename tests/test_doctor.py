"""scripts/doctor.py: each finding with its condition faked, the exit codes, and one run of the real thing."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest

from scripts import doctor
from scripts.doctor import Finding
from tests.conftest import ROOT
from tests.hub_preset import fill_kaggle_cache, offline_kaggle
from tlhelpers import kerashub
from tlhelpers.model import WEIGHTS_FILE

LOCKED = {doctor._canonical(name): version for name, version in doctor.locked_versions().items()}


def _installed(monkeypatch, **changes: str | None) -> None:
    versions = {**LOCKED, "tlhelpers": "0.1.0"}
    for name, version in changes.items():
        if version is None:
            versions.pop(name)
        else:
            versions[name] = version
    monkeypatch.setattr(doctor, "installed_versions", lambda: versions)


def test_packages_as_locked_are_ok(monkeypatch) -> None:
    _installed(monkeypatch)
    (finding,) = doctor.check_packages()
    assert finding.status == "ok" and f"all {len(LOCKED)} packages" in finding.detail


def test_old_keras_blocks(monkeypatch) -> None:
    _installed(monkeypatch, keras="3.2.0")
    findings = doctor.check_packages()
    failed = [f for f in findings if f.status == "FAIL"]
    assert len(failed) == 1 and "keras 3.2.0 is installed, but the notebooks need keras>=3.3" in failed[0].detail
    assert "make venv" in failed[0].fix


def test_a_missing_dependency_blocks(monkeypatch) -> None:
    _installed(monkeypatch, pillow=None)
    failed = [f for f in doctor.check_packages() if f.status == "FAIL"]
    assert len(failed) == 1 and "pillow is not installed" in failed[0].detail


def test_a_package_not_matching_the_lock_warns(monkeypatch) -> None:
    _installed(monkeypatch, numpy="2.3.0", pytest=None)
    (finding,) = doctor.check_packages()
    assert finding.status == "warn", "numpy 2.3 still satisfies numpy>=1.26: the notebooks run"
    assert f"2 of {len(LOCKED)} packages differ" in finding.detail
    assert f"numpy 2.3.0 (lock: {LOCKED['numpy']})" in finding.detail and "pytest missing" in finding.detail
    assert "requirements.lock" in finding.fix


def test_without_the_lock_packages_are_not_compared(tmp_path: Path) -> None:
    (finding,) = doctor.check_packages(lock=tmp_path / "requirements.lock")
    assert finding.status == "warn" and "requirements.lock not found" in finding.detail


def test_python_outside_requires_python_blocks(tmp_path: Path) -> None:
    assert doctor.check_python().status == "ok", "the Python running the tests is supported"
    finding = doctor.check_python("3.9.18")
    required = doctor._pyproject(ROOT / "pyproject.toml")[0]
    assert finding.status == "FAIL" and f"Python 3.9.18, but pyproject.toml requires {required}" in finding.detail
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nrequires-python = ">=3.10,<3.13"\ndependencies = []\n')
    assert doctor.check_python("3.13.1", pyproject).status == "FAIL"
    assert doctor.check_python("3.12.4", pyproject).status == "ok"


def test_missing_weights_block_offline_use_only(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    finding = doctor.check_weights()
    assert finding.status == "offline" and str(tmp_path / "models" / WEIGHTS_FILE) in finding.detail
    for fix in ("downloads it once", "copy it to", "WEIGHTS=None", "make run WEIGHTS=none"):
        assert fix in finding.fix
    assert doctor.run([doctor.check_weights]) == 0, "online the notebooks download the file"
    assert doctor.run([doctor.check_weights], offline=True) == 1


def test_truncated_weights_are_found(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    weights = tmp_path / "models" / WEIGHTS_FILE
    weights.parent.mkdir()
    weights.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(1000))  # an interrupted download
    finding = doctor.check_weights()
    assert finding.status == "offline" and "incomplete or damaged (1,008 bytes" in finding.detail
    assert "downloads it again" in finding.detail and "WEIGHTS=None" in finding.fix
    monkeypatch.setattr(doctor, "keras_notop_md5", lambda: hashlib.md5(weights.read_bytes()).hexdigest())
    assert doctor.check_weights().status == "ok", "a file with the hash Keras checks is complete"


def test_missing_kerashub_preset_blocks_offline_use_only(monkeypatch, tmp_path: Path) -> None:
    pytest.importorskip("keras_hub")
    cache_dir = offline_kaggle(monkeypatch, tmp_path)
    finding = doctor.check_kerashub()
    assert finding.status == "offline" and f"{kerashub.PRESET} preset is not complete in {cache_dir}" in finding.detail
    assert "config.json, model.weights.h5, image_converter.json missing" in finding.detail
    for fix in ("downloads it once", "run notebook 06 once online", "make run the day before",
                f"copy {cache_dir} whole", "WEIGHTS=None", "make run WEIGHTS=none"):
        assert fix in finding.fix
    assert doctor.run([doctor.check_kerashub]) == 0, "online notebook 06 downloads the preset"
    assert doctor.run([doctor.check_kerashub], offline=True) == 1
    assert not cache_dir.exists(), "the doctor downloads and writes nothing"


def test_kerashub_preset_in_the_cache_is_ok_and_loads_offline(monkeypatch, tmp_path: Path, stand_in_preset) -> None:
    """What the doctor calls complete is what notebook 06's from_preset calls load without a network; they do not
    read metadata.json."""
    keras_hub = pytest.importorskip("keras_hub")
    offline_kaggle(monkeypatch, tmp_path)
    cache, handle = fill_kaggle_cache(stand_in_preset)
    cache.delete_from_cache(handle, "metadata.json")
    finding = doctor.check_kerashub()
    assert finding.status == "ok" and f"complete at {cache.get_path(handle)}" in finding.detail
    keras_hub.models.Backbone.from_preset(kerashub.PRESET)
    keras_hub.layers.ImageConverter.from_preset(kerashub.PRESET, image_size=(64, 64))


@pytest.mark.parametrize("name", kerashub.PRESET_FILES)
@pytest.mark.parametrize("damage", ["not marked complete", "missing"])
def test_a_kerashub_file_missing_blocks_offline(monkeypatch, tmp_path: Path, stand_in_preset, name, damage) -> None:
    """One file cut off (no completion marker, as kagglehub leaves an interrupted download) or gone: the doctor
    names it, and the from_preset call that reads it goes to the network."""
    keras_hub = pytest.importorskip("keras_hub")
    offline_kaggle(monkeypatch, tmp_path)
    cache, handle = fill_kaggle_cache(stand_in_preset)
    if damage == "missing":
        os.remove(cache.get_path(handle, name))
    else:
        cache.mark_as_incomplete(handle, name)
    finding = doctor.check_kerashub()
    assert finding.status == "offline" and f": {name} missing or not marked complete" in finding.detail
    with pytest.raises(Exception, match="127.0.0.1"):
        if name == "image_converter.json":
            keras_hub.layers.ImageConverter.from_preset(kerashub.PRESET)
        else:
            keras_hub.models.Backbone.from_preset(kerashub.PRESET)


def test_without_keras_hub_notebook_06_needs_the_hub_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # import keras_hub raises ImportError
    finding = doctor.check_kerashub()
    assert finding.status == "warn", "like a package beyond pyproject's dependencies: notebooks 01-05 still run"
    assert "keras_hub does not import" in finding.detail and "notebook 06 does not" in finding.detail
    assert "the hub extra" in finding.fix and 'pip install -c requirements.lock -e ".[dev,hub]"' in finding.fix
    assert doctor.run([doctor.check_kerashub], offline=True) == 0


def test_the_hash_is_the_one_keras_checks() -> None:
    from keras.src.applications import resnet

    assert doctor.keras_notop_md5() == resnet.WEIGHTS_HASHES["resnet50"][1]


def test_too_little_disk_blocks(monkeypatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * 1024**3, 9.5 * 1024**3, 0.5 * 1024**3))
    finding = doctor.check_disk()
    assert finding.status == "FAIL" and "0.5 GB free" in finding.detail and "need about 1 GB" in finding.detail
    assert "free some disk space" in finding.fix
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100 * 1024**3, 0, 50 * 1024**3))
    assert doctor.check_disk().status == "ok"


def test_bundled_data_present_or_missing(tmp_path: Path) -> None:
    finding = doctor.check_data()
    images = [p for p in (ROOT / "data" / "shapes").rglob("*") if p.suffix == ".png"]
    assert finding.status == "ok" and f"{len(images)} images in 4 classes" in finding.detail
    finding = doctor.check_data(tmp_path / "shapes")
    assert finding.status == "FAIL" and "missing" in finding.detail and "git checkout" in finding.fix


def test_tensorflow_runs_a_convolution() -> None:
    finding = doctor.check_tensorflow()
    assert finding.status == "ok" and "ran a convolution" in finding.detail


def test_estimates_scale_with_the_measured_step() -> None:
    same = doctor.estimate_minutes(doctor.REFERENCE_STEP_SECONDS)
    slower = doctor.estimate_minutes(2 * doctor.REFERENCE_STEP_SECONDS)
    assert set(same) == {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}, "one estimate per notebook"
    for name, minutes in same.items():
        assert minutes == pytest.approx(doctor.REFERENCE_NOTEBOOK_SECONDS[name] / 60)
        assert slower[name] == pytest.approx(2 * minutes)


def test_resnet50_timing_smoke() -> None:
    assert 0 < doctor.resnet50_step_seconds(steps=1, batch=1, size=64) < 30


def test_exit_code_and_fixes(capsys) -> None:
    def ok() -> Finding:
        return Finding("one", "ok", "fine", "never shown")

    def warn() -> list[Finding]:
        return [Finding("two", "warn", "differs", "reinstall")]

    def fail() -> Finding:
        return Finding("three", "FAIL", "broken", "repair it")

    def crash() -> Finding:
        raise RuntimeError("boom")

    assert doctor.run([ok, warn]) == 0
    out = capsys.readouterr().out
    assert "fix: reinstall" in out and "never shown" not in out and "Nothing blocks" in out
    assert doctor.run([ok, fail]) == 1
    assert "fix: repair it" in capsys.readouterr().out
    assert doctor.run([crash]) == 1, "a check that crashes is a finding"
    assert "the check failed: RuntimeError('boom')" in capsys.readouterr().out


def test_make_doctor_calls_the_script() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "\ndoctor:" in makefile and "python scripts/doctor.py" in makefile


def test_doctor_runs_end_to_end_without_weights(monkeypatch, tmp_path: Path) -> None:
    """What `make doctor` does on a fresh clone here, with no network: every check runs, the missing weights
    (Keras' and KerasHub's) do not fail it."""
    cache = offline_kaggle(monkeypatch, tmp_path)
    env = {**os.environ, "KERAS_HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "scripts/doctor.py"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    for check in ("python", "packages", "tensorflow", "weights", "kerashub", "data", "disk", "speed"):
        assert f"] {check}" in result.stdout, (check, result.stdout, result.stderr)
    assert "[offline] weights" in result.stdout and "[offline] kerashub" in result.stdout
    assert "expect 01 " in result.stdout and not cache.exists(), "nothing downloaded"
    blocked = "FAIL" in result.stdout  # e.g. a full disk on this machine: then the exit code must say so
    assert result.returncode == int(blocked), result.stdout


def test_a_tensorflow_that_does_not_import_is_a_finding(tmp_path: Path) -> None:
    """The doctor is for broken machines: a TensorFlow that fails to import (a wrong wheel, a missing DLL) is a FAIL
    finding with its fix, after the checks before it ran, not a traceback before any check."""
    broken = tmp_path / "tensorflow"
    broken.mkdir()
    (broken / "__init__.py").write_text('raise ImportError("simulated: DLL load failed")\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "KERAS_HOME": str(tmp_path / "keras")}
    program = ("import sys; from scripts import doctor; "
               "sys.exit(doctor.run([doctor.check_python, doctor.check_tensorflow]))")
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "] python" in result.stdout and "[ FAIL  ] tensorflow" in result.stdout, result.stdout
    assert "simulated: DLL load failed" in result.stdout and "fix: " in result.stdout
    assert "Traceback" not in result.stderr, result.stderr
