"""onnxtrain.Model: the functional API's model, trained, saved and exported as a Sequential is."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxtrain import Model, Sequential, load_model
from onnxtrain.callbacks import LambdaCallback
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelStateError, UnsupportedError
from onnxtrain.layers import Add, BatchNormalization, Concatenate, Conv2D, Dense, Flatten, Input, MaxPooling2D, ReLU

SUMMARY = """\
============================================================================================================
Model type: Functional (functional)
____________________________________________________________________________________________________________
Layer (type)                           Output Shape              Param #      Connected to
============================================================================================================
a(Input)                               [None, 8]                 0
____________________________________________________________________________________________________________
b(Input)                               [None, 4]                 0
____________________________________________________________________________________________________________
dense_1(Dense)                         [None, 8]                 72           a[0]
____________________________________________________________________________________________________________
add_1(Add)                             [None, 8]                 0            dense_1[0]
                                                                              a[0]
____________________________________________________________________________________________________________
concatenate_1(Concatenate)             [None, 12]                0            add_1[0]
                                                                              b[0]
____________________________________________________________________________________________________________
dense_2(Dense)                         [None, 3]                 39           concatenate_1[0]
============================================================================================================
Total trainable params: 111
Total frozen params: 0
Total params: 111
============================================================================================================"""

RNG = np.random.default_rng(0)
XA = RNG.normal(size=(64, 8)).astype(np.float32)
XB = RNG.normal(size=(64, 4)).astype(np.float32)
Y = RNG.integers(0, 3, 64)


def two_inputs(seed: int = 0) -> Model:
    a, b = Input(8, name="a"), Input(4, name="b")
    h = Add()([Dense(8)(a), a])  # a skip connection
    return Model(inputs=[a, b], outputs=Dense(3)(Concatenate()([h, b])), seed=seed)


def compiled(engine: str = "portable", seed: int = 0) -> Model:
    model = two_inputs(seed)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], engine=engine)
    return model


def test_summary_of_two_inputs_and_a_skip_connection_has_connected_to():
    model = two_inputs()  # named as Keras names it: "functional", "functional_1", ... in a process
    assert model.summary(print_fn=None) == SUMMARY.replace("(functional)", f"({model.name})")


def test_keras_default_names():
    x = Input(8, 8, 1)
    y = Dense(2)(Flatten()(MaxPooling2D()(ReLU()(BatchNormalization()(Conv2D(2, 3, padding="same")(x))))))
    names = [layer.name for layer in Model(x, y, seed=0).layers]
    assert names == [
        "input_1",
        "conv2d_1",
        "batch_normalization_1",
        "re_lu_1",
        "max_pooling2d_1",
        "flatten_1",
        "dense_1",
    ]


@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_fit_evaluate_predict_take_a_list_or_a_dict(engine):
    with compiled(engine) as model:
        history = model.fit([XA, XB], Y, epochs=2, batch_size=16, verbose=0)
        assert len(history.history["loss"]) == 2
        as_list, as_dict = model.evaluate([XA, XB], Y), model.evaluate({"b": XB, "a": XA}, Y)
        assert as_list.loss == as_dict.loss
        assert model.predict([XA[:5], XB[:5]]).shape == (5,)
        assert model.predict([XA[0], XB[0]]) == model.predict([XA[:1], XB[:1]])[0]


def test_save_load_and_export_name_the_inputs(tmp_path):
    with compiled() as model:
        model.fit([XA, XB], Y, epochs=1, verbose=0)
        model.save(tmp_path / "saved")
        exported = model.export(tmp_path / "model.onnx")
        expected = model.predict_softly([XA, XB])
    loaded = load_model(tmp_path / "saved")
    assert isinstance(loaded, Model) and not isinstance(loaded, Sequential)
    np.testing.assert_allclose(loaded.predict_softly({"a": XA, "b": XB}), expected, rtol=1e-6)
    assert [i.name for i in onnx.load(exported).graph.input] == ["a", "b"]
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["probabilities"], {"a": XA, "b": XB})[0], expected, rtol=1e-5, atol=1e-7)


def test_resume_one_plus_one_epochs_equals_two(tmp_path):
    with compiled() as straight:
        straight.fit([XA, XB], Y, epochs=2, batch_size=16, verbose=0)
        expected = straight.get_weights()
    with compiled() as first:
        first.fit([XA, XB], Y, epochs=1, batch_size=16, verbose=0)
        first.save(tmp_path / "m", save_optimizer_state=True)
    with load_model(tmp_path / "m") as resumed:
        resumed.fit([XA, XB], Y, epochs=1, batch_size=16, verbose=0)
        for name, value in resumed.get_weights().items():
            np.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_a_model_is_a_layer_of_another_and_a_shared_layer_shares_weights():
    inner_in = Input(4)
    encoder = Model(inner_in, Dense(4, activation="relu")(inner_in), name="encoder", seed=1)
    a, b = Input(4, name="a"), Input(4, name="b")
    shared = Dense(4)
    y = Dense(2)(Concatenate()([shared(encoder(a)), shared(b)]))
    model = Model([a, b], y, seed=0)
    assert list(model.get_weights()) == [
        "encoder.dense_1.kernel", "encoder.dense_1.bias", "dense_1.kernel", "dense_1.bias", "dense_2.kernel",
        "dense_2.bias",
    ]  # fmt: skip
    rows = [line.split() for line in model.summary(print_fn=None).splitlines()]
    assert ["encoder(Functional)", "[None,", "4]", "20", "a[0]"] in rows
    assert ["dense_1(Dense)", "[None,", "4]", "20", "encoder[0]"] in rows  # the shared layer: one row, two calls
    assert ["concatenate_1(Concatenate)", "[None,", "8]", "0", "dense_1[0]"] in rows and ["dense_1[1]"] in rows
    with model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        before = model.get_weights()["encoder.dense_1.kernel"].copy()
        model.fit([XA[:, :4], XB], Y % 2, epochs=1, verbose=0)
        assert not np.array_equal(model.get_weights()["encoder.dense_1.kernel"], before)
        assert model.predict([XA[:3, :4], XB[:3]]).shape == (3,)


def test_sequential_is_a_model_and_saves_as_before(tmp_path):
    model = Sequential.of(Input(4), Dense(3), seed=0)
    assert isinstance(model, Model)
    assert "layers" in model.get_config() and "class_name" not in model.get_config()
    model.save(tmp_path / "s")
    assert isinstance(load_model(tmp_path / "s"), Sequential)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda a, b: Model(a, Dense(2)(Concatenate()([a, b]))), InvalidArgumentError, "Graph disconnected"),
        (lambda a, b: Model([a, Input(4, name="labels")], Dense(2)(a)), InvalidArgumentError, "labels'] is a name"),
    ],
)
def test_bad_models_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make(Input(4, name="a"), Input(4, name="b"))


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (XA, InvalidTypeError, r"one array per model input \(\['a', 'b'\]\)"),
        ([XA], InvalidTypeError, "a list of 1"),
        ({"a": XA}, InvalidArgumentError, r"keyed \['a', 'b'\]"),
        ([XA, XB[:10]], InvalidArgumentError, "as many examples in every input"),
        ([XB, XA], Exception, r"x\['a'\] expects shape"),
    ],
)
def test_bad_inputs_of_several_are_refused(x, error, match):
    with compiled() as model, pytest.raises(error, match=match):
        model.predict(x)


def test_a_label_wider_than_its_column_wraps_and_the_columns_stay_aligned():
    from onnxtrain.layers import GlobalAveragePooling2D

    x = Input(4, 4, 2, name="image")
    model = Model(inputs=x, outputs=Dense(3)(GlobalAveragePooling2D()(x)), seed=0)
    lines = model.summary(print_fn=None).splitlines()
    # As Keras wraps a cell: at the word boundary before the type, not inside a word.
    first = next(i for i, line in enumerate(lines) if line.startswith("global_average_pooling2d_1"))
    assert lines[first] == "global_average_pooling2d_1             [None, 2]                 0            image[0]"
    assert lines[first + 1] == "(GlobalAveragePooling2D)"


# --- models made of one layer share its weights ---------------------------------------------------------------
def test_an_autoencoder_and_its_encoder_share_the_weights_the_autoencoder_trains():
    # Keras' "Building Autoencoders" idiom: encoder = Model(input, encoded) beside autoencoder = Model(input, decoded).
    x = RNG.normal(size=(48, 4)).astype(np.float32)
    inp = Input(4)
    code = Dense(2, activation="linear", name="enc")(inp)
    autoencoder = Model(inp, Dense(4, activation="linear", name="dec")(code), name="autoencoder", seed=0)
    encoder = Model(inp, code, name="encoder")
    assert (
        encoder.get_layer("enc") is autoencoder.get_layer("enc")
        and encoder.get_layer("enc").model_name == "autoencoder"
    )

    def encoded(weights):
        return x @ weights["enc.kernel"] + weights["enc.bias"]

    np.testing.assert_allclose(encoder.predict(x), encoded(autoencoder.get_weights()), rtol=1e-5, atol=1e-6)
    autoencoder.compile(optimizer="adam", loss="mse")
    seen = []
    on_epoch = LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append((encoder.predict(x), encoded(autoencoder.get_weights())))
    )
    autoencoder.fit(x, x, epochs=3, batch_size=16, verbose=0, callbacks=[on_epoch])
    for got, expected in seen:  # each epoch's weights, read during the fit
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(seen[0][0], seen[-1][0])
    np.testing.assert_allclose(encoder.predict(x), encoded(autoencoder.get_weights()), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(encoder.get_layer("enc").get_weights()[0], autoencoder.get_weights()["enc.kernel"])
    with pytest.raises(
        ModelStateError,
        match=r"compile\(\) on model 'encoder': it shares layers with model "
        r"'autoencoder' \(made of the same layers, or one a layer of the other\), which is compiled",
    ):
        encoder.compile(optimizer="adam", loss="mse")
    with Sequential.of(Input(4), autoencoder.get_layer("enc")) as stacked:  # a third model of the layer
        np.testing.assert_allclose(stacked.predict(x), encoded(autoencoder.get_weights()), rtol=1e-5, atol=1e-6)


def test_the_model_not_compiled_trains_a_shared_layer_for_the_other_and_a_new_weight_reaches_the_engine():
    x, y = RNG.normal(size=(32, 4)).astype(np.float32), RNG.normal(size=(32, 2)).astype(np.float32)
    inp = Input(4)
    code = Dense(2, activation="linear", name="enc")(inp)
    autoencoder = Model(inp, Dense(4, activation="linear", name="dec")(code), name="autoencoder", seed=0)
    with Model(inp, code, name="encoder") as encoder:
        encoder.compile(optimizer="sgd", loss="mse")
        encoder.fit(x, y, epochs=2, batch_size=8, verbose=0)
        trained = encoder.get_weights()
        for name in ("enc.kernel", "enc.bias"):  # read through the layer's holder, which is not compiled
            np.testing.assert_array_equal(autoencoder.get_weights()[name], trained[name], err_msg=name)
        kernel = np.full((4, 2), 0.5, np.float32)
        autoencoder.get_layer("enc").set_weights([kernel, np.zeros(2, np.float32)])  # Keras' layer.set_weights
        np.testing.assert_allclose(encoder.predict(x), x @ kernel, rtol=1e-5, atol=1e-6)  # the engine has it
        loss = encoder.evaluate(x, y, verbose=0)
        np.testing.assert_allclose(float(loss), np.mean((x @ kernel - y) ** 2), rtol=1e-5)
    assert autoencoder.get_layer("enc").model_name == "autoencoder"
    autoencoder.close()
    assert autoencoder.get_layer("enc").model_name is None


def test_a_feature_extractor_of_an_open_trained_model_gives_its_layer_s_outputs():
    # Keras' FAQ: Model(inputs=model.inputs, outputs=model.get_layer(name).output), the model still in use.
    x, y = RNG.normal(size=(40, 4)).astype(np.float32), RNG.integers(0, 3, 40)
    with Sequential.of(Input(4), Dense(6, activation="relu", name="hidden"), Dense(3), seed=0) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        extractor = Model(inputs=model.inputs, outputs=model.get_layer("hidden").output)
        w = model.get_weights()
        np.testing.assert_allclose(
            extractor.predict(x), np.maximum(x @ w["hidden.kernel"] + w["hidden.bias"], 0), rtol=1e-5, atol=1e-6
        )
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # trained on: the extractor follows
        w = model.get_weights()
        np.testing.assert_allclose(
            extractor.predict(x), np.maximum(x @ w["hidden.kernel"] + w["hidden.bias"], 0), rtol=1e-5, atol=1e-6
        )
    extractor.close()


def test_a_model_of_several_outputs_trains_the_shared_part_for_both():
    inp = Input(4)
    code = Dense(5, name="enc")(inp)
    with Model(inp, [Dense(3, name="head")(code), code], seed=0) as model:
        model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"])
        before = model.get_weights()["enc.kernel"].copy()
        model.fit(XA[:, :4], [Y, np.zeros((64, 5), np.float32)], epochs=2, verbose=0)
        assert not np.array_equal(model.get_weights()["enc.kernel"], before)


def autoencoder() -> tuple[Model, Model]:
    inner = Input(4)
    encoder = Model(inner, Dense(5, activation="tanh", name="enc")(inner), name="encoder", seed=1)
    x = Input(4)
    full = Model(x, Dense(3, name="head")(encoder(x)), name="full", seed=0)
    return encoder, full


def test_a_nested_model_sees_the_training_of_the_model_it_is_a_layer_of(tmp_path):
    encoder, full = autoencoder()
    before = encoder.get_weights()["enc.kernel"].copy()
    full.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    full.fit(XA[:, :4], Y, epochs=3, verbose=0)
    trained = full.get_weights()["encoder.enc.kernel"]
    assert not np.array_equal(trained, before)
    np.testing.assert_array_equal(encoder.get_weights()["enc.kernel"], trained)  # right after fit, full still open
    encoder.save(tmp_path / "encoder")
    with load_model(tmp_path / "encoder", compile=False) as loaded:
        np.testing.assert_array_equal(loaded.get_weights()["enc.kernel"], trained)
    full.close()


def test_two_models_sharing_layers_are_not_compiled_at_once():
    encoder, full = autoencoder()
    full.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(
        ModelStateError,
        match=r"compile\(\) on model 'encoder': it shares layers with model 'full' .* Close 'full' first",
    ):
        encoder.compile(optimizer="adam", loss="mse")
    full.fit(XA[:, :4], Y, epochs=2, verbose=0)
    trained = full.get_weights()
    full.close()
    with encoder:  # full is closed: encoder trains its layers from where full left them
        encoder.compile(optimizer="adam", loss="mse")
        np.testing.assert_array_equal(encoder.get_weights()["enc.kernel"], trained["encoder.enc.kernel"])
        codes = np.tanh(XA[:3, :4] @ trained["encoder.enc.kernel"] + trained["encoder.enc.bias"])
        np.testing.assert_allclose(encoder.predict(XA[:3, :4]), codes, rtol=1e-5, atol=1e-6)
    encoder, full = autoencoder()
    encoder.compile(optimizer="adam", loss="mse")  # the other way round too
    with pytest.raises(ModelStateError, match=r"compile\(\) on model 'full': it shares layers with model 'encoder'"):
        full.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    encoder.close()


def test_a_model_of_one_input_takes_keras_list_and_dict_forms_of_its_batch():
    """Keras accepts [x] and {input name: x} for a model of one input: the same numbers as x itself; a one-example
    list of numbers stays a batch of one."""
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    y = np.random.default_rng(1).normal(size=(6, 2)).astype(np.float32)
    inputs = Input(4, name="features")
    with Model(inputs=inputs, outputs=Dense(2, activation="linear")(inputs), seed=0) as model:
        model.compile(optimizer="sgd", loss="mse")
        expected = model.predict(x)
        for given in ([x], (x,), {"features": x}):
            np.testing.assert_array_equal(model.predict(given), expected)
            assert model.evaluate(given, y).loss == model.evaluate(x, y).loss
        assert model.predict([x[0].tolist()]).shape == (1, 2)
        before = model.get_weights()
        losses = model.fit([x], y, epochs=2, shuffle=False, verbose=0).history["loss"]
        model.set_weights(before)
        assert model.fit({"features": x}, y, epochs=2, shuffle=False, verbose=0).history["loss"] == losses
        with pytest.raises(InvalidArgumentError, match=r"a dict \{'features': array\}.*Received keys: \['image'\]"):
            model.predict({"image": x})


def test_a_model_of_two_inputs_is_called_with_them_as_arguments_or_a_list():
    """KotlinDL's vararg call and Keras' list: `pair(a, b)` is `pair([a, b])`, symbolic or on arrays."""
    a, b = Input(3, name="a"), Input(3, name="b")
    pair = Model([a, b], Dense(2, activation="linear", name="mix")(Concatenate()([a, b])), name="pair", seed=0)
    left, right = np.ones((4, 3), np.float32), np.arange(12, dtype=np.float32).reshape(4, 3)
    eager = pair(left, right)
    np.testing.assert_allclose(eager, pair([left, right]))
    x, y = Input(3, name="x"), Input(3, name="y")
    with Model([x, y], pair(x, y), name="outer", seed=0) as outer:
        np.testing.assert_allclose(outer([left, right]), eager, rtol=1e-6)  # pair inside outer


def test_keras_model_subclassing_and_a_model_of_nothing_are_refused_saying_how_to_build_one():
    class MyModel(Model):
        def __init__(self):
            super().__init__()
            self.hidden = Dense(4)

        def call(self, x):
            return self.hidden(x)

    with pytest.raises(UnsupportedError, match=r"^MyModel subclasses Model and defines call\(\), Keras' model "
                       r"subclassing, which onnxtrain does not support: .*docs/layers\.md"):  # fmt: skip
        MyModel()
    with pytest.raises(InvalidTypeError, match=r"Model\(\) expects inputs and outputs: .*Received: no inputs and no "
                       r"outputs$"):  # fmt: skip
        Model()
    with pytest.raises(InvalidTypeError, match=r"Received: no outputs$"):
        Model(Input(4))
