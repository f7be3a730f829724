"""BatchNormalization's running statistics for `batch_norm="train"`: each node gets statistics of its own to update,
and a graph without BatchNormalization (folded into the Conv weights by the exporter) says so once."""

from __future__ import annotations

import warnings

import onnx

from onnxtrain.foreign._tied import fresh, identity_copies, names_in, scope, tensor_copy
from onnxtrain.foreign._user_frame import user_stacklevel

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
    read = {
        n.input[p] for n in graph.node if n.op_type == "BatchNormalization" for p, _ in STATISTICS if p < len(n.input)
    }
    taken = names_in(graph)
    identity_copies(graph, initializers, only=read)  # each Identity named for a node's own; it rebuilds graph.node
    nodes = [n for n in graph.node if n.op_type == "BatchNormalization"]
    claimed: set[str] = set()
    for node in nodes:
        for position, what in STATISTICS:
            if position >= len(node.input) or node.input[position] not in initializers:
                continue  # statistics computed by other nodes
            if node.input[position] not in claimed:
                claimed.add(node.input[position])
                continue
            own = fresh(f"{scope(node)}.{what}", taken)
            taken.add(own)
            graph.initializer.append(tensor_copy(initializers[node.input[position]], own))
            node.input[position] = own
            claimed.add(own)
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
        stacklevel=user_stacklevel(),  # from_onnx's caller, OnnxLayer's
    )
