"""Constant-folding of an exported graph's shape arithmetic by ONNX Runtime's basic optimizer, for the ranks and
shapes the gradient rules need that ONNX shape inference cannot propagate (`fold_constants`)."""

from __future__ import annotations

from collections.abc import Sequence

import onnx

from onnxtrain._runtime import optimized_by_ort
from onnxtrain.errors import InvalidArgumentError


def fold_constants(model: onnx.ModelProto, keep: Sequence[str]) -> onnx.ModelProto:
    """`model` after ONNX Runtime's basic graph optimizations (constant folding, redundant node elimination), with
    the initializers named in `keep` (the weights to differentiate) left as they are. `keep` may name graph inputs
    too (the `wrt` of `gradients`): nothing computed from a graph input is folded anyway.

    Exporters compute shapes at run time: torch.onnx's TorchScript export of `nn.MultiheadAttention` reshapes by
    `Concat(Slice(Shape(x), 0, Mod(-1, 3)), ...)`, and ONNX shape inference, which does not evaluate `Mod`, leaves
    the rank of what follows unknown, so `gradients()` refuses its Gather. ONNX Runtime folds the constant parts.
    The `keep` initializers are graph inputs while it optimizes, so nothing computed from them is folded into a new
    constant, and initializers again after. Imports of operator sets that no node uses (ONNX Runtime adds its own)
    are dropped.

    Example:
        >>> folded = fold_constants(exported, keep=trainable)
        >>> trained = gradients(folded, trainable, loss="loss")

    Raises:
        InvalidArgumentError: a `keep` name is neither an initializer nor a graph input of `model`, or ONNX Runtime
            refused the model.
    """
    kept = {t.name: t for t in model.graph.initializer if t.name in set(keep)}
    input_names = {v.name for v in model.graph.input}  # `gradients(wrt=...)` names them too; never folded
    missing = sorted(set(keep) - set(kept) - input_names)
    if missing:
        raise InvalidArgumentError(
            f"fold_constants(keep=...) expects initializers of the model. Received: {missing}, which name no "
            "initializer and no graph input (graph inputs may be named: they are never folded)"
        )
    opened = onnx.ModelProto.FromString(model.SerializeToString())
    others = [t for t in opened.graph.initializer if t.name not in kept]
    del opened.graph.initializer[:]
    opened.graph.initializer.extend(others)
    inputs = [onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in kept.values()]
    opened.graph.input.extend(inputs)

    try:
        folded = optimized_by_ort(opened)
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        raise InvalidArgumentError(f"ONNX Runtime could not optimize the model to fold its constants: {e}") from e

    names = set(kept)
    graph_inputs = [v for v in folded.graph.input if v.name not in names]
    del folded.graph.input[:]
    folded.graph.input.extend(graph_inputs)
    folded.graph.initializer.extend(kept.values())
    used = {node.domain for node in folded.graph.node} | {"", "ai.onnx"}
    imports = [o for o in folded.opset_import if o.domain in used]
    del folded.opset_import[:]
    folded.opset_import.extend(imports)
    folded.ir_version = model.ir_version
    return folded
