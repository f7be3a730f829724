"""What a Model is checked for: `Model(inputs, outputs)`'s arguments (`check_model_arguments`: Keras' model
subclassing, a model given no inputs or outputs), Keras' dict of outputs (`named_outputs`), what its graphs could not
emit when it is made (`check_model_base`), and at compile the names of the outputs' probabilities
(`check_probability_outputs`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from onnxtrain import emit
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnsupportedError
from onnxtrain.functional import Functional
from onnxtrain.layers import BatchNormalization
from onnxtrain.layers._layer import SymbolicTensor
from onnxtrain.layers._layer_checks import NESTED_MODEL_DOCS
from onnxtrain.losses import Loss, SoftmaxCrossEntropyWithLogits


def check_model_arguments(model_class: type, inputs: object, outputs: object) -> None:
    """Refuse what `Model(inputs, outputs)` cannot be made of, before anything else reads its arguments: Keras'
    model subclassing (a subclass that defines `call()`, which onnxtrain never runs: a model is a graph of layer
    calls), and a model given no inputs or no outputs.

    Raises:
        UnsupportedError: a Model subclass that defines call().
        InvalidTypeError: inputs or outputs not given.
    """
    calls = next((c for c in model_class.__mro__ if "call" in c.__dict__), None)
    if calls is not None:
        raise UnsupportedError(
            f"{model_class.__name__} subclasses Model and defines call(), Keras' model subclassing, which onnxtrain "
            "does not support: a model is the graph of layer calls the Functional API records, and call() would "
            "never run. Build it with the Functional API: call the layers on an Input and make Model(inputs, "
            "outputs) of them (x = Input(4); model = Model(x, Dense(1)(Dense(4)(x)))); for a block used several "
            f"times, make it a nested Model and call it as a layer (docs/layers.md, {NESTED_MODEL_DOCS})."
        )
    missing = [name for name, value in (("inputs", inputs), ("outputs", outputs)) if value is None]
    if missing:
        raise InvalidTypeError(
            f"{model_class.__name__}() expects inputs and outputs: Model(inputs, outputs), with inputs the Input "
            "tensor(s) and outputs the tensor(s) the layers called on them return (x = Input(4); model = "
            f"Model(x, Dense(1)(x))). Received: no {' and no '.join(missing)}"
        )


def check_model_base(graph: Functional) -> None:
    """Refuse at construction what the model's graphs cannot emit: see `Model`'s Raises."""
    if len(graph.outputs) > 1:
        names = emit.output_names(graph)
        clashing = sorted(set(names) & (emit.RESERVED_NAMES | set(emit.input_names(graph))))
        if clashing:
            raise InvalidArgumentError(
                f"A model of several outputs names its exported outputs after their layers (or their keys, given a "
                f"dict of outputs), and {clashing} is the name of a graph input or of an output onnxtrain reserves. "
                "Name the layer, or key the output, otherwise."
            )
    if len(graph.inputs) > 1:
        reserved = sorted({str(x.name) for x in graph.inputs} & emit.RESERVED_NAMES)
        if reserved:
            raise InvalidArgumentError(
                f"A model of several inputs names its graph inputs after its Input layers, and {reserved} is a name "
                f"onnxtrain's graphs use already. Name the Input otherwise, e.g. Input(..., name='x_{reserved[0]}')."
            )
    calls = Counter(id(node.layer) for node in graph._nodes)
    shared = [layer.name for layer in graph.layers if isinstance(layer, BatchNormalization) and calls[id(layer)] > 1]
    if shared:
        raise UnsupportedError(
            f"BatchNormalization layer(s) {shared} are called more than once: a shared BatchNormalization would "
            "update its moving statistics twice in one training step, which onnxtrain does not support yet. Use "
            "one BatchNormalization per call."
        )


def check_probability_outputs(graph: Functional, loss: Loss) -> None:
    """Refuse at compile a model of several outputs whose export could not name an output's probabilities: each
    output trained with softmax cross-entropy gets a second output, `<output>_probabilities`
    (`emit.inference_graph`, which predict and export run), and no other output or Input may have that name.
    """
    if len(graph.outputs) < 2:
        return
    taken = {name: f"output layer {name!r}" for name in emit.output_names(graph)}
    if len(graph.inputs) > 1:
        taken.update({name: f"Input layer {name!r}" for name in emit.input_names(graph)})
    for name, own in zip(emit.output_names(graph), emit.output_losses(graph, loss), strict=True):
        companion = f"{name}_{emit.PROBABILITIES_NAME}"
        if isinstance(own, SoftmaxCrossEntropyWithLogits) and companion in taken:
            raise InvalidArgumentError(
                f"Output {name!r} is trained with softmax cross-entropy, so the exported model (which predict also "
                f"runs) gives its class probabilities as a second output named {companion!r}; {taken[companion]} "
                f"has that name already. Rename that layer, e.g. name={name + '_probs'!r}, or the output layer "
                f"{name!r}."
            )


def named_outputs(outputs: Mapping[str, SymbolicTensor]) -> dict[str, SymbolicTensor]:
    """Keras' dict of outputs, its keys checked: they name the outputs (`Functional.output_names`), as Keras keys
    losses, targets and logs by them. An unnamed layer takes its first key as its name too (its layer in the
    summary and config); a named one keeps its name, and one tensor may be given under several keys."""
    for key, tensor in outputs.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgumentError(f"Model(outputs={{...}}) expects non-empty string keys. Received: {key!r}")
        layer = getattr(tensor, "layer", None)
        if layer is not None and layer.name is None:  # Functional names what is not a tensor
            layer.name = key
    return dict(outputs)
