"""Exact rewrites of a finished gradient graph that the rules, each seeing one node, cannot make:
`mask_pooled_relu_gradients` applies a ReLU's gradient mask before the max-pooling gradient that follows it."""

from __future__ import annotations

import onnx

from onnxtrain.autodiff._context import GraphFacts
from onnxtrain.graph import GraphBuilder


def mask_pooled_relu_gradients(builder: GraphBuilder) -> int:
    """For each `MaxPool(Relu(c))` whose gradient is `MaxUnpool(dP, Indices) * Cast(Relu(c) > 0)`, compute it as
    `MaxUnpool(dP * Cast(P > 0), Indices)` instead; returns how many were rewritten.

    The same values, bit for bit: MaxUnpool puts each window's gradient at its maximum, where the ReLU's output
    is P itself, and zeros elsewhere, which any mask keeps. The mask then covers the pooled map (a quarter of the
    elements for a 2x2 pool) and the forward stays as it was: pooling the ReLU's output runs faster in ONNX
    Runtime than pooling the convolution's (its MaxPool with Indices branches on the data).

    The four nodes are rewritten in their own places in the node list, which stays topologically sorted; a
    pattern whose values anything else reads, or whose zero is made after the MaxUnpool, is left alone.
    """
    nodes = builder.nodes
    position = {id(node): i for i, node in enumerate(nodes)}
    producer = {out: node for node in nodes for out in node.output if out}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    outputs = {o.name for o in builder.outputs}
    constants = GraphFacts.of(builder).constants
    rewritten = 0
    for unpool in nodes:
        chain = _pattern(unpool, producer, readers, outputs, constants)
        if chain is None:
            continue
        pooled, greater, cast, mul = chain
        zero = greater.input[1]
        if zero in producer and position[id(producer[zero])] > position[id(unpool)]:
            continue
        new_greater, new_cast, new_mul, new_unpool = (onnx.NodeProto() for _ in range(4))
        new_greater.CopyFrom(greater)
        new_greater.input[0] = pooled
        new_cast.CopyFrom(cast)
        new_mul.CopyFrom(mul)
        masked = builder.unique_name(f"{unpool.input[0]}_masked")
        new_mul.input[:] = [unpool.input[0], cast.output[0]]
        new_mul.output[0] = masked
        new_unpool.CopyFrom(unpool)
        new_unpool.input[0] = masked
        new_unpool.output[0] = mul.output[0]
        for slot, content in zip(
            (unpool, greater, cast, mul), (new_greater, new_cast, new_mul, new_unpool), strict=True
        ):
            slot.CopyFrom(content)
        rewritten += 1
    return rewritten


def _pattern(
    unpool: onnx.NodeProto,
    producer: dict[str, onnx.NodeProto],
    readers: dict[str, list[onnx.NodeProto]],
    outputs: set[str],
    constants: dict,
) -> tuple[str, onnx.NodeProto, onnx.NodeProto, onnx.NodeProto] | None:
    """(pooled output, Greater, Cast, Mul) of the pattern at `unpool`, or None."""
    if not _is(unpool, "MaxUnpool") or len(unpool.input) < 2:
        return None
    pool = producer.get(unpool.input[1])
    if pool is None or not _is(pool, "MaxPool") or list(pool.output[1:2]) != [unpool.input[1]]:
        return None
    relu = producer.get(pool.input[0])
    if relu is None or not _is(relu, "Relu"):
        return None
    mul = _only_reader(unpool.output[0], readers, outputs)
    if mul is None or not _is(mul, "Mul") or list(mul.input) != [unpool.output[0], mul.input[1]]:
        return None
    cast = producer.get(mul.input[1])
    if cast is None or not _is(cast, "Cast") or _only_reader(cast.output[0], readers, outputs) is not mul:
        return None
    greater = producer.get(cast.input[0])
    if greater is None or not _is(greater, "Greater") or _only_reader(greater.output[0], readers, outputs) is not cast:
        return None
    zero = constants.get(greater.input[1])
    if greater.input[0] != relu.output[0] or zero is None or zero.size != 1 or float(zero.reshape(-1)[0]) != 0.0:
        return None
    return pool.output[0], greater, cast, mul


def _is(node: onnx.NodeProto, op_type: str) -> bool:
    return node.op_type == op_type and node.domain in ("", "ai.onnx")


def _only_reader(value: str, readers: dict[str, list[onnx.NodeProto]], outputs: set[str]) -> onnx.NodeProto | None:
    found = readers.get(value, [])
    return found[0] if len(found) == 1 and value not in outputs else None
