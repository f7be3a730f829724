"""A Model of several outputs: a classification head and a regression head on a shared trunk, trained on both
engines against a numpy forward and backward (itself checked by finite differences), with loss weights,
per-output metrics, save/load/resume, the export in onnxruntime, and the errors of each argument."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest

from onnxtrain.callbacks import CSVLogger
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnsupportedError
from onnxtrain.history import History
from onnxtrain.layers import Dense, Input
from onnxtrain.loading import load_model
from onnxtrain.model import Model
from onnxtrain.optimizers import SGD

RNG = np.random.default_rng(7)
X = RNG.normal(size=(32, 4)).astype(np.float32)
Y_CLASS = RNG.integers(0, 3, size=32)
Y_VALUE = RNG.normal(size=(32, 2)).astype(np.float32)


def two_heads(seed: int = 0) -> Model:
    x = Input(4, name="x")
    h = Dense(6, activation="tanh", name="trunk")(x)
    return Model(x, [Dense(3, name="kind")(h), Dense(2, activation="linear", name="size")(h)], seed=seed)


def forward(w: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h = np.tanh(x @ w["trunk.kernel"] + w["trunk.bias"])
    return h, h @ w["kind.kernel"] + w["kind.bias"], h @ w["size.kernel"] + w["size.bias"]


def losses(w: dict[str, np.ndarray], x: np.ndarray, yc: np.ndarray, yv: np.ndarray) -> tuple[float, float]:
    _, z, r = forward(w, x)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(x)), yc].mean()), float(((r - yv) ** 2).mean())


def gradients(w: dict[str, np.ndarray], x: np.ndarray, yc: np.ndarray, yv: np.ndarray, weights: tuple[float, float]):
    """The gradient of weights[0] * cross-entropy + weights[1] * mse, by hand."""
    h, z, r = forward(w, x)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    dz = weights[0] * (p - np.eye(3)[yc]) / len(x)
    dr = weights[1] * 2 * (r - yv) / r.size
    da = (dz @ w["kind.kernel"].T + dr @ w["size.kernel"].T) * (1 - h * h)
    return {
        "trunk.kernel": x.T @ da, "trunk.bias": da.sum(0), "kind.kernel": h.T @ dz, "kind.bias": dz.sum(0),
        "size.kernel": h.T @ dr, "size.bias": dr.sum(0),
    }  # fmt: skip


def test_the_numpy_gradient_matches_finite_differences():
    w = {k: v.astype(np.float64) for k, v in two_heads().get_weights().items()}
    x, weights = X[:8].astype(np.float64), (1.0, 0.5)
    analytic = gradients(w, x, Y_CLASS[:8], Y_VALUE[:8], weights)
    for name, value in w.items():
        numeric = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            plus, minus = {**w, name: value.copy()}, {**w, name: value.copy()}
            plus[name][i] += 1e-6
            minus[name][i] -= 1e-6
            lp, lm = losses(plus, x, Y_CLASS[:8], Y_VALUE[:8]), losses(minus, x, Y_CLASS[:8], Y_VALUE[:8])
            numeric[i] = (np.dot(weights, lp) - np.dot(weights, lm)) / 2e-6
        np.testing.assert_allclose(analytic[name], numeric, atol=1e-7, err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["portable", "ort-training"])
@pytest.mark.parametrize("loss_weights", [None, [1.0, 0.5], {"size": 3.0}])
def test_two_heads_train_as_numpy_sgd_on_the_weighted_sum(engine, loss_weights):
    model = two_heads()
    w = {k: v.astype(np.float64) for k, v in model.get_weights().items()}
    given = {"kind": 1.0, "size": 1.0}
    if isinstance(loss_weights, list):
        given = dict(zip(given, loss_weights, strict=True))
    elif isinstance(loss_weights, dict):
        given.update(loss_weights)
    weights = (given["kind"], given["size"])
    with model:
        model.compile(
            optimizer=SGD(learning_rate=0.1),
            loss={"kind": "sparse_categorical_crossentropy", "size": "mse"},
            loss_weights=loss_weights,
            engine=engine,
        )
        history = model.fit(X, [Y_CLASS, Y_VALUE], epochs=2, batch_size=8, shuffle=False, verbose=0)
        trained = model.get_weights()
    step_losses = []
    for _ in range(2):
        for start in range(0, 32, 8):
            rows = slice(start, start + 8)
            step_losses.append(losses(w, X[rows].astype(np.float64), Y_CLASS[rows], Y_VALUE[rows]))
            grads = gradients(w, X[rows].astype(np.float64), Y_CLASS[rows], Y_VALUE[rows], weights)
            w = {name: value - 0.1 * grads[name] for name, value in w.items()}
    for name, value in w.items():
        np.testing.assert_allclose(trained[name], value, atol=2e-5, err_msg=name)
    first_epoch = np.array(step_losses[:4]).mean(axis=0)
    assert history.history["kind_loss"][0] == pytest.approx(first_epoch[0], rel=1e-5)
    assert history.history["size_loss"][0] == pytest.approx(first_epoch[1], rel=1e-5)
    assert history.history["loss"][0] == pytest.approx(np.dot(weights, first_epoch), rel=1e-5)


@pytest.mark.slow
def test_one_loss_applies_to_every_output_and_a_zero_weight_freezes_a_head():
    model = two_heads()
    before = model.get_weights()
    with model:
        model.compile(optimizer="sgd", loss="mse", loss_weights={"kind": 0.0})
        yc = np.eye(3, dtype=np.float32)[Y_CLASS]  # mse on the class head: one-hot targets
        model.fit(X, {"kind": yc, "size": Y_VALUE}, epochs=1, batch_size=8, verbose=0)
        after = model.get_weights()
        result = model.evaluate(X, [yc, Y_VALUE])
        kind, size = model.predict(X)
    np.testing.assert_array_equal(after["kind.kernel"], before["kind.kernel"])
    assert not np.array_equal(after["size.kernel"], before["size.kernel"])
    assert result.metrics["kind_loss"] == pytest.approx(float(((kind - yc) ** 2).mean()), rel=1e-5)
    assert result.metrics["size_loss"] == pytest.approx(float(((size - Y_VALUE) ** 2).mean()), rel=1e-5)
    assert result.loss == pytest.approx(result.metrics["size_loss"], rel=1e-5)  # 0 * kind_loss + 1 * size_loss


@pytest.mark.slow
def test_per_output_metrics_history_and_csv_keys(tmp_path):
    model = two_heads()
    with model:
        model.compile(
            optimizer="adam",
            loss=["sparse_categorical_crossentropy", "mae"],
            metrics={"kind": "accuracy", "size": ["mae", "mse", "rmse"]},
        )
        history = model.fit(
            X,
            [Y_CLASS, Y_VALUE],
            epochs=2,
            batch_size=8,
            verbose=0,
            validation_data=(X[:8], [Y_CLASS[:8], Y_VALUE[:8]]),
            callbacks=[CSVLogger(tmp_path / "log.csv")],
        )
        result = model.evaluate(X, [Y_CLASS, Y_VALUE])
        figures = model.evaluate(X, [Y_CLASS, Y_VALUE], return_dict=True)
        classes, values = model.predict(X, verbose=0)
    keys = ["loss", "kind_loss", "size_loss", "kind_accuracy", "size_mae", "size_mse", "size_rmse"]  # names given
    logged = ["kind_accuracy", "kind_loss", "loss", "size_loss", "size_mae", "size_mse", "size_rmse"]  # sorted
    assert list(history.history) == logged + [f"val_{key}" for key in logged]  # Keras 3's order
    assert figures == dict(zip(keys, result, strict=True))  # Keras' return_dict=True: keyed as the logs ...
    assert list(figures) == logged  # ... and sorted as they are, where the list keeps the loss first
    assert list(History.from_csv(tmp_path / "log.csv").history) == list(history.history)
    assert list(result) == [result.loss, *(result.metrics[key] for key in keys[1:])]
    assert result.metrics["kind_accuracy"] == pytest.approx(float((classes == Y_CLASS).mean()))
    assert result.metrics["size_mae"] == pytest.approx(float(np.abs(values - Y_VALUE).mean()), rel=1e-5)
    assert result.metrics["size_mse"] == pytest.approx(float(((values - Y_VALUE) ** 2).mean()), rel=1e-5)
    assert result.metrics["size_loss"] == pytest.approx(result.metrics["size_mae"], rel=1e-5)  # the loss is mae
    assert result.metrics["size_rmse"] == pytest.approx(result.metrics["size_mse"] ** 0.5)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["portable", "ort-training"])
def test_save_load_resume_and_export_parity(tmp_path, engine):
    model = two_heads()
    data = (X, [Y_CLASS, Y_VALUE])
    with model:
        model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"], metrics="mae", engine=engine)
        model.fit(*data, epochs=1, batch_size=8, verbose=0)
        model.save(tmp_path / "saved", save_optimizer_state=True)
        model.export(tmp_path / "model.onnx")
        expected = model.evaluate(*data)
        kind, size = model.predict(X[:5])
        continued = model.fit(*data, epochs=1, batch_size=8, shuffle=False, verbose=0).history
        weights = model.get_weights()
    with load_model(tmp_path / "saved", compile=False) as uncompiled:  # the saved losses shape its export too
        assert (
            uncompiled.inference_model().SerializeToString() == onnx.load(tmp_path / "model.onnx").SerializeToString()
        )
    with load_model(tmp_path / "saved") as loaded:
        assert str(loaded.evaluate(*data)) == str(expected)
        resumed = loaded.fit(*data, epochs=1, batch_size=8, shuffle=False, verbose=0).history
        resumed_weights = loaded.get_weights()
    assert resumed == continued
    for name, value in weights.items():
        np.testing.assert_array_equal(resumed_weights[name], value, err_msg=name)
    exported = onnx.load(tmp_path / "model.onnx")
    assert [o.name for o in exported.graph.output] == ["kind", "kind_probabilities", "size"]
    logits, probabilities, values = onnxruntime.InferenceSession(str(tmp_path / "model.onnx")).run(
        None, {"input": X[:5]}
    )
    np.testing.assert_array_equal(logits.argmax(axis=1), kind)
    np.testing.assert_allclose(values, size, rtol=1e-6)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probabilities, shifted / shifted.sum(axis=1, keepdims=True), rtol=1e-5)


def test_summary_marks_each_output_by_its_loss():
    model = two_heads()
    with model:
        model.compile(loss={"kind": "sparse_categorical_crossentropy", "size": "mse"})
        text = model.summary(print_fn=None)
    assert "kind(Dense) [linear (logits)]" in text and "size(Dense) [linear" not in text
    assert model.output_names == ["kind", "size"] and model.output_shape == [(3,), (2,)]


@pytest.mark.parametrize(
    ("compile_args", "error", "match"),
    [
        ({"loss": ["mse", "mse", "mse"]}, InvalidArgumentError, r"one entry per output: 2 \(\['kind', 'size'\]\)\. "
         r"Received: a list of 3"),
        ({"loss": {"kind": "mse", "sizes": "mse"}}, InvalidArgumentError, r"output names as keys: \['kind', 'size'\]\. "
         r"Received unknown key\(s\): \['sizes'\]"),
        ({"loss": "mse", "loss_weights": [1.0]}, InvalidArgumentError, r"loss_weights given as a list .* 2 .* of 1"),
        ({"loss": "mse", "loss_weights": [1.0, -1.0]}, InvalidArgumentError, r"non-negative .* -1.0 for output 'size'"),
        ({"loss": "mse", "metrics": {"other": "mae"}}, InvalidArgumentError, r"Received unknown key\(s\): \['other'\]"),
    ],
)  # fmt: skip
def test_bad_compile_arguments_are_refused(compile_args, error, match):
    with two_heads() as model, pytest.raises(error, match=match):
        model.compile(**compile_args)


def test_loss_weights_on_one_output_is_refused():
    x = Input(4)
    with Model(x, Dense(2)(x)) as model, pytest.raises(InvalidArgumentError, match="this one has one"):
        model.compile(loss="mse", loss_weights=[1.0])


@pytest.mark.parametrize(
    ("y", "error", "match"),
    [
        ([Y_CLASS], InvalidArgumentError, r"one array per output \(2: \['kind', 'size'\]\)\. Received: 1"),
        ({"kind": Y_CLASS, "sise": Y_VALUE}, InvalidArgumentError, r"keyed by the output names .*unknown: \['sise'\]"),
        (Y_CLASS, InvalidTypeError, "a list of arrays .* or a dict"),
        ([Y_CLASS[:5], Y_VALUE], InvalidArgumentError, r"as many labels for every output.*'kind': 5, 'size': 32"),
        ([Y_CLASS, Y_VALUE[:, :1]], InvalidArgumentError, r"y\['size'\].*shape \(N, 2\)"),
    ],
)  # fmt: skip
def test_labels_of_the_wrong_count_or_shape_are_refused(y, error, match):
    with two_heads() as model:
        model.compile(loss=["sparse_categorical_crossentropy", "mse"])
        with pytest.raises(error, match=match):
            model.evaluate(X, y)


def test_a_dict_of_outputs_names_them_by_key():
    x = Input(4)
    h = Dense(6)(x)
    with Model(x, {"kind": Dense(3)(h), "size": Dense(2, activation="linear")(h)}, seed=0) as model:
        assert model.output_names == ["kind", "size"]
        model.compile(optimizer="sgd", loss={"kind": "sparse_categorical_crossentropy", "size": "mse"})
        result = model.evaluate(X, {"kind": Y_CLASS, "size": Y_VALUE})
    assert list(result.metrics) == ["kind_loss", "size_loss"]
    named = Dense(2, name="other")(h)  # Keras keys the output "size" whatever its layer is named
    assert Model(x, {"kind": Dense(3)(h), "size": named}).output_names == ["kind", "size"]


def test_predict_softly_gives_each_classification_head_its_probabilities(tmp_path):
    x = Input(4)
    h = Dense(6)(x)
    model = Model(x, [Dense(3, name="kind")(h), Dense(1, activation="sigmoid", name="flag")(h)], seed=0)
    with model:
        model.compile(loss=["sparse_categorical_crossentropy", "binary_crossentropy"])
        kind_logits, flag = onnxruntime.InferenceSession(model.inference_model().SerializeToString()).run(
            ["kind", "flag"], {"input": X}
        )
        kind_probabilities, flag_probabilities = model.predict_softly(X)
        kind, flag_class = model.predict(X)
        with pytest.raises(UnsupportedError, match=r"one output; this one has 2 \(\['kind', 'flag'\]\)"):
            model.export_training_bundle(tmp_path / "bundle")
    shifted = np.exp(kind_logits - kind_logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(kind_probabilities, shifted / shifted.sum(axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_array_equal(flag_probabilities, flag)
    np.testing.assert_array_equal(kind, kind_logits.argmax(axis=1))
    np.testing.assert_array_equal(flag_class, (flag[:, 0] > 0.5).astype(np.int64))
