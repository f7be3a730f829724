"""The exact rewrites of a gradient graph (onnxtrain/autodiff/_rewrites.py): the same gradients bit for bit, and
only the patterns they may touch are touched."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
from test_autodiff_nn_rules import lenet

from onnxtrain import autodiff
from onnxtrain.autodiff._rewrites import mask_pooled_relu_gradients
from onnxtrain.graph import GraphBuilder


def _gradients(model: onnx.ModelProto, wrt: list[str], rewrite: bool) -> tuple[onnx.ModelProto, int]:
    """`model` with `<name>_grad` outputs, as `autodiff.gradients` builds it, the rewrite applied or not."""
    builder = GraphBuilder.from_model(model)
    with builder.scope("gradients"):
        grads = autodiff.backward(builder, "loss", wrt)
        count = mask_pooled_relu_gradients(builder) if rewrite else 0
    for name, grad in grads.items():
        shape = next(t.dims for t in model.graph.initializer if t.name == name)
        builder.add_output(grad, f"{name}_grad", np.float32, list(shape))
    return builder.build("gradients"), count


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))


def test_relu_masks_move_before_the_pooling_gradient_bit_for_bit() -> None:
    # The LeNet's images have a zero background: whole pooling windows tie at ReLU's 0.
    model, feeds, params = lenet(batch=6, size=16, filters=(4, 6), hidden=16)
    plain, _ = _gradients(model, params, rewrite=False)
    rewritten, count = _gradients(model, params, rewrite=True)
    assert count == 2
    # Each conv's mask now reads the pooled output (p1, p2), not the ReLU's (r1, r2), and feeds its MaxUnpool.
    masked = [n.input[0] for n in rewritten.graph.node if n.op_type == "Greater"]
    assert "p1" in masked and "p2" in masked and "r1" not in masked and "r2" not in masked
    expected, got = _run(plain, feeds), _run(rewritten, feeds)
    assert expected.keys() == got.keys()
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    assert np.any(expected["conv1.w_grad"] != 0)


def test_a_relu_read_elsewhere_keeps_its_mask() -> None:
    # r1 also feeds the loss through a second path: its gradient is a Sum, not the MaxUnpool's alone.
    model, feeds, params = lenet(batch=4, size=12, filters=(3, 4), hidden=8)
    extra = [
        onnx.helper.make_node("ReduceMean", ["r1"], ["r1_mean"], keepdims=0),
        onnx.helper.make_node("Add", ["loss_pooled", "r1_mean"], ["loss"]),
    ]
    for node in model.graph.node:
        if node.output[0] == "loss":
            node.output[0] = "loss_pooled"
    model.graph.node.extend(extra)
    rewritten, count = _gradients(model, params, rewrite=True)
    assert count == 1  # conv2's pair alone
    plain, _ = _gradients(model, params, rewrite=False)
    expected, got = _run(plain, feeds), _run(rewritten, feeds)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
