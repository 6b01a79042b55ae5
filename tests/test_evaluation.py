"""tlhelpers.evaluation: predictions stay aligned with labels; each figure shows what a learner reads."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest
import tensorflow as tf

from tlhelpers.evaluation import classification_table, paired_bootstrap, predict_dataset
from tlhelpers.plots import plot_confusion_matrix, plot_mistakes

CLASS_NAMES = ["circle", "square", "triangle"]


def teardown_function() -> None:
    plt.close("all")


def labelled_images(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Images whose pixel value says their label (label * 100), so alignment can be checked."""
    labels = np.arange(n) % 3
    images = np.repeat(labels.astype("float32") * 100, 8 * 8 * 3).reshape(n, 8, 8, 3)
    return images, labels


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(3, activation="softmax")])


def test_predict_dataset_keeps_labels_aligned_on_a_reshuffling_dataset() -> None:
    images, labels = labelled_images()
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(12, seed=1, reshuffle_each_iteration=True)
    model = tiny_model()
    got_labels, probabilities, got_images = predict_dataset(model, ds.batch(5), keep_images=True)
    assert got_labels.shape == (12,) and probabilities.shape == (12, 3) and got_images.shape == (12, 8, 8, 3)
    assert got_images.dtype == np.uint8
    np.testing.assert_array_equal(got_images[:, 0, 0, 0] // 100, got_labels)
    np.testing.assert_allclose(probabilities, model.predict(got_images.astype("float32"), verbose=0), rtol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_predict_dataset_keeps_no_images_unless_asked() -> None:
    images, labels = labelled_images()
    result = predict_dataset(tiny_model(), tf.data.Dataset.from_tensor_slices((images, labels)).batch(4))
    assert result.images is None and len(result.labels) == 12


def test_predict_dataset_refuses_an_empty_dataset() -> None:
    empty = tf.data.Dataset.from_tensor_slices((np.zeros((0, 8, 8, 3), "float32"), np.zeros(0, "int32")))
    with pytest.raises(ValueError, match="no batches"):
        predict_dataset(tiny_model(), empty.batch(4))


def test_predict_dataset_refuses_one_hot_labels() -> None:
    images, labels = labelled_images()
    one_hot = tf.data.Dataset.from_tensor_slices((images, np.eye(3)[labels])).batch(4)
    with pytest.raises(ValueError, match="look one-hot"):
        predict_dataset(tiny_model(), one_hot)


def test_classification_table_has_a_row_per_class_even_an_absent_one() -> None:
    table = classification_table([0, 0, 1, 1], np.array([0, 1, 1, 1]), CLASS_NAMES)
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines() if line.strip()}
    assert rows["circle"] == ["1.000", "0.500", "0.667", "2"]  # precision, recall, F1, support
    assert rows["square"][:2] == ["0.667", "1.000"]
    assert rows["triangle"][-1] == "0"


def test_classification_table_takes_probabilities() -> None:
    probabilities = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]])
    assert classification_table([0, 1], probabilities, CLASS_NAMES) == classification_table(
        [0, 1], [0, 1], CLASS_NAMES)


def test_confusion_matrix_shows_counts_and_rows_normalised() -> None:
    labels = [0, 0, 0, 1, 2, 2]
    predicted = [0, 0, 1, 1, 2, 0]
    fig = plot_confusion_matrix(labels, predicted, CLASS_NAMES)
    counts_ax, normalised_ax = fig.axes
    assert counts_ax.get_title() == "counts" and normalised_ax.get_title() == "normalised per true class"
    for ax in fig.axes:
        assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
        assert [t.get_text() for t in ax.get_xticklabels()] == CLASS_NAMES
        assert [t.get_text() for t in ax.get_yticklabels()] == CLASS_NAMES
    counts = [t.get_text() for t in counts_ax.texts]
    assert counts == ["2", "1", "0", "0", "1", "0", "1", "0", "1"]
    assert [t.get_text() for t in normalised_ax.texts][:3] == ["0.67", "0.33", "0.00"]


def test_confusion_matrix_takes_probabilities() -> None:
    probabilities = np.eye(3)[[0, 2, 1]]
    fig = plot_confusion_matrix([0, 1, 2], probabilities, CLASS_NAMES)
    assert [t.get_text() for t in fig.axes[0].texts] == ["1", "0", "0", "0", "0", "1", "0", "1", "0"]


def test_mistakes_gallery_shows_the_most_confident_mistakes_first() -> None:
    images = np.zeros((5, 8, 8, 3), dtype="uint8")
    labels = np.array([0, 1, 2, 0, 1])
    probabilities = np.array([
        [0.9, 0.1, 0.0],  # right
        [0.6, 0.4, 0.0],  # wrong, 0.60
        [0.1, 0.9, 0.0],  # wrong, 0.90
        [0.2, 0.1, 0.7],  # wrong, 0.70
        [0.0, 1.0, 0.0],  # right
    ])
    fig = plot_mistakes(images, labels, probabilities, CLASS_NAMES)
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in titled] == [
        "triangle -> square (0.90)",
        "circle -> triangle (0.70)",
        "square -> circle (0.60)",
    ]
    assert {ax.title.get_color() for ax in titled} == {"red"}, "the title format of plot_batch and plot_grad_cam"
    assert all(len(ax.images) == 1 for ax in titled)
    assert fig._suptitle.get_text() == "Most confident mistakes (3 shown of 3 wrong in 5)"
    capped = plot_mistakes(images, labels, probabilities, CLASS_NAMES, max_images=2)
    assert sum(1 for ax in capped.axes if ax.images) == 2


def test_mistakes_gallery_says_when_there_is_no_mistake() -> None:
    fig = plot_mistakes(np.zeros((2, 8, 8, 3)), [0, 1], np.eye(3)[:2], CLASS_NAMES)
    (ax,) = fig.axes
    assert not ax.images
    assert [t.get_text() for t in ax.texts] == ["No mistakes: all 2 images are classified correctly."]


def test_paired_bootstrap_of_identical_scores_is_exactly_zero() -> None:
    scores = np.random.default_rng(0).integers(0, 2, 32)
    assert paired_bootstrap(scores, scores) == (0.0, 0.0, 0.0)
    assert paired_bootstrap(scores, scores).contains_zero()


def test_paired_bootstrap_of_right_against_wrong_is_one() -> None:
    result = paired_bootstrap(np.ones(20), np.zeros(20))
    assert result == (1.0, 1.0, 1.0) and not result.contains_zero()
    assert paired_bootstrap(np.zeros(20), np.ones(20)) == (-1.0, -1.0, -1.0)


def test_paired_bootstrap_interval_shrinks_as_one_over_root_n() -> None:
    """A 0.75 against 0.5 model on independent images: four times the images, about half the interval's width;
    and the interval at 32 images is near +/- 2 standard errors of the paired difference."""
    rng = np.random.default_rng(1)

    def width(n: int) -> float:
        result = paired_bootstrap(rng.random(n) < 0.75, rng.random(n) < 0.5, resamples=4000)
        return result.high - result.low

    small, large = np.mean([width(32) for _ in range(20)]), np.mean([width(128) for _ in range(20)])
    assert 1.7 < small / large < 2.3, (small, large)
    standard_error = np.sqrt((0.75 * 0.25 + 0.5 * 0.5) / 32)  # of a difference of independent proportions
    assert 3 * standard_error < small < 5 * standard_error, (small, standard_error)


def test_paired_bootstrap_keeps_the_pairs_and_its_seed() -> None:
    """Pairing matters: b is a copy of a with one image made right, so the difference is small and sure, while
    the same scores unpaired (shuffled) give a wide interval; the same seed gives the same interval."""
    a = np.random.default_rng(2).integers(0, 2, 32).astype(float)
    b = a.copy()
    b[np.argmin(a)] = 1  # one wrong image made right
    result = paired_bootstrap(b, a)
    assert result.difference == pytest.approx(1 / 32)
    assert 0 <= result.low <= result.high <= 4 / 32, result
    unpaired = paired_bootstrap(b, np.random.default_rng(5).permutation(a))
    assert unpaired.high - unpaired.low > 3 * (result.high - result.low), (unpaired, result)
    assert paired_bootstrap(b, a, seed=3) == paired_bootstrap(b, a, seed=3)


def test_paired_bootstrap_refuses_unpaired_scores() -> None:
    with pytest.raises(ValueError, match=r"\(3,\) and \(4,\)"):
        paired_bootstrap(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="non-empty"):
        paired_bootstrap([], [])
