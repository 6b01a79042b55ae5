"""tlhelpers.scaling: the strategy picker (mirrored on two logical CPUs), precision policy and its check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import keras
import pytest
import tensorflow as tf

from tests.notebook05 import run_notebook
from tlhelpers.scaling import check_float32_output, check_in_scope, configure_precision, get_strategy

ROOT = Path(__file__).resolve().parents[1]

# Logical devices must be set before TensorFlow starts its runtime, which this test process
# has already done; so the mirrored run gets a fresh interpreter.
MIRRORED_RUN = textwrap.dedent("""
    import json

    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras

    from tlhelpers.finetune import unfreeze_from
    from tlhelpers.model import build_base_model
    from tlhelpers.scaling import check_in_scope, get_strategy

    keras.utils.set_random_seed(0)
    strategy = get_strategy(devices=["/cpu:0", "/cpu:1"])
    with strategy.scope():
        base_model = build_base_model((32, 32), weights=None)
        unfreeze_from(base_model, "conv5")
        inputs = keras.Input((32, 32, 3))
        features = keras.layers.GlobalAveragePooling2D()(base_model(inputs))
        outputs = keras.layers.Dense(2, activation="softmax", dtype="float32")(features)
        model = keras.Model(inputs, outputs)
        model.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy", jit_compile=False)
    check_in_scope(model, strategy)
    outside = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="outside")  # built outside the scope
    try:
        check_in_scope(outside, strategy)
        refused = ""
    except ValueError as error:
        refused = str(error)
    kernel = base_model.get_layer("resnet50").get_layer("conv5_block3_3_conv").kernel
    # compile -> evaluate -> unfreeze -> fit without a new compile: under a strategy evaluate has built the
    # optimizer for the old trainable weights, so fit refuses the new ones (notebook 05, "Recompile ...").
    with strategy.scope():
        toy = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="first"), keras.layers.Dense(2)])
        toy.get_layer("first").trainable = False
        toy.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    x_toy, y_toy = np.random.default_rng(0).normal(size=(16, 4)).astype("float32"), np.arange(16) % 2
    toy.evaluate(x_toy, y_toy, verbose=0)
    toy.get_layer("first").trainable = True
    try:
        toy.fit(x_toy, y_toy, verbose=0)
        unfreeze_after_evaluate = "trained"
    except ValueError as error:
        unfreeze_after_evaluate = str(error).splitlines()[0]
    before = kernel.numpy().copy()
    images = np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    batches = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(images).batch(8))
    shares = [int(t.shape[0]) for t in strategy.experimental_local_results(next(iter(batches)))]
    labels = np.array([0, 1] * 8)
    history = model.fit(images, labels, batch_size=8, epochs=1, verbose=0)  # 2 steps, 4 images per replica
    print(json.dumps({
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "model_strategy_is_it": model.distribute_strategy is strategy,
        "mirrored_kernel": isinstance(kernel.value, tf.distribute.DistributedValues),
        "loss": float(history.history["loss"][-1]),
        "kernel_moved": bool(not np.array_equal(before, kernel.numpy())),
        "outside_distributed": isinstance(outside.layers[0].kernel.value, tf.distribute.DistributedValues),
        "refused": refused,
        "unfreeze_after_evaluate": unfreeze_after_evaluate,
        "shares": shares,
    }))
""")


@pytest.fixture
def restore_policy() -> Iterator[None]:
    policy = keras.mixed_precision.global_policy()
    yield
    keras.mixed_precision.set_global_policy(policy)


def test_mirrored_strategy_trains_on_two_logical_cpus() -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run([sys.executable, "-c", MIRRORED_RUN], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    printed, result = run.stdout.splitlines(), json.loads(run.stdout.splitlines()[-1])
    assert printed[0] == "Using MirroredStrategy over 2 devices: /cpu:0, /cpu:1"
    assert result["strategy"] == "MirroredStrategy" and result["replicas"] == 2
    assert result["model_strategy_is_it"] and result["mirrored_kernel"]
    assert result["loss"] > 0 and result["kernel_moved"]
    assert not result["outside_distributed"]
    assert result["refused"].startswith("2 variables of model 'outside' were created outside MirroredStrategy.scope()")
    assert "build or load every model" in result["refused"]
    assert result["unfreeze_after_evaluate"].startswith("Unknown variable"), result["unfreeze_after_evaluate"]
    assert result["shares"] == [4, 4], "a dataset batch of 8 is the global batch: 4 images for each of 2 replicas"


def test_check_in_scope_accepts_anything_under_the_default_strategy() -> None:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    check_in_scope(model, tf.distribute.get_strategy())


def test_without_devices_it_mirrors_two_or_more_gpus_else_takes_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    """Holds on any machine: no GPU, one GPU or several (the branch is chosen by what is visible)."""
    gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
    strategy = get_strategy()
    printed = capsys.readouterr().out
    if len(gpus) >= 2:
        assert isinstance(strategy, tf.distribute.MirroredStrategy)
        assert strategy.num_replicas_in_sync == len(gpus)
        assert printed.startswith(f"Using MirroredStrategy over {len(gpus)} devices")
    else:
        assert strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy()
        assert strategy.num_replicas_in_sync == 1
        with strategy.scope():
            assert not tf.distribute.has_strategy(), "the default strategy's scope changes nothing"
        device = gpus[0] if gpus else "the CPU"
        assert printed == f"Using the default strategy on one device: {device}\n"


def test_mixed_precision_is_granted_on_a_gpu_and_refused_without(restore_policy: None) -> None:
    if tf.config.list_logical_devices("GPU"):
        assert configure_precision(True) == "mixed_float16"
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
    else:
        with pytest.warns(UserWarning, match="mixed precision needs a GPU"):
            assert configure_precision(True) == "float32"
        assert keras.mixed_precision.global_policy().name == "float32"
    assert configure_precision(False) == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"


def test_a_float16_softmax_is_caught(restore_policy: None) -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")  # building is fine on a CPU; only speed needs a GPU
    inputs = keras.Input((8,))
    careless = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="probs")(inputs))
    careful = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", dtype="float32")(inputs))
    with pytest.raises(ValueError, match="output 'probs' .* is float16; give the last layer dtype='float32'"):
        check_float32_output(careless)
    check_float32_output(careful)


def test_notebook_05_runs_under_a_mirrored_strategy_on_two_logical_cpus(tmp_path: Path) -> None:
    """Every model of notebook 05 is built or loaded in the scope, and the data comes in global batches."""
    two_cpus = ('import tensorflow as tf\n'
                'cpu = tf.config.list_physical_devices("CPU")[0]\n'
                'tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)')
    mirrored = ("strategy = tlhelpers.get_strategy()",
                'strategy = tlhelpers.get_strategy(devices=["/cpu:0", "/cpu:1"])')
    run = run_notebook(tmp_path, edits=(mirrored,), first_cell=two_cpus)
    assert run.error is None, run.error
    text = run.text()
    assert "Using MirroredStrategy over 2 devices: /cpu:0, /cpu:1" in text
    assert "2 replica(s): the pipeline batches 32 images, 16 per replica" in text
    assert "BatchNorm moving statistics and frozen lower weights unchanged" in text
    assert "the reloaded model predicts the same" in text
