"""tlhelpers.runtime: seeds and the results the notebook tests read back."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from tlhelpers.runtime import RESULTS_MIME, record_results, seed_everything


def test_seed_everything_repeats_random_draws() -> None:
    seed_everything(7)
    first = (np.random.rand(),  # noqa: NPY002 (the legacy global generator is what seeds protect)
              keras.random.uniform((3,)).numpy())
    seed_everything(7)
    second = (np.random.rand(),  # noqa: NPY002
               keras.random.uniform((3,)).numpy())
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])


def test_record_results_displays_a_machine_readable_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    result = record_results(val_accuracy=np.float32(0.87654), epochs=3, weights="None")
    assert result == {"val_accuracy": 0.8765, "epochs": 3, "weights": "None"}
    assert shown[0][RESULTS_MIME] == result
    assert "val_accuracy: 0.8765" in shown[0]["text/plain"]


def test_record_results_refuses_nan() -> None:
    with pytest.raises(ValueError, match="'val_loss' is nan"):
        record_results(val_loss=math.nan)
