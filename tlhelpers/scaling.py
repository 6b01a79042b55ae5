"""More than one GPU, mixed precision and XLA, with TensorFlow's own tools (taught in notebook 05).

The pattern, in a notebook::

    strategy = tlhelpers.get_strategy()        # first: before the data and any model
    tlhelpers.configure_precision(MIXED_PRECISION)
    global_batch_size = BATCH_SIZE * strategy.num_replicas_in_sync   # BATCH_SIZE per replica
    data = tlhelpers.load_image_folder(DATA_DIR, batch_size=global_batch_size, ...)
    with strategy.scope():                     # build or load every model, and compile, inside the scope
        base_model = tlhelpers.build_base_model(IMAGE_SIZE, WEIGHTS)
        ...
        outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer, loss, metrics=["accuracy"], jit_compile=XLA)  # XLA = "auto", Keras' default
    tlhelpers.check_in_scope(model, strategy)
    tlhelpers.check_float32_output(model)

* **Batch size.** ``fit`` splits each batch of the dataset over the replicas, so
  the pipeline batches ``BATCH_SIZE * strategy.num_replicas_in_sync`` images and
  each device keeps ``BATCH_SIZE``. That is why the strategy comes before the data.
* **Several machines.** ``tf.distribute.MultiWorkerMirroredStrategy`` follows the
  same pattern, with a ``TF_CONFIG`` environment variable on each worker, set
  before the strategy is created (``tests/test_multiworker.py`` runs two workers).
* **Mixed precision** computes in float16 and keeps the weights in float32.
  ``compile`` then wraps the optimizer in a ``LossScaleOptimizer`` by itself. The
  softmax must compute in float32 (``dtype="float32"`` on the last layer): in
  float16 probabilities round off and the loss can overflow. It pays off on
  GPUs with Tensor Cores (compute capability 7.0 or higher).
* **XLA** compiles the training step into fused kernels: ``compile(...,
  jit_compile=True)``. Keras' default, ``"auto"``, turns it on when TensorFlow
  sees a GPU, no ``tf.distribute`` strategy is in scope and every layer supports
  it, and off on a CPU-only machine or under a strategy; pass ``True`` or
  ``False`` to choose. The first step is slower (compilation).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import keras
import tensorflow as tf


def get_strategy(devices: Sequence[str] | None = None, verbose: bool = True) -> tf.distribute.Strategy:
    """Return a ``MirroredStrategy`` over several devices, or the default strategy on one.

    Call it before building any model; build and compile inside ``strategy.scope()``.
    It starts TensorFlow's runtime, so set GPU options (memory growth, logical
    devices) before calling it.

    Args:
        devices: The devices to mirror over, e.g. ``["/gpu:0", "/gpu:1"]`` or two
            logical CPUs ``["/cpu:0", "/cpu:1"]``. ``None`` takes every visible GPU
            when there are at least two.
        verbose: Print which strategy was chosen and over which devices.

    Returns:
        ``tf.distribute.MirroredStrategy`` (one replica per device, weights copied
        on each, gradients summed) or, on one GPU or a CPU, the default strategy
        ``tf.distribute.get_strategy()`` (one replica; its ``scope()`` changes nothing).
    """
    if devices is None:
        gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
        devices = gpus if len(gpus) >= 2 else None
    if devices:
        strategy = tf.distribute.MirroredStrategy(devices=list(devices))
        message = f"MirroredStrategy over {strategy.num_replicas_in_sync} devices: {', '.join(devices)}"
    else:
        strategy = tf.distribute.get_strategy()
        gpus = tf.config.list_logical_devices("GPU")
        message = f"the default strategy on one device: {gpus[0].name if gpus else 'the CPU'}"
    if verbose:
        print(f"Using {message}")
    return strategy


def configure_precision(mixed: bool) -> str:
    """Set Keras' global dtype policy: ``"mixed_float16"`` on a GPU when asked, else ``"float32"``.

    Call it before building the model: layers take the policy that is set when
    they are created.

    Args:
        mixed: Ask for mixed precision. Without a GPU it is refused with a
            warning (float16 on a CPU is slower, not faster) and float32 is kept.

    Returns:
        The name of the policy now in effect, ``"mixed_float16"`` or ``"float32"``.
    """
    policy = "float32"
    if mixed:
        if tf.config.list_logical_devices("GPU"):
            policy = "mixed_float16"
        else:
            warnings.warn("mixed precision needs a GPU; no GPU is visible, so the model stays in float32",
                          stacklevel=2)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def check_float32_output(model: keras.Model) -> None:
    """Check that every output of ``model`` is float32, as a softmax under mixed precision must be.

    Args:
        model: A built model.

    Raises:
        ValueError: If an output is in another dtype; the message names the
            layer and the fix, ``dtype="float32"`` on the last layer.
    """
    names = getattr(model, "output_names", None) or [model.layers[-1].name]  # Sequential: one output
    for tensor, name in zip(model.outputs, names, strict=True):
        if tensor.dtype != "float32":
            raise ValueError(f"output {name!r} of model {model.name!r} is {tensor.dtype}; give the last layer "
                             "dtype='float32', e.g. keras.layers.Dense(num_classes, activation='softmax', "
                             "dtype='float32'), so the softmax and the loss compute in float32")


def check_in_scope(model: keras.Model, strategy: tf.distribute.Strategy) -> None:
    """Check that every variable of ``model`` was created inside ``strategy.scope()``.

    Under a ``MirroredStrategy`` a variable created inside the scope is mirrored,
    one copy per device kept in sync; one created outside (a model built or
    loaded before ``with strategy.scope():``) is an ordinary variable on one
    device. Under the default strategy every variable passes.

    Args:
        model: A built model.
        strategy: The strategy its training runs under.

    Raises:
        ValueError: If a variable is not distributed; the message names up to
            three of them and says to build or load the model inside the scope.
    """
    with strategy.scope():
        if not tf.distribute.has_strategy():  # the default strategy: nothing is distributed, nothing needs to be
            return
    outside = [variable.path for variable in model.variables
               if not isinstance(getattr(variable, "value", variable), tf.distribute.DistributedValues)]
    if outside:
        raise ValueError(f"{len(outside)} variables of model {model.name!r} were created outside "
                         f"{type(strategy).__name__}.scope(), e.g. {', '.join(outside[:3])}; build or load every "
                         "model (and the head you reuse) inside `with strategy.scope():`")
