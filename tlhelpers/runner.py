"""The main job: execute every notebook top to bottom with papermill (``make run``).

Usage, from the repository root::

    python -m tlhelpers.runner                       # ImageNet weights (downloads once)
    python -m tlhelpers.runner --weights none        # random weights, offline
    python -m tlhelpers.runner --weights ~/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5
    python -m tlhelpers.runner --param EPOCHS 2 notebooks/01_single_dense_head.ipynb

Executed copies go to ``build/notebooks/``. The weights are resolved before the
first notebook starts, so an offline machine stops at once with a message that
says what to do instead of failing deep inside a notebook.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

from tlhelpers.model import WeightsError, resolve_weights


def _value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def run_notebooks(
    notebooks: list[Path],
    out_dir: Path,
    parameters: dict[str, object],
    log_output: bool = False,
) -> list[Path]:
    """Execute each notebook with papermill in its own folder; return the executed copies.

    Args:
        notebooks: The ``.ipynb`` files, run in this order.
        out_dir: Where the executed copies are written (created if needed).
        parameters: Values injected after each notebook's ``parameters`` cell.
        log_output: Stream the cells' output to the terminal while they run.

    Returns:
        The paths of the executed notebooks.

    Raises:
        papermill.PapermillExecutionError: If a cell fails; the executed copy
            up to that cell is still written.
    """
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for notebook in notebooks:
        target = out_dir / notebook.name
        start = time.perf_counter()
        papermill.execute_notebook(
            str(notebook), str(target), parameters=parameters, cwd=str(notebook.resolve().parent),
            kernel_name="python3", log_output=log_output, progress_bar=False,
        )
        print(f"executed {notebook} in {time.perf_counter() - start:.0f} s -> {target}", flush=True)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute every notebook with papermill.")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--weights", default="imagenet", help="imagenet (default), none, or a path to an .h5 file")
    parser.add_argument("--out", type=Path, default=Path("build/notebooks"), help="default: build/notebooks")
    parser.add_argument("--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a notebook parameter, e.g. --param EPOCHS 2 (repeatable)")
    parser.add_argument("--log-output", action="store_true", help="stream cell output to the terminal")
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
    written = run_notebooks(notebooks, args.out, parameters, log_output=args.log_output)
    print(f"\n{len(written)} executed notebook(s) with their outputs are in {args.out.resolve()}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
