"""The portable engine's weighted sessions: the graphs with a `sample_weight` input (Keras' `sample_weight`,
`class_weight`; `_graphs.py`), built like the unweighted ones, and their sessions, made at the first weighted batch
and bound to the values the unweighted ones read and write.

A weighted step runs through the same path as an unweighted one (graph update, fused kernel, split step or
data-parallel reduction). The shares of a split or data-parallel step each give sum(w_i l_i) / rows of their rows,
so the same row-weighted combination gives the whole batch's sum(w_i l_i) / batch. A fit without weights never
builds them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from onnxtrain import emit
from onnxtrain._float_env import FlushToZero
from onnxtrain.errors import UnsupportedError
from onnxtrain.portable._batch_binding import BatchBinding
from onnxtrain.portable._split_step import SplitStep
from onnxtrain.portable._step_models import StepModels

# A session's bindings: (session, the input names it accepts, the model's input names) -> one binding per value set.
Bind = Callable[[Any, Collection[str], Sequence[str]], list[BatchBinding]]


@dataclass
class WeightedSessions:
    """The sessions of the weighted graphs and their bindings (one per value set), or the split step that takes the
    train session's place."""

    train: Any
    train_bindings: list[BatchBinding]
    split: SplitStep | None
    eval: Any
    eval_bindings: list[BatchBinding]


def open_weighted_sessions(
    models: StepModels,
    in_place: frozenset[str],
    input_names: Sequence[str],
    create: Callable[[bytes], Any],
    flush: FlushToZero,
    split_step: Callable[[bytes, Sequence[str]], SplitStep] | None,
    bind_train: Bind,
    bind_eval: Bind,
) -> WeightedSessions:
    """The weighted sessions, bound as the unweighted ones are.

    Args:
        models: how the engine built its graphs (`StepModels.weighted` builds the weighted ones alike).
        in_place: the values the unweighted train step updates in place.
        input_names: the model's inputs (the weighted graphs add `sample_weight`).
        create: makes a session of a serialized model on the engine's device, with its options.
        flush: the engine's flush-to-zero scopes (sessions are created inside `creating`).
        split_step: makes the split step of a serialized gradient model, where the engine splits its batches.
        bind_train / bind_eval: the engine's train and eval bindings of a session.

    Raises:
        UnsupportedError: the loss gives no per-example values (`Loss.elements`), or (never seen) the weighted
            train step could not update in place a value the unweighted one does.
    """
    step_model, step_graph, eval_graph = models.weighted()
    if step_graph is not None and not in_place <= step_graph.in_place:
        raise UnsupportedError(
            "The weighted train step cannot update in place the values "
            f"{sorted(in_place - step_graph.in_place)}, which the unweighted step does; sample weights "
            "are not available for this model on the graph-update path. Use update='fused' (numba) instead."
        )
    names = (*input_names, emit.SAMPLE_WEIGHT_NAME)
    accepted = {i.name for i in step_model.graph.input}
    train, bindings, split = None, [], None
    with flush.creating():
        if split_step is not None:
            split = split_step(step_model.SerializeToString(), names)
        else:
            train = create(step_model.SerializeToString())
            bindings = bind_train(train, accepted, names)
            bindings = bindings * 2 if len(bindings) == 1 else bindings
        evaluation = create(eval_graph.SerializeToString())
    eval_inputs = {i.name for i in eval_graph.graph.input}
    return WeightedSessions(train, bindings, split, evaluation, bind_eval(evaluation, eval_inputs, names))
