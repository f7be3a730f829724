"""The unrolling of RNN, GRU and LSTM nodes (onnxtrain/autodiff/_recurrent.py) that lets the rules differentiate
them: one table of attribute variants, each unrolled forward against ONNX Runtime's own kernel (float32) and the
gradients of the unrolled graph against float64 finite differences; and what is refused. The Scan rule that
`backward` uses for most of these forms is compared with the unroll in test_autodiff_recurrent_scan.py."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from gradcheck import Case, forward_model, loss_model, rand
from onnx import helper

from onnxtrain import autodiff
from onnxtrain.autodiff._recurrent import is_recurrent, unroll_recurrent
from onnxtrain.errors import UnsupportedError
from onnxtrain.graph import GraphBuilder

STEPS, BATCH, FEATURES, HIDDEN = 3, 2, 2, 2
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def recurrent(
    case_id: str,
    op: str,
    direction: str = "forward",
    bias: bool = True,
    initial: bool = False,
    peepholes: bool = False,
    layout: int = 0,
    read: tuple[int, ...] | None = None,
    **attributes: object,
) -> Case:
    """A row: `op` over X [steps, batch, features] (layout 0) with every input drawn; `read`: the outputs (0 Y,
    1 Y_h, 2 Y_c) that enter the loss (default: all)."""
    directions, gates = 2 if direction == "bidirectional" else 1, GATES[op]

    def batch_major(*shape: int) -> tuple[int, ...]:
        return (shape[1], shape[0], *shape[2:]) if layout else shape

    inputs: dict[str, np.ndarray | None] = {
        "x": rand(*batch_major(STEPS, BATCH, FEATURES), seed=1),
        "w": rand(directions, gates * HIDDEN, FEATURES, seed=2),
        "r": rand(directions, gates * HIDDEN, HIDDEN, seed=3),
        "b": rand(directions, 2 * gates * HIDDEN, seed=4) if bias else None,
        "sequence_lens": None,
        "initial_h": rand(*batch_major(directions, BATCH, HIDDEN), seed=5) if initial else None,
    }
    if op == "LSTM":
        inputs["initial_c"] = rand(*batch_major(directions, BATCH, HIDDEN), seed=6) if initial else None
        inputs["p"] = rand(directions, 3 * HIDDEN, seed=7) if peepholes else None
    while inputs[list(inputs)[-1]] is None:
        inputs.pop(list(inputs)[-1])
    extra = {"layout": 1} if layout else {}
    outputs = 3 if op == "LSTM" else 2
    return Case(
        case_id,
        op,
        inputs,
        {"hidden_size": HIDDEN, "direction": direction, **extra, **attributes},
        opset=14 if layout else 17,
        num_outputs=outputs,
        loss_outputs=read,
    )


CASES = [
    recurrent("LSTM", "LSTM"),
    recurrent("LSTM reverse", "LSTM", "reverse"),
    recurrent("LSTM bidirectional, initial states, peepholes", "LSTM", "bidirectional", initial=True, peepholes=True),
    recurrent("LSTM no bias", "LSTM", bias=False),
    recurrent("LSTM peepholes without initial states", "LSTM", peepholes=True),
    recurrent("LSTM clip", "LSTM", clip=0.7),
    recurrent("LSTM input_forget", "LSTM", input_forget=1),
    recurrent("LSTM activations", "LSTM", activations=["Tanh", "Relu", "Sigmoid"]),
    recurrent("LSTM layout 1", "LSTM", "bidirectional", initial=True, layout=1),
    recurrent("LSTM Y_h only", "LSTM", read=(1,)),
    recurrent("LSTM Y_c only", "LSTM", "reverse", initial=True, read=(2,)),
    recurrent("GRU", "GRU"),
    recurrent("GRU linear_before_reset", "GRU", linear_before_reset=1),
    recurrent("GRU linear_before_reset, no bias", "GRU", bias=False, linear_before_reset=1),
    recurrent("GRU reverse", "GRU", "reverse", linear_before_reset=1),
    recurrent("GRU bidirectional, initial state", "GRU", "bidirectional", initial=True),
    recurrent("GRU no bias", "GRU", bias=False),
    recurrent("GRU clip", "GRU", clip=0.7, linear_before_reset=1),
    recurrent("GRU activations per direction", "GRU", "bidirectional", activations=["Sigmoid", "Tanh", "Tanh", "Relu"]),
    recurrent("GRU layout 1", "GRU", initial=True, layout=1),
    recurrent("GRU Y only", "GRU", read=(0,)),
    recurrent("RNN", "RNN"),
    recurrent("RNN reverse", "RNN", "reverse"),
    recurrent("RNN bidirectional, initial state", "RNN", "bidirectional", initial=True),
    recurrent("RNN no bias", "RNN", bias=False),
    recurrent("RNN relu", "RNN", activations=["Relu"]),
    recurrent("RNN clip", "RNN", clip=0.5),
    recurrent("RNN layout 1", "RNN", "bidirectional", layout=1),
]
# ONNX Runtime has no float64 Softsign or Softplus: their rules' own rows check those gradients in float32.
FORWARD_ONLY = [
    recurrent(
        "GRU softsign, softplus", "GRU", "bidirectional", activations=["Sigmoid", "Softsign", "Softplus", "Tanh"]
    ),
    recurrent("RNN softplus, clip", "RNN", activations=["Softplus"], clip=0.5),
]


def unrolled(model: onnx.ModelProto) -> onnx.ModelProto:
    builder = GraphBuilder.from_model(model)
    assert unroll_recurrent(builder, [n for n in builder.nodes if is_recurrent(n)]) == 1
    result = builder.build("unrolled")
    assert not any(is_recurrent(n) for n in result.graph.node)
    return result


def session(model: onnx.ModelProto) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()  # no graph optimizations: the unrolled graphs start several times faster
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
    return session(model).run(names, feeds)


def ort_kernel_outputs(case: Case, feeds: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
    """The outputs of ONNX Runtime's own kernel: for layout 1, which its CPU kernels refuse, those of the same
    node in layout 0 on transposed inputs, transposed back."""
    if not case.attributes.get("layout"):
        return run(forward_model(case, np.dtype(np.float32))[0], feeds, names)
    swap = {"x": (1, 0, 2), "initial_h": (1, 0, 2), "initial_c": (1, 0, 2)}
    inputs = {k: (None if v is None else v.transpose(swap.get(k, range(v.ndim)))) for k, v in case.inputs.items()}
    attributes = {k: v for k, v in case.attributes.items() if k != "layout"}
    time_major = Case(case.id, case.op_type, inputs, attributes, num_outputs=case.num_outputs)
    time_major_feeds = {k: v.transpose(swap[k]) if k in swap else v for k, v in feeds.items()}
    outputs = run(forward_model(time_major, np.dtype(np.float32))[0], time_major_feeds, names)
    return [y.transpose(2, 0, 1, 3) if y.ndim == 4 else y.transpose(1, 0, 2) for y in outputs]


@pytest.mark.parametrize("case", CASES + FORWARD_ONLY, ids=str)
def test_unrolled_forward_matches_onnx_runtime_kernel(case: Case):
    model, feeds, _ = forward_model(case, np.dtype(np.float32))
    names = [o.name for o in model.graph.output]
    expected = ort_kernel_outputs(case, feeds, names)
    for name, got, want in zip(names, run(unrolled(model), feeds, names), expected, strict=True):
        assert got.shape == want.shape, (name, got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"{case.id}: output {name}")


# A tenth of a second to half a second each: a few rows of each op in the fast loop, the others marked slow.
FAST_GRADIENTS = {
    "LSTM",
    "LSTM bidirectional, initial states, peepholes",
    "LSTM Y_c only",
    "GRU",
    "GRU linear_before_reset",
    "GRU bidirectional, initial state",
    "RNN reverse",
    "RNN layout 1",
}


@pytest.mark.parametrize(
    "case", [c if c.id in FAST_GRADIENTS else pytest.param(c, marks=pytest.mark.slow) for c in CASES], ids=str
)
def test_unrolled_gradients_match_finite_differences(case: Case):
    """float64 central differences of the loss, computed by the unrolled forward (ONNX Runtime's recurrent kernels
    have no float64 form; the other test checks the unrolled forward against them in float32)."""
    dtype, eps = np.dtype(np.float64), 1e-6
    model, feeds, wrt, _ = loss_model(case, dtype)
    grad_model = autodiff.gradients(unrolled(model), wrt, "loss")
    assert not any(is_recurrent(n) for n in grad_model.graph.node)
    values = session(grad_model).run([f"{name}_grad" for name in wrt], feeds)
    analytic = dict(zip(wrt, values, strict=True))
    forward = session(unrolled(model))
    for name in wrt:
        numeric = np.zeros(feeds[name].shape)
        for index in np.ndindex(numeric.shape):
            losses = []
            for sign in (1, -1):
                shifted = feeds[name].copy()
                shifted[index] += sign * eps
                losses.append(float(forward.run(["loss"], {**feeds, name: shifted})[0]))
            numeric[index] = (losses[0] - losses[1]) / (2 * eps)
        np.testing.assert_allclose(
            analytic[name], numeric, rtol=1e-5, atol=1e-6, err_msg=f"{case.id}: d loss / d {name}"
        )


def lstm_model(
    x_shape: list[int | str], extra_inputs: list[str] | None = None, peepholes: bool = False, **attributes: object
) -> onnx.ModelProto:
    """LSTM(hidden 2) over x [steps, batch, 3], loss the sum of Y_h; `extra_inputs` ending in a name: an int32 graph
    input (sequence_lens); `peepholes`: an initializer P."""
    rng = np.random.default_rng(0)
    shapes = {"w": (1, 8, 3), "r": (1, 8, 2), **({"p": (1, 6)} if peepholes else {})}
    weights = [onnx.numpy_helper.from_array(rng.normal(size=v).astype(np.float32), k) for k, v in shapes.items()]
    if peepholes:
        extra_inputs = ["", "", "", "", "p"]
    node = helper.make_node(
        "LSTM", ["x", "w", "r", *(extra_inputs or [])], ["", "y_h"], "lstm_node", hidden_size=2, **attributes
    )
    reduce = helper.make_node("ReduceSum", ["y_h"], ["loss"], keepdims=0)
    inputs = [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x_shape)]
    if extra_inputs and extra_inputs[-1] and not peepholes:
        inputs.append(helper.make_tensor_value_info(extra_inputs[-1], onnx.TensorProto.INT32, [x_shape[1]]))
    graph = helper.make_graph([node, reduce], "lstm", inputs, [helper.make_tensor_value_info("loss", 1, [])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (  # peepholes are differentiated through the unrolled equations only
            lstm_model(["steps", "batch", 3], peepholes=True),
            r"Cannot unroll LSTM node 'lstm_node' .*its input X 'x' has shape \['steps', 'batch', 3\], and the "
            r"sequence length \(axis 0\) must be known",
        ),
        (lstm_model([4, 2, 3], activation_alpha=[0.1]), r"activation_alpha=\[0.1"),
        (
            lstm_model([4, 2, 3], activations=["Sigmoid", "LeakyRelu", "Tanh"]),
            r"activations=\['Sigmoid', 'LeakyRelu', 'Tanh'\] is not 3 of "
            r"\['HardSigmoid', 'Relu', 'Sigmoid', 'Softplus'",
        ),
    ],
)
def test_recurrent_nodes_it_cannot_differentiate_are_refused_by_name(model: onnx.ModelProto, message: str):
    with pytest.raises(UnsupportedError, match=message):
        autodiff.gradients(model, ["w", "r"])


def test_a_recurrent_node_off_the_gradient_path_stays_compact():
    model = lstm_model(["steps", "batch", 3])
    model.graph.node[1].output[0] = "lstm_sum"
    model.graph.input.append(helper.make_tensor_value_info("v", onnx.TensorProto.FLOAT, [2]))
    model.graph.node.append(helper.make_node("ReduceSum", ["v"], ["v_sum"], keepdims=0))
    model.graph.node.append(helper.make_node("Add", ["lstm_sum", "v_sum"], ["loss"]))
    result = autodiff.gradients(model, ["v"])  # neither x nor the LSTM's weights: it takes no gradient
    assert [n.op_type for n in result.graph.node].count("LSTM") == 1
    feeds = {"x": np.ones((4, 2, 3), np.float32), "v": np.ones(2, np.float32)}
    np.testing.assert_array_equal(run(result, feeds, ["v_grad"])[0], np.ones(2, np.float32))


def test_a_torch_style_lstm_with_a_symbolic_batch_trains():
    """What torch.onnx exports for nn.LSTM(batch_first=True): Transpose, LSTM with zero initial states, Squeeze; the
    batch symbolic, the sequence length static."""
    rng = np.random.default_rng(3)
    arrays = {
        "w": rng.normal(size=(1, 8, 3)),
        "r": rng.normal(size=(1, 8, 2)),
        "b": rng.normal(size=(1, 16)),
    }
    initializers = [onnx.numpy_helper.from_array(v.astype(np.float32), k) for k, v in arrays.items()]

    def ints(name: str, values: list[int] | int) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(np.array(values, np.int64)))

    nodes = [
        ints("zero", 0),
        ints("one", [1]),
        ints("hidden", [2]),
        helper.make_node("Transpose", ["input"], ["x"], perm=[1, 0, 2]),
        helper.make_node("Shape", ["input"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "zero"], ["batch_1d"]),
        helper.make_node("Concat", ["one", "batch_1d", "hidden"], ["zeros_shape"], axis=0),
        helper.make_node("ConstantOfShape", ["zeros_shape"], ["h0"]),
        helper.make_node("LSTM", ["x", "w", "r", "b", "", "h0", "h0"], ["y", "y_h", "y_c"], hidden_size=2),
        helper.make_node("Squeeze", ["y", "one"], ["y_squeezed"]),
        helper.make_node("ReduceMean", ["y_squeezed"], ["loss"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "torch_lstm",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["batch", 5, 3])],
        [helper.make_tensor_value_info("loss", onnx.TensorProto.FLOAT, [])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    result = autodiff.gradients(model, list(arrays))
    x = rng.normal(size=(4, 5, 3)).astype(np.float32)
    grads = dict(zip(arrays, run(result, {"input": x}, [f"{k}_grad" for k in arrays]), strict=True))
    eps = 1e-2
    for name, value in arrays.items():  # one float32 central difference per weight tensor, along a random direction
        direction = rng.normal(size=value.shape).astype(np.float32)
        losses = []
        for sign in (1, -1):
            shifted = [
                onnx.numpy_helper.from_array((v + sign * eps * direction if k == name else v).astype(np.float32), k)
                for k, v in arrays.items()
            ]
            del model.graph.initializer[:]
            model.graph.initializer.extend(shifted)
            losses.append(float(run(model, {"input": x}, ["loss"])[0]))
        numeric = (losses[0] - losses[1]) / (2 * eps)
        assert float((grads[name] * direction).sum()) == pytest.approx(numeric, rel=1e-2, abs=1e-4), name
