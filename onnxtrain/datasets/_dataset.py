"""Dataset: validated (x, y) numpy arrays that fit/evaluate consume, with splitting, shuffling and batching.

Float x is stored as float32, integer x as given (scaled to float32 only when the Dataset has an input_scale); y
as int64 (class indices) or float32 (regression targets). Whether y suits the loss (integral, in range) is checked
by fit/evaluate, which see both. x then follows the conversion rule of onnxtrain.arrays, so a Dataset and an
(x, y) tuple of the same arrays reach the model as the same numbers, and token ids stay exact integers.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain._checks import check_bool
from onnxtrain._finite_inputs import refuse_non_finite
from onnxtrain._input_scale import INPUT_SCALE_RANGE, scale_integers, valid_input_scale
from onnxtrain._integer_pixels import check_integer_pixels
from onnxtrain._keyword_arguments import alias, refuse_unknown
from onnxtrain._kotlindl_attributes import KOTLINDL_DATASET_ATTRIBUTES, missing_attribute
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError

from ._idx import read_idx


class Dataset:
    """Examples ``x`` and labels ``y`` of equal length.

    Args:
        x: numeric array ``(N, ...)``; float inputs become float32 with unchanged values. Integer inputs (e.g.
            uint8 pixels) become float32 times ``input_scale`` when one is given (a scale of 1/n divides by n);
            without one they are kept as they are, and fit/evaluate convert them as they convert an integer
            array: scaled by the model's ``input_scale`` for a float32 input, exact for an integer input
            (token ids, ``Input(dtype="int64")``). Either way integer pixels follow one rule (onnxtrain.arrays):
            in [0, 255] at input_scale 1/255, and a warning for uint8, uint16 and int16 images at input_scale 1.
        y: numeric array ``(N, ...)``; integers become int64 class indices, floats become float32 targets.
        class_names: optional names of the classes, indexed by the integer labels.
        input_scale: the factor that takes raw integer inputs to `x`'s scale (1/255 when pixels were divided by
            255, or to divide integer `x` by 255 here). A model whose first fit trains on this dataset records it,
            and multiplies integer inputs given to `predict` by it.
        features, labels: KotlinDL's names of x and y (OnHeapDataset.create's), taken for them.

    Attributes:
        file_paths: the file each example was read from, in order (Keras' ``dataset.file_paths``), for a Dataset
            that ``image_dataset_from_directory`` returns; None for others, and for a split or shuffle of one.

    Raises:
        InvalidTypeError: x or y is not numeric (object, str, bool, complex...), or class_names not str.
        ShapeError: x or y is a scalar, or their lengths differ.
        InvalidArgumentError: the dataset is empty, a value is NaN or infinite, a label has no class name,
            input_scale is not a positive finite number, integer x outside [0, 255] at input_scale 1/255, x or y
            missing, or given twice (as x and as features).

    Example:
        >>> train = Dataset(np.zeros((4, 28, 28, 1)), np.array([0, 1, 2, 3]))
        >>> train, val = train.split(0.5)
        >>> train = Dataset(features=np.zeros((4, 784)), labels=np.array([0, 1, 2, 3]))  # KotlinDL's names
    """

    file_paths: list[str] | None = None  # set by image_dataset_from_directory (see Attributes)

    def __init__(
        self,
        x: Any = None,
        y: Any = None,
        *,
        class_names: Sequence[str] | None = None,
        input_scale: float | None = None,
        features: Any = None,
        labels: Any = None,
        **unknown: Any,
    ) -> None:
        refuse_unknown("Dataset", unknown, Dataset.__init__)
        x, y = alias("x", x, "features", features), alias("y", y, "labels", labels)
        if x is None or y is None:
            missing = " and ".join(name for name, value in (("x", x), ("y", y)) if value is None)
            raise InvalidArgumentError(
                f"Dataset needs x and y (KotlinDL's features and labels). Received: {missing} missing"
            )
        scale = None if input_scale is None else valid_input_scale(input_scale)
        if input_scale is not None and scale is None:
            raise InvalidArgumentError(
                "Dataset(input_scale=...) expects a positive number float32 holds "
                f"({INPUT_SCALE_RANGE[0]:.3g} to {INPUT_SCALE_RANGE[1]:.3g}), or None. "
                f"Received: input_scale={input_scale!r}"
            )
        x, y = validate_arrays(x, y, x_name="x", y_name="y", input_scale=scale)
        self._x, self._y = x, y
        self._class_names = _validate_class_names(class_names, y)
        self.input_scale = scale

    @classmethod
    def create(
        cls,
        x: Any = None,
        y: Any = None,
        *,
        features: Any = None,
        labels: Any = None,
        class_names: Sequence[str] | None = None,
        input_scale: float | None = None,
        **unknown: Any,
    ) -> Dataset:
        """KotlinDL's `OnHeapDataset.create(features, labels)`: the same as ``Dataset(x, y, ...)``, which takes
        KotlinDL's names of x and y, `features` and `labels`, too.

        Raises:
            InvalidArgumentError: x or y missing, or given twice (as x and as features). Plus the errors of
                ``Dataset(x, y)``; a keyword it does not take (KotlinDL's camelCase `classNames`) is refused naming
                Python's spelling.

        Example:
            >>> train = Dataset.create(np.zeros((4, 784)), np.array([0, 1, 2, 3]))
            >>> train = Dataset.create(features=np.zeros((4, 784)), labels=np.array([0, 1, 2, 3]))
        """
        refuse_unknown("Dataset.create", unknown, Dataset.create)
        return cls(x, y, class_names=class_names, input_scale=input_scale, features=features, labels=labels)

    @classmethod
    def _trusted(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        class_names: tuple[str, ...] | None,
        input_scale: float | None = None,
    ) -> Dataset:
        """Wrap arrays that already passed validation (splits, shuffles, fashion_mnist) as they are."""
        dataset = cls.__new__(cls)
        dataset._x, dataset._y, dataset._class_names = x, y, class_names
        dataset.input_scale = input_scale
        return dataset

    @classmethod
    def from_idx(
        cls,
        images: str | os.PathLike[str],
        labels: str | os.PathLike[str],
        *,
        normalize: bool = False,
        class_names: Sequence[str] | None = None,
    ) -> Dataset:
        """A dataset from an IDX images file and an IDX labels file (gzip-compressed or plain).

        Args:
            images: IDX file of the examples, e.g. ``(N, 28, 28)`` uint8.
            labels: IDX file of the labels, ``(N,)``.
            normalize: divide the pixel values by 255 (uint8 pixels then lie in [0, 1]; input_scale is 1/255).
            class_names: optional names of the classes.

        Raises:
            DataFormatError: a file is malformed. Plus the errors of ``Dataset(x, y)``.
        """
        scale = 1 / 255 if normalize else None
        return cls(read_idx(images), read_idx(labels), class_names=class_names, input_scale=scale)

    @property
    def x(self) -> np.ndarray:
        """The examples ``(N, ...)``: float32, or integers kept as given (see the class)."""
        return self._x

    @property
    def y(self) -> np.ndarray:
        """The labels: int64 class indices or float32 targets, ``(N, ...)``."""
        return self._y

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """Names of the classes, indexed by label, or None."""
        return self._class_names

    if not TYPE_CHECKING:  # mypy would take a dataset to have every attribute

        def __getattr__(self, attribute: str) -> Any:
            # Only reached for an attribute neither set nor defined: KotlinDL's name of one (`dataset.xSize()`,
            # `dataset.getX(i)`) is refused naming Python's.
            message = missing_attribute(self, attribute, KOTLINDL_DATASET_ATTRIBUTES, "dataset")
            raise AttributeError(message, name=attribute, obj=self)

    def __len__(self) -> int:
        return len(self._x)

    def __repr__(self) -> str:
        classes = "" if self._class_names is None else f", classes={len(self._class_names)}"
        x, y = self._x, self._y
        return f"Dataset(n={len(self)}, x={x.shape} {x.dtype}, y={y.shape} {y.dtype}{classes})"

    def get_x(self, index: int) -> np.ndarray:
        """The example at ``index`` (negative counts from the end)."""
        return self._x[self._check_index(index)]

    def get_y(self, index: int) -> np.ndarray:
        """The label at ``index`` (negative counts from the end)."""
        return self._y[self._check_index(index)]

    def split(self, ratio: float, shuffle: bool = False, seed: int | None = None) -> tuple[Dataset, Dataset]:
        """Two datasets: the first ``int(len * ratio)`` examples and the rest.

        Without shuffle the parts are views of this dataset's arrays; with it, copies in a random order.

        Raises:
            InvalidTypeError: ratio is not a number or seed not an int.
            InvalidArgumentError: ratio is not strictly between 0 and 1, or a part would be empty.
        """
        if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real):
            raise InvalidTypeError(f"split(ratio=...) expects a float in (0, 1). Received: {type(ratio).__name__}.")
        if not 0.0 < float(ratio) < 1.0:
            raise InvalidArgumentError(f"split(ratio=...) expects a float in (0, 1). Received: ratio={ratio}.")
        cut = int(len(self) * float(ratio))
        if cut == 0 or cut == len(self):
            raise InvalidArgumentError(
                f"split(ratio={ratio}) of {len(self)} examples leaves a part empty "
                f"({cut} and {len(self) - cut} examples). "
                "Use a ratio that keeps at least one example on each side."
            )
        if _shuffles("split", shuffle, seed):
            order = _permutation(len(self), seed, "split")
            first, rest = order[:cut], order[cut:]
        else:
            first, rest = slice(0, cut), slice(cut, None)
        return (
            Dataset._trusted(self._x[first], self._y[first], *self._provenance()),
            Dataset._trusted(self._x[rest], self._y[rest], *self._provenance()),
        )

    def shuffle(self, seed: int | None = None) -> Dataset:
        """A new dataset with the examples (and their labels) in a random order; this one is unchanged."""
        order = _permutation(len(self), seed, "shuffle")
        return Dataset._trusted(self._x[order], self._y[order], *self._provenance())

    def batches(
        self, batch_size: int, shuffle: bool = False, seed: int | None = None, drop_last: bool = False
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Iterate over ``(x_batch, y_batch)`` pairs of ``batch_size`` examples.

        The last, smaller batch is included unless ``drop_last``. Without shuffle the batches are views.

        Raises:
            InvalidTypeError, InvalidArgumentError: batch_size is not a positive int, or seed is invalid.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise InvalidTypeError(
                f"batches(batch_size=...) expects a positive int. Received: {type(batch_size).__name__}."
            )
        if batch_size < 1:
            raise InvalidArgumentError(
                f"batches(batch_size=...) expects a positive int. Received: batch_size={batch_size}."
            )
        order = _permutation(len(self), seed, "batches") if _shuffles("batches", shuffle, seed) else None
        return self._iterate(int(batch_size), order, check_bool("batches", "drop_last", drop_last))

    def _iterate(
        self, batch_size: int, order: np.ndarray | None, drop_last: bool
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        count = len(self)
        end = count - count % batch_size if drop_last else count
        for start in range(0, end, batch_size):
            index = slice(start, start + batch_size) if order is None else order[start : start + batch_size]
            yield self._x[index], self._y[index]

    def _provenance(self) -> tuple[tuple[str, ...] | None, float | None]:
        """What a part of this dataset inherits: class names, input scale."""
        return self._class_names, self.input_scale

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise InvalidTypeError(f"Dataset index expects an int. Received: {type(index).__name__}.")
        if not -len(self) <= index < len(self):
            raise InvalidArgumentError(
                f"Dataset index expects -{len(self)} <= index < {len(self)}. Received: index={index}."
            )
        return int(index)


def as_dataset(data: Any, name: str = "dataset", item_names: tuple[str, str] | None = None) -> Dataset:
    """``data`` as a Dataset: a Dataset is returned as is, an ``(x, y)`` tuple or list is validated.

    Args:
        data: a Dataset or an ``(x, y)`` pair of arrays.
        name: the argument's name in error messages, e.g. ``"validation_data"``.
        item_names: what messages call the pair's arrays (default ``name[0]``, ``name[1]``), e.g. ``("x", "y")``
            for arrays the user gave as two arguments.

    Raises:
        InvalidTypeError: data is neither (an array alone: its labels are missing). Plus the errors of
            ``Dataset(x, y)``, naming ``name[i]``.
        InvalidArgumentError: a Dataset paired with labels (it carries its own).
    """
    if isinstance(data, Dataset):
        return data
    expected = f"{name} expects a Dataset or an (x, y) tuple of arrays."
    if isinstance(data, tuple | list) and len(data) == 2:
        if isinstance(data[0], Dataset):
            raise InvalidArgumentError(
                f"{expected} Received: a Dataset and labels of type {type(data[1]).__name__}. A Dataset already "
                "carries its labels, so y must be None: pass the Dataset alone, e.g. fit(train)."
            )
        x_name, y_name = item_names or (f"{name}[0]", f"{name}[1]")
        x, y = validate_arrays(data[0], data[1], x_name=x_name, y_name=y_name)
        return Dataset._trusted(x, y, None)
    if isinstance(data, np.ndarray):
        raise InvalidTypeError(
            f"{expected} Received: an ndarray of shape {data.shape} alone: y (the labels) is missing. Pass the "
            "labels too: x and y (e.g. fit(x, y), evaluate(x, y)), an (x, y) tuple, or a Dataset."
        )
    received = type(data).__name__
    if isinstance(data, tuple | list):
        received += f" of length {len(data)}"
    raise InvalidTypeError(f"{expected} Received: {received}.")


def validate_arrays(
    x: Any, y: Any, *, x_name: str, y_name: str, input_scale: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert examples and labels (rules: see Dataset): float x to float32, integer x times
    ``input_scale`` when one is given, else as it is; y to int64 or float32."""
    x = given_x = _as_numeric(x, x_name)
    y = given_y = _as_numeric(y, y_name)
    scale = 1.0
    if x.dtype.kind in "iu":
        if input_scale is not None:  # the rule of integer pixels that fit and predict apply, at this scale
            check_integer_pixels(x, input_scale, x_name, owner="Dataset")
            x, scale = scale_integers(x, input_scale), input_scale
    else:
        with np.errstate(over="ignore"):  # float64 values beyond float32 become inf, reported by _check_finite
            x = x.astype(np.float32, copy=False)
    if y.dtype.kind in "iu":
        if y.dtype == np.uint64 and y.size and int(y.max()) > np.iinfo(np.int64).max:
            raise InvalidArgumentError(
                f"Dataset expects {y_name} to fit in int64. Received: a label of {int(y.max())}."
            )
        y = y.astype(np.int64, copy=False)
    else:
        with np.errstate(over="ignore"):
            y = y.astype(np.float32, copy=False)
    if len(x) != len(y):
        raise ShapeError(
            f"Dataset expects {x_name} and {y_name} to have the same length. "
            f"Received: {x_name}.shape={x.shape}, {y_name}.shape={y.shape}."
        )
    if len(x) == 0:
        raise InvalidArgumentError(f"Dataset expects at least one example. Received: {x_name}.shape={x.shape}.")
    _check_finite(x, given_x, x_name, scale)
    _check_finite(y, given_y, y_name)
    return x, y


def _as_numeric(value: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise InvalidTypeError(
            f"Dataset expects {name} to be a numeric array. "
            f"Received: {type(value).__name__} that numpy cannot convert ({error})."
        ) from error
    if array.dtype.kind not in "iuf":
        hint = f" Convert it first, e.g. {name}.astype(np.float32)." if array.dtype.kind == "b" else ""
        raise InvalidTypeError(
            f"Dataset expects {name} to be a numeric (integer or float) array. "
            f"Received: {name} with dtype={array.dtype}.{hint}"
        )
    if array.ndim == 0:
        raise ShapeError(f"Dataset expects {name} to have a first (example) axis. Received: a scalar {name}.")
    return array


def _check_finite(array: np.ndarray, given: np.ndarray, name: str, input_scale: float = 1.0) -> None:
    # min/max propagate NaN and reach +-inf, so this costs no temporary array in the common, finite case.
    if array.dtype.kind != "f" or array.size == 0:
        return
    if np.isfinite(array.min()) and np.isfinite(array.max()):
        return
    refuse_non_finite(array, given, name, input_scale)


def _validate_class_names(class_names: Sequence[str] | None, y: np.ndarray) -> tuple[str, ...] | None:
    if class_names is None:
        return None
    if isinstance(class_names, str) or not all(isinstance(name, str) for name in class_names):
        raise InvalidTypeError(f"Dataset(class_names=...) expects a sequence of str. Received: {class_names!r}.")
    names = tuple(class_names)
    if y.dtype.kind == "i" and y.ndim == 1 and (y.min() < 0 or y.max() >= len(names)):
        raise InvalidArgumentError(
            f"Dataset expects labels in [0, {len(names)}) with {len(names)} class_names. "
            f"Received: labels from {y.min()} to {y.max()}."
        )
    return names


def _shuffles(caller: str, shuffle: object, seed: object) -> bool:
    """`shuffle` checked as a bool, and a `seed` refused without it (it would order nothing)."""
    if check_bool(caller, "shuffle", shuffle):
        return True
    if seed is not None:
        raise InvalidArgumentError(
            f"{caller}(seed=...) orders a shuffle, so it needs shuffle=True. Received: seed={seed!r}, shuffle=False"
        )
    return False


def _permutation(count: int, seed: int | None, caller: str) -> np.ndarray:
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise InvalidTypeError(f"{caller}(seed=...) expects None or an int >= 0. Received: seed={seed!r}.")
        if seed < 0:
            raise InvalidArgumentError(f"{caller}(seed=...) expects None or an int >= 0. Received: seed={seed}.")
    return np.random.default_rng(seed).permutation(count)
