"""onnxtrain.metrics against Keras' definitions written out in numpy: per batch, and through evaluate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError
from onnxtrain.layers import Conv2D, Dense, Input
from onnxtrain.loading import load_model
from onnxtrain.losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    MeanAbsoluteError,
    MeanSquaredError,
    SoftmaxCrossEntropyWithLogits,
)
from onnxtrain.metrics import _ALIASES, Metrics, NamedMetric, get, named

RNG = np.random.default_rng(7)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("shape", [(5,), (4, 3, 2)], ids=["flat", "rank-4"])
@pytest.mark.parametrize("metric", [Metrics.MAE, Metrics.MSE])
def test_mae_and_mse_are_means_over_every_element_of_an_example(metric: Metrics, shape: tuple[int, ...]) -> None:
    outputs = RNG.standard_normal((6, *shape)).astype(np.float32)
    targets = RNG.standard_normal((6, *shape)).astype(np.float32)
    error = (outputs - targets).reshape(6, -1)
    per_example = np.abs(error) if metric is Metrics.MAE else error**2
    assert metric.batch_sum(outputs, targets, MeanSquaredError()) == pytest.approx(per_example.mean(axis=1).sum())


@pytest.mark.parametrize("metric", [Metrics.MAE, Metrics.MSE])
def test_mae_and_mse_of_class_labels_compare_the_softmax_with_one_hot_labels(metric: Metrics) -> None:
    logits = RNG.standard_normal((6, 4)).astype(np.float32)
    labels = np.array([0, 3, 1, 1, 2, 0])
    error = _softmax(logits) - np.eye(4)[labels]
    per_example = np.abs(error) if metric is Metrics.MAE else error**2
    expected = per_example.mean(axis=1).sum()
    assert metric.batch_sum(logits, labels, SoftmaxCrossEntropyWithLogits()) == pytest.approx(expected, rel=1e-6)


def test_accuracy_of_class_labels_is_the_argmax_hit_count() -> None:
    logits = np.array([[0.1, 2.0, 0.3], [3.0, 0.0, 1.0], [0.0, 0.1, 0.2]], np.float32)
    assert Metrics.ACCURACY.batch_sum(logits, np.array([1, 2, 2]), SoftmaxCrossEntropyWithLogits()) == 2.0


def test_accuracy_under_binary_cross_entropy_thresholds_every_unit_as_keras_binary_accuracy() -> None:
    """Several sigmoid units with multi-label targets: the share of units on the target's side of 0.5 per
    example (Keras picks binary accuracy for binary cross-entropy), not whether the argmaxes agree."""
    probabilities = RNG.uniform(size=(50, 3)).astype(np.float32)
    targets = (RNG.uniform(size=(50, 3)) > 0.5).astype(np.float32)
    binary_accuracy = np.mean((probabilities > 0.5) == (targets > 0.5), axis=-1)  # keras.metrics.binary_accuracy
    got = Metrics.ACCURACY.batch_sum(probabilities, targets, BinaryCrossentropy())
    assert got == pytest.approx(binary_accuracy.sum())
    argmax_hits = np.count_nonzero(probabilities.argmax(1) == targets.argmax(1))
    assert got != pytest.approx(float(argmax_hits))  # the old reading, which these targets tell apart


def test_accuracy_of_one_unit_thresholds_at_one_half_and_of_one_hot_targets_compares_argmaxes() -> None:
    one = np.array([[0.2], [0.7], [0.6]], np.float32)
    assert Metrics.ACCURACY.batch_sum(one, np.array([[0.0], [1.0], [0.0]], np.float32), MeanSquaredError()) == 2.0
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.4, 0.6]], np.float32)
    one_hot = np.array([[0, 1], [0, 1], [0, 1]], np.float32)
    assert Metrics.ACCURACY.batch_sum(scores, one_hot, MeanAbsoluteError()) == 2.0


def test_get_reads_keras_names_and_refuses_others() -> None:
    assert get("acc") is Metrics.ACCURACY and get("mean_squared_error") is Metrics.MSE
    assert get(Metrics.MAE) is Metrics.MAE
    with pytest.raises(UnknownIdentifierError, match="Could not interpret metric 'f1'"):
        get("f1")


def test_evaluate_reports_the_mse_of_a_convolution_output_as_its_mse_loss() -> None:
    """A rank-4 output (an image-to-image model): with loss and metric both MSE the two agree, and MAE is the
    mean absolute error over every element, as computed from predict."""
    x = RNG.standard_normal((16, 6, 6, 2)).astype(np.float32)
    with Sequential([Input(6, 6, 2), Conv2D(2, 3, padding="same", activation="linear")], seed=0) as model:
        model.compile(optimizer="adam", loss="mse", metrics=["mae", "mse"])
        result = model.evaluate(x, x, batch_size=5)
        predicted = model.predict(x)
    assert result.metrics[Metrics.MSE] == pytest.approx(result.loss, rel=1e-5)
    assert result.metrics[Metrics.MAE] == pytest.approx(float(np.mean(np.abs(predicted - x))), rel=1e-5)
    assert result.loss == pytest.approx(float(np.mean((predicted - x) ** 2)), rel=1e-5)


def test_fit_logs_binary_accuracy_for_several_sigmoid_units() -> None:
    x = RNG.standard_normal((40, 4)).astype(np.float32)
    y = (RNG.uniform(size=(40, 3)) > 0.5).astype(np.float32)
    with Sequential([Input(4), Dense(3, activation="sigmoid")], seed=0) as model:
        model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
        accuracy = model.evaluate(x, y).metrics[Metrics.ACCURACY]
        p = model.predict(x)
    assert accuracy == pytest.approx(float(np.mean((p > 0.5) == (y > 0.5))), abs=1e-6)


# Keras 3 (JAX) metric values on fixed batches, from tools/keras_loss_fixtures.py
KERAS = np.load(Path(__file__).parent / "data" / "keras" / "losses.npz")
KERAS_METRICS = {
    "binary_accuracy": (Metrics.BINARY_ACCURACY, BinaryCrossentropy()),
    "binary_accuracy_logits": (Metrics.BINARY_ACCURACY, BinaryCrossentropy(from_logits=True)),  # threshold 0
    "categorical_accuracy": (Metrics.CATEGORICAL_ACCURACY, CategoricalCrossentropy()),
    "sparse_categorical_accuracy": (Metrics.SPARSE_CATEGORICAL_ACCURACY, SoftmaxCrossEntropyWithLogits()),
    "top_k_categorical_accuracy": (Metrics.TOP_K_CATEGORICAL_ACCURACY, CategoricalCrossentropy()),
    "sparse_top_k_categorical_accuracy": (Metrics.SPARSE_TOP_K_CATEGORICAL_ACCURACY, SoftmaxCrossEntropyWithLogits()),
}


@pytest.mark.parametrize("case", list(KERAS_METRICS))
def test_keras_named_metrics_match_keras_on_a_fixed_batch(case: str) -> None:
    metric, loss = KERAS_METRICS[case]
    outputs, labels = KERAS[f"metric.{case}.outputs"], KERAS[f"metric.{case}.labels"]
    assert metric.batch_sum(outputs, labels, loss) / len(outputs) == pytest.approx(float(KERAS[f"metric.{case}.value"]))


@pytest.mark.parametrize("engine", ["portable", "ort-training"])
def test_keras_metric_names_go_through_compile_evaluate_and_save(tmp_path, engine: str) -> None:
    x = RNG.standard_normal((30, 4)).astype(np.float32)
    y = RNG.integers(0, 7, 30)
    names = ["sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy", "accuracy"]
    with Sequential([Input(4), Dense(7, activation="softmax")], seed=0) as model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=names, engine=engine)
        history = model.fit(x, y, epochs=1, verbose=0)
        result = model.evaluate(x, y, return_dict=True)
        scores = model.predict_softly(x)
        model.save(tmp_path / "saved")
    keras_keys = ["accuracy", "loss", "sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy"]  # sorted
    assert list(history.history) == keras_keys
    assert result["sparse_categorical_accuracy"] == result["accuracy"] == pytest.approx(np.mean(scores.argmax(1) == y))
    own = scores[np.arange(30), y]
    assert result["sparse_top_k_categorical_accuracy"] == pytest.approx(np.mean((scores > own[:, None]).sum(1) < 5))
    with load_model(tmp_path / "saved") as loaded:
        assert list(loaded.evaluate(x, y, return_dict=True)) == keras_keys


def test_mae_reads_what_the_model_outputs_probabilities_or_the_logits_of_a_from_logits_loss() -> None:
    """Keras' metrics read the model's outputs: a softmax's probabilities (the graphs leave the softmax to the loss;
    KotlinDL's loss reads its softmax too), the logits a model ends in under `from_logits=True`
    (tests/test_metrics_keras_parity.py checks this against Keras through evaluate and fit)."""
    logits = RNG.standard_normal((6, 3)).astype(np.float32)
    targets = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
    for loss, y_pred in [
        (CategoricalCrossentropy(), _softmax(logits)),
        (SoftmaxCrossEntropyWithLogits(), _softmax(logits)),
        (CategoricalCrossentropy(from_logits=True), logits),
        (BinaryCrossentropy(from_logits=True), logits),
    ]:
        expected = np.abs(y_pred - targets).mean(axis=1).sum()
        labels = targets.argmax(axis=1) if loss.classification else targets
        assert Metrics.MAE.batch_sum(logits, labels, loss) == pytest.approx(expected, rel=1e-5), loss


def test_metric_names_and_aliases() -> None:
    assert get("binary_accuracy") is Metrics.BINARY_ACCURACY and get("top_5_categorical_accuracy") is (
        Metrics.TOP_K_CATEGORICAL_ACCURACY
    )
    assert get("rmse") is get("RootMeanSquaredError") is Metrics.RMSE
    assert get("SparseTopKCategoricalAccuracy") is Metrics.SPARSE_TOP_K_CATEGORICAL_ACCURACY
    assert get("MeanSquaredError") is Metrics.MSE and get("BinaryAccuracy") is Metrics.BINARY_ACCURACY


@pytest.mark.parametrize("metric", list(Metrics))
def test_every_metric_name_and_alias_is_found_in_keras_camel_case_upper_case_and_with_hyphens(metric: Metrics) -> None:
    names = [metric.value, metric.name.lower(), *(alias for alias, value in _ALIASES.items() if value == metric.value)]
    for name in names:
        camel = "".join(part.capitalize() for part in name.split("_"))  # Keras' class form (none has a digit)
        for written in (name, name.upper(), name.replace("_", "-"), f" {name} ", *([] if "5" in name else [camel])):
            assert get(written) is metric, written
    with pytest.raises(UnknownIdentifierError, match="Could not interpret metric"):
        get(f"{metric.value}_x")


@pytest.mark.parametrize("engine", ["portable", "ort-training"])
def test_rmse_is_the_root_of_the_epoch_mse_not_a_mean_of_batch_roots(engine: str) -> None:
    """Keras' RootMeanSquaredError: the root of the mean over all examples, in evaluate, fit's logs and History.
    Batches of 7 over 30 rows have different errors, so a mean of per-batch roots would differ."""
    x = RNG.standard_normal((30, 4)).astype(np.float32)
    y = RNG.standard_normal((30, 2)).astype(np.float32) * np.linspace(0.1, 3, 30, dtype=np.float32)[:, None]
    with Sequential([Input(4), Dense(2)], seed=0) as model:
        model.compile(optimizer="sgd", loss="mse", metrics=["root_mean_squared_error", "mse"], engine=engine)
        figures = model.evaluate(x, y, batch_size=7, return_dict=True)
        predicted = model.predict(x)
        history = model.fit(x, y, batch_size=7, epochs=1, verbose=0, validation_data=(x, y))
    squared = (predicted - y) ** 2
    batch_roots = np.mean([np.sqrt(squared[i : i + 7].mean()) for i in range(0, 30, 7)])
    assert figures["root_mean_squared_error"] == pytest.approx(float(np.sqrt(squared.mean())), rel=1e-5)
    assert abs(figures["root_mean_squared_error"] - batch_roots) > 1e-3
    assert figures["root_mean_squared_error"] == pytest.approx(figures["mse"] ** 0.5)
    logs = history.history
    assert list(logs) == [  # Keras 3's order: sorted
        "loss",
        "mse",
        "root_mean_squared_error",
        "val_loss",
        "val_mse",
        "val_root_mean_squared_error",
    ]
    assert logs["root_mean_squared_error"][0] == pytest.approx(logs["mse"][0] ** 0.5)
    assert logs["val_root_mean_squared_error"][0] == pytest.approx(logs["val_mse"][0] ** 0.5)


@pytest.mark.parametrize(
    ("metric", "loss", "labels", "message"),
    [
        (
            Metrics.SPARSE_CATEGORICAL_ACCURACY,
            CategoricalCrossentropy(),
            np.eye(3, dtype=np.float32),
            r"'sparse_categorical_accuracy' reads class indices.*'categorical_crossentropy' takes targets shaped like "
            r"the output. Use categorical_accuracy",
        ),
        (
            Metrics.CATEGORICAL_ACCURACY,
            SoftmaxCrossEntropyWithLogits(),
            np.array([0, 1, 2]),
            r"'categorical_accuracy' reads targets shaped like the output.*Use sparse_categorical_accuracy",
        ),
    ],
)
def test_metrics_that_read_the_other_kind_of_labels_are_refused_by_name(metric, loss, labels, message) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        metric.batch_sum(np.eye(3, dtype=np.float32), labels, loss)


# What Keras 3.15 names each metric in History and evaluate(return_dict=True): the string compile was given,
# verbatim (metrics=["acc"] -> "acc", "val_acc"; KERAS_BACKEND=jax, binary cross-entropy, one sigmoid unit); and
# its History's training keys in Keras' order, sorted (its val_ keys follow in the same order).
KERAS_METRIC_KEYS = [
    (
        ["acc", "mean_absolute_error", "mean_squared_error"],
        ["acc", "mean_absolute_error", "mean_squared_error"],
        ["acc", "loss", "mean_absolute_error", "mean_squared_error"],
    ),
    (["mae", "mse", "accuracy"], ["mae", "mse", "accuracy"], ["accuracy", "loss", "mae", "mse"]),
    (
        ["RootMeanSquaredError", "BinaryAccuracy"],
        ["RootMeanSquaredError", "BinaryAccuracy"],
        ["BinaryAccuracy", "RootMeanSquaredError", "loss"],
    ),
    (
        ["root_mean_squared_error", "binary_accuracy"],
        ["root_mean_squared_error", "binary_accuracy"],
        ["binary_accuracy", "loss", "root_mean_squared_error"],
    ),
    (["MeanAbsoluteError", "MAE"], ["MeanAbsoluteError", "MAE"], ["MAE", "MeanAbsoluteError", "loss"]),
    (["acc", "accuracy"], ["acc", "accuracy"], ["acc", "accuracy", "loss"]),  # two names, two keys, as in Keras
    ([Metrics.ACCURACY, Metrics.MAE], ["accuracy", "mae"], ["accuracy", "loss", "mae"]),  # members: their values
]


@pytest.mark.parametrize(
    ("given", "keys", "history_keys"), KERAS_METRIC_KEYS, ids=[str(keys) for _, keys, _ in KERAS_METRIC_KEYS]
)
def test_metrics_are_logged_under_the_names_compile_was_given_as_in_keras_3(given, keys, history_keys):
    x = RNG.standard_normal((32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    with Sequential([Input(3), Dense(1, activation="sigmoid")], seed=0) as model:
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=given)
        history = model.fit(x, y, epochs=1, verbose=0, validation_split=0.25)
        result = model.evaluate(x, y)
        figures = model.evaluate(x, y, return_dict=True)
    assert list(history.history) == [*history_keys, *(f"val_{key}" for key in history_keys)]
    assert list(figures) == history_keys
    assert list(result.to_dict()) == ["loss", *keys]  # the list's order: the loss, then the metrics as compiled
    assert result.metrics[keys[0]] == result.metrics[get(given[0])]  # any name of the metric finds it


def test_a_metric_of_a_model_of_several_outputs_is_logged_as_output_and_the_name_given():
    from onnxtrain import Model

    x = RNG.standard_normal((24, 3)).astype(np.float32)
    inputs = Input(3)
    outputs = [Dense(3, activation="softmax", name="kind")(inputs), Dense(1, activation="linear", name="size")(inputs)]
    with Model(inputs, outputs, seed=0) as model:
        model.compile(
            optimizer="adam",
            loss={"kind": "sparse_categorical_crossentropy", "size": "mse"},
            metrics={"kind": "acc", "size": ["mean_absolute_error"]},
        )
        figures = model.evaluate(x, [RNG.integers(0, 3, 24), x[:, :1]], return_dict=True)
    assert list(figures) == ["kind_acc", "kind_loss", "loss", "size_loss", "size_mean_absolute_error"]  # Keras


def test_named_keeps_the_spelling_and_resolves_the_metric():
    assert named("acc") == NamedMetric(Metrics.ACCURACY, "acc")
    assert named(Metrics.RMSE) == NamedMetric(Metrics.RMSE, "root_mean_squared_error")
    assert named(named("MAE")) is not None and get(named("MAE")) is Metrics.MAE
    with pytest.raises(UnknownIdentifierError, match=r"Could not interpret metric 'accuracyy'"):
        named("accuracyy")


@pytest.mark.parametrize("metric", ["accuracy", "categorical_accuracy"])
def test_accuracy_of_a_class_per_step_counts_each_step(metric):
    """A tagger's (N, steps, classes) output: Keras' accuracy is the share of steps whose class is right, not one
    argmax over each example's steps and classes together."""
    from onnxtrain import Sequential
    from onnxtrain.layers import LSTM, Dense, Embedding, Input

    rng = np.random.default_rng(5)
    ids = rng.integers(1, 9, size=(12, 6)).astype(np.int64)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(12, 6))]
    model = Sequential.of(Input(6, dtype="int64"), Embedding(9, 4), LSTM(5, return_sequences=True), Dense(4), seed=3)
    with model:
        model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=[metric])
        figures = model.evaluate(ids, y, batch_size=5, return_dict=True)
        steps = model.predict_softly(ids).argmax(axis=-1)
    assert figures[metric] == pytest.approx(float((steps == y.argmax(axis=-1)).mean()), abs=1e-6)
