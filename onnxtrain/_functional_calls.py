"""A Functional's calls: its `inputs` and `outputs` arguments checked, and every call the outputs depend on, each
after the calls it reads (the order `Functional.emit` emits them in)."""

from __future__ import annotations

from typing import Any

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.layers import Input, format_shape
from onnxtrain.layers._layer import SymbolicTensor, describe


def listed(value: Any, argument: str, kind: type, expected: str) -> list[Any]:
    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items:
        raise InvalidArgumentError(f"Functional({argument}=...) expects at least one. Received: an empty list")
    for i, item in enumerate(items):
        if not isinstance(item, kind):
            received = describe(item.layer) + " output" if isinstance(item, SymbolicTensor) else type(item).__name__
            raise InvalidTypeError(
                f"Functional({argument}=...) expects {expected}. Received: {argument}[{i}]: {received}"
            )
    return items


def topological_calls(inputs: list[Input], outputs: list[SymbolicTensor]) -> list[SymbolicTensor]:
    """The inputs, then every call that the outputs depend on, each after the calls it reads (depth first)."""
    order: list[SymbolicTensor] = list(inputs)
    done = {id(x) for x in inputs}
    reached: set[int] = set()
    for index, output in enumerate(outputs):
        stack: list[tuple[SymbolicTensor, bool]] = [(output, False)]
        while stack:
            tensor, inputs_done = stack.pop()
            if isinstance(tensor, Input):
                if id(tensor) not in done:
                    given = ", ".join(_label(x) for x in inputs)
                    raise InvalidArgumentError(
                        f"Graph disconnected: outputs[{index}] depends on {_label(tensor)}, which is not in inputs "
                        f"({given}). Add it to inputs."
                    )
                reached.add(id(tensor))
            elif id(tensor) in done:
                continue
            elif inputs_done:
                done.add(id(tensor))
                order.append(tensor)
            else:
                stack.append((tensor, True))
                stack.extend((x, False) for x in reversed(tensor.inputs))
    for index, x in enumerate(inputs):
        if id(x) not in reached:
            raise InvalidArgumentError(
                f"inputs[{index}] ({_label(x)}) reaches no output: no output depends on it. Remove it from inputs, "
                "or use it."
            )
    return order


def _label(x: Input) -> str:
    return f"Input {x.name!r}" if x.name else f"Input of shape {format_shape(x.shape)}"
