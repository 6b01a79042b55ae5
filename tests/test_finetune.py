"""tlhelpers.finetune: exactly the intended layers train, BatchNorm statistics and lower layers stay put."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from tlhelpers.finetune import class_names_path, find_resnet, reusable_head, unfreeze_from
from tlhelpers.model import build_base_model

SIZE = 32


@pytest.fixture
def base() -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_base_model((SIZE, SIZE), weights=None)


def convolutions(resnet: keras.Model, prefixes: tuple[str, ...]) -> list[str]:
    """The names of the Conv2D layers whose name starts with one of ``prefixes``, found without the helper."""
    return [layer.name for layer in resnet.layers
            if isinstance(layer, keras.layers.Conv2D) and layer.name.startswith(prefixes)]


def weight_paths(weights: list[keras.Variable]) -> set[str]:
    return {weight.path for weight in weights}


def test_conv5_by_default_trains_its_convolutions_and_nothing_else(base: keras.Model) -> None:
    resnet = base.get_layer("resnet50")
    expected = convolutions(resnet, ("conv5_",))
    assert len(expected) == 10  # 4 convolutions in conv5_block1 (with the shortcut), 3 in blocks 2 and 3

    trainable = unfreeze_from(base)

    assert trainable == expected
    assert base.trainable and resnet.trainable
    assert len(base.trainable_weights) == 2 * len(expected) == 20  # a kernel and a bias each
    assert weight_paths(base.trainable_weights) == {f"{name}/{w}" for name in expected for w in ("kernel", "bias")}
    batch_norms = [layer for layer in resnet.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(batch_norms) == 53 and not any(layer.trainable for layer in batch_norms)


@pytest.mark.parametrize(
    ("start", "prefixes"),
    [("conv4", ("conv4_", "conv5_")),
     ("conv5_block3_1_conv", ("conv5_block3_",)),
     ("conv1", ("conv",))],
)
def test_a_stage_or_a_layer_name_picks_the_first_layer(base: keras.Model, start: str, prefixes) -> None:
    expected = convolutions(find_resnet(base), prefixes)
    assert unfreeze_from(base, start) == expected
    assert len(base.trainable_weights) == 2 * len(expected)


def test_a_bare_resnet50_is_accepted_but_cannot_unfreeze_its_wrapper(base: keras.Model) -> None:
    resnet = base.get_layer("resnet50")
    assert unfreeze_from(resnet, "conv5") == convolutions(resnet, ("conv5_",))
    assert len(resnet.trainable_weights) == 20
    assert not base.trainable_weights, "a layer does not know its containers; that is why you pass base_model"


def test_calling_again_with_a_higher_start_freezes_the_rest_again(base: keras.Model) -> None:
    unfreeze_from(base, "conv3")
    assert unfreeze_from(base, "conv5") == convolutions(find_resnet(base), ("conv5_",))
    assert len(base.trainable_weights) == 20


def test_a_full_model_keeps_its_head_settings(base: keras.Model) -> None:
    frozen, head = keras.layers.Dense(4, name="frozen"), keras.layers.Dense(2, name="head")
    model = keras.Sequential([base, keras.layers.GlobalAveragePooling2D(), frozen, head])
    frozen.trainable = False

    unfreeze_from(model, "conv5")

    assert not frozen.trainable and head.trainable
    assert len(model.trainable_weights) == 20 + 2


def test_an_unknown_name_lists_the_stages_and_examples(base: keras.Model) -> None:
    with pytest.raises(ValueError) as error:
        unfreeze_from(base, "conv6")
    message = str(error.value)
    assert "'conv6'" in message and "conv1, conv2, conv3, conv4, conv5" in message
    assert "conv5_block1_1_conv" in message
    assert not base.trainable_weights, "a refused call must leave the model as it was"


def test_a_model_without_resnet50_is_refused() -> None:
    tiny = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)], name="tiny")
    with pytest.raises(ValueError, match="'tiny' holds no ResNet50"):
        unfreeze_from(tiny)


def test_fine_tuning_moves_conv5_only_and_keeps_batchnorm_statistics(base: keras.Model) -> None:
    resnet = base.get_layer("resnet50")
    unfreeze_from(base, "conv5")
    inputs = keras.Input((SIZE, SIZE, 3))
    features = keras.layers.GlobalAveragePooling2D()(base(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(features))
    model.compile(optimizer=keras.optimizers.Adam(1e-5), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, SIZE, SIZE, 3)).astype("float32")
    labels = np.array([0, 1] * 4)
    before = {weight.path: weight.numpy().copy() for weight in resnet.weights}

    model.fit(images, labels, batch_size=4, epochs=1, verbose=0)

    after = {weight.path: weight.numpy() for weight in resnet.weights}
    trained = weight_paths(base.trainable_weights)
    statistics = [path for path in before if path.endswith(("moving_mean", "moving_variance"))]
    assert len(statistics) == 2 * 53
    for path in statistics:
        np.testing.assert_array_equal(after[path], before[path], err_msg=f"{path} changed")
    for path in set(before) - trained:
        np.testing.assert_array_equal(after[path], before[path], err_msg=f"frozen {path} changed")
    changed = [path for path in trained if path.endswith("kernel") and not np.array_equal(after[path], before[path])]
    assert changed, "no conv5 kernel moved; the unfrozen weights did not train"


def saved_dense_model(path, base_model: keras.Model, class_names: list[str]) -> keras.Model:
    """What notebook 01 saves: base and a Dense head named "head" in one model, class names next to it."""
    head = keras.Sequential([keras.Input(base_model.output.shape[1:]), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(len(class_names), activation="softmax")], name="head")
    model = keras.Model(base_model.inputs, head(base_model.outputs[0]))
    model.save(path)
    class_names_path(path).write_text(json.dumps(class_names))
    return head


def test_a_saved_head_is_reused_only_for_the_same_classes_size_and_base(tmp_path, base: keras.Model) -> None:
    path = tmp_path / "resnet50_dense_head.keras"
    assert class_names_path(path) == tmp_path / "resnet50_dense_head.class_names.json"
    assert reusable_head(path, base, ["a", "b"]) == (None, f"no saved model at {path}")
    saved_head = saved_dense_model(path, base, ["a", "b"])

    head, reason = reusable_head(path, base, ["a", "b"])
    assert reason.startswith("reusing the head of") and head is not None
    for mine, theirs in zip(head.get_weights(), saved_head.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)

    head, reason = reusable_head(path, base, ["b", "a"])
    assert head is None and "trained on the classes ['a', 'b'], not on ['b', 'a']" in reason
    head, reason = reusable_head(path, build_base_model((SIZE + 32, SIZE + 32), weights=None), ["a", "b"])
    assert head is None and "takes images of shape (32, 32, 3), not (64, 64, 3)" in reason
    keras.utils.set_random_seed(1)
    head, reason = reusable_head(path, build_base_model((SIZE, SIZE), weights=None), ["a", "b"])
    assert head is None and "other weights than the base built here" in reason
    class_names_path(path).unlink()
    head, reason = reusable_head(path, base, ["a", "b"])
    assert head is None and "has no class names saved next to it" in reason


def test_notebook_05_reuses_a_compatible_saved_head_and_runs_to_the_end(tmp_path) -> None:
    """The branch that starts from notebook 01's head: a model saved with the same classes, size and base."""
    from tests.notebook05 import run_notebook

    build = "    base_model = tlhelpers.build_base_model((IMAGE_SIZE, IMAGE_SIZE), weights=WEIGHTS)\n"
    save_one = build + (
        "    os.makedirs(OUTPUT_DIR, exist_ok=True)  # what notebook 01 leaves behind, made here with this base\n"
        "    saved_head = keras.Sequential([keras.Input(base_model.output.shape[1:]),"
        " keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(num_classes, activation='softmax')], name='head')\n"
        "    saved_file = os.path.join(OUTPUT_DIR, 'resnet50_dense_head.keras')\n"
        "    keras.Model(base_model.inputs, saved_head(base_model.outputs[0])).save(saved_file)\n"
        "    tlhelpers.finetune.class_names_path(saved_file).write_text(json.dumps(class_names))\n"
    )
    run = run_notebook(tmp_path, edits=((build, save_one),))
    assert run.error is None, run.error
    text = run.text()
    assert f"reusing the head of {tmp_path / 'outputs' / 'resnet50_dense_head.keras'}" in text
    assert "training a single Dense head" not in text
    assert "the reloaded model predicts the same" in text
