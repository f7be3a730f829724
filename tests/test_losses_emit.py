"""What a loss class of one's own emits: a loss of the whole batch (one overriding `emit`, an RMSE of the batch) trains
as it says on a convolution network, where the portable engine would otherwise split its step into shares of rows
and average their losses; mistakes in `emit` and `elements` are reported where the graph is made, naming the class
and the node (not by the onnx checker at the end, or as a loss "of unknown shape"); and the constants an emit makes
keep an integer array's dtype. Doubles as the guide to a loss that is not a mean of per-example values."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from onnxtrain import Sequential, _own_losses
from onnxtrain._runtime import Device
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
from onnxtrain.losses import Loss
from onnxtrain.optimizers import SGD, Adam
from onnxtrain.portable import PortableEngine, _fused
from onnxtrain.portable._graphs import train_step_model
from onnxtrain.portable._split_step import share_count


class BatchRMSE(Loss):
    """sqrt(mean((p - y)^2)) over the whole batch, as torch.sqrt(F.mse_loss(p, y)): not a mean of per-example values,
    so the mean of its value over halves of a batch is not its value over the batch."""

    def emit(self, builder, output, labels):
        difference = builder.node("Sub", [output, labels])
        mean = builder.node("ReduceMean", [builder.node("Mul", [difference, difference])], keepdims=0)
        return builder.node("Sqrt", [mean])


class SummedSquares(Loss):
    """Overrides `emit` with a mean of per-example values, and says so: its step may be split."""

    averages_examples = True

    def emit(self, builder, output, labels):
        difference = builder.node("Sub", [output, labels])
        per_example = builder.reduce("ReduceSum", builder.node("Mul", [difference, difference]), [-1], False)
        return builder.node("ReduceMean", [per_example], keepdims=0)


class CubedError(Loss):
    """Per-example values (`elements`), averaged by `Loss.emit`: a mean of per-example values."""

    def elements(self, builder, output, labels):
        error = builder.node("Abs", [builder.node("Sub", [output, labels])])
        return builder.node("Mul", [builder.node("Mul", [error, error]), error])


@pytest.fixture(autouse=True)
def _defined_as_it_was():
    """Classes a test defines are recorded process-wide: each test leaves them as found."""
    before = dict(_own_losses.DEFINED)
    yield
    _own_losses.DEFINED.clear()
    _own_losses.DEFINED.update(before)


def cnn() -> Sequential:
    return Sequential.of(
        Input(6, 6, 1),
        Conv2D(3, 3, padding="same", activation="relu"),
        MaxPooling2D(2),
        Flatten(),
        Dense(4, activation="linear"),
        seed=0,
    )


def regression_data(rows: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3, rows, 6, 6, 1)).astype(np.float32)
    y = rng.normal(size=(3, rows, 4)).astype(np.float32)
    y[:, : rows // 2] *= 5.0  # the halves differ, so the RMSEs of the halves differ from the batch's
    return x, y


def test_whether_a_loss_averages_examples_follows_its_class():
    assert CubedError.averages_examples and SummedSquares.averages_examples
    assert not BatchRMSE.averages_examples

    class WeightedByTotal(CubedError):  # sum(w l) / sum(w): not a rows-weighted mean of its parts either
        def emit_weighted(self, builder, output, labels, weights):
            raise NotImplementedError

    class Renamed(BatchRMSE):  # inherits the whole-batch emit
        name = "renamed_rmse"

    assert not WeightedByTotal.averages_examples and not Renamed.averages_examples


def test_a_loss_of_the_whole_batch_never_splits_the_step(monkeypatch):
    monkeypatch.setenv("ONNXTRAIN_SPLIT_STEP", "1")  # splits wherever it can run
    cpu = Device("cpu")
    for loss, shares in ((BatchRMSE(), 1), (SummedSquares(), 2), (CubedError(), 2)):
        graph = train_step_model(cnn().layers, loss, Adam())
        assert _own_losses.whole_batch_loss(graph.model) == (shares == 1)
        assert share_count(graph.model, cpu, 2, eligible=True) == shares, type(loss).__name__


@pytest.mark.skipif(not _fused.available(), reason="the split step runs the fused update (numba)")
@pytest.mark.parametrize("setting", ["auto", "1"])
def test_a_loss_of_the_whole_batch_trains_on_a_cnn_as_the_unsplit_step_does(monkeypatch, setting):
    x, y = regression_data()
    engines = {}
    for name, value in (("default", setting), ("unsplit", "0")):
        monkeypatch.setenv("ONNXTRAIN_SPLIT_STEP", value)
        engines[name] = PortableEngine(cnn().layers, BatchRMSE(), SGD(0.1), threads=2)
    default, unsplit = engines["default"], engines["unsplit"]
    assert default._shares == 1
    for step in range(3):
        loss, outputs = default.train_step(x[step], y[step])
        # The reference: the RMSE of the whole batch's outputs (the halves' mean RMSE is ~15% lower here).
        assert loss == pytest.approx(np.sqrt(np.mean((outputs - y[step]) ** 2)), rel=1e-5)
        expected_loss, expected_outputs = unsplit.train_step(x[step], y[step])
        assert loss == pytest.approx(expected_loss, rel=1e-6)
        np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-6, atol=1e-7)
    for name, expected in unsplit.get_weights().items():
        np.testing.assert_allclose(default.get_weights()[name], expected, rtol=1e-6, atol=1e-7, err_msg=name)
    default.close()
    unsplit.close()


@pytest.mark.skipif(not _fused.available(), reason="the split step runs the fused update (numba)")
def test_a_loss_that_says_it_averages_examples_splits_and_trains_as_unsplit(monkeypatch):
    x, y = regression_data()
    monkeypatch.setenv("ONNXTRAIN_SPLIT_STEP", "1")
    split = PortableEngine(cnn().layers, SummedSquares(), SGD(0.01), threads=2)
    monkeypatch.setenv("ONNXTRAIN_SPLIT_STEP", "0")
    unsplit = PortableEngine(cnn().layers, SummedSquares(), SGD(0.01), threads=2)
    assert (split._shares, unsplit._shares) == (2, 1)
    for step in range(3):
        loss, outputs = split.train_step(x[step], y[step])
        assert loss == pytest.approx(np.mean(np.sum((outputs - y[step]) ** 2, axis=-1)), rel=1e-5)
        assert loss == pytest.approx(unsplit.train_step(x[step], y[step])[0], rel=1e-5)
    for name, expected in unsplit.get_weights().items():
        np.testing.assert_allclose(split.get_weights()[name], expected, rtol=1e-4, atol=1e-6, err_msg=name)
    split.close()
    unsplit.close()


# --- mistakes in an emit ----------------------------------------------------------------------------------------


class AxesInputBefore18(Loss):
    """ReduceMean's axes as an input, which opsets before 18 take as an attribute."""

    def elements(self, builder, output, labels):
        squares = builder.node("Mul", [builder.node("Sub", [output, labels])] * 2)
        return builder.node("ReduceMean", [squares, builder.ints([-1])], keepdims=0)


class AxesAttributeFrom18(Loss):
    def emit(self, builder, output, labels):
        return builder.node("ReduceMean", [builder.node("Sub", [output, labels])], axes=[0, 1], keepdims=0)


class FloatAxes(Loss):
    """Axes from builder.constant of a list: float32, where ReduceSum wants int64."""

    def elements(self, builder, output, labels):
        axes = builder.constant([-1])
        return builder.node("ReduceSum", [builder.node("Abs", [builder.node("Sub", [output, labels])]), axes])


class ReturnsNothing(Loss):
    def emit(self, builder, output, labels):
        builder.node("ReduceMean", [builder.node("Sub", [output, labels])], keepdims=0)


class ReturnsAStranger(Loss):
    def emit(self, builder, output, labels):
        return "somewhere"


class ForgetsToReduce(Loss):
    def emit(self, builder, output, labels):
        return builder.node("Abs", [builder.node("Sub", [output, labels])])


class AveragesInElements(Loss):
    def elements(self, builder, output, labels):
        return builder.node("ReduceMean", [builder.node("Abs", [builder.node("Sub", [output, labels])])], keepdims=0)


MISTAKES = [
    (
        AxesInputBefore18,
        17,
        InvalidArgumentError,
        r"Loss 'axes_input_before18' \(AxesInputBefore18\)\.elements adds node 'loss\.reducemean_ReduceMean' "
        r"\(ReduceMean\), which ONNX refuses at opset 17: .*has input size 2 not in range.*Before opset 18, "
        r"ReduceMean's axes is an attribute, not an input: builder\.node\('ReduceMean', \[x\], axes=\[-1\]\), or "
        r"builder\.reduce\(",
    ),
    (
        AxesAttributeFrom18,
        18,
        InvalidArgumentError,
        r"\(AxesAttributeFrom18\)\.emit adds node 'loss\.reducemean_ReduceMean' \(ReduceMean\), which ONNX refuses at "
        r"opset 18: .*axes.*From opset 18, ReduceMean's axes is its second input",
    ),
    (
        FloatAxes,
        17,
        InvalidArgumentError,
        r"\(FloatAxes\)\.elements adds a node that ONNX's shape inference refuses: .*loss\.reducesum_ReduceSum.*"
        r"Expected:int64 Actual:float.*builder\.ints\(\[-1\]\)",
    ),
    (
        ReturnsNothing,
        17,
        InvalidTypeError,
        r"\(ReturnsNothing\)\.emit\(builder, output, labels\) must return the "
        r"name \(a str\).*Received: None \(emit returned nothing\)",
    ),
    (ReturnsAStranger, 17, InvalidTypeError, r"Received: 'somewhere', which no node computes"),
    (
        ForgetsToReduce,
        17,
        ShapeError,
        r"\(ForgetsToReduce\)\.emit must return the scalar loss \(shape \(\) or \(1,\)\)\. Received: a value of "
        r"shape \[batch, 4\]\. Reduce it",
    ),
    (
        AveragesInElements,
        17,
        ShapeError,
        r"\(AveragesInElements\)\.elements must give the values the loss averages.*"
        r"Received: a scalar",
    ),
]


@pytest.mark.parametrize("loss_class, opset, error, message", MISTAKES, ids=[row[0].__name__ for row in MISTAKES])
def test_a_mistake_in_a_losss_emit_is_reported_naming_the_class_and_the_node(loss_class, opset, error, message):
    builder = GraphBuilder(opset=opset)
    output = builder.add_input("output", np.float32, (None, 4))
    labels = builder.add_input("labels", np.float32, (None, 4))
    with builder.scope("loss"), pytest.raises(error, match=message):
        loss_class().emit(builder, output, labels)


def test_a_mistake_is_reported_at_compile_on_the_users_line():
    model = Sequential.of(Input(4), Dense(3, activation="linear"), seed=0)
    with pytest.raises(InvalidArgumentError, match=r"AxesInputBefore18\)\.elements adds node") as caught:
        model.compile(optimizer=SGD(0.1), loss=AxesInputBefore18())
    assert isinstance(caught.value.__cause__, onnx.checker.ValidationError)
    model = Sequential.of(Input(4), Dense(3, activation="linear"), seed=0)
    model.compile(optimizer=SGD(0.1), loss=AxesInputBefore18(), opset=18)  # the graph's opset takes the input
    x = np.ones((2, 4), np.float32)
    assert np.isfinite(model.train_on_batch(x, x[:, :3]))


def test_a_checked_loss_emits_the_graph_it_emitted_before():
    # The checks read the graph, never change it: the same nodes as the class's own emit, unwrapped.
    graphs = []
    for emit in (CubedError.emit, Loss.emit):
        builder = GraphBuilder()
        output = builder.add_input("output", np.float32, (None, 4))
        labels = builder.add_input("labels", np.float32, (None, 4))
        emit(CubedError(), builder, output, labels)
        graphs.append([node.SerializeToString() for node in builder.nodes])
    assert graphs[0] == graphs[1]


# --- constants --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, dtype, expected",
    [
        (np.array([1, 2, 3]), None, TensorProto.FLOAT),  # numpy's int64 array: a float32 multiplier (a Lambda's)
        (np.array([True, False]), None, TensorProto.FLOAT),
        (np.array([1.5, 2.0]), None, TensorProto.FLOAT),  # a float64 array: float32, as layers compute
        (2, None, TensorProto.FLOAT),  # a Python number
        ([-1], None, TensorProto.FLOAT),  # a list
        (np.array([-1], np.int64), np.int64, TensorProto.INT64),  # axes: dtype given
        (0.5, np.float16, TensorProto.FLOAT16),
    ],
)
def test_a_constant_is_float32_unless_its_dtype_is_given(value, dtype, expected):
    builder = GraphBuilder()
    name = builder.constant(value) if dtype is None else builder.constant(value, dtype=dtype)
    (node,) = builder.nodes
    assert list(node.output) == [name] and node.attribute[0].t.data_type == expected
    np.testing.assert_array_equal(
        onnx.numpy_helper.to_array(node.attribute[0].t), np.asarray(value, dtype or np.float32)
    )
