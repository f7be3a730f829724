"""Rewrites of the training graph ONNX Runtime's gradient builder emits, for ONNX Runtime's CPU kernels: each
`ReluGrad` (com.microsoft) as standard operators (`replace_relu_gradients`). Pure ONNX: nothing here imports
`onnxruntime.training`; `_ort_training.write_artifacts` applies it.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper


def replace_relu_gradients(model: onnx.ModelProto) -> None:
    """Rewrite each `ReluGrad(dY, Y)` (com.microsoft) of a training graph as `Mul(dY, Cast(Greater(Y, 0)))`.

    The same values: dY where Y > 0, else zero (-0.0 for a negative dY, which sums as 0.0). ONNX Runtime 1.19's
    kernel branches on the mask, which shuffled batches make unpredictable: rewritten, the ort-training step is
    faster, with bit-identical weights (docs/measurements.md; `tools/profile_step.py --engine ort-training
    [--keep-relugrad]`). The portable engine's ReLU rule is the same.
    """
    graph = model.graph
    if not any(node.op_type == "ReluGrad" for node in graph.node):
        return
    zero = "onnxtrain.relu_grad.zero"
    graph.initializer.append(onnx.numpy_helper.from_array(np.zeros((), np.float32), zero))
    nodes = []
    for node in graph.node:
        if node.op_type != "ReluGrad" or node.domain != "com.microsoft":
            nodes.append(node)
            continue
        grad_y, y = node.input
        base = f"{node.output[0]}.onnxtrain"  # output names are unique (SSA); node names need not be
        nodes += [
            onnx.helper.make_node("Greater", [y, zero], [f"{base}.positive"], name=f"{base}.greater"),
            onnx.helper.make_node(
                "Cast", [f"{base}.positive"], [f"{base}.mask"], name=f"{base}.cast", to=onnx.TensorProto.FLOAT
            ),
            onnx.helper.make_node("Mul", [grad_y, f"{base}.mask"], [node.output[0]], name=f"{base}.mul"),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
