"""OnnxLayer: a foreign ONNX graph (or a cut of it) as one layer, its float initializers as the layer's weights.

Example:
    >>> base = OnnxLayer("mlp.onnx", outputs=["/fc2/Gemm_output_0"], trainable=False)  # doctest: +SKIP
    >>> model = Sequential.of(Input(784), base, Dense(10))  # doctest: +SKIP

`emit` inlines the graph's nodes through the GraphBuilder under fresh value names (`onnxtrain.foreign._inline`);
its weights are initializers like any layer's (`onnx_layer_1.fc1.weight`). BatchNormalization and Dropout nodes
follow the layer's modes (see `OnnxLayer`); every other node is copied as it is, attributes included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import onnx

from onnxtrain import initializers
from onnxtrain._runtime import check_runtime_loads
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    OpsetTooOldError,
    ShapeError,
    UnsupportedError,
)
from onnxtrain.foreign import _graph
from onnxtrain.foreign._fixed_batch import check_batch_varies, exported_batch
from onnxtrain.foreign._graph import Shape
from onnxtrain.foreign._inline import Inliner, copy_hint
from onnxtrain.foreign._outputs import pack, packed_shape
from onnxtrain.foreign._quantized import check_gradients_reach_weights
from onnxtrain.foreign._removed_biases import restore_removed_biases
from onnxtrain.foreign._selection import matching, patterns, reader_scopes, settings
from onnxtrain.foreign._statistics import own_statistics, warn_without_batch_norm
from onnxtrain.foreign._tied import Untie, untie_weights, warn_tied
from onnxtrain.foreign._torch_names import warn_unnamed
from onnxtrain.graph import DEFAULT_IR_VERSION, DEFAULT_OPSET, GraphBuilder
from onnxtrain.layers._layer import Layer, describe, format_shape

BATCH_NORM_MODES = ("inference", "train")
_QUANTIZATION = ("QuantizeLinear", "DequantizeLinear")


class OnnxLayer(Layer):
    """An ONNX model (a path or a ModelProto) used as a layer: in Sequential, the Functional API, or alone
    (`onnxtrain.from_onnx`).

    Args:
        model: a path to an .onnx file (external data read from its folder) or an onnx.ModelProto.
        trainable: True (every float initializer trains but an exporter's constants: those of one element, such
            as the 0.5 and sqrt(2) of torch's dynamo GELU or a [1] attention scale, a PRelu's slope aside, and
            those holding ±inf or nan, such as a causal mask; see `exporter_constants`), False (the layer is
            frozen), or initializer names and glob patterns (`["head.*"]`): only those train, constants included.
        outputs: value names to cut the graph at (a feature extractor); the layer's output is the one named.
        name: the layer's name (`onnx_layer_1` when not given).
        frozen: names or glob patterns of initializers that do not train, applied after `trainable`.
        batch_norm: "inference" (default): BatchNormalization nodes normalize with their running statistics in
            training too, which stay frozen while scale and bias train. "train": in training they normalize with
            the batch's statistics and update the running ones in each step, as the ONNX op's training mode
            defines it (population variance; momentum from the node): the portable engine only. Each node then
            updates statistics of its own, where the export shares them between nodes (`own_statistics`); a
            graph without BatchNormalization (folded into the Convs by the exporter) warns.
        prefix_names: False keeps each weight's graph name its initializer name (what `from_onnx` does) instead
            of `<layer name>.<initializer>`; then the model can hold no other layer with such a weight name.
        untie: which initializers that several nodes read become one weight per node (`_tied.untie_weights`):
            None (default) unties what the file proves separate (TorchScript's Identity of a merged parameter,
            dynamo metadata naming another parameter) and warns about the rest that train; True unties every
            shared one; names or glob patterns: those too; False keeps the file's sharing.
        pack_outputs: take a graph of several outputs, the layer's output being them all flattened and
            concatenated (`_outputs`: what `from_onnx` builds its `OnnxOutput`s on); else one output only.
        caller: what errors about the arguments name: "from_onnx" when `from_onnx` makes the layer; a command
            (`_graph.COMMANDS`: "finetune") has them name its options (`--trainable`).

    Dropout nodes drop in training (ratio from the node, 0.5 by default) and are the identity in evaluation,
    prediction and the export, whatever their `training_mode` input says: an exported graph carries the mode it
    was exported in, and onnxtrain chooses the mode per graph as for its own Dropout layer.

    Raises:
        InvalidTypeError / ModelFileError: `model` is neither a path nor a ModelProto, or cannot be read.
        InvalidArgumentError: a pattern matches no initializer, an output name is no value of the graph, or the
            graph has several outputs (cut it with `outputs=[...]`).
        UnsupportedError: the graph uses other op domains, control flow, or non-batch dimensions that are not
            numbers, or a Reshape node fixes the batch dimension to a number (`x.view(1, -1)` exported), or a
            graph exported with a fixed batch runs at that batch only (`_fixed_batch`).
    """

    reads_integers = True  # an int64 graph input reads the model's int64 input as it is (`Inliner.run`)

    def __init__(
        self,
        model: Any,
        trainable: bool | str | Sequence[str] = True,
        outputs: Sequence[str] | None = None,
        name: str | None = None,
        frozen: str | Sequence[str] | None = None,
        batch_norm: str = "inference",
        prefix_names: bool = True,
        *,
        untie: Untie = None,
        pack_outputs: bool = False,
        caller: str = "OnnxLayer",
    ):
        self.caller = caller
        chosen = patterns(caller, "trainable", trainable) if not isinstance(trainable, bool) else None
        super().__init__(name=name, trainable=trainable if isinstance(trainable, bool) else True)
        if batch_norm not in BATCH_NORM_MODES:
            raise InvalidArgumentError(
                f"{caller}(batch_norm=...) expects one of {list(BATCH_NORM_MODES)}. Received: {batch_norm!r}"
            )
        if not isinstance(prefix_names, bool):
            raise InvalidTypeError(f"{caller}(prefix_names=...) expects a bool. Received: {prefix_names!r}")
        self.batch_norm = batch_norm
        self.prefix_names = prefix_names
        self.trainable_patterns = chosen
        self.frozen_patterns = patterns(caller, "frozen", frozen) if frozen is not None else None
        proto = _graph.read_model(model, caller)
        _graph.check_default_domain(proto, caller)
        if outputs is not None:
            proto = _graph.cut(proto, outputs, caller)
        self.pack_outputs = pack_outputs is True and len(proto.graph.output) > 1  # one output: the layer's own
        if len(proto.graph.output) != 1 and not self.pack_outputs:
            names = [o.name for o in proto.graph.output]
            raise InvalidArgumentError(
                f"{caller} expects a graph with one output. Received: {len(names)} outputs {names}. Choose one "
                f"with {_graph.argument(caller, 'outputs')}"
                + (" (from_onnx imports them all)." if caller == "OnnxLayer" else ".")
            )
        first_import = not _graph.weight_names(proto)  # a file, not a stored graph (load_model, lora)
        proto = restore_removed_biases(proto, caller, warn=first_import)  # a dynamo optimizer's zero biases
        untied = untie_weights(proto, untie, caller)
        proto = untied.model
        if batch_norm == "train":
            if first_import:
                warn_without_batch_norm(proto, caller)
            proto = own_statistics(proto)
        batch = exported_batch(proto)  # before the batch is made symbolic: what the probe below runs first
        proto = _graph.with_dynamic_batch(_graph.without_unread_statistics(proto))
        stripped, weights = _graph.split_weights(proto, settings(proto))
        self.graph = _graph.fold_shapes(stripped)
        _graph.check_batch_not_fixed(self.graph, caller)
        self.weight_shapes: dict[str, Shape] = {
            name: _graph.weight_shape(self.graph, name) for name in _graph.weight_names(self.graph)
        }
        for local, shape in self.weight_shapes.items():  # under load_model: before the graph runs on them below
            initializers.check_declared(describe(self), local, f"{self.name}.{local}" if prefix_names else local, shape)
        self.data_inputs = [v for v in self.graph.graph.input if v.name not in self.weight_shapes]
        self.multi_input = len(self.data_inputs) > 1
        self.data_shapes = [_graph.per_example_shape(v, f"input {v.name!r}", caller) for v in self.data_inputs]
        self._converted: dict[int, onnx.ModelProto] = {}
        self.output_shapes = [self._infer_output_shape(i) for i in range(len(self.graph.graph.output))]
        self._own_output_shape = packed_shape(self.output_shapes) if self.pack_outputs else self.output_shapes[0]
        if batch is not None:  # a file exported with a dynamic batch is taken at its word; a stored graph has one
            check_batch_varies(self.graph, self.data_inputs, self.data_shapes, self.weight_shapes, batch, caller)
        for local, value in weights.items():
            self.add_weight(local, value)
        self.non_trainable = self._frozen_names()
        if first_import and self.trainable:
            warn_tied(untied.ambiguous, set(self.weight_shapes) - self.non_trainable, caller)
            named = set(self.weight_shapes) - self.exporter_constants() - set(untied.copies)
            warn_unnamed(self.graph.graph, named, {"trainable": chosen, "frozen": self.frozen_patterns}, caller)

    # --- selection ----------------------------------------------------------------------------------------
    def _frozen_names(self) -> set[str]:
        names = list(self.weight_shapes)
        constants = self.exporter_constants()
        selected = {name for name in names if name not in constants}
        scopes = reader_scopes(self.graph.graph, set(names))
        if self.trainable_patterns is not None:
            selected = matching(self.caller, "trainable", self.trainable_patterns, names, scopes)
        if self.frozen_patterns is not None:
            selected -= matching(self.caller, "frozen", self.frozen_patterns, names, scopes)
        statistics = {
            name for node in self.graph.graph.node if node.op_type == "BatchNormalization" for name in node.input[3:5]
        }
        return (set(names) - selected) | (statistics & set(names))

    def exporter_constants(self) -> set[str]:
        """The weights taken for an exporter's constants, not parameters: frozen unless a `trainable` pattern names
        them. Those of one element, whatever their rank (torch's dynamo exporter stores GELU's 0.5 and sqrt(2), an
        epsilon, the attention scale `val_101` of shape [1] as initializers), but a PRelu's single slope; and those
        holding a value that is not finite (an attention mask of 0 and -inf). A quantized graph's scales stay
        weights, for compile to refuse them with the reason (`_quantized`)."""
        nodes = self.graph.graph.node
        parameters = {n.input[1] for n in nodes if n.op_type == "PRelu" and len(n.input) > 1}
        parameters |= {name for n in nodes if n.op_type in _QUANTIZATION for name in n.input[1:]}
        one_element = {
            name for name, shape in self.weight_shapes.items() if int(np.prod(shape)) == 1 and name not in parameters
        }
        return one_element | (set(_graph.non_finite_weights(self.graph)) & set(self.weight_shapes))

    # --- lifecycle ----------------------------------------------------------------------------------------
    def _infer_output_shape(self, index: int) -> Shape:
        output = self.graph.graph.output[index]
        types = _graph.infer(self.graph)
        known = types.get(output.name, output.type)
        elem = known.tensor_type.elem_type
        if elem != onnx.TensorProto.FLOAT:
            received = f"output {output.name!r} of type {onnx.TensorProto.DataType.Name(elem)}"
            if elem in _OTHER_FLOATS and not self.weight_shapes:  # every weight is of that type: no cut helps
                raise UnsupportedError(
                    f"{self.caller} trains float32 graphs: its weights are the float32 initializers. Received: "
                    f"{received}, in a graph with no float32 weight (its {_count_initializers(self.graph, elem)} "
                    f"{onnx.TensorProto.DataType.Name(elem)} initializers would be constants). Convert the model to "
                    "float32 first: export it again in float32 (torch: model.float() before torch.onnx.export), or "
                    "turn its initializers, Cast targets and value types to float32 with an ONNX converter."
                )
            raise UnsupportedError(
                f"{self.caller} expects a float32 output. Received: {received}. Cut the graph before it "
                f"({_graph.argument(self.caller, 'outputs')})."
            )
        try:
            return _graph.per_example_shape(known, f"output {output.name!r}", self.caller)
        except UnsupportedError:  # shape inference stopped short of it: run the graph once on zeros
            shape = _graph.run_for_shape(self.graph, self.data_inputs, self.data_shapes, self.weight_shapes, index)
            if shape is None:
                raise
            return shape

    def compute_output_shape(self, input_shape: Any) -> Shape:
        expected: Any = self.data_shapes if self.multi_input else self.data_shapes[0]
        given = [tuple(s) for s in input_shape] if self.multi_input else tuple(input_shape)
        if given != expected:
            shown = ", ".join(format_shape(s) for s in self.data_shapes)
            received = ", ".join(format_shape(tuple(s)) for s in (input_shape if self.multi_input else [input_shape]))
            raise ShapeError(f"OnnxLayer {self.name!r} takes inputs of shape {shown}. Received: {received}")
        return self._own_output_shape

    def build(self, input_shape: Any, rng: np.random.Generator) -> None:
        """The weights it was made with stay; a layer rebuilt from its config gets zeros until weights are set."""
        for name, shape in self.weight_shapes.items():
            if name not in self.params:
                self.add_weight(name, initializers.Zeros()(shape, 0, 0, rng))  # allocates nothing in load_model

    def qualified_params(self) -> dict[str, np.ndarray]:
        return self.params.copy() if not self.prefix_names else super().qualified_params()

    def trainable_params(self) -> dict[str, np.ndarray]:
        if self.prefix_names:
            return super().trainable_params()
        return {k: v for k, v in self.params.items() if k not in self.non_trainable} if self.trainable else {}

    # --- ONNX ---------------------------------------------------------------------------------------------
    @property
    def opset(self) -> int:
        """The default-domain opset of the graph: compile at least at this one (see `graph_at`)."""
        return _graph.opset_of(self.graph)

    @property
    def imported_opset(self) -> int:
        """`opset`, under the name an eager call reads it by (`layers._eager`, which sits below this package)."""
        return self.opset

    def graph_at(self, opset: int) -> onnx.ModelProto:
        """The stripped graph in `opset` (a model has one default-domain opset): an older graph is upgraded by
        onnx's version converter, whose upgrade adapters cover every standard op. A newer one is refused rather
        than downgraded: downgrade adapters are missing for many ops (Gelu has no earlier version) or leave
        attributes the older op lacks (Cast's `saturate`), so the model is compiled at the graph's opset instead.

        Raises:
            UnsupportedError: `opset` is older than the graph's, or the converter fails (naming the op).
        """
        own = _graph.opset_of(self.graph)
        if opset == own:
            return self.graph
        if opset < own:
            raise OpsetTooOldError(
                f"OnnxLayer {self.name!r} holds an opset-{own} graph, newer than the opset-{opset} graph it is "
                f"emitted into. Pass opset={own} (or newer), or leave opset out: compile's default follows the "
                "graph, and export's follows compile's (an uncompiled model's too).",
                required=own,
            )
        if opset not in self._converted:
            try:
                self._converted[opset] = onnx.version_converter.convert_version(self.graph, opset)
            except Exception as e:  # the converter's RuntimeError / ValidationError name the op it lacks
                raise UnsupportedError(
                    f"OnnxLayer {self.name!r} holds an opset-{own} graph that onnx's version converter cannot "
                    f"turn into opset {opset}: {e}. Compile with opset={own} instead."
                ) from e
        return self._converted[opset]

    def emit(self, builder: GraphBuilder, x: Any) -> str:
        xs = list(x) if self.multi_input else [x]
        graph = self.graph_at(builder.opset)
        if builder.training and self.trainable:  # before the engines: they would run steps that change nothing
            trainable = [name for name in self.weight_shapes if name not in self.non_trainable]
            check_gradients_reach_weights(graph, trainable, str(self.name), self.caller)
        names: dict[str, str] = dict(self.emit_params(builder))
        # emit_layer opened the layer's scope, except for prefix_names=False (weights unscoped): values get it here
        own: AbstractContextManager[None] = builder.scope(str(self.name)) if not self.prefix_names else nullcontext()
        with own:
            train_batch_norm = self.batch_norm == "train" and builder.training and self.trainable
            inliner = Inliner(builder, graph, names, str(self.name), train_batch_norm)
            value = inliner.run(self.data_inputs, xs)
            if not self.pack_outputs:
                return value
            return pack(builder, [inliner.names[output.name] for output in graph.graph.output])

    def get_config(self) -> dict[str, Any]:
        return {
            "model": _graph.encode(self.graph),
            "trainable": self.trainable if self.trainable_patterns is None else list(self.trainable_patterns),
            "frozen": list(self.frozen_patterns) if self.frozen_patterns is not None else None,
            "batch_norm": self.batch_norm,
            "prefix_names": self.prefix_names,
            "name": self.name,
        } | ({"pack_outputs": True} if self.pack_outputs else {})

    @classmethod
    def from_layer_config(cls, config: dict[str, Any]) -> OnnxLayer:
        options = dict(config)
        options["model"] = _graph.decode(str(options.get("model", "")), "OnnxLayer")
        return cls(**options)

    def __repr__(self) -> str:
        shown = ", ".join(f"{format_shape(s)}" for s in self.data_shapes)
        return f"OnnxLayer(name={self.name!r}, inputs={shown}, weights={len(self.weight_shapes)})"


_OTHER_FLOATS = (onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE)


def _count_initializers(model: onnx.ModelProto, elem: int) -> int:
    return sum(1 for t in model.graph.initializer if t.data_type == elem)


def compile_opset(layers: Iterable[Any], opset: int | None, ir_version: int | None) -> tuple[int, int]:
    """The opset and IR version `compile` uses for a model of `layers` where the caller gives none: the default
    (opset 17), raised to the newest opset of an OnnxLayer's graph among them (nested models' too), since such a
    graph is never downgraded (`OnnxLayer.graph_at`): a dynamo export of opset 20 compiles at opset 20. The IR
    version is the oldest that holds the opset, at least 8: 9 for opset 20, within ONNX Runtime 1.19's IR <= 10.

    Raises:
        UnsupportedError: no opset was given and a graph's opset is newer than the installed ONNX Runtime loads.
    """
    if opset is None:
        graphs = sorted((layer for layer in _walk(layers) if isinstance(layer, OnnxLayer)), key=lambda g: g.opset)
        opset = max(DEFAULT_OPSET, graphs[-1].opset if graphs else DEFAULT_OPSET)
        if opset > DEFAULT_OPSET:
            _check_runtime_loads_graph(graphs[-1])
    if ir_version is None:  # an opset onnx does not know keeps 8, for check_opset_and_ir to name
        known = isinstance(opset, int) and not isinstance(opset, bool) and 0 < opset <= onnx.defs.onnx_opset_version()
        ir_version = max(DEFAULT_IR_VERSION, _graph.min_ir_version(opset)) if known else DEFAULT_IR_VERSION
    return opset, ir_version


def imported_node(layers: Iterable[Any], node: onnx.NodeProto) -> onnx.NodeProto | None:
    """The node of an OnnxLayer's graph (among `layers` and the layers nested in them) that `node`, of a graph they
    emitted, copies; None when it copies none or the names leave it open. For errors about a built graph, which
    has lost the builder's `source`: `Inliner` names a copy `<scope>.<its first output's hint>[_<n>]_<op type>`
    (`GraphBuilder.multi_output_node`), the scope ending in the layer's name."""
    suffix = f"_{node.op_type}"
    if not node.name.endswith(suffix):
        return None
    base = node.name[: -len(suffix)]
    found = [
        original
        for layer in _walk(layers)
        if isinstance(layer, OnnxLayer)
        for original in layer.graph.graph.node
        if original.op_type == node.op_type
        and original.output
        and re.fullmatch(rf"(?:.+\.)?{re.escape(str(layer.name))}\.{re.escape(copy_hint(original))}(?:_\d+)?", base)
    ]
    return found[0] if len(found) == 1 else None


def _walk(layers: Iterable[Any]) -> Iterator[Any]:
    for layer in layers:
        yield layer
        yield from _walk(getattr(layer, "layers", ()))  # a nested model's


def _check_runtime_loads_graph(layer: OnnxLayer) -> None:
    own = layer.opset
    try:
        check_runtime_loads(own, max(DEFAULT_IR_VERSION, _graph.min_ir_version(own)))
    except InvalidArgumentError as e:
        loaded = [
            o
            for o in range(own - 1, DEFAULT_OPSET - 1, -1)
            if not _refused(o, max(DEFAULT_IR_VERSION, _graph.min_ir_version(o)))
        ]
        raise UnsupportedError(
            f"OnnxLayer {layer.name!r} holds an opset-{own} graph, which the installed ONNX Runtime cannot run. "
            f"Export the ONNX model again at opset {loaded[0] if loaded else DEFAULT_OPSET} or older."
        ) from e


def _refused(opset: int, ir_version: int) -> bool:
    try:
        check_runtime_loads(opset, ir_version)
    except InvalidArgumentError:
        return True
    return False
