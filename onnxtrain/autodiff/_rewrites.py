"""Rewrites that the rules, each seeing one node, cannot make: of a finished gradient graph,
`mask_pooled_relu_gradients` applies a ReLU's gradient mask before the max-pooling gradient that follows it
(exact); of a forward about to be differentiated, `pool_convolutions_by_phase` max-pools a one-channel convolution
from four strided ones (to float32 rounding)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx

from onnxtrain.autodiff._context import GraphFacts, node_attributes
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
    pool = _pool_of(unpool.input[1], producer)
    if pool is None:
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


def _pool_of(indices: str, producer: dict[str, onnx.NodeProto]) -> onnx.NodeProto | None:
    """The MaxPool whose window maxima `indices` names: the one that outputs it, or the one whose pooled output the
    MaxPool rule derived it from (`_pool._pair_indices`: three more pools over the same input, each compared with
    the pooled output, and arithmetic on shapes and constants). None for anything else."""
    node = producer.get(indices)
    if node is not None and _is(node, "MaxPool") and list(node.output[1:2]) == [indices]:
        return node
    pools: dict[int, onnx.NodeProto] = {}
    stack, seen = [indices], set()
    while stack:
        value = stack.pop()
        node = producer.get(value)
        if node is None or value in seen or _is(node, "Shape"):  # a shape carries no values: stop there
            continue
        seen.add(value)
        if len(seen) > 64:  # the derivation is a few dozen nodes: this is something else
            return None
        if _is(node, "Equal"):
            pooled = producer.get(node.input[1])
            if pooled is None or not _is(pooled, "MaxPool") or node.input[1] != pooled.output[0]:
                return None
            pools[id(pooled)] = pooled
            continue
        stack.extend(node.input)
    return next(iter(pools.values())) if len(pools) == 1 else None


def _is(node: onnx.NodeProto, op_type: str) -> bool:
    return node.op_type == op_type and node.domain in ("", "ai.onnx")


def _only_reader(value: str, readers: dict[str, list[onnx.NodeProto]], outputs: set[str]) -> onnx.NodeProto | None:
    found = readers.get(value, [])
    return found[0] if len(found) == 1 and value not in outputs else None


def pool_convolutions_by_phase(builder: GraphBuilder, wrt: Sequence[str]) -> int:
    """For each `MaxPool(Relu(Conv(x)))` with 2x2 windows at stride 2 over a one-channel convolution at stride 1
    whose input takes no gradient (a first layer on grey images), emit the pooled map as `Relu(Max(c00, c01, c10,
    c11))` before differentiating, where `cab` is the convolution at outputs (2i + a, 2j + b): a convolution at
    stride 2. Returns how many were rewritten.

    The values are the convolution's, to float32 rounding (ONNX Runtime sums a strided convolution in another
    order), and so are the gradients: `Max` gives its gradient to the first input that attains the maximum, the
    window element in row-major order that MaxPool's Indices name, ties included. The backward then needs neither
    MaxPool's Indices nor MaxUnpool, which took most of this layer's time: on one thread, the fashion-cnn's gradient
    step took 37.4 instead of 39.8 ms (docs/measurements.md). A convolution of more input channels, or whose input
    takes a gradient (four transposed convolutions instead of one), measured slower this way.
    """
    facts = GraphFacts.of(builder)
    nodes = builder.nodes
    producer = {out: node for node in nodes for out in node.output if out}
    readers: dict[str, int] = {}
    for node in nodes:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    outputs = {o.name for o in builder.outputs}
    differentiated = _downstream(nodes, set(wrt))
    rewritten = 0
    for pool in nodes:
        chain = _pooled_convolution(pool, producer, readers, outputs)
        if chain is None:
            continue
        conv, relu = chain
        x, w = conv.input[0], conv.input[1]
        x_shape, w_shape, c_shape = (_static(facts, v) for v in (x, w, conv.output[0]))
        if x_shape is None or w_shape is None or c_shape is None or len(x_shape) != 4 or w_shape[1] != 1:
            continue
        if x in differentiated:
            continue
        with builder.scope("phases"), builder.replacing([conv, relu, pool]) as replaced:
            phases = [
                _phase(builder, conv, x_shape[2:], w_shape[2:], c_shape[2:], (a, b)) for a in (0, 1) for b in (0, 1)
            ]
            replaced[builder.node("Relu", [builder.node("Max", phases, hint="max")])] = pool.output[0]
        rewritten += 1
    return rewritten


def _pooled_convolution(
    pool: onnx.NodeProto, producer: dict[str, onnx.NodeProto], readers: dict[str, int], outputs: set[str]
) -> tuple[onnx.NodeProto, onnx.NodeProto] | None:
    """(Conv, Relu) of a `MaxPool(Relu(Conv))` that `pool_convolutions_by_phase` rewrites, or None."""
    pooling = node_attributes(pool)
    if not _is(pool, "MaxPool") or len([o for o in pool.output if o]) != 1 or pooling.get("kernel_shape") != [2, 2]:
        return None
    if pooling.get("strides") != [2, 2] or any(pooling.get("pads", [0])) or pooling.get("ceil_mode", 0):
        return None
    if any(d != 1 for d in pooling.get("dilations", [1])) or pooling.get("auto_pad", "NOTSET") != "NOTSET":
        return None
    relu = producer.get(pool.input[0])
    conv = producer.get(relu.input[0]) if relu is not None and _is(relu, "Relu") else None
    if conv is None or not _is(conv, "Conv") or relu is None:
        return None
    if any(readers.get(v, 0) != 1 or v in outputs for v in (conv.output[0], relu.output[0])):
        return None
    convolution = node_attributes(conv)
    if convolution.get("group", 1) != 1 or convolution.get("auto_pad", "NOTSET") != "NOTSET":
        return None
    if any(s != 1 for s in convolution.get("strides", [1])) or any(d != 1 for d in convolution.get("dilations", [1])):
        return None
    return conv, relu


def _phase(
    builder: GraphBuilder,
    conv: onnx.NodeProto,
    size: Sequence[int],
    kernel: Sequence[int],
    convolved: Sequence[int],
    phase: tuple[int, int],
) -> str:
    """`conv`'s outputs (2i + a, 2j + b) for `phase` (a, b), of the pooled map's size: the convolution at stride 2
    of x cropped or padded so that its first window starts at row a and column b of the padded input."""
    pads = node_attributes(conv).get("pads", [0] * 4)
    starts, ends, before, after = [], [], [], []
    for axis in range(2):
        pooled = convolved[axis] // 2
        first = phase[axis] - pads[axis]  # in x's coordinates; negative: inside the padding
        stop = first + 2 * (pooled - 1) + kernel[axis]  # one past the last window's last element
        starts.append(max(first, 0))
        before.append(max(-first, 0))
        if stop < size[axis] and (size[axis] - max(first, 0) + max(-first, 0) - kernel[axis]) // 2 + 1 == pooled:
            stop = size[axis]  # the stride leaves the rest out by itself: no crop needed
        ends.append(min(stop, size[axis]))
        after.append(max(stop - size[axis], 0))
    x = conv.input[0]
    if starts != [0, 0] or ends != list(size):
        ints = lambda values, hint: builder.constant(np.array(values, np.int64), hint, np.int64)  # noqa: E731
        x = builder.node("Slice", [x, ints(starts, "starts"), ints(ends, "ends"), ints([2, 3], "axes")], hint="crop")
    inputs = [x, *conv.input[1:]]
    a, b = phase
    return builder.node(
        "Conv", inputs, hint=f"conv{a}{b}", kernel_shape=list(kernel), strides=[2, 2], pads=[*before, *after]
    )


def _static(facts: GraphFacts, value: str) -> tuple[int, ...] | None:
    """`value`'s shape where every dimension but the first (the batch) is known, else None."""
    shape = facts.shape(value)
    if shape is None or not all(isinstance(d, int) for d in shape[1:]):
        return None
    return tuple(d if isinstance(d, int) else -1 for d in shape)


def _downstream(nodes: Sequence[onnx.NodeProto], sources: set[str]) -> set[str]:
    """The values computed from any of `sources` (nodes in topological order)."""
    found = set(sources)
    for node in nodes:
        if any(name in found for name in node.input):
            found.update(o for o in node.output if o)
    return found
