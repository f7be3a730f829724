"""Metrics of one's own: a numpy function fn(y_true, y_pred) as a mean metric (Keras' MeanMetricWrapper), a
`Metric` subclass, how a save names them and how `load_model` gets them back (passed again, or registered with
`onnxtrain.metrics.register`), and why a function cannot be a loss. Doubles as the guide to writing one."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest

from onnxtrain import Model, Sequential, _own_losses
from onnxtrain._metric_base import DEFINED
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelFileError, UnknownIdentifierError
from onnxtrain.layers import Dense, Input
from onnxtrain.loading import load_model
from onnxtrain.losses import Loss
from onnxtrain.metrics import MeanMetricWrapper, Metric, R2Score, named, register

RNG = np.random.default_rng(11)
X = RNG.standard_normal((24, 3)).astype(np.float32)
Y = (X[:, :2] + RNG.normal(0, 0.2, (24, 2))).astype(np.float32)
W = RNG.uniform(0.2, 2.0, 24).astype(np.float32)


def max_error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """A Keras-style metric function: one value per example."""
    return np.max(np.abs(y_true - y_pred), axis=-1)


class R2(Metric):
    """A metric of one's own whose value needs the whole epoch: the sums of the residuals, targets and their squares
    (over every value), so the score comes from the totals."""

    name = "r2"
    direction = "up"

    def size(self, output_shape, weighted=False):
        return 4

    def batch_sum(self, outputs, labels, loss, sample_weight=None):
        t = labels.reshape(outputs.shape).astype(np.float64)
        return np.array([np.sum((t - outputs) ** 2), np.sum(t), np.sum(t * t), t.size])

    def finish(self, sums, examples):
        residual, total, squares, count = sums
        return float(1 - residual / (squares - total * total / count))

    def get_config(self):
        return "r2"

    def __eq__(self, other):
        return type(other) is R2

    def __hash__(self):
        return hash(R2)


@pytest.fixture(autouse=True)
def _registry_as_it_was():
    """Each test leaves the registry, and the metric and loss classes defined, as it found them (all are
    process-wide, as Keras' registration is)."""
    from onnxtrain import metrics

    before, defined, losses_defined = dict(metrics._REGISTERED.objects), dict(DEFINED), dict(_own_losses.DEFINED)
    yield
    metrics._REGISTERED.objects.clear()
    metrics._REGISTERED.objects.update(before)
    DEFINED.clear()
    DEFINED.update(defined)
    _own_losses.DEFINED.clear()
    _own_losses.DEFINED.update(losses_defined)


@pytest.fixture
def undefined_r2(monkeypatch):
    """A process that has not defined R2 (a load in another script): its class is not recorded."""
    monkeypatch.delitem(DEFINED, "R2")


def _model() -> Sequential:
    return Sequential([Input(3), Dense(2, activation="linear")], seed=0)


def test_a_metric_function_is_the_weighted_mean_of_its_values_named_after_it():
    with _model() as model:
        model.compile(optimizer="sgd", loss="mse", metrics=[max_error], weighted_metrics=[max_error])
        history = model.fit(X, Y, sample_weight=W, epochs=1, verbose=0)
        result = model.evaluate(X, Y, sample_weight=W, batch_size=5, return_dict=True)
        values = max_error(Y.astype(np.float64), model.predict(X).astype(np.float64))
    assert list(history.history) == ["loss", "max_error", "weighted_max_error"]
    assert result["max_error"] == pytest.approx(values.mean(), rel=1e-5)
    assert result["weighted_max_error"] == pytest.approx(np.sum(W * values) / np.sum(W), rel=1e-5)


def test_a_metric_function_alone_a_partial_and_a_wrapper_of_another_name_compile():
    def within_half(y_true, y_pred):
        return np.mean(np.abs(y_true - y_pred) < 0.5, axis=-1)

    with _model() as model:
        model.compile(optimizer="sgd", loss="mse", metrics=within_half)
        assert list(model.evaluate(X, Y, return_dict=True)) == ["loss", "within_half"]
        model.compile(optimizer="sgd", loss="mse", metrics=[MeanMetricWrapper(max_error, name="worst")])
        assert list(model.evaluate(X, Y, return_dict=True)) == ["loss", "worst"]
        model.compile(optimizer="sgd", loss="mse", metrics=[functools.partial(max_error)])
        assert list(model.evaluate(X, Y, return_dict=True)) == ["loss", "partial"]


# Keras 3.15 (JAX backend, run_eagerly=True), a metric function under loss "sparse_categorical_crossentropy" on a
# Dense(3) fed labels np.arange(8) % 3 (int64, shape (8,)): y_true arrives as given, (8,) int64, and y_pred as the
# model's output, (8, 3) float32. (Labels given as (8, 1) arrive as (8, 1) there; here as (8,), flat.)
KERAS_SPARSE_Y_TRUE = ((8,), "int64")
KERAS_SPARSE_Y_PRED = ((8, 3), "float32")


def test_a_metric_function_gets_class_indices_as_given_under_a_sparse_loss_as_keras():
    seen = []

    def sparse_acc(y_true, y_pred):
        seen.append((y_true.shape, str(y_true.dtype), y_pred.shape, str(y_pred.dtype)))
        return (np.argmax(y_pred, -1) == y_true).astype(np.float32)

    labels = np.arange(8) % 3
    with Sequential([Input(3), Dense(3, activation="linear")], seed=0) as model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=[sparse_acc, "accuracy"])
        result = model.evaluate(X[:8], labels, batch_size=8, return_dict=True)
        model.evaluate(X[:8], labels.reshape(-1, 1).astype(np.int32), batch_size=8)
        probabilities = model.predict_softly(X[:8])
    assert seen[0] == (*KERAS_SPARSE_Y_TRUE, *KERAS_SPARSE_Y_PRED)
    assert seen[1][:2] == KERAS_SPARSE_Y_TRUE  # (8, 1) int32 labels: flat class indices here
    assert result["sparse_acc"] == pytest.approx(np.mean(probabilities.argmax(-1) == labels))
    assert result["sparse_acc"] == pytest.approx(result["accuracy"])


def test_a_metric_functions_error_names_it_and_what_it_received():
    def broadcast(y_true, y_pred):
        return y_true + y_pred  # (8,) + (8, 3): numpy refuses

    with Sequential([Input(3), Dense(3, activation="linear")], seed=0) as model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=[broadcast])
        with pytest.raises(InvalidArgumentError) as error:
            model.evaluate(X[:8], np.arange(8) % 3, batch_size=8)
    text = str(error.value)
    for part in ("Metric function 'broadcast'", "raised ValueError: operands could not be broadcast", "int64 (8,)"):
        assert part in text
    assert "float32 (8, 3)" in text and isinstance(error.value.__cause__, ValueError)


@pytest.mark.slow
def test_a_metric_class_without_get_config_saves_its_class_name_and_its_name(tmp_path):
    class Total(Metric):  # no get_config: the default one
        def __init__(self, name="total"):
            self.name = name

        def size(self, output_shape, weighted=False):
            return 1

        def batch_sum(self, outputs, labels, loss, sample_weight=None):
            return float(np.sum(outputs))

        def finish(self, sums, examples):
            return sums / examples

    class Scaled(Total):
        def __init__(self, factor):
            self.factor, self.name = factor, "scaled"

    assert Total(name="sum").get_config() == {"class_name": "Total", "config": {"name": "sum"}}
    with _model() as model:
        model.compile(optimizer="sgd", loss="mse", metrics=[Total(name="sum")])
        expected = model.evaluate(X, Y, return_dict=True)
        model.save(tmp_path / "saved")
        model.compile(optimizer="sgd", loss="mse", metrics=[Scaled(2.0)])
        with pytest.raises(InvalidArgumentError, match=r"Scaled.__init__ needs \['factor'\].*Define get_config"):
            model.save(tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    with load_model(tmp_path / "saved") as loaded:
        assert loaded.evaluate(X, Y, return_dict=True) == pytest.approx(expected)
    assert list(expected) == ["loss", "sum"]


def test_a_metric_function_must_return_a_value_per_example():
    def batch_mean(y_true, y_pred):
        return float(np.mean(np.abs(y_true - y_pred)))

    with _model() as model:
        model.compile(optimizer="sgd", loss="mse", metrics=[batch_mean])
        with pytest.raises(
            InvalidArgumentError, match=r"'batch_mean' expects a value per example.*Received: shape \(\)"
        ):
            model.evaluate(X, Y)


def test_a_lambda_metric_trains_but_save_refuses_it(tmp_path):
    with _model() as model:
        model.compile(optimizer="sgd", loss="mse", metrics=[lambda t, p: np.abs(t - p).mean(-1)])
        assert list(model.fit(X, Y, epochs=1, verbose=0).history) == ["<lambda>", "loss"]  # sorted, as Keras 3's
        with pytest.raises(InvalidArgumentError, match=r"'<lambda>' is a lambda, which a saved model cannot name.*def"):
            model.save(tmp_path / "saved")
    assert not (tmp_path / "saved").exists()  # refused before anything is written


def test_a_saved_metric_function_loads_when_passed_again(tmp_path):
    with _model() as model:
        model.compile(optimizer="sgd", loss="mse", metrics=[max_error])
        model.fit(X, Y, epochs=1, verbose=0)
        expected = model.evaluate(X, Y, return_dict=True)
        model.save(tmp_path / "saved")
    message = (
        r"compiled with the metric function 'max_error'.*@onnxtrain\.metrics\.register.*custom_objects"
        r".*metrics=\[\.\.\.\]"
    )
    with pytest.raises(ModelFileError, match=message):
        load_model(tmp_path / "saved")
    with load_model(tmp_path / "saved", metrics=[max_error]) as loaded:
        assert loaded.evaluate(X, Y, return_dict=True) == pytest.approx(expected)


@pytest.mark.slow
def test_a_metric_class_of_ones_own_loads_once_defined_as_a_layer_class_does(tmp_path):
    with _model() as model:
        model.compile(optimizer="sgd", loss="mse", metrics=[R2()])
        model.fit(X, Y, epochs=1, verbose=0)
        expected = model.evaluate(X, Y, return_dict=True)
        model.save(tmp_path / "saved")
    with load_model(tmp_path / "saved") as loaded:  # R2 is defined here: no register, no custom_objects
        assert isinstance(loaded._trainer.compiled.metrics[0], R2)
        assert loaded.evaluate(X, Y, return_dict=True) == pytest.approx(expected)


def test_a_metric_class_of_ones_own_loads_when_passed_again_or_without_compiling(tmp_path, undefined_r2):
    with _model() as model:
        model.compile(optimizer="sgd", loss="mse", metrics=[R2()])
        model.fit(X, Y, epochs=1, verbose=0)
        expected = model.evaluate(X, Y, return_dict=True)
        model.save(tmp_path / "saved")
    assert expected["r2"] == pytest.approx(_r2_of_all_values(Y, model_predictions(tmp_path)), rel=1e-5)
    with pytest.raises(ModelFileError) as error:
        load_model(tmp_path / "saved")
    text = str(error.value)
    assert "compile settings that cannot be used" not in text  # not a damaged file
    for part in ("the metric 'r2'", "metrics=[R2()]", "@onnxtrain.metrics.register", "compile=False"):
        assert part in text
    with load_model(tmp_path / "saved", metrics=[R2()]) as loaded:
        assert loaded.evaluate(X, Y, return_dict=True) == pytest.approx(expected)
    with load_model(tmp_path / "saved", compile=False) as loaded:
        loaded.compile(optimizer="sgd", loss="mse", metrics=[R2()])
        assert loaded.evaluate(X, Y, return_dict=True) == pytest.approx(expected)


def model_predictions(directory) -> np.ndarray:
    with load_model(directory / "saved", compile=False) as loaded:
        return loaded.predict(X)


def _r2_of_all_values(t: np.ndarray, p: np.ndarray) -> float:
    t, p = t.astype(np.float64), p.astype(np.float64)
    return float(1 - np.sum((t - p) ** 2) / np.sum((t - t.mean()) ** 2))


def test_registered_metrics_load_from_the_save(tmp_path):
    @register
    class Registered2(R2):
        name = "registered2"

        def get_config(self):
            return "registered2"  # a name: the class whose snake-cased name it is

        def __eq__(self, other):
            return type(other) is Registered2

        def __hash__(self):
            return hash(Registered2)

    @register
    class Scaled(Metric):  # arguments: Keras' {"class_name", "config"}
        def __init__(self, factor=1.0, name="scaled"):
            self.factor, self.name = factor, name

        def size(self, output_shape, weighted=False):
            return 1

        def batch_sum(self, outputs, labels, loss, sample_weight=None):
            return float(np.sum(outputs)) * self.factor

        def finish(self, sums, examples):
            return sums / examples

        def get_config(self):
            return {"class_name": "Scaled", "config": {"factor": self.factor, "name": self.name}}

    register(max_error)
    with _model() as model:
        given = [Registered2(), Scaled(factor=2.0, name="twice"), max_error]
        model.compile(optimizer="sgd", loss="mse", metrics=given, weighted_metrics=[max_error])
        model.fit(X, Y, epochs=1, verbose=0)
        expected = model.evaluate(X, Y, sample_weight=W, return_dict=True)
        model.save(tmp_path / "saved")
    assert list(expected) == ["loss", "max_error", "registered2", "twice", "weighted_max_error"]  # Keras': sorted
    with load_model(tmp_path / "saved") as loaded:
        assert loaded.evaluate(X, Y, sample_weight=W, return_dict=True) == pytest.approx(expected)


@pytest.mark.slow
def test_a_model_of_several_outputs_loads_with_its_own_metrics_passed_again(tmp_path, undefined_r2):
    inputs = Input(3)
    outputs = [Dense(2, activation="linear", name="a")(inputs), Dense(1, activation="linear", name="b")(inputs)]
    labels = [Y, Y[:, :1]]
    with Model(inputs, outputs, seed=0) as model:
        model.compile(
            optimizer="sgd",
            loss={"a": "mse", "b": "mae"},
            loss_weights={"a": 1.0, "b": 0.5},
            metrics={"a": [R2()], "b": "mae"},
            weighted_metrics=["mse"],
        )
        model.fit(X, labels, epochs=1, verbose=0)
        expected = model.evaluate(X, labels, sample_weight=W, return_dict=True)
        model.save(tmp_path / "saved")
    with pytest.raises(ModelFileError, match=r"compile\.loss\.outputs\[0\]\.metrics\[0\] = \"r2\""):
        load_model(tmp_path / "saved")
    with load_model(tmp_path / "saved", metrics={"a": [R2()], "b": "mae"}) as loaded:
        assert loaded.evaluate(X, labels, sample_weight=W, return_dict=True) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        (lambda t, p: t, InvalidTypeError, "a lambda has none to save"),
        (3, InvalidTypeError, "a Metric subclass or a function"),
        (R2Score, InvalidArgumentError, "'R2Score' is the name of a built-in metric"),
    ],
)
def test_register_refuses_what_a_save_could_not_name(given, error, message):
    with pytest.raises(error, match=re.escape(message)):
        register(given)


def test_a_metric_name_nobody_registered_is_refused_with_the_ways_to_give_one():
    with pytest.raises(UnknownIdentifierError, match=r"Could not interpret metric 'no_such'.*fn\(y_true, y_pred\)"):
        named("no_such")
    with pytest.raises(UnknownIdentifierError, match=r"metric function 'nobody'.*register"):
        named({"class_name": "MeanMetricWrapper", "config": {"fn": "nobody", "name": "nobody"}})


def test_a_function_as_loss_is_refused_saying_why_and_what_to_do():
    with _model() as model, pytest.raises(InvalidTypeError) as error:
        model.compile(optimizer="sgd", loss=max_error)
    text = str(error.value)
    for part in ("the function 'max_error'", "ONNX graphs", "subclass of onnxtrain.losses.Loss", "metrics=[fn]"):
        assert part in text


def test_a_loss_of_ones_own_subclasses_loss_and_emits_onnx():
    from dataclasses import dataclass, field

    @dataclass(frozen=True)
    class AbsoluteError(Loss):
        name: str = field(default="absolute_error", init=False)

        def elements(self, builder, output, labels):
            return builder.node("Abs", [builder.node("Sub", [output, labels])])

    with _model() as model:
        model.compile(optimizer="sgd", loss=AbsoluteError(), metrics=["mae"], engine="portable")
        result = model.evaluate(X, Y, return_dict=True)
    assert result["loss"] == pytest.approx(result["mae"], rel=1e-5)
