"""GraphBuilder: the one place that creates ONNX nodes, initializers and value names.

It owns the opset and IR version of everything onnxtrain emits. Layers receive a builder and emit nodes through
it; they never touch a ModelProto.

The opset and IR version checks live in `_onnx_versions`; reading the graph so far (its nodes, value types and
inferred shapes) in the builder's base class, `_graph_reading.GraphReading`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from onnxtrain._graph_names import fold_output_renames, subgraph_values
from onnxtrain._graph_reading import Dim, GraphReading
from onnxtrain._onnx_versions import (
    DEFAULT_IR_VERSION,
    DEFAULT_OPSET,
    MAX_ORT_TRAINING_IR_VERSION,
    check_opset_and_ir,
)
from onnxtrain._version import __version__
from onnxtrain.errors import InvalidArgumentError, PortableEngineOnlyError, UnsupportedError

__all__ = [
    "DEFAULT_IR_VERSION",
    "DEFAULT_OPSET",
    "MAX_ORT_TRAINING_IR_VERSION",
    "PRODUCER_NAME",
    "Dim",
    "GraphBuilder",
    "check_opset_and_ir",
]

PRODUCER_NAME = "onnxtrain"
# Reductions whose `axes` moved from an attribute to an input at an opset other than 18 (the others' move).
_AXES_AS_INPUT_FROM = {"ReduceSum": 13}


class GraphBuilder(GraphReading):
    """Accumulates nodes, initializers, inputs and outputs and builds a checked ModelProto.

    Names: `scope("dense_1")` prefixes parameters (`dense_1.kernel`) and intermediate values, so the same
    hierarchical names appear in the graph, the training checkpoint and the exported model.

    Example:
        >>> b = GraphBuilder()
        >>> x = b.add_input("input", np.float32, (None, 4))
        >>> with b.scope("dense_1"):
        ...     w = b.add_initializer("kernel", np.ones((4, 2), np.float32))
        ...     y = b.node("MatMul", [x, w])
        >>> b.add_output(y, "logits", np.float32, (None, 2))
        >>> model = b.build()
    """

    def __init__(
        self,
        opset: int = DEFAULT_OPSET,
        ir_version: int = DEFAULT_IR_VERSION,
        batch_dim: str = "batch",
        training: bool = False,
    ):
        check_opset_and_ir(opset, ir_version)
        self.opset = opset
        self.ir_version = ir_version
        self.batch_dim = batch_dim
        # Whether layers emit the training graph (batch statistics, dropout) or the inference graph.
        self.training = training
        self._state_updates: dict[str, str] = {}
        self._added_losses: list[tuple[list[str], Callable[[], str]]] = []  # (scope, term): see `add_loss`
        self._added_loss_keys: set[str] = set()  # the keys of the terms recorded once per graph: see `add_loss`
        # value -> "channels_first" for values whose channels sit at axis 1 (see layers/_layout.py); absent: Keras'
        # channels-last order.
        self.layouts: dict[str, str] = {}
        self._nodes: list[onnx.NodeProto] = []
        self._initializers: list[onnx.TensorProto] = []
        self._inputs: list[onnx.ValueInfoProto] = []
        self._outputs: list[onnx.ValueInfoProto] = []
        self._names: set[str] = set()
        self._scopes: list[str] = []
        self._metadata: dict[str, str] = {}
        self._shared: dict[str, str] = {}
        self._output_renames: list[tuple[str, str]] = []  # (value, output name), one Identity node each
        self._value_info: list[onnx.ValueInfoProto] = []  # a model's own, kept by `from_model` for shape inference
        self._sources: dict[str, tuple[str, str]] = {}  # value -> (node, value) it copies: see `record_source`

    # --- naming -------------------------------------------------------------------------------------------
    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Prefix every name created inside the block with `name.`."""
        self._scopes.append(name)
        try:
            yield
        finally:
            self._scopes.pop()

    def _qualified(self, name: str) -> str:
        return ".".join([*self._scopes, name])

    def unique_name(self, hint: str) -> str:
        base = self._qualified(hint)
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def _claim(self, name: str) -> str:
        if name in self._names:
            raise InvalidArgumentError(
                f"Graph name {name!r} is already used; parameter and value names must be unique."
            )
        self._names.add(name)
        return name

    # --- graph pieces -------------------------------------------------------------------------------------
    def value_info(self, name: str, dtype: Any, shape: Sequence[Dim]) -> onnx.ValueInfoProto:
        dims = [self.batch_dim if d is None else d for d in shape]
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), dims)

    def add_input(self, name: str, dtype: Any, shape: Sequence[Dim]) -> str:
        """Declare a graph input; `None` dimensions become the symbolic batch dimension."""
        self._inputs.append(self.value_info(self._claim(name), dtype, shape))
        return name

    def input_type(self, name: str) -> int | None:
        """The ONNX element type (`TensorProto.INT64`, ...) of graph input `name`; None for any other value."""
        return next((v.type.tensor_type.elem_type for v in self._inputs if v.name == name), None)

    def add_output(self, value: str, name: str, dtype: Any, shape: Sequence[Dim]) -> str:
        """Expose `value` as graph output `name`.

        Under another name, an Identity node renames it, and `build()` lets the node that computes `value` write
        `name` directly wherever it can (see `_graph_names.fold_output_renames`).
        """
        if value != name:
            self._nodes.append(helper.make_node("Identity", [value], [self._claim(name)], name=f"{name}_identity"))
            self._output_renames.append((value, name))
        self._outputs.append(self.value_info(name, dtype, shape))
        return name

    def add_initializer(self, name: str, array: np.ndarray) -> str:
        """Add a named constant tensor (a parameter when it is trainable); the name is scoped."""
        qualified = self._claim(self._qualified(name))
        self._initializers.append(numpy_helper.from_array(np.asarray(array, order="C"), qualified))
        return qualified

    def constant(self, value: float | np.generic | np.ndarray, hint: str = "const", dtype: Any = np.float32) -> str:
        """A non-trainable constant, emitted as a Constant node so training never treats it as a parameter.

        float32 unless `dtype` says otherwise, whatever `value`'s own dtype: `np.array([1, 2, 3])` (numpy's int64)
        multiplies float32 values; axes or a shape take `dtype=np.int64` (or `builder.ints`)."""
        array = np.asarray(value, dtype=dtype)
        name = self.unique_name(hint)
        self._nodes.append(
            helper.make_node("Constant", [], [name], name=f"{name}_node", value=numpy_helper.from_array(array, name))
        )
        return name

    def ints(self, values: Sequence[int] | np.ndarray, hint: str = "ints") -> str:
        """An int64 constant: a shape, axes or Slice bounds (the inputs ONNX takes as int64 tensors)."""
        return self.constant(np.array(values, np.int64), hint, np.int64)

    def shared(self, key: str, make: Callable[[], str]) -> str:
        """The value `make()` emits, emitted once per graph under `key` and reused by every later call: e.g. the
        batch size, which every per-example tensor of a Sequential's graph shares. A value made inside a
        `subgraph()` block is not visible outside it, so it is forgotten when the block ends.
        """
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    def node(self, op_type: str, inputs: Sequence[str], hint: str | None = None, **attributes: Any) -> str:
        """Append one single-output node of the default domain and return its output name."""
        return self.multi_output_node(op_type, inputs, 1, hint, **attributes)[0]

    def multi_output_node(
        self,
        op_type: str,
        inputs: Sequence[str],
        num_outputs: int,
        hint: str | None = None,
        **attributes: Any,
    ) -> list[str]:
        """Append a node with `num_outputs` outputs (some gradients need an op's optional outputs). A node of the
        default domain must name an operator ONNX defines in this builder's opset (another domain's, given as
        `domain=`, is not checked).

        Raises:
            UnsupportedError: an op type the default domain does not have in this opset, naming it and the layer
                (the scope) that emits it.
        """
        if attributes.get("domain", "") in ("", "ai.onnx") and not onnx.defs.has(op_type, self.opset, ""):
            raise UnsupportedError(self._unknown_op(op_type))
        base = self.unique_name(hint or op_type.lower())
        outs = [base] + [self.unique_name(f"{hint or op_type.lower()}_out{i}") for i in range(1, num_outputs)]
        self._nodes.append(helper.make_node(op_type, list(inputs), outs, name=f"{base}_{op_type}", **attributes))
        return outs

    def _unknown_op(self, op_type: str) -> str:
        where = f"Layer {'.'.join(self._scopes)!r}" if self._scopes else "A node"
        if isinstance(op_type, str) and onnx.defs.has(op_type):
            since = onnx.defs.get_schema(op_type).since_version
            why = f"it exists from opset {since}: compile or export with opset {since} or newer"
        else:
            why = "check its spelling against ONNX's operators (https://onnx.ai/onnx/operators/), or give the domain "
            why += "of an operator of another domain (builder.node(op_type, inputs, domain='com.example'))"
        return (
            f"{where} emits op type {op_type!r}, which ONNX's default domain (ai.onnx) does not define in opset "
            f"{self.opset}: {why}."
        )

    def reduce(self, op_type: str, x: str, axes: Sequence[int] | None, keepdims: bool, hint: str | None = None) -> str:
        """`op_type` (ReduceSum, ReduceMean, ReduceMax, ...) of `x` over `axes` (None: every axis), with the axes as
        the input or the attribute that this builder's opset takes (an input from opset 13 for ReduceSum, 18 for the
        others)."""
        if axes is None:
            return self.node(op_type, [x], hint=hint, keepdims=int(keepdims))
        if self.opset >= _AXES_AS_INPUT_FROM.get(op_type, 18):
            axes_value = self.constant(np.array(list(axes), np.int64), f"{hint or op_type.lower()}_axes", np.int64)
            return self.node(op_type, [x, axes_value], hint=hint, keepdims=int(keepdims))
        return self.node(op_type, [x], hint=hint, axes=list(axes), keepdims=int(keepdims))

    @contextmanager
    def subgraph(self) -> Iterator[list[onnx.NodeProto]]:
        """Collect the nodes created inside the block into the yielded list instead of this graph: the body of an
        `If` branch or a `Loop`. Names stay unique across both, as ONNX requires of a subgraph and its outer graph.

        Example:
            >>> with b.subgraph() as body:
            ...     y = b.node("Relu", [x])
            >>> branch = onnx.helper.make_graph(body, "branch", [], [b.value_info(y, np.float32, (None, 2))])
        """
        outer, self._nodes = self._nodes, []
        outer_shared = dict(self._shared)
        try:
            yield self._nodes
        finally:
            self._nodes, self._shared = outer, outer_shared

    @contextmanager
    def replacing(self, nodes: Sequence[onnx.NodeProto]) -> Iterator[dict[str, str]]:
        """Replace `nodes` (this builder's, in graph order) with the nodes created inside the block, which go where
        the first of them was (the node list stays topologically sorted): a rewrite that computes the same values
        another way. Map each new value that stands for an output of `nodes` to that output's name in the yielded
        dict; its node then writes that name.

        Example:
            >>> with b.replacing([relu]) as outputs:
            ...     outputs[b.node("Max", [x, zero])] = relu.output[0]
        """
        outer, self._nodes = self._nodes, []
        outputs: dict[str, str] = {}
        try:
            yield outputs
        finally:
            added, self._nodes = self._nodes, outer
        for node in added:
            node.input[:] = [outputs.get(name, name) for name in node.input]
            node.output[:] = [outputs.get(name, name) for name in node.output]
        at = next(i for i, n in enumerate(outer) if n is nodes[0])
        doomed = {id(n) for n in nodes}
        self._nodes = [n for n in outer[:at] if id(n) not in doomed] + added
        self._nodes += [n for n in outer[at:] if id(n) not in doomed]

    def update_state(self, parameter: str, value: str) -> None:
        """Record `value` as the new value of non-trainable `parameter` (a graph name such as
        `batch_normalization_1.moving_mean`) after a training step: BatchNormalization's running statistics.
        Only a training graph records updates; every other graph ignores them.
        """
        if not self.training:
            return
        if parameter in self._state_updates:
            raise InvalidArgumentError(f"The state {parameter!r} was given a new value twice in one graph.")
        self._state_updates[parameter] = value

    def add_loss(self, term: Callable[[], str], key: str | None = None) -> None:
        """Record a scalar that a model's loss adds to itself: a weight penalty (`kernel_regularizer`), as Keras'
        `layer.add_loss`. `term()` emits it, in the scope it was recorded in, only when a graph with a loss calls
        `with_added_losses` (training and evaluation graphs), so the inference export holds none of its nodes.

        A term recorded under a `key` already recorded in this graph is left out: a weight's penalty (keyed by the
        weight's graph name) counts once however many times its layer is emitted (a shared layer called twice, the
        logits copy of a last Dense), as Keras sums each weight's penalty once. Without a key every call counts.
        """
        if key is not None:
            if key in self._added_loss_keys:
                return
            self._added_loss_keys.add(key)
        self._added_losses.append((list(self._scopes), term))

    def with_added_losses(self, loss: str) -> str:
        """`loss` plus every term recorded with `add_loss`; `loss` itself when there is none."""
        for scopes, term in self._added_losses:
            outer, self._scopes = self._scopes, list(scopes)
            try:
                value = term()
            finally:
                self._scopes = outer
            loss = self.node("Add", [loss, value], hint="loss_with_penalty")
        return loss

    def training_step(self) -> str:
        """The int64 scalar counting the updates made before this step, in a training engine's graph: what a
        layer that draws random numbers (Dropout) seeds them with, so that every step differs and a resumed run
        draws the same numbers again.

        Raises:
            PortableEngineOnlyError: this graph is not a training engine's (it has no step counter).
        """
        raise PortableEngineOnlyError(
            f"{'.'.join(self._scopes) or 'a layer'} draws random numbers per training step (e.g. Dropout), and this "
            "graph has no step counter: only the portable engine's train step has one"
        )

    def first_row(self) -> str | None:
        """The int64 scalar index, within the whole batch, of this graph's first row where the graph runs on a share
        of the batch (Dropout draws each row's mask by that index); None: the graph sees the whole batch."""
        return None

    @property
    def state_updates(self) -> dict[str, str]:
        """Parameter graph name -> the value it takes after the step, as recorded by `update_state`."""
        return dict(self._state_updates)

    def record_source(self, value: str, node: str, original: str) -> None:
        """Note that `value` is what node `node` computes as `original` in an imported graph (`OnnxLayer` inlines
        it under fresh names), so that errors about it can use the names of the user's file."""
        self._sources[value] = (node, original)

    def source(self, value: str) -> tuple[str, str] | None:
        """The (node, value) names of the imported graph `value` copies (`record_source`); None for others."""
        return self._sources.get(value)

    def set_metadata(self, key: str, value: str) -> None:
        self._metadata[key] = value

    # --- a model's graph, to extend (autodiff differentiates what a builder holds; GraphReading reads it) -
    @classmethod
    def from_model(cls, model: onnx.ModelProto, batch_dim: str = "batch") -> GraphBuilder:
        """A builder that holds `model`'s nodes, initializers, inputs, outputs, opset and IR version (copied), with
        every name in it claimed, so that nodes added later extend the model: e.g. its gradient graph.

        Raises:
            UnsupportedError: the model imports an operator set other than the default ONNX domain, or has local
                functions or sparse initializers (which the builder cannot carry).
            InvalidArgumentError: its opset or IR version is outside what onnxtrain emits.
        """
        others = [o.domain for o in model.opset_import if o.domain not in ("", "ai.onnx")]
        if others or model.functions or model.graph.sparse_initializer:
            what = f"operator sets {others}" if others else "local functions or sparse initializers"
            raise UnsupportedError(
                f"GraphBuilder.from_model takes models of the default ONNX domain only. Received a model with {what}."
            )
        opsets = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
        if not opsets:
            raise InvalidArgumentError("GraphBuilder.from_model expects a model that imports the default ONNX domain.")
        builder = cls(opsets[0], model.ir_version, batch_dim)
        graph = model.graph
        builder._nodes = [_copied(node) for node in graph.node]
        builder._initializers = [_copied(t) for t in graph.initializer]
        builder._inputs = [_copied(v) for v in graph.input]
        builder._outputs = [_copied(v) for v in graph.output]
        builder._value_info = [_copied(v) for v in graph.value_info]
        builder._metadata = {entry.key: entry.value for entry in model.metadata_props}
        names = {v.name for v in [*graph.input, *graph.output, *graph.initializer]}
        names |= {name for node in graph.node for name in node.output} | subgraph_values(graph.node)
        builder._names |= names - {""}
        return builder

    def node_output(self, node: onnx.NodeProto, index: int, hint: str | None = None) -> str:
        """Output `index` of `node`, one of this builder's nodes, added under a new name if the node did not emit it
        (an optional output such as MaxPool's Indices or Dropout's mask). Skipped optional outputs before it get
        the empty name, as ONNX marks an absent output.
        """
        if not any(n is node for n in self._nodes):
            raise InvalidArgumentError(f"node_output expects one of this builder's nodes. Received: {node.name!r}")
        if index < len(node.output) and node.output[index]:
            return node.output[index]
        while len(node.output) <= index:
            node.output.append("")
        node.output[index] = self.unique_name(hint or f"{node.output[0] or node.op_type.lower()}_out{index}")
        return node.output[index]

    # --- result -------------------------------------------------------------------------------------------
    def build(self, graph_name: str = "onnxtrain", check: bool = True) -> onnx.ModelProto:
        """Assemble the model with this builder's opset and IR version, and run the full ONNX checker."""
        fixed = {v.name for v in self._inputs} | {t.name for t in self._initializers}
        nodes = fold_output_renames(self._nodes, self._output_renames, fixed, {o.name for o in self._outputs})
        graph = helper.make_graph(nodes, graph_name, self._inputs, self._outputs, self._initializers)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", self.opset)],
            producer_name=PRODUCER_NAME,
            producer_version=__version__,
        )
        model.ir_version = self.ir_version
        for key, value in self._metadata.items():
            model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
        if check:
            onnx.checker.check_model(model, full_check=True)
        return model


def _copied(proto: Any) -> Any:
    copy = type(proto)()
    copy.CopyFrom(proto)
    return copy
