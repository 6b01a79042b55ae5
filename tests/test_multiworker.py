"""The recipe for several machines in docs/scaling.md, run as written by two worker processes on 127.0.0.1.

The ``python`` block that creates ``MultiWorkerMirroredStrategy`` in docs/scaling.md ("When one GPU is
not enough") is executed by each worker, between a prelude that sets its constants (tiny images,
random weights) and an epilogue that saves its weights. Each worker gets its own ``TF_CONFIG``
(the same cluster, its own index) before TensorFlow starts. Both must end with the same weights:
the strategy combines the gradients of every worker at each step.

The recipe trains with its own loop because ``model.fit`` fails under this strategy in Keras 3
(keras-team/keras#20585), as docs/scaling.md says; the second test checks that it still does, and
fails when a Keras upgrade fixes it: then docs/scaling.md can teach ``fit`` again.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.conftest import ROOT, write_image

PRELUDE = """
import sys

import keras
import numpy as np
import tensorflow as tf

import tlhelpers

DATA_DIR, OUT = sys.argv[1], sys.argv[2]
IMAGE_SIZE, BATCH_SIZE, WEIGHTS, EPOCHS = 32, 4, None, 2
"""
EPILOGUE = """
conv5 = base_model.get_layer("resnet50").get_layer("conv5_block3_3_conv").kernel.numpy()
np.savez(OUT, *[np.asarray(w) for w in model.get_weights()])
print("replicas", strategy.num_replicas_in_sync, "global_batch", global_batch_size,
      "conv5_norm", float(np.linalg.norm(conv5)), flush=True)
"""


def readme_recipe() -> str:
    """The multi-worker ``python`` block of docs/scaling.md."""
    page = (ROOT / "docs" / "scaling.md").read_text()
    section = page.split("## When one GPU is not enough", 1)[1].split("\n## ", 1)[0]
    blocks = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "MultiWorkerMirroredStrategy(" in b]
    assert len(blocks) == 1, "docs/scaling.md, 'When one GPU is not enough': one block with the multi-worker recipe"
    return blocks[0]


FIT = """
import keras
import numpy as np
import tensorflow as tf

strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
x, y = np.random.default_rng(0).normal(size=(16, 4)).astype("float32"), np.arange(16) % 2
try:
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=1, verbose=0)
    print("fit trained")
except ValueError as error:
    print("fit refused:", str(error).splitlines()[0])
"""


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_two_workers(script: Path, *args: str) -> list[str]:
    """Run ``script`` as worker 0 and worker 1 of one cluster on 127.0.0.1; return each one's stdout."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2",
               "CUDA_VISIBLE_DEVICES": ""}  # both workers share one host: CPUs only, no fight over GPUs
        command = [sys.executable, str(script), *(arg.format(index=index) for arg in args)]
        workers.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True))
    try:
        outputs = [worker.communicate(timeout=600) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-6000:]
    return [out for out, _ in outputs]


def test_two_workers_fine_tune_to_the_same_weights(tmp_path: Path) -> None:
    for name, colour in {"red": (200, 30, 30), "blue": (30, 30, 200)}.items():
        for i in range(10):
            write_image(tmp_path / "images" / name / f"{i}.png", colour)
    worker_script = tmp_path / "worker.py"
    worker_script.write_text(PRELUDE + readme_recipe() + EPILOGUE)
    outputs = run_two_workers(worker_script, str(tmp_path / "images"), str(tmp_path / "worker{index}.npz"))
    printed = [out.strip().splitlines()[-1].split() for out in outputs]
    for line in printed:
        assert line[:4] == ["replicas", "2", "global_batch", "8"], line
    assert printed[0] == printed[1], "the two workers end with different conv5 weights"

    weights = [np.load(tmp_path / f"worker{index}.npz") for index in range(2)]
    assert len(weights[0].files) == len(weights[1].files) > 0
    for key in weights[0].files:
        np.testing.assert_allclose(weights[0][key], weights[1][key], rtol=0, atol=1e-6, err_msg=key)


def test_keras_fit_under_multiworker_still_fails(tmp_path: Path) -> None:
    """What docs/scaling.md says of Keras 3.15: ``fit`` under MultiWorkerMirroredStrategy raises
    (keras-team/keras#20585)."""
    script = tmp_path / "fit.py"
    script.write_text(FIT)
    for out in run_two_workers(script):
        assert out.strip().splitlines()[-1].startswith("fit refused: Attempt to convert a value (PerReplica"), (
            f"{out[-500:]}\nfit now works under MultiWorkerMirroredStrategy: teach fit in docs/scaling.md's recipe")
