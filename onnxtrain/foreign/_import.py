"""`from_onnx`: an ONNX model someone else made, as an onnxtrain Model to compile, fit, save and export.

It sits above `onnxtrain.model` (the layer it wraps, `OnnxLayer`, sits with the layers).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import onnx

from onnxtrain.emit import LOGITS_NAME, PROBABILITIES_NAME, RESERVED_NAMES
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.foreign._graph import COMMANDS, read_model
from onnxtrain.foreign._layer import OnnxLayer
from onnxtrain.foreign._outputs import OnnxOutput
from onnxtrain.foreign._tied import Untie
from onnxtrain.layers import Input
from onnxtrain.model import Model

_ONNXTRAIN_VERSION = "onnxtrain.version"  # the metadata key of onnxtrain's exports (model_files.META_VERSION)


def from_onnx(
    model: Any,
    *,
    trainable: bool | str | Sequence[str] | None = None,
    frozen: str | Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    input_scale: float | None = None,
    batch_norm: str = "inference",
    name: str = "imported",
    untie: Untie = None,
) -> Model:
    """The ONNX model `model` (a path, external data read from its folder, or an onnx.ModelProto) as a Model:
    its inputs, then one `OnnxLayer` holding the graph (and, for a graph of several outputs, one `OnnxOutput` per
    output: a model of several outputs, each trained with its own loss). `compile / fit / evaluate / predict /
    save / export / summary` work as for a Sequential, and `load_model` reads its save back.

    Every float32 initializer is a weight, kept under its initializer name (`get_weights()["fc1.weight"]`), and
    trains unless `trainable` or `frozen` says otherwise; int initializers are constants. Shape-only subgraphs
    are folded by ONNX Runtime's constant folding; the batch dimension is made symbolic. An int64 or int32 input
    (token ids) stays one: its Input has that dtype, and so has the export's input.

    Args:
        model: the path or ModelProto.
        trainable: None or True: every weight trains but an exporter's constants (initializers of one element,
            such as the 0.5 and sqrt(2) of torch's dynamo GELU or its [1] attention scale, a PRelu's slope aside;
            and those holding ±inf or nan, such as a causal mask); False: none; names or glob patterns: only those,
            constants included (a learned temperature).
        frozen: names or glob patterns of weights that do not train (applied after `trainable`).
        outputs: value names to cut the graph at: `outputs=["/fc2/Relu_output_0"]` makes a feature extractor; a
            torch module's name (`"layer2"`) cuts at its last output (`_cut`). None keeps every output but, in an
            onnxtrain export, the probabilities its loss added (`companion_outputs`): such a file imports as its
            `logits`.
        input_scale: what integer arrays given for a float input are multiplied by before the graph sees them in
            `fit`, `evaluate` and `predict` (as for a model trained by onnxtrain, e.g. 1/255 for bytes); None
            keeps 1. Integer inputs are never scaled.
        batch_norm: "inference" or "train" (see `OnnxLayer`).
        name: the model's name.
        untie: initializers that several nodes read, to make one weight per node (names or glob patterns, or
            True for all; `_tied.untie_weights`). By default those the file proves separate are untied (torch's
            TorchScript Identity copies of merged parameters, dynamo metadata naming other parameters) and the
            other shared ones that train are warned about; False keeps the file's sharing.

    Returns:
        A Model whose graph is Input(s) -> OnnxLayer.

    Raises:
        InvalidArgumentError, UnsupportedError, ModelFileError: see `OnnxLayer`.

    Example:
        >>> model = from_onnx("mlp.onnx", frozen=["fc1.*"])  # doctest: +SKIP
        >>> model.compile(optimizer=SGD(0.1), loss="softmax_cross_entropy_with_logits")  # doctest: +SKIP
    """
    result = imported_model(
        model,
        trainable=trainable,
        frozen=frozen,
        outputs=outputs,
        batch_norm=batch_norm,
        name=name,
        caller="from_onnx",
        untie=untie,
    )
    if input_scale is not None:
        if isinstance(input_scale, bool) or not isinstance(input_scale, int | float) or not input_scale > 0:
            raise InvalidArgumentError(
                f"from_onnx(input_scale=...) expects a positive number. Received: input_scale={input_scale!r}"
            )
        result.input_scale = float(input_scale)
    return result


def imported_model(
    model: Any,
    *,
    trainable: bool | str | Sequence[str] | None,
    frozen: str | Sequence[str] | None,
    outputs: Sequence[str] | None = None,
    batch_norm: str = "inference",
    name: str,
    caller: str,
    untie: Untie = None,
) -> Model:
    """`from_onnx` but `input_scale`, for a `caller` whose errors name its own arguments: the `finetune` command
    names its options (`--trainable`, see `OnnxLayer`'s `caller`) and takes a graph of one output."""
    proto = read_model(model, caller)
    if outputs is None and companion_outputs(proto):
        outputs = [o.name for o in proto.graph.output if o.name not in companion_outputs(proto)]
    layer = OnnxLayer(
        proto,
        trainable=True if trainable is None else trainable,
        outputs=outputs,
        frozen=frozen,
        batch_norm=batch_norm,
        prefix_names=False,
        name="onnx_model",
        untie=untie,
        pack_outputs=caller not in COMMANDS,
        caller=caller,
    )
    several = layer.multi_input
    inputs = [
        Input(*shape, name=_input_name(value.name) if several else None, dtype=input_dtype(value))
        for value, shape in zip(layer.data_inputs, layer.data_shapes, strict=True)
    ]
    output = layer(inputs if several else inputs[0])
    if layer.pack_outputs and len(layer.output_shapes) > 1:
        taken = {str(x.name) for x in inputs} if several else set()
        outputs_ = []
        start = 0
        for value, shape in zip(layer.graph.graph.output, layer.output_shapes, strict=True):
            layer_name = output_layer_name(value.name, taken)
            taken.add(layer_name)
            outputs_.append(OnnxOutput(start, shape, name=layer_name)(output))
            start += math.prod(shape)
        return Model(inputs if several else inputs[0], outputs_, name=name, seed=0)
    return Model(inputs if several else inputs[0], output, name=name, seed=0)


def companion_outputs(model: onnx.ModelProto) -> list[str]:
    """The outputs of an onnxtrain export that its loss added beside the model's own: `probabilities` after the
    one output `logits`, `<name>_probabilities` after `<name>` (`_export_names`). Imported as outputs of their
    own they would ask a loss each (a model of several outputs), though they are the softmax (or sigmoid) of the
    logits: `from_onnx` leaves them out, and the loss adds them again when the model is exported. Empty for a
    file onnxtrain did not write (its `onnxtrain.version` metadata says it did)."""
    if not any(entry.key == _ONNXTRAIN_VERSION for entry in model.metadata_props):
        return []
    names = [output.name for output in model.graph.output]
    found = [
        name
        for name in names
        if name.endswith(f"_{PROBABILITIES_NAME}") and name[: -len(PROBABILITIES_NAME) - 1] in names
    ]
    if PROBABILITIES_NAME in names and LOGITS_NAME in names:
        found.append(PROBABILITIES_NAME)
    return found if len(found) < len(names) else []


def input_dtype(value: onnx.ValueInfoProto) -> str:
    """The Input dtype for a foreign graph input: its own when it holds int64 or int32 ids (the export keeps that
    type, so code that fed the original model int64 ids feeds the export the same), float32 for any other (a
    float16 or uint8 input is fed float32 and cast inside the graph, as before). An `Input` put in front of an
    `OnnxLayer` (a new head) takes it too: `Input(*layer.data_shapes[0], dtype=input_dtype(layer.data_inputs[0]))`."""
    integers: dict[int, str] = {onnx.TensorProto.INT64: "int64", onnx.TensorProto.INT32: "int32"}
    return integers.get(value.type.tensor_type.elem_type, "float32")


def output_layer_name(name: str, taken: set[str]) -> str:
    """A foreign graph output's name as its `OnnxOutput` layer's, which a model of several outputs names the
    output by (`compile(loss={name: ...})`): no dots, slashes, spaces or colons, and neither a name onnxtrain's
    graphs use (`logits` -> `logits_output`) nor one in `taken` (the inputs', the other outputs')."""
    cleaned = re.sub(r"[ ./:]+", "_", name).strip("_") or "output"
    candidate = f"{cleaned}_output" if cleaned in RESERVED_NAMES or cleaned in taken else cleaned
    n = 1
    while candidate in taken:
        n += 1
        candidate = f"{cleaned}_output_{n}"
    return candidate


def _input_name(name: str) -> str:
    """A foreign graph input's name as an Input layer's (no dots, slashes, spaces or colons; not a reserved one)."""
    cleaned = re.sub(r"[ ./:]+", "_", name).strip("_") or "x"
    return f"x_{cleaned}" if cleaned in RESERVED_NAMES else cleaned
