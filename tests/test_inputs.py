"""prepare_x: the finiteness screen (row sums) against numpy's exact element check."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain.errors import InvalidArgumentError
from onnxtrain.inputs import prepare_x


def test_finite_values_whose_sums_overflow_are_accepted():
    x = np.full((3, 8), 3e38, np.float32)  # every row sum overflows; every value is finite
    np.testing.assert_array_equal(prepare_x(x, (8,))[0], x)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0), (6, 3), (9, 7)])
def test_every_non_finite_value_is_found_and_named(bad, where):
    x = np.random.default_rng(0).random((10, 8), dtype=np.float32)
    x[where] = bad
    with pytest.raises(InvalidArgumentError, match=rf"x\[{where[0]}, {where[1]}\]={bad!r}"):
        prepare_x(x, (8,))


def test_infinities_of_both_signs_in_one_row_are_found():
    x = np.zeros((2, 4), np.float32)
    x[1, 0], x[1, 3] = np.inf, -np.inf  # their sum is NaN, still caught
    with pytest.raises(InvalidArgumentError, match=r"x\[1, 0\]=inf"):
        prepare_x(x, (4,))
