"""Sequential: a `Model` of a layer list, Input first, each layer reading the one before (KotlinDL's and Keras'
Sequential): the list checked, named and built in order when the model is made; without an Input (Keras'
`Sequential([Dense(8), Dense(3)])`), built later from `build(input_shape)` or the first data (`_deferred_build.py`).

Example:
    >>> model = Sequential.of(Input(28, 28, 1), Flatten(), Dense(300), Dense(100), Dense(10))
    >>> with model:
    ...     model.compile(optimizer=Adam(), loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, metric=Metrics.ACCURACY)
    ...     model.fit(dataset=train, epochs=10, batch_size=100)
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import numpy as np

from onnxtrain._deferred_build import build_shape, data_shape, input_dtype_for, not_built_message
from onnxtrain._layer_names import name_layers
from onnxtrain._model_names import AUTO_NAMED, auto_model_name
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelStateError, ShapeError
from onnxtrain.functional import Functional, as_graph
from onnxtrain.layers import Input, Layer, Shape
from onnxtrain.layers._input_arguments import check_declared_input, declared_input
from onnxtrain.layers._layer import SymbolicTensor
from onnxtrain.layers._layer_checks import describe
from onnxtrain.layers._shapes import format_shape
from onnxtrain.model import Model
from onnxtrain.summary import summary_table


class Sequential(Model):
    """A linear stack of layers, the first of which is `Input`.

    Layers are named (`dense_1`, ...), shape-checked and given weights when the model is created, so a shape
    mistake fails on the line that builds the model. Weights come from `seed` (random when None; the seed used
    is kept in `model.seed`), so the same seed gives bit-identical weights.

    Keras' other ways to give the input: `Dense(64, input_shape=(4,))` (or Keras 2's `input_dim=4`) as the first
    layer starts the model with `Input(4)` (with the `dtype=` given beside it); and a stack with no input shape at
    all (`Sequential([Dense(8), Dense(3)])`, or `Sequential()` then `add(Dense(8))`) is built later, by
    `build((None, 4))` or from the shape of the first data fit, evaluate, predict or `model(x)` takes, with the
    weights `Sequential([Input(4), ...the same layers...], seed=model.seed)` has (its Input is int64 token ids
    where the first layer reads them, an Embedding; else float32). `compile` before that is kept and applied once
    the model is built; what needs the weights (summary, count_params, get_weights, save, ...) refuses until then.

    A model of one input and one output is a layer too, as in Keras (`Sequential([data_augmentation,
    Rescaling(1 / 255), Conv2D(...)])`, `model.add(base_model)`): it shares its layers and weights with this
    model, as `base_model(x)` does in a functional model. First in the list, its input is this model's input; a
    Sequential without an input shape is built for the shape it reads when this model is built.

    Args:
        layers: Input first, then the other layers (or the layers alone: see above).
        name: the model's name (config, summary, exported graph); without one, Keras' default: "sequential",
            then "sequential_1", ..., numbered per process (nested in another model: see `Model`'s name).
        seed: seeds weight initialization and the default per-epoch shuffling.
    """

    def __init__(self, layers: Sequence[Layer | Model] = (), name: str | None = None, seed: int | None = None):
        if isinstance(name, Layer) or isinstance(seed, Layer):  # Sequential(Input(3), Dense(3)): layers not listed
            listed_first = list(layers) if isinstance(layers, Sequence) else [layers]
            given = [layer for layer in [*listed_first, name, seed] if isinstance(layer, Layer)]
            listed = ", ".join(f"{type(layer).__name__}(...)" for layer in given)
            misplaced = ", ".join(
                f"{arg}={type(value).__name__}(...)"
                for arg, value in (("name", name), ("seed", seed))
                if isinstance(value, Layer)
            )
            raise InvalidTypeError(
                f"Sequential expects its layers as one list: Sequential([{listed}]), or use Sequential.of({listed}). "
                f"Received: the layers as separate arguments: {misplaced}"
            )
        if isinstance(layers, Layer | Model):
            layers = [layers]
        stack: list[Layer] = [_as_layer(layer, i) for i, layer in enumerate(layers)]
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
            raise InvalidArgumentError(f"Sequential(seed=...) expects a non-negative int or None. Received: {seed!r}")
        if name is None:  # Keras' default: "sequential", "sequential_1", ... (`_model_names.py`)
            name = auto_model_name("sequential")
            self.__dict__[AUTO_NAMED] = "sequential"
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"Sequential(name=...) expects a non-empty string. Received: name={name!r}")
        self.seed = int(seed) if seed is not None else secrets.randbits(32)
        if not stack or _deferred(stack):  # Keras' Sequential(), then add(...), or layers without an Input
            self.name, self._layers, self._closed, self._trainer = name, [], False, None
            self.stop_training, self._fitting = False, False
            self._pending_compile = None
            if stack:
                _check_layers(stack, "layers")
                name_layers(_named(stack))
                self._layers = stack
            return
        stack = _with_declared_input(stack)
        _check_layers(stack, "layers")
        stack = _nested_built(stack)
        name_layers(stack)
        self._build_stack(stack)
        self._setup(as_graph(stack, name), name, self.seed)
        self._layers = stack

    def add(self, layer: Layer | Model) -> None:
        """Append `layer` (Keras' `Sequential.add`), Input first: it is named, shape-checked and built at once,
        with the weights `Sequential([...all the layers...], seed=model.seed)` gives it. Before `compile` only. A
        model of one input and one output is added as a layer (see the class).

        Raises:
            ModelStateError: the model is compiled or closed.
            InvalidTypeError / InvalidArgumentError: as Sequential's checks of its layer list.
        """
        self._check_open("add")
        if self._trainer is not None:
            raise ModelStateError(
                "add() was called after compile(): the compiled engine trains the layers it was given. Add the "
                "layers first, then compile (the weights of the layers already built are kept)."
            )
        argument = "add(layer)" if self._layers else "add(layer) on an empty Sequential"
        added: Layer = _as_layer(layer, len(self._layers))
        if "graph" not in self.__dict__ and (self._layers or _deferred([added])):  # built later (see the class)
            _check_layers([*self._layers, added], argument)
            name_layers(_named([*self._layers, added]))
            self._layers = [*self._layers, added]
            return
        if "graph" not in self.__dict__ and not isinstance(added, Input):  # Dense(8, input_shape=(4,)) first
            layers = _with_declared_input([added])
            _check_layers(layers, argument)
            layers = _nested_built(layers)
            name_layers(layers)
            self._build_stack(layers)
            self._setup(as_graph(layers, self.name), self.name, self.seed)
            self._layers = layers
            return
        _check_layers([*self._layers, added], argument)
        layers = _nested_built([*self._layers, added])
        added = layers[-1]  # (a nested Sequential not built yet: its graph, built now)
        name_layers(layers)
        shape = self._layers[-1].output_shape if self._layers else ()
        assert shape is not None  # every layer of the model is built
        self._build_layer(len(layers) - 1, added, shape)
        kept = (self.class_names, self.input_scale) if self._layers else (None, 1.0)
        self._setup(as_graph(layers, self.name), self.name, self.seed)
        self._layers = layers
        self.class_names, self.input_scale = kept

    def __getattr__(self, name: str) -> Any:
        # Only reached for an attribute not set: what a Sequential without its Input lacks until it is built.
        if name in {"graph", "class_names", "input_scale", "trained_loss"}:
            raise ModelStateError(not_built_message(name, bool(self.__dict__.get("_layers"))))
        return super().__getattr__(name)  # type: ignore[misc]  # (hidden from mypy) camelCase names get a hint

    def build(self, input_shape: Any = None) -> None:
        """Keras' `model.build(input_shape)`: build a Sequential given no input shape (see the class) for batches of
        `input_shape`, the batch axis first: `model.build((None, 4))` makes it `Sequential([Input(4), ...])`, with
        those weights; a `compile` given before opens its engine now. On a built model, a no-op where the shape is
        its input's.

        Raises:
            InvalidArgumentError: a shape that is not a batch's (None, *positive ints); another shape than a built
                model's input; a layer that cannot read it (ShapeError).
            ModelStateError: the model has no layers, or is closed.
        """
        self._check_open("build")
        shape = build_shape(input_shape)
        if "graph" in self.__dict__:
            if shape != self.input_shape:
                raise InvalidArgumentError(
                    f"build(input_shape) on model {self.name!r}, which is built for examples of shape "
                    f"{self.input_shape}. Received: input_shape={input_shape!r}"
                )
        else:
            self._build_deferred(shape)
        self._open_pending_compile()

    def __call__(self, inputs: Any, *more_inputs: Any, training: bool | None = None) -> Any:
        """`Model.__call__`; a Sequential not built yet is built first for the per-example shape of `inputs` (a
        numpy batch, or a symbolic tensor), as Keras builds it on its first call."""
        if "graph" not in self.__dict__ and self._layers:
            if isinstance(inputs, SymbolicTensor):
                self._build_deferred(inputs.shape)
            elif isinstance(inputs, np.ndarray):
                self._build_deferred(data_shape(inputs, "A call"))
        return super().__call__(inputs, *more_inputs, training=training)

    def _build_for(self, action: str, x: Any) -> None:
        """Before `action` (fit, evaluate, predict) on inputs `x`: build the model from their shape where it has
        none yet, and open the engine of a compile given before the build."""
        if "graph" not in self.__dict__ and self._layers:
            if action != "predict" and self._pending_compile is None:
                self._compiled_trainer(action)  # refuses: fit and evaluate need compile first, as Keras'
            self._build_deferred(data_shape(x, action))
        self._open_pending_compile()

    def _build_deferred(self, shape: Shape) -> None:
        """Build the stack for examples of `shape` before its first layer: `Sequential([Input(shape), ...])`."""
        self._check_open("build")
        if not self._layers:
            raise ModelStateError(not_built_message("build", False))
        layers = [Input(shape=shape, dtype=input_dtype_for(_first_layer(self._layers[0]))), *self._layers]
        _check_layers(layers, "build")
        layers = _nested_built(layers)
        output_shape = shape
        for layer in layers[1:]:  # every shape first: a shape a layer cannot read leaves the layers unbuilt
            check_declared_input(layer, output_shape, "the output of the layer before it")
            output_shape = layer.compute_output_shape(output_shape)
        name_layers(layers)
        self._build_stack(layers)
        self._setup(as_graph(layers, self.name), self.name, self.seed)
        self._layers = layers

    def _open_pending_compile(self) -> None:
        """Compile as `compile()` was asked to before the model was built (its options are kept till then)."""
        pending = self.__dict__.get("_pending_compile")
        if pending is not None and "graph" in self.__dict__:
            self._pending_compile = None
            self._compile(**pending)

    @classmethod
    def of(
        cls, *layers: Layer | Model | Sequence[Layer | Model], name: str | None = None, seed: int | None = None
    ) -> Sequential:
        """KotlinDL's constructor: `Sequential.of(Input(28, 28, 1), Flatten(), Dense(10))`, or with a list, as
        KotlinDL's `of(List)` and `of(input, List)`: `Sequential.of([Input(4), Dense(3)])`,
        `Sequential.of(Input(4), [Dense(8), Dense(3)])`."""
        listed: list[Any] = []  # Sequential's checks name what is not a Layer
        for given in layers:
            listed.extend(given if isinstance(given, list | tuple) else [given])
        return cls(listed, name=name, seed=seed)

    def _build_stack(self, layers: list[Layer]) -> None:
        shape: Shape = ()
        for index, layer in enumerate(layers):
            shape = self._build_layer(index, layer, shape)

    def _build_layer(self, index: int, layer: Layer, shape: Shape) -> Shape:
        """Build `layer`, the `index`-th of the stack, on inputs of `shape` with its weights drawn from the model's
        seed; returns its output shape."""
        if index > 0:  # Keras ignores a later layer's input_shape=...; one that contradicts its input is a mistake
            check_declared_input(layer, shape, "the output of the layer before it")
        if index > 0 and layer.built:  # another model's (KotlinDL's transfer learning): its weights are kept
            if tuple(layer.input_shape or ()) != tuple(shape):
                raise ShapeError(
                    f"{describe(layer)} was built for inputs of shape {format_shape(layer.input_shape or ())}"
                    f"{f' in model {layer.model_name!r}' if layer.model_name else ''}, and a layer keeps its weights "
                    f"in every model made of it; here it reads the output of the layer before it, of shape "
                    f"{format_shape(shape)}. Received: layers[{index}]={layer.name!r}. Give it inputs of its shape, "
                    "or make a new layer (layer.from_config(layer.get_config()), without the weights)."
                )
            assert layer.output_shape is not None
            return layer.output_shape
        output_shape = layer.compute_output_shape(shape)
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(index,)))
        layer.build(shape, rng)
        layer.input_shape, layer.output_shape = shape, output_shape
        return output_shape

    def _summary_table(
        self,
        show_trainable: bool = False,
        expand_nested: bool = False,
        line_length: int | None = None,
        positions: Sequence[float] | None = None,
    ) -> str:
        """KotlinDL's summary table (what `Model.summary` prints): Layer (type) | Output Shape | Param #."""
        self._check_built("summary")
        loss = self._emitted_loss()
        model_type = f"{type(self).__name__} ({self.name})"
        counts = self.param_counts()
        return summary_table(
            model_type, self._layers, counts, loss, show_trainable, expand_nested, self.graph, line_length, positions
        )

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "layers": [layer.serialize() for layer in self._layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        """The model `get_config()` describes (its layers in order), with weights drawn again from its seed.

        Raises:
            InvalidArgumentError: `config` is not a Sequential's (no "layers" list); plus what rebuilding a layer
                from its entry raises.
        """
        layers = config.get("layers") if isinstance(config, dict) else None
        if not isinstance(layers, list) or any(
            isinstance(entry, dict) and "inbound_nodes" in entry for entry in layers
        ):
            received = sorted(config) if isinstance(config, dict) else type(config).__name__
            raise InvalidArgumentError(
                "Sequential.from_config expects a Sequential's config: {'name', 'seed', 'layers': [layer configs]} "
                f"(a Functional config goes to Model.from_config). Received: {received}"
            )
        return cls(
            [Layer.from_config(entry) for entry in layers],
            name=None if config.get("name") is None else str(config["name"]),
            seed=config.get("seed"),
        )

    def __repr__(self) -> str:
        return f"Sequential(name={self.name!r}, layers={[layer.name for layer in self._layers]})"


def _deferred(layers: list[Any]) -> bool:
    """Whether a Sequential of `layers` has no input shape yet: no Input first, nor an input_shape=... on its first
    layer, nor a model with an input (it is built later: see `Sequential`)."""
    first = layers[0]
    if _unbuilt_model(first):
        return True
    return isinstance(first, Layer) and not isinstance(first, Input | Functional) and declared_input(first) is None


def _with_declared_input(layers: list[Layer]) -> list[Layer]:
    """`layers`, with the Input its first layer's input_shape=... (input_dim, batch_input_shape) declares first, or
    that of the model first among them (its graph: Keras' Sequential takes a nested model's input shape)."""
    first = layers[0]
    if isinstance(first, Functional):
        (given,) = first.inputs  # one input (`_as_layer`)
        return [Input(shape=given.dims, dtype=given.dtype.name), *layers]
    declared = declared_input(first) if not isinstance(first, Input) else None
    if declared is None:
        return layers
    return [Input(shape=declared.shape, dtype=declared.dtype.name), *layers]


def _as_layer(item: Any, index: int) -> Any:
    """`item`, one of a Sequential's layers, as the layer it is: a built model (Keras' `Sequential([augmentation,
    Conv2D(...)])`) as its graph, which shares its layers and weights with it, as calling the model on a tensor
    does; a Sequential without an input shape stays as it is until this one is built (`_nested_built`).

    Raises:
        InvalidArgumentError: a model of several inputs or outputs (a Sequential's layer reads one tensor).
    """
    if not isinstance(item, Model):
        return item
    graph = item.__dict__.get("graph")
    if graph is None:
        return item
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise InvalidArgumentError(
            f"A Sequential's layers read one tensor and give one: a model among them needs one input and one "
            f"output. Received: layers[{index}]=model {item.name!r} with {len(graph.inputs)} "
            f"input(s) and {len(graph.outputs)} output(s). Call it in a functional model instead: "
            f"outputs = {item.name}([a, b]) (onnxtrain.Model(inputs, outputs))."
        )
    return graph


def _unbuilt_model(layer: Any) -> bool:
    """Whether `layer` is a Sequential among another's layers that has no input shape yet."""
    return isinstance(layer, Sequential) and "graph" not in layer.__dict__


def _first_layer(layer: Any) -> Any:
    """The layer that reads a Sequential's input where `layer` is its first: inside a nested Sequential not built
    yet, its own first layer."""
    while _unbuilt_model(layer) and layer._layers:
        layer = layer._layers[0]
    return layer


def _named(layers: list[Any]) -> list[Layer]:
    """The layers `name_layers` names in a list not built yet: a nested Sequential not built yet is named (as its
    graph) when it is built."""
    return [layer for layer in layers if isinstance(layer, Layer)]


def _stack_shape(layer: Any, shape: Shape) -> Shape:
    """The output shape of `layer` (a nested Sequential not built yet: of its layers in turn) on inputs of `shape`."""
    if not _unbuilt_model(layer):
        check_declared_input(layer, shape, "the output of the layer before it")
        if layer.built and not isinstance(layer, Input) and layer.output_shape is not None:
            return tuple(layer.output_shape)  # (another model's: `_build_layer` checks what it reads)
        return tuple(layer.compute_output_shape(shape))
    if not layer._layers:
        raise ModelStateError(not_built_message(f"nesting model {layer.name!r}", False))
    for inner in layer._layers:
        shape = _stack_shape(inner, shape)
    return shape


def _nested_built(layers: list[Any]) -> list[Layer]:
    """`layers` (Input first) with each nested Sequential not built yet built for the shape it reads there (Keras
    builds it at its first call), as its graph. Every shape up to the last of them is computed first, so a layer
    that cannot read its input leaves them unbuilt."""
    last = max((i for i, layer in enumerate(layers) if _unbuilt_model(layer)), default=None)
    if last is None:
        return layers
    shapes: list[Shape] = []
    shape: Shape = ()
    for layer in layers[: last + 1]:
        shapes.append(shape)
        shape = _stack_shape(layer, shape)
    built = list(layers)
    for i in range(last + 1):
        if _unbuilt_model(built[i]):
            built[i].build((None, *shapes[i]))
            built[i] = built[i].graph
    return built


def _check_layers(layers: list[Any], argument: str) -> None:
    """Sequential's rules for its layer list: Layer instances (a nested model: its graph, or a Sequential not built
    yet), at most one Input, first, and each layer once."""
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer) and not _unbuilt_model(layer):
            raise InvalidTypeError(
                f"Sequential expects Layer instances. Received: layers[{i}]={layer!r} ({type(layer).__name__})"
            )
    for i, layer in enumerate(layers[1:], start=1):
        if isinstance(layer, Input):
            raise InvalidArgumentError(f"Sequential expects exactly one Input, first. Received: Input at layers[{i}]")
    if len(set(map(id, layers))) != len(layers):
        raise InvalidArgumentError("Sequential expects each layer instance once. Received: a repeated layer")
