"""Sequential: a `Model` of a layer list, Input first, each layer reading the one before (KotlinDL's and Keras'
Sequential): the list checked, named and built in order when the model is made.

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

from onnxtrain._layer_names import name_layers
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelStateError
from onnxtrain.functional import as_graph
from onnxtrain.layers import Input, Layer, Shape
from onnxtrain.model import Model
from onnxtrain.summary import summary_table


class Sequential(Model):
    """A linear stack of layers, the first of which is `Input`.

    Layers are named (`dense_1`, ...), shape-checked and given weights when the model is created, so a shape
    mistake fails on the line that builds the model. Weights come from `seed` (random when None; the seed used
    is kept in `model.seed`), so the same seed gives bit-identical weights.

    Args:
        layers: Input first, then the other layers.
        name: the model's name (config, summary, exported graph).
        seed: seeds weight initialization and the default per-epoch shuffling.
    """

    def __init__(self, layers: Sequence[Layer] = (), name: str = "sequential", seed: int | None = None):
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
        if isinstance(layers, Layer):
            layers = [layers]
        layers = list(layers)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
            raise InvalidArgumentError(f"Sequential(seed=...) expects a non-negative int or None. Received: {seed!r}")
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"Sequential(name=...) expects a non-empty string. Received: name={name!r}")
        self.seed = int(seed) if seed is not None else secrets.randbits(32)
        if not layers:  # Keras' Sequential(), then add(Input(...)), add(...): a model once it has its Input
            self.name, self.layers, self._closed, self._trainer = name, [], False, None
            self.stop_training, self._fitting = False, False
            return
        _check_layers(layers, "layers", new=0)
        name_layers(layers)
        self._build_stack(layers)
        self._setup(as_graph(layers), name, self.seed)
        self.layers = layers

    def add(self, layer: Layer) -> None:
        """Append `layer` (Keras' `Sequential.add`), Input first: it is named, shape-checked and built at once,
        with the weights `Sequential([...all the layers...], seed=model.seed)` gives it. Before `compile` only.

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
        layers = [*self.layers, layer]
        _check_layers(layers, "add(layer)" if self.layers else "add(layer) on an empty Sequential", new=len(layers) - 1)
        name_layers(layers)
        shape = self.layers[-1].output_shape if self.layers else ()
        assert shape is not None  # every layer of the model is built
        self._build_layer(len(layers) - 1, layer, shape)
        kept = (self.class_names, self.input_scale) if self.layers else (None, 1.0)
        self._setup(as_graph(layers), self.name, self.seed)
        self.layers = layers
        self.class_names, self.input_scale = kept

    def __getattr__(self, name: str) -> Any:
        # Only reached for an attribute not set: what an empty Sequential() lacks until its Input is added.
        if not self.__dict__.get("layers") and name in {"graph", "class_names", "input_scale", "trained_loss"}:
            raise ModelStateError(
                f"This Sequential has no layers yet ({name} needs them): add its Input first, then the other "
                "layers: model.add(Input(28, 28, 1)); model.add(Dense(10)). Or Sequential([Input(...), ...])."
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @classmethod
    def of(cls, *layers: Layer | Sequence[Layer], name: str = "sequential", seed: int | None = None) -> Sequential:
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
        output_shape = layer.compute_output_shape(shape)
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(index,)))
        layer.build(shape, rng)
        layer.input_shape, layer.output_shape = shape, output_shape
        return output_shape

    def _summary_table(self) -> str:
        """KotlinDL's summary table (what `Model.summary` prints): Layer (type) | Output Shape | Param #."""
        loss = self._emitted_loss()
        return summary_table(f"{type(self).__name__} ({self.name})", self.layers, self.param_counts(), loss)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "layers": [layer.serialize() for layer in self.layers]}

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
            name=str(config.get("name", "sequential")),
            seed=config.get("seed"),
        )

    def __repr__(self) -> str:
        return f"Sequential(name={self.name!r}, layers={[layer.name for layer in self.layers]})"


def _check_layers(layers: list[Any], argument: str, new: int) -> None:
    """Sequential's rules for its layer list: Layer instances, one Input first, each once, and the layers from
    index `new` on of no model yet (those before it are this model's own, built)."""
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise InvalidTypeError(
                f"Sequential expects Layer instances. Received: layers[{i}]={layer!r} ({type(layer).__name__})"
            )
    if not isinstance(layers[0], Input):
        raise InvalidArgumentError(
            f"Sequential expects an Input layer first, e.g. Sequential.of(Input(28, 28, 1), ...) or "
            f"model.add(Input(28, 28, 1)). Received: {type(layers[0]).__name__} ({argument})"
        )
    for i, layer in enumerate(layers[1:], start=1):
        if isinstance(layer, Input):
            raise InvalidArgumentError(f"Sequential expects exactly one Input, first. Received: Input at layers[{i}]")
    if len(set(map(id, layers))) != len(layers):
        raise InvalidArgumentError("Sequential expects each layer instance once. Received: a repeated layer")
    for i, layer in enumerate(layers[new:], start=new):
        if layer.built:  # its parameters, shapes and name are another model's: sharing would corrupt that one
            raise InvalidArgumentError(
                f"Sequential expects new layers; layers[{i}] ({layer.name}, {type(layer).__name__}) already "
                f"belongs to a model. Received: {layer!r}. Create a new layer (e.g. from layer.get_config())."
            )
