"""What `gradients()` takes: a ModelProto or a path to one, its `wrt` values of a float type, shapes inferred from its
graph inputs rather than from an exporter's `value_info`, and a graph that onnx's checker accepts."""

from __future__ import annotations

import os
from collections.abc import Sequence

import onnx

from onnxtrain._onnx_file import read_onnx_model
from onnxtrain.autodiff._context import FLOAT_TYPES
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.graph import GraphBuilder

ONNX_ERRORS = (onnx.checker.ValidationError, onnx.shape_inference.InferenceError)


def read_model(model: object) -> onnx.ModelProto:
    """`model` itself, or the ONNX file a path names (external data read from its folder, as `from_onnx` reads it).

    Raises:
        InvalidTypeError: neither a ModelProto nor a path.
        ModelFileError: the file cannot be read or parsed.
    """
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, str | os.PathLike):
        return read_onnx_model(model)
    raise InvalidTypeError(
        f"gradients(model=...) expects an onnx.ModelProto or a path to an .onnx file. Received: {type(model).__name__}"
    )


def check_float_wrt(types: dict[str, onnx.TypeProto], wrt: Sequence[str], caller: str) -> None:
    """Refuse a `wrt` value of an integer or bool type (token ids, a mask): it carries no gradient.

    Raises:
        InvalidArgumentError: naming the values and their element types.
    """
    refused = {
        name: onnx.TensorProto.DataType.Name(elem)
        for name in dict.fromkeys(wrt)
        if name in types and (elem := types[name].tensor_type.elem_type) and elem not in FLOAT_TYPES
    }
    if refused:
        shown = ", ".join(f"{name!r} ({dtype.lower()})" for name, dtype in refused.items())
        raise InvalidArgumentError(
            f"{caller}(wrt=...) expects floating-point values: only they carry a gradient. Received: {shown}. "
            "Leave them out of wrt (an Embedding's token ids take none; its table does)."
        )


def drop_stale_value_info(builder: GraphBuilder) -> None:
    """Forget the shapes the file's `value_info` records where its graph inputs have a symbolic dimension: exporters
    record them at the export's sizes (torch's dynamo exporter writes `[batch, 7, 8]` after an LSTM exported at a
    sequence length of 7, although the length is dynamic), and onnx's shape inference keeps such a number over the
    symbolic dimension it infers, so a gradient built for 7 steps would fail at any other length. Shapes are
    inferred from the graph inputs instead; a value that inference cannot type keeps its recorded element type and
    rank, with every dimension unknown. A graph whose inputs are all static keeps its value_info: there the
    recorded sizes are the only ones."""
    recorded = list(builder._value_info)
    weights = {t.name for t in builder.initializers}
    data = [v for v in builder.inputs if v.name not in weights]
    if not recorded or all(_static(v) for v in data):
        return
    builder._value_info = []
    inferred = builder.value_types()
    kept = []
    for value in recorded:
        known = inferred.get(value.name)
        if known is not None and known.tensor_type.HasField("shape"):
            continue
        tensor = value.type.tensor_type
        if not tensor.elem_type:
            continue
        rank = len(tensor.shape.dim) if tensor.HasField("shape") else None
        kept.append(
            onnx.helper.make_tensor_value_info(value.name, tensor.elem_type, None if rank is None else [None] * rank)
        )
    builder._value_info = kept


def _static(value: onnx.ValueInfoProto) -> bool:
    tensor = value.type.tensor_type
    return tensor.HasField("shape") and all(d.HasField("dim_value") for d in tensor.shape.dim)


def invalid_model_error(model: onnx.ModelProto, caller: str) -> InvalidArgumentError | None:
    """The error to raise where onnx's checker or shape inference failed while `caller` built its gradient graph and
    `model` itself fails the checker (an exporter wrote an invalid graph); None where `model` passes, so the failure
    is onnxtrain's own."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except ONNX_ERRORS as e:
        reason = " ".join(str(e).split())
        return InvalidArgumentError(
            f"{caller}(model=...) expects a valid ONNX model, but onnx's checker refuses this one: {reason}. Fix the "
            "graph (or export it again) so that onnx.checker.check_model(model, full_check=True) passes."
        )
    return None
