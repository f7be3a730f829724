"""prepare_x: the finiteness screen (row sums) against numpy's exact element check, and how integers are scaled."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from onnxtrain._checks import check_threads, check_validation_split
from onnxtrain.arrays import prepare_x, scale_divisor, scale_integers
from onnxtrain.errors import InvalidArgumentError, ShapeError


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


def test_a_finite_value_beyond_float32_is_named_as_given_not_as_its_cast():
    x = np.zeros((2, 4))
    x[1, 2] = -1e300  # finite in float64, -inf in float32
    with pytest.raises(InvalidArgumentError, match=r"within float32's range.*Received: x\[1, 2\]=-1e\+300$"):
        prepare_x(x, (4,))
    big = np.full((1, 4), 2**62, np.int64)  # finite, and so is the scale, but not their product in float32
    with pytest.raises(InvalidArgumentError, match=r"x\[0, 0\]=4611686018427387904 times input_scale=1e\+30"):
        prepare_x(big, (4,), 1e30)


def test_a_scale_of_one_over_255_gives_the_loaders_floats_bit_for_bit():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    expected = np.divide(pixels, np.float32(255), dtype=np.float32)  # fashion_mnist() and Dataset.from_idx
    np.testing.assert_array_equal(prepare_x(pixels, (16, 16), 1 / 255)[0], expected)
    np.testing.assert_array_equal(expected, (pixels / 255.0).astype(np.float32))  # numpy's usual float64 route
    # multiplying by float32(1/255) instead would change the last bit of about half the values
    assert np.count_nonzero(pixels.astype(np.float32) * np.float32(1 / 255) != expected) > 100


@pytest.mark.parametrize(
    ("scale", "divisor"),
    [
        (1 / 255, 255.0),
        (0.5, 2.0),
        (1 / 49, 49.0),  # 1 / (1 / 49) is 49.00000000000001 in float64
        (float(np.float32(1 / 255)), 255.0),
        (np.float32(1 / 255), 255.0),
        (1.0, None),
        (0.3, None),
        (2 / 255, None),
        (1 / 255 + 1e-12, None),
        (2**-30, None),
        (0.0, None),
        (-1 / 255, None),
    ],
)
def test_a_scale_is_a_divisor_only_for_one_over_a_whole_number_float32_holds(scale, divisor):
    assert scale_divisor(scale) == divisor


@pytest.mark.slow
def test_every_one_over_n_divides_bit_for_bit():
    # All n up to 100,000: the ~12% whose float64 inverse is not whole (49, 93, 98, ...) used to multiply.
    n = np.arange(2, 100_001)
    assert all(scale_divisor(1 / int(k)) == k for k in n)
    pixels = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(scale_integers(pixels, 1 / 49), np.divide(pixels, np.float32(49), dtype=np.float32))


@pytest.mark.parametrize(("scale", "expected"), [(1.0, [0, 3, 200]), (0.3, None), (2 / 255, None)])
def test_other_scales_multiply(scale, expected):
    values = np.array([0, 3, 200], np.int32)
    result = scale_integers(values, scale)
    assert result.dtype == np.float32
    want = values.astype(np.float32) * np.float32(scale) if expected is None else np.array(expected, np.float32)
    np.testing.assert_array_equal(result, want)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, r"threads expects a positive int. Received: threads=0"),
        (True, r"threads expects a positive int. Received: threads=True"),
        (2.0, r"threads expects a positive int. Received: threads=2.0"),
        (
            10**9,
            r"threads expects an int in \[1, 1024\] \(this machine has \d+ logical CPUs\)\. "
            r"Received: threads=1000000000",
        ),
    ],
)
def test_thread_counts_are_positive_and_sane(value, message):
    with pytest.raises(InvalidArgumentError, match=message):
        check_threads(value)


def test_compile_and_inference_model_check_threads_before_onnx_runtime_sees_them(tmp_path):
    from onnxtrain import InferenceModel, Sequential
    from onnxtrain.layers import Dense, Input

    assert check_threads(np.int64(2)) == 2
    with Sequential.of(Input(3), Dense(2, activation="linear")) as model:
        with pytest.raises(InvalidArgumentError, match=r"Received: threads=1000000000"):
            model.compile(threads=10**9)  # ORT itself failed with std::bad_alloc
        model.compile()
        path = model.export(tmp_path / "m.onnx")
    with pytest.raises(InvalidArgumentError, match=r"Received: threads=1000000000"):
        InferenceModel.load(path, threads=10**9)


@pytest.mark.parametrize("scale", [1e-310, 5e-324, 1e-50, 1e300, math.inf, math.nan, -1 / 255, 2.0**-24 * 0.99])
def test_scales_far_from_one_over_n_never_divide_and_never_raise(scale):
    assert scale_divisor(scale) is None


@pytest.mark.parametrize("scale", [1e-310, 1e-50, 1e300, 3.5e38, math.inf, True])
def test_a_dataset_refuses_input_scales_float32_cannot_hold(scale):
    from onnxtrain import Dataset

    with pytest.raises(
        InvalidArgumentError, match=r"expects a positive number float32 holds \(1\.18e-38 to 3\.4e\+38\)"
    ):
        Dataset(np.zeros((2, 3), np.uint8), np.zeros(2, np.int64), input_scale=scale)


@pytest.mark.parametrize("value", [0.2, np.float32(0.2), np.float64(0.2), 0, np.int64(0)])
def test_validation_split_takes_python_and_numpy_numbers(value):
    assert check_validation_split(value) == pytest.approx(float(value))


@pytest.mark.parametrize("value", [True, np.bool_(False), 1.0, -0.1, math.nan, "0.2", None])
def test_validation_split_refuses_flags_strings_and_fractions_outside_zero_one(value):
    with pytest.raises(InvalidArgumentError, match=r"validation_split expects a float in \[0, 1\)"):
        check_validation_split(value)


# --- integer inputs (token ids): cast to the input's dtype, never scaled


@pytest.mark.parametrize(
    ("given", "dtype"),
    [
        (np.array([[1, 2**40 + 3]], np.int64), np.int64),
        (np.array([[1, 255]], np.uint8), np.int64),
        (np.array([[1.0, 7.0]], np.float32), np.int64),  # whole floats are ids too
        (np.array([[1, -5]], np.int64), np.int32),
        (np.array([[3, 4]], np.uint32), np.int64),
    ],
)
def test_an_integer_input_takes_whole_numbers_exactly_and_never_scales_them(given, dtype):
    x, single = prepare_x(given, (2,), input_scale=1 / 255, dtype=dtype)
    assert x.dtype == dtype and x.flags.c_contiguous and not single
    np.testing.assert_array_equal(x, given.astype(np.float64))


@pytest.mark.parametrize(
    ("given", "dtype", "received"),
    [
        (np.array([[1.0, 1.5]]), np.int64, "x[0, 1]=1.5"),
        (np.array([[np.nan, 1.0]]), np.int64, "x[0, 0]=nan"),
        (np.array([[1.0, math.inf]]), np.int64, "x[0, 1]=inf"),
        (np.array([[1.0, 2.0**63]]), np.int64, "x[0, 1]=9.223372036854776e+18"),
        (np.array([[1, 2**31]], np.int64), np.int32, "x[0, 1]=2147483648"),
        (np.array([[2**63, 1]], np.uint64), np.int64, "x[0, 0]=9223372036854775808"),
    ],
)
def test_an_integer_input_refuses_values_its_dtype_cannot_hold(given, dtype, received):
    name = np.dtype(dtype).name
    with pytest.raises(InvalidArgumentError, match=rf"x expects whole numbers in \[.*\] for the model's {name} input"):
        prepare_x(given, (2,), dtype=dtype)
    with pytest.raises(InvalidArgumentError, match=re.escape(f"Received: {received}") + "$"):
        prepare_x(given, (2,), dtype=dtype)


def test_channels_last_images_into_a_channels_first_input_are_told_to_change_the_input_not_the_data():
    # PyTorch's habit: Input(3, 32, 40) declared for images read as (N, 32, 40, 3). A reshape would scramble them.
    images = np.zeros((2, 32, 40, 3), np.float32)
    with pytest.raises(ShapeError) as caught:
        prepare_x(images, (3, 32, 40))
    message = str(caught.value)
    assert message.startswith("x expects shape [None, 3, 32, 40]. Received: x.shape=(2, 32, 40, 3)."), message
    assert "The model's Input looks channels-first ([3, 32, 40])" in message
    assert "declare Input(32, 40, 3)" in message
    assert "reshape(" not in message
