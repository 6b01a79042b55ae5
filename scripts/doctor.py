"""Check a machine before a workshop: ``make doctor`` or ``python scripts/doctor.py``.

In a few seconds it checks the Python version, the installed packages against
``requirements.lock``, that TensorFlow runs a convolution, the ImageNet weights file, notebook
06's KerasHub preset in kagglehub's cache, the bundled data and free disk, then times a few
ResNet50 steps and estimates each notebook's run time on this machine. Each finding is one of:

* ``ok``;
* ``warn``: the notebooks run, but something differs from what was tested (or notebook 06 lacks
  its optional ``hub`` extra);
* ``offline``: blocks offline use only (online, Keras or KerasHub downloads what is missing);
* ``FAIL``: blocks the notebooks; the line below says what to do.

The exit code is 1 when a finding is ``FAIL`` (or ``offline`` with ``--offline``), else 0.
Nothing is installed, downloaded, written or deleted. TensorFlow and tlhelpers are imported inside
the checks, so a TensorFlow that does not import is a ``FAIL`` finding after the Python and package
checks, not a traceback before them.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
REINSTALL = 'make venv, or: .venv/bin/pip install -c requirements.lock -e ".[dev,hub]"'
# One run of the five notebooks writes ~560 MB (measured: build/outputs 498 MB of saved .keras models,
# build/feature_cache 62 MB), plus the 94 MB weights file; notebook 06 adds ~140 MB (its .keras model 91 MB,
# its features 51 MB) and, with ImageNet weights, KerasHub's ~90 MB in the Kaggle cache: ask for 1 GB.
MIN_FREE_BYTES = 1024**3

# Reference: on this project's 2-core machine (the kind CI runs on), shared with other jobs (load
# average 3-4), `python scripts/run_notebooks.py --weights none` ran the five notebooks at their own settings
# (224 x 224, their EPOCHS and BATCH_SIZE; ImageNet weights cost the same compute) in these seconds, and
# resnet50_step_seconds() right after took 0.37, 0.54 and 0.40 s (median 0.40). On a shared machine a
# rerun can differ by up to 2x: the estimates are a guide for planning, not a promise.
REFERENCE_STEP_SECONDS = 0.40
REFERENCE_NOTEBOOK_SECONDS = {
    "01_single_dense_head": 129,
    "02_mlp_dropout_head": 52,
    "03_conv1x1_head": 42,
    "04_compare_heads": 33,
    "05_fine_tuning": 52,
    # 06 was run alone later the same way, three times: 85, 51 and 48 s, with median steps of 0.35, 0.26 and
    # 0.30 s right after; scaled to the reference step, 98, 77 and 64 s: the median.
    "06_kerashub_backbone": 77,
}


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``status`` is ``ok``, ``warn``, ``offline`` or ``FAIL``."""

    check: str
    status: str
    detail: str
    fix: str = ""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions() -> dict[str, str]:
    """``{canonical name: version}`` of every installed distribution."""
    return {_canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()
            if d.metadata["Name"]}


def _pyproject(pyproject: Path) -> tuple[str | None, list[str]]:
    """``requires-python`` and the ``[project]`` dependencies, read without tomllib (Python 3.10 has none)."""
    text = pyproject.read_text(encoding="utf-8")
    python = re.search(r'^requires-python\s*=\s*"([^"]+)"', text, re.MULTILINE)
    deps = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.MULTILINE | re.DOTALL)
    return (python.group(1) if python else None), (re.findall(r'"([^"]+)"', deps.group(1)) if deps else [])


def check_python(version: str | None = None, pyproject: Path = ROOT / "pyproject.toml") -> Finding:
    """The running Python against ``requires-python``."""
    version = version or ".".join(map(str, sys.version_info[:3]))
    if not pyproject.is_file():
        return Finding("python", "warn", f"Python {version}; {pyproject} not found, so the supported range is "
                       "unknown", "run the doctor from a clone of the repository")
    required, _ = _pyproject(pyproject)
    if required and version not in SpecifierSet(required):
        return Finding("python", "FAIL", f"Python {version}, but pyproject.toml requires {required}",
                       f"install a Python {required} and recreate the venv: rm -rf .venv && make venv PYTHON=python3.X")
    return Finding("python", "ok", f"Python {version} (pyproject.toml requires {required})")


def locked_versions(lock: Path = ROOT / "requirements.lock") -> dict[str, str]:
    """``{name: version}`` pinned by ``lock`` for this Python and platform.

    The lock is universal (exported from ``uv.lock``): a line may carry an environment marker,
    ``name==version ; python_full_version == '3.12.*'``, and only lines whose marker holds here count.
    """
    pinned = {}
    for line in lock.read_text().splitlines():
        requirement, _, marker = line.strip().partition(";")
        if "==" in requirement and not requirement.startswith("#") and (not marker or Marker(marker).evaluate()):
            name, version = requirement.split("==", 1)
            pinned[name.strip()] = version.strip()
    return pinned


def check_packages(lock: Path = ROOT / "requirements.lock", pyproject: Path = ROOT / "pyproject.toml") -> list[Finding]:
    """Missing or too old dependencies block; any other difference from the lock is a warning."""
    missing = [str(p) for p in (lock, pyproject) if not p.is_file()]
    if missing:
        return [Finding("packages", "warn", f"cannot compare packages: {' and '.join(missing)} not found",
                        "run the doctor from a clone of the repository")]
    installed = installed_versions()
    findings = []
    for line in _pyproject(pyproject)[1]:
        need = Requirement(line)
        have = installed.get(_canonical(need.name))
        if have is None:
            findings.append(Finding("packages", "FAIL", f"{need.name} is not installed ({line} needed)", REINSTALL))
        elif not need.specifier.contains(Version(have), prereleases=True):
            findings.append(Finding("packages", "FAIL", f"{need.name} {have} is installed, but the notebooks need "
                                    f"{line}", REINSTALL))
    pinned = locked_versions(lock)
    differ = [f"{name} {installed.get(_canonical(name), 'missing')} (lock: {version})"
              for name, version in pinned.items() if installed.get(_canonical(name)) != version]
    if differ:
        shown = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
        findings.append(Finding("packages", "warn", f"{len(differ)} of {len(pinned)} packages differ from "
                                f"requirements.lock: {shown}", f"to run what was tested: {REINSTALL}"))
    return findings or [Finding("packages", "ok", f"all {len(pinned)} packages as in requirements.lock")]


def check_tensorflow() -> Finding:
    """TensorFlow imports and computes a 3x3 convolution correctly; lists the GPUs it sees."""
    import numpy as np
    import tensorflow as tf

    out = tf.nn.conv2d(tf.ones((1, 8, 8, 3)), tf.ones((3, 3, 3, 4)), strides=1, padding="VALID").numpy()
    if out.shape != (1, 6, 6, 4) or not np.allclose(out, 27.0):
        return Finding("tensorflow", "FAIL", f"a 3x3 convolution of ones gave {out.ravel()[:3]}..., not 27",
                       f"reinstall TensorFlow: {REINSTALL}")
    gpus = tf.config.list_physical_devices("GPU")
    return Finding("tensorflow", "ok", f"TensorFlow {tf.__version__} ran a convolution on "
                   + (f"{len(gpus)} GPU(s) and the CPU" if gpus else "the CPU (no GPU seen)"))


def keras_notop_md5() -> str:
    """The MD5 Keras checks for the ResNet50 ``notop`` file (Keras records no size and no SHA-256)."""
    try:
        from keras.src.applications.resnet import WEIGHTS_HASHES

        return WEIGHTS_HASHES["resnet50"][1]
    except (ImportError, KeyError):
        from tlhelpers.model import WEIGHTS_MD5

        return WEIGHTS_MD5


def check_weights() -> Finding:
    """Whether Keras' cache holds a complete ImageNet ``notop`` file; missing blocks offline use only."""
    from tlhelpers.model import WEIGHTS_FILE, WEIGHTS_URL, keras_weights_path

    path = keras_weights_path()
    fix = (f"online, the first notebook downloads it once (94 MB); for a room without internet, download "
           f"{WEIGHTS_URL} once, copy it to {path} (or pass WEIGHTS='/path/to/{WEIGHTS_FILE}'), "
           "or run with random weights: WEIGHTS=None, make run WEIGHTS=none")
    if not path.is_file():
        return Finding("weights", "offline", f"ImageNet weights are not at {path} (blocks offline use only)", fix)
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != keras_notop_md5():
        return Finding("weights", "offline", f"{path} is incomplete or damaged ({path.stat().st_size:,} bytes, MD5 "
                       "differs from the one Keras checks); online Keras downloads it again", fix)
    return Finding("weights", "ok", f"ImageNet weights complete at {path} (MD5 as Keras checks)")


def check_kerashub() -> Finding:
    """Whether kagglehub's cache holds notebook 06's preset, each file marked complete; missing blocks offline only."""
    from tlhelpers.kerashub import PRESET, cached_preset

    try:
        cache, handle, missing = cached_preset()
    except ImportError as error:  # an optional extra: a warning, as check_packages treats packages beyond pyproject's
        return Finding("kerashub", "warn", f"keras_hub does not import ({error}): notebooks 01-05 run, notebook 06 "
                       "does not", f"notebook 06 needs the hub extra: {REINSTALL}")
    from kagglehub.config import get_cache_folder

    folder = cache.get_path(handle)
    if missing:
        return Finding("kerashub", "offline", f"notebook 06's {PRESET} preset is not complete in {folder}: "
                       f"{', '.join(missing)} missing or not marked complete (blocks offline use only)",
                       f"online, notebook 06 downloads it once (about 90 MB); for a room without internet, run "
                       f"notebook 06 once online (or make run the day before), or copy {get_cache_folder()} whole "
                       "from a laptop that has it, or run with random weights: WEIGHTS=None, make run WEIGHTS=none")
    return Finding("kerashub", "ok", f"notebook 06's {PRESET} preset complete at {folder}")


def check_data(folder: Path = ROOT / "data" / "shapes") -> Finding:
    """The bundled images are there and load."""
    from tlhelpers.data import load_image_folder

    fix = "restore the bundled data: git checkout -- data/shapes (or clone the repository again)"
    if not folder.is_dir():
        return Finding("data", "FAIL", f"bundled data {folder} is missing", fix)
    try:
        data = load_image_folder(folder, image_size=(32, 32))
    except (ValueError, OSError) as error:
        return Finding("data", "FAIL", f"bundled data {folder} does not load: {error}", fix)
    total = sum(sum(c.values()) for c in data.counts.values())
    if data.skipped or data.duplicates:
        return Finding("data", "warn", f"bundled data {folder}: {len(data.skipped)} unusable file(s), "
                       f"{len(data.duplicates)} group(s) of copies", fix)
    return Finding("data", "ok", f"bundled data: {total} images in {len(data.class_names)} classes")


def check_disk(path: Path = ROOT, need: int = MIN_FREE_BYTES) -> Finding:
    """Free space where the repository is: the notebooks write models, caches and executed copies."""
    free = shutil.disk_usage(path).free
    detail = f"{free / 1024**3:.1f} GB free at {path}"
    if free < need:
        return Finding("disk", "FAIL", f"{detail}; the notebooks need about {need / 1024**3:.0f} GB",
                       "free some disk space (or work from a larger drive) before the workshop")
    return Finding("disk", "ok", detail)


def resnet50_step_seconds(steps: int = 3, batch: int = 2, size: int = 224) -> float:
    """Median seconds of one ResNet50 forward pass (random weights) after one warm-up pass."""
    import keras
    import numpy as np

    model = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(size, size, 3))
    images = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32")
    model(images, training=False)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model(images, training=False)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def estimate_minutes(step_seconds: float) -> dict[str, float]:
    """Each notebook's expected minutes here, scaled from the reference by ``step_seconds``."""
    scale = step_seconds / REFERENCE_STEP_SECONDS
    return {name: seconds * scale / 60 for name, seconds in REFERENCE_NOTEBOOK_SECONDS.items()}


def check_speed() -> Finding:
    """Time ResNet50 and estimate the notebooks' run times."""
    step = resnet50_step_seconds()
    minutes = estimate_minutes(step)
    listed = ", ".join(f"{name[:2]} ~{m:.0f} min" if m >= 1 else f"{name[:2]} <1 min" for name, m in minutes.items())
    return Finding("speed", "ok", f"ResNet50 forward pass, batch of 2 at 224: {step:.2f} s "
                   f"(reference {REFERENCE_STEP_SECONDS:.2f} s); expect {listed}, ~{sum(minutes.values()):.0f} min "
                   f"for all {len(minutes)} (rough: +-2x)")


CHECKS: list[Callable[[], Finding | list[Finding]]] = [
    check_python, check_packages, check_tensorflow, check_weights, check_kerashub, check_data, check_disk,
    check_speed]


def run(checks: list[Callable[[], Finding | list[Finding]]], offline: bool = False) -> int:
    """Run ``checks``, print one line per finding (and its fix); return the exit code."""
    blocking = {"FAIL", "offline"} if offline else {"FAIL"}
    failed = 0
    for check in checks:
        try:
            found = check()
        except Exception as error:  # noqa: BLE001 - a check that crashes is a finding, not a traceback
            found = Finding(check.__name__.removeprefix("check_"), "FAIL", f"the check failed: {error!r}", REINSTALL)
        for finding in found if isinstance(found, list) else [found]:
            print(f"[{finding.status:^7}] {finding.check:<10} {finding.detail}", flush=True)
            if finding.fix and finding.status != "ok":
                print(f"{'':21}fix: {finding.fix}")
            failed += finding.status in blocking
    print(f"\n{failed} finding(s) block the notebooks{' offline' if offline else ''}: fix them before the workshop."
          if failed else "\nNothing blocks the notebooks" + (" offline." if offline else " (online)."))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check this machine before a workshop (nothing is changed).")
    parser.add_argument("--offline", action="store_true",
                        help="the room has no internet: missing ImageNet weights (Keras' or KerasHub's) block too")
    args = parser.parse_args(argv)
    return run(CHECKS, offline=args.offline)


if __name__ == "__main__":
    sys.exit(main())
