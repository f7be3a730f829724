"""A foreign ONNX graph as an `OnnxLayer` holds it: read, cut at chosen values, shape subgraphs folded, weights split.
The shapes of its values (inference, per-example shapes, the batch dimension) are `_graph_shapes`, re-exported here.

The layer keeps the graph *weight-free*: each float32 initializer (a weight) becomes an extra graph input of the
same name, type and shape, and its value moves to the layer's parameters. Everything else (int initializers,
other constants) stays in the graph. The stripped graph is what the layer's config stores (base64), so a saved
model's config.json holds the structure and its checkpoint and model.onnx the weights, as for every layer.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from onnxtrain._onnx_file import check_onnx_model, read_onnx_model
from onnxtrain._runtime import optimized_by_ort
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnsupportedError
from onnxtrain.foreign import _cut
from onnxtrain.foreign._cut import keep_only
from onnxtrain.foreign._cut import value_names as value_names
from onnxtrain.foreign._graph_shapes import BATCH, Shape

# The shapes of the graph's values are _graph_shapes'; the layer and the inliner read them here too.
from onnxtrain.foreign._graph_shapes import check_batch_not_fixed as check_batch_not_fixed
from onnxtrain.foreign._graph_shapes import infer as infer
from onnxtrain.foreign._graph_shapes import inference_failure as inference_failure
from onnxtrain.foreign._graph_shapes import numpy_dtype as numpy_dtype
from onnxtrain.foreign._graph_shapes import per_example_shape as per_example_shape
from onnxtrain.foreign._graph_shapes import run_for_shape as run_for_shape
from onnxtrain.foreign._sequence_split import split_sequences

WEIGHTS_KEY = "onnxtrain.weights"  # metadata of a stripped graph: which graph inputs are weights (JSON list)
# ... and which of them held a value that is not finite when imported (a mask of 0 and -inf): an exporter's constant,
# frozen by default. Recorded from the values, which a layer rebuilt from its config (zeros until set) lacks.
NON_FINITE_KEY = "onnxtrain.non_finite_weights"
# ONNX Runtime's basic level, less every rewrite but constant folding: fusions (Conv+BatchNormalization) would
# merge the layers a user trains or freezes, and Dropout elimination would drop what training uses.
_NOT_FOLDING = [
    "Level1_RuleBasedTransformer",
    "CommonSubexpressionElimination",
    "ConstantSharing",
    "MatMulAddFusion",
    "ReshapeFusion",
    "FreeDimensionOverrideTransformer",
    "QDQPropagationTransformer",
    "EnsureUniqueDQForNodeUnitTransformer",
]


COMMANDS = frozenset({"finetune"})
"""Owners that are `onnxtrain` commands: their errors name options (`--trainable`), not arguments."""


def argument(owner: str, name: str) -> str:
    """How an error names argument `name` of `owner`: `from_onnx(trainable=...)`, or a command's `--trainable`."""
    return f"--{name}" if owner in COMMANDS else f"{owner}({name}=...)"


def read_model(source: object, owner: str) -> onnx.ModelProto:
    """`source` (a path, or a ModelProto, copied) as a ModelProto with its external data in memory, through the
    one gate for ONNX files (`onnxtrain._onnx_file`): external data only from the file's folder, every tensor's
    size checked against its dtype and shape.

    Raises:
        InvalidTypeError: `source` is neither.
        ModelFileError: the file cannot be read or parsed, or a tensor is refused (the message names it).
    """
    if isinstance(source, onnx.ModelProto):
        copy = onnx.ModelProto()
        copy.CopyFrom(source)
        check_onnx_model(copy, f"{owner}(model=...)")
        return copy
    if not isinstance(source, str | os.PathLike):
        raise InvalidTypeError(
            f"{owner} expects a path to an .onnx file or an onnx.ModelProto. Received: {type(source).__name__}"
        )
    return read_onnx_model(source)


def check_default_domain(model: onnx.ModelProto, owner: str) -> None:
    """Refuse graphs that an onnxtrain graph cannot hold: other op domains, local functions, subgraph ops."""
    foreign = sorted({f"{n.domain}:{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if foreign or model.functions:
        what = f"ops of other domains {foreign}" if foreign else f"local functions {[f.name for f in model.functions]}"
        raise UnsupportedError(f"{owner} takes graphs of the default ONNX domain only. Received a graph with {what}.")
    nested = sorted({n.op_type for n in model.graph.node for a in n.attribute if a.type in _GRAPH_ATTRIBUTES})
    if nested:
        raise UnsupportedError(
            f"{owner} does not import control flow yet. Received a graph with the subgraph ops {nested}."
        )


_GRAPH_ATTRIBUTES = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)


def opset_of(model: onnx.ModelProto) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise InvalidArgumentError("The ONNX model imports no default-domain opset; there is no graph to import.")
    return int(versions[0])


def min_ir_version(opset: int) -> int:
    """The oldest IR version that holds `opset` (ONNX Runtime 1.19, the training build, loads IR <= 10)."""
    return int(onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", opset)]))


def cut(model: onnx.ModelProto, outputs: Sequence[str], owner: str) -> onnx.ModelProto:
    """`model` computing `outputs` (value names, or torch module names) as its graph outputs, without the nodes and
    initializers they do not need (`_cut`).

    Raises:
        InvalidArgumentError: a name is a weight, no value of the graph, or an ambiguous module (the error says
            which values to take).
    """
    return _cut.cut(model, outputs, argument(owner, "outputs"))


def without_unread_statistics(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` without the BatchNormalization outputs after Y that nothing reads: a training-mode export's running
    and saved statistics (opset 13 and older have five outputs, which onnx's version converter refuses to take to
    opset 14). The layer computes Y in the mode it chooses (`OnnxLayer`'s batch_norm), never from these.

    A node left with Y alone loses its `training_mode` too: onnx's shape inference refuses training_mode=1 with
    fewer than three outputs ("should be 3 when Training_mode = True"), and would then know no value after it."""
    read = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
    read.discard("")
    result = onnx.ModelProto()
    result.CopyFrom(model)
    for node in result.graph.node:
        if node.op_type != "BatchNormalization":
            continue
        while len(node.output) > 1 and node.output[-1] not in read:
            del node.output[-1]
        for i in range(1, len(node.output)):
            if node.output[i] not in read:
                node.output[i] = ""  # an optional output left out
        if len(node.output) == 1:
            kept = [a for a in node.attribute if a.name != "training_mode"]
            del node.attribute[:]
            node.attribute.extend(kept)
    return result


def weight_names(model: onnx.ModelProto) -> list[str]:
    """The graph inputs of a stripped graph that are weights (its metadata says which)."""
    entry = next((e.value for e in model.metadata_props if e.key == WEIGHTS_KEY), "[]")
    return list(json.loads(entry))


def non_finite_weights(model: onnx.ModelProto) -> list[str]:
    """The weights of a stripped graph that held a non-finite value (±inf, nan) when imported (`split_weights`)."""
    entry = next((e.value for e in model.metadata_props if e.key == NON_FINITE_KEY), "[]")
    return list(json.loads(entry))


def weight_shape(stripped: onnx.ModelProto, name: str) -> Shape:
    value = next(v for v in stripped.graph.input if v.name == name)
    return tuple(int(d.dim_value) for d in value.type.tensor_type.shape.dim)


def split_weights(model: onnx.ModelProto, settings: set[str]) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The weight-free graph and the weights by initializer name: each float32 initializer not in `settings`
    becomes a graph input after the data inputs, listed in the metadata (`weight_names`). A graph stripped
    before keeps its weight inputs."""
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    graph = stripped.graph
    known = [name for name in weight_names(model) if name in {v.name for v in graph.input}]  # still inputs
    weights = {
        t.name: numpy_helper.to_array(t)
        for t in graph.initializer
        if t.data_type == onnx.TensorProto.FLOAT and t.name not in settings
    }
    kept = [t for t in graph.initializer if t.name not in weights]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    constants = {t.name for t in kept}
    data = [v for v in graph.input if v.name not in weights and v.name not in constants and v.name not in known]
    old = [v for v in graph.input if v.name in known]
    del graph.input[:]
    graph.input.extend([*data, *old])
    for name, array in weights.items():
        graph.input.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, array.shape))
    non_finite = [*non_finite_weights(model), *(name for name, a in weights.items() if not np.isfinite(a).all())]
    entries = [e for e in stripped.metadata_props if e.key not in (WEIGHTS_KEY, NON_FINITE_KEY)]
    del stripped.metadata_props[:]
    stripped.metadata_props.extend(entries)
    names = list(dict.fromkeys([*known, *weights]))
    stripped.metadata_props.append(onnx.StringStringEntryProto(key=WEIGHTS_KEY, value=json.dumps(names)))
    if non_finite:
        value = json.dumps(list(dict.fromkeys(non_finite)))
        stripped.metadata_props.append(onnx.StringStringEntryProto(key=NON_FINITE_KEY, value=value))
    return stripped, {name: np.asarray(a, dtype=np.float32, order="C") for name, a in weights.items()}


def fold_shapes(stripped: onnx.ModelProto, batch: int | None = None) -> onnx.ModelProto:
    """`stripped` with its constant subgraphs (shape computations over static dims) folded by ONNX Runtime's
    constant folding, then each SplitToSequence read only at constant positions made a Split
    (`_sequence_split`: torch's dynamo exporter writes `x.chunk(3)` so, and neither engine differentiates
    sequences). Weights are graph inputs there, so nothing that reads one is folded; the rest of ORT's rewrites
    are off (`_NOT_FOLDING`). Returns `stripped` itself when neither changes anything."""
    return split_sequences(_folded_by_ort(stripped))


def _folded_by_ort(stripped: onnx.ModelProto) -> onnx.ModelProto:
    """`stripped` with its constant subgraphs folded by ONNX Runtime, or itself when ORT cannot or changes nothing
    it may."""
    try:
        folded = optimized_by_ort(stripped, disabled_optimizers=_NOT_FOLDING)
    except Exception:  # ORT refuses the graph or writes none: keep it as it is, the engine will say why
        return stripped
    domains = {n.domain for n in folded.graph.node} - {"", "ai.onnx"}
    same_interface = [v.name for v in folded.graph.input] == [v.name for v in stripped.graph.input] and [
        v.name for v in folded.graph.output
    ] == [v.name for v in stripped.graph.output]
    if domains or not same_interface:
        return stripped
    del folded.opset_import[:]
    folded.opset_import.extend(o for o in stripped.opset_import if o.domain in ("", "ai.onnx"))
    folded.ir_version = stripped.ir_version
    del folded.graph.output[:]
    folded.graph.output.extend(stripped.graph.output)
    del folded.graph.input[:]
    folded.graph.input.extend(stripped.graph.input)
    del folded.metadata_props[:]
    folded.metadata_props.extend(stripped.metadata_props)
    # What folding computed becomes Constant nodes, as exporters write constants: as float initializers they would
    # be taken for weights when the stored graph is imported again (load_model, lora).
    own = {t.name for t in stripped.graph.initializer}
    computed = [t for t in folded.graph.initializer if t.name not in own]
    keep_only(folded.graph.initializer, own)
    constants = [onnx.helper.make_node("Constant", [], [t.name], name=f"{t.name}_folded", value=t) for t in computed]
    nodes = [*constants, *folded.graph.node]
    del folded.graph.node[:]
    folded.graph.node.extend(nodes)
    return folded


def with_dynamic_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """The data inputs' and outputs' first dimension made symbolic (`batch`): exporters often write 1 there."""
    weights = {t.name for t in model.graph.initializer} | set(weight_names(model))
    for value in [*model.graph.input, *model.graph.output]:
        shape = value.type.tensor_type.shape
        if value.name not in weights and shape.dim:
            shape.dim[0].Clear()
            shape.dim[0].dim_param = BATCH
    return model


def encode(stripped: onnx.ModelProto) -> str:
    return base64.b64encode(stripped.SerializeToString()).decode("ascii")


def decode(text: str, owner: str) -> onnx.ModelProto:
    try:
        proto = onnx.ModelProto()
        proto.ParseFromString(base64.b64decode(text.encode("ascii"), validate=True))
    except Exception as e:  # binascii.Error, protobuf's DecodeError
        raise InvalidArgumentError(f"{owner}: the config's graph is not base64 of an ONNX model: {e}") from e
    return proto
