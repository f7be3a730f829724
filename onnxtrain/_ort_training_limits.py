"""What ONNX Runtime 1.19's training build cannot train, refused before onnxblock tries (recurrent ops, AveragePool
gradients over a symbolic batch) or explained after it fails (`explained`, `gradient_refused`): each as one
onnxtrain error that names the node and points to engine='portable'. `_ort_training.write_artifacts` calls these;
this module imports no part of `onnxruntime.training` (see `_ort_training`'s docstring for the quirks)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import onnx

from onnxtrain import emit
from onnxtrain.errors import InvalidArgumentError, OnnxtrainError, UnsupportedError
from onnxtrain.foreign._layer import imported_node
from onnxtrain.graph import DEFAULT_OPSET


def refuse_recurrent(forward: onnx.ModelProto) -> None:
    """Refuse a training graph with an RNN, GRU or LSTM node (see the module docstring: ORT 1.19 trains none)."""
    node = next(
        (n for n in forward.graph.node if n.op_type in ("RNN", "GRU", "LSTM") and n.domain in ("", "ai.onnx")), None
    )
    if node is not None:
        raise UnsupportedError(
            f"ONNX Runtime training 1.19 cannot differentiate the {node.op_type} node {node.name!r} (it has no RNN "
            "gradient, and the LSTM and GRU gradient graphs it builds fail its own type check), so the ort-training "
            "engine cannot train this model. Compile with engine='portable', which trains recurrent layers."
        )


def refuse_average_pool_gradients(forward: onnx.ModelProto, trainable: Sequence[str], layers: Sequence[Any]) -> None:
    """Refuse an AveragePool node that the loss's gradient flows back through (a trainable weight before it) in a
    form ONNX Runtime training 1.19's AveragePoolGrad kernel gets wrong (see `_average_pool_gradient_flaw`).

    Where no trainable weight comes before it (the pool reads the model's input), ORT builds no AveragePoolGrad
    and the node trains."""
    pools = [n for n in forward.graph.node if n.op_type == "AveragePool" and n.domain in ("", "ai.onnx")]
    if not pools:
        return
    active = _differentiated_values(forward, trainable)
    pools = [n for n in pools if n.input[0] in active]
    if not pools:
        return
    try:
        inferred = onnx.shape_inference.infer_shapes(forward).graph
    except Exception:  # onnx's InferenceError, or a model over protobuf's 2 GiB: no shape is known then
        inferred = forward.graph
    shapes = {v.name: v.type.tensor_type for v in [*inferred.input, *inferred.value_info, *inferred.output]}
    for node in pools:
        flaw = _average_pool_gradient_flaw(node, shapes.get(node.input[0]))
        if flaw is None:
            continue
        raise UnsupportedError(
            f"ONNX Runtime training 1.19 cannot differentiate the AveragePool node {_node_named(node, layers)}: "
            f"{flaw}, so the ort-training engine cannot train this model. Compile with engine='portable', which "
            "trains AveragePool in every form."
        )


def _average_pool_gradient_flaw(node: onnx.NodeProto, input_type: Any) -> str | None:
    """Why ORT 1.19's AveragePoolGrad cannot give `node`'s input gradient, or None where it can.

    The kernel takes the shape of the gradient it writes from the input's shape as known when the session is
    built, not from the gradient it reads (MaxPoolGrad reads the batch from it; AveragePoolGrad does not): an
    unknown dimension counts as 0 there, so with the symbolic batch of every training graph the first step fails
    ("Can broadcast 0 by 0 or 1") or kills the process with SIGFPE. It also ignores auto_pad and dilations, and
    is wrong for 3-D windows (tests/test_autodiff_nn_rules.py compares it with finite differences).
    """
    dims = list(input_type.shape.dim) if input_type is not None and input_type.HasField("shape") else None
    if dims is None or not all(d.HasField("dim_value") and d.dim_value > 0 for d in dims):
        shown = [d.dim_value if d.HasField("dim_value") else d.dim_param or "?" for d in dims] if dims else "unknown"
        return (
            f"its AveragePoolGrad kernel sizes the gradient by the input shape known when the graph is built, "
            f"here {shown}, not by the batch it runs on, and the first training step would fail or kill the process"
        )
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID"):  # VALID pads nothing, as NOTSET's default
        return "its AveragePoolGrad ignores auto_pad, so the gradients would be wrong"
    if any(d != 1 for d in attributes.get("dilations", [])):
        return "its AveragePoolGrad ignores dilations, so the gradients would be wrong"
    if len(dims) == 5:
        return "its AveragePoolGrad is wrong for 3-D windows, so the gradients would be wrong"
    return None


def _differentiated_values(forward: onnx.ModelProto, trainable: Sequence[str]) -> set[str]:
    """The values on a path from a trainable weight to the loss: those whose gradient ORT's builder computes."""
    reached = set(trainable)
    for node in forward.graph.node:
        if any(name in reached for name in node.input):
            reached.update(out for out in node.output if out)
    useful = {emit.LOSS_NAME}
    for node in reversed(forward.graph.node):
        if any(out in useful for out in node.output):
            useful.update(name for name in node.input if name in reached)
    return reached & useful


# ORT's gradient builder throws for forms of an op it has a gradient for but cannot build (1.19: Pow's exponent,
# Pad other than mode='constant'): "gradient_builder.cc:<line> ... Get<Op>Gradient::GetGradientDefsImpl() const
# <reason>".
_BUILDER_REFUSAL = re.compile(r"gradient_builder\.cc:\d+ .*?Get(\w+)Gradient::GetGradientDefsImpl\(\) const (.*)", re.S)
_CANNOT = ("not implemented", "currently support", "not supported")


def gradient_refused(
    error: RuntimeError, forward: onnx.ModelProto, trainable: Sequence[str], layers: Sequence[Any]
) -> UnsupportedError | None:
    """The gradient builder's refusal of an op's form ("not implemented", "currently supports") in onnxtrain's
    words: the op, the node, what ORT cannot do; None for its other errors. No opset would help here."""
    found = _BUILDER_REFUSAL.search(str(error))
    reason = " ".join(found.group(2).split()).rstrip(".") if found else ""
    if found is None or not any(words in reason for words in _CANNOT):
        return None
    op = found.group(1)
    active = _differentiated_values(forward, trainable)
    nodes = [n for n in forward.graph.node if n.op_type == op and any(name in active for name in n.input)]
    if op == "Pow":
        nodes = [n for n in nodes if len(n.input) > 1 and n.input[1] in active]
        weights = ", ".join(map(repr, _weights_reaching([n.input[1] for n in nodes], forward, trainable)))
        what = (
            f"ONNX Runtime has no gradient for Pow's exponent (input 1), and here it depends on the trainable {weights}"
        )
        fix = f"engine='portable', which differentiates the exponent too, or freeze {weights or 'those weights'}"
    elif op == "Pad":
        nodes = [n for n in nodes if _attribute(n, "mode", b"constant") != b"constant"]
        modes = " and ".join(sorted({repr(_attribute(n, "mode", b"constant").decode()) for n in nodes}))
        what = f"ONNX Runtime's Pad gradient takes mode='constant' only, not mode={modes}"
        fix = "engine='portable', which trains every Pad mode"
    else:
        what = f"ONNX Runtime's gradient builder refuses its form: {reason!r}"
        fix = f"engine='portable', whose autodiff has its own {op} rule (docs/autodiff.md lists the forms it trains)"
    names = [_node_named(n, layers) for n in nodes]
    where = f"the {op} node {names[0]}" if len(names) == 1 else f"the {op} nodes {', '.join(names) or '(unknown)'}"
    return UnsupportedError(
        f"ONNX Runtime training 1.19 cannot build the gradient of {where}: {what}, so the ort-training engine "
        f"cannot train this model. Compile with {fix}."
    )


def _attribute(node: onnx.NodeProto, name: str, default: Any) -> Any:
    found = next((a for a in node.attribute if a.name == name), None)
    return onnx.helper.get_attribute_value(found) if found is not None else default


def _weights_reaching(values: Sequence[str], forward: onnx.ModelProto, trainable: Sequence[str]) -> list[str]:
    """The trainable weights that `values` are computed from."""
    producers = {out: node for node in forward.graph.node for out in node.output if out}
    seen, pending = set(), list(values)
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            if name in producers:
                pending.extend(i for i in producers[name].input if i)
    return [name for name in trainable if name in seen]


def _node_named(node: onnx.NodeProto, layers: Sequence[Any]) -> str:
    """`node` as the user knows it: the imported file's name where it copies a node of one (`imported_node`)."""
    copied = imported_node(layers, node)
    if copied is None:
        return repr(node.name)
    return f"{copied.name or copied.output[0]!r} of the imported graph (here {node.name!r})"


def explained(error: RuntimeError, opset: int, ir_version: int) -> OnnxtrainError:
    """ONNX Runtime's RuntimeError from building the training graphs, as the onnxtrain error it stands for."""
    missing = re.search(r"gradient builder has not been registered: (\w+) for node (\S+)", str(error))
    if missing:
        return UnsupportedError(
            f"ONNX Runtime training has no gradient for the {missing.group(1)} operator (node "
            f"{missing.group(2)}), so the ort-training engine cannot train this model."
        )
    # Others are ORT's refusals of the model, e.g. opset 22 on ORT 1.19 ("Opset 22 is under development"). The
    # reason comes last in ORT's text, after the C++ source location.
    cause = " ".join(str(error).split()).rstrip(".")
    # Only a refusal that names the opset or IR version is helped by another (a QDQ graph's "There must only be a
    # single node consuming the output of QuantizeLinear" is not): the others point to the portable engine.
    about_versions = re.search(r"opset|ir.?version", cause, re.IGNORECASE) is not None
    fix = (
        f"Try an older --opset or opset=... (the default is {DEFAULT_OPSET}), or a lower IR version."
        if about_versions
        else "compile(engine='portable') builds the gradients with onnxtrain.autodiff instead."
    )
    return InvalidArgumentError(
        f"ONNX Runtime could not build training artifacts with opset {opset} and IR version {ir_version}: "
        f"{'…' + cause[-300:] if len(cause) > 300 else cause}. {fix}"
    )
