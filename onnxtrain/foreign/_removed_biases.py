"""Zero biases the dynamo exporter's optimizer removed, restored as weights.

onnxscript's rules `RemoveOptionalBiasFrom{Gemm,Conv,ConvTranspose}` (run by `torch.onnx.export(..., dynamo=True)`
with its default `optimize=True`) drop a bias input that holds only zeros: a fresh `nn.MultiheadAttention`'s
`out_proj.bias`. The graph computes the same, but the parameter is gone: imported as it is, it never trains, and
fine-tuning drifts from torch's (9,770 parameters where torch has 9,802; 5e-3 off after a few steps). The node's
metadata proves what was there: the rule's name, and the aten call (`aten.linear(%view_7,
%p_..._out_proj_weight, %p_..._out_proj_bias)`) naming a parameter the graph no longer holds. Such a node gets
the bias back, a zero initializer of that parameter's name, as its C (Gemm) or B (Conv) input.

The rule also fires where torch's module never had a bias (`nn.Conv2d(..., bias=False)`: the exporter writes a
zero bias for the call's `None`, which the optimizer then drops). Such a node's aten call says so
(`aten.conv2d(%x, %p_conv_weight, None, ...)`, or `aten.linear(%x, %p_proj_weight)` without the argument): it gets
nothing back and is not warned about, as nothing was lost.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import onnx
from onnx import numpy_helper

from onnxtrain.foreign._tied import fresh, names_in
from onnxtrain.foreign._torch_names import (
    FX_NODE,
    POSITIONAL,
    REWRITE_RULES,
    FxCall,
    fx_call,
    signature,
    torch_names,
    unaccounted,
)
from onnxtrain.foreign._user_frame import user_stacklevel

_BIASED = ("Gemm", "Conv", "ConvTranspose")  # the bias is input 2 of each


def restore_removed_biases(model: onnx.ModelProto, owner: str, warn: bool) -> onnx.ModelProto:
    """`model` (copied where it changes) with each zero bias the exporter's optimizer removed back as a zero
    initializer named after its torch parameter, read by its node again; the nodes of one parameter (a module
    called twice) read one. A removal the metadata records but whose parameter or size it leaves open is warned
    about when `warn` (a file's first import), naming the nodes and the fix."""
    if not any(n.op_type in _BIASED and _bias_removed(n) for n in model.graph.node):
        return model
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    placeholders = signature(graph)
    weights = [t.name for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    held = set(torch_names(graph, weights).values())  # parameters that unnamed weights hold
    groups: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        call = fx_call(node)
        if call is not None:
            groups.setdefault(call.name, []).append(node)
    taken = names_in(graph)
    restored = {v.name: v.name for v in [*graph.initializer, *graph.input]}  # a parameter the graph holds: a tie
    left = []
    for node in graph.node:
        if node.op_type not in _BIASED or not _bias_removed(node):
            continue
        parameter = _removed_parameter(node, groups, placeholders, held)
        bias = _bias_type(graph, node)
        if parameter is None or bias is None:
            left.append(node)
            continue
        if parameter not in restored:
            restored[parameter] = fresh(parameter, taken)
            taken.add(restored[parameter])
            zeros = np.zeros(bias[0], dtype=onnx.helper.tensor_dtype_to_np_dtype(bias[1]))
            graph.initializer.append(numpy_helper.from_array(zeros, restored[parameter]))
        del node.input[2:]
        node.input.append(restored[parameter])
    if left and warn:
        _warn_left(left, owner)
    return result


def _bias_removed(node: onnx.NodeProto) -> bool:
    """Whether the optimizer removed a bias `node` had: its rule is recorded, and the aten call it lowers had a
    bias argument (one the metadata does not show counts as had)."""
    rules = next((p.value for p in node.metadata_props if p.key == REWRITE_RULES), "")
    biased = len(node.input) > 2 and node.input[2]
    ruled = f"RemoveOptionalBiasFrom{node.op_type}" in {r.strip() for r in rules.split(",")}
    return not biased and ruled and not _called_without_bias(node)


def _called_without_bias(node: onnx.NodeProto) -> bool:
    """Whether `node` lowers a linear or convolution call whose bias is `None` or left out (`bias=False`)."""
    call = fx_call(node)
    return call is not None and POSITIONAL.search(call.target) is not None and _bias_argument(node, call) == "None"


def _bias_argument(node: onnx.NodeProto, call: FxCall) -> str:
    """The bias argument of a linear or convolution call as written (`%p_fc_bias`, `None`): its positional
    argument 2, else a `bias` keyword, else `None` (left out)."""
    if len(call.args) > 2:
        return call.args[2]
    text = next((p.value for p in node.metadata_props if p.key == FX_NODE), "")
    keyword = re.search(r"kwargs = \{.*?\bbias: ([^,}]+)", text)
    return keyword.group(1).strip() if keyword else "None"


def _removed_parameter(
    node: onnx.NodeProto, groups: dict[str, list[onnx.NodeProto]], placeholders: dict[str, str], held: set[str]
) -> str | None:
    """The torch name of the bias removed from `node`: of the parameters its aten call reads that no node of the
    call reads (by name, or as an unnamed weight holding it), the bias argument of a linear or convolution call
    (`aten.linear(x, W, b)`), else the only one."""
    call = fx_call(node)
    if call is None or not placeholders:
        return None
    group = groups[call.name]
    if POSITIONAL.search(call.target):
        bias = placeholders.get(_bias_argument(node, call)[1:])
        if bias is not None and bias not in held and all(bias not in n.input for n in group):
            return bias
    missing = unaccounted(call, group, placeholders, held)
    return missing[0] if len(missing) == 1 else None


def _bias_type(graph: onnx.GraphProto, node: onnx.NodeProto) -> tuple[int, int] | None:
    """The bias's length and element type, from the weight's: Gemm's N (B is [K, N], or [N, K] with transB),
    Conv's M (W is [M, C/group, ...]), ConvTranspose's C_out (W is [C, C_out/group, ...]); None where the weight
    is neither an initializer nor a graph input of known shape."""
    found = _shape_and_type(graph, node.input[1]) if len(node.input) > 1 else None
    if found is None or len(found[0]) < 2:
        return None
    dims, elem = found
    attributes = {a.name: a.i for a in node.attribute}
    if node.op_type == "Gemm":
        return (dims[0] if attributes.get("transB", 0) else dims[1]), elem
    if node.op_type == "Conv":
        return dims[0], elem
    return dims[1] * attributes.get("group", 1), elem


def _shape_and_type(graph: onnx.GraphProto, name: str) -> tuple[list[int], int] | None:
    for tensor in graph.initializer:
        if tensor.name == name:
            return list(tensor.dims), tensor.data_type
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name == name and dims and all(d.HasField("dim_value") for d in dims):
            return [d.dim_value for d in dims], value.type.tensor_type.elem_type
    return None


def _warn_left(nodes: list[onnx.NodeProto], owner: str) -> None:
    shown = ", ".join(f"{n.op_type} {n.name or n.output[0]!r}" for n in nodes[:6])
    more = f" and {len(nodes) - 6} more" if len(nodes) > 6 else ""
    warnings.warn(
        f"{owner}: the exporter's optimizer removed the zero bias of {len(nodes)} node(s) ({shown}{more}), and the "
        "export's metadata does not say which parameter it was or its size, so it cannot be restored: those "
        "nodes train without the bias torch's modules have. Export with torch.onnx.export(..., dynamo=True, "
        "optimize=False), which keeps each bias.",
        UserWarning,
        stacklevel=user_stacklevel(),  # from_onnx's caller, OnnxLayer's
    )
