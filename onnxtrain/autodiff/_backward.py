"""Reverse-mode differentiation of the nodes a GraphBuilder holds: `backward` (inside a builder) and `gradients`
(a ModelProto in, the same model with `<name>_grad` outputs out)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from onnxtrain._graph_names import subgraph_reads
from onnxtrain.autodiff._context import GradientContext, GraphFacts
from onnxtrain.autodiff._missing_rules import missing_rules_message, outer_reads
from onnxtrain.autodiff._model_argument import (
    ONNX_ERRORS,
    check_float_wrt,
    drop_stale_value_info,
    invalid_model_error,
    read_model,
)
from onnxtrain.autodiff._recurrent import is_recurrent, make_time_major, unroll_recurrent, unrolled_for_gradient
from onnxtrain.autodiff._rules import lookup
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnsupportedError, listing
from onnxtrain.graph import GraphBuilder

GRAD_SUFFIX = "_grad"


def backward(builder: GraphBuilder, loss: str, wrt: Sequence[str]) -> dict[str, str]:
    """Emit, into `builder`, the gradient of scalar `loss` with respect to each value in `wrt`, differentiating the
    nodes the builder holds so far.

    Only nodes on a path from a `wrt` value to the loss through floating-point values are differentiated; a `wrt`
    value with no such path gets zeros. Gradients of a value's consumers are summed with one Sum node.

    Args:
        builder: holds the forward graph (see `GraphBuilder.from_model` for a finished model).
        loss: a scalar (one-element) floating-point value of the graph.
        wrt: graph inputs, initializers or other values to differentiate with respect to.

    Returns:
        wrt name -> the name of its gradient value (same shape and dtype).

    Raises:
        InvalidArgumentError: `loss` or a `wrt` name is not a value of the graph.
        ShapeError: the loss is not a scalar.
        UnsupportedError: an op on the path to the loss has no gradient rule, or a form its rule refuses (an
            RNN/GRU/LSTM node's activation_alpha, say).
    """
    _check_names(builder, builder.nodes, loss, wrt)
    _unroll_recurrent_ops(builder, loss, wrt)
    nodes = builder.nodes
    facts = GraphFacts.of(builder)
    check_float_wrt(facts.types, wrt, "backward")
    _check_loss(facts, loss)
    active = _active_values(nodes, facts, loss, wrt)

    seed = _seed(builder, facts, loss) if loss in active else None
    grads: dict[str, list[str]] = {loss: [seed]} if seed else {}
    for node in reversed(nodes):
        if not any(out in active for out in node.output):
            continue
        grad_outputs = [_total(builder, grads, out) if out in active else None for out in node.output]
        needs = [bool(name) and name in active for name in node.input]
        captures = any(name in active for name in outer_reads(node))  # an If branch reads a weight, say
        if not (any(needs) or captures) or all(g is None for g in grad_outputs):
            continue
        rule = lookup(node.domain, node.op_type)
        if rule is None or captures:  # every node that cannot be differentiated, in one error
            raise UnsupportedError(missing_rules_message(builder, nodes, loss, wrt, active))
        ctx = GradientContext(node, builder, facts, grad_outputs, needs)
        results = list(rule(ctx))[: len(needs)]  # a rule may list optional inputs the node leaves out
        results += [None] * (len(needs) - len(results))
        for name, need, grad in zip(node.input, needs, results, strict=True):
            if need and grad is not None:
                grads.setdefault(name, []).append(grad)

    result = {}
    for name in dict.fromkeys(wrt):
        total = _total(builder, grads, name) if name in grads else None
        result[name] = total if total is not None else _zeros(builder, facts, name)
    if seed and seed not in result.values():
        builder.remove_if_unread(seed)  # the loss rule multiplied by it for nothing (`GradientContext.times`)
    return result


def gradients(
    model: onnx.ModelProto | str | os.PathLike[str], wrt: Sequence[str], loss: str = "loss"
) -> onnx.ModelProto:
    """`model` with one more output per name in `wrt`: `<name>_grad`, the gradient of scalar output `loss` with
    respect to that initializer or graph input (same shape and dtype), computed by standard ONNX ops.

    `model` is a ModelProto or the path of an .onnx file (external data read from its folder). Shapes are inferred
    from its graph inputs: where they have a symbolic dimension, the sizes an exporter recorded in `value_info`
    are not trusted (`_model_argument.drop_stale_value_info`).

    Example:
        >>> model = onnxtrain.emit.loss_model(layers, loss)
        >>> trained = gradients(model, ["dense_1.kernel", "dense_1.bias"])  # outputs loss, logits, *_grad

    Raises:
        InvalidTypeError: `model` is neither a ModelProto nor a path.
        ModelFileError: the file cannot be read.
        InvalidArgumentError: `loss` or a `wrt` name is not in the model, a `wrt` value is of an integer or bool
            type, an output `<name>_grad` exists, or onnx's checker refuses the model (its reason given).
        ShapeError: the loss is not a scalar.
        UnsupportedError: an op on the path to the loss has no gradient rule (all of them listed), or a form its
            rule refuses.
    """
    if isinstance(wrt, str):
        raise InvalidArgumentError(f"gradients(wrt=...) expects a sequence of names. Received: wrt={wrt!r}")
    model = read_model(model)
    try:
        return _gradients(model, wrt, loss)
    except ONNX_ERRORS as e:  # an exporter's invalid graph (onnx's checker says why), not a failure of ours
        error = invalid_model_error(model, "gradients")
        if error is None:
            raise
        raise error from e


def _gradients(model: onnx.ModelProto, wrt: Sequence[str], loss: str) -> onnx.ModelProto:
    builder = GraphBuilder.from_model(model)
    _check_names(builder, builder.nodes, loss, wrt, "gradients")
    drop_stale_value_info(builder)
    types = builder.value_types()
    check_float_wrt(types, wrt, "gradients")
    builder.complete_output_types(types)
    taken = [f"{name}{GRAD_SUFFIX}" for name in wrt if f"{name}{GRAD_SUFFIX}" in builder._names]
    if taken:
        raise InvalidArgumentError(f"gradients() adds outputs named <name>_grad; the model already has {taken}.")
    with builder.scope("gradients"):  # keeps the `<name>_grad` output names free
        grads = backward(builder, loss, wrt)
    for name, grad in grads.items():
        value_type = types[name].tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(value_type.elem_type)
        dims = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or f"{name}{GRAD_SUFFIX}_dim{i}")
            for i, d in enumerate(value_type.shape.dim)
        ]
        builder.add_output(grad, f"{name}{GRAD_SUFFIX}", dtype, dims)
    return builder.build(model.graph.name or "onnxtrain_gradients")


def _check_names(
    builder: GraphBuilder, nodes: Sequence[onnx.NodeProto], loss: str, wrt: Sequence[str], caller: str = "backward"
) -> None:
    sources = [v.name for v in builder.inputs] + [t.name for t in builder.initializers]
    values = set(sources) | {out for node in nodes for out in node.output if out}
    if not isinstance(loss, str) or loss not in values:
        outputs = [v.name for v in builder.outputs]
        raise InvalidArgumentError(
            f"{caller}(loss=...) expects a value of the graph, such as one of its outputs "
            f"{listing(outputs, 8)}. Received: loss={loss!r}"
        )
    missing = [name for name in wrt if not isinstance(name, str) or name not in values]
    if missing:
        raise InvalidArgumentError(
            f"{caller}(wrt=...) expects graph inputs or initializers (or other values of the graph), such as "
            f"{listing(dict.fromkeys(sources), 8)}. Received names not in the graph: {missing}"
        )


def _check_loss(facts: GraphFacts, loss: str) -> None:
    shape = facts.shape(loss)
    if not facts.is_float(loss):
        raise InvalidArgumentError(
            f"The loss {loss!r} must be a floating-point tensor. Received element type "
            f"{onnx.TensorProto.DataType.Name(facts.elem_type(loss) or 0)}."
        )
    if shape is None or not all(isinstance(d, int) for d in shape) or int(np.prod(shape)) != 1:  # type: ignore[arg-type]
        raise ShapeError(
            f"The loss {loss!r} must be a scalar (one element; shape () or (1,)). Received: shape "
            f"{'unknown' if shape is None else tuple(shape)}. Reduce it (e.g. ReduceMean with keepdims=0) first."
        )


def _unroll_recurrent_ops(builder: GraphBuilder, loss: str, wrt: Sequence[str]) -> None:
    """Replace the RNN, GRU and LSTM nodes on the path to the loss that the Scan rule (`_recurrent_scan.py`) does not
    take (`unrolled_for_gradient`: LSTM's peepholes) by their unrolled equations (`_recurrent.py`), which the rules
    differentiate; the others stay the op (in layout 0, which ONNX Runtime's kernels need), and so do the recurrent
    nodes off the path (frozen, say)."""
    if not any(is_recurrent(node) for node in builder.nodes):
        return
    facts = GraphFacts.of(builder)
    active = _active_values(builder.nodes, facts, loss, wrt)
    on_path = [n for n in builder.nodes if is_recurrent(n) and any(o in active for o in n.output)]
    unrolled = [n for n in on_path if unrolled_for_gradient(n, facts)]
    unroll_recurrent(builder, unrolled)
    batch_major = [n for n in on_path if n not in unrolled and any(a.name == "layout" and a.i for a in n.attribute)]
    make_time_major(builder, batch_major)


def _active_values(nodes: Sequence[onnx.NodeProto], facts: GraphFacts, loss: str, wrt: Sequence[str]) -> set[str]:
    """The floating-point values on a path from a `wrt` value to the loss (the wrt values and the loss included)."""
    reached = set(wrt)
    reads = {id(node): [*node.input, *subgraph_reads([node])] for node in nodes}
    for node in nodes:
        if any(name in reached for name in reads[id(node)] if name):
            reached.update(out for out in node.output if out and facts.is_float(out))
    useful = {loss}
    for node in reversed(nodes):
        if any(out in useful for out in node.output):
            useful.update(name for name in reads[id(node)] if name in reached)
    return reached & useful


def _seed(builder: GraphBuilder, facts: GraphFacts, loss: str) -> str:
    """dL/dL: ones of the loss's shape and dtype, known to the rules as ones (`GradientContext.is_one`)."""
    dtype = onnx.helper.tensor_dtype_to_np_dtype(facts.elem_type(loss) or onnx.TensorProto.FLOAT)
    shape = tuple(d for d in facts.shape(loss) or () if isinstance(d, int))  # static: checked by _check_loss
    seed = builder.constant(np.ones(shape, dtype), f"{loss}_grad_seed", dtype)
    facts.ones.add(seed)
    facts.types[seed] = onnx.helper.make_tensor_type_proto(facts.elem_type(loss) or onnx.TensorProto.FLOAT, shape)
    facts.constants[seed] = np.ones(shape, dtype)
    return seed


def _total(builder: GraphBuilder, grads: dict[str, list[str]], name: str) -> str | None:
    """The sum of the gradients that `name`'s consumers contributed (one Sum node for several); None for none."""
    parts = grads.get(name)
    if not parts:
        return None
    if len(parts) > 1:
        grads[name] = [builder.node("Sum", parts, hint=f"{name}_grad")]
    return grads[name][0]


def _zeros(builder: GraphBuilder, facts: GraphFacts, name: str) -> str:
    """Zeros shaped like `name`, for a wrt value that the loss does not depend on."""
    dtype = onnx.helper.tensor_dtype_to_np_dtype(facts.elem_type(name) or onnx.TensorProto.FLOAT)
    shape = facts.shape(name)
    zero = numpy_helper.from_array(np.zeros(1, dtype))
    if shape is not None and all(isinstance(d, int) for d in shape):
        dims = builder.constant(np.array(shape, np.int64), f"{name}_shape", np.int64)
    else:
        dims = builder.node("Shape", [name], hint=f"{name}_shape")
    return builder.node("ConstantOfShape", [dims], hint=f"{name}_grad_zeros", value=zero)
