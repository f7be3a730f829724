"""LoRA: low-rank adapters on an ONNX graph's matrix products, and folding them back into plain weights.

`add_adapters` rewrites each chosen MatMul/Gemm whose weight operand is a 2-D float initializer W so that
y = x·W + (alpha/rank)·(x·A)·B, with A Kaiming-uniform (as peft) and B zero, so the adapted model starts out
computing what the original did; `merge_adapters` folds W += (alpha/rank)·A·B and removes the adapter nodes.
`onnxtrain.lora` (in `onnxtrain.foreign._lora`, above the model) adapts an imported model and trains the adapters
only; this module sits with the graphs, below the model, so that `export(merge_adapters=True)` can call it.

The adapters are stored in the weight's own layout: for W of shape (in, out) (MatMul's right operand, Gemm with
transB=0) A is (in, rank) and B (rank, out); for W of shape (out, in) (Gemm with transB=1, MatMul's left operand)
they are peft's (rank, in) and (out, rank), and the merge is W += (alpha/rank)·B·A. A weight that two nodes read in
opposite layouts (a tied encoder's Gemm transB=1 and decoder's transB=0) gets one pair, in the first node's layout;
the other node applies it transposed (its product reads B first, then A), so the merge is the same ΔW for both.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.foreign._adapter_targets import (
    Target,
    find_targets,
    select,
    warn_about_left_out,
    warn_about_ranks_above_full,
    without_shared_weights,
)

A_SUFFIX, B_SUFFIX, SCALE_SUFFIX = ".lora_A", ".lora_B", ".lora_scale"
ADAPTER_PATTERNS = (f"*{A_SUFFIX}", f"*{B_SUFFIX}")  # the `trainable` of an adapted model


def add_adapters(
    proto: onnx.ModelProto,
    rank: int = 8,
    targets: Sequence[str] = ("MatMul", "Gemm"),
    alpha: float = 16,
    seed: int = 0,
    nodes: Iterable[str] | None = None,
) -> onnx.ModelProto:
    """A copy of `proto` with low-rank adapters on its matrix products by a 2-D float initializer.

    Args:
        proto: the model; it is not changed.
        rank: the adapters' inner dimension r.
        targets: the op types to adapt ("MatMul", "Gemm").
        alpha: the adapters' output is scaled by alpha / rank (peft's `lora_alpha`).
        seed: seeds A's Kaiming-uniform initialization.
        nodes: node names or weight names (glob patterns allowed) to restrict the adapted nodes to.

    Returns:
        The adapted model: per weight W, initializers `W.lora_A` and `W.lora_B` (zeros), and a Constant node
        `W.lora_scale` = alpha / rank; a weight that several adapted nodes read gets one pair, which they
        share, each applying it in the layout it reads W in (so the merge is one ΔW in W's own layout). A
        weight that another node reads too (a tied embedding's Gather) is left alone, since merging its adapters
        would change what that node computes.

    Raises:
        InvalidArgumentError: rank or alpha not positive, a target that is not MatMul or Gemm, a `nodes` entry
            that matches no adaptable node or one whose weight another node reads too, no node to adapt, or a
            model that already has adapters.

    Warns:
        UserWarning: once, listing the adapted weights of which `rank` exceeds min(in_features, out_features):
            their adapters have more parameters than the weights themselves (peft allows any rank, as here).
    """
    rank = int(_check_positive("rank", rank, integer=True))
    alpha = _check_positive("alpha", alpha, integer=False)
    targets = _check_targets(targets)
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    graph = model.graph
    if any(t.name.endswith(A_SUFFIX) for t in graph.initializer):
        raise InvalidArgumentError("add_adapters expects a model without LoRA adapters; this one already has them")
    adaptable = find_targets(graph, targets)
    found = select(adaptable, nodes) if nodes is not None else adaptable
    found, shared = without_shared_weights(graph, found, explicit=nodes is not None)
    if nodes is None:
        warn_about_left_out(graph, targets, adaptable, shared)
    if not found:
        present = sorted({n.op_type for n in graph.node})
        raise InvalidArgumentError(
            f"add_adapters found no node to adapt: targets={list(targets)} match no node whose weight operand is "
            f"a 2-D float initializer. The graph's op types: {', '.join(present) or 'none'}"
        )
    initializers = {t.name: t for t in graph.initializer}
    warn_about_ranks_above_full(found, initializers, rank)
    names = _Names(graph)
    rng = np.random.default_rng(seed)
    scales: dict[str, str] = {}  # weight -> the value holding its adapters' scale
    layouts: dict[str, bool] = {}  # weight -> whether its pair is stored as peft's (out, in) pair
    for target in found:
        weight = numpy_helper.to_array(initializers[target.weight])
        if target.transpose is not None:  # the adapters are those of the matrix the product reads, Wᵀ
            weight = weight.T
        if target.weight not in scales:
            scales[target.weight] = names(target.weight + SCALE_SUFFIX)
            layouts[target.weight] = target.out_in
            graph.initializer.extend(_adapter_tensors(target, weight, rank, rng))
            # A Constant node, not an initializer: an imported model's float initializers are its weights.
            value = numpy_helper.from_array(np.array(alpha / rank, weight.dtype))
            constant = helper.make_node("Constant", [], [scales[target.weight]], value=value)
            constant.name = names(f"{target.weight}.lora/scale")
            graph.node.insert(0, constant)
        transposed = target.out_in != layouts[target.weight]
        _rewire(graph, target, scales[target.weight], names, opset=_default_opset(model), transposed=transposed)
    return model


def merge_adapters(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `proto` with every adapter folded into its weight, W += (alpha/rank)·A·B, and the adapter nodes
    and initializers removed: a plain model of the original's nodes, initializers and size.

    Raises:
        InvalidArgumentError: an adapter whose nodes are not the pattern `add_adapters` writes.
    """
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    nodes = list(graph.node)  # one wrapper per node, so that ids below name nodes
    constants = {n.output[0]: n for n in nodes if n.op_type == "Constant"}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    producers: dict[str, onnx.NodeProto] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
        for name in node.output:
            producers[name] = node
    removed: set[int] = set()
    dropped: set[str] = set()
    for a_name in [name for name in initializers if name.endswith(A_SUFFIX)]:
        weight = a_name[: -len(A_SUFFIX)]
        b_name = weight + B_SUFFIX
        if weight not in initializers or b_name not in initializers:
            raise InvalidArgumentError(
                f"merge_adapters: adapter {a_name!r} has no {b_name!r} or no weight {weight!r} to fold into"
            )
        delta: np.ndarray | None = None
        a = numpy_helper.to_array(initializers[a_name]).astype(np.float64)
        b = numpy_helper.to_array(initializers[b_name]).astype(np.float64)
        for down, first in _down_nodes(a_name, b_name, consumers):
            second = b_name if first == a_name else a_name
            path = _adapter_path(down, first, second, consumers, producers)
            factor = _scalar(path.mul, initializers, constants)
            # The down node reads P or Q of ΔW = P·Q (W's layout): Q when it reads W transposed, P otherwise.
            p, q = (a, b) if first == a_name else (b, a)
            step = factor * (q @ p if path.out_in else p @ q)
            step = step.T if path.through_transpose else step  # the product read Wᵀ: ΔW is the transpose of its
            if delta is not None and not np.array_equal(delta, step):
                raise InvalidArgumentError(f"merge_adapters: the nodes sharing {a_name!r} scale it differently")
            delta = step
            path.base.output[list(path.base.output).index(path.base_output)] = path.add.output[0]
            removed.update(id(n) for n in (path.down, path.up, path.mul, path.add))
            dropped.update(name for n in (path.down, path.up, path.mul) for name in n.output)
            dropped.add(path.base_output)
            dropped.update(i for i in path.mul.input if i not in (path.up.output[0],))
        if delta is not None:
            tensor = initializers[weight]
            w = numpy_helper.to_array(tensor)
            tensor.CopyFrom(numpy_helper.from_array((w.astype(np.float64) + delta).astype(w.dtype), weight))
        dropped.update((a_name, b_name))
    kept = [n for n in nodes if id(n) not in removed]
    dropped -= {name for n in kept for name in n.input} | {o.name for o in graph.output}
    kept = [n for n in kept if not (n.op_type == "Constant" and n.output[0] in dropped)]  # a Constant scale
    del graph.node[:]
    graph.node.extend(kept)
    _remove_by_name(graph.initializer, dropped)
    _remove_by_name(graph.value_info, dropped)
    return model


# --- finding the nodes -----------------------------------------------------------------------------------------
def _check_positive(argument: str, value: object, *, integer: bool) -> float:
    kind = "a positive int" if integer else "a positive number"
    numbers = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, numbers):  # rank=2.0 too: a float is no rank
        raise InvalidTypeError(f"LoRA expects {argument} to be {kind}. Received: {argument}={value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"LoRA expects {argument} to be {kind}. Received: {argument}={value!r}")
    return int(value) if integer else float(value)


def _check_targets(targets: Sequence[str]) -> tuple[str, ...]:
    if isinstance(targets, str):
        targets = (targets,)
    unknown = [t for t in targets if t not in ("MatMul", "Gemm")]
    if unknown or not targets:
        raise InvalidArgumentError(
            f"LoRA expects targets among 'MatMul' and 'Gemm'. Received: targets={list(targets)!r}"
        )
    return tuple(targets)


# --- rewriting ---------------------------------------------------------------------------------------------------
class _Names:
    """Unique value and node names, so that adapters never collide with the graph's own."""

    def __init__(self, graph: onnx.GraphProto):
        self.taken = {n for node in graph.node for n in (*node.input, *node.output, node.name)}
        self.taken |= {v.name for v in (*graph.input, *graph.output, *graph.initializer)}

    def __call__(self, wanted: str) -> str:
        name, n = wanted, 1
        while name in self.taken:
            n += 1
            name = f"{wanted}_{n}"
        self.taken.add(name)
        return name


def _default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _adapter_tensors(target: Target, weight: np.ndarray, rank: int, rng: np.random.Generator) -> list[onnx.TensorProto]:
    fan_in = weight.shape[1] if target.out_in else weight.shape[0]
    fan_out = weight.shape[0] if target.out_in else weight.shape[1]
    # peft: kaiming_uniform_(a=sqrt(5)) on A of shape (rank, in), i.e. U(-1/sqrt(in), 1/sqrt(in)).
    bound = 1.0 / math.sqrt(fan_in)
    a = rng.uniform(-bound, bound, size=(rank, fan_in)).astype(weight.dtype)
    b = np.zeros((fan_out, rank), weight.dtype)
    if not target.out_in:
        a, b = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
    return [
        numpy_helper.from_array(a, target.weight + A_SUFFIX),
        numpy_helper.from_array(b, target.weight + B_SUFFIX),
    ]


def _rewire(
    graph: onnx.GraphProto, target: Target, scale: str, names: _Names, opset: int, *, transposed: bool = False
) -> None:
    """Insert down, up, scale and add after `target.node`, whose output now feeds the add.

    `transposed`: the pair is stored in the other layout than this node reads W in (a weight two nodes read in
    opposite layouts); ΔW = P·Q in W's layout with (P, Q) = (A, B) or (B, A), so the node reads B where it would
    read A and A where it would read B: x·Wᵀ + x·(B·A)ᵀ = x·Wᵀ + (x·Aᵀ)·Bᵀ, and x·W + x·(B·A) = x·W + (x·B)·A.
    """
    node, weight = target.node, target.weight
    a, b = weight + A_SUFFIX, weight + B_SUFFIX
    if transposed:
        a, b = b, a
    x = node.input[1 - target.weight_index]
    y = node.output[0]
    prefix = f"{node.name or weight}.lora"
    base, down, up, scaled = (names(f"{prefix}/{part}") for part in ("base", "x_A", "x_AB", "scaled"))
    new: list[onnx.NodeProto] = []
    if node.op_type == "MatMul":
        if target.weight_index == 1:
            new += [helper.make_node("MatMul", [x, a], [down]), helper.make_node("MatMul", [down, b], [up])]
        else:
            new += [helper.make_node("MatMul", [a, x], [down]), helper.make_node("MatMul", [b, down], [up])]
    else:
        if opset < 11:
            raise InvalidArgumentError(
                f"add_adapters writes Gemm without C, which needs opset 11 or newer. Received: opset {opset}"
            )
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        trans_a, trans_b = int(attributes.get("transA", 0)), int(attributes.get("transB", 0))
        gemm_alpha = float(attributes.get("alpha", 1.0))
        down_attributes: dict[str, Any] = {"transA": trans_a, "transB": trans_b}
        if gemm_alpha != 1.0:  # alpha·x'·(W + ΔW) = alpha·x'·W + (alpha·x'·A)·B
            down_attributes["alpha"] = gemm_alpha
        new += [
            helper.make_node("Gemm", [x, a], [down], **down_attributes),
            helper.make_node("Gemm", [down, b], [up], transB=trans_b),
        ]
    new += [helper.make_node("Mul", [up, scale], [scaled]), helper.make_node("Add", [base, scaled], [y])]
    for part, created in zip(("down", "up", "scale", "add"), new, strict=True):
        created.name = names(f"{prefix}/{part}")
    position = next(i for i, n in enumerate(graph.node) if y in n.output)  # outputs are unique (SSA)
    node.output[0] = base
    for offset, created in enumerate(new, start=1):
        graph.node.insert(position + offset, created)


# --- merging -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Path:
    down: onnx.NodeProto
    up: onnx.NodeProto
    mul: onnx.NodeProto
    add: onnx.NodeProto
    base: onnx.NodeProto
    base_output: str
    out_in: bool
    through_transpose: bool  # the base product reads Transpose(W), perm [1, 0]


def _down_nodes(
    a_name: str, b_name: str, consumers: dict[str, list[onnx.NodeProto]]
) -> list[tuple[onnx.NodeProto, str]]:
    """The nodes that start an adapter product, each with the adapter it reads: A, or B where the node applies
    the pair transposed. The other nodes reading A or B are the products' second halves, fed by one of these."""
    readers = [(node, name) for name in (a_name, b_name) for node in consumers.get(name, [])]
    second_halves = {id(up) for node, _ in readers for up in consumers.get(node.output[0], [])}
    return [(node, name) for node, name in readers if id(node) not in second_halves]


def _adapter_path(
    down: onnx.NodeProto,
    a_name: str,
    b_name: str,
    consumers: dict[str, list[onnx.NodeProto]],
    producers: dict[str, onnx.NodeProto],
) -> _Path:
    """The down → up → Mul → Add chain that starts at `down`, which reads the adapter `a_name` (A, or B when the
    node applies the pair transposed) and whose second product reads `b_name`."""

    def only_consumer(node: onnx.NodeProto, op_type: str) -> onnx.NodeProto:
        found = consumers.get(node.output[0], [])
        if len(found) != 1 or found[0].op_type != op_type:
            raise InvalidArgumentError(
                f"merge_adapters: adapter {a_name!r}: expected {node.op_type} node {node.name!r} to feed one "
                f"{op_type} node. Received: {[n.op_type for n in found]}"
            )
        return found[0]

    if down.op_type == "MatMul":
        out_in = list(down.input).index(a_name) == 0
    elif down.op_type == "Gemm":
        out_in = any(a.name == "transB" and a.i for a in down.attribute)
    else:
        raise InvalidArgumentError(
            f"merge_adapters: adapter {a_name!r} is read by a {down.op_type} node; expected MatMul or Gemm"
        )
    up = only_consumer(down, down.op_type)
    if b_name not in up.input:
        raise InvalidArgumentError(f"merge_adapters: node {up.name!r} after {a_name!r} does not read {b_name!r}")
    mul = only_consumer(up, "Mul")
    add = only_consumer(mul, "Add")
    base_output = next(i for i in add.input if i != mul.output[0])
    base = producers.get(base_output)
    weight = a_name[: -len(A_SUFFIX)]  # A or B: the two suffixes have one length
    through = (
        base is not None and weight not in base.input and any(_transposes(producers.get(i), weight) for i in base.input)
    )
    if base is None or (weight not in base.input and not through) or len(consumers.get(base_output, [])) != 1:
        raise InvalidArgumentError(
            f"merge_adapters: adapter {a_name!r} is added to {base_output!r}, which is not the product by "
            f"{weight!r} alone"
        )
    return _Path(down, up, mul, add, base, base_output, out_in, through)


def _transposes(node: onnx.NodeProto | None, weight: str) -> bool:
    """Whether `node` is a Transpose that swaps the two axes of `weight`."""
    if node is None or node.op_type != "Transpose" or list(node.input) != [weight]:
        return False
    return next((list(a.ints) for a in node.attribute if a.name == "perm"), [1, 0]) == [1, 0]


def _scalar(
    mul: onnx.NodeProto, initializers: dict[str, onnx.TensorProto], constants: dict[str, onnx.NodeProto]
) -> float:
    for name in mul.input:
        if name in initializers and np.size(value := numpy_helper.to_array(initializers[name])) == 1:
            return float(value.reshape(()))
        if name in constants and constants[name].attribute[0].name == "value":
            return float(numpy_helper.to_array(constants[name].attribute[0].t).reshape(()))
    raise InvalidArgumentError(f"merge_adapters: the scale of Mul node {mul.name!r} is not a constant")


def _remove_by_name(container: Any, names: set[str]) -> None:
    """Remove the entries of a repeated protobuf field (initializers, value infos) whose name is in `names`."""
    kept = [item for item in container if item.name not in names]
    del container[:]
    container.extend(kept)
