"""Keras' transfer learning with nested models: `model.trainable` freezes a model's layers (a nested model's too),
and a closed model gives up its layers, so that a pretrained base goes on under a new head."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Model, Sequential, load_model
from onnxtrain.callbacks import LambdaCallback
from onnxtrain.errors import InvalidArgumentError, ModelStateError
from onnxtrain.layers import BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D, Input

RNG = np.random.default_rng(0)
X = RNG.random((32, 8, 8, 1), np.float32)
Y = RNG.integers(0, 2, 32)


def base_model(name: str = "base") -> Model:
    image = Input(8, 8, 1)
    return Model(image, GlobalAveragePooling2D()(BatchNormalization()(Conv2D(4, 3)(image))), name=name, seed=0)


def with_head(base: Model, units: int = 2, name: str = "functional") -> Model:
    image = Input(8, 8, 1)
    return Model(image, Dense(units, activation="linear")(base(image)), name=name, seed=0)


# --- model.trainable -----------------------------------------------------------------------------------------
def test_freezing_a_nested_model_freezes_its_layers_as_keras_does():
    # /tmp/ut_vision/freeze_nested.py: Keras' guide, base_model.trainable = False, then a new head on it.
    base = base_model()
    base.trainable = False
    assert base.trainable is False and all(not layer.trainable for layer in base.layers[1:])
    with with_head(base) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        assert model.param_counts() == (4 * 2 + 2, 4 * 3 * 3 + 4 + 4 * 4)  # the head; conv, batch norm
        before = base.get_weights()
        model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    after = base.get_weights()
    for name, value in before.items():  # the moving statistics too: a frozen BatchNormalization infers
        np.testing.assert_array_equal(after[name], value, err_msg=name)


def test_unfreezing_makes_every_layer_trainable_again_and_trains_them():
    base = base_model()
    base.trainable = False
    base.trainable = True
    assert all(layer.trainable for layer in base.layers[1:])
    with with_head(base) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        before = base.get_weights()["conv2d_1.kernel"].copy()
        model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    assert not np.array_equal(base.get_weights()["conv2d_1.kernel"], before)


def test_freezing_a_compiled_model_takes_a_new_compile():
    with Sequential.of(Input(4), Dense(3, activation="linear"), seed=0) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.trainable = False
        x, y = RNG.random((8, 4), np.float32), RNG.integers(0, 3, 8)
        with pytest.raises(ModelStateError, match=r"trainable flag of layer\(s\) \['dense_1'\] changed after compile"):
            model.fit(x, y, verbose=0)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        assert model.param_counts() == (0, 15)


def test_freezing_a_model_nested_in_a_compiled_one_takes_that_ones_compile():
    base = base_model()
    with with_head(base) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        base.trainable = False
        with pytest.raises(
            ModelStateError, match=r"changed after compile\(\).*model\.trainable.*Call compile\(\) again"
        ):
            model.fit(X, Y, verbose=0)
        base.trainable = True  # as compiled again: nothing to apply
        model.fit(X, Y, epochs=1, verbose=0)


def test_a_sequential_frozen_before_its_layers_are_added_freezes_them():
    model = Sequential()
    model.trainable = False
    model.add(Input(4))
    model.add(Dense(3))
    assert model.trainable is False and not model.get_layer("dense_1").trainable
    assert model.param_counts() == (0, 15)


@pytest.mark.parametrize("value", ["False", 0, None])
def test_trainable_takes_a_bool_only(value):
    with pytest.raises(InvalidArgumentError, match=r"Model\.trainable expects a bool .*Received: trainable="):
        base_model().trainable = value


# --- a closed model's layers ---------------------------------------------------------------------------------
def test_a_closed_models_nested_base_goes_on_under_a_new_head_with_its_trained_weights():
    # /tmp/ut_vision/reuse_nested.py: pretrain base inside one model, close it, reuse base in another.
    base = base_model()
    pretrain = with_head(base, units=5, name="pretrain")
    pretrain.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    pretrain.fit(X, Y, epochs=1, verbose=0)
    trained = pretrain.get_weights()
    pretrain.close()
    with with_head(base, units=2, name="transfer") as transfer:
        for name, value in base.get_weights().items():
            np.testing.assert_array_equal(value, trained[f"base.{name}"], err_msg=name)
        transfer.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        transfer.fit(X, Y, epochs=1, verbose=0)
    assert not np.array_equal(base.get_weights()["conv2d_1.kernel"], trained["base.conv2d_1.kernel"])  # trained on


def test_a_base_nested_in_two_open_models_trains_in_one_and_predicts_in_the_other():
    base = base_model()
    pretrain, transfer = with_head(base, name="pretrain"), with_head(base, name="transfer")  # Keras' two heads
    assert base.graph.model_name == "pretrain"
    pretrain.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    pretrain.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    trained = {name.removeprefix("base."): w for name, w in pretrain.get_weights().items() if name.startswith("base.")}
    for name, value in base.get_weights().items():
        np.testing.assert_array_equal(value, trained[name], err_msg=name)
    transfer.set_weights({name: w for name, w in pretrain.get_weights().items() if not name.startswith("base.")})
    logits = transfer.predict(X)  # not compiled: the raw outputs
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, pretrain.predict_softly(X), rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelStateError, match=r"compile\(\) on model 'transfer': it shares layers with model "):
        transfer.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    pretrain.close()
    assert base.graph.model_name == "transfer"  # the open model that shares it holds it now
    transfer.close()
    assert base.graph.model_name is None


def test_the_layers_of_a_closed_model_go_into_a_new_model():
    image = Input(4)
    hidden = Dense(5, name="hidden")(image)
    first = Model(image, Dense(2, name="head")(hidden), seed=0)
    first.close()
    second = Model(image, Dense(3, name="other")(hidden), seed=0)
    assert second.get_layer("hidden") is first.get_layer("hidden")
    assert second.get_layer("hidden").model_name == second.name != first.name  # Keras' "functional_<n>" names


def test_closing_a_nested_model_leaves_its_layers_to_the_open_model_it_is_nested_in():
    base = base_model()
    outer = with_head(base, name="outer")
    base.close()
    conv = base.get_layer("conv2d_1")
    assert conv.model_name == "outer"  # outer trains it; a third model shares it
    third = Model(base.graph.inputs, conv(base.graph.inputs[0]), name="third")
    assert conv.model_name == "outer" and third.get_layer("conv2d_1") is conv
    outer.close()
    assert conv.model_name == "third"


def test_a_nested_model_read_during_the_outer_fit_gives_the_weights_trained_so_far(tmp_path):
    # Keras' "save the encoder every epoch from a callback": its weights are the ones the outer fit trained.
    x = RNG.normal(size=(32, 4)).astype(np.float32)
    inner = Input(4)
    encoder = Model(inner, Dense(3, name="e")(inner), name="encoder", seed=1)
    outer_input = Input(4)
    model = Model(outer_input, Dense(1, activation="linear")(encoder(outer_input)), seed=0)
    model.compile(optimizer="adam", loss="mse")
    seen = []

    def read(epoch, logs):
        encoder.save_weights(tmp_path / f"encoder-{epoch}.weights.npz")
        seen.append((epoch, encoder.get_weights(), model.get_weights()))

    model.fit(x, x[:, :1] * 2, epochs=3, batch_size=8, verbose=0, callbacks=[LambdaCallback(on_epoch_end=read)])
    for epoch, got, outer in seen:
        saved = np.load(tmp_path / f"encoder-{epoch}.weights.npz")
        for name, value in got.items():
            np.testing.assert_array_equal(value, outer[f"encoder.{name}"], err_msg=name)
            np.testing.assert_array_equal(saved[name], value, err_msg=name)
    assert not np.array_equal(seen[0][1]["e.kernel"], seen[-1][1]["e.kernel"])
    model.close()


def test_get_layer_of_a_nested_model_is_that_model_also_after_a_load(tmp_path):
    # Keras: model.get_layer("encoder") is the encoder Model, with get_layer, summary and predict.
    x = RNG.normal(size=(16, 4)).astype(np.float32)
    inner = Input(4)
    encoder = Model(inner, Dense(3, activation="linear", name="code")(inner), name="encoder", seed=1)
    outer_input = Input(4)
    model = Model(outer_input, Dense(1, activation="linear")(encoder(outer_input)), seed=0)
    assert model.get_layer("encoder") is encoder and model.get_layer(index=1) is encoder
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, x[:, :1], epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m")
    model.close()
    with load_model(tmp_path / "m") as loaded:
        nested = loaded.get_layer("encoder")
        assert isinstance(nested, Model) and nested.name == "encoder" and loaded.get_layer("encoder") is nested
        assert nested.get_layer("code") is loaded.graph.layers[1].layers[1]  # the loaded model's own layer
        loaded.fit(x, x[:, :1], epochs=1, batch_size=8, verbose=0)
        w = loaded.get_weights()
        np.testing.assert_allclose(
            nested.predict(x), x @ w["encoder.code.kernel"] + w["encoder.code.bias"], rtol=1e-5, atol=1e-6
        )
        assert "code(Dense)" in nested.summary(print_fn=None)


def test_a_nested_sequential_keeps_its_name():
    # It was listed as 'functional_1', so get_layer("base") failed (a nested Model kept its name).
    base = Sequential.of(Input(4), Dense(3, name="h"), name="base", seed=0)
    x = Input(4)
    with Model(x, Dense(1, activation="linear")(base(x)), seed=0) as model:
        assert [layer.name for layer in model.layers][1] == "base" and model.get_layer("base") is base
        assert list(model.get_weights())[:2] == ["base.h.kernel", "base.h.bias"]
