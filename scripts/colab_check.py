"""Execute every notebook at the test parameters on Google Colab's package versions (`make test-colab`).

In Colab the notebooks' first cell installs tlhelpers with ``--no-deps``, so they run on Colab's
TensorFlow, Keras, NumPy... rather than on uv.lock. This script builds a separate environment
(``build/colab-env/``) with uv from ``constraints/colab.txt``, then runs the main job's runner in it
with the parameters the tests use (``tests/conftest.py``). It exits non-zero if the environment
cannot be built or any notebook fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import NOTEBOOKS, notebook_parameters  # noqa: E402


def _uv() -> str:
    found = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        sys.exit("colab_check: uv not found; run it through `make test-colab`")
    return found


def build_env(env: Path, constraints: Path) -> Path:
    """Create ``env`` with Colab's pins; return its Python."""
    uv = _uv()
    python = env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # Colab's Python 3.13 where uv finds one on this machine (it does not download it), else this one
    found = subprocess.run([uv, "python", "find", "3.13"], capture_output=True, text=True)
    interpreter = found.stdout.strip() if found.returncode == 0 else getattr(sys, "_base_executable", sys.executable)
    subprocess.run([uv, "venv", "--quiet", "--allow-existing", "--python", interpreter, str(env)], check=True)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), "-c", str(constraints),
                    "-e", f"{ROOT}[notebooks]"], check=True)
    return python


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
    # Notebook 06 needs keras-hub, which requires Keras 3.15 or newer: in Colab its first cell installs
    # keras-hub, and with it a newer Keras, so it cannot run on Colab's own Keras as the others do.
    skipped = [notebook for notebook in NOTEBOOKS if "import keras_hub" in notebook.read_text()]
    for notebook in skipped:
        print(f"not run on Colab's versions: {notebook.name} (it installs keras-hub, which needs Keras >= 3.15)")
    groups: dict[str, list[Path]] = {}  # one runner per set of parameters, as in tests/test_notebooks.py
    for notebook in (nb for nb in NOTEBOOKS if nb not in skipped):
        groups.setdefault(repr(sorted(notebook_parameters(notebook).items())), []).append(notebook)
    failed = []
    for notebooks in groups.values():
        parameters = {**notebook_parameters(notebooks[0]), "OUTPUT_DIR": str(args.out / "outputs")}
        command = [str(python), "-m", "tlhelpers.runner", *map(str, notebooks), "--out", str(args.out / "notebooks"),
                   "--log", str(args.out / f"run-{notebooks[0].stem}.log"), "--weights", "none"]
        for name, value in parameters.items():
            if name != "WEIGHTS":
                command += ["--param", name, repr(value)]
        if subprocess.run(command, cwd=ROOT, env=env).returncode != 0:
            failed.append(", ".join(notebook.name for notebook in notebooks))  # the runner said which cell
    if failed:
        print(f"failed on Colab's versions, in the runs of: {'; '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(NOTEBOOKS) - len(skipped)} other notebooks ran on Colab's versions in "
          f"{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
