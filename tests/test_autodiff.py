"""onnxtrain.autodiff: the gradients() and backward() entry points, what gets differentiated (consumers summed,
frozen and shape-only parts skipped), its errors, and the tutorial MLP against the portable engine's hand-written
backward. The per-op rules are in test_autodiff_rules.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
from gradcheck import torch_flatten_from_axis_2
from onnx import TensorProto, helper, numpy_helper

from onnxtrain import Sequential, autodiff, emit, losses, optimizers
from onnxtrain.autodiff import RULES, GradientContext
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.portable._graphs import ParameterInputBuilder, gradient, gradient_model, model_parameters

SCE = losses.get("softmax_cross_entropy_with_logits")
RNG = np.random.default_rng(5)


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))


def graph(nodes, inputs, initializers=(), outputs=("loss",), opset=17) -> onnx.ModelProto:
    """A model of `nodes`; inputs are (name, shape) float32 graph inputs, outputs float32 (`loss` a scalar, the others
    of unknown shape)."""
    model = helper.make_model(
        helper.make_graph(
            nodes,
            "test",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, [] if n == "loss" else None) for n in outputs],
            [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in initializers],
        ),
        opset_imports=[helper.make_opsetid("", opset)],
    )
    model.ir_version = 8 if opset <= 17 else 9
    return model


def mlp(seed: int = 12) -> Sequential:
    return Sequential.of(Input(28, 28, 1), Flatten(), Dense(300), Dense(100), Dense(10), seed=seed)


def tutorial_batch(size: int = 32) -> dict[str, np.ndarray]:
    return {
        "input": RNG.random((size, 28, 28, 1), dtype=np.float32),
        "labels": RNG.integers(0, 10, size).astype(np.int64),
    }


# --- gradients() --------------------------------------------------------------------------------------------------
def test_gradients_adds_one_checked_output_per_name_with_its_shape_and_dtype():
    w = RNG.normal(size=(3, 2)).astype(np.float32)
    model = graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["y"]),
            helper.make_node("ReduceSum", ["y"], ["loss"], keepdims=0),
        ],
        [("x", [4, 3])],
        [("w", w)],
    )
    result = autodiff.gradients(model, ["w", "x"])
    onnx.checker.check_model(result, full_check=True)
    outputs = {o.name: o for o in result.graph.output}
    assert list(outputs) == ["loss", "w_grad", "x_grad"]
    assert [d.dim_value for d in outputs["w_grad"].type.tensor_type.shape.dim] == [3, 2]
    assert outputs["x_grad"].type.tensor_type.elem_type == TensorProto.FLOAT
    x = RNG.normal(size=(4, 3)).astype(np.float32)
    values = run(result, {"x": x})
    np.testing.assert_allclose(values["w_grad"], np.repeat(x.sum(0)[:, None], 2, axis=1), rtol=1e-6)
    np.testing.assert_allclose(values["x_grad"], np.repeat(w.sum(1)[None], 4, axis=0), rtol=1e-6)
    assert {n.domain for n in result.graph.node} == {""}


def test_the_gradients_of_several_consumers_are_summed_by_one_sum():
    # loss = sum(x * x + exp(x) + x): three consumers of x (Mul reads it twice)
    model = graph(
        [
            helper.make_node("Mul", ["x", "x"], ["sq"]),
            helper.make_node("Exp", ["x"], ["e"]),
            helper.make_node("Sum", ["sq", "e", "x"], ["s"]),
            helper.make_node("ReduceSum", ["s"], ["loss"], keepdims=0),
        ],
        [("x", [2, 3])],
    )
    result = autodiff.gradients(model, ["x"])
    sums = [n for n in result.graph.node if n.op_type == "Sum" and n.output[0] != "s"]
    assert len(sums) == 1 and len(sums[0].input) == 4
    x = RNG.normal(size=(2, 3)).astype(np.float32)
    np.testing.assert_allclose(run(result, {"x": x})["x_grad"], 2 * x + np.exp(x) + 1, rtol=1e-5)


def test_loss_model_takes_the_losses_compile_takes():
    model = mlp()
    made = [
        emit.loss_model(model.layers, loss)
        for loss in (SCE, losses.Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, "softmax_cross_entropy_with_logits")
    ]
    assert made[0] == made[1] == made[2]


def test_frozen_and_unreachable_parts_are_not_differentiated():
    # y = relu(x @ w1) @ w2; only w2 trains, so nothing flows into the first layer; `unused` gets zeros.
    model = graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"]),
            helper.make_node("Relu", ["h"], ["a"]),
            helper.make_node("MatMul", ["a", "w2"], ["y"]),
            helper.make_node("Shrink", ["y"], ["not_on_the_path"]),  # no rule, but no gradient needs it
            helper.make_node("ReduceSum", ["y"], ["loss"], keepdims=0),
        ],
        [("x", [4, 3])],
        [("w1", RNG.normal(size=(3, 5))), ("w2", RNG.normal(size=(5, 2))), ("unused", np.ones((2, 2)))],
        outputs=("loss", "not_on_the_path"),
    )
    result = autodiff.gradients(model, ["w2", "unused"])
    backward_ops = [n.op_type for n in result.graph.node[len(model.graph.node) :]]
    assert "Relu" not in backward_ops and "Greater" not in backward_ops  # no Relu gradient
    assert backward_ops.count("Gemm") + backward_ops.count("MatMul") == 1  # w2's gradient only
    values = run(result, {"x": np.ones((4, 3), np.float32)})
    np.testing.assert_array_equal(values["unused_grad"], np.zeros((2, 2)))


def test_shape_computations_are_not_differentiated():
    # Reshape's target is computed from x's shape (Shape, Gather, Concat: integer values, no rules needed)
    model = graph(
        [
            helper.make_node("Shape", ["x"], ["shape"]),
            helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
            helper.make_node("Concat", ["batch", "minus_one"], ["target"], axis=0),
            helper.make_node("Reshape", ["x", "target"], ["flat"]),
            helper.make_node("Mul", ["flat", "flat"], ["sq"]),
            helper.make_node("ReduceSum", ["sq"], ["loss"], keepdims=0),
        ],
        [("x", [2, 3, 4])],
    )
    for name, value in (("zero", [0]), ("minus_one", [-1])):
        model.graph.initializer.append(numpy_helper.from_array(np.array(value, np.int64), name))
    result = autodiff.gradients(model, ["x"])
    added = [n.op_type for n in result.graph.node[len(model.graph.node) :]]
    assert "Gather" not in added and "Concat" not in added
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(run(result, {"x": x})["x_grad"], 2 * x, rtol=1e-6)


def test_broadcasting_with_unknown_dims_is_undone_at_run_time():
    model = graph(
        [helper.make_node("Add", ["a", "b"], ["y"]), helper.make_node("ReduceSum", ["y"], ["loss"], keepdims=0)],
        [("a", ["n", "m"]), ("b", ["k"])],
    )
    result = autodiff.gradients(model, ["a", "b"])
    for b_size in (3, 1):
        values = run(result, {"a": np.ones((2, 3), np.float32), "b": np.ones(b_size, np.float32)})
        np.testing.assert_array_equal(values["b_grad"], np.full(b_size, 6.0 / b_size))
        np.testing.assert_array_equal(values["a_grad"], np.ones((2, 3)))


def test_matching_static_shapes_emit_no_reduction():
    model = graph(
        [helper.make_node("Add", ["a", "b"], ["y"]), helper.make_node("ReduceSum", ["y"], ["loss"], keepdims=0)],
        [("a", ["n", 3]), ("b", ["n", 3])],
    )
    added = [n.op_type for n in autodiff.gradients(model, ["a", "b"]).graph.node[2:]]
    # the seed expanded over y, which Add passes on as it is to both (the second output a copy)
    assert added == ["Constant", "Shape", "Expand", "Identity"]


# --- errors -------------------------------------------------------------------------------------------------------
def sum_of(op: str, **attributes) -> onnx.ModelProto:
    return graph(
        [
            helper.make_node(op, ["x"], ["y"], name="my_node", **attributes),
            helper.make_node("ReduceSum", ["y"], ["loss"], keepdims=0),
        ],
        [("x", [2, 3])],
        opset=20,
    )


@pytest.mark.parametrize(
    ("model", "wrt", "loss", "error", "match"),
    [
        (
            sum_of("Shrink"),
            ["x"],
            "loss",
            UnsupportedError,
            r"No gradient rule for op 'Shrink'.*node 'my_node' computes 'y', which the loss 'loss' depends on, and "
            r"the gradient of 'x' needs it",
        ),
        (
            sum_of("Relu"),
            ["w"],
            "loss",
            InvalidArgumentError,
            r"gradients\(wrt=\.\.\.\).*Received names not in the graph: \['w'\]",
        ),
        (sum_of("Relu"), "x", "loss", InvalidArgumentError, r"expects a sequence of names. Received: wrt='x'"),
        (
            sum_of("Relu"),
            ["x"],
            "total",
            InvalidArgumentError,
            r"gradients\(loss=\.\.\.\).*such as one of its outputs 'loss'.*total",
        ),
        (sum_of("Relu"), ["x"], "y", ShapeError, r"The loss 'y' must be a scalar .*Received: shape \(2, 3\)"),
        (
            sum_of("Gelu", approximate="erf"),
            ["x"],
            "loss",
            UnsupportedError,
            r"No gradient for Gelu node 'my_node' with approximate='erf' \(expected 'none' or 'tanh'\)",
        ),
    ],
    ids=["no rule", "unknown wrt", "wrt string", "unknown loss", "loss not scalar", "unsupported attribute"],
)
def test_bad_calls_say_what_was_received(model, wrt, loss, error, match):
    with pytest.raises(error, match=match):
        autodiff.gradients(model, wrt, loss)


def test_reduce_with_run_time_axes_and_no_keepdims_is_refused_by_name():
    model = graph(
        [
            helper.make_node("ReduceSum", ["x", "axes"], ["y"], name="sum_axes", keepdims=0),
            helper.make_node("ReduceSum", ["y"], ["loss"], keepdims=0),
        ],
        [("x", [2, 3])],
    )
    model.graph.input.append(helper.make_tensor_value_info("axes", TensorProto.INT64, [1]))
    with pytest.raises(
        UnsupportedError,
        match=r"ReduceSum node 'sum_axes' with axes=\"<run-time value 'axes'>\" \(keepdims=0 needs constant",
    ):
        autodiff.gradients(model, ["x"])


# --- backward() inside a builder ----------------------------------------------------------------------------------
def test_backward_differentiates_what_a_parameter_input_builder_holds():
    w = RNG.normal(size=(3, 2)).astype(np.float32)
    b = ParameterInputBuilder({"dense.kernel": w}, 17, 8)
    x = b.add_input("x", np.float32, (None, 3))
    y = b.node("Tanh", [b.node("MatMul", [x, "dense.kernel"])])
    loss = b.reduce("ReduceMean", b.node("Mul", [y, y]), None, keepdims=False)
    grads = autodiff.backward(b, loss, ["dense.kernel"])
    b.add_output(loss, "loss", np.float32, ())
    b.add_output(grads["dense.kernel"], "grad", np.float32, (3, 2))
    xs = RNG.normal(size=(4, 3)).astype(np.float32)
    values = run(b.build(), {"x": xs, "dense.kernel": w})
    t = np.tanh(xs @ w)
    np.testing.assert_allclose(values["grad"], xs.T @ (2 * t * (1 - t * t) / t.size), rtol=1e-5)


def test_a_rule_can_add_an_optional_output_to_the_forward_node(monkeypatch):
    # TopK's rule reads the forward's Indices; here a stand-in rule for Dropout asks for the mask the node left out.
    def dropout_with_mask(ctx: GradientContext) -> list[str | None]:
        mask = ctx.forward_output(1)
        return [ctx.emit("Mul", [ctx.grad(), ctx.cast_like(mask, ctx.input(0))])]

    from onnxtrain.autodiff import _rules

    _rules.lookup("", "Relu")  # loads the table before it is patched
    monkeypatch.setitem(RULES, ("", "Dropout"), dropout_with_mask)
    model = graph(
        [helper.make_node("Dropout", ["x"], ["y"]), helper.make_node("ReduceSum", ["y"], ["loss"], keepdims=0)],
        [("x", [2, 3])],
    )
    result = autodiff.gradients(model, ["x"])
    dropout = next(n for n in result.graph.node if n.op_type == "Dropout")
    assert len(dropout.output) == 2 and dropout.output[1]
    np.testing.assert_array_equal(run(result, {"x": np.ones((2, 3), np.float32)})["x_grad"], np.ones((2, 3)))


def test_from_model_adopts_the_model_and_claims_its_names():
    model = sum_of("Relu")
    b = GraphBuilder.from_model(model)
    assert (b.opset, b.ir_version) == (20, 9) and [n.op_type for n in b.nodes] == ["Relu", "ReduceSum"]
    assert b.unique_name("y") == "y_1"
    types = b.value_types()
    assert [d.dim_value for d in types["y"].tensor_type.shape.dim] == [2, 3]


# --- the tutorial MLP ---------------------------------------------------------------------------------------------
def test_the_tutorial_mlp_gets_the_hand_written_backward_s_gradients():
    model = mlp()
    layers = emit.graph_layers(model.layers, SCE)
    parameters = model_parameters(layers)
    ours = autodiff.gradients(emit.loss_model(model.layers, SCE), list(parameters))
    theirs = gradient_model(model.layers, SCE, optimizers.get("adam"))
    batch = tutorial_batch()
    new = run(ours, batch)
    old = run(theirs, {**batch, **{k: v.astype(np.float32) for k, v in parameters.items()}})
    for name in parameters:
        np.testing.assert_allclose(new[f"{name}_grad"], old[gradient(name)], rtol=1e-6, atol=1e-6)


def test_the_tutorial_mlp_backward_is_what_the_hand_written_one_emits():
    # Gemm with transA for kernels, MatMul(ones[batch], dz) for biases, (softmax - one_hot) / batch for the loss,
    # the ReLU mask from the output; no input gradient, no ReduceSum, no Transpose, no Identity; one batch size.
    model = mlp()
    ours = autodiff.gradients(emit.loss_model(model.layers, SCE), list(model_parameters(model.layers)))
    added = [n for n in ours.graph.node[7:]]
    ops = [n.op_type for n in added]
    assert {op: ops.count(op) for op in set(ops)} == {
        "Softmax": 1, "Constant": 4, "OneHot": 1, "Sub": 1, "Shape": 1, "Gather": 1, "Cast": 3, "Div": 1,
        "Gemm": 5, "ConstantOfShape": 1, "MatMul": 3, "Greater": 2, "Mul": 2,
    }  # fmt: skip
    kernel_grads = [n for n in added if n.op_type == "Gemm" and n.output[0].endswith("kernel_grad")]
    assert [helper.get_attribute_value(a) for n in kernel_grads for a in n.attribute] == [1, 1, 1]  # transA


def small_model(activation: str, last: str = "linear") -> Sequential:
    return Sequential.of(Input(4, 3), Flatten(), Dense(6, activation=activation), Dense(3, activation=last), seed=4)


def compare_with_the_portable_engine(model: Sequential, loss: losses.Loss, labels: np.ndarray) -> None:
    parameters = model_parameters(emit.graph_layers(model.layers, loss))
    ours = autodiff.gradients(emit.loss_model(model.layers, loss), list(parameters))
    theirs = gradient_model(model.layers, loss, optimizers.get("sgd"))
    batch = {"input": RNG.normal(size=(5, 4, 3)).astype(np.float32), "labels": labels}
    new = run(ours, batch)
    old = run(theirs, {**batch, **{k: v.astype(np.float32) for k, v in parameters.items()}})
    for name in parameters:
        np.testing.assert_allclose(new[f"{name}_grad"], old[gradient(name)], rtol=2e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "selu",
                                        "gelu", "swish"])  # fmt: skip
def test_every_activation_gets_the_portable_engine_s_gradients(activation):
    labels = RNG.integers(0, 3, 5).astype(np.int64)
    compare_with_the_portable_engine(small_model(activation), SCE, labels)


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "binary_crossentropy"])
def test_every_loss_gets_the_portable_engine_s_gradients(loss):
    last = "sigmoid" if loss == "binary_crossentropy" else "linear"
    labels = RNG.integers(0, 2, (5, 3)).astype(np.float32) if last == "sigmoid" else RNG.normal(size=(5, 3))
    compare_with_the_portable_engine(small_model("tanh", last), losses.get(loss), labels.astype(np.float32))


@pytest.mark.slow  # a fresh interpreter: ~1 s
def test_the_rules_table_is_filled_on_import() -> None:
    """`onnxtrain.autodiff.RULES` is the whole table from the import on (docs/autodiff.md), in a fresh interpreter."""
    code = "import onnxtrain.autodiff as a; print(len(a.RULES), ('', 'Relu') in a.RULES, ('', 'Gemm') in a.RULES)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    count, relu, gemm = result.stdout.split()
    assert int(count) > 50 and relu == gemm == "True"


# --- shapes hidden by a shape computed at run time ------------------------------------------------------------
def flattened_conv(batch: int | str, opset: int) -> onnx.ModelProto:
    """x [batch, 3, 4, 4] -> Reshape(x, Concat(Shape(x)[:2], [-1])) (torch's x.flatten(2), as TorchScript exports it)
    -> Conv1d -> ReduceSum: loss. ONNX shape inference gives the Conv no input shape at opset 13, and at opset 17
    leaves its spatial dim unknown where the batch is symbolic."""
    nodes = [
        *torch_flatten_from_axis_2("x", "flat", name="/flatten/Reshape"),
        helper.make_node("Conv", ["flat", "w"], ["y"], name="/conv/Conv"),
        helper.make_node("ReduceSum", ["y"], ["loss"], keepdims=0),
    ]
    return graph(nodes, [("x", [batch, 3, 4, 4])], [("w", RNG.normal(size=(2, 3, 1)))], opset=opset)


def test_a_shape_hidden_from_static_inputs_suggests_fold_constants_which_then_works():
    model = flattened_conv(2, opset=13)
    with pytest.raises(UnsupportedError, match=r"spatial shape=None .*fold_constants\(model, keep=") as caught:
        autodiff.gradients(model, ["x", "w"])
    assert "static image size" not in str(caught.value)  # the graph input has one
    folded = autodiff.fold_constants(model, keep=["x", "w"])  # a graph input, as gradients(wrt=...) takes it
    x = RNG.normal(size=(2, 3, 4, 4)).astype(np.float32)
    grads = run(autodiff.gradients(folded, ["x", "w"]), {"x": x})
    np.testing.assert_allclose(
        grads["w_grad"], np.broadcast_to(x.reshape(2, 3, 16).sum((0, 2))[None, :, None], (2, 3, 1)), rtol=1e-5
    )


def test_fold_constants_refuses_a_name_that_is_neither_initializer_nor_graph_input():
    with pytest.raises(InvalidArgumentError, match=r"Received: \['nope'\], which name no initializer and no graph"):
        autodiff.fold_constants(flattened_conv(2, opset=13), keep=["w", "x", "nope"])


def test_a_spatial_dim_hidden_by_the_batch_shows_the_spatial_dims_and_how_to_export_them():
    with pytest.raises(
        UnsupportedError,
        match=r"Conv node '/conv/Conv' with spatial shape=\('unk__0',\) \(X has shape \('batch', 3, 'unk__0'\);.*"
        r"export that reshape with constant dims",
    ) as caught:
        autodiff.gradients(flattened_conv("batch", opset=17), ["w"])
    assert "static image size" not in str(caught.value) and "fold_constants" not in str(caught.value)


def constant(name: str, values, dtype=np.int64) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(values, dtype)))


def resize_by_computed_scales(scales_from: str) -> onnx.ModelProto:
    """x [1, 1, 2, 2] * w, Resize (nearest) to 4x4 by scales computed at run time: from Shape(x), as TorchScript
    exports F.interpolate without constant folding ("shapes"), or read from a graph input ("input")."""
    nodes = [helper.make_node("Mul", ["x", "w"], ["xw"])]
    inputs = [("x", [1, 1, 2, 2])]
    if scales_from == "shapes":
        nodes += [
            helper.make_node("Shape", ["x"], ["shape"]),
            constant("two", [2]),
            constant("four", [4]),
            helper.make_node("Slice", ["shape", "two", "four"], ["spatial"]),
            helper.make_node("Cast", ["spatial"], ["spatial_f"], to=TensorProto.FLOAT),
            constant("target", [4.0, 4.0], np.float32),
            helper.make_node("Div", ["target", "spatial_f"], ["ratio"]),
            constant("ones", [1.0, 1.0], np.float32),
            helper.make_node("Concat", ["ones", "ratio"], ["scales"], axis=0),
        ]
    else:
        inputs.append(("scales", [4]))
    nodes += [
        helper.make_node("Resize", ["xw", "", "scales"], ["y"], name="/up/Resize", mode="nearest"),
        helper.make_node("ReduceSum", ["y"], ["loss"], keepdims=0),
    ]
    return graph(nodes, inputs, [("w", [[[[2.0]]]])])


def gather_after_mod_arithmetic() -> onnx.ModelProto:
    """x [batch, 4, 6] * w reshaped by Concat(Slice(Shape(x), 0, Mod(-1, 3)), [-1]) (TorchScript's
    nn.MultiheadAttention), then a Gather: shape inference does not evaluate Mod, so the Gather's data has no rank."""
    nodes = [
        constant("minus_one", [-1]),
        constant("three", [3]),
        helper.make_node("Mod", ["minus_one", "three"], ["end"]),
        constant("zero", [0]),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Slice", ["shape", "zero", "end"], ["head"]),
        helper.make_node("Concat", ["head", "minus_one"], ["target"], axis=0),
        helper.make_node("Mul", ["x", "w"], ["xw"]),
        helper.make_node("Reshape", ["xw", "target"], ["r"]),
        constant("index", 1),
        helper.make_node("Gather", ["r", "index"], ["g"], name="pick", axis=1),
        helper.make_node("ReduceSum", ["g"], ["loss"], keepdims=0),
    ]
    return graph(nodes, [("x", ["batch", 4, 6])], [("w", RNG.normal(size=6))])


@pytest.mark.parametrize(
    ("model", "refusal", "folds"),
    [
        (resize_by_computed_scales("shapes"), r"Resize node '/up/Resize' with scales='computed at run time'", True),
        (gather_after_mod_arithmetic(), r"Gather node 'pick' with rank=None", True),
        (resize_by_computed_scales("input"), r"Resize node '/up/Resize' with scales='computed at run time'", False),
    ],
    ids=["Resize scales from Shape (static batch)", "Gather after Mod (symbolic batch)", "scales a graph input"],
)
def test_a_form_only_run_time_shape_arithmetic_hides_suggests_fold_constants(model, refusal, folds):
    with pytest.raises(UnsupportedError, match=refusal) as caught:
        autodiff.gradients(model, ["w"])
    assert ("onnxtrain.autodiff.fold_constants(model, keep=" in str(caught.value)) == folds
    if not folds:
        return
    # Folded, it trains: the loss is linear in w, so central differences are exact but for rounding.
    shape = [d.dim_value or 3 for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = RNG.normal(size=shape).astype(np.float32)
    got = run(autodiff.gradients(autodiff.fold_constants(model, keep=["w"]), ["w"]), {"x": x})["w_grad"]
    w = next(t for t in model.graph.initializer if t.name == "w")
    start = numpy_helper.to_array(w).copy()
    numeric = np.zeros_like(start)
    for index in np.ndindex(start.shape):
        values = []
        for step in (0.01, -0.01):
            shifted = start.copy()
            shifted[index] += step
            w.CopyFrom(numpy_helper.from_array(shifted, "w"))
            values.append(float(run(model, {"x": x})["loss"]))
        numeric[index] = (values[0] - values[1]) / 0.02
    w.CopyFrom(numpy_helper.from_array(start, "w"))
    np.testing.assert_allclose(got, numeric, rtol=1e-3, atol=1e-3)
