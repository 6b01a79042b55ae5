"""The solutions of notebook 06's exercises (KerasHub), run in a kernel: what each one says happens."""

from __future__ import annotations

import pytest

from tests.conftest import NOTEBOOKS
from tests.notebook_cells import CellError
from tests.test_exercises import sessions  # noqa: F401  (the fixture: one kernel per notebook)

pytestmark = pytest.mark.skipif(not any(nb.name.startswith("06") for nb in NOTEBOOKS), reason="no notebook 06")


def test_06_exercise_1_caffe_preprocessing_stops_at_the_converter_check(sessions) -> None:  # noqa: F811
    with pytest.raises(CellError, match=r"the model's first step is not \(x / 255 - ImageNet mean\)"):
        sessions["06"].run("IMAGENET_MEAN = ", edits={
            "x = converter(inputs)": "x = keras.applications.resnet50.preprocess_input(inputs)"})


def test_06_exercise_2_image_size_96(sessions) -> None:  # noqa: F811
    sessions["06"].run("expected = 2048 * num_classes", parameters={"IMAGE_SIZE": 96})
    out = sessions["06"].check("print(tuple(base_model.output.shape[1:]), head.count_params(), num_classes)")
    shape, params, classes = out.strip().rsplit(" ", 2)[0], int(out.split()[-2]), int(out.split()[-1])
    assert shape == "(3, 3, 2048)"
    assert params == 2048 * classes + classes
