"""Lambda: a layer whose computation is a function of one's own, `function(builder, x)`, emitting ONNX nodes.

The function is called where a layer's `emit` would be, with the same `GraphBuilder`; autodiff differentiates its
nodes as any layer's. A saved model keeps its nodes (model.onnx) and the function's name, resolved on load among
the functions registered with `Lambda.register`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import numpy as np
from onnx import TensorProto

from onnxtrain._registry import Registered
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ShapeError,
    UnknownIdentifierError,
    UnsupportedError,
)
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._layer import Layer, Shape, SymbolicTensor, describe, format_shape
from onnxtrain.layers._layer_construction import CONSTRUCTING

LambdaFunction = Callable[..., str]
"""`function(builder, x, **arguments) -> str`: `x` a value name, or a list of them; returns the output's name."""

_FUNCTIONS = Registered(
    "Lambda function",
    "onnxtrain.layers.Lambda.register",
    inspect.isfunction,
    "a function fn(builder, x) defined with def",
    set,
)
_REBUILD = (
    "Define the function with def and register it with @onnxtrain.layers.Lambda.register, in code that runs before "
    "load_model, or pass it to that load: load_model(path, custom_objects={'name': function}). Or make the model "
    "in code again and take the weights from the save's model.onnx, which holds the function's nodes and runs and "
    "trains as it is: model.set_weights(onnxtrain.from_onnx(path).get_weights())."
)


class Lambda(Layer):
    """A layer computed by `function(builder, x)`, which emits ONNX nodes through the builder and returns the name
    of its output (Keras' `Lambda(lambda t: ops.abs(t[0] - t[1]))` is `Lambda(lambda g, t: g.node("Abs",
    [g.node("Sub", t)]))`). Called on a list of tensors (`Lambda(f)([a, b])`, or `Lambda(f)(a, b)`), `x` is the
    list of their names. Inputs are channels last, as Keras', integer ones cast to float32; the output must be
    float32 and keep the batch axis first. `builder.training` says which graph is emitted.

    The output shape is inferred on the call, by emitting the function once into a scratch graph and running ONNX
    shape inference (which also reports a wrong return value on the user's own line); give `output_shape` (per
    example, without the batch axis) where inference cannot tell a dimension. A Lambda has no weights (emit
    constants with `builder.constant`; write a layer for weights).

    Saving: `save` keeps the nodes (model.onnx, and the export, hold them as any layer's) and the function's name,
    not its code, which could not be loaded safely. `load_model` finds the function among those registered with
    `@Lambda.register` (by `__name__`) or given as `custom_objects`, and otherwise refuses, naming the layer and the
    function. A `lambda` has no name to register: `save` refuses a model holding one (`check_savable`), before
    writing anything; define the function with def to save and load the model.

    Args:
        function: `function(builder, x, **arguments) -> str`, or the name of a registered function.
        output_shape: the output's per-example shape, or None to infer it.
        arguments: keyword arguments for `function` (numbers, strings, lists: a save keeps them), as Keras'.

    Example:
        >>> @Lambda.register
        ... def l1_distance(g, t):
        ...     return g.node("Abs", [g.node("Sub", t)])
        >>> a, b = Input(8), Input(8)
        >>> distance = Lambda(l1_distance)([a, b])  # shape (8,)
    """

    def __init__(
        self,
        function: LambdaFunction | str,
        output_shape: Sequence[int] | None = None,
        arguments: Mapping[str, Any] | None = None,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.arguments = _checked_arguments(arguments)
        self.function = _resolved(function, name)
        self._check_signature(self.arguments)
        self._given_output_shape = _checked_output_shape(output_shape)

    @staticmethod
    def register(function: LambdaFunction) -> LambdaFunction:
        """Decorator: record `function` under its `__name__`, so that `load_model` (and `from_config`) rebuild a
        Lambda that a save names it in. Registering a name again replaces it.

        Raises:
            InvalidTypeError: not a function defined with def (a lambda has no name to save).
        """
        return _FUNCTIONS.register(function)

    def check_savable(self) -> None:
        """Refuse, before `save` writes anything, a Lambda whose function a load could not find by name: a lambda
        (a save names it "<lambda>", which names no function) or a callable that is not a function (a functools
        partial, an object with `__call__`): a model saved with it could never be loaded (`_resolved`).

        Raises:
            UnsupportedError: such a function, naming the layer and the fixes.
        """
        if inspect.isfunction(self.function) and self.function.__name__ != "<lambda>":
            return
        what = "a lambda" if inspect.isfunction(self.function) else f"{_name(self.function)}, which is no function"
        raise UnsupportedError(
            f"save() refused: {describe(self)} computes with {what}. A save keeps a Lambda's nodes and its function's "
            "name, not its code, so load_model could not rebuild this one. Define the function with def, register "
            "it with @onnxtrain.layers.Lambda.register, and give it to the layer (it keeps the model's weights): "
            f"model.get_layer({self.name!r}).function = my_function; then save, and load where the function is "
            "registered or passed: load_model(path, custom_objects={'my_function': my_function}). To serve the "
            "model as it is, export() writes the inference model, which holds the nodes."
        )

    def __setattr__(self, attribute: str, value: Any) -> None:
        if attribute == "output_shape":  # the base's computed shape, not the argument (`_given_output_shape`)
            object.__setattr__(self, attribute, value)
        elif attribute == "arguments" and self.__dict__.get(CONSTRUCTING) == 0:
            # Checked here: the base's check rebuilds the layer from its config, which names the function only.
            if self.built:
                raise InvalidArgumentError(
                    f"{describe(self)} is built (its shapes are fixed by its first call or its model), so its "
                    f"arguments are too. Make a new Lambda. Received: arguments={value!r:.80}"
                )
            arguments = _checked_arguments(value)
            self._check_signature(arguments)
            object.__setattr__(self, attribute, arguments)
        else:
            super().__setattr__(attribute, value)

    def __call__(
        self,
        inputs: SymbolicTensor | Sequence[SymbolicTensor],
        *more_inputs: SymbolicTensor,
        training: bool | None = None,
    ) -> SymbolicTensor:
        """Call on a tensor, or on a list of tensors (or them as separate arguments): the function reads a list."""
        several = bool(more_inputs) or isinstance(inputs, list | tuple)
        if several and not more_inputs and len(inputs) == 1:  # type: ignore[arg-type]
            raise InvalidArgumentError(
                f"{describe(self)} is called on a list of one tensor; call it on the tensor itself (its function "
                "then reads one value name), or on a list of two or more."
            )
        if self.symbolic_calls and several != self.multi_input:
            raise InvalidArgumentError(
                f"{describe(self)} was first called on {'a list of tensors' if self.multi_input else 'one tensor'}; "
                "a shared layer takes the same inputs at every call. Use another Lambda."
            )
        self.multi_input = several
        return super().__call__(inputs, *more_inputs, training=training)

    def compute_output_shape(self, input_shape: Shape | list[Shape]) -> Shape:
        # A list of shapes: a call on several tensors, also for a Lambda not called yet (one rebuilt from its config
        # to check an assigned function: `_assignments.py`), which cannot know it from its call.
        several = self.multi_input or isinstance(input_shape, list)
        shapes = cast(list[Shape], list(input_shape)) if several else [cast(Shape, input_shape)]
        builder = GraphBuilder()
        xs = [builder.add_input(f"input_{i}", np.float32, (None, *shape)) for i, shape in enumerate(shapes)]
        with builder.scope(self.name or "lambda"):
            y = self._emitted(builder, xs if several else xs[0])
        if builder.initializers:
            raise InvalidArgumentError(
                f"{describe(self)}: its function adds initializers {[t.name for t in builder.initializers]}; a "
                "Lambda has no weights. Emit constants with builder.constant(value), or write a layer (docs/layers.md, "
                '"Write your own layer") for weights.'
            )
        return self._output_shape(builder, y)

    def emit(self, builder: GraphBuilder, x: str | list[str]) -> str:
        return self._emitted(builder, x)

    def get_config(self) -> dict[str, Any]:
        given = self._given_output_shape
        return {
            "function": getattr(self.function, "__name__", type(self.function).__name__),
            "output_shape": list(given) if given is not None else None,
            "arguments": dict(self.arguments),
            **super().get_config(),
        }

    # --- the function's emission --------------------------------------------------------------------------
    def _check_signature(self, arguments: dict[str, Any]) -> None:
        try:
            inspect.signature(self.function).bind(GraphBuilder, "x", **arguments)
        except TypeError as e:
            raise InvalidTypeError(
                f"{describe(self)} calls its function as function(builder, x, **arguments), x a value name (a list "
                "of them for several inputs), and it returns the output's name; Keras' function(x) of one argument "
                f"is written lambda g, x: ... here. Received: {_name(self.function)}, which cannot take that ({e})"
            ) from e
        except ValueError:  # a builtin without a readable signature: its call will tell
            pass

    def _emitted(self, builder: GraphBuilder, x: str | list[str]) -> str:
        y = self.function(builder, list(x) if isinstance(x, list) else x, **self.arguments)
        if isinstance(y, str) and builder.has_value(y):
            return y
        if y is None:
            got = "None (it emitted nothing, or did not return what it emitted)"
        elif isinstance(y, list | tuple):
            got = f"a {type(y).__name__} of {len(y)}; a Lambda has one output"
        elif isinstance(y, str):
            got = f"{y!r}, which no node computes"
        else:
            got = f"{y!r:.60} ({type(y).__name__})"
        raise InvalidTypeError(
            f"{describe(self)}: its function must return the name (a str) of the value it computes, e.g. "
            f"lambda g, x: g.node('Abs', [x]), or x itself. Received: {got}"
        )

    def _output_shape(self, builder: GraphBuilder, y: str) -> Shape:
        given = self._given_output_shape
        found = builder.value_types().get(y)
        dtype = found.tensor_type.elem_type if found is not None else 0
        if dtype and dtype != TensorProto.FLOAT:
            raise InvalidTypeError(
                f"{describe(self)}: its function returns a value of type {TensorProto.DataType.Name(dtype).lower()}; "
                "layers pass float32 values on. Cast it: g.node('Cast', [y], to=1)."
            )
        dims = None
        if found is not None and found.tensor_type.HasField("shape"):
            dims = [
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in found.tensor_type.shape.dim
            ]
        shown = "no shape" if dims is None else f"shape {_shown(dims, builder.batch_dim)}"
        if dims is not None and (not dims or isinstance(dims[0], int)):
            raise ShapeError(
                f"{describe(self)}: its function returns a value of {shown}, which does not keep the batch axis "
                "first: a layer computes per example (reduce over axes 1 and up)."
            )
        known = None if dims is None else [d if isinstance(d, int) else None for d in dims[1:]]
        if given is None:
            if known is None or None in known:
                raise ShapeError(
                    f"{describe(self)}: ONNX shape inference gives its output {shown}; give it, per example and "
                    "without the batch axis, as Lambda(..., output_shape=(...))."
                )
            return tuple(int(d) for d in known)  # type: ignore[arg-type]
        if known is not None and (
            len(known) != len(given) or any(k is not None and k != g for k, g in zip(known, given, strict=True))
        ):
            raise ShapeError(
                f"{describe(self)}: its function returns a value of {shown}, and output_shape says "
                f"{format_shape(given)}. Fix output_shape, or leave it out to infer it."
            )
        return given


def _resolved(function: object, name: str | None) -> LambdaFunction:
    """`function`, or the registered function it names (as a saved config gives it)."""
    if callable(function):
        return cast(LambdaFunction, function)
    if not isinstance(function, str):
        raise InvalidTypeError(
            f"Lambda(function=...) expects a function(builder, x) or the name of one registered with "
            f"@onnxtrain.layers.Lambda.register. Received: {function!r:.60} ({type(function).__name__})"
        )
    found = _FUNCTIONS.get(function)
    if found is not None:
        return cast(LambdaFunction, found)
    layer = f"Lambda layer {name!r}" if name else "A Lambda layer"
    what = (
        "a lambda, which a save cannot name"
        if function == "<lambda>"
        else f"function {function!r}, which is not registered (registered: {_FUNCTIONS.names or 'none'})"
    )
    raise UnknownIdentifierError(
        f"{layer} computes with {what}: a saved model keeps the Lambda's nodes and its function's name, not its "
        f"code. {_REBUILD}"
    )


def _checked_arguments(arguments: object) -> dict[str, Any]:
    if arguments is None:
        return {}
    if not isinstance(arguments, Mapping) or not all(isinstance(key, str) for key in arguments):
        raise InvalidTypeError(
            f"Lambda(arguments=...) expects a dict of keyword arguments. Received: {arguments!r:.80}"
        )
    try:
        json.dumps(dict(arguments))
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(
            "Lambda(arguments=...) expects values a save can keep (numbers, strings, bools, None, lists and dicts "
            f"of them); pass arrays as lists. Received: {arguments!r:.80} ({e})"
        ) from e
    return dict(arguments)


def _checked_output_shape(output_shape: object) -> Shape | None:
    if output_shape is None:
        return None
    valid = isinstance(output_shape, list | tuple) and all(
        isinstance(d, int | np.integer) and not isinstance(d, bool) and d > 0 for d in output_shape
    )
    if not valid:
        raise InvalidArgumentError(
            "Lambda(output_shape=...) expects a tuple of positive ints, the output's shape per example without the "
            f"batch axis, or None to infer it. Received: output_shape={output_shape!r:.80}"
        )
    return tuple(int(d) for d in cast(Sequence[int], output_shape))


def _name(function: object) -> str:
    return getattr(function, "__qualname__", None) or repr(function)


def _shown(dims: list[Any], batch: str) -> str:
    """`[None, 3, ?]`: None for the batch axis, ? for a dimension inference does not know."""
    return "[" + ", ".join("None" if d == batch else str(d) if isinstance(d, int) else "?" for d in dims) + "]"
