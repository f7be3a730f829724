"""Keras' metric objects (Precision, Recall, AUC, F1Score, FBetaScore, the top-k accuracies with their k) and
weighted_metrics: against Keras 3.15 numbers accumulated over several batches (tools/keras_metric_fixtures.py),
through compile, fit and evaluate on both engines, in a data-parallel fit, and through save and load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import Model, Sequential
from onnxtrain import distributed as dist
from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError
from onnxtrain.layers import Dense, Input
from onnxtrain.loading import load_model
from onnxtrain.losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    MeanSquaredError,
    SoftmaxCrossEntropyWithLogits,
)
from onnxtrain.metrics import (
    AUC,
    F1Score,
    FBetaScore,
    Metric,
    Metrics,
    NamedMetric,
    Precision,
    Recall,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    WeightedMetric,
    named,
)
from tests.test_distributed import ThreadWorld

KERAS = np.load(Path(__file__).parent / "data" / "keras" / "metrics_extra.npz")
CASES = sorted({key.split(".")[0] for key in KERAS.files if key.endswith(".value") and "evaluate" not in key})
LOSSES = {
    "mse": MeanSquaredError(),
    "sparse": SoftmaxCrossEntropyWithLogits(),
    "bce_logits": BinaryCrossentropy(from_logits=True),
    "bce": BinaryCrossentropy(),
    "cce": CategoricalCrossentropy(),
}
RNG = np.random.default_rng(11)


def _case_metric(case: str) -> tuple[Metric, bool]:
    metric = named(json.loads(str(KERAS[f"{case}.config"])))
    weighted = bool(KERAS[f"{case}.weighted"])
    return (WeightedMetric(metric, metric.name) if weighted else metric), weighted


def _batches(case: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    return [
        (KERAS[f"{case}.outputs.{i}"], KERAS[f"{case}.labels.{i}"], KERAS.get(f"{case}.weights.{i}")) for i in range(3)
    ]


@pytest.mark.parametrize("case", CASES)
def test_metric_accumulated_over_batches_matches_keras(case: str) -> None:
    metric, weighted = _case_metric(case)
    loss = LOSSES[str(KERAS[f"{case}.loss"])]
    batches = _batches(case)
    sums = metric.zeros(batches[0][0].shape[1:])
    for outputs, labels, weights in batches:
        sums = sums + metric.batch_sum(outputs, labels, loss, weights if weighted else None)
    examples = sum(len(outputs) for outputs, _, _ in batches)
    assert metric.finish(sums, examples) == pytest.approx(float(KERAS[f"{case}.value"]), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("case", ["precision_top_k", "auc", "auc_pr", "auc_multi_label", "f1_macro", "weighted_auc"])
def test_the_keras_value_is_the_epochs_not_a_mean_of_batch_values(case: str) -> None:
    """The fixtures' batches tell the accumulated value from a mean of per-batch values."""
    metric, weighted = _case_metric(case)
    loss = LOSSES[str(KERAS[f"{case}.loss"])]
    per_batch = [
        metric.finish(metric.batch_sum(o, y, loss, w if weighted else None), len(o)) for o, y, w in _batches(case)
    ]
    assert abs(float(np.mean(per_batch)) - float(KERAS[f"{case}.value"])) > 1e-3


def test_keras_names_and_classes_give_the_metric_and_its_key() -> None:
    assert named("precision") == Precision() and named("precision").name == "precision"
    assert named("Precision") == Precision(name="Precision")  # the key is the spelling given, as in Keras 3
    assert named("auc") == AUC() and named("AUC").name == "AUC" and named("recall") == Recall()
    assert named("f1_score") == F1Score() and named("F1Score").name == "F1Score"
    assert named("fbeta_score") == FBetaScore() and named("FBetaScore").name == "FBetaScore"
    assert AUC(curve="PR", name="pr_auc").name == "pr_auc" and Precision().name == "precision"
    assert named(TopKCategoricalAccuracy(k=3)).get_config() == {
        "class_name": "TopKCategoricalAccuracy",
        "config": {"k": 3, "name": "top_k_categorical_accuracy"},
    }
    assert named(TopKCategoricalAccuracy()).get_config() == "top_k_categorical_accuracy"  # k = 5: the old name
    with pytest.raises(UnknownIdentifierError, match=r"Could not interpret metric 'precison'.*Metric classes: \['AUC'"):
        named("precison")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Precision(thresholds=[0.3, 0.6]), r"takes one threshold.*Received: thresholds=\[0.3, 0.6\]"),
        (lambda: Recall(thresholds=1.5), r"Recall\(thresholds=...\) expects numbers in \[0, 1\]. Received: 1.5"),
        (lambda: Precision(top_k=0), r"Precision\(top_k=...\) expects a positive int or None. Received: 0"),
        (lambda: Recall(class_id=-1), r"Recall\(class_id=...\) expects a class index >= 0"),
        (lambda: AUC(curve="PRGAIN"), r'AUC\(curve=...\) expects "ROC" or "PR". Received: curve=\'PRGAIN\''),
        (lambda: AUC(num_thresholds=1), r"AUC\(num_thresholds=...\) expects an int > 1"),
        (lambda: AUC(summation_method="midpoint"), r"summation_method=...\) expects one of"),
        (lambda: F1Score(average=None), r"F1Score\(average=...\) expects one of \['micro', 'macro', 'weighted'\]"),
        (lambda: FBetaScore(beta=0), r"FBetaScore\(beta=...\) expects a number > 0"),
        (lambda: TopKCategoricalAccuracy(k=0), r"TopKCategoricalAccuracy\(k=...\) expects a positive int"),
        (lambda: named({"class_name": "MeanIoU", "config": {}}), r"A metric config expects"),
        (lambda: named({"class_name": "AUC", "config": {"curves": "PR"}}), r"does not build a AUC"),
    ],
)
def test_bad_metric_arguments_are_refused_by_name(make, message) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        make()


def test_compile_refuses_a_metric_that_cannot_read_the_output() -> None:
    with Sequential([Input(3), Dense(4, activation="sigmoid")], seed=0) as model:
        with pytest.raises(InvalidArgumentError, match=r"Precision\(class_id=4\) reads one unit.*shape \(4,\)"):
            model.compile(loss="binary_crossentropy", metrics=[Precision(class_id=4)])
    inputs = Input(2, 3)
    with Model(inputs, Dense(2, activation="sigmoid")(inputs), seed=0) as model:
        with pytest.raises(InvalidArgumentError, match=r"AUC\(multi_label=True\) reads outputs \[batch, labels\]"):
            model.compile(loss="binary_crossentropy", weighted_metrics=[AUC(multi_label=True)])


def _binary_data(rows: int = 30) -> tuple[np.ndarray, np.ndarray]:
    x = RNG.standard_normal((rows, 4)).astype(np.float32)
    return x, (x[:, 0] + 0.5 * RNG.standard_normal(rows) > 0).astype(np.float32)


def _reference(metric: Metric, outputs: np.ndarray, labels: np.ndarray, loss, weights=None) -> float:
    """The metric over all rows as one batch (what batches of any size must add up to)."""
    return metric.finish(metric.batch_sum(outputs, labels, loss, weights), len(outputs))


@pytest.mark.parametrize("engine", ["portable", "ort-training"])
def test_metric_objects_through_compile_fit_and_evaluate(engine: str) -> None:
    """Keys as Keras 3 logs them; evaluate in batches of 7 equals each metric over all rows at once."""
    x, y = _binary_data()
    metrics = [Precision(), "auc", AUC(curve="PR", name="pr_auc"), "recall", Recall(thresholds=0.3), "f1_score"]
    with Sequential([Input(4), Dense(1, activation="sigmoid")], seed=0) as model:
        model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=metrics, engine=engine)
        history = model.fit(x, y, epochs=1, batch_size=8, verbose=0, validation_data=(x, y))
        result = model.evaluate(x, y, batch_size=7, return_dict=True)
        p = model.predict_softly(x).reshape(-1, 1)
    keys = ["precision", "auc", "pr_auc", "recall", "recall_1", "f1_score"]  # Keras: a second "recall" is recall_1
    keras_keys = ["auc", "f1_score", "loss", "pr_auc", "precision", "recall", "recall_1"]  # Keras 3's: sorted
    assert list(history.history) == [*keras_keys, *(f"val_{key}" for key in keras_keys)]
    assert list(result) == keras_keys
    loss, labels = BinaryCrossentropy(), y.reshape(-1, 1)
    objects = [named(m) for m in metrics]
    for key, metric in zip(keys, objects, strict=True):
        assert result[key] == pytest.approx(_reference(metric, p, labels, loss), abs=1e-6), key
    tp, fp = np.sum((p > 0.5) & (labels == 1)), np.sum((p > 0.5) & (labels == 0))
    assert result["precision"] == pytest.approx(tp / (tp + fp))
    assert history.history["val_auc"][0] == pytest.approx(result["auc"], abs=1e-6)  # validation: after the epoch


@pytest.mark.parametrize("engine", ["portable", "ort-training"])
def test_sparse_labels_read_as_one_hot_softmax_probabilities(engine: str) -> None:
    """Under softmax cross-entropy the metrics read the model's softmax (its graphs leave it out) and class
    indices as one-hot targets; top-k accuracies take their k."""
    x = RNG.standard_normal((40, 4)).astype(np.float32)
    y = RNG.integers(0, 6, 40)
    metrics = [
        Precision(class_id=2),
        AUC(multi_label=True),
        SparseTopKCategoricalAccuracy(k=2),
        "sparse_top_k_categorical_accuracy",
    ]
    with Sequential([Input(4), Dense(6, activation="softmax")], seed=0) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=metrics, engine=engine)
        result = model.evaluate(x, y, batch_size=9, return_dict=True)
        p = model.predict_softly(x)
    one_hot = np.eye(6, dtype=np.float32)[y]
    assert list(result) == [  # Keras 3's order: sorted
        "auc",
        "loss",
        "precision",
        "sparse_top_k_categorical_accuracy",
        "sparse_top_k_categorical_accuracy_1",
    ]
    mse = MeanSquaredError()  # probabilities and one-hot targets as they are
    assert result["precision"] == pytest.approx(_reference(Precision(class_id=2), p, one_hot, mse), abs=1e-6)
    assert result["auc"] == pytest.approx(_reference(AUC(multi_label=True), p, one_hot, mse), abs=1e-6)
    own = p[np.arange(40), y]
    assert result["sparse_top_k_categorical_accuracy"] == pytest.approx(np.mean((p > own[:, None]).sum(1) < 2))
    assert result["sparse_top_k_categorical_accuracy_1"] == pytest.approx(np.mean((p > own[:, None]).sum(1) < 5))


def _keras_evaluate_model(engine: str = "portable") -> Sequential:
    model = Sequential([Input(4), Dense(1, activation="sigmoid")], seed=0)
    model.compile(
        optimizer="sgd",
        loss="binary_crossentropy",
        metrics=["accuracy", Precision(), "auc", AUC(curve="PR", name="pr_auc")],
        weighted_metrics=["accuracy", "mae", AUC(name="wauc"), Recall()],
        engine=engine,
    )
    model.set_weights([KERAS["evaluate.kernel"], KERAS["evaluate.bias"]])
    return model


def test_weighted_metrics_of_evaluate_match_keras() -> None:
    """Keras 3.15's evaluate(sample_weight=...) of the same Dense: `metrics` unweighted, `weighted_metrics`
    weighted, "accuracy" in both logged as "accuracy" and "weighted_accuracy"."""
    with _keras_evaluate_model() as model:
        result = model.evaluate(
            KERAS["evaluate.x"], KERAS["evaluate.y"], sample_weight=KERAS["evaluate.w"], batch_size=7, return_dict=True
        )
    assert list(result) == [str(key) for key in KERAS["evaluate.keys"]]  # Keras 3's order: sorted, as stored
    for key, value in result.items():
        assert value == pytest.approx(float(KERAS[f"evaluate.value.{key}"]), rel=1e-5, abs=1e-6), key


def test_weighted_metrics_without_weights_equal_the_unweighted_and_class_weight_weighs_them() -> None:
    x, y = _binary_data(24)
    with Sequential([Input(4), Dense(1, activation="sigmoid")], seed=0) as model:
        model.compile(
            optimizer="sgd", loss="binary_crossentropy", metrics=["acc", "auc"], weighted_metrics=["acc", "auc"]
        )
        plain = model.evaluate(x, y, batch_size=5, return_dict=True)
        p = model.predict_softly(x).reshape(-1, 1)
        history = model.fit(x, y, epochs=1, batch_size=24, shuffle=False, verbose=0, class_weight={0: 0.5, 1: 3.0})
    assert plain["weighted_acc"] == pytest.approx(plain["acc"]) and plain["weighted_auc"] == pytest.approx(plain["auc"])
    w = np.where(y == 1, 3.0, 0.5).astype(np.float32)
    labels, loss = y.reshape(-1, 1), BinaryCrossentropy()
    hits = ((p > 0.5) == (labels > 0.5))[:, 0]
    logs = history.history  # one batch: the metrics of the weights before the step
    assert logs["weighted_acc"][0] == pytest.approx(float(np.sum(w * hits) / np.sum(w)))
    assert logs["acc"][0] == pytest.approx(float(np.mean(hits)))
    assert logs["weighted_auc"][0] == pytest.approx(_reference(WeightedMetric(AUC(), "w"), p, labels, loss, w))


def test_weighted_metrics_of_a_model_of_several_outputs_weigh_each_outputs_examples() -> None:
    x = RNG.standard_normal((20, 3)).astype(np.float32)
    inputs = Input(3)
    outputs = [Dense(3, activation="softmax", name="kind")(inputs), Dense(1, name="size")(inputs)]
    labels = [RNG.integers(0, 3, 20), x[:, :1]]
    weights = {"kind": RNG.uniform(0, 2, 20), "size": RNG.uniform(0, 2, 20)}
    with Model(inputs, outputs, seed=0) as model:
        model.compile(
            optimizer="adam",
            loss={"kind": "sparse_categorical_crossentropy", "size": "mse"},
            metrics={"kind": ["acc", AUC()], "size": "mae"},
            weighted_metrics={"kind": "acc", "size": ["mae", "mse"]},
        )
        result = model.evaluate(x, labels, sample_weight=weights, batch_size=6, return_dict=True)
        kind, size = model.predict(x)
    assert list(result) == [  # Keras 3's order: sorted
        "kind_acc",
        "kind_auc",
        "kind_loss",
        "kind_weighted_acc",
        "loss",
        "size_loss",
        "size_mae",
        "size_mse",
        "size_weighted_mae",
    ]
    hits = kind == labels[0]
    assert result["kind_acc"] == pytest.approx(np.mean(hits))
    assert result["kind_weighted_acc"] == pytest.approx(np.sum(weights["kind"] * hits) / np.sum(weights["kind"]))
    error = np.abs(size.reshape(-1) - x[:, 0])
    assert result["size_mae"] == pytest.approx(np.mean(error), rel=1e-5)
    assert result["size_weighted_mae"] == pytest.approx(
        np.sum(weights["size"] * error) / np.sum(weights["size"]), rel=1e-5
    )


def test_metric_configs_round_trip_through_save_and_load(tmp_path: Path) -> None:
    x = RNG.standard_normal((30, 4)).astype(np.float32)
    y = np.eye(5, dtype=np.float32)[RNG.integers(0, 5, 30)]
    metrics = [
        Precision(top_k=2, name="p2"),
        AUC(curve="PR", name="pr_auc", num_thresholds=50),
        "recall",
        TopKCategoricalAccuracy(k=2),
        F1Score(average="weighted", threshold=0.2),
    ]
    with Sequential([Input(4), Dense(5, activation="softmax")], seed=0) as model:
        model.compile(
            optimizer="adam",
            loss="categorical_crossentropy",
            metrics=metrics,
            weighted_metrics=[AUC(multi_label=True), "categorical_accuracy"],
        )
        model.fit(x, y, epochs=1, verbose=0)
        before = model.evaluate(x, y, batch_size=8, sample_weight=np.linspace(0, 1, 30), return_dict=True)
        model.save(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())["compile"]
    assert saved["metrics"][0] == {
        "class_name": "Precision",
        "config": {"thresholds": None, "top_k": 2, "class_id": None, "name": "p2"},
    }
    assert saved["metrics"][2] == Recall().get_config() and saved["weighted_metrics"][1] == "categorical_accuracy"
    with load_model(tmp_path / "saved") as loaded:
        after = loaded.evaluate(x, y, batch_size=8, sample_weight=np.linspace(0, 1, 30), return_dict=True)
    assert (
        list(after)
        == list(before)
        == [  # Keras 3's order: sorted
            "auc",
            "categorical_accuracy",
            "f1_score",
            "loss",
            "p2",
            "pr_auc",
            "recall",
            "top_k_categorical_accuracy",
        ]
    )
    assert after == pytest.approx(before)


def test_an_old_config_with_names_and_one_without_weighted_metrics_still_loads(tmp_path: Path) -> None:
    x, y = _binary_data(12)
    with Sequential([Input(4), Dense(1, activation="sigmoid")], seed=0) as model:
        model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["acc", "mae"])
        model.save(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())["compile"]
    assert saved["metrics"] == ["acc", "mae"] and "weighted_metrics" not in saved
    with load_model(tmp_path / "saved") as loaded:
        assert list(loaded.evaluate(x, y, return_dict=True)) == ["acc", "loss", "mae"]  # sorted, as Keras 3's


@pytest.mark.slow
def test_data_parallel_metrics_equal_those_of_one_process() -> None:
    """Three processes over uneven shares (29 rows, batches of 6): the epoch's and validation's AUC, Precision and
    weighted accuracy are those of the fit alone (the vectors are all-reduced flat with the counts)."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(29, 5)).astype(np.float32), rng.integers(0, 3, 29)
    w = rng.uniform(0, 2, 29).astype(np.float32)

    def train(rank: int):
        with Sequential.of(Input(5), Dense(7, activation="tanh"), Dense(3), seed=5 + rank) as model:
            model.compile(
                optimizer="adam",
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy", AUC(multi_label=True), Precision(class_id=1), "f1_score"],
                weighted_metrics=["accuracy"],
                engine="portable",
            )
            return model.fit(x, y, epochs=2, batch_size=6, verbose=0, sample_weight=w, validation=(x[:10], y[:10]))

    alone = train(0).history
    world = ThreadWorld(3)
    dist.init(communicator=world)
    try:
        results = world.run(train)
    finally:
        dist.leave()
    assert set(alone) >= {"auc", "precision", "f1_score", "weighted_accuracy", "val_auc", "val_weighted_accuracy"}
    for history in results:
        assert list(history.history) == list(alone)
        for key, values in alone.items():
            np.testing.assert_allclose(history.history[key], values, rtol=1e-5, atol=1e-6, err_msg=key)


def test_named_metrics_keep_their_numbers_and_a_weighted_one_keeps_two_sums() -> None:
    """The metrics of `Metrics` keep one float per batch (the old numbers, exactly); weighted, [sum w v, sum w]."""
    logits = RNG.standard_normal((9, 4)).astype(np.float32)
    labels = RNG.integers(0, 4, 9)
    loss = SoftmaxCrossEntropyWithLogits()
    metric = named("acc")
    assert isinstance(metric, NamedMetric) and metric.zeros((4,)) == 0.0
    assert metric.batch_sum(logits, labels, loss) == Metrics.ACCURACY.batch_sum(logits, labels, loss)
    w = RNG.uniform(0, 1, 9).astype(np.float32)
    sums = WeightedMetric(metric, "acc").batch_sum(logits, labels, loss, w)
    hits = logits.argmax(1) == labels
    np.testing.assert_allclose(sums, [np.sum(w * hits), np.sum(w, dtype=np.float64)], rtol=1e-6)
