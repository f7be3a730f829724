"""Per-position sample weights for an output with steps (a tagger's (N, T) weights, as Keras 3 takes them): fit,
train_on_batch, evaluate and validation data against Keras 3.15's numbers (tests/data/keras/
sample_weights_sequences.npz, written by tools/keras_sample_weight_fixtures.py), masked outputs included; numpy
references of the weighted loss and an SGD step on each path of the portable engine; one weight per example spread
over the positions; class_weight refused for a class per position, as Keras refuses it; the checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import onnx
import pytest
from test_distributed import ThreadWorld
from test_layers_recurrent import from_keras

import onnxtrain.distributed as dist
from onnxtrain import Sequential, losses
from onnxtrain.datasets import Dataset
from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.history import History
from onnxtrain.layers import LSTM, Dense, Embedding, Input, Masking
from onnxtrain.model import Model
from onnxtrain.optimizers import SGD, Adam
from onnxtrain.portable import PortableEngine, _fused
from onnxtrain.portable._graphs import eval_model, train_step_model

KERAS = np.load(Path(__file__).parent / "data" / "keras" / "sample_weights_sequences.npz")
STEPS, VOCABULARY, TAGS, BATCH = 6, 12, 3, 8
UPDATES = [
    "graph",
    pytest.param("fused", marks=pytest.mark.skipif(not _fused.available(), reason="numba is not installed")),
]


@pytest.fixture(autouse=True)
def _alone_after():
    yield
    dist.leave()


# --- the fixtures' models, named as Keras' layers ------------------------------------------------------------------
def tagger() -> Sequential:
    return Sequential.of(
        Input(STEPS, dtype="int64", name="ids"),
        Embedding(VOCABULARY, 4, mask_zero=True, name="embedding"),
        LSTM(3, return_sequences=True, name="lstm"),
        Dense(TAGS, activation="linear", name="dense"),
        seed=0,
    )


def sequence_regression() -> Sequential:
    return Sequential.of(
        Input(STEPS, 2), Dense(4, activation="tanh", name="hidden"), Dense(2, activation="linear", name="dense"), seed=0
    )


def masked_sigmoid() -> Sequential:
    return Sequential.of(
        Input(STEPS, 3), Masking(0.0, name="masking"), Dense(1, activation="sigmoid", name="dense"), seed=0
    )


CASES: dict[str, tuple[Callable[[], Sequential], object]] = {  # case -> (model, loss)
    "tagger_masked": (tagger, losses.CategoricalCrossentropy(from_logits=True)),
    "tagger_masked_trailing_one": (tagger, losses.CategoricalCrossentropy(from_logits=True)),
    "sequence_mse": (sequence_regression, "mse"),
    "masking_bce": (masked_sigmoid, "binary_crossentropy"),
}


def fixture(case: str) -> dict[str, np.ndarray]:
    return {name.split("/", 1)[1]: KERAS[name] for name in KERAS.files if name.startswith(case + "/")}


def keras_weights(model: Sequential, data: Mapping[str, np.ndarray], prefix: str = "") -> dict[str, np.ndarray]:
    """The fixture's `<prefix><layer>.<i>` arrays (Keras' get_weights() of each layer) as our parameters."""
    ours: dict[str, np.ndarray] = {}
    for layer in model.layers:
        weights = []
        while f"{prefix}{layer.name}.{len(weights)}" in data:
            weights.append(data[f"{prefix}{layer.name}.{len(weights)}"])
        if not weights:
            continue
        if isinstance(layer, LSTM):
            local = from_keras("LSTM")(weights)
        else:
            names = ["embeddings"] if isinstance(layer, Embedding) else ["kernel", "bias"]
            local = dict(zip(names, weights, strict=True))
        ours |= {f"{layer.name}.{name}": value for name, value in local.items()}
    return ours


def keras_model(case: str) -> tuple[Sequential, dict[str, np.ndarray]]:
    make, loss = CASES[case]
    model, data = make(), fixture(case)
    model.compile(optimizer=SGD(learning_rate=0.1), loss=loss, engine="portable")  # type: ignore[arg-type]
    model.set_weights(keras_weights(model, data))
    return model, data


def assert_keras_weights(model: Sequential, data: Mapping[str, np.ndarray], prefix: str) -> None:
    got = model.get_weights()
    for name, value in keras_weights(model, data, prefix).items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


# --- Keras 3.15 ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_evaluate_and_one_sgd_step_with_per_position_weights_match_keras_3(case):
    model, k = keras_model(case)
    x, y, w, evaluation_weight = k["x"], k["y"], k["sample_weight"], k["evaluation_weight"]
    with model:
        assert model.evaluate(x, y, batch_size=BATCH).loss == pytest.approx(k["evaluate_unweighted"], rel=1e-5)
        weighted = model.evaluate(x, y, batch_size=BATCH, sample_weight=evaluation_weight).loss
        assert weighted == pytest.approx(k["evaluate_weighted"], rel=1e-5)
        loss = model.train_on_batch(x[:BATCH], y[:BATCH], sample_weight=w[:BATCH])
        assert loss == pytest.approx(k["step_loss"], rel=1e-5)
        assert_keras_weights(model, k, "step.")


@pytest.mark.parametrize("case", list(CASES))
def test_fit_with_per_position_weights_and_weighted_validation_data_matches_keras_3(case):
    model, k = keras_model(case)
    x, y, w, evaluation_weight = k["x"], k["y"], k["sample_weight"], k["evaluation_weight"]
    with model:
        history = model.fit(
            x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, sample_weight=w,
            validation_data=(x, y, evaluation_weight),
        )  # fmt: skip
        np.testing.assert_allclose(history.history["loss"], k["loss"], rtol=1e-5)
        np.testing.assert_allclose(history.history["val_loss"], k["val_loss"], rtol=1e-5)
        assert_keras_weights(model, k, "fit.")


def test_keras_divides_by_the_positions_not_by_the_sum_of_the_weights():
    # What the fixture says about Keras' reduction of (N, T) weights: sum(w l) / (N T), each position's l the mean
    # over its last axis; the zero weights counted in N T. (For a masked output: / the unmasked positions, above.)
    k = fixture("sequence_mse")
    hidden = np.tanh(k["x"] @ k["hidden.0"] + k["hidden.1"])
    per_position = ((hidden @ k["dense.0"] + k["dense.1"] - k["y"]) ** 2).mean(axis=-1)
    w = k["evaluation_weight"]
    assert k["evaluate_weighted"] == pytest.approx((w * per_position).sum() / w.size, rel=1e-5)
    assert (w * per_position).sum() / w.sum() != pytest.approx(k["evaluate_weighted"], rel=1e-2)


def test_a_masked_output_divides_by_its_unmasked_positions():
    model, k = keras_model("masking_bce")
    x, y, w = k["x"], k["y"], k["evaluation_weight"]
    with model:
        p = np.clip(model.predict(x, verbose=0)[..., 0], 1e-7, 1 - 1e-7)
        got = model.evaluate(x, y, batch_size=len(x), sample_weight=w).loss
    per_position = -(y[..., 0] * np.log(p + 1e-7) + (1 - y[..., 0]) * np.log(1 - p + 1e-7))
    unmasked = np.any(x != 0, axis=-1)
    assert got == pytest.approx((w * per_position)[unmasked].sum() / unmasked.sum(), rel=1e-5)


# --- one weight per example, spread over the positions ---------------------------------------------------------------
def test_one_weight_per_example_weighs_each_of_its_positions_alike():
    k = fixture("tagger_masked")
    x, y = k["x"], k["y"]
    per_example = np.linspace(0.0, 2.0, len(x)).astype(np.float32)
    results = []
    for w in (per_example, np.repeat(per_example[:, None], STEPS, axis=1)):
        model, _ = keras_model("tagger_masked")
        with model:
            evaluated = model.evaluate(x, y, batch_size=BATCH, sample_weight=w).loss
            history = model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, sample_weight=w)
            results.append((evaluated, history.history["loss"], model.get_weights()))
    (eval_a, loss_a, weights_a), (eval_b, loss_b, weights_b) = results
    assert eval_a == pytest.approx(eval_b, rel=1e-6)
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-6)
    for name, value in weights_a.items():
        np.testing.assert_allclose(value, weights_b[name], rtol=1e-6, atol=1e-7)


def test_per_position_weights_of_all_ones_give_the_unweighted_numbers():
    k = fixture("tagger_masked")
    results = []
    for weights in ({}, {"sample_weight": np.ones((len(k["x"]), STEPS), np.float32)}):
        model, _ = keras_model("tagger_masked")
        with model:
            history = model.fit(k["x"], k["y"], batch_size=BATCH, epochs=2, verbose=0, **weights)
            results.append((history.history["loss"], model.get_weights()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    for name, value in results[0][1].items():
        np.testing.assert_allclose(value, results[1][1][name], rtol=1e-6, atol=1e-7)


# --- the data paths: a Dataset, a generator, a PyDataset-like sequence ------------------------------------------------
class Batches:
    """A PyDataset's shape: `len` batches, `[i]` the i-th (x, y, sample_weight)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
        self.x, self.y, self.w = x, y, w

    def __len__(self) -> int:
        return -(-len(self.x) // BATCH)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = slice(i * BATCH, (i + 1) * BATCH)
        return self.x[rows], self.y[rows], self.w[rows]


def generated(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    for start in range(0, len(x), BATCH):
        yield x[start : start + BATCH], y[start : start + BATCH], w[start : start + BATCH]


@pytest.mark.parametrize("given", ["dataset", "generator", "py_dataset"])
def test_a_dataset_and_streamed_batches_carry_per_position_weights(given):
    model, k = keras_model("sequence_mse")
    x, y, w, evaluation_weight = k["x"], k["y"], k["sample_weight"], k["evaluation_weight"]
    with model:
        if given == "dataset":
            evaluated = model.evaluate(Dataset(x, y), batch_size=BATCH, sample_weight=evaluation_weight).loss
            history = model.fit(Dataset(x, y), batch_size=BATCH, epochs=2, shuffle=False, verbose=0, sample_weight=w)
        elif given == "generator":
            evaluated = model.evaluate(generated(x, y, evaluation_weight)).loss
            history = model.fit(generated(x, y, w), epochs=1, verbose=0)
            history.history["loss"] += model.fit(generated(x, y, w), epochs=1, verbose=0).history["loss"]
        else:
            evaluated = model.evaluate(Batches(x, y, evaluation_weight)).loss
            history = model.fit(Batches(x, y, w), epochs=2, shuffle=False, verbose=0)
        assert evaluated == pytest.approx(k["evaluate_weighted"], rel=1e-5)
        np.testing.assert_allclose(history.history["loss"], k["loss"], rtol=1e-5)
        assert_keras_weights(model, k, "fit.")


# --- numpy references: the weighted loss and one SGD step, on each path of the portable engine -----------------------
RNG = np.random.default_rng(5)
X = RNG.normal(size=(13, STEPS, 3)).astype(np.float32)
Y = RNG.normal(size=(13, STEPS, 2)).astype(np.float32)
W = RNG.uniform(0.0, 2.0, (13, STEPS)).astype(np.float32)


def per_step_regression() -> Sequential:
    return Sequential.of(Input(STEPS, 3), Dense(2, activation="linear", name="dense"), seed=3)


def numpy_step(weights: dict[str, np.ndarray], w: np.ndarray, lr: float) -> tuple[float, dict[str, np.ndarray]]:
    """sum(w_it mean_j (z_itj - y_itj)^2) / (N T) and the weights after one SGD step on it."""
    kernel, bias = weights["dense.kernel"], weights["dense.bias"]
    error = X @ kernel + bias - Y
    loss = float((w * (error**2).mean(axis=-1)).sum() / w.size)
    dz = 2 * w[..., None] * error / error.size
    grad_kernel = np.einsum("nti,ntj->ij", X, dz)
    return loss, {"dense.kernel": kernel - lr * grad_kernel, "dense.bias": bias - lr * dz.sum(axis=(0, 1))}


@pytest.mark.parametrize("update", UPDATES)
def test_a_per_position_weighted_step_is_the_numpy_weighted_mean_and_its_sgd_step(update):
    engine = PortableEngine(per_step_regression().layers, losses.get("mse"), SGD(learning_rate=0.1), update=update)
    loss_expected, after = numpy_step(engine.get_weights(), W, 0.1)
    assert engine.eval_step(X, Y, sample_weight=W)[0] == pytest.approx(loss_expected, rel=1e-6)
    loss, _ = engine.train_step(X, Y, sample_weight=W)
    assert loss == pytest.approx(loss_expected, rel=1e-6)
    for name, value in engine.get_weights().items():
        np.testing.assert_allclose(value, after[name], rtol=1e-5, atol=1e-7)
    engine.close()


def test_the_split_step_weighs_each_share_s_positions_as_the_whole_batch(monkeypatch):
    monkeypatch.setenv("ONNXTRAIN_SPLIT_STEP", "1")
    split = PortableEngine(
        per_step_regression().layers, losses.get("mse"), SGD(learning_rate=0.1), threads=2, update="fused"
    )
    if split._split is None:
        pytest.skip("the split step needs the fused update (numba)")
    loss_expected, after = numpy_step(split.get_weights(), W, 0.1)
    loss, _ = split.train_step(X, Y, sample_weight=W)  # 13 rows: shares of 6 and 7
    assert split._weighted is not None and split._weighted.split is not None
    assert loss == pytest.approx(loss_expected, rel=1e-6)
    for name, value in split.get_weights().items():
        np.testing.assert_allclose(value, after[name], rtol=1e-5, atol=1e-7)
    split.close()


@pytest.mark.slow
def test_a_data_parallel_fit_with_per_position_weights_trains_as_one_process():
    def fit_in(world: ThreadWorld | None) -> list[tuple[dict[str, np.ndarray], History]]:
        def train(rank: int) -> tuple[dict[str, np.ndarray], History]:
            with Sequential.of(Input(STEPS, 3), Dense(5, activation="tanh"), Dense(2), seed=5 + rank) as model:
                model.compile(optimizer=Adam(0.05), loss="mse", engine="portable")
                history = model.fit(
                    X, Y, epochs=2, batch_size=6, verbose=0, sample_weight=W, validation_data=(X[:9], Y[:9], W[:9])
                )
                return model.get_weights(), history

        if world is None:
            return [train(0)]
        dist.init(communicator=world)
        return world.run(train)

    [(alone, alone_history)] = fit_in(None)
    for weights, history in fit_in(ThreadWorld(3)):
        for name, value in weights.items():
            np.testing.assert_allclose(value, alone[name], rtol=1e-5, atol=1e-6)
        for key in ("loss", "val_loss"):
            np.testing.assert_allclose(history.history[key], alone_history.history[key], rtol=1e-5)


def test_the_weighted_graphs_take_one_weight_per_position_of_an_output_with_steps():
    def weight_shape(model: onnx.ModelProto) -> list[int | str]:
        [given] = [i for i in model.graph.input if i.name == "sample_weight"]
        return [d.dim_value or d.dim_param for d in given.type.tensor_type.shape.dim]

    mse = losses.get("mse")
    assert weight_shape(eval_model(per_step_regression().graph, mse, weighted=True))[1:] == [STEPS]
    assert weight_shape(train_step_model(tagger().graph, mse, SGD(), weighted=True).model)[1:] == [STEPS]
    flat = Sequential.of(Input(3), Dense(2), seed=0)
    assert weight_shape(eval_model(flat.graph, mse, weighted=True))[1:] == []


# --- what is refused ----------------------------------------------------------------------------------------------
def test_class_weight_on_a_class_per_position_is_refused_as_keras_does_naming_the_weights_that_do_it():
    k = fixture("tagger_masked")
    x, y = k["x"], k["y"]
    model, _ = keras_model("tagger_masked")
    with model:
        with pytest.raises(UnsupportedError, match=r"Keras 3 refuses it .*shape \(6, 3\), a class per position") as e:
            model.fit(x, y, verbose=0, class_weight={1: 5.0})
        advised = r"sample_weight=np.array([1.0, 5.0, 1.0], 'float32')[y.argmax(-1)]"
        assert advised in str(e.value)
        # the advice, followed: each position weighs its class's weight
        sample_weight = np.array([1.0, 5.0, 1.0], "float32")[y.argmax(-1)]
        assert sample_weight.shape == (len(x), STEPS)
        model.fit(x, y, verbose=0, epochs=1, sample_weight=sample_weight)
    with masked_sigmoid() as sigmoid:
        sigmoid.compile(optimizer="sgd", loss="binary_crossentropy", engine="portable")
        binary = fixture("masking_bce")
        with pytest.raises(UnsupportedError, match=r"\[0.5, 2.0\], 'float32'\)\[np.round\(y\[..., 0\]\)"):
            sigmoid.fit(binary["x"], binary["y"], verbose=0, class_weight={0: 0.5, 1: 2.0})


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.ones((20, STEPS + 1)), r"shape \(20,\), or one per position of the output \(shape \(6, 2\)\), shape "
         r"\(20, 6\). Received: sample_weight.shape=\(20, 7\)"),
        (np.ones((20, STEPS, 2)), r"Received: sample_weight.shape=\(20, 6, 2\)"),
        (np.ones((STEPS, 20)), r"Received: sample_weight.shape=\(6, 20\)"),
        (-np.eye(20, STEPS), r"finite weights >= 0. Received: sample_weight\[0, 0\]=-1.0 \(6 such weights\)"),
        (np.where(np.eye(20, STEPS, 2) > 0, np.nan, 1.0), r"sample_weight\[0, 2\]=nan"),
    ],
)  # fmt: skip
def test_bad_per_position_weights_are_refused_naming_what_was_received(weights, message):
    model, k = keras_model("sequence_mse")
    with model:
        before = model.get_weights()
        with pytest.raises(InvalidArgumentError, match=message):
            model.fit(k["x"], k["y"], epochs=1, verbose=0, sample_weight=weights)
        for name, value in model.get_weights().items():
            np.testing.assert_array_equal(value, before[name])  # refused before any step


def test_weighted_metrics_take_one_weight_per_example_or_one_per_position():
    """As Keras' weighted Mean: per-position weights weigh each position's values (the mean error over each step's
    units here), sum(w e) / sum(w) over every position."""
    k = fixture("sequence_mse")
    x, y = k["x"], k["y"]
    with sequence_regression() as model:
        model.compile(optimizer="sgd", loss="mse", weighted_metrics=["mae"], engine="portable")
        per_example = np.linspace(0.0, 2.0, len(x)).astype(np.float32)
        result = model.evaluate(x, y, sample_weight=per_example, return_dict=True)
        error = np.abs(model.predict(x, verbose=0) - y)
        assert result["mae"] == pytest.approx(
            (per_example * error.mean(axis=(1, 2))).sum() / per_example.sum(), rel=1e-5
        )
        per_position = k["sample_weight"]
        result = model.evaluate(x, y, sample_weight=per_position, return_dict=True)
        expected = (per_position * error.mean(axis=2)).sum() / per_position.sum()
        assert result["mae"] == pytest.approx(expected, rel=1e-5)


def test_a_model_of_several_outputs_takes_one_weight_per_example_per_output():
    x = Input(STEPS, 3, name="x")
    model = Model(x, [Dense(2, name="a")(x), Dense(1, name="b")(x)], seed=0)
    with model:
        model.compile(optimizer="sgd", loss=["mse", "mse"], engine="portable")
        with pytest.raises(InvalidArgumentError, match=r"per-position weights are taken for a model of one output"):
            model.fit(X, [Y, Y[..., :1]], verbose=0, sample_weight=W)
