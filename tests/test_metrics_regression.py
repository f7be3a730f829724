"""Keras 3's regression metrics (R2Score, MeanAbsolutePercentageError, MeanSquaredLogarithmicError, LogCoshError,
CosineSimilarity): Keras' documented values, numpy references of Keras' formulas, and the way through compile (by
name and by class), weighted_metrics, evaluate, History, save and load, and a model of several outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from onnxtrain import Model, Sequential
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Dense, Input
from onnxtrain.loading import load_model
from onnxtrain.losses import MeanSquaredError
from onnxtrain.metrics import (
    CosineSimilarity,
    LogCoshError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    Metric,
    R2Score,
    named,
)

RNG = np.random.default_rng(3)
MSE = MeanSquaredError()


def _value(metric: Metric, y_true, y_pred, sample_weight=None) -> float:
    y_pred = np.asarray(y_pred, np.float32)
    y_true = np.asarray(y_true, np.float32)
    weights = None if sample_weight is None else np.asarray(sample_weight, np.float32)
    return metric.finish(metric.batch_sum(y_pred, y_true, MSE, weights), len(y_pred))


# Keras 3's docstring examples (keras/src/metrics/regression_metrics.py): (metric, y_true, y_pred, weights, value)
KERAS_EXAMPLES = {
    "mape": (MeanAbsolutePercentageError(), [[0, 1], [0, 0]], [[1, 1], [0, 0]], None, 250000000.0),
    "mape weighted": (MeanAbsolutePercentageError(), [[0, 1], [0, 0]], [[1, 1], [0, 0]], [1, 0], 500000000.0),
    "msle": (MeanSquaredLogarithmicError(), [[0, 1], [0, 0]], [[1, 1], [0, 0]], None, 0.12011322),
    "msle weighted": (MeanSquaredLogarithmicError(), [[0, 1], [0, 0]], [[1, 1], [0, 0]], [1, 0], 0.24022643),
    "logcosh": (LogCoshError(), [[0, 1], [0, 0]], [[1, 1], [0, 0]], None, 0.10844523),
    "logcosh weighted": (LogCoshError(), [[0, 1], [0, 0]], [[1, 1], [0, 0]], [1, 0], 0.21689045),
    "cosine": (CosineSimilarity(axis=1), [[0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [1.0, 1.0]], None, 0.49999997),
    "cosine weighted": (
        CosineSimilarity(axis=1),
        [[0.0, 1.0], [1.0, 1.0]],
        [[1.0, 0.0], [1.0, 1.0]],
        [0.3, 0.7],
        0.6999999,
    ),
    "r2": (R2Score(), [[1], [4], [3]], [[2], [4], [4]], None, 0.57142854),
}


@pytest.mark.parametrize("case", list(KERAS_EXAMPLES))
def test_regression_metrics_give_keras_documented_values(case: str):
    metric, y_true, y_pred, weights, expected = KERAS_EXAMPLES[case]
    assert _value(metric, y_true, y_pred, weights) == pytest.approx(expected, rel=1e-6)


# Keras' formulas in numpy: each the value per element before the mean over the last axis (or the whole example)
def _mape(t, p):
    return 100 * np.mean(np.abs((t - p) / np.maximum(np.abs(t), 1e-7)), axis=-1)


def _msle(t, p):
    return np.mean((np.log(np.maximum(p, 1e-7) + 1) - np.log(np.maximum(t, 1e-7) + 1)) ** 2, axis=-1)


def _logcosh(t, p):
    return np.mean(np.log(np.cosh(p - t)), axis=-1)


def _cosine(t, p, axis=-1):
    def unit(v):
        return v / np.maximum(np.linalg.norm(v, axis=axis, keepdims=True), 1e-7)

    return np.sum(unit(t) * unit(p), axis=axis)


def _mean_over_examples(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    per_example = values.reshape(len(values), -1).mean(axis=1)
    weights = np.ones(len(values)) if weights is None else weights
    return float(np.sum(per_example * weights) / np.sum(weights))


def _r2(t, p, weights=None, aggregation="uniform_average", regressors=0):
    w = np.ones(len(t)) if weights is None else weights
    mean = np.sum(t * w[:, None], axis=0) / w.sum()
    total = np.sum(w[:, None] * (t - mean) ** 2, axis=0)
    raw = 1 - np.sum(w[:, None] * (t - p) ** 2, axis=0) / total
    score = np.mean(raw) if aggregation == "uniform_average" else np.sum(total * raw) / np.sum(total)
    if regressors:
        n = t.size
        score = 1 - (1 - score) * (n - 1) / (n - regressors - 1)
    return float(score)


@pytest.mark.parametrize(
    ("metric", "reference"),
    [
        (MeanAbsolutePercentageError(), _mape),
        (MeanSquaredLogarithmicError(), _msle),
        (LogCoshError(), _logcosh),
        (CosineSimilarity(), _cosine),
        (CosineSimilarity(axis=1), lambda t, p: _cosine(t, p, axis=1)),
    ],
)
@pytest.mark.parametrize("shape", [(12, 3), (12, 4, 3)])
@pytest.mark.parametrize("weighted", [False, True])
def test_mean_metrics_match_keras_formulas_over_batches(metric, reference, shape, weighted):
    t = RNG.uniform(0.1, 3.0, shape).astype(np.float32)
    p = RNG.uniform(0.1, 3.0, shape).astype(np.float32)
    w = RNG.uniform(0.0, 2.0, shape[0]).astype(np.float32) if weighted else None
    metric.size(shape[1:])
    sums = sum(
        np.asarray(metric.batch_sum(p[i : i + 5], t[i : i + 5], MSE, None if w is None else w[i : i + 5]))
        for i in range(0, shape[0], 5)
    )
    expected = _mean_over_examples(reference(t.astype(np.float64), p.astype(np.float64)), w)
    assert metric.finish(sums, shape[0]) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("aggregation", ["uniform_average", "variance_weighted_average"])
@pytest.mark.parametrize("regressors", [0, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_r2_score_is_the_epochs_score_not_a_mean_of_batch_scores(aggregation, regressors, weighted):
    t = RNG.standard_normal((20, 3)).astype(np.float32)
    p = (t + RNG.normal(0, 0.5, t.shape)).astype(np.float32)
    w = RNG.uniform(0.1, 2.0, 20).astype(np.float32) if weighted else None
    metric = R2Score(class_aggregation=aggregation, num_regressors=regressors)
    sums = sum(
        np.asarray(metric.batch_sum(p[i : i + 6], t[i : i + 6], MSE, None if w is None else w[i : i + 6]))
        for i in range(0, 20, 6)
    )
    expected = _r2(t.astype(np.float64), p.astype(np.float64), w, aggregation, regressors)
    assert metric.finish(sums, 20) == pytest.approx(expected, rel=1e-6)
    batch_means = np.mean([_r2(t[i : i + 6], p[i : i + 6]) for i in range(0, 20, 6)])
    assert not math.isclose(batch_means, expected, rel_tol=1e-3)


def test_r2_score_falls_back_to_the_standard_score_with_too_many_regressors_as_keras():
    t, p = np.array([[1.0], [4.0], [3.0]]), np.array([[2.0], [4.0], [4.0]])
    with pytest.warns(UserWarning, match="More independent predictors"):
        assert _value(R2Score(num_regressors=5), t, p) == pytest.approx(0.57142854, rel=1e-6)
    with pytest.warns(UserWarning, match="Division by zero"):
        assert _value(R2Score(num_regressors=2), t, p) == pytest.approx(0.57142854, rel=1e-6)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: R2Score(class_aggregation=None), r"class_aggregation=None"),
        (lambda: R2Score(num_regressors=-1), r"num_regressors=-1"),
        (lambda: R2Score().size((4, 2)), r"outputs \[batch, columns\].*\(4, 2\)"),
        (lambda: CosineSimilarity(axis=0), r"axis=0"),
        (lambda: CosineSimilarity(axis=2).size((3,)), r"axis=2\) names no axis"),
    ],
)
def test_bad_regression_metric_arguments_are_refused_by_name(make, message):
    with pytest.raises(InvalidArgumentError, match=message):
        make()


@pytest.mark.parametrize(
    ("name", "cls", "key"),
    [
        ("r2_score", R2Score, "r2_score"),
        ("R2Score", R2Score, "R2Score"),
        ("mape", MeanAbsolutePercentageError, "mape"),
        ("MAPE", MeanAbsolutePercentageError, "MAPE"),
        ("mean_absolute_percentage_error", MeanAbsolutePercentageError, "mean_absolute_percentage_error"),
        ("msle", MeanSquaredLogarithmicError, "msle"),
        ("MeanSquaredLogarithmicError", MeanSquaredLogarithmicError, "MeanSquaredLogarithmicError"),
        ("logcosh", LogCoshError, "logcosh"),
        ("LogCoshError", LogCoshError, "LogCoshError"),
        ("cosine_similarity", CosineSimilarity, "cosine_similarity"),
    ],
)
def test_regression_metric_names_build_their_class_keyed_by_the_name_given(name, cls, key):
    metric = named(name)
    assert type(metric) is cls
    assert metric.name == key
    assert named(metric.get_config()) == metric  # a save's config rebuilds it


def test_default_names_and_directions_are_keras():
    metrics = [R2Score(), MeanAbsolutePercentageError(), MeanSquaredLogarithmicError(), LogCoshError()]
    assert [m.name for m in metrics] == [
        "r2_score",
        "mean_absolute_percentage_error",
        "mean_squared_logarithmic_error",
        "logcosh",
    ]
    assert [m.direction for m in (*metrics, CosineSimilarity())] == ["up", "down", "down", "down", "up"]


def _regression_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = RNG.standard_normal((30, 4)).astype(np.float32)
    y = (x[:, :2] * 2 + 3 + RNG.normal(0, 0.3, (30, 2))).astype(np.float32)
    w = RNG.uniform(0.2, 2.0, 30).astype(np.float32)
    return x, y, w


@pytest.mark.parametrize("engine", ["portable"])
def test_regression_metrics_go_through_compile_fit_evaluate_save_and_load(tmp_path, engine):
    x, y, w = _regression_data()
    given = ["r2_score", "mape", MeanSquaredLogarithmicError(), LogCoshError(), CosineSimilarity()]
    with Sequential([Input(4), Dense(2, activation="linear")], seed=0) as model:
        model.compile(optimizer="adam", loss="mse", metrics=given, weighted_metrics=[R2Score()], engine=engine)
        history = model.fit(x, y, sample_weight=w, validation_data=(x, y, w), epochs=2, batch_size=8, verbose=0)
        result = model.evaluate(x, y, sample_weight=w, batch_size=7, return_dict=True)
        p = model.predict(x).astype(np.float64)
        model.save(tmp_path / "saved")
    # Keras' History: the first epoch's keys, the val_ ones among them, sorted ("weighted_" after "val_")
    assert list(history.history) == [
        "cosine_similarity",
        "logcosh",
        "loss",
        "mape",
        "mean_squared_logarithmic_error",
        "r2_score",
        "val_cosine_similarity",
        "val_logcosh",
        "val_loss",
        "val_mape",
        "val_mean_squared_logarithmic_error",
        "val_r2_score",
        "val_weighted_r2_score",
        "weighted_r2_score",
    ]
    assert list(result) == [  # Keras 3's order: sorted
        "cosine_similarity",
        "logcosh",
        "loss",
        "mape",
        "mean_squared_logarithmic_error",
        "r2_score",
        "weighted_r2_score",
    ]
    t = y.astype(np.float64)
    assert result["r2_score"] == pytest.approx(_r2(t, p), rel=1e-5)
    assert result["weighted_r2_score"] == pytest.approx(_r2(t, p, w.astype(np.float64)), rel=1e-5)
    assert result["mape"] == pytest.approx(_mean_over_examples(_mape(t, p)), rel=1e-5)
    assert result["mean_squared_logarithmic_error"] == pytest.approx(_mean_over_examples(_msle(t, p)), rel=1e-5)
    assert result["logcosh"] == pytest.approx(_mean_over_examples(_logcosh(t, p)), rel=1e-5)
    assert result["cosine_similarity"] == pytest.approx(_mean_over_examples(_cosine(t, p)), rel=1e-5)
    with load_model(tmp_path / "saved") as loaded:
        assert loaded.evaluate(x, y, sample_weight=w, batch_size=7, return_dict=True) == pytest.approx(result)


def test_regression_metrics_of_a_model_of_several_outputs(tmp_path):
    x, y, _ = _regression_data()
    inputs = Input(4)
    outputs = [Dense(2, activation="linear", name="a")(inputs), Dense(1, activation="linear", name="b")(inputs)]
    with Model(inputs, outputs, seed=0) as model:
        model.compile(optimizer="adam", loss="mse", metrics={"a": [R2Score(), "mape"], "b": "logcosh"})
        result = model.evaluate(x, [y, y[:, :1]], batch_size=9, return_dict=True)
        pa, pb = (v.astype(np.float64) for v in model.predict(x))
        model.save(tmp_path / "saved")
    assert list(result) == ["a_loss", "a_mape", "a_r2_score", "b_logcosh", "b_loss", "loss"]  # sorted, as Keras 3's
    t = y.astype(np.float64)
    assert result["a_r2_score"] == pytest.approx(_r2(t, pa), rel=1e-5)
    assert result["a_mape"] == pytest.approx(_mean_over_examples(_mape(t, pa)), rel=1e-5)
    assert result["b_logcosh"] == pytest.approx(_mean_over_examples(_logcosh(t[:, :1], pb)), rel=1e-5)
    with load_model(tmp_path / "saved") as loaded:
        assert loaded.evaluate(x, [y, y[:, :1]], batch_size=9, return_dict=True) == pytest.approx(result)
