"""The exercises of notebooks 01-03 run, and each solution's stated outcome holds.

Each test makes the exercise's change (a parameter, or the one-line edit it names) in an
in-memory copy of the notebook, runs only the cells the exercise needs in one kernel per
notebook, and checks what the solution says, as far as random weights can show it. Code given
in a solution is taken from the notebook's Markdown and run as it stands.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
from nbclient import NotebookClient

from tests.conftest import NOTEBOOKS, ROOT, notebook_parameters
from tests.notebook_cells import CellError, edited, index_of, kernel, load, run_cells, run_code, with_parameters
from tests.test_readme import python_blocks

BY_NUMBER = {nb.name[:2]: nb for nb in NOTEBOOKS}
CLASSES = 4  # the bundled data


class Session:
    """One kernel for one notebook: run its cells up to a point with an exercise's change."""

    def __init__(self, client: NotebookClient, notebook: Path, out: Path) -> None:
        self.client, self.notebook, self.out = client, notebook, out

    def run(self, until: str, parameters: dict | None = None, edits: dict | None = None) -> None:
        """Run the notebook from the top through the cell containing ``until``."""
        nb = with_parameters(load(self.notebook), **{**notebook_parameters(self.notebook),
                                                     "OUTPUT_DIR": str(self.out), **(parameters or {})})
        nb = edited(nb, edits or {})
        run_cells(self.client, nb, stop=index_of(nb, until) + 1)

    def check(self, source: str) -> str:
        return run_code(self.client, source)


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Session]]:
    """A lazily started kernel per notebook, sharing one feature cache."""
    with pytest.MonkeyPatch.context() as mp, ExitStack() as kernels:
        mp.setenv("TLHELPERS_FEATURE_CACHE", str(tmp_path_factory.mktemp("feature_cache")))  # kernels inherit it

        class Lazy(dict):
            def __missing__(self, number: str) -> Session:
                client = kernels.enter_context(kernel())
                self[number] = Session(client, BY_NUMBER[number], tmp_path_factory.mktemp(f"out{number}"))
                return self[number]

        yield Lazy()


def solution_code(notebook: Path, exercise: int) -> str:
    """The fenced Python code in the solution of exercise ``exercise`` of ``notebook``."""
    cells = [c.source for c in load(notebook).cells
             if c.cell_type == "markdown" and c.source.startswith("## Exercises")]
    items = re.split(r"^(\d+)\. ", cells[0], flags=re.MULTILINE)
    text = items[items.index(str(exercise)) + 1]
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, f"exercise {exercise} of {notebook.name} should show one python block"
    return "\n".join(line[3:] if line.startswith("   ") else line for line in blocks[0].splitlines())


def write_folder(root: Path, classes: int = 3, per_class: int = 20, seed: int = 0) -> Path:
    """Classes whose images share one colour distribution: random colours, a class-specific shape."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"class_{c}").mkdir(parents=True)
        for i in range(per_class):
            image = Image.new("RGB", (48, 48), tuple(int(v) for v in rng.integers(0, 256, 3)))
            box = [(8, 8, 40, 40), (16, 4, 32, 44), (4, 16, 44, 32)][c % 3]
            ImageDraw.Draw(image).rectangle(box, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
            image.save(root / f"class_{c}" / f"{i:02d}.png")
    return root


# --- notebook 01 ------------------------------------------------------------------------------------------------------

def test_01_exercise_1_rescaling_stops_at_the_preprocessing_check(sessions) -> None:
    with pytest.raises(CellError) as stopped:
        sessions["01"].run("preprocessed = keras.Model(inputs, x)(batch)", edits={
            "x = keras.applications.resnet50.preprocess_input(inputs)": "x = keras.layers.Rescaling(1 / 255)(inputs)"})
    assert stopped.value.ename == "AssertionError"
    assert "is not keras.applications.resnet50.preprocess_input (BGR, ImageNet mean subtracted" in stopped.value.evalue


def test_01_exercise_2_large_learning_rate_starts_far_higher(sessions) -> None:
    losses = {}
    for rate in (1e-3, 1e-1):
        sessions["01"].run("history = model.fit(", parameters={"LEARNING_RATE": rate, "EPOCHS": 5})
        printed = sessions["01"].check('print(*history.history["loss"])')
        losses[rate] = [float(v) for v in printed.split()]
    assert losses[1e-1][0] > 10 * losses[1e-3][0], losses  # many times larger first epoch
    assert losses[1e-1][4] > losses[1e-3][0], losses  # after five epochs, still above the default's start


def test_01_exercise_3_image_size_160(sessions) -> None:
    sessions["01"].run('model = keras.Model(inputs, head(features), name="resnet50_dense_head")',
                       parameters={"IMAGE_SIZE": 160})
    sessions["01"].check("assert tuple(base_model.output.shape[1:]) == (5, 5, 2048), base_model.output.shape\n"
                         "assert head.count_params() == 2048 * num_classes + num_classes")


SHORTCUT_CHECK = 'DATA_DIR = "data/shapes"  # your folder: one sub-folder per class'


def colour_accuracy(folder: str) -> float:
    """Run the shortcut check of docs/own-images.md, as written, on ``folder``; the accuracy it prints."""
    block = next(b for b in python_blocks("docs/own-images.md") if "colour_accuracy" in b)
    assert block.count(SHORTCUT_CHECK) == 1, "the check sets DATA_DIR on one line, to the bundled shapes"
    done = subprocess.run([sys.executable, "-c", block.replace(SHORTCUT_CHECK, f"DATA_DIR = {folder!r}")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = re.search(r"from the average colour alone: ([0-9.]+) \(chance: ([0-9.]+)\)", done.stdout)
    assert found, done.stdout
    return float(found.group(1))


def test_01_exercise_4_own_folder_without_a_colour_cue(sessions, tmp_path: Path) -> None:
    """Exercise 4: the notebook's data cell on your own folder, and the shortcut check it points to."""
    folder = write_folder(tmp_path / "photos")
    sessions["01"].run("print(data.summary())", parameters={"DATA_DIR": str(folder), "RECOLOURED_DIR": None})
    printed = sessions["01"].check("print(num_classes); print(data.summary())")
    assert printed.splitlines()[0] == "3" and "class_2" in printed and "skipped files: 0" in printed, printed
    assert colour_accuracy(str(folder)) < 0.7  # chance is 1/3


def test_01_bundled_colour_cue_is_above_0_9() -> None:
    """What exercise 4's solution and docs/own-images.md say of the bundled shapes."""
    assert colour_accuracy(str(ROOT / "data" / "shapes")) > 0.9


# --- notebook 02 ------------------------------------------------------------------------------------------------------

def test_02_exercise_1_without_dropout(sessions) -> None:
    final = {}
    for rates in ((0.5, 0.3), (0.0, 0.0)):
        sessions["02"].run("history = head.fit(", parameters={"DROPOUT_RATES": rates})
        final[rates] = float(sessions["02"].check('print(history.history["loss"][-1])'))
    sessions["02"].check("np.testing.assert_array_equal(train_1, train_2)")  # the Dropout check, rate 0
    assert final[(0.0, 0.0)] < final[(0.5, 0.3)], final


def test_02_exercise_2_wider_first_layer(sessions) -> None:
    sessions["02"].run('model = keras.Model(base_model.input, head(base_model.output)',
                       parameters={"HIDDEN_UNITS": (1024, 128)})
    sessions["02"].check("assert head.count_params() == 2_229_892 == "
                         "(2048 * 1024 + 1024) + (1024 * 128 + 128) + (128 * num_classes + num_classes)")


def test_02_exercise_3_training_mode_predictions(sessions) -> None:
    sessions["02"].run("first_images, first_labels = next(iter(val_ds))")
    printed = sessions["02"].check(solution_code(BY_NUMBER["02"], 3))
    difference = float(printed.split("max difference:")[1].split()[0])
    assert difference > 0, printed


def test_02_exercise_4_runs_on_another_folder(sessions, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "photos")
    sessions["02"].run("test_loss, test_accuracy = model.evaluate(test_ds", parameters={"DATA_DIR": str(folder)})
    sessions["02"].check("assert num_classes == 3 and 0 <= test_accuracy <= 1")


# --- notebook 03 ------------------------------------------------------------------------------------------------------

CONV_CHECK = "same_as_dense = np.allclose("


def test_03_exercise_1_kernel_size_3(sessions) -> None:
    sessions["03"].run(CONV_CHECK, parameters={"KERNEL_SIZE": 3})
    printed = sessions["03"].check("print(head.count_params(), same_as_dense, moved)")
    assert printed.split() == ["4719876", "False", "True"], printed
    assert 4_719_876 == (9 * 2048 * 256 + 256) + (256 * CLASSES + CLASSES)


def test_03_exercise_2_image_size_320(sessions) -> None:
    sessions["03"].run(CONV_CHECK, parameters={"IMAGE_SIZE": 320})
    sessions["03"].check(
        "assert tuple(base_model.output.shape[1:]) == (10, 10, 2048)\n"
        "assert head.count_params() == (2048 * 256 + 256) + (256 * num_classes + num_classes)\n"
        "maps, _ = tlhelpers.grad_cam(base_model, head, images[:1], layer='conv1x1')\n"
        "assert maps.shape == (1, 10, 10), maps.shape"
    )


def test_03_exercise_3_heatmaps_of_a_right_and_a_wrong_image(sessions) -> None:
    sessions["03"].run("tlhelpers.plot_mistakes(kept_images, labels, probabilities, class_names)")
    sessions["03"].check(solution_code(BY_NUMBER["03"], 3))
