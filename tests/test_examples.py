"""examples/*.py: standalone copy-paste scripts train, save, and reload on the bundled data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.conftest import BUNDLED_DATA, ROOT
from tlhelpers import heads

EXAMPLES = {
    "dense_head": heads.dense_head,
    "mlp_dropout_head": heads.mlp_dropout_head,
    "conv1x1_head": heads.conv1x1_head,
}


def test_every_example_is_covered() -> None:
    assert sorted(p.stem for p in (ROOT / "examples").glob("*.py")) == sorted(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_trains_saves_and_reloads(name: str, tmp_path: Path) -> None:
    script = ROOT / "examples" / f"{name}.py"
    assert "tlhelpers" not in "\n".join(line for line in script.read_text().splitlines() if "import" in line), \
        "examples must depend on TensorFlow/Keras only"
    out = tmp_path / f"{name}.keras"
    done = subprocess.run(
        [sys.executable, str(script), str(BUNDLED_DATA), "--weights", "none", "--image-size", "64",
         "--epochs", "2", "--batch-size", "16", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "classes in label order: ['circle', 'square', 'star', 'triangle']" in done.stdout
    model = keras.models.load_model(out, safe_mode=True)
    heads.assert_same_architecture(model.get_layer("head"), EXAMPLES[name]((2, 2, 2048), 4))
    assert not model.get_layer("resnet50").trainable_weights, "the base must stay frozen"
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    probabilities = model.predict(images, verbose=0)
    assert probabilities.shape == (2, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_example_refuses_too_small_images(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "dense_head.py"), str(BUNDLED_DATA),
                           "--image-size", "16"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "minimum of 32" in done.stderr
