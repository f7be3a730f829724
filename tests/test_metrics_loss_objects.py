"""Keras' error metric classes (MeanAbsoluteError, MeanSquaredError, RootMeanSquaredError) and losses given as
metrics (`metrics=[losses.Huber()]`, or Keras' metric names of losses such as "hinge"): Keras 3.15's values,
numpy references over several batches, their keys, and the way through compile, fit, evaluate, save and load."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from onnxtrain import Sequential, losses
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Dense, Input
from onnxtrain.loading import load_model
from onnxtrain.metrics import (
    LossMetric,
    MeanAbsoluteError,
    MeanSquaredError,
    Metric,
    RootMeanSquaredError,
    named,
)

RNG = np.random.default_rng(5)
MSE = losses.MeanSquaredError()

# Keras 3.15's values (JAX backend) of keras.metrics.<Class>().update_state(Y_TRUE, Y_PRED[, sample_weight=W]) and
# keras.metrics.MeanMetricWrapper(keras.losses.<Loss>()).update_state(y_true, y_pred), which is what compile makes of
# a loss in `metrics`; over one batch, Keras' mean of batch losses is the mean over the examples (over several, see
# test_a_loss_object_metric_is_the_mean_of_batch_means_as_keras_wraps_it and tests/test_metrics_keras_parity.py).
Y_TRUE = [[0.5, 1.0, 2.0], [0.0, 3.0, 1.0]]
Y_PRED = [[1.0, 0.5, 2.5], [0.2, 2.0, 1.5]]
W = [0.25, 1.0]
PROBABILITY_TARGETS = [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]
PROBABILITIES = [[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]]
ONE_HOT = [[0, 0, 1], [1, 0, 0]]
BINARY_TARGETS = [[1, 0], [0, 1]]
BINARY_PROBABILITIES = [[0.9, 0.2], [0.4, 0.3]]
BINARY_LOGITS = [[2.0, -1.0], [-0.5, 0.3]]


def _value(metric: Metric, y_true, y_pred, loss=MSE, sample_weight=None) -> float:
    y_pred = np.asarray(y_pred, np.float32)
    labels = np.asarray(y_true, np.int64 if loss.classification else np.float32)
    weights = None if sample_weight is None else np.asarray(sample_weight, np.float32)
    metric.size(y_pred.shape[1:])
    return metric.finish(metric.batch_sum(y_pred, labels, loss, weights), len(y_pred))


# --- MeanAbsoluteError, MeanSquaredError, RootMeanSquaredError ---------------------------------------------------
@pytest.mark.parametrize(
    ("metric", "key", "unweighted", "weighted"),
    [
        (MeanAbsoluteError(), "mean_absolute_error", 0.5333333611488342, 0.5533334016799927),
        (MeanSquaredError(), "mean_squared_error", 0.3400000035762787, 0.39399999380111694),
        (RootMeanSquaredError(), "root_mean_squared_error", 0.5830951929092407, 0.6276941895484924),
    ],
)
def test_error_metric_classes_give_keras_values_and_names(metric, key, unweighted, weighted):
    assert metric.name == key and metric.direction == "down"
    assert _value(metric, Y_TRUE, Y_PRED) == pytest.approx(unweighted, rel=1e-6)
    assert _value(metric, Y_TRUE, Y_PRED, sample_weight=W) == pytest.approx(weighted, rel=1e-6)


@pytest.mark.parametrize(
    ("metric", "same_as"),
    [
        (MeanAbsoluteError(), "mean_absolute_error"),
        (MeanSquaredError(), "mean_squared_error"),
        (RootMeanSquaredError(), "root_mean_squared_error"),
        (MeanAbsoluteError(name="mae"), "mae"),
        (RootMeanSquaredError(name="rmse"), "rmse"),
    ],
)
def test_an_error_class_is_the_metric_of_its_name_and_its_config_rebuilds_it(metric, same_as):
    assert named(same_as) == metric
    assert named(metric.get_config()) == metric


def test_an_error_class_with_a_name_of_its_own_saves_its_class():
    metric = RootMeanSquaredError(name="val_fit")
    assert metric.get_config() == {"class_name": "RootMeanSquaredError", "config": {"name": "val_fit"}}
    rebuilt = named(metric.get_config())
    assert rebuilt == metric and _value(rebuilt, Y_TRUE, Y_PRED) == pytest.approx(0.5830951929092407, rel=1e-6)


# --- losses as metrics -------------------------------------------------------------------------------------------
# (loss, y_true, y_pred, the compile loss the batch comes under, Keras' name, Keras 3.15's value)
KERAS_LOSS_METRICS = {
    "mse": (losses.MeanSquaredError(), Y_TRUE, Y_PRED, MSE, "mean_squared_error", 0.3400000035762787),
    "mae": (losses.MeanAbsoluteError(), Y_TRUE, Y_PRED, MSE, "mean_absolute_error", 0.5333333611488342),
    "mape": (
        losses.MeanAbsolutePercentageError(),
        Y_TRUE,
        Y_PRED,
        MSE,
        "mean_absolute_percentage_error",
        33333380.0,
    ),
    "msle": (
        losses.MeanSquaredLogarithmicError(),
        Y_TRUE,
        Y_PRED,
        MSE,
        "mean_squared_logarithmic_error",
        0.05917993187904358,
    ),
    "log_cosh": (losses.LogCosh(), Y_TRUE, Y_PRED, MSE, "log_cosh", 0.15568451583385468),
    "cosine": (losses.CosineSimilarity(), Y_TRUE, Y_PRED, MSE, "cosine_similarity", -0.9509223699569702),
    "huber": (losses.Huber(delta=0.7), Y_TRUE, Y_PRED, MSE, "huber_loss", 0.16250000894069672),
    "poisson": (losses.Poisson(), Y_TRUE, Y_PRED, MSE, "poisson", 0.6792764663696289),
    "kld": (losses.KLDivergence(), PROBABILITY_TARGETS, PROBABILITIES, MSE, "kl_divergence", 0.08224663138389587),
    "cce": (
        losses.CategoricalCrossentropy(),
        ONE_HOT,
        PROBABILITIES,
        MSE,
        "categorical_crossentropy",
        0.5249110460281372,
    ),
    "cce smoothed": (
        losses.CategoricalCrossentropy(label_smoothing=0.1),
        ONE_HOT,
        PROBABILITIES,
        MSE,
        "categorical_crossentropy",
        0.6013271808624268,
    ),
    "bce": (
        losses.BinaryCrossentropy(),
        BINARY_TARGETS,
        BINARY_PROBABILITIES,
        MSE,
        "binary_crossentropy",
        0.5108256340026855,
    ),
    "bce smoothed": (
        losses.BinaryCrossentropy(label_smoothing=0.2),
        BINARY_TARGETS,
        BINARY_PROBABILITIES,
        MSE,
        "binary_crossentropy",
        0.5893677473068237,
    ),
    "bce from logits": (
        losses.BinaryCrossentropy(from_logits=True),
        BINARY_TARGETS,
        BINARY_LOGITS,
        losses.BinaryCrossentropy(from_logits=True),
        "binary_crossentropy",
        0.3671554923057556,
    ),
    "hinge": (losses.Hinge(), BINARY_TARGETS, BINARY_PROBABILITIES, MSE, "hinge", 0.8500000238418579),
    "squared hinge": (
        losses.SquaredHinge(),
        BINARY_TARGETS,
        BINARY_PROBABILITIES,
        MSE,
        "squared_hinge",
        0.9749999642372131,
    ),
}


@pytest.mark.parametrize("case", list(KERAS_LOSS_METRICS))
def test_a_loss_as_a_metric_gives_keras_value_and_name(case):
    loss, y_true, y_pred, compiled, key, expected = KERAS_LOSS_METRICS[case]
    metric = named(loss)
    assert isinstance(metric, LossMetric) and metric.name == key and metric.direction == "down"
    assert _value(metric, y_true, y_pred, compiled) == pytest.approx(expected, rel=2e-6)


def test_a_sparse_crossentropy_metric_reads_the_softmax_of_a_classifier_trained_on_logits():
    """Keras' SparseCategoricalCrossentropy metric on a model ending in softmax gives 0.5249110460281372 for these
    probabilities and class indices [2, 0]; here the engine's outputs are the logits the softmax is of."""
    logits = np.log(np.asarray(PROBABILITIES, np.float32))
    for given in (losses.SparseCategoricalCrossentropy(), "sparse_categorical_crossentropy"):
        for compiled in (losses.get("sparse_categorical_crossentropy"), losses.SparseCategoricalCrossentropy()):
            value = _value(named(given), [2, 0], logits, compiled)
            assert value == pytest.approx(0.5249110460281372, rel=2e-6)


def _huber(t: np.ndarray, p: np.ndarray, delta: float) -> np.ndarray:
    e = np.abs(p - t)
    return np.mean(np.where(e <= delta, 0.5 * e**2, delta * (e - 0.5 * delta)), axis=-1)


def _batch_sums(metric: Metric, t: np.ndarray, p: np.ndarray, w: np.ndarray | None, size: int = 5) -> np.ndarray:
    metric.size(t.shape[1:])
    return sum(
        np.asarray(metric.batch_sum(p[i : i + size], t[i : i + size], MSE, None if w is None else w[i : i + size]))
        for i in range(0, len(t), size)
    )


@pytest.mark.parametrize("shape", [(13, 3), (13, 4, 2)])
@pytest.mark.parametrize("weighted", [False, True])
def test_a_loss_object_metric_is_the_mean_of_batch_means_as_keras_wraps_it(shape, weighted):
    """Keras' MeanMetricWrapper of a loss object averages the batches' losses, the last batch (3 of 13 here)
    counting as much as a full one; weighted (which Keras refuses), each batch's weighted mean."""
    t = RNG.normal(size=shape).astype(np.float32)
    p = RNG.normal(size=shape).astype(np.float32)
    w = RNG.uniform(0.0, 2.0, shape[0]).astype(np.float32) if weighted else None
    metric = named(losses.Huber(delta=0.5))
    assert isinstance(metric, LossMetric) and metric.per_batch
    per_example = _huber(t.astype(np.float64), p.astype(np.float64), 0.5).reshape(shape[0], -1).mean(axis=1)
    weights = np.ones(shape[0]) if w is None else w.astype(np.float64)
    means = [weights[i : i + 5] @ per_example[i : i + 5] / weights[i : i + 5].sum() for i in range(0, shape[0], 5)]
    assert metric.finish(_batch_sums(metric, t, p, w), shape[0]) == pytest.approx(float(np.mean(means)), rel=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_a_loss_named_as_a_metric_is_the_mean_over_examples_as_keras_loss_function(weighted):
    t = RNG.uniform(0.0, 1.0, (13, 3)).astype(np.float32)
    p = RNG.uniform(0.05, 0.95, (13, 3)).astype(np.float32)
    w = RNG.uniform(0.0, 2.0, 13).astype(np.float32) if weighted else None
    metric = named("binary_crossentropy")
    assert isinstance(metric, LossMetric) and not metric.per_batch
    t64, p64 = t.astype(np.float64), p.astype(np.float64)
    per_example = -np.mean(t64 * np.log(p64 + 1e-7) + (1 - t64) * np.log(1 - p64 + 1e-7), axis=1)
    weights = np.ones(13) if w is None else w.astype(np.float64)
    expected = float(weights @ per_example / weights.sum())
    assert metric.finish(_batch_sums(metric, t, p, w), 13) == pytest.approx(expected, rel=1e-6)


def test_a_loss_object_metric_adds_no_batch_for_rows_or_weights_it_has_not():
    metric = named(losses.MeanSquaredError())
    empty = np.zeros((0, 2), np.float32)
    assert np.array_equal(metric.batch_sum(empty, empty, MSE), np.zeros(2))
    ones = np.ones((2, 2), np.float32)
    assert np.array_equal(metric.batch_sum(ones, 0 * ones, MSE, np.zeros(2, np.float32)), np.zeros(2))


@pytest.mark.parametrize(
    ("metric", "config"),
    [
        (
            named(losses.Huber(delta=0.5)),
            {"loss": {"name": "huber", "delta": 0.5}, "name": "huber_loss", "per_batch": True},
        ),
        (
            named(losses.BinaryCrossentropy()),
            {"loss": losses.BinaryCrossentropy().get_config(), "name": "binary_crossentropy", "per_batch": True},
        ),
        (named("kl_divergence"), None),  # a name: the mean over examples, saved as the name
    ],
)
def test_a_loss_metric_config_keeps_whether_it_averages_batches(metric, config):
    saved = metric.get_config()
    assert saved == ("kl_divergence" if config is None else {"class_name": "LossMetric", "config": config})
    assert named(saved) == metric and named(saved).per_batch == metric.per_batch


@pytest.mark.parametrize(
    ("given", "key", "loss"),
    [
        ("hinge", "hinge", losses.Hinge()),
        ("binary_crossentropy", "binary_crossentropy", losses.BinaryCrossentropy()),
        ("bce", "bce", losses.BinaryCrossentropy()),
        ("KLDivergence", "KLDivergence", losses.KLDivergence()),
        ("poisson", "poisson", losses.Poisson()),
    ],
)
def test_keras_metric_names_of_losses_build_loss_metrics_of_the_mean_over_examples(given, key, loss):
    metric = named(given)
    assert metric == LossMetric(loss, name=key)
    assert named(metric.get_config()) == metric


def test_a_loss_class_as_a_metric_is_an_object_of_it_the_mean_of_batch_means():
    """Keras makes an object of a loss class given in `metrics`, and wraps it as it wraps an object."""
    assert named(losses.Poisson) == named(losses.Poisson()) == LossMetric(losses.Poisson(), per_batch=True)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: named(_OwnLoss()), InvalidArgumentError, r"loss of one's own.*metrics=\[fn\]"),
        (
            lambda: LossMetric(losses.SparseCategoricalCrossentropy()).check_loss(losses.CategoricalCrossentropy()),
            InvalidArgumentError,
            r"'sparse_categorical_crossentropy' is a sparse cross-entropy.*CategoricalCrossentropy",
        ),
    ],
)
def test_losses_that_cannot_be_metrics_are_refused_by_name(make, error, message):
    with pytest.raises(error, match=message):
        make()


@dataclass(frozen=True)
class _OwnLoss(losses.Loss):
    """A loss of one's own: its graph, not numpy, computes it."""

    name: str = field(default="own_absolute_error", init=False)

    def elements(self, builder, output, labels):
        return builder.node("Abs", [builder.node("Sub", [output, labels])])


def test_losses_and_error_classes_go_through_compile_fit_evaluate_save_and_load(tmp_path):
    x = RNG.normal(size=(30, 4)).astype(np.float32)
    y = (x[:, :2] * 2 + 1).astype(np.float32)
    w = RNG.uniform(0.2, 2.0, 30).astype(np.float32)
    given = [losses.MeanAbsoluteError(), losses.Huber(delta=0.5), RootMeanSquaredError(), "hinge"]
    keys = ["hinge", "huber_loss", "log_cosh", "loss", "mean_absolute_error", "root_mean_squared_error"]  # sorted
    with Sequential([Input(4), Dense(2, activation="linear")], seed=0) as model:
        model.compile(optimizer="adam", loss="mse", metrics=given, weighted_metrics=[losses.LogCosh()])
        history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        result = model.evaluate(x, y, sample_weight=w, batch_size=7, return_dict=True)
        p = model.predict(x).astype(np.float64)
        model.save(tmp_path / "saved")
    assert list(history.history) == keys  # Keras 3's order
    t = y.astype(np.float64)

    def batch_means(values: np.ndarray, weights: np.ndarray) -> float:  # evaluate's batches of 7 (the last of 2)
        return float(
            np.mean([weights[i : i + 7] @ values[i : i + 7] / weights[i : i + 7].sum() for i in range(0, 30, 7)])
        )

    ones = np.ones(30)
    assert result["mean_absolute_error"] == pytest.approx(batch_means(np.abs(p - t).mean(axis=1), ones), rel=1e-5)
    assert result["huber_loss"] == pytest.approx(batch_means(_huber(t, p, 0.5), ones), rel=1e-5)
    assert result["root_mean_squared_error"] == pytest.approx(np.sqrt(np.mean((p - t) ** 2)), rel=1e-5)
    log_cosh = np.mean(np.log(np.cosh(p - t)), axis=1)
    assert result["log_cosh"] == pytest.approx(batch_means(log_cosh, w.astype(np.float64)), rel=1e-5)
    with load_model(tmp_path / "saved") as loaded:
        assert loaded.evaluate(x, y, sample_weight=w, batch_size=7, return_dict=True) == pytest.approx(result)
