"""An output compile gives no loss (Keras' `loss=[..., None]`, or a loss dict that leaves it out): it takes no
target, adds nothing to the loss and logs nothing, and is still predicted, saved and exported. Trained against
Keras 3.15's numbers for the same model, weights, data and SGD steps."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Dense, Input
from onnxtrain.loading import load_model
from onnxtrain.model import Model
from onnxtrain.optimizers import SGD

# The reference numbers below come from Keras 3.15 on JAX (KERAS_BACKEND=jax), for the same model built with
# keras.Input((4,)), Dense(5, activation="tanh", name="h") and Dense heads "kind" (3), "size" (2), "emb" (2), the
# same starting weights (`_start`, set with layer.set_weights), SparseCategoricalCrossentropy(from_logits=True) for
# "kind", "mse" for "size", SGD(0.1), fit(epochs=2, batch_size=4, shuffle=False), rounded to 7 digits:
#   A: compile(loss=[sce, "mse", None]); fit(x, [yk, ys, ys])
#   B: Model(a, {"kind": ..., "size": ..., "emb": ...}); compile(loss={"kind": sce}); fit(x, {"kind": yk})
KERAS_A_HISTORY = {
    "loss": [2.430042, 1.9576726],
    "kind_loss": [1.2656846, 1.1321174],
    "size_loss": [1.1643574, 0.8255553],
}
KERAS_A_WEIGHTS = {
    "h.kernel": [-0.0317029, 0.5183459, 0.6626866, -0.0200981, 0.0664507, -0.2628355, 0.2509231, -0.0258129,
                 0.4556257, -0.8671606, 0.7202955, 0.0470324, 0.3358359, -0.0856274, -0.1383589, 0.1913175,
                 0.4257977, -0.009045, 0.0606102, 0.4056984],
    "h.bias": [-0.0431892, -0.1157951, -0.0286981, -0.2223311, -0.3030094],
    "kind.kernel": [-0.4155951, -0.3227525, -0.4990792, -0.6669187, -0.0645025, 0.4521329, -0.0548055, -0.444254,
                    0.2031923, 0.3572688, -0.1329229, 0.2566007, 0.5051534, -0.1485222, -0.3454293],
    "kind.bias": [-0.0444035, 0.1668173, 0.0469871],
    "size.kernel": [-0.4867435, -0.2922142, -0.3584561, -0.6272687, 0.1489906, 0.3963251, -0.4053588, 0.6907421,
                    0.399034, 0.2817269],
    "size.bias": [-0.0723585, -0.1169078],
}  # fmt: skip
KERAS_B_HISTORY = {"loss": [1.281459, 1.1646336]}
KERAS_B_WEIGHTS = {
    "h.kernel": [0.0156423, 0.5972237, 0.6150916, -0.1899041, -0.0641886, -0.2554399, 0.260588, -0.0506192,
                 0.3756086, -0.9013941, 0.7708935, 0.0397001, 0.3726286, -0.0372736, -0.2393622, 0.2150809,
                 0.4934569, -0.0549392, -0.0442681, 0.3271222],
    "h.bias": [-0.0767658, -0.1480543, -0.0024099, -0.1339104, -0.2153445],
    "kind.kernel": [-0.4045354, -0.3300525, -0.5028389, -0.6553127, -0.0778865, 0.4539109, -0.0504071, -0.4447785,
                    0.1993185, 0.3425832, -0.1154013, 0.2537646, 0.4958053, -0.1283596, -0.3562439],
    "kind.bias": [-0.0581185, 0.1751712, 0.0523482],
}  # fmt: skip

_RNG = np.random.default_rng(7)
X = _RNG.normal(size=(12, 4)).astype(np.float32)
Y_KIND = _RNG.integers(0, 3, 12)
Y_SIZE = _RNG.normal(size=(12, 2)).astype(np.float32)


def _start() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    weights = {}
    for name, shape in {"h": (4, 5), "kind": (5, 3), "size": (5, 2), "emb": (5, 2)}.items():
        weights[f"{name}.kernel"] = rng.normal(scale=0.5, size=shape).astype(np.float32)
        weights[f"{name}.bias"] = rng.normal(scale=0.1, size=shape[1]).astype(np.float32)
    return weights


def _three_heads(keyed: bool = False) -> Model:
    a = Input(4, name="a")
    h = Dense(5, activation="tanh", name="h")(a)
    heads = {
        name: Dense(units, activation="linear", name=name)(h) for name, units in (("kind", 3), ("size", 2), ("emb", 2))
    }
    model = Model(a, heads if keyed else list(heads.values()), seed=0)
    model.set_weights(_start())
    return model


def _check_against_keras(model: Model, history: dict, keras_history: dict, keras_weights: dict) -> None:
    assert set(history) == set(keras_history)  # no "emb_loss"; one loss alone logs only "loss", as in Keras
    for key, values in keras_history.items():
        np.testing.assert_allclose(history[key], values, rtol=2e-6, atol=2e-7, err_msg=key)
    weights = model.get_weights()
    for name, values in keras_weights.items():
        np.testing.assert_allclose(weights[name].ravel(), values, atol=2e-6, err_msg=name)
    for name in ("emb.kernel", "emb.bias"):  # no loss reads it: its weights get no gradient
        np.testing.assert_array_equal(weights[name], _start()[name])


def test_a_loss_list_with_none_trains_as_keras_does():
    with _three_heads() as model:
        model.compile(optimizer=SGD(learning_rate=0.1), loss=["sparse_categorical_crossentropy", "mse", None])
        history = model.fit(X, [Y_KIND, Y_SIZE, None], epochs=2, batch_size=4, shuffle=False, verbose=0).history
        _check_against_keras(model, history, KERAS_A_HISTORY, KERAS_A_WEIGHTS)


def test_a_loss_dict_leaving_outputs_out_trains_as_keras_does():
    with _three_heads(keyed=True) as model:
        model.compile(optimizer=SGD(learning_rate=0.1), loss={"kind": "sparse_categorical_crossentropy"})
        history = model.fit(X, {"kind": Y_KIND}, epochs=2, batch_size=4, shuffle=False, verbose=0).history
        _check_against_keras(model, history, KERAS_B_HISTORY, KERAS_B_WEIGHTS)


@pytest.mark.parametrize(
    "y",
    [
        [Y_KIND, Y_SIZE, Y_SIZE],  # a target for an output without a loss is not read
        [Y_KIND, Y_SIZE, None],
        [Y_KIND, Y_SIZE],  # Keras' list of the targets of the outputs that have a loss
        {"kind": Y_KIND, "size": Y_SIZE},
    ],
    ids=["full list", "None", "short list", "dict"],
)
def test_every_form_of_y_gives_the_same_loss(y):
    with _three_heads() as model:
        model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse", None])
        result = model.evaluate(X, y, return_dict=True, verbose=0)
    assert set(result) == {"loss", "kind_loss", "size_loss"}
    assert result["loss"] == pytest.approx(result["kind_loss"] + result["size_loss"], rel=1e-6)


def test_one_array_is_the_target_of_the_one_output_that_has_a_loss():
    # Keras 3.15 takes fit(x, y) with y one array where one output has a loss (loss=[..., None, None]).
    with _three_heads() as model:
        model.compile(optimizer=SGD(learning_rate=0.1), loss=["sparse_categorical_crossentropy", None, None])
        array = model.evaluate(X, Y_KIND, return_dict=True, verbose=0)
        assert array == model.evaluate(X, [Y_KIND], return_dict=True, verbose=0)
        assert array == model.evaluate(X, {"kind": Y_KIND}, return_dict=True, verbose=0)
        model.fit(X, Y_KIND, epochs=1, batch_size=4, shuffle=False, verbose=0)
        trained = model.get_weights()
    with _three_heads() as twin:
        twin.compile(optimizer=SGD(learning_rate=0.1), loss=["sparse_categorical_crossentropy", None, None])
        twin.fit(X, [Y_KIND], epochs=1, batch_size=4, shuffle=False, verbose=0)
        for name, value in twin.get_weights().items():
            np.testing.assert_array_equal(trained[name], value, err_msg=name)


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (
            {"size": Y_SIZE},
            r"y expects one entry per output that has a loss \(\['kind', 'size'\]\).*missing: \['kind'\]",
        ),
        ([None, Y_SIZE, None], r"y expects an array for every output that has a loss.*None for \['kind'\]"),
        ([Y_KIND], r"or one per output that has a loss \(2: \['kind', 'size'\]\)\. Received: a list of 1"),
        ({"kind": Y_KIND, "size": Y_SIZE, "typo": Y_SIZE}, r"unknown: \['typo'\]"),
    ],
)
def test_a_missing_target_of_an_output_with_a_loss_is_refused(y, match):
    with _three_heads() as model:
        model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse", None])
        with pytest.raises(InvalidArgumentError, match=match):
            model.fit(X, y, epochs=1, verbose=0)


@pytest.mark.parametrize("loss", [[None, None, None], {}, None], ids=["list", "dict", "None"])
def test_no_loss_for_any_output_is_refused(loss):
    with _three_heads() as model, pytest.raises(InvalidArgumentError, match=r"expects a loss for at least one output"):
        model.compile(optimizer="sgd", loss=loss)


def test_metrics_for_an_output_without_a_loss_are_refused_and_metrics_for_all_skip_it():
    with _three_heads() as model:
        with pytest.raises(InvalidArgumentError, match=r"metrics for output 'emb', which has no loss"):
            model.compile(optimizer="sgd", loss={"kind": "mse", "size": "mse"}, metrics={"emb": ["mae"]})
        model.compile(optimizer="sgd", loss={"kind": "mse", "size": "mse"}, metrics=["mae"])
        result = model.evaluate(X, {"kind": np.zeros((12, 3)), "size": Y_SIZE}, return_dict=True, verbose=0)
    assert set(result) == {"loss", "kind_loss", "size_loss", "kind_mae", "size_mae"}


def test_an_output_without_a_loss_is_predicted_saved_loaded_and_exported(tmp_path):
    with _three_heads(keyed=True) as model:
        model.compile(optimizer=SGD(learning_rate=0.1), loss={"kind": "sparse_categorical_crossentropy"})
        model.fit(X, {"kind": Y_KIND}, epochs=1, batch_size=4, verbose=0)
        predicted = model.predict(X, verbose=0)  # a dict model predicts a dict, by sorted key (Keras 3)
        assert {key: value.shape for key, value in predicted.items()} == {
            "emb": (12, 2),
            "kind": (12,),
            "size": (12, 2),
        }
        emb = predicted["emb"]
        trunk = np.tanh(X @ model.get_weights()["h.kernel"] + model.get_weights()["h.bias"])
        np.testing.assert_allclose(emb, trunk @ _start()["emb.kernel"] + _start()["emb.bias"], atol=1e-5)
        model.save(tmp_path / "saved")
        model.export(tmp_path / "model.onnx")
    with load_model(tmp_path / "saved") as loaded:
        np.testing.assert_allclose(loaded.predict(X, verbose=0)["emb"], emb, atol=1e-6)
        history = loaded.fit(X, {"kind": Y_KIND}, epochs=1, batch_size=4, verbose=0).history
    assert set(history) == {"loss"}
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": X}), strict=True))
    np.testing.assert_allclose(outputs["emb"], emb, atol=1e-5)
    assert "emb_probabilities" not in outputs
