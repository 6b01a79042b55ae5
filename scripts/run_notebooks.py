"""The main job: execute every notebook top to bottom with papermill (``make run``).

Usage, from the repository root (``make run`` calls it)::

    python scripts/run_notebooks.py                 # ImageNet weights (downloads once)
    python scripts/run_notebooks.py --weights none  # random weights, offline
    python scripts/run_notebooks.py --weights ~/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5
    python scripts/run_notebooks.py --param EPOCHS 2 notebooks/01_single_dense_head.ipynb

Executed copies go to ``build/notebooks/``. The weights are resolved before the
first notebook starts (Keras' ResNet50 file, and KerasHub's preset when notebook 06
runs), so an offline machine stops at once with a message that says what to do
instead of failing deep inside a notebook.

The terminal shows one line per notebook and real errors. What the kernels print
outside the notebooks (Jupyter's transport warning, TensorFlow's C++ start-up lines
such as the ``cuInit`` probe on a machine without an NVIDIA GPU) goes to a log file,
``build/run.log`` by default, which the output names; those lines stay out of the
executed notebooks too.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime
import json
import os
import platform
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

# Before tlhelpers imports TensorFlow: its C++ start-up lines off, here and in the kernels (they inherit it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tlhelpers.kerashub import PRESET, cached_preset  # noqa: E402
from tlhelpers.model import WeightsError, resolve_weights  # noqa: E402

# With random weights (--weights none) the notebooks run at these parameters unless --param says otherwise; the
# tests run them too (tests/conftest.py). Random ResNet50 features of any two bundled images point in nearly the
# same direction, so a head needs many optimizer steps to find the small differences that tell the classes apart:
# the teaching defaults give 01's head 15 (5 epochs of 3 batches of 32 images) and it stays at chance. At 64 x 64
# pixels, 20 epochs of batches of 16 (120 steps) cost less than 5 epochs at 224 x 224.
OFFLINE_PARAMETERS = {"IMAGE_SIZE": 64, "BATCH_SIZE": 16, "EPOCHS": 20}
# On those features most ReLU units of the MLP head die at its teaching learning rate of 1e-3 (a large step pushes
# a unit's input below zero for every image at once), so it trains at 1e-4, for more epochs.
OFFLINE_NOTEBOOK_PARAMETERS = {"02_mlp_dropout_head": {"LEARNING_RATE": 1e-4, "EPOCHS": 30}}


def offline_parameters(notebook: Path) -> dict[str, object]:
    """The parameters a notebook runs at with random weights, below any given with --param."""
    return {**OFFLINE_PARAMETERS, **OFFLINE_NOTEBOOK_PARAMETERS.get(notebook.stem, {})}


def _value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _kaggle_answers(timeout: float = 5) -> bool:
    """Whether Kaggle answers at all (any HTTP status), through the proxies the environment sets now."""
    try:  # an opener of its own: urlopen's shared one keeps the proxies of its first call for the process's life
        urllib.request.build_opener().open(urllib.request.Request("https://www.kaggle.com", method="HEAD"),
                                           timeout=timeout)
    except urllib.error.HTTPError:
        return True
    except OSError:  # no route, no name, refused, timed out
        return False
    return True


def kerashub_problem(notebooks: list[Path], parameters: dict[str, object]) -> str | None:
    """Why notebook 06 would stop with a connection error after the others ran, or ``None``: it loads a KerasHub
    preset's trained weights, kagglehub's cache lacks some of its files, and Kaggle does not answer."""
    preset = str(parameters.get("PRESET", PRESET))
    hub = [nb.name for nb in notebooks if nb.is_file() and "import keras_hub" in nb.read_text()]
    if not hub or parameters.get("WEIGHTS") is None or Path(preset).is_dir():  # random weights build offline
        return None
    try:
        cache, handle, missing = cached_preset(preset)
    except (ImportError, KeyError):  # no hub extra, or not a preset name: the notebook says so itself
        return None
    if not missing or _kaggle_answers():
        return None
    return (f"{', '.join(hub)} loads KerasHub's {preset} preset, kagglehub's cache at {cache.get_path(handle)} "
            f"lacks {', '.join(missing)}, and Kaggle does not answer from here. Run it once online (`make doctor` "
            "says what to copy for a room without internet), run with random weights (make run WEIGHTS=none), "
            "or name the other notebooks: python scripts/run_notebooks.py notebooks/0[1-5]*.ipynb")


# What an executed notebook must not carry, because a learner cannot act on it: Jupyter's transport warning,
# TensorFlow's C++ log lines (the cuInit probe on a machine without an NVIDIA GPU, "E0000 ..." /
# "2026-...: E ..."), and TensorFlow's Python warnings, such as "5 out of the last 5 calls to ...
# triggered tf.function retracing". The runner reports them after each notebook; the tests assert none.
NOISE = re.compile(r"without encryption|eavesdropping|cuInit|cuda_platform|"
                   r"^[EWIF]\d{4} \d\d:|^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [EWIF] ", re.MULTILINE)
TF_WARNING = re.compile(r"WARNING:tensorflow")


def unwanted_output(executed: Path) -> list[str]:
    """Each stream output line of an executed notebook that matches NOISE or TF_WARNING, with its cell's number."""
    import nbformat

    found = []
    for number, cell in enumerate(nbformat.read(executed, as_version=4).cells):
        for output in cell.get("outputs", []):
            text = output.get("text", "") if output.get("output_type") == "stream" else ""
            found += [f"cell {number}: {line.strip()[:200]}" for line in text.splitlines()
                      if NOISE.search(line) or TF_WARNING.search(line)]
    return found


# Kernel output written straight to file descriptor 2 (C++ logs) goes to the kernel's stderr,
# that is the log file, instead of into the cell that happens to be running.
KERNEL_ARGUMENTS = ["--IPKernelApp.capture_fd_output=False"]


@contextlib.contextmanager
def _stderr_to(log_file: Path | None) -> Iterator[None]:
    """Send this process's file descriptor 2, which the kernels inherit, to ``log_file``."""
    if log_file is None:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with log_file.open("a") as log:
            os.dup2(log.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


RUN_RECORD = "run.json"


def _cpu_name() -> str:
    """The processor's model name (Linux /proc/cpuinfo, macOS sysctl), else what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    with contextlib.suppress(Exception):
        import subprocess

        return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                               timeout=5, check=True).stdout.strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, object]:
    """Where the notebooks run: processor, cores, the GPUs TensorFlow sees, system, and package versions."""
    from importlib.metadata import PackageNotFoundError, version

    import tensorflow as tf  # already imported by tlhelpers

    versions = {"python": platform.python_version()}
    for package in ("tensorflow", "keras", "keras-hub"):
        with contextlib.suppress(PackageNotFoundError):
            versions[package] = version(package)
    return {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
        "system": f"{platform.system()} {platform.machine()}",
        "versions": versions,
    }


def record_run(out_dir: Path, notebook: Path, seconds: float, parameters: dict[str, object],
               about: dict[str, object]) -> Path:
    """Add one executed notebook to ``out_dir/run.json``: its time, parameters, weights, date and machine.

    The book's provenance lines and run-time columns read this record; a notebook run again replaces its entry.
    """
    record_file = out_dir / RUN_RECORD
    try:
        record = json.loads(record_file.read_text())
    except (OSError, ValueError):
        record = {}
    notebooks = record.get("notebooks", {}) if isinstance(record, dict) else {}
    notebooks[notebook.stem] = {
        "seconds": round(seconds, 1),
        "weights": "random" if parameters.get("WEIGHTS") is None else str(parameters["WEIGHTS"]),
        "parameters": {name: value for name, value in parameters.items() if name != "WEIGHTS"},
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": about,
    }
    record_file.write_text(json.dumps({"notebooks": dict(sorted(notebooks.items()))}, indent=1) + "\n")
    return record_file


def run_notebooks(
    notebooks: list[Path],
    out_dir: Path,
    parameters: dict[str, object],
    log_output: bool = False,
    log_file: Path | None = None,
    defaults: Callable[[Path], dict[str, object]] | None = None,
) -> list[Path]:
    """Execute each notebook with papermill in its own folder; return the executed copies.

    Prints one line per notebook: which one, how long it took, where the executed copy is; records the time,
    parameters, weights, date and machine of each in ``out_dir/run.json`` (:func:`record_run`).

    Args:
        notebooks: The ``.ipynb`` files, run in this order.
        out_dir: Where the executed copies are written (created if needed).
        parameters: Values injected after each notebook's ``parameters`` cell.
        log_output: Stream the cells' output to the terminal while they run.
        log_file: Where the kernels' own messages go (appended); ``None`` leaves them on stderr.
        defaults: Each notebook's parameters below ``parameters`` (e.g. :func:`offline_parameters`).

    Returns:
        The paths of the executed notebooks.

    Raises:
        papermill.PapermillExecutionError: If a cell fails; the executed copy
            up to that cell is still written.
    """
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    with _stderr_to(log_file):  # TensorFlow's device probe logs a cuInit line on a machine without NVIDIA GPU
        about = machine()
    written = []
    for number, notebook in enumerate(notebooks, 1):
        target = out_dir / notebook.name
        print(f"[{number}/{len(notebooks)}] running {notebook} ...", flush=True)
        start = time.perf_counter()
        if log_file is not None:
            with log_file.open("a") as log:
                log.write(f"--- {notebook}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        given = {**(defaults(notebook) if defaults else {}), **parameters}
        with _stderr_to(log_file):
            papermill.execute_notebook(
                str(notebook), str(target), parameters=given,
                cwd=str(notebook.resolve().parent),
                kernel_name="python3", log_output=log_output, progress_bar=False,
                extra_arguments=KERNEL_ARGUMENTS,
            )
        seconds = time.perf_counter() - start
        print(f"[{number}/{len(notebooks)}] executed {notebook} in {seconds:.0f} s -> {target}", flush=True)
        record_run(out_dir, notebook, seconds, given, about)
        for line in unwanted_output(target):
            print(f"    {target.name} carries output a learner cannot act on (please report it): {line}", flush=True)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute every notebook with papermill.")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--weights", default="imagenet", help="imagenet (default), none, or a path to an .h5 file")
    parser.add_argument("--out", type=Path, default=Path("build/notebooks"), help="default: build/notebooks")
    parser.add_argument("--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a notebook parameter, e.g. --param EPOCHS 2 (repeatable)")
    parser.add_argument("--own-parameters", action="store_true",
                        help="with random weights too, run at the notebooks' own parameters (224 x 224 ...), where "
                             "their heads stay near chance, instead of the offline ones")
    parser.add_argument("--log-output", action="store_true", help="stream cell output to the terminal")
    parser.add_argument("--log", type=Path, default=Path("build/run.log"),
                        help="where kernel and TensorFlow start-up messages go (default: build/run.log)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(Path("notebooks").glob("*.ipynb"))
    if not notebooks:
        print("no notebooks found: run this from the repository root or name the notebooks", file=sys.stderr)
        return 2
    try:
        weights = resolve_weights(args.weights)
    except WeightsError as error:
        print(f"make run: {error}", file=sys.stderr)
        return 2
    if weights not in (None, "imagenet"):
        weights = str(Path(weights).resolve())
    parameters = {"WEIGHTS": weights, **{name: _value(value) for name, value in args.param}}
    problem = kerashub_problem(notebooks, parameters)
    if problem:
        print(f"make run: {problem}", file=sys.stderr)
        return 2
    defaults = offline_parameters if weights is None and not args.own_parameters else None
    given = {name for name, _ in args.param}
    shown = ", ".join(f"{k}={v}" for k, v in OFFLINE_PARAMETERS.items() if k not in given)
    special = "; ".join(f"{stem[:2]} at " + ", ".join(f"{k}={v}" for k, v in values.items() if k not in given)
                        for stem, values in OFFLINE_NOTEBOOK_PARAMETERS.items() if set(values) - given)
    if defaults and (shown or special):  # say what the runner chose, not what --param did
        print(f"random weights: the notebooks run at {shown or 'your parameters'}{f' ({special})' if special else ''}"
              ", where a head on random features learns the bundled shapes; --param NAME VALUE overrides, "
              "--own-parameters turns this off", flush=True)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    args.log.write_text("")
    print(f"kernel and TensorFlow start-up messages go to {args.log}", flush=True)
    from papermill.exceptions import PapermillExecutionError

    try:
        written = run_notebooks(notebooks, args.out, parameters, log_output=args.log_output, log_file=args.log,
                                defaults=defaults)
    except PapermillExecutionError as error:  # names the cell, the exception and its traceback
        print(f"\nmake run: a cell failed. {error}".rstrip(), file=sys.stderr)
        print(f"The executed copy up to that cell is in {args.out}/; kernel messages are in {args.log}.",
              file=sys.stderr)
        return 1
    print(f"\n{len(written)} executed notebook(s) with their outputs are in {args.out.resolve()}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
