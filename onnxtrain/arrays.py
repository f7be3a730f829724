"""Input arrays as a model reads them: the checks and conversions done before ONNX Runtime sees a batch (shape,
dtype, finiteness, an Embedding's token ids) and the input scale that turns integers into the floats the model
trained on.

Conversion rule (documented in the README), for a float32 input (the default): float32 is used as is;
float16/float64 are cast to float32; integer arrays (e.g. uint8 images) are cast to float32 and multiplied by the
model's `input_scale` (1/255 for a model trained on `fashion_mnist()`, 1.0 otherwise; a scale of 1/n divides by n,
bit for bit the loaders' own scaling: `_input_scale`), so raw pixels give the same predictions as the scaled training
data, except for an input that an Embedding reads (token ids, never scaled). With input_scale 1/255 (a model trained
on 8-bit pixels) integers must lie in [0, 255]; with input_scale 1, integer images (uint8, uint16, int16) are read
raw with a warning: the one rule for integer pixels, which `Dataset(x, y, input_scale=...)` applies too
(`_integer_pixels`). NaN and infinities are refused (`_finite_inputs`). An integer input (`Input(dtype="int64")`, a
foreign int64 input) takes integer arrays, range-checked and cast to its dtype, or float arrays of whole numbers; it is
never scaled, and its ids never pass through float32 (exact above 2**24). Anything else (bool, object, strings,
complex, structured arrays) is refused. An array-like (a pandas DataFrame or Series: anything with `__array__` or
`to_numpy()`) is converted once with np.asarray first, wherever an array is taken (`as_array`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from onnxtrain._finite_inputs import all_finite, refuse_non_finite
from onnxtrain._input_scale import INPUT_SCALE_RANGE, scale_divisor, scale_integers, valid_input_scale
from onnxtrain._integer_pixels import (
    PIXEL_DIVISOR,
    check_integer_pixels,
    check_pixel_range,
    rescales_raw_pixels,
    warn_of_raw_pixels,
)
from onnxtrain._token_ids import TokenIds, check_token_ids, refuse_token_ids, token_id_inputs
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from onnxtrain.layers import Shape, format_shape

if TYPE_CHECKING:
    from onnxtrain.functional import Functional

__all__ = [  # the input scale, pixel and finiteness rules live in modules of their own; they are importable here too
    "INPUT_SCALE_RANGE",
    "PIXEL_DIVISOR",
    "InputArrays",
    "InputSpec",
    "as_array",
    "check_integer_pixels",
    "check_pixel_range",
    "input_specs",
    "is_array_like",
    "prepare_inputs",
    "prepare_x",
    "refuse_non_finite",
    "scale_divisor",
    "scale_integers",
    "sole_input",
    "valid_input_scale",
    "warn_of_raw_pixels",
]


def prepare_x(
    x: Any,
    input_shape: Shape,
    input_scale: float = 1.0,
    argument: str = "x",
    allow_single: bool = False,
    token_ids: TokenIds | None = None,
    dtype: Any = np.float32,
    model_rescales: bool = False,
) -> tuple[np.ndarray, bool]:
    """Return (C-contiguous batch of the input's `dtype`, whether `x` was a single example).

    Args:
        token_ids: the ids the Embedding layers this input feeds accept (`_token_ids.token_id_inputs`); None
            for an input that feeds none, which costs nothing more. Such an input is never scaled.
        dtype: the input's: float32, or int64 / int32 for an integer input (see the module's rule).
        model_rescales: the model scales raw pixels itself (`rescales_raw_pixels`): raw ones are not warned of.

    Raises:
        InvalidTypeError: the dtype is not numeric.
        ShapeError: the per-example shape is not `input_shape` (a single example is accepted if `allow_single`).
        InvalidArgumentError: empty data, NaN/inf values, values an integer input cannot hold (fractional, out of
            its range), or token ids that are fractional or outside [0, input_dim) (naming the first offending
            index).
    """
    x = as_array(x, argument)
    if not isinstance(x, np.ndarray):
        raise InvalidTypeError(
            f"{argument} expects a numpy array of shape {format_shape(input_shape)}. Received: {type(x).__name__} "
            "(an array-like such as a pandas DataFrame, with __array__ or to_numpy(), is taken too)"
        )
    if x.dtype.kind not in "fiu" or x.dtype.itemsize > 8:
        fix = (
            f". Pass a boolean mask as float32 (1.0 for True): {argument}.astype(np.float32)"
            if x.dtype.kind == "b"
            else _padding_fix(list(x), argument)
            if x.dtype.kind == "O" and x.ndim == 1
            else ""
        )
        raise InvalidTypeError(
            f"{argument} expects a float or integer array. Received: dtype {x.dtype} (bool, object, string and complex "
            f"arrays are not accepted){fix}"
        )
    single = allow_single and x.shape == input_shape
    if single:
        x = x[np.newaxis]
    if x.shape[1:] != input_shape:
        expected = format_shape(input_shape) + (f" or {list(input_shape)} for one example" if allow_single else "")
        hint = ""
        name = "x" if argument.endswith(".x") else argument
        if len(input_shape) >= 2 and x.shape[1:] == (input_shape[-1], *input_shape[:-1]):
            # Channels first (PyTorch's NCHW): a reshape would keep the memory order and scramble every image.
            hint = (
                f" The examples look channels-first; the model reads channels last: move the channel axis with "
                f"np.moveaxis({name}, 1, -1) (a reshape would scramble the images)."
            )
        elif len(input_shape) >= 3 and x.shape[1:] == (*input_shape[1:], input_shape[0]):
            # The model's Input is channels-first (PyTorch's C, H, W) and the images channels-last: reshaping the
            # data would scramble them. An imported graph reads its own layout (move the data's axis); a model of
            # onnxtrain's layers reads channels last (declare its Input so).
            channels_last = ", ".join(map(str, (*input_shape[1:], input_shape[0])))
            hint = (
                f" The model's Input looks channels-first ({list(input_shape)}) and the examples channels-last: "
                f"move their channel axis, np.moveaxis({name}, -1, 1), for a model imported from ONNX (from_onnx, "
                "OnnxLayer), which reads its graph's layout; for a model of onnxtrain's layers, declare "
                f"Input({channels_last}) instead. A reshape would scramble the images."
            )
        elif x.ndim >= 2 and int(np.prod(x.shape[1:])) == int(np.prod(input_shape)):
            target = ", ".join(map(str, input_shape))
            if argument.endswith(".x"):  # fit/evaluate data: a tuple's x, or a Dataset's (read-only) examples
                hint = f" Reshape the examples: x.reshape(-1, {target}), or Dataset(x.reshape(-1, {target}), y)."
            else:
                hint = f" Reshape it with {argument}.reshape(-1, {target})."
        elif allow_single and x.ndim <= len(input_shape) and x.size == int(np.prod(input_shape)):
            # One example flattened (KotlinDL's predict(FloatArray)), or missing its channel axis
            target = ", ".join(map(str, input_shape))
            hint = f" For one example, reshape it with {argument}.reshape({target})."
        raise ShapeError(f"{argument} expects shape {expected}. Received: {argument}.shape={x.shape}.{hint}")
    if x.shape[0] == 0:
        raise InvalidArgumentError(f"{argument} expects at least one example. Received: {argument}.shape={x.shape}")
    if np.dtype(dtype).kind == "i":
        x = _as_integers(x, np.dtype(dtype), argument, token_ids)
        if token_ids is not None:
            check_token_ids(x, token_ids, argument)
        return x, single
    if token_ids is not None:  # token ids, not pixels
        input_scale = 1.0
    given = x
    if x.dtype.kind in "iub":
        if token_ids is None:  # pixels, by the one rule for integer pixels
            check_integer_pixels(x, input_scale, argument, model_rescales=model_rescales)
        x = scale_integers(x, input_scale)
    elif x.dtype != np.float32:
        with np.errstate(over="ignore"):  # float64 values beyond float32 become inf, refused just below
            x = x.astype(np.float32)
    x = np.ascontiguousarray(x)
    if not all_finite(x):
        refuse_non_finite(x, given, argument, input_scale)
    if token_ids is not None:
        check_token_ids(x, token_ids, argument)
    return x, single


def is_array_like(value: Any) -> bool:
    """Whether numpy reads `value` as one array: an ndarray, or an object with `__array__` or `to_numpy()` (a
    pandas DataFrame or Series, a polars frame, an xarray DataArray)."""
    return isinstance(value, np.ndarray) or hasattr(value, "__array__") or callable(getattr(value, "to_numpy", None))


def as_array(x: Any, argument: str) -> Any:
    """`x` as one numpy array where it is one (`is_array_like`, or a list or tuple of numbers), converted once with
    np.asarray, as Keras takes a pandas DataFrame or Series; anything else (a dict, a list of several inputs' arrays)
    as it is. A DataFrame's float64 columns become a float64 array, which `prepare_x` casts to float32.

    Raises:
        InvalidTypeError: a ragged list, an array-like numpy reads as objects (text or mixed columns), or a
            structured (record) array, with how to make one numeric array of it.
    """
    if isinstance(x, np.ndarray):
        array = x
    elif isinstance(x, list | tuple) or hasattr(x, "__array__"):
        try:
            array = np.asarray(x)
        except (TypeError, ValueError) as e:
            what = f"a ragged {type(x).__name__}" if isinstance(x, list | tuple) else f"a {type(x).__name__} ({e})"
            fix = _padding_fix(x, argument) if isinstance(x, list | tuple) else ""
            raise InvalidTypeError(f"{argument} expects a numeric array. Received: {what}{fix}") from e
    elif callable(getattr(x, "to_numpy", None)):
        array = np.asarray(x.to_numpy())
    else:
        return x
    if array.dtype.names is not None:
        fields = list(array.dtype.names)
        raise InvalidTypeError(
            f"{argument} expects a float or integer array. Received: dtype {array.dtype}, a structured (record) "
            f"array with fields {fields}. Stack its columns into one float array: np.column_stack([{argument}[name] "
            f"for name in {argument}.dtype.names]).astype(np.float32) (or pass a dict {{input name: "
            f"{argument}[field]}} to a model of several named inputs)."
        )
    if array.dtype.kind == "O" and not isinstance(x, np.ndarray | list | tuple):
        raise InvalidTypeError(
            f"{argument} expects numeric values. Received: a {type(x).__name__} that numpy reads as dtype object "
            f"(text or mixed-type columns?). Encode text columns as numbers first, then pass "
            f"{argument}.to_numpy(np.float32)."
        )
    return array


def _padding_fix(rows: Sequence[Any], argument: str) -> str:
    """For sequences of different lengths (a list of lists or arrays, as a tokenizer gives them): their lengths
    and Keras' fix, padding them to one length; "" for anything else."""
    if not rows or not all(isinstance(row, list | tuple | np.ndarray) for row in rows):
        return ""
    lengths = [len(row) for row in rows]
    return (
        f". Its sequences have lengths {min(lengths)} to {max(lengths)}: pad them to the length n of the model's "
        f"Input first, onnxtrain.utils.pad_sequences({argument.rpartition('.')[2]}, maxlen=n) (Keras' "
        "pad_sequences; its padding 0 is masked by Embedding(..., mask_zero=True), or by Masking() for features)"
    )


def _as_integers(x: np.ndarray, dtype: np.dtype, argument: str, token_ids: TokenIds | None = None) -> np.ndarray:
    """`x` (integers, or floats holding whole numbers) as a C-contiguous array of integer `dtype`, unscaled.

    Raises:
        InvalidArgumentError: a value is fractional, not finite, or outside `dtype`'s range (the first named); for
            an input that Embedding layers read (`token_ids`), as the ids they take (`refuse_token_ids`).
    """
    info = np.iinfo(dtype)
    if x.dtype.kind in "iu" and np.can_cast(x.dtype, dtype):
        return np.ascontiguousarray(x, dtype)
    if x.dtype.kind in "iu":
        bad = (x < info.min) | (x > info.max)
    else:
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(x) | (np.trunc(x) != x) | (x < info.min) | (x >= float(info.max) + 1.0)
    if bad.any():
        if token_ids is not None:  # the range that matters is the Embedding's, not int64's
            refuse_token_ids(x, token_ids, argument)
        index = np.unravel_index(int(np.flatnonzero(bad)[0]), x.shape)
        raise InvalidArgumentError(
            f"{argument} expects whole numbers in [{info.min}, {info.max}] for the model's {dtype} input. "
            f"Received: {argument}[{', '.join(map(str, index))}]={x[index].item()!r}"
        )
    return np.ascontiguousarray(x, dtype)


class InputArrays:
    """The arrays of a model of several inputs, one per input in the model's order, with one row per example:
    sliced and gathered together as the trainer batches one array.

    Attributes:
        arrays: one C-contiguous array per input, of the input's dtype.
    """

    def __init__(self, arrays: Sequence[np.ndarray]):
        self.arrays: tuple[np.ndarray, ...] = tuple(arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, rows: Any) -> InputArrays:
        return InputArrays([array[rows] for array in self.arrays])


class InputSpec(NamedTuple):
    """What one model input reads: its graph input's name, per-example shape and dtype, the ids of the
    Embedding layers it feeds (`_token_ids.token_id_inputs`; None when it feeds none), and whether the model
    scales that input's raw pixels itself (`_integer_pixels.rescales_raw_pixels`, judged per input)."""

    name: str
    shape: Shape
    dtype: np.dtype = np.dtype(np.float32)
    token_ids: TokenIds | None = None
    model_rescales: bool = False
    aliases: tuple[str, ...] = ()  # other keys a dict may give it by: an imported model's file input name


def input_specs(graph: Functional) -> list[InputSpec]:
    """The InputSpec of each input of `graph`, in order: what fit, evaluate and predict check arrays against. A
    model `from_onnx` made also takes, in a dict, the file's input names (`{"x": ...}`, as its export does)."""
    from onnxtrain.foreign._input_names import file_input_names  # foreign sits above arrays

    rescales = rescales_raw_pixels(graph)
    return [
        InputSpec(str(x.name), x.shape, np.dtype(x.dtype), ids, own, (file,) if file and file != x.name else ())
        for x, ids, own, file in zip(
            graph.inputs, token_id_inputs(graph), rescales, file_input_names(graph), strict=True
        )
    ]


def _keys(spec: InputSpec) -> tuple[str, ...]:
    return (spec.name, *spec.aliases)


def sole_input(x: Any, spec: InputSpec, argument: str) -> Any:
    """The array of a model of one input given as Keras also takes it: alone, as `[batch]` (a list or tuple holding
    one array of a whole batch) or as `{input name: batch}`."""
    if isinstance(x, dict):
        if len(x) != 1 or next(iter(x)) not in _keys(spec):
            shown = " or ".join(f"{{{key!r}: array}}" for key in _keys(spec))
            raise InvalidArgumentError(
                f"{argument} expects an array, or a dict {shown} for the model's one input. Received keys: {list(x)}"
            )
        return next(iter(x.values()))
    if (
        isinstance(x, list | tuple)
        and len(x) == 1
        and is_array_like(x[0])
        and len(getattr(x[0], "shape", ())) == len(spec.shape) + 1
    ):
        return x[0]
    return x


def prepare_inputs(
    x: Any,
    inputs: Sequence[InputSpec],
    input_scale: float = 1.0,
    argument: str = "x",
    allow_single: bool = False,
) -> tuple[np.ndarray | InputArrays, bool]:
    """`prepare_x` for a model of `inputs` (`input_specs`): one input reads an array (or, as Keras, a list of that
    one batch array, or a dict {input name: array}); several read a list or tuple of arrays in the inputs' order, or
    a dict {input name: array} (Keras' two ways).

    Returns (the array, or the InputArrays of several inputs; whether `x` was a single example).

    Raises:
        InvalidTypeError: several inputs, and `x` is neither a list, a tuple nor a dict.
        InvalidArgumentError: the wrong number of arrays, names other than the inputs', or arrays of different lengths.
        The errors of `prepare_x`, naming the input (`x['image']`).
    """
    if len(inputs) == 1:
        spec = inputs[0]
        return prepare_x(
            sole_input(x, spec, argument),
            spec.shape,
            input_scale,
            argument,
            allow_single,
            spec.token_ids,
            spec.dtype,
            spec.model_rescales,
        )
    names = [spec.name for spec in inputs]
    if isinstance(x, dict):
        keys = [[key for key in _keys(spec) if key in x] for spec in inputs]
        chosen = {found[0] for found in keys if len(found) == 1}
        if len(chosen) != len(inputs) or len(x) != len(inputs):
            files = [spec.aliases[0] if spec.aliases else spec.name for spec in inputs]
            also = f" (or the file's input names {files})" if files != names else ""
            raise InvalidArgumentError(
                f"{argument} expects a dict with one array per model input, keyed {names}{also}. Received keys: "
                f"{list(x)}"
            )
        given = [x[found[0]] for found in keys]
    elif isinstance(x, list | tuple) and len(x) == len(names) and not all(np.isscalar(v) for v in x):
        given = list(x)
    else:
        received = f"a {type(x).__name__} of {len(x)}" if isinstance(x, list | tuple) else type(x).__name__
        raise InvalidTypeError(
            f"{argument} expects one array per model input ({names}): a list of {len(names)} arrays in that order, "
            f"or a dict {{name: array}}. Received: {received}"
        )
    prepared = [
        prepare_x(
            value,
            spec.shape,
            input_scale,
            f"{argument}[{spec.name!r}]",
            allow_single,
            spec.token_ids,
            spec.dtype,
            spec.model_rescales,
        )
        for value, spec in zip(given, inputs, strict=True)
    ]
    arrays, singles = [array for array, _ in prepared], {single for _, single in prepared}
    lengths = {name: len(array) for name, array in zip(names, arrays, strict=True)}
    if len(set(lengths.values())) != 1 or len(singles) != 1:
        raise InvalidArgumentError(f"{argument} expects as many examples in every input. Received: {lengths}")
    return InputArrays(arrays), singles.pop()
