"""A layer call's mode where it differs from its graph's: Keras' `layer(x, training=False)` (`base_model(inputs,
training=False)`, Keras' transfer learning), emitted in inference mode in every graph, training graphs included, and
kept in a Functional's config and summary.

`Functional.emit` wraps such a call in `call_mode`: the layers read `builder.training` False (BatchNormalization its
moving statistics, Dropout the identity), while `in_training_graph` still tells them that the graph around them is
differentiated, which decides the form of what they emit (BatchNormalization's: `_normalization.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from onnxtrain.errors import InvalidArgumentError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._layer import SymbolicTensor

_INSIDE = "_inference_calls_in_training_graph"  # in a builder's __dict__: how many inference calls are open
Refs = dict[int, list[str | int]]  # a tensor's id -> its [layer name, call index] in a Functional's config


@contextmanager
def call_mode(builder: GraphBuilder, training: bool | None) -> Iterator[None]:
    """Emit the block as a call given `training` (None: as the graph; False: in inference mode, remembering
    whether the graph trains)."""
    if training is None:
        yield
        return
    outer, depth = builder.training, builder.__dict__.get(_INSIDE, 0)
    builder.training = False
    builder.__dict__[_INSIDE] = depth + 1 if depth or outer else 0
    try:
        yield
    finally:
        builder.training = outer
        builder.__dict__[_INSIDE] = depth


def in_training_graph(builder: GraphBuilder) -> bool:
    """Whether `builder` emits a training graph (one a training engine differentiates), even inside a call in
    inference mode."""
    return builder.training or builder.__dict__.get(_INSIDE, 0) > 0


def call_config(node: SymbolicTensor, ref: Refs) -> list[Any] | dict[str, Any]:
    """A call's entry in a Functional config's `inbound_nodes`: the refs it read, or with its `training` where
    given, {"args": refs, "kwargs": {"training": false}}, as Keras keeps a call's kwargs."""
    args = [ref[id(x)] for x in node.inputs]
    return args if node.training is None else {"args": args, "kwargs": {"training": node.training}}


def call_entry(layer_name: str | None, entry: Any) -> tuple[list[Any], dict[str, Any]]:
    """(the refs read, the call's kwargs) of an `inbound_nodes` entry that `call_config` wrote.

    Raises:
        InvalidArgumentError: a dict without "args", or with kwargs other than training.
    """
    if not isinstance(entry, dict):
        return entry, {}
    kwargs = entry.get("kwargs", {})
    if "args" not in entry or not isinstance(kwargs, dict) or set(kwargs) - {"training"}:
        raise InvalidArgumentError(
            f"A Functional config's call of {layer_name!r} is a list of [layer name, call index] refs, or "
            '{"args": [refs], "kwargs": {"training": false}}. Received: ' + repr(entry)
        )
    return list(entry["args"]), dict(kwargs)


def call_reads(node: SymbolicTensor, ref: Refs) -> str:
    """A call's "Connected to" text in a summary: `layer[call index]` of each input, and its `training` if given."""
    text = ", ".join(f"{ref[id(x)][0]}[{ref[id(x)][1]}]" for x in node.inputs)
    return text if node.training is None else f"{text} (training={node.training})"
