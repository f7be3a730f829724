"""The shapes of a foreign graph's values: onnx's shape inference (and why it fails), the per-example shapes a layer
needs, ONNX Runtime's answer where inference has none, and the check that an export left its batch dimension free.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from onnxtrain.errors import UnsupportedError, listing

Shape = tuple[int, ...]
BATCH = "batch"  # the symbolic first dimension of an imported graph's data inputs and outputs


def infer(model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    """The type of every value onnx's shape inference (with shape-value propagation where it works) knows."""
    for data_prop in (True, False):
        try:
            graph = onnx.shape_inference.infer_shapes(model, data_prop=data_prop).graph
            break
        except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError):
            continue
    else:
        graph = model.graph
    return _types(graph)


def inference_failure(model: onnx.ModelProto) -> str | None:
    """Where and why onnx's shape inference fails on `model` ("the BatchNormalization node '/b0/BatchNormalization':
    <onnx's reason>"), or None when it does not. Inference runs strict here: the lenient mode `infer` uses may stop
    at a node without a word. onnx lists the node that failed first, then the nodes after it that lost their
    input's type; only the first is the cause."""
    try:
        onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as e:
        error = str(e)
    else:
        return None
    failed = re.search(r"\(op_type:(\w+), node name: ([^)]*)\): (?:\[\w+\] )?(.*)", error)
    if failed is None:
        return " ".join(error.split()).rstrip(".")
    op, name, reason = failed.group(1), failed.group(2), failed.group(3).strip().rstrip(".")
    return f"the {op} node {name!r}: {reason}" if name else f"an unnamed {op} node: {reason}"


def _types(graph: onnx.GraphProto) -> dict[str, onnx.TypeProto]:
    return {v.name: v.type for v in [*graph.input, *graph.value_info, *graph.output] if v.type.tensor_type.elem_type}


def per_example_shape(value: onnx.ValueInfoProto | onnx.TypeProto, what: str, owner: str) -> Shape:
    """The shape without its first (batch) dimension, which must all be known.

    Raises:
        UnsupportedError: a non-batch dimension is symbolic or unknown, or the value has no shape.
    """
    tensor_type = value.type.tensor_type if isinstance(value, onnx.ValueInfoProto) else value.tensor_type
    if not tensor_type.HasField("shape") or not tensor_type.shape.dim:
        raise UnsupportedError(f"{owner}: {what} has no known shape with a batch dimension, which onnxtrain needs.")
    dims = tensor_type.shape.dim[1:]
    if not all(d.HasField("dim_value") for d in dims):
        shown = ["batch", *[d.dim_value if d.HasField("dim_value") else d.dim_param or "?" for d in dims]]
        symbolic = [s for s in shown[1:] if isinstance(s, str)]
        name = value.name if isinstance(value, onnx.ValueInfoProto) else "<input>"
        raise UnsupportedError(
            f"{owner}: {what} has shape {shown}; every dimension but the first (the batch) must be a number. "
            f"Export the model again with a fixed size for {listing(symbolic, 3)} (torch: leave that axis out of "
            "dynamic_axes / dynamic_shapes), or pin it first: model = onnx.tools.update_model_dims."
            f"update_inputs_outputs_dims(model, {{{name!r}: {shown}, ...}}, {{<each output>: [...]}}) with a number "
            "in place of each name but 'batch', then import that model."
        )
    return tuple(int(d.dim_value) for d in dims)


def run_for_shape(
    stripped: onnx.ModelProto,
    data_inputs: Sequence[onnx.ValueInfoProto],
    data_shapes: Sequence[Shape],
    weight_shapes: dict[str, Shape],
    index: int = 0,
) -> Shape | None:
    """The per-example shape of output `index`, from running the graph on a batch of 2 zeros (zero weights) in ONNX
    Runtime; None when it cannot run."""
    import onnxruntime as ort  # the inference API only; imported here to keep importing onnxtrain light

    feeds = {
        value.name: np.zeros((2, *shape), numpy_dtype(value))
        for value, shape in zip(data_inputs, data_shapes, strict=True)
    }
    feeds |= {name: np.zeros(shape, np.float32) for name, shape in weight_shapes.items()}
    try:
        session = ort.InferenceSession(stripped.SerializeToString(), providers=["CPUExecutionProvider"])
        return tuple(int(d) for d in session.run(None, feeds)[index].shape[1:])
    except Exception:  # ORT's own error types; the caller reports the unknown shape
        return None


def numpy_dtype(value: onnx.ValueInfoProto) -> np.dtype:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))


def check_batch_not_fixed(model: onnx.ModelProto, owner: str) -> None:
    """Refuse a Reshape whose constant shape makes the first dimension a number n > 0 while its input's first
    dimension is the batch (onnx's shape inference says so): an export of `x.view(1, -1)` runs for batches of n
    only; any other batch size fails in a later node or mixes examples. Shapes of 0 (copy) or -1 pass, as do
    Reshapes whose input's first dimension shape inference cannot tie to the batch (nothing proves a conflict).

    Raises:
        UnsupportedError: naming the node, its shape and its input's.
    """
    constants = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attribute in node.attribute:
                if attribute.name == "value":
                    constants[node.output[0]] = attribute.t
                elif attribute.name == "value_ints":
                    constants[node.output[0]] = numpy_helper.from_array(np.array(attribute.ints, np.int64))
    reshapes = [n for n in model.graph.node if n.op_type == "Reshape" and len(n.input) > 1 and n.input[1] in constants]
    if not reshapes:
        return
    types = infer(model)
    for node in reshapes:
        target = numpy_helper.to_array(constants[node.input[1]]).reshape(-1)
        known = types.get(node.input[0])
        dims = known.tensor_type.shape.dim if known is not None else []
        if not target.size or target[0] <= 0 or not dims or dims[0].dim_param != BATCH:
            continue
        shown = [d.dim_param or (d.dim_value if d.HasField("dim_value") else "?") for d in dims]
        raise UnsupportedError(
            f"{owner}: Reshape node {node.name or node.output[0]!r} fixes the batch dimension: its shape "
            f"{target.tolist()} makes the first dimension {int(target[0])}, but its input {node.input[0]!r} has shape "
            f"{shown}, the batch first, so only batches of exactly {int(target[0])} would run. Export the model with "
            "a dynamic batch (torch: x.flatten(1) or x.view(x.size(0), -1), and dynamic_axes / dynamic_shapes)."
        )
