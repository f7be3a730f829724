"""BatchNormalization's running statistics for `batch_norm="train"`: each node gets statistics of its own to update,
and a graph without BatchNormalization (folded into the Conv weights by the exporter) says so once."""

from __future__ import annotations

import re
import warnings

import onnx

STATISTICS = ((3, "running_mean"), (4, "running_var"))  # BatchNormalization's inputs
EXPORT_WITH_STATISTICS = (
    "torch keeps them with torch.onnx.export(..., dynamo=False, training=torch.onnx.TrainingMode.PRESERVE) (the "
    "TorchScript exporter's default, TrainingMode.EVAL, folds them; so does do_constant_folding=True, its default), "
    "or torch.onnx.export(..., dynamo=True, optimize=False) (the dynamo exporter's optimizer folds them)"
)


def own_statistics(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` (copied) with each BatchNormalization node reading running statistics that no other node shares, so
    that each node's statistics are updated by its own batches.

    TorchScript merges buffers of equal value, which fresh BatchNorms have (zeros and ones): the export reads one
    initializer, `m.bn0.running_mean`, for every BatchNorm, the later ones through Identity nodes named after their
    own buffers (`m.b1.running_mean`). Such an Identity becomes an initializer of its name holding the value it
    copies; a node that reads an initializer another node read first gets a copy named after itself
    (`b1.BatchNormalization.running_mean`). Statistics computed by other nodes are left as they are.
    """
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    initializers = {t.name: t for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    identities = {n.output[0]: n for n in graph.node if n.op_type == "Identity" and n.input and n.output}
    taken = {v.name for v in [*graph.input, *graph.output, *graph.initializer]} | {
        o for n in graph.node for o in n.output
    }
    claimed: set[str] = set()
    replaced: list[onnx.NodeProto] = []
    for node in [n for n in graph.node if n.op_type == "BatchNormalization"]:
        for position, what in STATISTICS:
            if position >= len(node.input):
                continue
            name = source = node.input[position]
            while source in identities and source not in initializers:
                source = identities[source].input[0]
            if source not in initializers:
                continue
            if name not in claimed:  # the node's own: the initializer, or an Identity's output named for it
                if name != source:
                    replaced.append(identities[name])
                    graph.initializer.append(_copy(initializers[source], name))
                claimed.add(name)
                continue
            own = _fresh(f"{_scope(node)}.{what}", taken)
            taken.add(own)
            graph.initializer.append(_copy(initializers[source], own))
            node.input[position] = own
            claimed.add(own)
    kept = [n for n in graph.node if all(n is not r for r in replaced)]
    del graph.node[:]
    graph.node.extend(kept)
    return result


def warn_without_batch_norm(model: onnx.ModelProto, owner: str) -> None:
    """Warn that `batch_norm="train"` has nothing to train in a graph without BatchNormalization."""
    if any(node.op_type == "BatchNormalization" for node in model.graph.node):
        return
    warnings.warn(
        f"{owner}(batch_norm='train'): the graph has no BatchNormalization node, so there are no statistics to "
        "update: the exporter folded each BatchNorm into the Conv before it (its weights and bias hold the "
        f"statistics). To fine-tune with batch statistics, export the model with them: {EXPORT_WITH_STATISTICS}.",
        UserWarning,
        stacklevel=5,  # from_onnx's caller: from_onnx -> imported_model -> OnnxLayer -> here
    )


def _scope(node: onnx.NodeProto) -> str:
    """The node's name as a weight name's prefix: "/b1/BatchNormalization" -> "b1.BatchNormalization"."""
    return re.sub(r"[/:]+", ".", node.name or node.output[0]).strip(".") or "batch_norm"


def _fresh(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    return candidate


def _copy(tensor: onnx.TensorProto, name: str) -> onnx.TensorProto:
    copy = onnx.TensorProto()
    copy.CopyFrom(tensor)
    copy.name = name
    return copy
