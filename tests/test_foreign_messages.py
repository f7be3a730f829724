"""What from_onnx's models say about inputs torch exports that they take otherwise: a bool mask (fed float32) and a
symbolic dimension besides the batch (fixed in the export, or pinned with onnx's update_model_dims)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.tools.update_model_dims import update_inputs_outputs_dims

from onnxtrain import from_onnx
from onnxtrain.errors import InvalidTypeError, UnsupportedError
from onnxtrain.optimizers import SGD


def masked_mean(x_shape: list) -> onnx.ModelProto:
    """x [N, 4, 3] and a bool padding mask pad [N, 4] (torch's src_key_padding_mask): the mean of the rows not
    padded, then a MatMul: logits [N, 2]."""
    nodes = [
        helper.make_node("Not", ["pad"], ["keep"]),
        helper.make_node("Cast", ["keep"], ["keep_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["keep_f", "last"], ["keep_3d"]),
        helper.make_node("Mul", ["x", "keep_3d"], ["kept"]),
        helper.make_node("ReduceSum", ["kept", "one"], ["total"], keepdims=0),
        helper.make_node("MatMul", ["total", "w"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "masked_mean",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape),
            helper.make_tensor_value_info("pad", TensorProto.BOOL, x_shape[:2]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        [
            numpy_helper.from_array(np.ones((3, 2), np.float32), "w"),
            numpy_helper.from_array(np.array([-1], np.int64), "last"),
            numpy_helper.from_array(np.array([1], np.int64), "one"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def test_a_bool_mask_given_to_fit_is_refused_saying_to_pass_it_as_float32():
    x = np.random.default_rng(0).normal(size=(4, 4, 3)).astype(np.float32)
    pad, y = np.array([[False, False, True, True]] * 4), np.array([0, 1, 0, 1])
    with from_onnx(masked_mean(["N", 4, 3])) as model:
        model.compile(optimizer=SGD(learning_rate=0.1), loss="softmax_cross_entropy_with_logits")
        with pytest.raises(
            InvalidTypeError,
            match=r"x\['pad'\] expects a float or integer array\. Received: dtype bool .*Pass a boolean mask as "
            r"float32 \(1\.0 for True\): x\['pad'\]\.astype\(np\.float32\)",
        ):
            model.fit({"x": x, "pad": pad}, y, verbose=0)
        model.fit({"x": x, "pad": pad.astype(np.float32)}, y, verbose=0)  # what the message says works


def test_a_symbolic_dimension_besides_the_batch_says_how_to_fix_or_pin_it():
    model = masked_mean(["N", "seq", 3])
    with pytest.raises(
        UnsupportedError,
        match=r"input 'x' has shape \['batch', 'seq', 3\]; every dimension but the first \(the batch\) must be a "
        r"number\. Export the model again with a fixed size for 'seq' .*onnx\.tools\.update_model_dims\."
        r"update_inputs_outputs_dims\(model, \{'x': \['batch', 'seq', 3\], \.\.\.\}",
    ):
        from_onnx(model)
    pinned = update_inputs_outputs_dims(model, {"x": ["N", 4, 3], "pad": ["N", 4]}, {"logits": ["N", 2]})
    with from_onnx(pinned) as imported:  # what the message says works
        assert imported.layers[-1].data_shapes == [(4, 3), (4,)]
