"""Seeds, results recording and where files go, shared by every notebook (taught in notebook 01)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

RESULTS_MIME = "application/vnd.tlhelpers.results+json"
_CHECKOUT = Path(__file__).resolve().parents[1]


def default_dir(name: str, env: str | None = None, in_checkout: str = "build") -> Path:
    """Return where tlhelpers keeps ``name`` (feature caches, downloads).

    ``$env`` if that environment variable is set; else ``<repository>/<in_checkout>/<name>``
    when the package runs from a checkout of this repository (as ``make`` installs it);
    else ``~/.cache/tlhelpers/<name>``.
    """
    if env and os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    if (_CHECKOUT / "pyproject.toml").is_file():
        return _CHECKOUT / in_checkout / name
    return Path.home() / ".cache" / "tlhelpers" / name


def seed_everything(seed: int, deterministic_ops: bool = False) -> None:
    """Seed Python's ``random``, NumPy and TensorFlow in one call.

    Args:
        seed: The seed. The same seed gives the same split, the same initial
            head weights and the same shuffling order.
        deterministic_ops: Also ask TensorFlow for deterministic kernels
            (``tf.config.experimental.enable_op_determinism``). Slower; use it
            when you need bit-identical reruns, not for teaching.
    """
    keras.utils.set_random_seed(seed)
    if deterministic_ops:
        tf.config.experimental.enable_op_determinism()


def record_results(**metrics: float | int | str) -> dict[str, Any]:
    """Show a notebook's headline numbers and record them for the tests.

    The values are displayed as a small table and also stored in the executed
    notebook under the MIME type ``application/vnd.tlhelpers.results+json``,
    which ``tests/test_notebooks.py`` reads back.

    Args:
        **metrics: Name and value of each number, e.g. ``test_accuracy=0.93`` (the test split, measured once).

    Returns:
        The metrics as a plain ``dict`` (floats rounded to 4 decimals).

    Raises:
        ValueError: If a value is a float that is NaN or infinite.
    """
    from IPython.display import display

    clean: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, float) or hasattr(value, "dtype"):
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"result {name!r} is {value}; training diverged or produced no metric")
            value = round(value, 4)
        clean[name] = value
    text = "\n".join(f"{name:>24}: {value}" for name, value in clean.items())
    display({RESULTS_MIME: json.loads(json.dumps(clean)), "text/plain": text}, raw=True)
    return clean
