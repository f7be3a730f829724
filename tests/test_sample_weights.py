"""Keras' sample_weight and class_weight: fit and evaluate against Keras 3.15's numbers (tests/data/keras/
sample_weights.npz, written by tools/keras_sample_weight_fixtures.py) and numpy references of the weighted loss and
an SGD step, on every path of the portable engine (graph update, fused kernel, split step, data-parallel); the
unweighted graphs untouched; the checks of the weights."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest
from test_distributed import ThreadWorld

import onnxtrain.distributed as dist
from onnxtrain import Sequential, load_model, losses
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnsupportedError
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.model import Model
from onnxtrain.optimizers import SGD, Adam
from onnxtrain.portable import PortableEngine, _fused
from onnxtrain.portable._graphs import eval_model, train_step_model
from onnxtrain.regularizers import L2

KERAS = np.load(Path(__file__).parent / "data" / "keras" / "sample_weights.npz")
RNG = np.random.default_rng(11)
X = RNG.normal(size=(13, 4)).astype(np.float32)
Y_VALUE = RNG.normal(size=(13, 2)).astype(np.float32)
Y_CLASS = RNG.integers(0, 3, 13)
W = RNG.uniform(0.0, 2.0, 13).astype(np.float32)
UPDATES = [
    "graph",
    pytest.param("fused", marks=pytest.mark.skipif(not _fused.available(), reason="numba is not installed")),
]


@pytest.fixture(autouse=True)
def _alone_after():
    yield
    dist.leave()


# --- Keras 3.15 -------------------------------------------------------------------------------------------------
KERAS_CASES = {  # case -> (loss, units, activation, regularized)
    "softmax_class_weight": ("sparse_categorical_crossentropy", 2, "softmax", False),
    "sigmoid_class_weight": ("binary_crossentropy", 1, "sigmoid", False),
    "mse_sample_weight": ("mse", 2, "linear", True),
}


def keras_model(case: str) -> Sequential:
    loss, units, activation, regularized = KERAS_CASES[case]
    dense = Dense(units, activation=activation, kernel_regularizer=L2(0.01) if regularized else None)
    model = Sequential.of(Input(3), dense, seed=0)
    model.compile(optimizer=SGD(learning_rate=0.1), loss=loss, engine="portable")
    model.set_weights([KERAS[f"{case}/start_kernel"], KERAS[f"{case}/start_bias"]])
    return model


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_fit_and_evaluate_with_weights_match_keras_3(case):
    k = {name.split("/", 1)[1]: KERAS[name] for name in KERAS.files if name.startswith(case + "/")}
    x, y, evaluation_weight = k["x"], k["y"], k["evaluation_weight"]
    fit_weights = {}
    if "class_weight" in k:
        fit_weights["class_weight"] = dict(enumerate(k["class_weight"].tolist()))
    if "sample_weight" in k:
        fit_weights["sample_weight"] = k["sample_weight"]
    with keras_model(case) as model:
        assert model.evaluate(x, y, batch_size=8).loss == pytest.approx(k["evaluate_unweighted"], rel=1e-5)
        weighted = model.evaluate(x, y, batch_size=8, sample_weight=evaluation_weight).loss
        assert weighted == pytest.approx(k["evaluate_weighted"], rel=1e-5)
        history = model.fit(
            x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, validation_data=(x, y, evaluation_weight),
            **fit_weights,
        )  # fmt: skip
        np.testing.assert_allclose(history.history["loss"], k["loss"], rtol=1e-5)
        np.testing.assert_allclose(history.history["val_loss"], k["val_loss"], rtol=1e-5)
        kernel, bias = model.get_weights().values()
        np.testing.assert_allclose(kernel, k["kernel"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bias, k["bias"], rtol=1e-5, atol=1e-6)


def test_keras_divides_by_the_batch_not_by_the_sum_of_the_weights():
    # What the fixture says about Keras' "sum_over_batch_size": sum(w l) / n, the zero weights counted in n.
    x, y, w = (KERAS[f"softmax_class_weight/{name}"] for name in ("x", "y", "evaluation_weight"))
    z = x @ KERAS["softmax_class_weight/start_kernel"] + KERAS["softmax_class_weight/start_bias"]
    per_example = -(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))[np.arange(len(y)), y]
    assert KERAS["softmax_class_weight/evaluate_weighted"] == pytest.approx((w * per_example).sum() / len(y), 1e-5)
    assert (w * per_example).sum() / w.sum() != pytest.approx(KERAS["softmax_class_weight/evaluate_weighted"], 1e-2)


# --- numpy references: the weighted loss and one SGD step, on each path of the portable engine ----------------------
def regression() -> Sequential:
    return Sequential.of(Input(4), Dense(2, activation="linear", name="dense"), seed=3)


def numpy_mse_step(weights: dict[str, np.ndarray], w: np.ndarray, lr: float) -> tuple[float, dict[str, np.ndarray]]:
    """sum(w_i mean_j (z_ij - y_ij)^2) / n and the weights after one SGD step on it."""
    kernel, bias = weights["dense.kernel"], weights["dense.bias"]
    error = X @ kernel + bias - Y_VALUE
    loss = float((w * (error**2).mean(axis=1)).sum() / len(X))
    dz = 2 * w[:, None] * error / error.size
    return loss, {"dense.kernel": kernel - lr * X.T @ dz, "dense.bias": bias - lr * dz.sum(axis=0)}


@pytest.mark.parametrize("update", UPDATES)
def test_a_weighted_step_is_the_numpy_weighted_mean_and_its_sgd_step(update):
    engine = PortableEngine(regression().layers, losses.get("mse"), SGD(learning_rate=0.1), update=update)
    start = engine.get_weights()
    loss_expected, after = numpy_mse_step(start, W, 0.1)
    assert engine.eval_step(X, Y_VALUE, sample_weight=W)[0] == pytest.approx(loss_expected, rel=1e-6)
    loss, _ = engine.train_step(X, Y_VALUE, sample_weight=W)
    assert loss == pytest.approx(loss_expected, rel=1e-6)
    for name, value in engine.get_weights().items():
        np.testing.assert_allclose(value, after[name], rtol=1e-5, atol=1e-7)
    engine.close()


def test_the_split_step_weighs_each_share_as_the_whole_batch(monkeypatch):
    monkeypatch.setenv("ONNXTRAIN_SPLIT_STEP", "1")
    layers = regression().layers
    split = PortableEngine(layers, losses.get("mse"), SGD(learning_rate=0.1), threads=2, update="fused")
    if split._split is None:
        pytest.skip("the split step needs the fused update (numba)")
    loss_expected, after = numpy_mse_step(split.get_weights(), W, 0.1)
    loss, _ = split.train_step(X, Y_VALUE, sample_weight=W)  # 13 rows: shares of 6 and 7
    assert split._weighted is not None and split._weighted.split is not None
    assert loss == pytest.approx(loss_expected, rel=1e-6)
    for name, value in split.get_weights().items():
        np.testing.assert_allclose(value, after[name], rtol=1e-5, atol=1e-7)
    split.close()


def fit_in(world, **fit):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(29, 5)).astype(np.float32), rng.integers(0, 3, 29)
    w = rng.uniform(0, 3, 29).astype(np.float32)
    w[4] = 0.0

    def train(rank):
        with Sequential.of(Input(5), Dense(7, activation="tanh"), Dense(3), seed=5 + rank) as model:
            model.compile(optimizer=Adam(0.05), loss="sparse_categorical_crossentropy", engine="portable")
            history = model.fit(
                x, y, epochs=2, batch_size=6, verbose=0, sample_weight=w, validation_data=(x[:9], y[:9], w[:9]), **fit
            )
            return model.get_weights(), history

    if world is None:
        return [train(0)]
    dist.init(communicator=world)
    return world.run(train)


@pytest.mark.slow
def test_a_data_parallel_weighted_fit_trains_as_one_process():
    [(alone, alone_history)] = fit_in(None, class_weight={1: 2.0})
    for weights, history in fit_in(ThreadWorld(3), class_weight={1: 2.0}):  # shares 2/2/2, last 1/2/2
        for name, value in weights.items():
            np.testing.assert_allclose(value, alone[name], rtol=1e-5, atol=1e-6)
        for key in ("loss", "val_loss"):
            np.testing.assert_allclose(history.history[key], alone_history.history[key], rtol=1e-5)


def test_several_outputs_take_one_array_for_all_or_one_per_output():
    x = Input(4, name="x")
    h = Dense(6, activation="tanh", name="trunk")(x)
    model = Model(x, [Dense(3, name="kind")(h), Dense(2, activation="linear", name="size")(h)], seed=0)
    model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5])
    w = model.get_weights()
    hidden = np.tanh(X @ w["trunk.kernel"] + w["trunk.bias"])
    z = hidden @ w["kind.kernel"] + w["kind.bias"]
    cross_entropy = -(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))[np.arange(13), Y_CLASS]
    squared = ((hidden @ w["size.kernel"] + w["size.bias"] - Y_VALUE) ** 2).mean(axis=1)
    other = W[::-1].copy()
    for sample_weight, (wc, wv) in [
        (W, (W, W)),
        ([W, other], (W, other)),
        ({"size": other, "kind": W}, (W, other)),
    ]:
        result = model.evaluate(x=X, y=[Y_CLASS, Y_VALUE], sample_weight=sample_weight, return_dict=True)
        kind, size = (wc * cross_entropy).mean(), (wv * squared).mean()
        assert result["kind_loss"] == pytest.approx(kind, rel=1e-5)
        assert result["size_loss"] == pytest.approx(size, rel=1e-5)
        assert result["loss"] == pytest.approx(kind + 0.5 * size, rel=1e-5)
    model.close()


# --- what weights leave alone -----------------------------------------------------------------------------------
def test_the_unweighted_train_step_is_the_tutorial_graph_and_builds_no_weighted_session():
    mlp = Sequential.of(Input(28, 28, 1), Flatten(), Dense(300), Dense(100), Dense(10), seed=12)
    sce = losses.get("sparse_categorical_crossentropy")
    step = train_step_model(mlp.graph, sce, Adam()).model
    # the tutorial MLP's step as it was before sample weights existed: 37 nodes, one mean cross-entropy
    assert [i.name for i in step.graph.input][-4:] == ["step", "learning_rate", "input", "labels"]
    assert len(step.graph.node) == 37
    assert collections.Counter(n.op_type for n in step.graph.node) == {
        "Gemm": 8, "Constant": 5, "Cast": 3, "MatMul": 3, "Relu": 2, "Sub": 2, "Greater": 2, "Mul": 2,
        "Flatten": 1, "SoftmaxCrossEntropyLoss": 1, "Softmax": 1, "OneHot": 1, "Shape": 1, "Gather": 1, "Div": 1,
        "ConstantOfShape": 1, "Equal": 1, "If": 1,
    }  # fmt: skip
    assert [n.op_type for n in eval_model(mlp.graph, sce).graph.node] == [
        "Flatten", "Gemm", "Relu", "Gemm", "Relu", "Gemm", "SoftmaxCrossEntropyLoss"
    ]  # fmt: skip
    weighted = train_step_model(mlp.graph, sce, Adam(), weighted=True).model
    assert "sample_weight" in [i.name for i in weighted.graph.input]
    [node] = [n for n in weighted.graph.node if n.op_type == "SoftmaxCrossEntropyLoss"]
    assert node.attribute[0].s == b"none"
    with regression() as model:
        model.compile(optimizer="sgd", loss="mse", engine="portable")
        model.fit(X, Y_VALUE, epochs=1, verbose=0)
        model.evaluate(X, Y_VALUE)
        assert model._trainer.engine._weighted is None


@pytest.mark.parametrize(("loss", "y"), [("mse", Y_VALUE), ("sparse_categorical_crossentropy", Y_CLASS)])
def test_weights_of_all_ones_give_the_unweighted_numbers(loss, y):
    results = []
    for weights in ({}, {"sample_weight": np.ones(13, np.float32)}):
        with Sequential.of(Input(4), Dense(3 if loss != "mse" else 2), seed=4) as model:
            model.compile(optimizer=Adam(0.01), loss=loss, engine="portable")
            history = model.fit(X, y, epochs=2, batch_size=5, verbose=0, **weights)
            results.append((history.history["loss"], model.get_weights(), model.evaluate(X, y, **weights).loss))
    (loss_a, weights_a, eval_a), (loss_b, weights_b, eval_b) = results
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-6)
    assert eval_a == pytest.approx(eval_b, rel=1e-6)
    for name, value in weights_a.items():
        np.testing.assert_allclose(value, weights_b[name], rtol=1e-6, atol=1e-7)


def test_zero_weights_drop_examples_but_count_in_the_batch():
    w = np.r_[np.ones(8), np.zeros(5)].astype(np.float32)
    garbage = Y_VALUE.copy()
    garbage[8:] = 1e3  # whatever the dropped examples' targets, nothing changes
    results = []
    for y in (Y_VALUE, garbage):
        with regression() as model:
            model.compile(optimizer=SGD(0.1), loss="mse", engine="portable")
            evaluated = model.evaluate(X, y, sample_weight=w).loss
            model.fit(X, y, epochs=2, batch_size=13, shuffle=False, verbose=0, sample_weight=w)
            results.append((evaluated, model.get_weights()))
    assert results[0][0] == results[1][0]
    with regression() as model:
        model.compile(optimizer=SGD(0.1), loss="mse", engine="portable")
        kept = model.evaluate(X[:8], Y_VALUE[:8]).loss
    assert results[0][0] == pytest.approx(kept * 8 / 13, rel=1e-6)  # / 13, not / 8
    for name, value in results[0][1].items():
        np.testing.assert_array_equal(value, results[1][1][name])


def test_sample_weight_and_class_weight_multiply():
    results = []
    classes = {0: 2.0, 2: 0.5}
    product = W * np.array([classes.get(int(c), 1.0) for c in Y_CLASS], np.float32)
    for weights in ({"sample_weight": W, "class_weight": classes}, {"sample_weight": product}):
        with Sequential.of(Input(4), Dense(3), seed=4) as model:
            model.compile(optimizer=Adam(0.01), loss="sparse_categorical_crossentropy", engine="portable")
            model.fit(X, Y_CLASS, epochs=2, batch_size=5, verbose=0, **weights)
            results.append(model.get_weights())
    for name, value in results[0].items():
        np.testing.assert_array_equal(value, results[1][name])


def test_class_weight_reads_one_hot_targets_by_their_argmax():
    one_hot = np.eye(3, dtype=np.float32)[Y_CLASS]
    results = []
    for loss, y in (("sparse_categorical_crossentropy", Y_CLASS), ("categorical_crossentropy", one_hot)):
        with Sequential.of(Input(4), Dense(3, activation="softmax"), seed=4) as model:
            model.compile(optimizer=SGD(0.1), loss=loss, engine="portable")
            history = model.fit(X, y, epochs=1, batch_size=13, verbose=0, class_weight={0: 3.0, 1: 0.0})
            results.append((history.history["loss"], model.get_weights()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    for name, value in results[0][1].items():
        np.testing.assert_allclose(value, results[1][1][name], rtol=1e-5, atol=1e-6)


def test_a_weighted_fit_resumes_from_its_checkpoint_exactly(tmp_path):
    settings = {"optimizer": Adam(0.01), "loss": "mse", "engine": "portable"}
    fit = {"batch_size": 5, "verbose": 0, "sample_weight": W}
    with regression() as straight:
        straight.compile(**settings)
        straight.fit(X, Y_VALUE, epochs=3, **fit)
        expected = straight.get_weights()
    with regression() as first:
        first.compile(**settings)
        first.fit(X, Y_VALUE, epochs=2, **fit)
        first.save(tmp_path / "saved", save_optimizer_state=True)
    with load_model(tmp_path / "saved") as again:
        assert again._trainer.engine.step == 6
        again.fit(X, Y_VALUE, epochs=1, **fit)
        for name, value in again.get_weights().items():
            np.testing.assert_allclose(value, expected[name], rtol=1e-6, atol=1e-7)


def test_validation_split_splits_the_weights_and_class_weight_weighs_only_training():
    w = np.r_[np.ones(10), np.zeros(3)].astype(np.float32)
    with Sequential.of(Input(4), Dense(3), seed=4) as model:
        model.compile(optimizer=SGD(0.01), loss="sparse_categorical_crossentropy", engine="portable")
        history = model.fit(
            X, Y_CLASS, epochs=1, verbose=0, validation_split=0.25, sample_weight=w, class_weight={0: 9.0}
        )
        # the held-out last 3 rows weigh 0 and the class weights do not reach them
        assert history.history["val_loss"] == [0.0]


# --- checks -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"sample_weight": -W}, InvalidArgumentError, r"finite weights >= 0. Received: sample_weight\[0\]=-"),
        ({"sample_weight": np.r_[W[:-1], np.nan]}, InvalidArgumentError, r"sample_weight\[12\]=nan"),
        ({"sample_weight": W[:5]}, InvalidArgumentError, r"shape \(13,\). Received: sample_weight.shape=\(5,\)"),
        ({"sample_weight": np.ones((13, 2))}, InvalidArgumentError, r"sample_weight.shape=\(13, 2\)"),
        ({"sample_weight": np.array(["a"] * 13)}, InvalidTypeError, "numeric weights. Received: dtype <U1"),
        ({"class_weight": {3: 1.0}}, InvalidArgumentError, r"class indices in \[0, 2\] .*Received: key 3"),
        ({"class_weight": {"0": 1.0}}, InvalidArgumentError, "Received: key '0'"),
        ({"class_weight": {0: -1.0}}, InvalidArgumentError, "finite weights >= 0. Received: -1.0 for class 0"),
        ({"class_weight": {0: float("inf")}}, InvalidArgumentError, "Received: inf for class 0"),
        ({"class_weight": [1.0, 2.0]}, InvalidTypeError, "expects a dict .*Received: list"),
        ({"validation_data": (X, Y_CLASS, -W)}, InvalidArgumentError, r"validation\[2\]\[0\]=-"),
    ],
)
def test_bad_weights_are_refused_naming_what_was_received(arguments, error, message):
    with Sequential.of(Input(4), Dense(3), seed=4) as model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", engine="portable")
        before = model.get_weights()
        with pytest.raises(error, match=message):
            model.fit(X, Y_CLASS, epochs=1, verbose=0, **arguments)
        for name, value in model.get_weights().items():
            np.testing.assert_array_equal(value, before[name])  # refused before any step


def test_class_weight_is_refused_where_keras_has_no_classes():
    with regression() as model:
        model.compile(optimizer="sgd", loss="mse", engine="portable")
        with pytest.raises(UnsupportedError, match=r"class_weight needs a classification loss .*Received: loss 'mse'"):
            model.fit(X, Y_VALUE, verbose=0, class_weight={0: 1.0})
    x = Input(4, name="x")
    two = Model(x, [Dense(3, name="kind")(x), Dense(2, activation="linear", name="size")(x)], seed=0)
    two.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"])
    with pytest.raises(UnsupportedError, match=r"models of one output, as in Keras. .*\['kind', 'size'\]"):
        two.fit(X, [Y_CLASS, Y_VALUE], verbose=0, class_weight={0: 1.0})
    two.close()


@pytest.mark.training
def test_the_ort_training_engine_refuses_weights_by_name():
    with regression() as model:
        model.compile(optimizer="sgd", loss="mse", engine="ort-training")
        with pytest.raises(UnsupportedError, match=r"need the portable engine\. Received: engine='ort-training'"):
            model.evaluate(X, Y_VALUE, sample_weight=W)
        with pytest.raises(UnsupportedError, match="engine='portable'"):
            model.fit(X, Y_VALUE, verbose=0, sample_weight=W)
        model.fit(X, Y_VALUE, verbose=0)  # unweighted as before
