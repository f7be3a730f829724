"""Tests of onnxtrain.datasets._dataset: validation, conversion, split/shuffle/batches, as_dataset."""

from __future__ import annotations

import gzip
import math
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onnxtrain.arrays import prepare_x, scale_integers
from onnxtrain.datasets import Dataset, as_dataset
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError


def make(n: int = 10, features: int = 3) -> Dataset:
    x = np.arange(n * features, dtype=np.float32).reshape(n, features)
    return Dataset(x, np.arange(n) % 4)


def test_dataset_stores_float32_x_and_int64_y() -> None:
    x64 = np.linspace(0, 1, 12).reshape(4, 3)
    dataset = Dataset(x64, np.array([0, 1, 2, 1], np.uint8))
    assert dataset.x.dtype == np.float32 and dataset.y.dtype == np.int64
    np.testing.assert_array_equal(dataset.x, x64.astype(np.float32))
    assert len(dataset) == 4 and dataset.class_names is None


def test_dataset_keeps_integer_pixel_values_and_float_targets() -> None:
    pixels = np.array([[0, 128, 255]], np.uint8)
    dataset = Dataset(pixels, np.array([[0.5]]))
    np.testing.assert_array_equal(dataset.x, [[0.0, 128.0, 255.0]])  # never rescaled silently
    assert dataset.y.dtype == np.float32


def test_dataset_does_not_copy_float32_input() -> None:
    x = np.zeros((5, 2), np.float32)
    y = np.zeros(5, np.int64)
    dataset = Dataset(x, y)
    assert np.shares_memory(dataset.x, x) and np.shares_memory(dataset.y, y)


def test_dataset_accepts_lists() -> None:
    dataset = Dataset([[1, 2], [3, 4]], [0, 1])
    assert dataset.x.shape == (2, 2) and dataset.y.tolist() == [0, 1]


BAD_TYPES = [
    ("object x", np.array([{}, {}], dtype=object), [0, 1], r"x with dtype=object"),
    ("str x", np.array(["a", "b"]), [0, 1], r"x with dtype=<U1"),
    ("complex x", np.ones(2, np.complex64), [0, 1], r"x with dtype=complex64"),
    ("bool x", np.ones(2, bool), [0, 1], r"x with dtype=bool. Convert it first"),
    ("str y", np.ones((2, 1)), ["cat", "dog"], r"y with dtype=<U3"),
    ("ragged x", [[1, 2], [3]], [0, 1], r"x to be a numeric array. Received: list that numpy cannot convert"),
]


@pytest.mark.parametrize(("x", "y", "message"), [c[1:] for c in BAD_TYPES], ids=[c[0] for c in BAD_TYPES])
def test_dataset_rejects_non_numeric_arrays(x: object, y: object, message: str) -> None:
    with pytest.raises(InvalidTypeError, match=message):
        Dataset(x, y)


BAD_VALUES = [
    (
        "nan in x",
        np.array([[0.0, 1.0], [2.0, np.nan]]),
        [0, 1],
        InvalidArgumentError,
        r"^x expects finite values\. Received: x\[1, 1\]=nan$",
    ),
    (
        "inf in y",
        np.ones((3, 1)),
        [0.0, -np.inf, 1.0],
        InvalidArgumentError,
        r"^y expects finite values\. Received: y\[1\]=-inf$",
    ),
    (
        "float32 overflow",
        np.array([[1e40]]),
        [0],
        InvalidArgumentError,
        r"^x expects values within float32's range .* Received: x\[0, 0\]=1e\+40$",
    ),
    (
        "length mismatch",
        np.ones((3, 2)),
        [0, 1],
        ShapeError,
        r"same length.*x.shape=\(3, 2\), y.shape=\(2,\)",
    ),
    ("empty", np.ones((0, 2)), np.ones(0), InvalidArgumentError, r"at least one example"),
    ("scalar x", 1.0, [0], ShapeError, r"first \(example\) axis. Received: a scalar x"),
    ("uint64 label", np.ones((1, 1)), np.array([2**63], np.uint64), InvalidArgumentError, r"fit in int64"),
]


@pytest.mark.parametrize(("x", "y", "error", "message"), [c[1:] for c in BAD_VALUES], ids=[c[0] for c in BAD_VALUES])
def test_dataset_rejects_bad_values(x: object, y: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Dataset(x, y)


def test_class_names_are_validated_against_integer_labels() -> None:
    assert Dataset(np.ones((2, 1)), [0, 1], class_names=["a", "b"]).class_names == ("a", "b")
    with pytest.raises(InvalidTypeError, match="class_names"):
        Dataset(np.ones((2, 1)), [0, 1], class_names="ab")
    with pytest.raises(InvalidArgumentError, match=r"labels in \[0, 2\).*from 0 to 5"):
        Dataset(np.ones((2, 1)), [0, 5], class_names=["a", "b"])


def test_get_x_and_get_y_index_like_numpy() -> None:
    dataset = make()
    np.testing.assert_array_equal(dataset.get_x(2), dataset.x[2])
    assert dataset.get_y(-1) == dataset.y[-1]
    assert dataset.get_y(np.int64(3)) == 3


@pytest.mark.parametrize(
    ("index", "error", "message"),
    [
        (10, InvalidArgumentError, r"-10 <= index < 10. Received: index=10"),
        (-11, InvalidArgumentError, "-11"),
        (1.0, InvalidTypeError, "float"),
        (True, InvalidTypeError, "bool"),
    ],
)
def test_get_x_rejects_bad_indices(index: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make().get_x(index)  # type: ignore[arg-type]


def test_split_without_shuffle_returns_views_in_order() -> None:
    dataset = make(10)
    first, rest = dataset.split(0.75)
    assert (len(first), len(rest)) == (7, 3)
    np.testing.assert_array_equal(np.concatenate([first.x, rest.x]), dataset.x)
    assert np.shares_memory(first.x, dataset.x)


def test_split_with_shuffle_is_a_seeded_partition() -> None:
    dataset = make(20)
    first, rest = dataset.split(0.5, shuffle=True, seed=3)
    again, _ = dataset.split(0.5, shuffle=True, seed=3)
    np.testing.assert_array_equal(first.x, again.x)
    rows = np.concatenate([first.x, rest.x])
    np.testing.assert_array_equal(np.sort(rows[:, 0]), dataset.x[:, 0])
    np.testing.assert_array_equal(first.y, (first.x[:, 0] // 3).astype(np.int64) % 4)  # labels follow examples


@pytest.mark.parametrize(
    ("ratio", "error", "message"),
    [
        (0.0, InvalidArgumentError, "ratio=0.0"),
        (1.0, InvalidArgumentError, "ratio=1.0"),
        (0.05, InvalidArgumentError, "leaves a part empty"),
        ("half", InvalidTypeError, "str"),
        (True, InvalidTypeError, "bool"),
    ],
)
def test_split_rejects_bad_ratios(ratio: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make(10).split(ratio)  # type: ignore[arg-type]


def test_shuffle_returns_a_new_dataset_and_keeps_pairs() -> None:
    dataset = make(12)
    before = dataset.x.copy()
    shuffled = dataset.shuffle(seed=0)
    np.testing.assert_array_equal(dataset.x, before)
    assert not np.array_equal(shuffled.x, dataset.x)
    np.testing.assert_array_equal(shuffled.y, (shuffled.x[:, 0] // 3).astype(np.int64) % 4)
    np.testing.assert_array_equal(shuffled.x, dataset.shuffle(seed=0).x)
    with pytest.raises(InvalidArgumentError, match="seed=-1"):
        dataset.shuffle(seed=-1)
    with pytest.raises(InvalidTypeError, match="seed"):
        dataset.shuffle(seed=1.5)  # type: ignore[arg-type]


def test_batches_cover_the_data_with_a_partial_last_batch() -> None:
    dataset = make(10)
    batches = list(dataset.batches(4))
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), dataset.x)
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), dataset.y)
    assert [len(x) for x, _ in dataset.batches(4, drop_last=True)] == [4, 4]


def test_shuffled_batches_are_a_seeded_permutation() -> None:
    dataset = make(10)
    xs = np.concatenate([x for x, _ in dataset.batches(3, shuffle=True, seed=1)])
    assert not np.array_equal(xs, dataset.x)
    np.testing.assert_array_equal(np.sort(xs[:, 0]), dataset.x[:, 0])
    np.testing.assert_array_equal(xs, np.concatenate([x for x, _ in dataset.batches(3, shuffle=True, seed=1)]))


@pytest.mark.parametrize(
    ("batch_size", "error"), [(0, InvalidArgumentError), (-2, InvalidArgumentError), (2.0, InvalidTypeError)]
)
def test_batches_reject_bad_sizes_at_call_time(batch_size: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="batch_size"):
        make().batches(batch_size)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(n=st.integers(1, 40), batch_size=st.integers(1, 50), drop_last=st.booleans(), shuffle=st.booleans())
def test_batch_sizes_match_arithmetic(n: int, batch_size: int, drop_last: bool, shuffle: bool) -> None:
    seed = 0 if shuffle else None
    sizes = [len(x) for x, _ in make(n).batches(batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)]
    full, rest = divmod(n, batch_size)
    assert sizes == [batch_size] * full + ([rest] if rest and not drop_last else [])


def _write_idx(path: Path, array: np.ndarray) -> Path:
    header = bytes((0, 0, 0x08, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))
    return path


def test_from_idx_reads_images_and_labels(tmp_path: Path) -> None:
    images = np.arange(3 * 4, dtype=np.uint8).reshape(3, 2, 2) * 20
    labels = np.array([2, 0, 1], np.uint8)
    image_file, label_file = _write_idx(tmp_path / "i.gz", images), _write_idx(tmp_path / "l.gz", labels)
    raw = Dataset.from_idx(image_file, label_file, class_names=["a", "b", "c"])
    np.testing.assert_array_equal(raw.x, images.astype(np.float32))
    assert raw.y.tolist() == [2, 0, 1] and raw.class_names == ("a", "b", "c")
    scaled = Dataset.from_idx(image_file, label_file, normalize=True)
    np.testing.assert_array_equal(scaled.x, images / np.float32(255))  # bit for bit as predict scales pixels
    assert scaled.input_scale == 1 / 255


def test_as_dataset_accepts_datasets_and_pairs() -> None:
    dataset = make()
    assert as_dataset(dataset) is dataset
    from_tuple = as_dataset((np.ones((3, 2)), [0, 1, 0]))
    from_list = as_dataset([np.ones((3, 2)), np.zeros(3)])
    assert len(from_tuple) == 3 and from_tuple.y.dtype == np.int64 and from_list.y.dtype == np.float32


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.ones((3, 2)), "ndarray"),
        ((np.ones(2),), "tuple of length 1"),
        ({"x": 1}, "dict"),
        (None, "NoneType"),
    ],
)
def test_as_dataset_rejects_other_types(data: object, message: str) -> None:
    with pytest.raises(InvalidTypeError, match=f"validation_data expects a Dataset or an \\(x, y\\).*{message}"):
        as_dataset(data, name="validation_data")


def test_as_dataset_errors_name_the_argument() -> None:
    with pytest.raises(
        InvalidArgumentError,
        match=r"^validation_data\[0\] expects finite values\. Received: validation_data\[0\]\[0, 0\]=nan$",
    ):
        as_dataset((np.full((2, 2), np.nan), [0, 1]), name="validation_data")
    with pytest.raises(ShapeError, match=r"validation_data\[0\] and validation_data\[1\]"):
        as_dataset((np.ones((2, 2)), [0]), name="validation_data")


# --- integer x and input_scale: the conversion rule of onnxtrain.arrays --------------------------------------

PIXELS = np.array([[0, 1, 128], [200, 254, 255]], np.uint8)


@pytest.mark.parametrize("scale", [1 / 255, np.float32(1 / 255), np.float64(1 / 255)], ids=["float", "f32", "f64"])
def test_integer_x_with_an_input_scale_is_scaled_as_predict_scales_it(scale: float) -> None:
    dataset = Dataset(PIXELS, [0, 1], input_scale=scale)
    assert dataset.x.dtype == np.float32 and type(dataset.input_scale) is float
    assert dataset.input_scale == float(scale)
    np.testing.assert_array_equal(dataset.x, scale_integers(PIXELS, float(scale)))  # what predict(PIXELS) feeds
    if float(scale) == 1 / 255:
        np.testing.assert_array_equal(dataset.x, PIXELS / np.float32(255))  # divided, not multiplied by 1/255
    assert prepare_x(dataset.x, (3,), 0.5)[0] is dataset.x  # its own scale was applied; the model's does not apply


def test_integer_x_without_a_scale_takes_the_models_at_fit_time_in_every_part() -> None:
    dataset = Dataset(np.repeat(PIXELS, 5, axis=0), np.arange(10) % 2)
    np.testing.assert_array_equal(dataset.x, np.repeat(PIXELS, 5, axis=0))  # kept as given: uint8
    assert dataset.x.dtype == np.uint8
    for part in (*dataset.split(0.5), *dataset.split(0.3, shuffle=True, seed=1), dataset.shuffle(seed=2)):
        assert part.x.dtype == np.uint8
        np.testing.assert_array_equal(prepare_x(part.x, (3,), 1 / 255)[0], part.x / np.float32(255))
    from_tuple = as_dataset((PIXELS, [0, 1]))
    np.testing.assert_array_equal(prepare_x(from_tuple.x, (3,), 1 / 255)[0], PIXELS / np.float32(255))


def test_integer_x_without_a_scale_keeps_token_ids_past_float32s_integers() -> None:
    ids = np.array([[2**24 + 1, 2**40 + 3]], np.int64)  # float32 would make them 2**24 and 2**40 + 0
    for dataset in (Dataset(ids, [0]), as_dataset((ids, [0]))):
        assert dataset.x.dtype == np.int64 and np.shares_memory(dataset.x, ids)
        np.testing.assert_array_equal(prepare_x(dataset.x, (2,), 0.5, dtype=np.int64)[0], ids)  # never scaled


def test_float_x_is_never_rescaled_nor_copied_whatever_the_scales() -> None:
    x = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    dataset = Dataset(x, [0, 1], input_scale=1 / 255)
    assert np.shares_memory(dataset.x, x) and prepare_x(dataset.x, (3,), 0.5)[0] is dataset.x
    np.testing.assert_array_equal(dataset.x, np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3))
    assert np.shares_memory(as_dataset((x, [0, 1])).x, x)


@pytest.mark.parametrize("scale", [0, -1.0, math.nan, math.inf, True, np.bool_(True), "0.5", 10**400, 1e-310, 1e300])
def test_input_scale_must_be_a_positive_number_float32_holds(scale: object) -> None:
    expected = (
        r"Dataset\(input_scale=\.\.\.\) expects a positive number float32 holds \(1\.18e-38 to 3\.4e\+38\), or None\. "
        r"Received: input_scale="
    )
    with pytest.raises(InvalidArgumentError, match=expected + re.escape(repr(scale))):
        Dataset(PIXELS, [0, 1], input_scale=scale)  # type: ignore[arg-type]


def test_as_dataset_says_a_dataset_already_carries_its_labels() -> None:
    with pytest.raises(InvalidArgumentError, match=r"A Dataset already carries its labels, so y must be None"):
        as_dataset((make(), np.zeros(10)), name="dataset")


def test_as_dataset_says_an_array_alone_lacks_its_labels() -> None:
    with pytest.raises(
        InvalidTypeError, match=r"Received: an ndarray of shape \(3, 2\) alone: y \(the labels\) is missing"
    ):
        as_dataset(np.ones((3, 2)), name="dataset")


def test_a_seed_without_shuffle_is_refused() -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"batches\(seed=\.\.\.\) orders a shuffle, so it needs shuffle=True"
    ):
        make(4).batches(2, seed=5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda d: list(d.batches(2, shuffle="no")),
            r"batches\(shuffle=\.\.\.\) expects a bool\. Received: shuffle='no'",
        ),
        (lambda d: list(d.batches(2, drop_last="no")), r"batches\(drop_last=\.\.\.\) expects a bool\. Received: drop"),
        (lambda d: d.split(0.5, shuffle=1), r"split\(shuffle=\.\.\.\) expects a bool\. Received: shuffle=1"),
        (lambda d: d.split(0.5, seed=3), r"split\(seed=\.\.\.\) orders a shuffle, so it needs shuffle=True"),
    ],
)
def test_flags_are_bools_and_a_seed_needs_shuffle(call, message) -> None:
    """A truthy string is not True ("no" shuffled and dropped the last batch), and split's seed was ignored
    without shuffle where batches' is refused."""
    with pytest.raises(InvalidArgumentError, match=message):
        call(make(4))


def test_dataset_takes_kotlindl_s_features_and_labels_as_create_does() -> None:
    x, y = np.arange(6, dtype=np.float32).reshape(3, 2), np.array([0, 1, 0])
    made = Dataset(features=x, labels=y)
    assert np.array_equal(made.x, Dataset(x, y).x) and np.array_equal(made.y, Dataset(x, y).y)
    assert np.array_equal(Dataset(x, labels=y).y, y)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"features": np.zeros((3, 2))}, r"Dataset needs x and y \(KotlinDL's features and labels\)\. Received: y"),
        ({}, r"Received: x and y missing"),
        ({"x": np.zeros((3, 2)), "y": np.zeros(3), "features": np.zeros((3, 2))}, r"Pass x=\.\.\. or features="),
    ],
    ids=["labels missing", "nothing", "x twice"],
)
def test_dataset_refuses_x_or_y_missing_or_given_twice(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        Dataset(**arguments)  # type: ignore[arg-type]
