"""Loss classes of one's own (`Loss` subclasses outside onnxtrain), recorded as their classes are defined, as layers
of one's own are: the name a save gives each (`saved_name`) and the classes a saved name finds (`defined_classes`),
which `onnxtrain.losses.get` reads after onnxtrain's own names; and their `emit`, `elements` and `emit_weighted`
checked where the graph is made (`checked`), which also marks a graph whose loss is not a mean of per-example values
(`WHOLE_BATCH_LOSS`)."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any

import onnx
from onnx import helper

from onnxtrain._layer_names import to_snake_case
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from onnxtrain.graph import GraphBuilder

# (Loss classes are typed as `type` here: `_loss_base` imports this module, and no cycle may run back to it.)

# "module.QualifiedName" -> the class, as each is defined: a class defined again (a notebook cell run twice) replaces
# the one before under its key.
DEFINED: dict[str, type] = {}
# The names (normalized) of onnxtrain's losses and their aliases, which `onnxtrain.losses.get` reads first: a class
# of one's own never takes one over (`onnxtrain.losses` fills this at import).
BUILT_IN: set[str] = set()


def normalized(name: str) -> str:
    """A loss name as the registry keys it: Keras' class names snake-cased ("SparseCategoricalCrossentropy",
    "KLDivergence"), each part between - or _, lower case."""
    return "_".join(to_snake_case(part) for part in re.split(r"[-_]", name.strip())).lower()


def is_own(cls: type) -> bool:
    """Whether `cls` is a class of one's own rather than onnxtrain's."""
    return not (cls.__module__ == "onnxtrain" or cls.__module__.startswith("onnxtrain."))


def class_key(cls: type) -> str:
    """The name a save gives a loss class of one's own that its name does not find: "module.QualifiedName", as a
    layer of one's own is saved ("__main__.SoftmaxMSE")."""
    return f"{cls.__module__}.{cls.__qualname__}"


def default_name(cls: type) -> str:
    """Keras' name of a loss whose class gives none: its class name in snake case ("SoftmaxMSE" -> "softmax_mse")."""
    return to_snake_case(cls.__name__)


def record(cls: type) -> None:
    """Record a Loss subclass of one's own as it is defined (`Loss.__init_subclass__`), and check what its methods
    emit (`checked`). A class that overrides `emit` or `emit_weighted` is taken as a loss of the whole batch
    (`averages_examples` False) unless it says otherwise."""
    if not is_own(cls):
        return
    DEFINED[class_key(cls)] = cls
    if "averages_examples" not in cls.__dict__ and not {"emit", "emit_weighted"}.isdisjoint(cls.__dict__):
        cls.averages_examples = False  # type: ignore[attr-defined]
    for method in CHECKED_METHODS:
        function = inspect.getattr_static(cls, method)  # a plain function; not a staticmethod, which takes no loss
        # `emit` even where inherited from onnxtrain's class: it marks a loss of the whole batch.
        wanted = method in cls.__dict__ or method == "emit"
        if wanted and inspect.isfunction(function) and not getattr(function, _CHECKED, False):
            setattr(cls, method, checked(method, function))


def class_name(cls: type) -> str:
    """The name a class gives its instances (a dataclass field's default, on the class), or ""."""
    given = getattr(cls, "name", "")
    return given.strip() if isinstance(given, str) else ""


def defined_classes(name: str) -> list[type]:
    """The loss classes of one's own defined in this process that a saved `name` finds, several where it is
    ambiguous: by key ("mod.SoftmaxMSE"), or by the name its class gives its instances or its class name
    ("softmax_mse", "SoftmaxMSE"), compared normalized. None for a name of onnxtrain's.

    A key of a script's class ("__main__.SoftmaxMSE") that no class has finds the classes of that name in any
    module, as a save from a script is loaded where the class is imported. A key of a named module finds that
    module's class alone: a class of the same name from another module may compute something else.
    """
    name = name.strip()
    if name in DEFINED:
        return [DEFINED[name]]
    if "." in name.strip("."):
        module, _, qualname = name.partition(".") if name.startswith("__main__.") else ("", "", "")
        return [cls for cls in DEFINED.values() if module and cls.__qualname__ == qualname]
    wanted = normalized(name)
    if not wanted or wanted in BUILT_IN:
        return []
    return [
        cls
        for cls in DEFINED.values()
        if wanted in {normalized(cls.__name__), normalized(class_name(cls) or cls.__name__)}
    ]


def saved_name(loss: Any) -> str:
    """The name a save gives a loss of one's own: the name its class gives it ("softmax_mse"), where that name
    finds this class alone; else its class's key, which does ("__main__.SoftmaxMSE")."""
    cls = type(loss)
    name = class_name(cls)
    if name and defined_classes(name) == [cls]:
        return name
    return class_key(cls)


# --- what an own loss emits ---------------------------------------------------------------------------------------

# Metadata of a graph whose loss is not a mean of per-example values (a class of one's own overriding `emit`, an RMSE
# of the batch say): the rows-weighted mean of its value over parts of a batch is not its value over the batch, so
# the portable engine does not split its step (`portable/_split_step.py`).
WHOLE_BATCH_LOSS = "onnxtrain.whole_batch_loss"
CHECKED_METHODS = ("emit", "elements", "emit_weighted")
_CHECKED = "_onnxtrain_checked"  # on a method `checked` made
_ARGUMENTS = {
    "emit": "(builder, output, labels)",
    "elements": "(builder, output, labels)",
    "emit_weighted": "(builder, output, labels, weights)",
}


def checked(method: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, a loss class's `method`, checking what it emits when it is called (`check_emitted`); an `emit`
    also marks the graph of a loss whose class says it does not average examples (`WHOLE_BATCH_LOSS`)."""

    @functools.wraps(function)
    def checked_method(loss: Any, builder: GraphBuilder, *args: Any, **kwargs: Any) -> Any:
        start = len(builder.nodes)
        value = function(loss, builder, *args, **kwargs)
        check_emitted(builder, loss, method, value, builder.nodes[start:])
        if method == "emit" and not getattr(loss, "averages_examples", True):
            builder.set_metadata(WHOLE_BATCH_LOSS, "true")
        return value

    setattr(checked_method, _CHECKED, True)
    return checked_method


def whole_batch_loss(model: onnx.ModelProto) -> bool:
    """Whether `model`'s loss is not a mean of per-example values (`WHOLE_BATCH_LOSS`)."""
    return any(entry.key == WHOLE_BATCH_LOSS for entry in model.metadata_props)


def check_emitted(builder: GraphBuilder, loss: Any, method: str, value: object, added: Sequence[onnx.NodeProto]) -> str:
    """`value`, what `loss.<method>` returned after adding the nodes `added`, once checked, so that a mistake is
    named where the graph is made rather than by the onnx checker at the end or as a loss "of unknown shape".

    Raises:
        InvalidTypeError: `value` is not the name of a value of the graph (None: the method returned nothing).
        InvalidArgumentError: a node it added is one ONNX refuses in the graph's opset (wrong input count, an
            attribute the op lacks, an input of the wrong type).
        ShapeError: `emit` or `emit_weighted` returns a value of the batch's size, not a scalar; `elements` a scalar.
    """
    where = f"Loss {getattr(loss, 'name', '')!r} ({type(loss).__name__}).{method}"
    if not builder.has_value(value):
        if value is None:
            received = f"None ({method} returned nothing)"
        else:
            received = f"{value!r}, which no node computes" if isinstance(value, str) else f"{value!r}"
            received += "" if isinstance(value, str) else f" ({type(value).__name__})"
        raise InvalidTypeError(
            f"{where}{_ARGUMENTS[method]} must return the name (a str) of the value it computes, e.g. "
            f"`return builder.node('ReduceMean', [value], keepdims=0)`. Received: {received}"
        )
    assert isinstance(value, str)
    _check_nodes(builder, where, added)
    shape = _inferred_shape(builder, where, added, value)
    if shape is None:
        return value
    if method == "elements" and not shape:
        raise ShapeError(
            f"{where} must give the values the loss averages, one or more per example ([batch, ...]), which "
            "sample weights multiply. Received: a scalar. Return them before their mean (Loss.emit takes it), or "
            "override emit(builder, output, labels) to return the scalar loss instead."
        )
    if method != "elements" and any(isinstance(d, str) or (isinstance(d, int) and d != 1) for d in shape):
        shown = "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
        raise ShapeError(
            f"{where} must return the scalar loss (shape () or (1,)). Received: a value of shape {shown}. Reduce "
            "it, e.g. builder.node('ReduceMean', [value], keepdims=0)."
        )
    return value


def _check_nodes(builder: GraphBuilder, where: str, added: Sequence[onnx.NodeProto]) -> None:
    context = onnx.checker.C.CheckerContext()
    context.ir_version = builder.ir_version
    context.opset_imports = {"": builder.opset}
    for node in added:
        if node.domain not in ("", "ai.onnx"):
            continue
        try:
            onnx.checker.check_node(node, context)
        except onnx.checker.ValidationError as e:
            reason = str(e).strip().splitlines()[0].rstrip(".")
            raise InvalidArgumentError(
                f"{where} adds node {node.name!r} ({node.op_type}), which ONNX refuses at opset {builder.opset}: "
                f"{reason}{_opset_hint(node, builder.opset)}"
            ) from e


def _opset_hint(node: onnx.NodeProto, opset: int) -> str:
    """How to give `axes` where the node gives it in the form of another opset (an input from opset 18 for most
    reductions, 13 for ReduceSum, Squeeze and Unsqueeze; an attribute before)."""
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, "")
    except onnx.defs.SchemaError:
        return ""
    as_input = any(formal.name == "axes" for formal in schema.inputs)
    by_builder = (
        f", or builder.reduce({node.op_type!r}, x, [-1], keepdims=False), which gives axes as the graph's opset takes"
        " them"
        if node.op_type.startswith("Reduce")
        else ""
    )
    if "axes" in schema.attributes and len(node.input) > schema.max_input:
        return (
            f". Before opset {_axes_input_opset(node.op_type)}, {node.op_type}'s axes is an attribute, not an input: "
            f"builder.node({node.op_type!r}, [x], axes=[-1]){by_builder}"
        )
    if as_input and any(attribute.name == "axes" for attribute in node.attribute):
        return (
            f". From opset {_axes_input_opset(node.op_type)}, {node.op_type}'s axes is its second input, not an "
            f"attribute: builder.node({node.op_type!r}, [x, builder.ints([-1])]){by_builder}"
        )
    return ""


def _axes_input_opset(op_type: str) -> int:
    """The opset from which `op_type` takes `axes` as an input (0: it never does)."""
    first, version = 0, onnx.defs.onnx_opset_version()
    while version > 0:
        try:
            schema = onnx.defs.get_schema(op_type, version, "")
        except onnx.defs.SchemaError:
            break
        if not any(formal.name == "axes" for formal in schema.inputs):
            break
        first, version = schema.since_version, schema.since_version - 1
    return first


def _inferred_shape(
    builder: GraphBuilder, where: str, added: Sequence[onnx.NodeProto], value: str
) -> list[int | str | None] | None:
    """`value`'s shape by ONNX's shape inference over the graph so far (None where it gives none).

    Raises:
        InvalidArgumentError: strict inference fails at one of the `added` nodes (an int64 input given as float).
    """
    weights = [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in builder.initializers]
    graph = helper.make_graph(list(builder.nodes), "loss", [*builder.inputs, *weights], [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", builder.opset)])
    model.ir_version = builder.ir_version
    names = {node.name for node in added}
    failure: Exception | None = None
    for data_prop in (True, False):  # propagating shape values fails on a few valid graphs
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=data_prop).graph
            break
        except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as e:
            failure = e if any(f"node name: {name})" in str(e) for name in names) else failure
    else:
        if failure is not None:
            raise InvalidArgumentError(
                f"{where} adds a node that ONNX's shape inference refuses: {' '.join(str(failure).split())}"
                f"{_type_hint(failure)}"
            ) from failure
        return builder.inferred_shape(value)
    for info in [*inferred.input, *inferred.value_info]:
        if info.name == value and info.type.tensor_type.HasField("shape"):
            dims = info.type.tensor_type.shape.dim
            return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims]
    return None


def _type_hint(failure: Exception) -> str:
    if "Expected:int64 Actual:float" not in str(failure):
        return ""
    return (
        ". An int64 input (axes, a shape) made with builder.constant needs an int64 array: builder.ints([-1]), or "
        "builder.constant(np.array([-1], np.int64)) (a list or a Python number is float32)"
    )
