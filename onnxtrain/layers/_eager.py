"""Calling a layer or a model on numpy arrays (Keras' eager call: `data_augmentation(images, training=True)`): the
call's graph is built alone, run once with ONNX Runtime on the CPU, and its output returned as a numpy array.

`training=True` runs the training graph (random layers draw, BatchNormalization uses the batch's statistics and
moves its moving statistics towards them, as Keras' call does), anything else the inference graph, as Keras' default
for a call outside `fit`. The state a training call updates (`GraphBuilder.update_state`) is written back into the
layer as `set_weights` writes it, so a compiled model's engine takes it too. A training graph's step counter
(what Dropout and the augmentation layers draw from, with their seed and name) is the number of the layer's earlier
eager training calls: the first draws as training step 0, the next as step 1, ..., so repeated calls differ, as Keras'
do, and a fresh layer draws the same again.

An unbuilt layer takes its shapes from the arrays and is built (its weights drawn at random, as Keras builds a layer
on its first call); it stays built where that made weights, and a weightless one (an augmentation layer) is left as
it was, so a model can still take it at any shape. A built layer called on arrays of other shapes computes with its
weights where they fit them, as Keras' does (an LSTM on longer sequences: `_eager_shapes.py`); a model takes the
shapes of its Inputs. The graph's opset is the one `compile` would choose: an imported ONNX graph's, where newer. A
layer of a compiled model computes with its engine's current weights. This module reads a layer through
`EagerLayer`, so it never imports the Layer class (which imports it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any, Protocol

import numpy as np

from onnxtrain._onnx_versions import min_ir_version
from onnxtrain._registry import snake_case
from onnxtrain._runtime import DISABLED_OPTIMIZERS
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.graph import DEFAULT_IR_VERSION, DEFAULT_OPSET, GraphBuilder
from onnxtrain.layers._eager_shapes import check_weights_fit, differs, shapes_of_call
from onnxtrain.layers._layer_checks import CheckedLayer, describe, take_shapes
from onnxtrain.layers._shapes import Shape

STEP = "step"
_CALLS = "_eager_training_calls"  # in a layer's __dict__: its eager training calls so far (the next call's step)


class StateOwner(Protocol):
    """Where an eager training call writes the layer state it updated: a `Layer`, or a `Functional` (a model's
    graph), through their weights API (`layers/_layer_weights.py`)."""

    def _own_weights(self) -> Mapping[str, np.ndarray]: ...

    def _write_weights(self, arrays: dict[str, np.ndarray]) -> None: ...

    def _weights_changed(self) -> None: ...


class EagerLayer(CheckedLayer, StateOwner, Protocol):
    """What an eager call reads of a layer (a `Layer`, or a `Functional`: a model's graph)."""

    reads_integers: bool
    params: Mapping[str, np.ndarray]

    @property
    def built(self) -> bool: ...

    def build(self, input_shape: Any, rng: np.random.Generator) -> None: ...

    def _read_engine(self) -> None: ...

    def eager_outputs(self, builder: GraphBuilder, xs: list[str]) -> list[tuple[str, Shape]]: ...


def is_eager_input(inputs: object) -> bool:
    """Whether a call's `inputs` are data (a numpy array, or a list of them) rather than symbolic tensors."""
    if isinstance(inputs, list | tuple):
        return bool(inputs) and all(isinstance(x, np.ndarray) for x in inputs)
    return isinstance(inputs, np.ndarray)


class _EagerBuilder(GraphBuilder):
    """A builder whose training graph reads its step counter from the `step` input (an int64 scalar), and which
    remembers the array of each parameter it adds, to tell whose state a training call updated."""

    def __init__(self, training: bool, opset: int, ir_version: int):
        super().__init__(opset=opset, ir_version=ir_version, training=training)
        self.parameters: dict[str, np.ndarray] = {}  # graph name -> the layer's array (`Layer.emit_params`)

    def add_initializer(self, name: str, array: np.ndarray) -> str:
        qualified = super().add_initializer(name, array)
        self.parameters[qualified] = array
        return qualified

    def training_step(self) -> str:
        if not self.training:
            return super().training_step()
        if STEP not in self._names:
            self.add_input(STEP, np.int64, ())
        return STEP


def call_eagerly(
    layer: EagerLayer, inputs: np.ndarray | list[np.ndarray], training: object
) -> np.ndarray | list[np.ndarray]:
    """What `layer(arrays, training=...)` returns: its output on them (a list for a model of several outputs),
    computed at once (see the module docstring).

    Raises:
        InvalidTypeError: `training` is not a bool or None; another number of arrays than the layer takes.
        ShapeError: arrays of other per-example shapes than a built layer's that its weights do not fit, or of
            other shapes than a model's inputs (`_eager_shapes.check_weights_fit`).
    """
    if training is not None and not isinstance(training, bool | np.bool_):
        raise InvalidTypeError(f"{describe(layer)}: training expects True, False or None. Received: {training!r}")
    arrays = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
    if (layer.multi_input and not isinstance(inputs, list | tuple)) or (not layer.multi_input and len(arrays) != 1):
        takes = "a list of arrays, one per input" if layer.multi_input else "one array"
        raise InvalidTypeError(f"{describe(layer)} takes {takes}. Received: {len(arrays)} arrays")
    arrays = eager_arrays(describe(layer), arrays, [layer.reads_integers] * len(arrays))
    shapes = [tuple(array.shape[1:]) for array in arrays]
    built_here = not layer.built
    other_shapes = not built_here and differs(layer, shapes)
    if built_here:
        take_shapes(layer, shapes)
        layer.build(shapes if layer.multi_input else shapes[0], np.random.default_rng())
    elif other_shapes:  # computed where its weights fit, as Keras computes it (`_eager_shapes.py`)
        check_weights_fit(layer, shapes)
    layer._read_engine()  # a compiled model's engine holds the current weights
    name = layer.name
    if name is None:  # Dropout and the augmentation layers key their draws by the layer's name
        layer.__dict__["name"] = snake_case(type(layer).__name__)
    try:
        with shapes_of_call(layer, shapes) if other_shapes else nullcontext():
            outputs = run_eagerly(layer, arrays, training=bool(training), state_owner=layer)
    finally:
        layer.__dict__["name"] = name
        if built_here and not layer.params:
            layer.input_shape = layer.output_shape = layer.input_shapes = None
    return outputs[0] if len(outputs) == 1 else outputs


def run_eagerly(
    layer: EagerLayer, arrays: Sequence[np.ndarray], training: bool, state_owner: StateOwner | None = None
) -> list[np.ndarray]:
    """The outputs of `layer`'s call on `arrays` (one per input, the batch first, each of the dtype its graph input
    takes), from its training graph when `training`, else its inference graph.

    Args:
        state_owner: what holds the weights the graph reads (`layer`, or the model whose graph `layer` emits),
            which takes the new values of the state the training graph updates (BatchNormalization's moving
            statistics), as Keras' training call assigns them; None: a call whose updates are not kept.
    """
    import onnxruntime as ort  # the inference API only; imported here to keep importing onnxtrain light

    builder = _EagerBuilder(training, *_versions(layer))
    names = [builder.add_input(f"input_{i}", x.dtype, (None, *x.shape[1:])) for i, x in enumerate(arrays)]
    outputs = layer.eager_outputs(builder, names)
    for i, (value, shape) in enumerate(outputs):
        builder.add_output(value, f"output_{i}", np.float32, (None, *shape))
    updates = builder.state_updates if state_owner is not None else {}
    for i, (parameter, value) in enumerate(updates.items()):
        builder.add_output(value, f"state_{i}", np.float32, builder.parameters[parameter].shape)
    model = builder.build("onnxtrain_eager_call")
    feeds: dict[str, Any] = dict(zip(names, arrays, strict=True))
    if STEP in {v.name for v in model.graph.input}:
        feeds[STEP] = np.array(layer.__dict__.get(_CALLS, 0), np.int64)
    if training:
        layer.__dict__[_CALLS] = layer.__dict__.get(_CALLS, 0) + 1
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"], disabled_optimizers=DISABLED_OPTIMIZERS
    )
    results = [np.asarray(y) for y in session.run(None, feeds)]
    if state_owner is not None and updates:
        updated = [builder.parameters[name] for name in updates]
        _write_state(state_owner, list(zip(updated, results[len(outputs) :], strict=True)))
    return results[: len(outputs)]


def _versions(layer: object) -> tuple[int, int]:
    """The opset and IR version of an eager call's graph: those `compile` would choose for the layer (a model's
    graph: for its layers), the default raised to the opset of an imported ONNX graph among them (`from_onnx`'s,
    which is never downgraded: `OnnxLayer.graph_at`), as `predict` runs it."""
    held = layer.__dict__.get("layers")  # a model's graph's layers (an emitted copy of it shares its __dict__)
    pending, opset = [layer, *(held if isinstance(held, list) else ())], DEFAULT_OPSET
    while pending:  # the layers and the layers of nested models; an OnnxLayer tells its graph's opset
        inner = pending.pop()
        opset = max(opset, getattr(inner, "imported_opset", DEFAULT_OPSET))
        pending.extend(getattr(inner, "layers", ()) if inner is not layer else ())
    return opset, max(DEFAULT_IR_VERSION, min_ir_version(opset))


def _write_state(owner: StateOwner, new: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
    """Give `owner` the new value of each updated parameter (the very array the graph was built from, its new
    value) as `set_weights` does: into its layers, then into the compiled engines that train them."""
    names = {id(array): name for name, array in owner._own_weights().items()}
    owner._write_weights({names[id(array)]: np.array(value, np.float32, order="C") for array, value in new})
    owner._weights_changed()


def eager_arrays(owner: str, arrays: Sequence[np.ndarray], integer_inputs: Sequence[bool]) -> list[np.ndarray]:
    """`arrays` as the graph inputs take them: int64 where `integer_inputs` says the input reads integers (token ids)
    and the array holds integers, else float32.

    Raises:
        InvalidArgumentError: an array without a batch axis, or of a dtype that is not a number.
    """
    result = []
    for i, (array, integers) in enumerate(zip(arrays, integer_inputs, strict=True)):
        if array.ndim < 2 or array.dtype.kind not in "fiub":
            what = f"shape {array.shape}" if array.ndim < 2 else f"dtype {array.dtype}"
            raise InvalidArgumentError(
                f"{owner} called on data expects numpy arrays of numbers with a batch axis first, (batch, *the "
                f"input's shape), e.g. images[:4]. Received: input {i} of {what}"
            )
        result.append(array.astype(np.int64 if integers and array.dtype.kind in "iub" else np.float32))
    return result
