"""In-place updates: which `updated.*` outputs the graph proves safe to write over their inputs, and an engine that
writes them there giving bit for bit the weights of one that double-buffers everything.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import onnx
import pytest
from onnx import helper

from onnxtrain import Sequential, losses
from onnxtrain import optimizers as opt
from onnxtrain._runtime import Device
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.portable import PortableEngine, train_step_model
from onnxtrain.portable._graphs import UPDATED, TrainStepGraph
from onnxtrain.portable._in_place import in_place_updates

SCE = losses.get("softmax_cross_entropy_with_logits")
CPU = Device("cpu")
OPTIMIZERS = [
    opt.SGD(learning_rate=0.1),
    opt.Momentum(use_nesterov=True),
    opt.RMSProp(centered=True),
    opt.AdaDelta(),
    opt.AdaGrad(),
    opt.AdaGradDA(),
    opt.Adam(clip_norm=0.5, clip_value=0.2),
    opt.Adamax(),
    opt.Nadam(weight_decay=0.01),
    opt.Ftrl(learning_rate=0.1),
]


def mlp() -> Sequential:
    return Sequential.of(Input(4, 3), Flatten(), Dense(16), Dense(3, activation="linear"), seed=5)


def double_buffered(
    model: Sequential, optimizer: opt.Optimizer, monkeypatch: pytest.MonkeyPatch, device: Device = CPU
) -> PortableEngine:
    with monkeypatch.context() as patch:
        patch.setattr(TrainStepGraph, "in_place", property(lambda self: frozenset()))
        return PortableEngine(model.layers, SCE, optimizer, device=device, update="graph")


@pytest.mark.parametrize("device", [CPU, pytest.param(Device("cuda"), marks=pytest.mark.cuda)], ids=str)
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=repr)
def test_in_place_engine_matches_a_double_buffered_one_bit_for_bit(blobs, optimizer, device, monkeypatch):
    x, y = blobs
    # The graph's update (Adam could be fused on the CPU).
    fast = PortableEngine(mlp().layers, SCE, optimizer, device=device, update="graph")
    reference = double_buffered(mlp(), optimizer, monkeypatch, device)
    assert fast.in_place and not reference.in_place
    bad = x[:30].copy()
    bad[0, 0, 0] = np.nan
    for step in range(12):
        xb, yb = (bad, y[:30]) if step == 5 else (x[step * 10 : step * 10 + 30], y[step * 10 : step * 10 + 30])
        loss, logits = fast.train_step(xb, yb)
        expected_loss, expected_logits = reference.train_step(xb, yb)
        np.testing.assert_array_equal(loss, expected_loss)
        np.testing.assert_array_equal(logits, expected_logits)
    assert fast.step == reference.step == 11  # the NaN batch made no update
    for got, expected in (
        (fast.get_weights(), reference.get_weights()),
        (fast.carried_state(), reference.carried_state()),
    ):
        assert got.keys() == expected.keys()
        for name in got:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_values_updated_in_place_share_one_buffer_and_the_rest_are_double_buffered():
    engine = PortableEngine(mlp().layers, SCE, opt.Ftrl(), update="graph")  # the fused path has one set only
    first, second = engine._sets
    for name in engine.graph.carried:
        assert (first[name] is second[name]) == (name in engine.in_place), name


def test_most_optimizers_update_everything_in_place():
    layers = mlp().layers
    for optimizer in OPTIMIZERS:
        graph = train_step_model(layers, SCE, optimizer)
        expected = (
            {n for n in graph.carried if not n.startswith("optimizer.accum.")}
            if isinstance(optimizer, opt.Ftrl)
            else set(graph.carried)
        )
        assert graph.in_place == expected, optimizer


def test_ftrl_accumulator_is_read_after_its_update_is_computed_so_it_keeps_two_buffers():
    # Ftrl's weight update reads the old accumulator (accum^-p) on a path that does not lead to the node writing the
    # new one; writing it in place could let that read see the new value.
    graph = train_step_model(mlp().layers, SCE, opt.Ftrl(learning_rate=0.1))
    assert {n for n in graph.carried if n not in graph.in_place} == {
        "optimizer.accum.dense_1.kernel",
        "optimizer.accum.dense_1.bias",
        "optimizer.accum.dense_2.kernel",
        "optimizer.accum.dense_2.bias",
    }


# --- the rules, on hand-made graphs: x is carried, its update is x - 1 unless a case changes it ---------------------
def update_graph(
    writer: str = "Sub",
    else_op: str = "Identity",
    outer_reader_feeds_if: bool = True,
    branch_reader_feeds_writer: bool = True,
    guarded: bool = True,
) -> onnx.GraphProto:
    b = GraphBuilder()
    x = b.add_input("x", np.float32, (4,))
    loss = b.node("ReduceSum", [x], keepdims=0)
    outer = b.node("Neg", [x], hint="outer_reader")
    cond = b.node("Equal", [b.node("Sub", [loss, loss]), b.constant(0.0)])
    if outer_reader_feeds_if:
        cond = b.node("And", [cond, b.node("Equal", [b.node("ReduceSum", [outer], keepdims=0), loss])])
    with b.subgraph() if guarded else nullcontext([]) as then_nodes:
        one = b.constant(np.ones(4, np.float32))
        scaled = b.node("Mul", [x, b.constant(2.0)], hint="branch_reader")
        operand = scaled if branch_reader_feeds_writer else one
        new = b.node("Sub", [x, operand]) if writer == "Sub" else b.node(writer, [x], perm=[0])
        if not branch_reader_feeds_writer:
            b.node("Identity", [scaled], hint="late")  # reads x, but the writer does not wait for it
    with b.subgraph() as else_nodes:
        kept = b.node(else_op, [x])
    if not guarded:  # the update's nodes went into the graph itself
        b.add_output(new, UPDATED + "x", np.float32, (4,))
    else:
        branches = {
            name: helper.make_graph(nodes, name, [], [b.value_info(out, np.float32, (4,))])
            for name, nodes, out in (("then_branch", then_nodes, new), ("else_branch", else_nodes, kept))
        }
        result = b.node("If", [cond], **branches)
        b.add_output(result, UPDATED + "x", np.float32, (4,))
    b.add_output(outer, "side", np.float32, (4,))
    model = b.build(check=False)  # as in train_step_model, the producer writes updated.x itself
    return model.graph


def check(graph: onnx.GraphProto) -> frozenset[str]:
    return in_place_updates(graph, ["x"], UPDATED)


def test_an_update_whose_every_read_comes_first_is_written_in_place():
    assert check(update_graph()) == {"x"}


def test_a_reader_outside_the_if_that_may_run_after_it_blocks_in_place():
    assert check(update_graph(outer_reader_feeds_if=False)) == frozenset()


def test_a_reader_inside_the_branch_that_may_run_after_the_write_blocks_in_place():
    assert check(update_graph(branch_reader_feeds_writer=False)) == frozenset()


def test_a_writer_that_is_not_elementwise_blocks_in_place():
    assert check(update_graph(writer="Transpose")) == frozenset()


def test_an_else_branch_that_changes_the_value_blocks_in_place():
    assert check(update_graph(else_op="Neg")) == frozenset()


def test_an_update_outside_an_if_is_never_in_place():
    # Without the If, a NaN step would already have overwritten the input it must keep.
    assert check(update_graph(guarded=False)) == frozenset()
