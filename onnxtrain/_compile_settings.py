"""compile's arguments resolved into the `Compiled` settings a Trainer opens its engine with, refusing what could
not train and warning where the last layer's activation does not fit the loss."""

from __future__ import annotations

import dataclasses
import inspect
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from onnxtrain import emit, engines, losses, multi_output, optimizers
from onnxtrain import metrics as metrics_module
from onnxtrain._artifacts_folder import check_artifacts_folder
from onnxtrain._carried_probabilities import CARRY_PROBABILITIES, CARRY_VALUES, carried_from
from onnxtrain._checks import check_threads
from onnxtrain._compiled import Compiled
from onnxtrain._logits_rule import softmax_layer_left_out
from onnxtrain._metric_base import Metric, unique_names, weighted_slots
from onnxtrain._runtime import check_runtime_loads
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.foreign._layer import compile_opset
from onnxtrain.functional import Functional
from onnxtrain.graph import check_opset_and_ir
from onnxtrain.layers import (
    Activation,
    Add,
    Average,
    Concatenate,
    Dropout,
    Maximum,
    Minimum,
    SpatialDropout2D,
    SymbolicTensor,
    TimeDistributed,
)
from onnxtrain.losses import Loss, Losses
from onnxtrain.metrics import Metrics
from onnxtrain.optimizers import Optimizer
from onnxtrain.progress import prints_here


def compile_settings(
    graph: Functional,
    optimizer: str | Optimizer | dict[str, Any],
    loss: str | Losses | Loss | dict[str, Any],
    metric: str | Metrics | Metric | None,
    metrics: Iterable[str | Metrics | Metric] | None,
    device: str,
    engine: str,
    artifacts_dir: str | Path | None,
    threads: int | None,
    opset: int | None,
    ir_version: int | None,
    loss_weights: Sequence[float] | Mapping[str, float] | None,
    weighted_metrics: Iterable[str | Metrics | Metric] | None = None,
) -> Compiled:
    """The settings `Model.compile` opens a trainer with, for the model of `graph` (arguments as compile takes
    them; see its docstring). Every argument is checked here, before any engine work.

    Raises:
        InvalidArgumentError, InvalidTypeError, UnknownIdentifierError, UnsupportedError: see the messages.
        ModelExistsError: `artifacts_dir` holds what is not onnxtrain's artifacts (`check_artifacts_folder`).
    """
    if metric is not None and metrics is not None:
        raise InvalidArgumentError("compile takes metric=... or metrics=[...], not both.")
    if len(graph.outputs) == 1:  # Keras' {output name: loss} for one output, as for several
        loss = _sole_output_entry(graph, loss, "loss")
        metrics = _sole_output_entry(graph, metrics, "metrics")
        weighted_metrics = _sole_output_entry(graph, weighted_metrics, "weighted_metrics")
    if _one_metric(metrics):  # Keras users write metrics="accuracy" too
        metrics = [metrics]  # type: ignore[list-item]
    if _one_metric(weighted_metrics):
        weighted_metrics = [weighted_metrics]  # type: ignore[list-item]
    several = len(graph.outputs) > 1
    if loss_weights is not None and not several:
        raise InvalidArgumentError(
            f"loss_weights weighs the losses of a model of several outputs; this one has one. Received: "
            f"loss_weights={loss_weights!r}"
        )
    if metrics is not None and not isinstance(metrics, Iterable):
        raise InvalidTypeError(f'metrics expects a list of metrics, e.g. ["accuracy"]. Received: metrics={metrics!r}')
    if weighted_metrics is not None and not isinstance(weighted_metrics, Iterable):
        raise InvalidTypeError(
            f'weighted_metrics expects a list of metrics, e.g. ["accuracy"]. Received: '
            f"weighted_metrics={weighted_metrics!r}"
        )
    resolved_metrics = [metric] if metric is not None else list(metrics or [])
    opset, ir_version = compile_opset(graph.layers, opset, ir_version)
    check_opset_and_ir(opset, ir_version)
    check_runtime_loads(opset, ir_version)
    if threads is not None:
        check_threads(threads)
    engines.get(engine)  # an unknown name is refused here, before any other work
    path_given = isinstance(artifacts_dir, str | os.PathLike) and bool(os.fspath(artifacts_dir))
    if artifacts_dir is not None and not path_given:
        raise InvalidArgumentError(
            'artifacts_dir expects a folder path (e.g. "artifacts") or None for a temporary folder. '
            f"Received: artifacts_dir={artifacts_dir!r}"
        )
    if several:
        outputs = _output_losses(graph, loss, loss_weights, metric if metric is not None else metrics, weighted_metrics)
        for (
            spec
        ) in outputs.outputs:  # a metric of the other kind of labels than its output's loss fails at fit otherwise
            for each in (*spec.metrics, *spec.weighted_metrics):
                metrics_module.check_loss(each, spec.loss)
        model_loss: Loss = outputs
        compiled_metrics: tuple[Metric, ...] = ()
        compiled_weighted: tuple[Metric, ...] = ()
    else:
        model_loss = losses.get(loss)
        # Keras' keys: a second metric of a taken name as "<name>_1", a weighted one as "weighted_<name>"
        compiled_metrics = unique_names([metrics_module.named(m) for m in resolved_metrics])
        weighted = tuple(metrics_module.named(m) for m in (weighted_metrics or []))
        compiled_weighted = weighted_slots(weighted, [m.name for m in compiled_metrics])
        for each in (*compiled_metrics, *compiled_weighted):
            each.size(graph.outputs[0].shape)  # refuses what cannot read this output (AUC(multi_label) of rank 3)
            metrics_module.check_loss(each, model_loss)  # a metric of the other kind of labels fails at fit otherwise
    compiled = Compiled(
        optimizer=optimizers.get(optimizer),
        loss=model_loss,
        metrics=compiled_metrics,
        device=device,
        opset=opset,
        ir_version=ir_version,
        engine=engine,
        weighted_metrics=compiled_weighted,
    )
    _check_trainable(graph, compiled.loss)
    if artifacts_dir is not None:  # both engines write there only after this: a refusal leaves it as it was
        check_artifacts_folder(artifacts_dir, "compile(artifacts_dir=...)")
    # the positions whose head the graphs emit otherwise than it is called (`emit.inference_graph`)
    left_out = {*emit.logits_substitutes(graph, compiled.loss), *emit.logits_chains(graph, compiled.loss)}
    for position, (output, own) in enumerate(zip(graph.outputs, emit.output_losses(graph, compiled.loss), strict=True)):
        assert own is not None  # compiled
        _warn_about_output_activation(output, own, position in left_out)
        if own.trains_on_logits:
            _warn_about_default_relu_logits(output, own, position in left_out)
    return compiled


def _sole_output_entry(graph: Functional, value: Any, argument: str) -> Any:
    """compile's `argument` of a model of one output given per output, as Keras 3 takes it: a dict keyed by the
    output's name (a dict of outputs' one key, else its layer's name), read as its one entry; anything else (a
    loss config, which has a "name" or "class_name" key) as it is.

    Raises:
        InvalidArgumentError: a dict keyed by another name.
    """
    if not isinstance(value, Mapping) or "name" in value or "class_name" in value:
        return value
    name = graph.output_names()[0]
    if list(value) != [name]:
        raise InvalidArgumentError(
            f"compile({argument}=...) given as a dict expects one entry keyed by this model's output name "
            f"{[name]}, or give it alone (e.g. {argument}={next(iter(value.values()), None)!r}). Received keys: "
            f"{list(value)}"
        )
    return value[name]


def _one_metric(value: Any) -> bool:
    """Whether compile's `metrics` (or `weighted_metrics`) is one metric rather than a list: a name, a member, a
    metric object or a metric function."""
    return isinstance(value, str | Metrics | Metric) or inspect.isroutine(value)


def _output_losses(
    graph: Functional, loss: Any, loss_weights: Any, metrics: Any, weighted_metrics: Any = None
) -> multi_output.OutputLosses:
    """compile's loss, loss_weights and metrics of a model of several outputs (`multi_output.resolve`); an
    OutputLosses (what `load_model` passes from a save) as it is, its outputs in the model's order
    (`OutputLosses.ordered_as`)."""
    names = graph.output_names()  # Model.output_names: unique, also for a tensor listed twice
    if isinstance(loss, Mapping) and "class_name" in loss:  # Keras' config of one loss, for every output
        loss = losses.get(loss)
    if isinstance(loss, multi_output.OutputLosses):
        loss = loss.ordered_as(names)  # a save of a dict of outputs from before they were sorted lists its order
        if loss.names != names:
            raise InvalidArgumentError(
                f"compile(loss=...) got the losses of outputs {loss.names}; this model's are {names}."
            )
        if loss_weights is None and not metrics and not weighted_metrics:
            return loss
    shapes = [y.shape for y in graph.outputs]
    resolved = multi_output.resolve(names, shapes, loss, loss_weights, metrics, weighted_metrics)
    return dataclasses.replace(resolved, log_order=_log_order(graph, loss))


def _log_order(graph: Functional, loss: Any) -> tuple[str, ...]:
    """`OutputLosses.log_order` for compile's `loss`, as Keras 3 orders a dict of outputs' logs (checked against
    /tmp/s20/W/k_order3.py, Keras 3.15): the outputs' losses in a loss dict's key order, else sorted by key (Keras
    flattens the outputs' dict sorted); () for a list of outputs."""
    if graph.output_keys is None:
        return ()
    if isinstance(loss, multi_output.OutputLosses):  # a save's: its order as compiled
        return loss.log_order
    if isinstance(loss, Mapping) and "class_name" not in loss and "name" not in loss:
        return tuple(str(key) for key in loss)
    return tuple(sorted(graph.output_keys))


def _check_trainable(graph: Functional, loss: Loss) -> None:
    """Refuse what compile could only train into nothing: softmax over one unit. A model with no trainable
    parameter compiles (a frozen feature extractor evaluates, predicts and exports; Keras compiles it too), and
    `fit` warns that its weights will not change."""
    for output, own in zip(graph.outputs, emit.output_losses(graph, loss), strict=True):
        units = output.shape[-1] if output.shape else 0
        if isinstance(own, losses.SoftmaxCrossEntropyWithLogits) and units < 2:
            raise InvalidArgumentError(
                f"Softmax cross-entropy needs at least 2 output units (one per class); over 1 unit its softmax is "
                f"always 1 and nothing trains. Received: {output.layer.name} with {units} unit. For two classes use "
                'Dense(2), or Dense(1, activation="sigmoid") with loss=Losses.BINARY_CROSSENTROPY.'
            )


# Layers whose output holds the values they read (at inference), moves or pools them (the logits rule's
# `CARRY_VALUES`), or merges them: a ReLU left at its default before them still clamps the logits, unless the
# rule reaches it (`emit.logits_chain`: moved or pooled values only).
_CARRIERS = (*CARRY_VALUES, Dropout, SpatialDropout2D, Add, Average, Maximum, Minimum, Concatenate)


def _warn_about_default_relu_logits(output: SymbolicTensor, loss: Loss, left_to_the_loss: bool) -> None:
    """Warn when the logits of a loss that reads them (`Loss.trains_on_logits`) come from a Dense or a convolution
    left at its default ReLU through layers that carry, move, pool or merge values (`Dense(10)` then `Dropout`,
    `Add` of two, `Conv2D(10, 1)` then `Dropout` then `GlobalAveragePooling2D`), where the logits rule does not
    reach it: the graphs emit linear only the output's own layer and one whose values the last layers only move or
    pool (`emit.logits_chain`; through TimeDistributed and nested models: `emit.logits_path`), so these logits are
    clamped at 0, a trap for Keras users, whose Dense and convolutions default to linear. The walk goes on through
    a softmax layer that the loss applies (`Dense(10)`, `Dropout`, `Softmax()`: the values it reads are the
    logits), and into nested models and TimeDistributed, where such a layer may sit. `left_to_the_loss`: the
    graphs emit the output's layer otherwise than called (`emit.logits_substitutes`, `emit.logits_chains`)."""
    # (tensor, whether the graphs emit it so that the loss reads its values as logits: the output left to the loss,
    # the path the rule reaches from it)
    pending = [(output, left_to_the_loss)]
    seen, found = set[tuple[int, bool]](), dict[str, str]()
    while pending:
        tensor, linear = pending.pop()
        if (id(tensor), linear) in seen:
            continue
        seen.add((id(tensor), linear))
        chain = emit.logits_chain(tensor, loss) if linear else []
        if chain:  # values moved or pooled from a layer the rule emits linear (`logits_graph`)
            pending.append((chain[0], True))
            continue
        softmax = _applied_softmax(tensor, loss) if linear else None
        if softmax is not None:  # the loss applies it: the values it reads are the logits
            pending.extend((x, False) for x in softmax.inputs)
            continue
        layer = tensor.layer
        if isinstance(layer, TimeDistributed):  # its layer's values per step
            layer = layer.layer
            if isinstance(layer, Functional):
                pending.append((layer.outputs[0], linear))
                continue
        if isinstance(layer, _CARRIERS):
            pending.extend((x, False) for x in tensor.inputs)
        elif isinstance(layer, Functional):  # a nested model: the values of its output of this index
            pending.append((layer.outputs[tensor.output_index], linear and len(layer.outputs) == 1))
        elif not linear and not getattr(layer, "activation_given", True):  # a Dense or a convolution at its ReLU
            found[str(layer.name)] = type(layer).__name__
    if found and prints_here():  # one warning for a data-parallel world, not one per process
        kinds = sorted(set(found.values()))
        whose = f"{kinds[0]}'s" if len(kinds) == 1 else "their"
        warnings.warn(
            f"Loss {_described(loss)} expects logits, but output {output.layer.name!r} carries the values of "
            f"{' and '.join(kinds)} layer(s) {sorted(found)} left at {whose} default activation, ReLU (KotlinDL's "
            f"default; Keras' is linear): the logits are clamped at 0, and {_CLAMPED[_kind(loss)]}. Give them "
            'activation="linear".',
            UserWarning,
            stacklevel=5,  # the caller of compile: compile -> _compile -> compile_settings -> here
        )


def _applied_softmax(tensor: SymbolicTensor, loss: Loss) -> SymbolicTensor | None:
    """The tensor of the `Softmax()` or `Activation("softmax")` layer (or a TimeDistributed of one) whose
    probabilities `tensor`, read as logits by `loss`, holds as it is or carried class by class
    (`CARRY_PROBABILITIES`), where the graphs leave that softmax to the loss (`softmax_layer_left_out`); None
    otherwise."""
    softmax = carried_from(tensor, CARRY_PROBABILITIES)[0]
    layer = softmax.layer.layer if isinstance(softmax.layer, TimeDistributed) else softmax.layer
    return softmax if softmax_layer_left_out(layer, loss) else None


# What logits clamped at 0 (a ReLU) do to each kind of loss on logits
_CLAMPED = {
    "softmax": "classes can become unlearnable",
    "sigmoid": "the predicted probability never falls below 0.5 (a unit that starts inactive gets no gradient)",
}


def _described(loss: Loss) -> str:
    """The loss as a warning names it: its name, and "with from_logits=True" where it says so."""
    return f"{loss.name!r}" + (" with from_logits=True" if getattr(loss, "from_logits", False) else "")


def _kind(loss: Loss) -> str:
    """How `loss`, which reads logits, turns them into probabilities: "softmax" or "sigmoid"."""
    return "softmax" if isinstance(loss, losses.SoftmaxCrossEntropyWithLogits) else "sigmoid"


def _warn_about_output_activation(output: SymbolicTensor, loss: Loss, left_to_the_loss: bool) -> None:
    """Warn when the activation of the layer whose values `output` gives does not fit the loss.

    A loss on logits (softmax cross-entropy; binary cross-entropy with `from_logits=True`) expects raw logits. A
    Dense activation left at its default is left out of the graphs (`emit.graph_layers`), and so is a softmax
    under softmax cross-entropy; any other activation given explicitly still trains, with a warning that says what
    it does to the logits: a ReLU (`activation="relu"`) leaves a class whose unit starts inactive without
    gradient for good (on the tutorial MLP with ReLU logits, 3 of 5 random seeds ended 10 epochs of Fashion-MNIST
    below 0.81 accuracy, against 0.881-0.890 with linear logits: tools/seed_study.py), and a sigmoid before
    binary cross-entropy from logits is applied twice.
    Binary cross-entropy on probabilities expects them: without a sigmoid, outputs outside [0, 1] are clipped,
    which stops their gradient, and "probabilities" are not probabilities.
    The layer judged is the one the rule reads (`emit.logits_path`): through last layers that only move or pool
    values (`Conv2D(10, 1, activation="relu")` then `GlobalAveragePooling2D()` warns as the Conv2D would), a last
    TimeDistributed and a nested model: `TimeDistributed(Dense(3, activation="relu"))` warns as
    `Dense(3, activation="relu")` does. `left_to_the_loss`: the graphs leave that activation to the loss
    (`emit.logits_substitutes`, `emit.logits_chains`), which reads the logits.
    """
    last = output.layer
    head = carried_from(output, CARRY_VALUES)[0].layer  # the layer whose values the last layers move or pool
    inner = emit.logits_path(head)[-1]  # the layer whose activation it is (through TimeDistributed, a nested model)
    activation = getattr(inner, "activation", None)
    if activation is None or not prints_here():  # one warning for a data-parallel world, not one per process
        return
    named = f"{last.name!r}"
    if inner is not last:
        whose = "its" if head is last else "the values, moved or pooled, of"
        named += f" ({whose} {type(inner).__name__} {inner.name!r})"
    if loss.trains_on_logits and activation.name != "linear" and not left_to_the_loss:
        fix = (
            "leave that layer out"
            if isinstance(inner, Activation)
            else f'use {type(inner).__name__}(..., activation="linear"), or leave the activation out'
        )
        if activation.name == "sigmoid" and _kind(loss) == "sigmoid":
            effect = "the loss applies its own sigmoid to them, so the sigmoid is applied twice"
        elif activation.name in ("relu", "relu6", "elu", "selu", "softplus", "exponential"):
            effect = (
                f"{activation.name} logits are clamped (bounded below), so {_CLAMPED[_kind(loss)]}; it trains, but "
                "worse and less reliably"
            )
        else:
            effect = f"the loss reads its outputs as logits, which {activation.name} bounds; it trains, but worse"
        warnings.warn(
            f"Loss {_described(loss)} expects logits, but the last layer {named} applies activation "
            f"{activation.name!r} to them: {effect}. For logits {fix}.",
            UserWarning,
            stacklevel=5,  # the caller of compile: compile -> _compile -> compile_settings -> here
        )
    elif isinstance(loss, losses.BinaryCrossentropy) and not loss.from_logits and activation.name != "sigmoid":
        warnings.warn(
            f"Loss {loss.name!r} expects probabilities, but the last layer {named} ends in activation "
            f"{activation.name!r}: outputs outside [0, 1] are clipped, so they get no gradient, and predict_softly "
            f'returns them as they are. Use {type(inner).__name__}(..., activation="sigmoid"), or '
            "BinaryCrossentropy(from_logits=True) with a linear last layer.",
            UserWarning,
            stacklevel=5,
        )
