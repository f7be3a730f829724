"""The Scan rule of RNN, GRU and LSTM (onnxtrain/autodiff/_recurrent_scan.py), which `backward` uses instead of the
unroll: its gradients against the unroll's (checked against float64 finite differences in
test_autodiff_recurrent.py) on the same graphs in float32, for every attribute row of that file's table, random
shapes, lengths, ops and directions, and the graphs Keras' layers emit; against float32 finite differences directly; a
gradient graph that does not grow with the sequence length; and a length known at run time only."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from gradcheck import Case, loss_model, rand
from onnx import helper
from test_autodiff_recurrent import CASES, FORWARD_ONLY, session

from onnxtrain import Sequential, autodiff, emit
from onnxtrain.autodiff._recurrent import is_recurrent, unroll_recurrent
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import GRU, LSTM, Bidirectional, Dense, Input, Layer, Masking, SimpleRNN

F32 = np.dtype(np.float32)
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def unrolled(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with every recurrent node unrolled: what `backward` did before the Scan rule."""
    builder = GraphBuilder.from_model(model)
    unroll_recurrent(builder, [n for n in builder.nodes if is_recurrent(n)])
    return builder.build("unrolled")


def gradients_both_ways(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray], wrt: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], onnx.ModelProto]:
    """(the gradients `autodiff.gradients` gives, those of the unrolled graph, the former's model)."""
    names = [f"{name}_grad" for name in wrt]
    scan = autodiff.gradients(model, wrt, "loss")
    ours = session(scan).run(names, feeds)
    theirs = session(autodiff.gradients(unrolled(model), wrt, "loss")).run(names, feeds)
    return dict(zip(wrt, ours, strict=True)), dict(zip(wrt, theirs, strict=True)), scan


def assert_same_gradients(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray], what: str) -> None:
    """Equal to float32 rounding: rtol 1e-4, and atol 1e-5 of the largest element (a sum over steps and batch)."""
    for name, expected in theirs.items():
        atol = 1e-5 * max(float(np.max(np.abs(expected), initial=0.0)), 1e-3)
        np.testing.assert_allclose(ours[name], expected, rtol=1e-4, atol=atol, err_msg=f"{what}: d loss / d {name}")


def op_types(model: onnx.ModelProto) -> list[str]:
    """Every node's op type, those of Scan and If bodies included."""

    def of(nodes: list[onnx.NodeProto]) -> list[str]:
        types = []
        for node in nodes:
            types.append(node.op_type)
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    types += of(list(attribute.g.node))
        return types

    return of(list(model.graph.node))


# --- the attribute table of test_autodiff_recurrent.py ------------------------------------------------------------
@pytest.mark.parametrize("case", CASES + FORWARD_ONLY, ids=str)
def test_scan_gradients_equal_the_unrolled_ones(case: Case):
    model, feeds, wrt, _ = loss_model(case, F32)
    ours, theirs, scan = gradients_both_ways(model, feeds, wrt)
    types = op_types(scan)
    if "p" in case.inputs:  # LSTM's peepholes: still unrolled
        assert case.op_type not in types and "Scan" not in types
    else:  # the op kept (layout 1 made layout 0 between Transposes), its backward Scans
        assert types.count(case.op_type) == 1 and "Scan" in types
    assert_same_gradients(ours, theirs, case.id)


def random_case(seed: int) -> Case:
    """Seeds 0-17 give each op in each direction twice, lengths 1, 2, 7 and 25; sizes, bias, initial states, the
    outputs that enter the loss and GRU's linear_before_reset drawn."""
    rng = np.random.default_rng(seed)
    op = ("LSTM", "GRU", "RNN")[seed % 3]
    direction = ("forward", "reverse", "bidirectional")[seed // 3 % 3]
    steps = (1, 2, 7, 25)[seed % 4]
    batch, features, hidden = (int(v) for v in rng.integers(1, 6, size=3))
    directions, gates = 2 if direction == "bidirectional" else 1, GATES[op]
    initial = bool(rng.random() < 0.5)
    inputs: dict[str, np.ndarray | None] = {
        "x": rand(steps, batch, features, seed=seed),
        "w": rand(directions, gates * hidden, features, seed=seed + 1),
        "r": rand(directions, gates * hidden, hidden, seed=seed + 2),
        "b": rand(directions, 2 * gates * hidden, seed=seed + 3) if rng.random() < 0.7 else None,
        "sequence_lens": None,
        "initial_h": rand(directions, batch, hidden, seed=seed + 4) if initial else None,
    }
    if op == "LSTM":
        inputs["initial_c"] = rand(directions, batch, hidden, seed=seed + 5) if initial else None
    while inputs[list(inputs)[-1]] is None:
        inputs.pop(list(inputs)[-1])
    outputs = 3 if op == "LSTM" else 2
    read = tuple(int(i) for i in np.flatnonzero(rng.random(outputs) < 0.6)) or (0,)
    attributes: dict[str, object] = {"hidden_size": hidden, "direction": direction}
    if op == "GRU":
        attributes["linear_before_reset"] = int(rng.integers(0, 2))
    case_id = f"{op} {direction} T={steps} B={batch} I={features} H={hidden} reads {read} {attributes}"
    return Case(case_id, op, inputs, attributes, opset=17, num_outputs=outputs, loss_outputs=read)


@pytest.mark.parametrize("case", [random_case(seed) for seed in range(18)], ids=str)
def test_scan_gradients_equal_the_unrolled_ones_on_random_shapes(case: Case):
    model, feeds, wrt, _ = loss_model(case, F32)
    ours, theirs, _ = gradients_both_ways(model, feeds, wrt)
    assert_same_gradients(ours, theirs, case.id)


# --- Keras' layers -------------------------------------------------------------------------------------------
KERAS_FORMS: dict[str, tuple[Layer, ...]] = {
    "LSTM": (LSTM(3),),
    "LSTM go_backwards, return_sequences": (LSTM(3, go_backwards=True, return_sequences=True),),
    "GRU reset_after": (GRU(3, return_sequences=True), GRU(2)),
    "GRU reset_after=False, go_backwards, no bias": (GRU(3, reset_after=False, go_backwards=True, use_bias=False),),
    "SimpleRNN relu": (SimpleRNN(3, activation="relu"),),
    "Bidirectional LSTM": (Bidirectional(LSTM(3, return_sequences=True)),),
    "Bidirectional GRU sum": (Bidirectional(GRU(2), merge_mode="sum"),),
}


@pytest.mark.parametrize("form", list(KERAS_FORMS))
def test_keras_layers_train_through_the_scan_rule_as_through_the_unroll(form: str):
    model = Sequential.of(Input(6, 4), *KERAS_FORMS[form], Dense(2))
    forward = emit.loss_model(model.layers, "mse")
    wrt = list(model.get_weights())
    rng = np.random.default_rng(0)
    feeds = {  # a batch of 5: the symbolic dimension
        value.name: rng.normal(size=[d.dim_value or 5 for d in value.type.tensor_type.shape.dim]).astype(F32)
        for value in forward.graph.input
    }
    ours, theirs, scan = gradients_both_ways(forward, feeds, wrt)
    assert "Scan" in op_types(scan)
    assert_same_gradients(ours, theirs, form)


@pytest.mark.slow
@pytest.mark.parametrize("form", list(KERAS_FORMS))
def test_masked_keras_layers_train_through_the_scan_rule_as_through_the_unroll(form: str):
    """Masking(0.0) before the layers, steps zeroed before the data, after it and between: each recurrent node reads
    sequence_lens (`layers/_masked_recurrence.py`), which the Scan rule and the unroll both take."""
    forms = [Layer.from_config(layer.serialize()) for layer in KERAS_FORMS[form]]
    model = Sequential.of(Input(6, 4), Masking(), *forms, Dense(2))
    forward = emit.loss_model(model.layers, "mse")
    kept = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 0, 0, 1, 1, 0], [1] * 6, [0] * 5 + [1]], F32)
    rng = np.random.default_rng(1)
    labels = [d.dim_value or 5 for d in forward.graph.input[1].type.tensor_type.shape.dim]  # masked where [5, 6, 2]
    feeds = {"input": rng.normal(size=(5, 6, 4)).astype(F32) * kept[..., None], "labels": rng.normal(size=labels)}
    feeds["labels"] = feeds["labels"].astype(F32)
    ours, theirs, scan = gradients_both_ways(forward, feeds, list(model.get_weights()))
    assert "Scan" in op_types(scan) and "TopK" in op_types(scan)
    assert_same_gradients(ours, theirs, form)


# --- finite differences of the op itself -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "case", [c for c in CASES if c.id in ("LSTM clip", "GRU bidirectional, initial state", "RNN reverse")], ids=str
)
def test_scan_gradients_match_float32_finite_differences_of_the_op(case: Case):
    """Along a random direction per input, through ONNX Runtime's own kernel (it has no float64 form)."""
    model, feeds, wrt, _ = loss_model(case, F32)
    names = [f"{name}_grad" for name in wrt]
    analytic = dict(zip(wrt, session(autodiff.gradients(model, wrt, "loss")).run(names, feeds), strict=True))
    forward, rng, eps = session(model), np.random.default_rng(1), 1e-2
    for name in wrt:
        direction = rng.normal(size=feeds[name].shape).astype(F32)
        losses = [
            float(forward.run(["loss"], {**feeds, name: feeds[name] + sign * eps * direction})[0]) for sign in (1, -1)
        ]
        numeric = (losses[0] - losses[1]) / (2 * eps)
        assert float((analytic[name] * direction).sum()) == pytest.approx(numeric, rel=1e-2, abs=1e-3), name


# --- graph size and lengths known at run time ------------------------------------------------------------------
def sequence_model(op: str, steps: int | str, direction: str = "bidirectional") -> onnx.ModelProto:
    """`op` over x [steps, batch, 3] (hidden 4, bias, initial states): loss = sum(Y * Y) + sum(the last state)."""
    directions, gates, rng = 2 if direction == "bidirectional" else 1, GATES[op], np.random.default_rng(2)
    weights = {
        "w": (directions, gates * 4, 3),
        "r": (directions, gates * 4, 4),
        "b": (directions, 2 * gates * 4),
        "h0": (directions, 2, 4),
        "c0": (directions, 2, 4),
    }
    if op != "LSTM":
        del weights["c0"]
    initializers = [
        onnx.numpy_helper.from_array(rng.normal(size=shape).astype(F32), name) for name, shape in weights.items()
    ]
    last = "y_c" if op == "LSTM" else "y_h"
    nodes = [
        helper.make_node(
            op,
            ["x", "w", "r", "b", "", "h0", *(["c0"] if op == "LSTM" else [])],
            ["y", "y_h", "y_c"][: 2 + (op == "LSTM")],
            hidden_size=4,
            direction=direction,
        ),
        helper.make_node("Mul", ["y", "y"], ["y_squared"]),
        helper.make_node("ReduceSum", ["y_squared"], ["y_sum"], keepdims=0),
        helper.make_node("ReduceSum", [last], ["last_sum"], keepdims=0),
        helper.make_node("Add", ["y_sum", "last_sum"], ["loss"]),
    ]
    graph = helper.make_graph(
        nodes,
        f"{op.lower()}_sequence",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [steps, 2, 3])],
        [helper.make_tensor_value_info("loss", onnx.TensorProto.FLOAT, [])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.slow
@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_the_gradient_graph_does_not_grow_with_the_sequence_length(op: str):
    wrt = ["x", "w", "r", "b", "h0"]
    short, long = (op_types(autodiff.gradients(sequence_model(op, steps), wrt)) for steps in (3, 60))
    assert len(short) == len(long) and "Scan" in short
    assert len(op_types(autodiff.gradients(unrolled(sequence_model(op, 60)), wrt))) > 10 * len(long)


@pytest.mark.parametrize(("op", "direction"), [("LSTM", "bidirectional"), ("GRU", "reverse"), ("RNN", "forward")])
def test_a_sequence_length_known_at_run_time_only_trains(op: str, direction: str):
    wrt = ["x", "w", "r", "b", "h0", *(["c0"] if op == "LSTM" else [])]
    names = [f"{name}_grad" for name in wrt]
    dynamic = session(autodiff.gradients(sequence_model(op, "steps", direction), wrt))
    for steps in (1, 4, 9):
        x = np.random.default_rng(steps).normal(size=(steps, 2, 3)).astype(F32)
        ours = dict(zip(wrt, dynamic.run(names, {"x": x}), strict=True))
        unroll = session(autodiff.gradients(unrolled(sequence_model(op, steps, direction)), wrt))
        theirs = dict(zip(wrt, unroll.run(names, {"x": x}), strict=True))
        assert_same_gradients(ours, theirs, f"{op} {direction} at {steps} steps")
