"""Keras' model attributes and one-batch methods the keras.io guides use, checked against numpy references: the
eager call's logits rule, several outputs (`model(x)`, `predict_outputs`, `predict_softly`), `inputs` /
`outputs`, the weights lists, `optimizer` / `loss` / `metrics_names`, `train_on_batch` / `test_on_batch` /
`predict_on_batch` and `summary(show_trainable=True)`."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Model, Sequential
from onnxtrain.callbacks import Callback
from onnxtrain.errors import InvalidArgumentError, ModelStateError, NonFiniteLossError
from onnxtrain.inference import InferenceModel
from onnxtrain.layers import Dense, Input
from onnxtrain.layers._layer_weights import LayerWeight
from onnxtrain.optimizers import SGD, Adam, schedules

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 4)).astype(np.float32)
LABELS = np.array([0, 1, 2, 0, 1, 2])


def _relu(v: np.ndarray) -> np.ndarray:
    return np.maximum(v, 0)


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _classifier(**compile_args) -> Sequential:
    """The issue's model, compiled: a last Dense left at its default activation under softmax cross-entropy."""
    model = Sequential([Input(4), Dense(8), Dense(3)], seed=1)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", **compile_args)
    return model


def _two_heads() -> Model:
    inputs = Input(4)
    hidden = Dense(8)(inputs)
    regression = Dense(1, activation="linear", name="reg")(hidden)
    classes = Dense(3, name="cls")(hidden)
    return Model(inputs, [regression, classes], seed=2)


def _hidden_logits(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = model.get_weights()
    hidden = _relu(x @ w["dense_1.kernel"] + w["dense_1.bias"])
    return hidden, hidden @ w["dense_2.kernel"] + w["dense_2.bias"]


# --- model(x) on data --------------------------------------------------------------------------------------------
def test_eager_call_of_a_compiled_model_gives_the_logits_of_a_default_dense():
    with _classifier() as model:
        _, logits = _hidden_logits(model, X)
        np.testing.assert_allclose(model(X), logits, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model(X), model.predict_outputs(X)["logits"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(_softmax(model(X)), model.predict_softly(X), rtol=1e-5, atol=1e-6)


def test_eager_call_before_compile_gives_the_dense_default_relu():
    model = Sequential([Input(4), Dense(8), Dense(3)], seed=1)
    _, logits = _hidden_logits(model, X)
    np.testing.assert_allclose(model(X), _relu(logits), rtol=1e-5, atol=1e-6)


def test_eager_call_keeps_an_explicit_softmax_as_keras_does():
    with Sequential([Input(4), Dense(8), Dense(3, activation="softmax")], seed=1) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        _, logits = _hidden_logits(model, X)
        np.testing.assert_allclose(model(X), _softmax(logits), rtol=1e-5, atol=1e-6)


def test_eager_call_after_training_reads_the_engine_weights():
    with _classifier() as model:
        model.fit(X, LABELS, epochs=2, batch_size=3, verbose=0)
        np.testing.assert_allclose(model(X), model.predict_outputs(X)["logits"], rtol=1e-5, atol=1e-6)


# --- several outputs ---------------------------------------------------------------------------------------------
def test_a_model_of_two_heads_gives_each_output_on_data_and_by_name():
    with _two_heads() as model:
        model.compile(optimizer="adam", loss=["mse", "sparse_categorical_crossentropy"])
        w = model.get_weights()
        hidden = _relu(X @ w["dense_1.kernel"] + w["dense_1.bias"])
        regression = hidden @ w["reg.kernel"] + w["reg.bias"]
        logits = hidden @ w["cls.kernel"] + w["cls.bias"]
        called = model(X)
        assert isinstance(called, list) and len(called) == 2
        np.testing.assert_allclose(called[0], regression, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(called[1], logits, rtol=1e-5, atol=1e-6)
        outputs = model.predict_outputs(X, batch_size=4)
        assert list(outputs) == ["reg", "cls", "cls_probabilities"]
        np.testing.assert_allclose(outputs["cls_probabilities"], _softmax(logits), rtol=1e-5, atol=1e-6)
        soft = model.predict_softly(X)
        np.testing.assert_allclose(soft[0], regression, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(soft[1], _softmax(logits), rtol=1e-5, atol=1e-6)
        single = model.predict_softly(X[0])
        np.testing.assert_allclose(single[1], _softmax(logits)[0], rtol=1e-5, atol=1e-6)


def test_predict_outputs_matches_the_exported_model(tmp_path):
    with _classifier() as model:
        model.fit(X, LABELS, epochs=1, batch_size=3, verbose=0)
        mine = model.predict_outputs(X[:1])
        model.export(tmp_path / "m.onnx")
    with InferenceModel.load(tmp_path / "m.onnx") as served:
        theirs = served.predict_outputs(X[:1])
    assert list(mine) == list(theirs) == ["logits", "probabilities"]
    for name in mine:
        assert mine[name].shape == (1, 3)
        np.testing.assert_allclose(mine[name], theirs[name], rtol=1e-5, atol=1e-6)


def test_predict_outputs_before_compile_gives_the_current_outputs():
    model = Sequential([Input(4), Dense(8), Dense(3)], seed=1)
    _, logits = _hidden_logits(model, X)
    outputs = model.predict_outputs(X)
    assert list(outputs) == ["logits"]
    np.testing.assert_allclose(outputs["logits"], _relu(logits), rtol=1e-5, atol=1e-6)


def test_predict_softly_of_one_regression_output_is_still_refused():
    with Sequential([Input(4), Dense(1, activation="linear")], seed=1) as model:
        model.compile(optimizer="adam", loss="mse")
        with pytest.raises(InvalidArgumentError, match="predict_softly needs a classification loss"):
            model.predict_softly(X)


# --- inputs, outputs, weights ------------------------------------------------------------------------------------
def test_inputs_and_outputs_make_a_feature_extractor_once_the_model_is_closed():
    inputs = Input(4)
    hidden = Dense(8)(inputs)
    model = Model(inputs, Dense(3)(hidden), seed=3)
    assert model.inputs == [inputs] and model.outputs[0].shape == (3,)
    model.close()
    features = Model(inputs=model.inputs, outputs=[hidden, *model.outputs])
    w = features.get_weights()
    expected = _relu(X @ w["dense_1.kernel"] + w["dense_1.bias"])
    np.testing.assert_allclose(features(X)[0], expected, rtol=1e-5, atol=1e-6)


def test_input_and_output_are_the_tensors_as_in_keras_a_list_for_several():
    inputs = Input(4)
    hidden = Dense(8)(inputs)
    single = Model(inputs, Dense(3)(hidden))
    assert single.input is inputs and single.output is single.outputs[0]
    several = Model(inputs, [hidden, Dense(2)(hidden)])
    assert several.input is inputs and several.output == several.outputs
    extractor = Model(several.input, several.output[0], seed=3)  # Keras' Model(model.input, model.output[0])
    np.testing.assert_allclose(extractor(X), several(X)[0], rtol=1e-6)
    outer_input = Input(4)
    outer = Model(outer_input, several(outer_input))
    nested_outputs = outer.layers[1].output  # a nested model of two outputs: both, as Keras' layer.output
    assert isinstance(nested_outputs, list) and [t.shape for t in nested_outputs] == [(8,), (2,)]


def test_model_weights_list_every_layer_weight_in_get_weights_order():
    with _classifier() as model:
        model.get_layer("dense_1").trainable = False
        weights = model.weights
        assert all(isinstance(weight, LayerWeight) for weight in weights)
        assert [weight.path for weight in weights] == list(model.get_weights())
        assert [weight.path for weight in model.trainable_weights] == ["dense_2.kernel", "dense_2.bias"]
        assert [weight.path for weight in model.non_trainable_weights] == ["dense_1.kernel", "dense_1.bias"]
        np.testing.assert_array_equal(weights[0].numpy(), model.get_weights()["dense_1.kernel"])


# --- optimizer, loss, metrics_names ------------------------------------------------------------------------------
def test_optimizer_learning_rate_reads_and_sets_the_engines_rate():
    model = Sequential([Input(4), Dense(8), Dense(3)], seed=1)
    assert model.optimizer is None and model.loss is None and model.metrics_names == []
    with model:
        model.compile(optimizer=Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        assert isinstance(model.optimizer.compiled_optimizer, Adam)
        assert model.optimizer.learning_rate == pytest.approx(1e-3)
        model.optimizer.learning_rate = np.array(0.05, np.float32)  # a 0-d array, as Keras' variables take
        assert model.learning_rate == pytest.approx(0.05)
        model.optimizer.learning_rate = 0.01
        assert model.learning_rate == pytest.approx(0.01)
        assert model.optimizer.beta1 == pytest.approx(0.9)  # the compiled optimizer's own settings
        with pytest.raises(InvalidArgumentError, match=r"model.optimizer.beta1 cannot be set.*Adam\(beta1=...\)"):
            model.optimizer.beta1 = 0.5
        model.fit(X, LABELS, epochs=1, batch_size=2, verbose=0)
        assert model.optimizer.iterations == 3
        assert model.loss.name == "sparse_categorical_crossentropy"  # the name it was given, as in Keras
        assert model.metrics_names == ["loss", "accuracy"]
        assert list(model.evaluate(X, LABELS, return_dict=True)) == ["accuracy", "loss"]  # sorted, as Keras 3's


def test_a_keras_callback_sets_the_rate_through_model_optimizer():
    seen = []

    class Halve(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.model.optimizer.learning_rate = self.model.optimizer.learning_rate / 2
            seen.append(self.model.learning_rate)

    with _classifier() as model:
        start = model.learning_rate
        model.fit(X, LABELS, epochs=2, batch_size=3, verbose=0, callbacks=[Halve()])
    assert seen == pytest.approx([start / 2, start / 4])


def test_optimizer_learning_rate_under_a_schedule_is_refused():
    with Sequential([Input(4), Dense(3)], seed=1) as model:
        model.compile(optimizer=Adam(learning_rate=schedules.ExponentialDecay(0.1, 10, 0.5)), loss="mse")
        with pytest.raises(InvalidArgumentError, match="learning_rate cannot be set"):
            model.optimizer.learning_rate = 0.01


def test_metrics_names_of_two_heads_are_evaluates_keys():
    with _two_heads() as model:
        model.compile(optimizer="adam", loss=["mse", "sparse_categorical_crossentropy"], metrics=[[], ["accuracy"]])
        y = [X[:, :1], LABELS]
        figures = model.evaluate(X, y, return_dict=True)
        assert list(figures) == ["cls_accuracy", "cls_loss", "loss", "reg_loss"]  # sorted, as Keras 3's
        assert sorted(model.metrics_names) == list(figures)
        assert model.metrics_names[:1] == ["loss"] and "cls_accuracy" in model.metrics_names


# --- one-batch methods -------------------------------------------------------------------------------------------
def _linear(**compile_args) -> Sequential:
    model = Sequential([Input(3), Dense(2, activation="linear")], seed=5)
    model.compile(optimizer=SGD(learning_rate=0.1), loss="mse", **compile_args)
    return model


def _sgd_step(w: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, sample_weight=None):
    """numpy's loss (Keras' MSE, sum(w_i l_i) / batch) and weights after one SGD(0.1) step."""
    kernel, bias = w["dense_1.kernel"], w["dense_1.bias"]
    error = x @ kernel + bias - y
    weights = np.ones(len(x)) if sample_weight is None else sample_weight
    loss = float((weights * (error**2).mean(axis=1)).sum() / len(x))
    grad = 2 * error * weights[:, None] / (len(x) * y.shape[1])
    return loss, kernel - 0.1 * x.T @ grad, bias - 0.1 * grad.sum(axis=0)


def test_train_on_batch_makes_one_sgd_update_on_that_batch():
    x = RNG.normal(size=(5, 3)).astype(np.float32)
    y = RNG.normal(size=(5, 2)).astype(np.float32)
    with _linear(metrics=["mae"]) as model:
        before = model.get_weights()
        loss, kernel, bias = _sgd_step(before, x, y)
        mae = float(np.abs(x @ before["dense_1.kernel"] + before["dense_1.bias"] - y).mean())
        result = model.train_on_batch(x, y)
        assert result == pytest.approx([loss, mae], rel=1e-5)
        after = model.get_weights()
        np.testing.assert_allclose(after["dense_1.kernel"], kernel, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(after["dense_1.bias"], bias, rtol=1e-5, atol=1e-6)
        assert model.optimizer.iterations == 1
        assert model._trainer.epochs_trained == 0


def test_train_on_batch_weighs_examples_and_returns_a_dict():
    x = RNG.normal(size=(4, 3)).astype(np.float32)
    y = RNG.normal(size=(4, 2)).astype(np.float32)
    weights = np.array([1.0, 0.0, 2.0, 0.5])
    with _linear() as model:
        loss, kernel, _ = _sgd_step(model.get_weights(), x, y, weights)
        result = model.train_on_batch(x, y, sample_weight=weights, return_dict=True)
        assert result == {"loss": pytest.approx(loss, rel=1e-5)}
        np.testing.assert_allclose(model.get_weights()["dense_1.kernel"], kernel, rtol=1e-5, atol=1e-6)


def test_test_on_batch_is_evaluate_of_that_batch_and_changes_nothing():
    with _classifier(metrics=["accuracy"]) as model:
        before = model.get_weights()
        result = model.test_on_batch(X, LABELS)
        expected = model.evaluate(X, LABELS, batch_size=len(X))
        assert result == pytest.approx(list(expected), rel=1e-6)
        for name, value in model.get_weights().items():
            np.testing.assert_array_equal(value, before[name])
        assert model.test_on_batch(X, LABELS, return_dict=True).keys() == {"loss", "accuracy"}


def test_predict_on_batch_is_predict():
    with _classifier() as model:
        np.testing.assert_array_equal(model.predict_on_batch(X), model.predict(X))


def test_train_on_batch_needs_compile_and_a_finite_loss():
    model = Sequential([Input(3), Dense(2, activation="linear")], seed=5)
    with pytest.raises(ModelStateError, match=r"needs a compiled model"):
        model.train_on_batch(np.zeros((2, 3), np.float32), np.zeros((2, 2), np.float32))
    with _linear() as compiled:
        x = np.full((2, 3), 1e30, np.float32)  # finite inputs whose squared error overflows
        with pytest.raises(NonFiniteLossError, match="no update was made"):
            compiled.train_on_batch(x, np.zeros((2, 2), np.float32))


# --- summary -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("functional", [False, True])
def test_summary_shows_which_layers_train(functional):
    if functional:
        inputs = Input(4)
        model = Model(inputs, Dense(3)(Dense(8)(inputs)), seed=1)
    else:
        model = Sequential([Input(4), Dense(8), Dense(3)], seed=1)
    model.get_layer("dense_1").trainable = False
    table = model.summary(print_fn=None, show_trainable=True)
    assert "Trainable" in table
    rows = {line.split("(")[0]: line.rstrip() for line in table.splitlines() if line.startswith(("input", "dense"))}
    assert rows["dense_1"].endswith("N") and rows["dense_2"].endswith("Y") and rows["input_1"].endswith("-")
    assert "Trainable" not in model.summary(print_fn=None)
    with pytest.raises(InvalidArgumentError, match="show_trainable"):
        model.summary(print_fn=None, show_trainable="yes")


# --- layer.output / layer.input (the functions behind `Layer.output` and `Layer.input`) -------------------------
def test_layer_output_and_input_of_a_functional_and_a_sequential_model():
    from onnxtrain.layers import Concatenate
    from onnxtrain.layers._layer_tensors import layer_input, layer_output

    a, b = Input(4, name="a"), Input(2, name="b")
    hidden = Dense(8)
    joined = Concatenate()([hidden(a), b])
    model = Model([a, b], Dense(3)(joined), seed=1)
    assert layer_output(hidden).layer is hidden and layer_input(hidden) is a
    assert layer_input(model.get_layer("concatenate_1")) == [layer_output(hidden), b]
    assert layer_output(a) is a and layer_input(a) is a
    model.close()
    stack = Sequential([Input(4), Dense(8), Dense(3)], seed=1)
    outputs = [layer_output(layer) for layer in stack.layers[1:]]  # while the model is open: its graph's tensors
    assert outputs[-1] is stack.outputs[0] and layer_input(stack.layers[2]) is outputs[0]
    stack.close()
    features = Model(inputs=stack.inputs, outputs=outputs)
    w = features.get_weights()
    np.testing.assert_allclose(features(X)[0], _relu(X @ w["dense_1.kernel"] + w["dense_1.bias"]), rtol=1e-5)


def test_layer_output_is_refused_for_a_shared_or_uncalled_layer():
    from onnxtrain.layers._layer_tensors import layer_output

    shared = Dense(3)
    a, b = Input(4), Input(4)
    shared(a), shared(b)
    with pytest.raises(InvalidArgumentError, match="called at 2 places"):
        layer_output(shared)
    with pytest.raises(InvalidArgumentError, match="called in no model yet"):
        layer_output(Dense(3))
