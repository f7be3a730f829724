"""Functional: a graph of layer calls, from `Input` tensors to outputs, that emits ONNX (the Functional API's core).

Example:
    >>> a, b = Input(8, name="a"), Input(4, name="b")
    >>> h = Add()([Dense(8)(a), a])  # a skip connection
    >>> y = Dense(3, activation="linear")(Concatenate()([h, b]))
    >>> graph = Functional([a, b], y, seed=0)
    >>> outputs = graph.emit(builder, ["a", "b"])  # builder: a GraphBuilder with inputs "a" and "b"

Layers are named (`dense_1`, ...) and given weights (from `seed`, as in Sequential) when the Functional is made.
A layer called twice shares its weights: the graph emits its parameters once. A Functional is a layer too, so it
can be called inside another; its layers' parameters are then named under its own name (`encoder.dense_1.kernel`);
called so, it returns its outputs' tensors in the structure it was given them, as Keras' nested model does (one
tensor, a list or tuple, a dict keyed as its outputs: `outs = sub(x)`, `outs["a"]`; `_functional_outputs.py`), and
a call of several outputs is emitted once for all of them. A dict of outputs is flattened in sorted key order, as
Keras 3 flattens it: `outputs`, `output_names`, `layers` (and so the weights' order) and compile's per-output lists
follow its sorted keys, while a call and `output` give the dict in its own order.
Keras' masks travel beside the values as the graph is emitted (`emit_with_masks`; `Layer`'s docstring). A call made
with `training=False` (`base_model(x, training=False)`, Keras' transfer learning) is emitted in inference mode in
every graph, whatever mode the graph is in (`emit_with_masks`), and its config and summary keep the argument.
The checks of `inputs` and `outputs`, the order of the calls and the refs a config names them by are
`_functional_calls.py`'s; the calls rebuilt from a config, `_functional_rebuild.py`'s; what `Model(inputs, outputs)`
is checked for, `_model_checks.py`'s; the parameters by name and Keras' weights API, `_functional_params.py`'s.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from onnxtrain._functional_calls import (
    SummaryRow,
    as_float,
    call_outputs,
    call_refs,
    call_several,
    emit_layer_call,
    listed,
    output_names,
    place_substitutes,
    summary_rows,
    topological_calls,
)
from onnxtrain._functional_calls import every_layer as every_layer  # read here by the model modules
from onnxtrain._functional_outputs import (
    WRITTEN_POSITIONS,
    config_structure,
    returned,
    sorted_outputs,
    structure_from_config,
    structure_of,
    structured,
    written_positions,
)
from onnxtrain._functional_params import GraphParams
from onnxtrain._functional_rebuild import in_config_order, rebuild_calls
from onnxtrain._keras_functional_config import onnxtrain_functional_config
from onnxtrain._layer_names import name_layers
from onnxtrain._model_names import AUTO_NAMED
from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import Input, Layer, Shape
from onnxtrain.layers._call_mode import call_config, call_mode
from onnxtrain.layers._eager import is_eager_input
from onnxtrain.layers._layer import Mask, SymbolicTensor, describe
from onnxtrain.layers._layer_checks import positional_inputs
from onnxtrain.layers._layer_tensors import layer_calls
from onnxtrain.layers._layout import channels_last


class Functional(GraphParams, Layer):
    """The layers between `inputs` and `outputs`, in the order they are called.

    Args:
        inputs: the Input tensors the graph starts from: one, or a list (their order is `emit`'s).
        outputs: the tensors it computes: one, a list or tuple, or a dict {name: tensor} (Keras' dict of outputs),
            whose keys name the outputs (`output_names`) and may list one tensor under several; its outputs are in
            sorted key order, as Keras 3 flattens such a dict. A call of the graph as a layer of another returns its
            tensors in this structure (a dict in its own order), as Keras' does.
        name: the graph's name; as a layer inside another graph, its parameters' names start with it.
        seed: seeds the weights of the layers that have none yet (random when None; kept in `seed`).
        trainable: False freezes every layer of the graph (and sets their `trainable`, as Keras does).

    Attributes:
        inputs / outputs: as given, as lists (a dict of outputs: its values, in sorted key order).
        output_keys: a dict of outputs' keys, sorted (the outputs' order); None for outputs given as a tensor, a list
            or a tuple.
        given_keys: a dict of outputs' keys in the dict's own order (a call's, `output`'s and the config's); None
            as `output_keys`.
        output_structure: how `outputs` was given: "tensor", "list", "tuple" or "dict".
        layers: every layer once, Inputs first, in the order of their first call; a graph of layers all rebuilt
            from one config (`from_config`): in the config's order, as Keras orders it (and `get_weights`).

    Raises:
        InvalidTypeError: an input is not an Input, or an output not a symbolic tensor.
        InvalidArgumentError: an output depends on an Input not in `inputs`, an input is listed twice, two
            layers have one name, or two keys of a dict of outputs are one name as text. (An input that no
            output reads is taken, as Keras takes it.)
    """

    def __init__(
        self,
        inputs: Input | Sequence[Input],
        outputs: SymbolicTensor | Sequence[SymbolicTensor] | Mapping[str, SymbolicTensor],
        name: str | None = None,
        seed: int | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.inputs: list[Input] = listed(inputs, "inputs", Input, "Input(...) tensors")
        self.output_keys: list[str] | None = None
        self.given_keys: list[str] | None = None
        self.output_structure = structure_of(outputs)
        if isinstance(outputs, Mapping):  # flattened in sorted key order, as Keras 3 flattens a dict
            self.given_keys, self.output_keys, outputs = sorted_outputs(outputs)
        self.outputs: list[SymbolicTensor] = listed(outputs, "outputs", SymbolicTensor, "symbolic tensors")
        if len({id(x) for x in self.inputs}) != len(self.inputs):
            raise InvalidArgumentError(f"Functional(inputs=...) lists an Input twice. Received: {self.inputs}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
            raise InvalidArgumentError(f"Functional(seed=...) expects a non-negative int or None. Received: {seed!r}")
        self.seed: int = int(seed) if seed is not None else secrets.randbits(32)
        self._nodes = topological_calls(self.inputs, self.outputs)
        self.layers: list[Layer] = in_config_order(list({id(n.layer): n.layer for n in self._nodes}.values()))
        name_layers(self.layers)
        self._build_layers()
        self.multi_input = len(self.inputs) > 1
        if self.multi_input:
            self.input_shapes = [x.shape for x in self.inputs]
        else:
            self.input_shape = self.inputs[0].shape
        self.output_shape = self.outputs[0].shape if len(self.outputs) == 1 else None
        if not trainable:
            self.trainable = False  # now that the layers are known: freeze them

    # --- structure ----------------------------------------------------------------------------------------
    def _build_layers(self) -> None:
        for index, layer in enumerate(self.layers):
            if isinstance(layer, Input):
                if not layer.built:
                    layer.input_shape, layer.output_shape = (), layer.dims
            elif not layer.params and not isinstance(layer, Functional):  # weights from an earlier graph stay
                rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(index,)))
                layer.build(layer.input_shapes if layer.multi_input else layer.input_shape, rng)  # type: ignore[arg-type]

    reads_integers = True  # a Model called as a layer: its own emit gives each inner layer what it reads

    def _take_model_name(self, name: str) -> None:
        """Take `name`, which the model this graph is nested in gives it while its model has a default name
        (`_layer_names.name_layers`), and give it to that model too. (Set as the model sets it, unchecked: it is
        the graph's name before any graph is emitted with it, also where a wrapper holds the graph.)"""
        object.__setattr__(self, "name", name)
        self.__dict__.pop(AUTO_NAMED, None)
        reference = self.__dict__.get("_own_model")
        model = reference() if reference is not None else None
        if model is not None:
            model._take_name(name)

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        """Set on every layer too, as Keras does (a graph made with trainable=True leaves its layers as they are)."""
        self._trainable = value
        for layer in getattr(self, "layers", ()):  # none yet while Layer.__init__ sets it
            if not isinstance(layer, Input):
                layer.trainable = value

    @property
    def built(self) -> bool:
        return True

    def __call__(
        self,
        inputs: SymbolicTensor | Sequence[SymbolicTensor],
        *more_inputs: SymbolicTensor,
        training: bool | None = None,
    ) -> Any:
        """A call as a layer of another graph: its tensors in the structure the graph was given its outputs, as
        Keras' nested model returns them: one tensor, a list or tuple of them, or a dict keyed as the outputs
        (`outs = sub(x)`, `outs["a"]`), which the other graph's layers read one by one. On arrays it runs at once
        and returns what Keras 3's call does (`_functional_outputs.returned`): one array (also for a list or tuple
        of one output), a list or tuple of them as the graph was given its outputs, or for a dict of outputs a
        dict keyed by output name (in the dict's own order)."""
        given = positional_inputs(self, inputs, more_inputs)
        if is_eager_input(given):  # Keras 3's structure of arrays, as a Model's call on them (`returned`)
            result = super().__call__(inputs, *more_inputs, training=training)
            results = result if isinstance(result, list) else [result]
            return returned(self.output_structure, self.output_keys, results, self.given_keys)
        if len(self.outputs) == 1:
            tensors = [super().__call__(inputs, *more_inputs, training=training)]
        else:  # one tensor per output, all of one call
            tensors = call_several(self, given, training)
        return self._structured(tensors)

    def _structured(self, items: list[Any]) -> Any:
        """`items`, one per output in the outputs' order, in the structure the graph was given its outputs."""
        return structured(self.output_structure, self.output_keys, items, self.given_keys)

    @property
    def output(self) -> Any:
        """Keras' `layer.output`: the graph's own outputs in the structure it was given them (one tensor, a list or
        tuple, a dict), as Keras' model gives them, until it is called as a layer of another; then its call's
        tensors there (`Layer.output`), in that structure too.

        Raises:
            InvalidArgumentError: a graph called at several places (as `Layer.output`).
        """
        if not layer_calls(self):
            return self._structured(self.outputs)
        return self._structured(call_outputs(super().output))

    @property
    def input(self) -> SymbolicTensor | list[SymbolicTensor]:
        """Keras' `layer.input`: the graph's own Input (a list for several) until it is called as a layer of another;
        then what its call read (`Layer.input`)."""
        if layer_calls(self):
            return super().input
        return self.inputs[0] if len(self.inputs) == 1 else list(self.inputs)

    def compute_output_shape(self, input_shape: Any) -> Shape:
        expected = [x.shape for x in self.inputs] if self.multi_input else self.inputs[0].shape
        if input_shape != expected or self.output_shape is None:
            raise ShapeError(f"{describe(self)} takes inputs of shape {expected}. Received: {input_shape}")
        return self.output_shape

    def output_names(self) -> list[str]:
        """The outputs' names: a dict of outputs' keys, sorted (as Keras 3's `output_names`); else their layers', as
        Keras names them, made unique (`_functional_calls.output_names`)."""
        return list(self.output_keys) if self.output_keys is not None else output_names(self.outputs)

    @property
    def given_outputs(self) -> Any:
        """The outputs as the graph was given them (`output_structure`): one tensor, a list or tuple, or a dict keyed
        by output name. A model made of them (`Model(graph.inputs, graph.given_outputs)`) names and calls its
        outputs alike."""
        return self._structured(self.outputs)

    # --- ONNX ---------------------------------------------------------------------------------------------
    def emit(  # type: ignore[override]
        self,
        builder: GraphBuilder,
        input_values: list[str],
        substitutes: Mapping[int, Layer] | None = None,
    ) -> list[str]:
        """Emit every layer call, in order, reading `input_values` (one per input, channels last); returns the
        outputs' values, channels last. Each layer emits inside its own name scope; a layer called twice adds its
        parameters once (`Layer.emit_params`).

        Args:
            substitutes: output position -> a layer that computes that output, from its call's inputs, instead of
                the layer that was called (e.g. a shallow copy of an output's Dense without its activation, as
                `emit.logits_substitutes` makes for a loss on logits). Other layers reading the tensor, and another
                position listing it without a substitute, read the called layer's value
                (`_functional_calls.place_substitutes`).
        """
        return self.emit_with_masks(builder, input_values, substitutes)[0]

    def emit_with_masks(
        self,
        builder: GraphBuilder,
        input_values: list[str],
        substitutes: Mapping[int, Layer] | None = None,
        input_masks: Sequence[Mask] | None = None,
    ) -> tuple[list[str], list[Mask]]:
        """`emit`, carrying Keras' masks beside the values (`Layer`'s docstring): returns the outputs' values and
        their masks (None where an output has none). `input_masks`: the inputs' (a model called as a layer of
        another); none by default."""
        if isinstance(input_values, str) or len(input_values) != len(self.inputs):
            raise InvalidArgumentError(
                f"{describe(self)} emits from a list of {len(self.inputs)} input values. Received: {input_values!r}"
            )
        values = {id(x): value for x, value in zip(self.inputs, input_values, strict=True)}
        masks: dict[int, Mask] = dict(zip(map(id, self.inputs), input_masks or [None] * len(self.inputs), strict=True))
        floats: dict[str, str] = {}  # integer graph input -> its float32 cast, emitted once for the layers that read it

        def call(node: SymbolicTensor, layer: Layer) -> tuple[list[str], list[Mask]]:
            xs = [values[id(x)] for x in node.inputs]
            if not layer.reads_integers:
                xs = [as_float(builder, x, floats) for x in xs]
            with call_mode(builder, node.training):
                return emit_layer_call(builder, layer, xs, [masks[id(x)] for x in node.inputs])

        in_place, beside = place_substitutes(self._nodes, self.outputs, substitutes or {})
        emitted: dict[tuple[int, int], tuple[list[str], list[Mask]]] = {}  # a call's outputs, by (layer, call index)
        for node in self._nodes[len(self.inputs) :]:
            key = (id(node.layer), node.call_index)
            if key not in emitted:  # a call of a model of several outputs is emitted once, for all its tensors
                emitted[key] = call(node, in_place.get(id(node), node.layer))
            values[id(node)] = emitted[key][0][node.output_index]
            masks[id(node)] = emitted[key][1][node.output_index]
        outputs = [(values[id(y)], masks[id(y)]) for y in self.outputs]
        called: dict[int, tuple[str, Mask]] = {}  # a substitute's call beside its tensor's (once for a tensor twice)
        for position, layer in beside.items():
            y = self.outputs[position]
            if id(y) not in called:
                (value,), (mask,) = call(y, layer)
                called[id(y)] = (value, mask)
            outputs[position] = called[id(y)]
        ranks = [len(y.shape) + 1 for y in self.outputs]
        return [channels_last(builder, v, r) for (v, _), r in zip(outputs, ranks, strict=True)], [m for _, m in outputs]

    def eager_outputs(self, builder: GraphBuilder, xs: list[str]) -> list[tuple[str, Shape]]:
        """Every output of the graph (channels last) and its per-example shape, reading `xs`: what a call of the
        model on numpy arrays runs (`layers/_eager.py`)."""
        return list(zip(self.emit(builder, xs), [y.shape for y in self.outputs], strict=True))

    # --- config and summary -------------------------------------------------------------------------------
    def _connections(self) -> tuple[dict[int, list[SymbolicTensor]], dict[int, list[str | int]]]:
        several = {id(layer) for layer in self.layers if isinstance(layer, Functional) and len(layer.outputs) > 1}
        return call_refs(self.layers, self._nodes, several)

    def get_config(self) -> dict[str, Any]:
        """Keras' layout: each layer with, per call, the [layer name, call index] of each tensor it read; a call
        given `training=False` as {"args": those, "kwargs": {"training": false}}, as Keras keeps a call's kwargs;
        the output layers as a dict {key: ref} for a dict of outputs in its own order, as Keras writes them, and
        where they cannot tell it, how the outputs were given (a list of one, a tuple) or that the refs to its
        outputs count them sorted (`_functional_outputs.config_structure`)."""
        calls, ref = self._connections()
        layers = [
            {
                **layer.serialize(),
                "inbound_nodes": []
                if isinstance(layer, Input)
                else [call_config(node, ref) for node in calls[id(layer)]],
            }
            for layer in self.layers
        ]
        return {
            "name": self.name,
            "trainable": self.trainable,
            "seed": self.seed,
            "layers": layers,
            "input_layers": [ref[id(x)] for x in self.inputs],
            "output_layers": [ref[id(y)] for y in self.outputs]
            if self.output_keys is None
            else self._structured([ref[id(y)] for y in self.outputs]),
            **config_structure(self.output_structure, len(self.outputs), self.given_keys),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Functional:
        """The graph that `get_config()` (or `serialize()`) described, made of new layers whose weights are drawn
        again from the config's seed."""
        return cls.from_layer_config(config["config"] if "class_name" in config else config)

    @classmethod
    def from_layer_config(cls, config: dict[str, Any]) -> Functional:
        """The graph a Functional config describes: onnxtrain's `get_config()`, or Keras 3's as it writes it
        (`__keras_tensor__` calls, one input or output ref: `_keras_functional_config`)."""
        config = onnxtrain_functional_config(config)
        keyed = config.get("output_layers")
        keys = None
        # the layers (and so the weights) in the config's order, as Keras rebuilds a model; but for a save from
        # before a dict of outputs was sorted, which listed them in the order of calls that have changed since
        keep_order = not isinstance(keyed, Mapping) or written_positions(config, sorted(map(str, keyed))) is None
        if isinstance(keyed, Mapping):  # a dict of outputs (Keras' layout): rebuilt as a list, then keyed again
            keys = list(map(str, keyed))
            inputs, outputs = rebuild_calls({**config, "output_layers": list(keyed.values())}, keep_order)
        else:
            inputs, outputs = rebuild_calls(config, keep_order)
        given = structured(structure_from_config(config, len(outputs)), keys, outputs)
        graph = cls(inputs, given, config.get("name"), config.get("seed"), config.get("trainable", True))
        positions = written_positions(config, graph.output_keys) if graph.output_keys is not None else None
        if positions is not None:  # a config from before dict outputs were sorted: the refs to them count so
            graph.__dict__[WRITTEN_POSITIONS] = positions
        return graph

    def summary_rows(self) -> list[SummaryRow]:
        """Keras' summary rows: layer (type), output shape, parameter count, and the calls it reads ("Connected to")."""
        return summary_rows(self.layers, *self._connections())

    def __repr__(self) -> str:
        return f"Functional(name={self.name!r}, layers={[layer.name for layer in self.layers]})"


def as_graph(layers: Sequence[Layer] | Functional, name: str | None = None) -> Functional:
    """`layers` as a Functional: a Functional as it is; a built layer list (a Sequential's: Input first, each layer
    reading the one before) as the chain of its calls, named `name` (the Sequential's: its name as a nested layer).
    The chain's tensors are made here, not by calling the layers, so the layers keep no record of it (and their
    weights are theirs already)."""
    if isinstance(layers, Functional):
        return layers
    layers = list(layers)
    if not layers or not isinstance(layers[0], Input):
        raise InvalidArgumentError(f"A layer list starts with its Input. Received: {layers!r}")
    tensor: SymbolicTensor = layers[0]
    for layer in layers[1:]:
        assert layer.output_shape is not None, "layers must be built"
        tensor = SymbolicTensor(layer.output_shape, layer, 0, [tensor])
    return Functional(layers[0], tensor, name=name, seed=0)
