"""The exact rewrites of a gradient graph (onnxtrain/autodiff/_rewrites.py): the same gradients bit for bit, and
only the patterns they may touch are touched."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from test_autodiff_nn_rules import lenet

from onnxtrain import autodiff
from onnxtrain.autodiff._rewrites import mask_pooled_relu_gradients, pool_convolutions_by_phase
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


def _phase_gradients(model: onnx.ModelProto, wrt: list[str], rewrite: bool) -> tuple[onnx.ModelProto, int]:
    """`model` with `<name>_grad` outputs, `pool_convolutions_by_phase` applied to its forward or not."""
    builder = GraphBuilder.from_model(model)
    count = pool_convolutions_by_phase(builder, wrt) if rewrite else 0
    with builder.scope("gradients"):
        grads = autodiff.backward(builder, "loss", wrt)
    for name, grad in grads.items():
        shape = next(t.dims for t in model.graph.initializer if t.name == name)
        builder.add_output(grad, f"{name}_grad", np.float32, list(shape))
    return builder.build("gradients"), count


@pytest.mark.parametrize("ties", [False, True], ids=["zero background", "positive ties between unlike patches"])
@pytest.mark.parametrize("size", [16, 15], ids=["even", "odd (MaxPool drops the last row)"])
def test_a_one_channel_convolution_pools_from_four_strided_ones(ties: bool, size: int) -> None:
    model, feeds, params = lenet(batch=6, size=size, filters=(4, 6), hidden=16)
    if ties:
        # Kernels that read their centre pixel only, over images of three grey levels: windows tie at a positive
        # maximum between pixels with other neighbours, so conv1's weight gradient depends on which one the
        # gradient goes to. It must be the window's first, as MaxPool's Indices name it.
        rng = np.random.default_rng(1)
        feeds["x"] = (rng.integers(0, 3, feeds["x"].shape) / 2).astype(np.float32)
        kernel = np.zeros((4, 1, 3, 3), np.float32)
        kernel[:, 0, 1, 1] = [1.0, 0.5, 2.0, 1.5]
        for name, value in (("conv1.w", kernel), ("conv1.b", np.full(4, 0.1, np.float32))):
            tensor = next(t for t in model.graph.initializer if t.name == name)
            tensor.CopyFrom(onnx.numpy_helper.from_array(value, name))
    plain, _ = _phase_gradients(model, params, rewrite=False)
    rewritten, count = _phase_gradients(model, params, rewrite=True)
    assert count == 1  # conv2 has 4 input channels and its input takes a gradient
    assert "MaxPool" in [n.op_type for n in rewritten.graph.node]  # conv2's
    assert [n.op_type for n in rewritten.graph.node].count("Conv") == 5
    expected, got = _run(plain, feeds), _run(rewritten, feeds)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6 * np.abs(value).max(), err_msg=name)
    assert np.abs(expected["conv1.w_grad"]).max() > 1e-3


def test_a_convolution_whose_input_takes_a_gradient_keeps_its_pooling() -> None:
    model, _, params = lenet(batch=2, size=8, filters=(1, 2), hidden=4)  # conv2 has one input channel too
    builder = GraphBuilder.from_model(model)
    assert pool_convolutions_by_phase(builder, params) == 1  # conv1 alone: conv2's input p1 takes a gradient
    # x differentiated as well: conv1 keeps its MaxPool too
    assert pool_convolutions_by_phase(GraphBuilder.from_model(model), [*params, "x"]) == 0


def test_other_poolings_keep_their_form() -> None:
    model, _, params = lenet(batch=2, size=8, filters=(2, 2), hidden=4)
    pool = next(n for n in model.graph.node if n.op_type == "MaxPool")
    for attribute in pool.attribute:
        if attribute.name == "strides":
            attribute.ints[:] = [1, 1]  # overlapping windows
    assert pool_convolutions_by_phase(GraphBuilder.from_model(model), params) == 0
