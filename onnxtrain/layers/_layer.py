"""The Layer base class: the lifecycle every layer follows, and the registry used to rebuild layers from config.

Calling a layer on a `SymbolicTensor` (`Dense(10)(Flatten()(x))`, the Functional API) computes nothing. Each call
checks its input shapes, fixes the layer's shapes on the layer's first call (`compute_output_shape`), and returns a
new `SymbolicTensor` that records the layer, which of its calls made it and the tensors that call read;
`onnxtrain.functional.Functional` walks those records back from a model's outputs. Weights are drawn later, when a
model holding the layer is made (from the model's seed, as in `Sequential`), and layer names are given there too.
A layer that takes several inputs (the merges: `Add()([a, b])`) sets `multi_input = True`: it is called on a list,
or on the tensors as separate arguments (KotlinDL's `Add()(a, b)`), and its `compute_output_shape`, `build` and
`emit` take lists (of shapes, of values). Called on numpy arrays instead, a layer (or a model) computes at once and
returns an array (Keras' eager call, `_eager.py`). The checks of a call, and of a layer class written in Keras' form
(a `call` method), are `_layer_checks.py`'s; Keras' layer weights API (`get_weights`, ...) is `_layer_weights.py`'s.
What a layer class does with masks is `_layer_masks.py`'s; Keras' `layer.output` and `layer.input`,
`_layer_tensors.py`'s; the count of running constructors (`Layer.__setattr__`), `_layer_construction.py`'s;
the tensors themselves, `_symbolic_tensor.py`'s; the hint for KotlinDL's names of attributes, `_attribute_hints.py`'s.
"""

from __future__ import annotations

import weakref
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from onnxtrain import initializers
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    UnknownIdentifierError,
    UnsupportedError,
)
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._assignments import check_name, check_trainable, checked_assignment, is_setting
from onnxtrain.layers._attribute_hints import missing_layer_attribute
from onnxtrain.layers._eager import call_eagerly, is_eager_input
from onnxtrain.layers._input_arguments import check_declared_input
from onnxtrain.layers._keras_arguments import taking_keras_arguments
from onnxtrain.layers._keras_build import taking_keras_build
from onnxtrain.layers._keras_input import KERAS_CLASS_NAMES
from onnxtrain.layers._layer_checks import (
    CUSTOM_LAYER_DOCS,
    check_emits_onnx,
    check_same_shapes,
    check_training_argument,
    describe,
    positional_inputs,
    received,
    take_shapes,
    unknown_layer_class,
)
from onnxtrain.layers._layer_construction import ASSIGNED, CONSTRUCTING, constructing
from onnxtrain.layers._layer_masks import LayerMasks
from onnxtrain.layers._layer_masks import Mask as Mask  # imported from here by the layers
from onnxtrain.layers._layer_tensors import layer_input, layer_output
from onnxtrain.layers._layer_weights import LayerWeights
from onnxtrain.layers._layout import channels_last, emit_layer, emit_multi_input_layer
from onnxtrain.layers._shapes import Shape
from onnxtrain.layers._shapes import format_shape as format_shape  # imported from here by the layers
from onnxtrain.layers._symbolic_tensor import SymbolicTensorBase

if TYPE_CHECKING:
    from collections.abc import Sequence


class SymbolicTensor(SymbolicTensorBase):
    """A value in a graph of layers and the layer call that computes it (`SymbolicTensorBase`'s Attributes), its
    `layer` a Layer. `Input(28, 28, 1)` is one itself (its own layer), so layers can be called on it directly."""

    layer: Layer
    inputs: tuple[SymbolicTensor, ...]


class Layer(LayerWeights, LayerMasks):
    """A layer validates its arguments in `__init__`, makes named numpy parameters in `build`, and emits ONNX.

    Subclasses implement `compute_output_shape` and `emit`, and `build` when they own parameters. Every subclass
    is registered, so `Layer.from_config(layer.serialize())` rebuilds any of them: onnxtrain's own layers under
    their class name ("Dense"), custom layers under "module.ClassName" (so two custom `Scale` classes in different
    modules never collide), as long as their module has been imported.

    Attributes:
        name: unique within a model; assigned by the model (`dense_1`) when not given, and None until then. (Keras
            names a layer when it is made, "dense", "dense_1", ..., numbered per session; here the model names it,
            so that its weights' names, by which `load_weights` and checkpoints match them, are the same each time
            the model is built.)
        trainable: False freezes every parameter of the layer.
        params: local parameter name ("kernel") -> float32 array, filled by `build`.
        non_trainable: the local names of parameters no optimizer updates even when the layer trains (Keras'
            non-trainable weights: BatchNormalization's moving statistics, which the layer itself updates in the
            training graph with `builder.update_state`).
        multi_input: True for a layer called on a list of tensors (`Add()([a, b])`, see the module docstring):
            its `compute_output_shape`, `build` and `emit` then take lists, and `input_shapes` holds its input
            shapes (`input_shape` stays None).
        symbolic_calls: the tensors this layer's calls returned, by call index (the Functional API).
        model_name: the name of the model the layer belongs to (set when a `Model` or `Sequential` is made of it),
            or None: a layer belongs to one model, whose engine trains its weights (`_layer_claims.claim_layers`).

    A constructor argument assigned after construction (`layer.trainable = False`, `dropout.rate = 0.3`) is checked
    as the constructor checks it, and refused where it would change a built layer's shapes or rename a layer of a
    model (`_assignments.py`): a model never trains or saves a value its config cannot be rebuilt from.

    Keras' arguments a layer has no parameter for (`data_format`, `kernel_constraint` & co.) are checked and
    dropped before its `__init__` runs (`_keras_arguments.py`): a layer class that Keras gives `data_format` sets
    `keras_data_format = True`. Keras' input declarations (`Dense(8, input_shape=(4,))`, `input_dim=4`) are kept
    beside the config (`_input_arguments.py`): a Sequential starts with that Input, and a call refuses another shape.

    Masks (Keras' masking): what a layer class does with the mask beside its input is `LayerMasks`' (`_layer_masks.py`).
    """

    registry: ClassVar[dict[str, type[Layer]]] = {}
    multi_input: bool = False
    keras_data_format: ClassVar[bool] = False
    reads_integers: ClassVar[bool] = False
    """Whether `emit` takes an integer model input (`Input(dtype="int64")`) as it is, as Embedding takes its ids;
    other layers read it cast to float32 (`Functional.emit`)."""

    @taking_keras_arguments  # for the layers without an __init__ of their own (Flatten); see __init_subclass__
    @constructing
    def __init__(self, name: str | None = None, trainable: bool = True):
        check_emits_onnx(type(self))
        check_name(type(self).__name__, name)
        check_trainable(type(self).__name__, trainable)
        self.model_name: str | None = None
        self._model: weakref.ref[Any] | None = None  # the model itself, as model_name says (see ModelBase)
        self._sharers: list[weakref.ref[Any]] = []  # the other open models made of it (`_layer_claims`)
        self.name = name
        self.trainable = trainable
        self.params: dict[str, np.ndarray] = {}
        self.non_trainable: set[str] = set()
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None
        self.input_shapes: list[Shape] | None = None
        self.symbolic_calls: list[SymbolicTensor] = []

    def __call__(
        self,
        inputs: SymbolicTensor | Sequence[SymbolicTensor],
        *more_inputs: SymbolicTensor,
        training: bool | None = None,
    ) -> SymbolicTensor:
        """Call the layer on a symbolic tensor: the Functional API. A multi-input layer takes a list of them, or
        them as separate arguments (KotlinDL's `Add()(a, b)` is `Add()([a, b])`).

        `training` is Keras' call argument: None runs the call in the graph's mode, False in inference mode in every
        graph (`check_training_argument`). Called on numpy arrays instead (the batch first), the layer computes at
        once and returns a numpy array (`_eager.py`): with `training=True` its training graph, else its inference one.

        Example:
            >>> x = Input(8)
            >>> y = Dense(3)(Add()([Dense(8)(x), x]))
        """
        given = positional_inputs(self, inputs, more_inputs)
        if is_eager_input(given):  # numpy arrays: typed for the Functional API, which is what a type checker sees
            return call_eagerly(self, given, training)  # type: ignore[arg-type,return-value]
        return _call(self, given, check_training_argument(self, training))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Layer.registry[cls.registry_key()] = cls
        if "__init__" in cls.__dict__:  # Keras' data_format and constraints, checked in one place
            cls.__init__ = taking_keras_arguments(constructing(cls.__dict__["__init__"]))  # type: ignore[method-assign]
        if "build" in cls.__dict__:  # Keras' build(input_shape) too: `_keras_build.py`
            cls.build = taking_keras_build(cls.__dict__["build"])  # type: ignore[method-assign]

    def __setattr__(self, attribute: str, value: Any) -> None:
        if self.__dict__.get(CONSTRUCTING, 1) == 0 and not attribute.startswith("_"):  # see constructing
            value = checked_assignment(self, attribute, value)
            if is_setting(type(self), attribute):
                self.__dict__[ASSIGNED] = [*self.settings_assigned(), attribute]
        object.__setattr__(self, attribute, value)

    if not TYPE_CHECKING:  # mypy would take a layer to have every attribute

        def __getattr__(self, attribute: str) -> Any:
            # Only reached for an attribute neither set nor defined: KotlinDL's name of one (`layer.isTrainable`,
            # `dense.outputSize`, `layer.getWeights`) is refused naming Python's (`missing_layer_attribute`).
            raise AttributeError(missing_layer_attribute(self, attribute), name=attribute, obj=self)

    def freeze(self) -> None:
        """KotlinDL's `layer.freeze()`: `layer.trainable = False` (no optimizer updates its weights). A compiled
        model applies it at its next compile(); until then fit refuses to run (`ModelStateError`)."""
        self.trainable = False

    def unfreeze(self) -> None:
        """KotlinDL's `layer.unfreeze()`: `layer.trainable = True`, applied at the next compile() as `freeze`."""
        self.trainable = True

    def settings_assigned(self) -> list[str]:
        """The constructor arguments assigned since construction, in order (`layer.rate = 0.3`: ["rate"]): how a
        compiled model tells that a layer no longer computes what it compiled (`Trainer.check_layers_as_compiled`)."""
        return list(self.__dict__.get(ASSIGNED, ()))

    @classmethod
    def registry_key(cls) -> str:
        own = cls.__module__.startswith("onnxtrain.")
        return cls.__name__ if own else f"{cls.__module__}.{cls.__qualname__}"

    # --- lifecycle ----------------------------------------------------------------------------------------
    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        """Create parameters for `input_shape`; layers without parameters keep the default. Keras' form,
        `build(batch_shape)` without `rng`, draws them from a fresh seed (`_keras_build.py`)."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """The output's per-example shape for an input of per-example shape `input_shape`: every layer defines it."""
        raise UnsupportedError(
            f"{type(self).__name__} defines no compute_output_shape(input_shape): a layer says the per-example shape "
            f"of its output for an input's (docs/layers.md, {CUSTOM_LAYER_DOCS}). Received: input shape "
            f"{input_shape!r}"
        )

    def emit(self, builder: GraphBuilder, x: str) -> str:
        """Emit this layer's nodes reading value `x`; return the output value name."""
        raise UnsupportedError(
            f"{type(self).__name__} defines no emit(builder, x): a layer emits its ONNX nodes there and returns the "
            f"name of its output value (docs/layers.md, {CUSTOM_LAYER_DOCS})."
        )

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "trainable": self.trainable}

    def eager_outputs(self, builder: GraphBuilder, xs: list[str]) -> list[tuple[str, Shape]]:
        """The outputs (channels last) and their per-example shapes of this layer's call on values `xs`, one per
        input, in a graph of its own: what a call on numpy arrays runs (`_eager.py`)."""
        y = emit_multi_input_layer(builder, self, xs) if self.multi_input else emit_layer(builder, self, xs[0])
        assert self.output_shape is not None, "layers must be built"
        return [(channels_last(builder, y, len(self.output_shape) + 1), self.output_shape)]

    # --- helpers shared by all layers ---------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuild a layer from `{"class_name": ..., "config": {...}}` as written by `serialize`, or, called on a
        layer class (Keras' `Dense.from_config(dense.get_config())`), from what its `get_config` returned."""
        if cls is not Layer and "class_name" not in config:
            return cls.from_layer_config(config)
        class_name = config.get("class_name")
        class_name = KERAS_CLASS_NAMES.get(class_name, class_name) if isinstance(class_name, str) else class_name
        if class_name not in Layer.registry:
            raise UnknownIdentifierError(unknown_layer_class(class_name, Layer.registry, Layer))
        return Layer.registry[class_name].from_layer_config(config.get("config", {}))

    @classmethod
    def from_layer_config(cls, config: dict[str, Any]) -> Layer:
        """The layer that `config` (what `get_config` returned) describes; a layer whose constructor does not take
        its config (a Functional) overrides this."""
        return cls(**config)

    def serialize(self) -> dict[str, Any]:
        return {"class_name": type(self).registry_key(), "config": self.get_config()}

    def add_weight(self, local_name: str, value: np.ndarray, trainable: bool = True) -> None:
        """Add parameter `local_name`; `trainable=False` keeps it out of the optimizer's reach (see `non_trainable`).

        While `load_model` rebuilds the layer, a weight its model.onnx does not declare is refused before it is
        allocated (`initializers.check_declared`).
        """
        graph_name = f"{self.name}.{local_name}" if getattr(self, "prefix_names", True) else local_name
        initializers.check_declared(describe(self), local_name, graph_name, np.shape(value))
        # Not np.ascontiguousarray, which makes a 0-d value 1-d (an exporter's scalar initializer).
        self.params[local_name] = np.asarray(value, dtype=np.float32, order="C")
        if not trainable:
            self.non_trainable.add(local_name)

    def emit_params(self, builder: GraphBuilder) -> dict[str, str]:
        """Add this layer's parameters as initializers (inside the layer's scope); returns local -> graph name.

        A layer emitted twice into one graph (a shared layer, called twice) adds them once, at its first emission,
        and gets the same names again: the builder remembers them per `params` dict, which a shallow copy of the
        layer shares (`emit.graph_layers` emits a last Dense's copy without its activation).
        """
        return {
            local: builder.shared(
                f"parameter:{id(self.params)}:{local}", partial(builder.add_initializer, local, value)
            )
            for local, value in self.params.items()
        }

    @property
    def param_count(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    @property
    def trainable_param_count(self) -> int:
        """The parameters an optimizer updates: none for a frozen layer, never its non-trainable ones."""
        return int(sum(p.size for p in self.trainable_params().values()))

    @property
    def built(self) -> bool:
        return self.output_shape is not None

    @property
    def output(self) -> SymbolicTensor:
        """Keras' `layer.output`: the tensor of the layer's one call in a model's graph (an Input's is itself), from
        which a feature extractor is made: `Model(inputs=m.inputs, outputs=[l.output for l in m.layers[1:]])`.

        Raises:
            InvalidArgumentError: the layer was never called in a model, or is called at several places (shared).
        """
        return layer_output(self)

    @property
    def input(self) -> SymbolicTensor | list[SymbolicTensor]:
        """Keras' `layer.input`: the tensor the layer's one call read (a list of them for a multi-input layer; an
        Input's is itself).

        Raises:
            InvalidArgumentError: as `output`.
        """
        return layer_input(self)

    def qualified_params(self) -> dict[str, np.ndarray]:
        """Parameters under their graph names (`dense_1.kernel`)."""
        return {f"{self.name}.{local}": value for local, value in self.params.items()}

    def trainable_params(self) -> dict[str, np.ndarray]:
        """The parameters an optimizer updates, under their graph names: none for a frozen layer."""
        if not self.trainable:
            return {}
        return {f"{self.name}.{local}": v for local, v in self.params.items() if local not in self.non_trainable}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if v is not None)
        return f"{type(self).__name__}({args})"


Layer.build = taking_keras_build(Layer.__dict__["build"])  # type: ignore[method-assign]


def _call(layer: Layer, inputs: object, training: bool | None = None) -> SymbolicTensor:
    """What `layer(inputs)` returns: a new symbolic tensor, after the shape checks (see the module docstring).

    Raises:
        InvalidTypeError: `inputs` is not a symbolic tensor (a list of them for a multi-input layer), or `layer` is
            an Input.
        ShapeError: the layer cannot take these shapes, or was built for others by an earlier call.
    """
    if isinstance(layer, SymbolicTensor):
        raise InvalidTypeError(
            f"{describe(layer)} is a tensor already, not a layer to call. Pass it to a layer instead, e.g. "
            "x = Input(4); y = Dense(8)(x)."
        )
    check_emits_onnx(type(layer))  # a subclass whose __init__ never called Layer's
    tensors = called_tensors(layer, inputs)
    shapes = [tensor.shape for tensor in tensors]
    if not layer.multi_input:  # Keras ignores a contradicting input_shape=... here; it is a mistake
        check_declared_input(layer, shapes[0], f"the output of {describe(tensors[0].layer)}")
    if layer.built:
        check_same_shapes(layer, shapes)
    else:
        take_shapes(layer, shapes)
    assert layer.output_shape is not None
    output = SymbolicTensor(layer.output_shape, layer, len(layer.symbolic_calls), tensors, training)
    layer.symbolic_calls.append(output)
    return output


def called_tensors(layer: Layer, inputs: object) -> list[SymbolicTensor]:
    """The symbolic tensors `layer(inputs)` reads, checked: a list of them for a multi-input layer, else one."""
    kind = type(layer).__name__
    if layer.multi_input:
        if not isinstance(inputs, list | tuple):
            raise InvalidTypeError(
                f"{describe(layer)} takes a list of tensors, e.g. {kind}()([a, b]). Received: {received(inputs)}"
            )
        if not inputs:
            raise InvalidArgumentError(f"{describe(layer)} takes a list of tensors. Received: an empty list")
        items = list(inputs)
    elif isinstance(inputs, list | tuple):
        if len(inputs) != 1:
            raise InvalidTypeError(
                f"{describe(layer)} takes one tensor. Received: a list of {len(inputs)}. Merge several tensors "
                "first, e.g. Concatenate()([a, b])."
            )
        items = list(inputs)
    else:
        items = [inputs]
    for i, item in enumerate(items):
        if not isinstance(item, SymbolicTensor):
            where = f"inputs[{i}]" if layer.multi_input else "its input"
            fix = "To compute on data, call it on a numpy array (batch first)."
            if isinstance(item, Layer):  # KotlinDL's wiring, `conv2(conv1)`
                other, this = item.name or "other", layer.name or "layer"
                y = "[..., y]" if layer.multi_input else "y"
                fix = (
                    f"Call it on the tensor that the {type(item).__name__} layer's call returned, not on the layer "
                    f"(KotlinDL's layer(otherLayer) wiring): y = {other}(x), then {this}({y})"
                    + (f"; here {other}.output, the tensor of its one call." if len(item.symbolic_calls) == 1 else ".")
                )
            raise InvalidTypeError(
                f"{describe(layer)} is called on symbolic tensors: an Input(...) or another layer's output. "
                f"Received as {where}: {received(item)}. {fix}"
            )
    return items
