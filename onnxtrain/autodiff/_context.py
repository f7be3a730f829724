"""GradientContext: what a gradient rule reads (the forward node, its attributes, shapes, incoming gradients) and the
idioms it emits with (constants of the right dtype, shapes, undoing broadcasting, reductions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from onnxtrain.autodiff import _broadcast
from onnxtrain.autodiff._broadcast import Shape
from onnxtrain.errors import UnsupportedError
from onnxtrain.graph import Dim, GraphBuilder

FLOAT_TYPES = {
    onnx.TensorProto.FLOAT,
    onnx.TensorProto.DOUBLE,
    onnx.TensorProto.FLOAT16,
    onnx.TensorProto.BFLOAT16,
}


@dataclass
class GraphFacts:
    """What backward knows of the forward graph: value types (from shape inference), constant values, and the values
    known to hold ones (the loss seed), shared by the contexts of every node."""

    builder: GraphBuilder
    types: dict[str, onnx.TypeProto]
    constants: dict[str, np.ndarray]
    ones: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, builder: GraphBuilder) -> GraphFacts:
        constants = {t.name: numpy_helper.to_array(t) for t in builder.initializers}
        for node in builder.nodes:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and len(node.attribute) == 1:
                value = _constant_node_value(node.attribute[0])
                if value is not None:
                    constants[node.output[0]] = value
        return cls(builder, builder.value_types(), constants)

    def elem_type(self, value: str) -> int | None:
        t = self.types.get(value)
        return t.tensor_type.elem_type if t is not None else None

    def shape(self, value: str) -> Shape | None:
        t = self.types.get(value)
        if t is None or not t.tensor_type.HasField("shape"):
            return None
        return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.tensor_type.shape.dim)

    def producers(self) -> dict[str, onnx.NodeProto]:
        """value -> the forward node that computes it (for the messages of refused forms)."""
        return {out: node for node in self.builder.nodes for out in node.output if out}

    def is_float(self, value: str) -> bool:
        """Whether `value` can carry a gradient: a floating-point tensor, or one of unknown type."""
        elem = self.elem_type(value)
        return elem is None or elem in FLOAT_TYPES


def node_attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """The attributes `node` sets (strings decoded), without its schema's defaults."""
    values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}


def _constant_node_value(attribute: onnx.AttributeProto) -> np.ndarray | None:
    if attribute.name == "value":
        return numpy_helper.to_array(attribute.t)
    simple = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64, "value_ints": np.int64}
    if attribute.name in simple:
        return np.array(helper.get_attribute_value(attribute), simple[attribute.name])
    return None


class GradientContext:
    """One forward node seen by its gradient rule.

    A rule returns the gradient of each input of `node` (None for inputs that take none or that `needs_grad` says
    nobody needs) and emits every node through `emit` (or `builder`), in the default ONNX domain. The gradient of a
    value always has the value's shape and dtype.
    """

    def __init__(
        self,
        node: onnx.NodeProto,
        builder: GraphBuilder,
        facts: GraphFacts,
        grad_outputs: Sequence[str | None],
        needs: Sequence[bool],
    ):
        self.node = node
        self.builder = builder
        self.facts = facts
        self.grad_outputs = tuple(grad_outputs)
        self.needs = tuple(needs)
        self._attributes: dict[str, Any] | None = None

    # --- the forward node -----------------------------------------------------------------------------------
    @property
    def opset(self) -> int:
        return self.builder.opset

    @property
    def op_type(self) -> str:
        return self.node.op_type

    @property
    def inputs(self) -> list[str]:
        """The node's input names; "" for an absent optional input."""
        return list(self.node.input)

    @property
    def outputs(self) -> list[str]:
        return list(self.node.output)

    def input(self, index: int) -> str:
        """Input `index`, "" where it is absent (an optional input left out or past the end)."""
        return self.node.input[index] if index < len(self.node.input) else ""

    def output(self, index: int = 0) -> str:
        return self.node.output[index] if index < len(self.node.output) else ""

    def grad(self, index: int = 0) -> str | None:
        """dL/d(output `index`); None where no gradient flows into it."""
        return self.grad_outputs[index] if index < len(self.grad_outputs) else None

    @property
    def dy(self) -> str:
        """dL/d(output 0), for the ops whose rule only runs with one: every single-output op."""
        g = self.grad(0)
        if g is None:
            raise AssertionError(
                f"{self.op_type} node {self.node.name!r}: its rule read dy, but no gradient flows into output 0"
            )
        return g

    def needs_grad(self, index: int) -> bool:
        """Whether dL/d(input `index`) is wanted: rules skip the work for the others."""
        return index < len(self.needs) and self.needs[index]

    @property
    def attributes(self) -> dict[str, Any]:
        """The node's attributes, with the defaults of its schema at this opset for those it does not set."""
        if self._attributes is None:
            schema = onnx.defs.get_schema(self.node.op_type, self.opset, self.node.domain)
            values = {
                name: helper.get_attribute_value(a.default_value)
                for name, a in schema.attributes.items()
                if a.default_value.type != onnx.AttributeProto.UNDEFINED
            }
            self._attributes = {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}
            self._attributes.update(node_attributes(self.node))
        return self._attributes

    def attr(self, name: str, default: Any = None) -> Any:
        """Attribute `name` (strings decoded), its schema default, else `default`."""
        return self.attributes.get(name, default)

    def forward_output(self, index: int) -> str:
        """Output `index` of the forward node, added to it if it did not emit it (Dropout's mask, MaxPool's
        Indices): the gradient then reuses what the forward computed."""
        return self.builder.node_output(self.node, index, hint=f"{self.output(0)}_out{index}")

    # --- static facts -----------------------------------------------------------------------------------------
    def shape(self, value: str) -> Shape | None:
        """The static shape of a forward value: ints, dim_param names or None per dim; None if the rank is unknown."""
        return self.facts.shape(value)

    def rank(self, value: str) -> int | None:
        shape = self.shape(value)
        return None if shape is None else len(shape)

    def static_shape(self, value: str) -> tuple[int, ...] | None:
        """The shape when every dimension is a known int, else None."""
        shape = self.shape(value)
        if shape is None or not all(isinstance(d, int) for d in shape):
            return None
        return tuple(int(d) for d in shape)  # type: ignore[arg-type]

    def dtype(self, value: str) -> np.dtype:
        """The numpy dtype of a forward value (float32 where unknown)."""
        elem = self.facts.elem_type(value)
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem)) if elem else np.dtype(np.float32)

    def elem_type(self, value: str) -> int:
        return self.facts.elem_type(value) or onnx.TensorProto.FLOAT

    def constant_value(self, value: str) -> np.ndarray | None:
        """The value of an initializer or Constant output, None for anything computed at run time."""
        return self.facts.constants.get(value) if value else None

    def is_one(self, value: str | None) -> bool:
        """Whether `value` is known to hold ones (the loss seed): multiplying by it changes nothing."""
        return value in self.facts.ones

    # --- emitting -------------------------------------------------------------------------------------------
    def _hint(self, hint: str | None, op_type: str) -> str:
        return hint or f"{self.output(0)}_grad_{op_type.lower()}"

    def emit(self, op_type: str, inputs: Sequence[str], hint: str | None = None, **attributes: Any) -> str:
        """Append one single-output node (default domain) and return its output."""
        return self.builder.node(op_type, inputs, self._hint(hint, op_type), **attributes)

    def emit_multi(
        self, op_type: str, inputs: Sequence[str], num_outputs: int, hint: str | None = None, **attributes: Any
    ) -> list[str]:
        return self.builder.multi_output_node(op_type, inputs, num_outputs, self._hint(hint, op_type), **attributes)

    def scalar(self, value: float, like: str) -> str:
        """A scalar constant of `like`'s dtype, emitted once per graph."""
        dtype = self.dtype(like)
        key = f"autodiff.scalar.{dtype.name}.{float(value)!r}"
        return self.builder.shared(key, lambda: self.builder.constant(value, f"{dtype.name}_{value:g}", dtype))

    def constant(self, array: np.ndarray, hint: str = "const") -> str:
        return self.builder.constant(np.asarray(array), hint, np.asarray(array).dtype)

    def ints(self, values: Sequence[int], hint: str = "ints") -> str:
        """An int64 1-D constant, emitted once per graph."""
        key = f"autodiff.ints.{tuple(int(v) for v in values)}"
        return self.builder.shared(key, lambda: self.builder.constant(np.array(values, np.int64), hint, np.int64))

    def times(self, value: str, grad: str | None) -> str:
        """value * grad, or `value` itself when `grad` is the scalar loss seed (a rank-0 one changes no shape)."""
        assert grad is not None
        if self.is_one(grad) and self.facts.shape(grad) == ():
            return value
        return self.emit("Mul", [value, grad])

    def cast_like(self, value: str, like: str) -> str:
        """`value` (a bool or other mask) cast to `like`'s dtype."""
        return self.emit("Cast", [value], to=self.elem_type(like))

    def reduce(self, op_type: str, x: str, axes: Sequence[int] | None, keepdims: bool, hint: str | None = None) -> str:
        """`op_type` over `axes` in the form this opset takes (see GraphBuilder.reduce)."""
        return self.builder.reduce(op_type, x, axes, keepdims, self._hint(hint, op_type))

    def shape_of(self, value: str) -> str:
        """The shape of a forward value as int64 [rank]: a constant when static, else one Shape node per value."""
        static = self.static_shape(value)
        if static is not None:
            return self.ints(static, "shape")
        return self.builder.shared(f"autodiff.shape.{value}", lambda: self.emit("Shape", [value], hint="shape"))

    def dim(self, value: str, axis: int, size: Dim = None) -> str:
        """Dimension `axis` of `value` as int64 [1]: a constant when known, one shared Gather per symbolic
        dimension name (every value whose dim is "batch" has the same batch size), else one per value and axis.
        `size` is the dimension as far as known where `value` is no forward value (a gradient, say)."""
        shape = self.shape(value)
        if size is None and shape is not None:
            axis = axis % len(shape)
            size = shape[axis]
        if isinstance(size, int):
            return self.ints([size], "dim")
        key = f"autodiff.dim.{size}" if isinstance(size, str) else f"autodiff.dim.{value}.{axis}"
        return self.builder.shared(key, lambda: self._gathered_dim(value, axis))

    def _gathered_dim(self, value: str, axis: int) -> str:
        shape = self.shape_of(value) if self.shape(value) is not None else self.emit("Shape", [value], hint="shape")
        return self.builder.node("Gather", [shape, self.ints([axis], "axis")], hint="dim", axis=0)

    def count(self, value: str, like: str) -> str:
        """The number of elements of forward `value`, as a [1]-shaped constant or value of `like`'s dtype."""
        static = self.static_shape(value)
        if static is not None:
            return self.scalar(float(np.prod(static, dtype=np.int64)), like)
        shape = self.shape(value)
        size = self.dim(value, 0) if shape is not None and len(shape) == 1 else self.emit("Size", [value])
        key = f"autodiff.count.{size}.{self.dtype(like).name}"
        return self.builder.shared(
            key, lambda: self.builder.node("Cast", [size], hint="count", to=self.elem_type(like))
        )

    def ones(self, length_of: str, axis: int, like: str, size: Dim = None) -> str:
        """A 1-D tensor of ones, as long as dimension `axis` of `length_of` (see `dim`), in `like`'s dtype; once per
        graph and length."""
        dim = self.dim(length_of, axis, size)
        one = numpy_helper.from_array(np.ones(1, self.dtype(like)))
        key = f"autodiff.ones.{dim}.{self.dtype(like).name}"
        return self.builder.shared(key, lambda: self.builder.node("ConstantOfShape", [dim], hint="ones", value=one))

    def zeros_like(self, value: str) -> str:
        zero = numpy_helper.from_array(np.zeros(1, self.dtype(value)))
        return self.emit("ConstantOfShape", [self.shape_of(value)], hint=f"{value}_zeros", value=zero)

    def unbroadcast(self, grad: str, to: str, grad_shape: Shape | None = None) -> str:
        """`grad` (shaped like the node's first output, or `grad_shape`) summed down to the shape of input `to`, as
        multidirectional broadcasting had expanded `to`: nothing when the shapes match. See `_broadcast.py`."""
        shape = grad_shape if grad_shape is not None else self.shape(self.output(0))
        return _broadcast.unbroadcast(self, grad, shape, to)

    # --- refusing -------------------------------------------------------------------------------------------
    def unsupported(self, attribute: str, value: Any, expected: str = "", fix: str = "") -> UnsupportedError:
        """The error a rule raises for a form of its op that it cannot differentiate. It names the node as the
        user's file does where the node comes from an imported graph, and says what to do: `fix`, else to freeze
        what reaches the node, or to fold the graph's shape arithmetic where that may make the form known."""
        why = f" ({expected})" if expected else ""
        if not fix:
            fix = "freeze what reaches it or change it"
            if self.hidden_by_run_time_shapes():
                fix = f"freeze what reaches it, or {_FOLD}"
        return UnsupportedError(
            f"No gradient for {self.op_type} node {self.node_name()} with {attribute}={value!r}{why}. The node is "
            f"on the path from a wrt value to the loss (opset {self.opset}); {fix}."
        )

    def node_name(self) -> str:
        """The node's name for messages: an imported graph's own (`GraphBuilder.source`), with the copy's."""
        source = self.builder.source(self.output(0))
        if source is None:
            return repr(self.node.name)
        node, value = source
        return f"{node!r} (here {self.node.name!r})" if node else f"computing {value!r} (here {self.node.name!r})"

    def hidden_by_run_time_shapes(self) -> bool:
        """Whether only a shape or value computed at run time from constants and shapes, which shape inference
        cannot follow, hides the node's form, so that `fold_constants` may compute it: the graph's inputs have
        known ranks while the node reads a value of unknown rank, or a non-first input (scales, pads, shapes, axes)
        computed from constants and `Shape`s only; or every graph input is static while a value the node reads
        is not (TorchScript's `nn.MultiheadAttention` reshapes by `Mod` arithmetic; its `F.interpolate` computes
        Resize's scales from `Shape` when exported without constant folding)."""
        inputs = [v.name for v in self.builder.inputs if v.name not in self.facts.constants]
        if not inputs or any(self.shape(name) is None for name in inputs):
            return False
        static = all(self.static_shape(name) is not None for name in inputs)
        present = [(i, name) for i, name in enumerate(self.node.input) if name]
        return any(
            self.shape(name) is None
            or (static and self.static_shape(name) is None)
            or (i > 0 and self.constant_value(name) is None and self._from_shapes(name))
            for i, name in present
        )

    def _from_shapes(self, value: str) -> bool:
        """Whether `value` is computed from constants and the shapes of values only (no value's data)."""
        producers = self.facts.producers()
        seen: set[str] = set()
        pending = [value]
        while pending:
            name = pending.pop()
            if name in seen or name in self.facts.constants:
                continue
            seen.add(name)
            node = producers.get(name)
            if node is None:  # a graph input's data
                return False
            if node.op_type not in ("Shape", "Size"):
                pending.extend(i for i in node.input if i)
        return True

    def spatial_dims(self, value: str, what: str) -> tuple[int, ...]:
        """The static spatial dimensions (all but N and C) of forward `value`, or the rule's UnsupportedError that
        shows the unknown ones and says what would make them known."""
        shape = self.shape(value)
        dims = shape[2:] if shape is not None else None
        if dims and all(isinstance(d, int) for d in dims):
            return tuple(int(d) for d in dims)  # type: ignore[arg-type]
        expected = f"{what} has shape {tuple(shape)}" if shape is not None else f"shape inference gives {what} no shape"
        expected += f"; the gradient needs {what}'s spatial dimensions known statically, the batch may vary"
        if self.hidden_by_run_time_shapes():
            fix = _FOLD
        elif self._inputs_static_but_the_batch():
            fix = (
                "shape inference cannot follow a shape computed at run time from the batch to it (torch's "
                "x.flatten(2) exports Reshape(x, Concat(Shape(x)[:2], [-1]))): export that reshape with constant "
                "dims (x.reshape(-1, C, H * W)), or freeze what reaches the node"
            )
        else:
            fix = "give the graph input a static image size, or freeze what reaches the node"
        raise self.unsupported("spatial shape", None if dims is None else tuple(dims), expected, fix)

    def _inputs_static_but_the_batch(self) -> bool:
        """Whether every graph input (a weight input aside) has a known shape with static dims after the first."""
        shapes = [self.shape(v.name) for v in self.builder.inputs if v.name not in self.facts.constants]
        return bool(shapes) and all(s is not None and all(isinstance(d, int) for d in s[1:]) for s in shapes)


_FOLD = (
    "fold the graph's shape arithmetic first: shape inference cannot follow a shape or value computed at run time "
    "from constants and shapes to this node, which onnxtrain.autodiff.fold_constants(model, keep=[the weights to "
    "differentiate]) may compute (then take the gradients of the folded model)"
)
