"""Execute every notebook at the test parameters on Google Colab's package versions (`make test-colab`).

In Colab the notebooks' first cell installs tlhelpers with ``--no-deps``, so they run on Colab's
TensorFlow, Keras, NumPy... rather than on uv.lock. This script builds a separate environment
(``build/colab-env/``) with uv from ``constraints/colab.txt``, then runs the main job's runner in it
with the parameters the tests use (``tests/conftest.py``). Notebook 06 runs in a second one,
``build/colab-env-hub/``: Colab's pins plus the keras-hub its first cell installs there, with the
newer Keras keras-hub requires. It exits non-zero if an environment cannot be built or any
notebook fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import HUB_NOTEBOOKS, NOTEBOOKS, notebook_parameters  # noqa: E402


def _uv() -> str:
    found = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        sys.exit("colab_check: uv not found; run it through `make test-colab`")
    return found


def build_env(env: Path, constraints: Path, extra: tuple[str, ...] = ()) -> Path:
    """Create ``env`` with Colab's pins (and ``extra`` requirements); return its Python."""
    uv = _uv()
    python = env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # Colab's Python 3.13 where uv finds one on this machine (it does not download it), else this one
    found = subprocess.run([uv, "python", "find", "3.13"], capture_output=True, text=True)
    interpreter = found.stdout.strip() if found.returncode == 0 else getattr(sys, "_base_executable", sys.executable)
    subprocess.run([uv, "venv", "--quiet", "--allow-existing", "--python", interpreter, str(env)], check=True)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), "-c", str(constraints),
                    "-e", f"{ROOT}[notebooks]", *extra], check=True)
    return python


def hub_env(env: Path, constraints: Path) -> tuple[Path, str]:
    """Colab's pins plus what notebook 06's first cell installs in Colab: keras-hub (the version in
    requirements.lock), which brings the newer Keras it needs in place of Colab's. Returns its Python
    and the line that says what changed."""
    locked = re.search(r"^keras-hub==(\S+)$", (ROOT / "requirements.lock").read_text(), re.MULTILINE)
    if locked is None:
        sys.exit("colab_check: requirements.lock pins no keras-hub; run `make lock`")
    without_keras = env.parent / f"{env.name}-constraints.txt"
    without_keras.parent.mkdir(parents=True, exist_ok=True)
    without_keras.write_text("".join(line for line in constraints.read_text().splitlines(keepends=True)
                                     if not line.startswith("keras==")))
    python = build_env(env, without_keras, (f"keras-hub=={locked[1]}",))
    keras = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('keras'))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    return python, f"Colab's versions plus keras-hub {locked[1]}, which brings Keras {keras}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--constraints", type=Path, default=ROOT / "constraints" / "colab.txt")
    parser.add_argument("--env", type=Path, default=ROOT / "build" / "colab-env")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "colab")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    python = build_env(args.env, args.constraints)
    probe = subprocess.run(
        [str(python), "-c", "import sys, tensorflow as tf, keras, numpy, matplotlib, sklearn, PIL, ipykernel; "
         "print(f'Python {sys.version.split()[0]}, TensorFlow {tf.__version__}, Keras {keras.__version__}, '"
         "f'NumPy {numpy.__version__}, Matplotlib {matplotlib.__version__}, scikit-learn {sklearn.__version__}, '"
         "f'Pillow {PIL.__version__}, ipykernel {ipykernel.__version__}')"],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if probe.returncode != 0:
        print(f"the Colab environment in {args.env} cannot import the notebooks' packages:\n{probe.stderr[-3000:]}",
              file=sys.stderr)
        return 1
    versions = probe.stdout.strip()
    print(f"Colab versions ({args.constraints.name}), environment ready in {time.perf_counter() - start:.0f} s: "
          f"{versions}", flush=True)
    env = {**os.environ, "TLHELPERS_FEATURE_CACHE": str(args.out / "feature_cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("VIRTUAL_ENV", None)
    # Notebook 06 needs keras-hub, which requires a newer Keras than Colab's: in Colab its first cell
    # installs keras-hub, and with it that Keras. It runs here the same way, in an environment of its own.
    groups: dict[tuple, list[Path]] = {}  # one runner per environment and set of parameters, as in the tests
    for notebook in NOTEBOOKS:
        key = (notebook in HUB_NOTEBOOKS, repr(sorted(notebook_parameters(notebook).items())))
        groups.setdefault(key, []).append(notebook)
    failed = []
    for (needs_hub, _), notebooks in groups.items():
        runner = python
        if needs_hub:
            runner, what = hub_env(args.env.with_name(f"{args.env.name}-hub"), args.constraints)
            print(f"{', '.join(notebook.name for notebook in notebooks)}: {what}", flush=True)
        parameters = {**notebook_parameters(notebooks[0]), "OUTPUT_DIR": str(args.out / "outputs")}
        command = [str(runner), "scripts/run_notebooks.py", *map(str, notebooks), "--out", str(args.out / "notebooks"),
                   "--log", str(args.out / f"run-{notebooks[0].stem}.log"), "--weights", "none"]
        for name, value in parameters.items():
            if name != "WEIGHTS":
                command += ["--param", name, repr(value)]
        if subprocess.run(command, cwd=ROOT, env=env).returncode != 0:
            failed.append(", ".join(notebook.name for notebook in notebooks))  # the runner said which cell
    if failed:
        print(f"failed on Colab's versions, in the runs of: {'; '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(NOTEBOOKS)} notebooks ran on Colab's versions in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
