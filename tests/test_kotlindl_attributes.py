"""KotlinDL's names of attributes (`_kotlindl_attributes.py`), as a user porting KotlinDL code writes them: a miss names
Python's spelling or what stands for the name (a model's, a model class's, a Dataset's, an InferenceModel's, the
package's); KotlinDL's `layer.freeze()` / `unfreeze()`; `conv2(conv1)` wiring and the positional arguments after a
Dataset (`fit(train, val)`) refused naming what to write; and two models of one name told apart."""

from __future__ import annotations

import re

import numpy as np
import pytest

import onnxtrain
from onnxtrain import Dataset, History, InferenceModel, Model, Sequential, load_model
from onnxtrain._kotlindl_attributes import (
    KOTLINDL_HISTORY_ATTRIBUTES,
    KOTLINDL_MODEL_ATTRIBUTES,
    missing_attribute,
)
from onnxtrain._spelling import labels_beside_dataset
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelStateError
from onnxtrain.layers import Add, Conv2D, Dense, Flatten, Input

RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 4)).astype(np.float32)
Y = RNG.integers(0, 3, 16)
SNAKE = r"Python's spelling of KotlinDL's camelCase names is snake_case: "


def small() -> Sequential:
    return Sequential.of(Input(4), Dense(8), Dense(3, activation="linear"), seed=0)


def functional() -> Model:
    x = Input(4)
    return Model(x, Dense(3)(x), seed=0)


@pytest.fixture(scope="module")
def inference_model(tmp_path_factory) -> InferenceModel:
    path = tmp_path_factory.mktemp("export") / "model.onnx"
    with small() as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        model.export(path)
    return InferenceModel.load(path)


# --- a miss names Python's spelling or what stands for KotlinDL's name -----------------------------------------
HINTED = [
    ("Model.of", lambda: Model.of, r"^type object 'Model' has no attribute 'of'\. For KotlinDL's Functional\.of, "),
    ("Model.of names Model(...)", lambda: Model.of, r"use Model\(inputs=\.\.\., outputs=\.\.\.\) of the tensors"),
    ("Model.fromOutput", lambda: Model.fromOutput, r"For KotlinDL's Functional\.fromOutput, use Model\(inputs=x"),
    (
        "Sequential.loadDefaultModelConfiguration",
        lambda: Sequential.loadDefaultModelConfiguration,
        r"^type object 'Sequential' has no attribute 'loadDefaultModelConfiguration'\. For KotlinDL's "
        r"Sequential\.loadDefaultModelConfiguration, use onnxtrain\.load_model\(directory, compile=False\)",
    ),
    ("Sequential.fromConfig", lambda: Sequential.fromConfig, SNAKE + r"Sequential\.from_config$"),
    (
        "onnxtrain.Functional",
        lambda: onnxtrain.Functional,
        r"^module 'onnxtrain' has no attribute 'Functional'\. For KotlinDL's Functional, use onnxtrain\.Model: ",
    ),
    (
        "onnxtrain.OnHeapDataset",
        lambda: onnxtrain.OnHeapDataset,
        r"For KotlinDL's OnHeapDataset, use onnxtrain\.Dataset",
    ),
    (
        "model.use",
        lambda: small().use,
        r"^'Sequential' object has no attribute 'use'\. For KotlinDL's use, use `with model: \.\.\.` \(the model",
    ),
    (
        "model.isModelCompiled",
        lambda: functional().isModelCompiled,
        r"^'Model' object has no attribute 'isModelCompiled'\. For KotlinDL's isModelCompiled, use model\.is_compiled$",
    ),
    ("model.predictSoftly", lambda: small().predictSoftly, SNAKE + r"model\.predict_softly$"),
    (
        "dataset.xSize",
        lambda: Dataset(X, Y).xSize,
        r"^'Dataset' object has no attribute 'xSize'\. For KotlinDL's xSize, use len\(dataset\)",
    ),
    (
        "dataset.getX",
        lambda: Dataset(X, Y).getX,
        r"^'Dataset' object has no attribute 'getX'\. " + SNAKE + "dataset.get_x$",
    ),
]


@pytest.mark.parametrize(("get", "match"), [row[1:] for row in HINTED], ids=[row[0] for row in HINTED])
def test_kotlindl_names_of_attributes_name_what_stands_for_them(get, match):
    with pytest.raises(AttributeError, match=match):
        get()


def test_an_inference_models_camel_case_method_names_its_spelling(inference_model):
    with pytest.raises(AttributeError, match=r"'predictSoftly'\. " + SNAKE + r"inference_model\.predict_softly$"):
        inference_model.predictSoftly  # noqa: B018
    assert inference_model.predict_softly(X[:2]).shape == (2, 3)


# The tables read by `missing_attribute` itself (a model's `__getattr__` and History's call it with theirs)
TABLES = [
    (History(), "lastEpochEvent", KOTLINDL_HISTORY_ATTRIBUTES, "history", r"use history\.last\(\): the last epoch's"),
    (History(), "epochHistory", KOTLINDL_HISTORY_ATTRIBUTES, "history", r"use history\.history \(\{key: one value"),
    (History(), "toCsv", KOTLINDL_HISTORY_ATTRIBUTES, "history", SNAKE + r"history\.to_csv$"),
    (small(), "use", KOTLINDL_MODEL_ATTRIBUTES, "model", r"For KotlinDL's use, use `with model: \.\.\.`"),
    (small(), "init", KOTLINDL_MODEL_ATTRIBUTES, "model", r"For KotlinDL's init, use nothing: a model's weights are"),
    (small(), "predictAndGetActivations", KOTLINDL_MODEL_ATTRIBUTES, "model", r"outputs=\[layer\.output for layer"),
    (small(), "layersByName", KOTLINDL_MODEL_ATTRIBUTES, "model", r"use model\.get_layer\(name\)"),
    (small(), "predictSoftly", KOTLINDL_MODEL_ATTRIBUTES, "model", SNAKE + r"model\.predict_softly$"),
]


@pytest.mark.parametrize(("owner", "attribute", "table", "spelled", "hint"), TABLES, ids=[row[1] for row in TABLES])
def test_missing_attribute_reads_each_table(owner, attribute, table, spelled, hint):
    message = missing_attribute(owner, attribute, table, spelled)
    assert message.startswith(f"'{type(owner).__name__}' object has no attribute '{attribute}'. ")
    assert re.search(hint, message)


def test_the_activations_model_the_hint_names_gives_every_layers_output():
    model = small()
    activations = Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers[1:]]).predict(X)
    kernel, bias = model.layers[1].get_weights()
    np.testing.assert_allclose(activations[0], np.maximum(X @ kernel + bias, 0), rtol=1e-5, atol=1e-6)
    assert activations[1].shape == (16, 3)


@pytest.mark.parametrize("attribute", ["fooBar", "nothing_here", "_private", "__array__"])
def test_other_misses_stay_plain(attribute):
    for owner, message in [
        (Dataset(X, Y), f"'Dataset' object has no attribute '{attribute}'"),
        (small(), f"'Sequential' object has no attribute '{attribute}'"),
        (Model, f"type object 'Model' has no attribute '{attribute}'"),
        (onnxtrain, f"module 'onnxtrain' has no attribute '{attribute}'"),
    ]:
        with pytest.raises(AttributeError, match=rf"^{message}$") as caught:
            getattr(owner, attribute)
        assert caught.value.name == attribute
        assert getattr(owner, attribute, "default") == "default"


def test_a_subclass_of_model_is_hinted_and_keeps_its_own_class_attributes():
    class Tagged(Sequential):
        tag = "mine"

    assert Tagged.tag == "mine" and Tagged.of.__func__ is Sequential.of.__func__
    with pytest.raises(AttributeError, match=r"For KotlinDL's Tagged\.loadDefaultModelConfiguration, use "):
        Tagged.loadDefaultModelConfiguration  # noqa: B018


# --- freeze / unfreeze --------------------------------------------------------------------------------------
def test_freeze_and_unfreeze_set_trainable():
    layer = Dense(3)
    layer.freeze()
    assert layer.trainable is False
    layer.unfreeze()
    assert layer.trainable is True


def test_kotlindls_freeze_then_unfreeze_the_last_trains_the_last_layer_alone_after_compile_again():
    with small() as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        before = model.get_weights()
        model.freeze()  # KotlinDL's model.freeze(): every layer
        assert model.trainable is False and not any(layer.trainable for layer in model.layers[1:])
        model.layers[-1].unfreeze()
        with pytest.raises(ModelStateError, match=r"changed after compile\(\)"):
            model.fit(X, Y, epochs=1, verbose=0)
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
        after = model.get_weights()
        assert model.param_counts() == (8 * 3 + 3, 4 * 8 + 8)
    last = model.layers[-1].name
    for name, value in before.items():
        assert np.array_equal(value, after[name]) != name.startswith(f"{last}.")


def test_a_models_unfreeze_makes_every_layer_trainable_again_and_trains_them_all():
    with small() as model:
        model.freeze()
        model.unfreeze()
        assert model.trainable is True and all(layer.trainable for layer in model.layers)
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        before = model.get_weights()
        model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
        assert model.param_counts() == (4 * 8 + 8 + 8 * 3 + 3, 0)
        assert all(not np.array_equal(value, model.get_weights()[name]) for name, value in before.items())


def test_a_nested_models_freeze_freezes_its_layers_in_the_model_it_is_called_in():
    base = small()
    x = Input(4)
    outer = Model(x, Dense(2, name="top")(base(x)), seed=0)
    outer.get_layer(base.name).freeze()  # KotlinDL's transfer learning: the base frozen, the head trained
    with outer:
        outer.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        assert outer.param_counts() == (3 * 2 + 2, 4 * 8 + 8 + 8 * 3 + 3)


# --- KotlinDL's wiring of layer to layer ---------------------------------------------------------------------
def test_a_layer_called_on_a_layer_names_the_tensor_to_call_it_on():
    x = Input(8, 8, 1)
    conv1, conv2 = Conv2D(4, 3, name="c1"), Conv2D(4, 3, name="c2")
    with pytest.raises(
        InvalidTypeError, match=r"KotlinDL's layer\(otherLayer\) wiring\): y = c1\(x\), then c2\(y\)\.$"
    ):
        conv2(conv1)
    conv1(x)
    with pytest.raises(InvalidTypeError, match=r"then c2\(y\); here c1\.output, the tensor of its one call\.$"):
        conv2(conv1)
    assert conv2(conv1.output).layer is conv2  # the same layer, now wired as KotlinDL's conv2(conv1) meant
    with pytest.raises(InvalidTypeError, match=r"Received as inputs\[1\]: Dense .* then layer\(\[\.\.\., y\]\)\.$"):
        Add()([Flatten()(x), Dense(3)])


def test_a_layer_called_on_something_else_still_names_numpy_arrays():
    with pytest.raises(InvalidTypeError, match=r"Received as its input: str .* call it on a numpy array"):
        Dense(3)("x")


# --- positional arguments after a Dataset -----------------------------------------------------------------------
VAL = Dataset(X[:4], Y[:4])
POSITIONAL = [
    ("fit", VAL, r"^fit\(\) got a Dataset and, as y, a Dataset: .* fit\(dataset, validation_data=\.\.\.\) \(or "),
    ("fit", (X[:4], Y[:4]), r"as y, a tuple of 2: .*validation_data="),
    ("fit", 2, r"KotlinDL's fit\(dataset, epochs, batchSize\) .* fit\(dataset, epochs=2, batch_size=\.\.\.\)\.$"),
    ("fit", 0.2, r"KotlinDL's fit\(dataset, validationRate, \.\.\.\) .* validation_split=0\.2"),
    ("evaluate", 50, r"^evaluate\(\) got .* keyword-only: evaluate\(dataset, batch_size=50\)\.$"),
    ("evaluate", VAL, r"^evaluate\(\) got a Dataset and, as y, a Dataset: .* Pass the Dataset alone: evaluate"),
    ("train_on_batch", 5, r"^train_on_batch\(\) got .* as y, 5: .* Pass the Dataset alone: train_on_batch\(dataset\)"),
    ("fit", np.zeros(4), r"as y, an array of shape \(4,\): .* Pass the Dataset alone: fit\(dataset\)\.$"),
    ("fit", True, r"as y, True: .* Pass the Dataset alone"),
]


@pytest.mark.parametrize(
    ("method", "y", "match"), POSITIONAL, ids=[f"{r[0]}-{type(r[1]).__name__}" for r in POSITIONAL]
)
def test_labels_beside_a_dataset_name_the_keyword_that_takes_them(method, y, match):
    assert re.search(match, labels_beside_dataset(method, y))


TRAIN, VALIDATION = Dataset(X[:12], Y[:12]), Dataset(X[12:], Y[12:])
CALLS = [
    (
        "fit(train, val)",
        lambda model: model.fit(TRAIN, VALIDATION, epochs=1),
        r"^fit\(\) got a Dataset and, as y, a Dataset: .* pass it by keyword: fit\(dataset, validation_data=\.\.\.\)",
    ),
    (
        "fit(train, 2)",
        lambda model: model.fit(TRAIN, 2),
        r"here epochs and batch_size are keyword-only: fit\(dataset, epochs=2, batch_size=\.\.\.\)\.$",
    ),
    (
        "evaluate(val, 50)",
        lambda model: model.evaluate(VALIDATION, 50),
        r"^evaluate\(\) got a Dataset and, as y, 50: .* here batch_size is keyword-only: evaluate\(dataset, "
        r"batch_size=50\)\.$",
    ),
    ("train_on_batch(train, 5)", lambda model: model.train_on_batch(TRAIN, 5), r"^train_on_batch\(\) got a Dataset"),
    ("test_on_batch(val, 5)", lambda model: model.test_on_batch(VALIDATION, 5), r"^test_on_batch\(\) got a Dataset"),
]


@pytest.mark.parametrize(("call", "match"), [row[1:] for row in CALLS], ids=[row[0] for row in CALLS])
def test_kotlindls_positional_arguments_after_a_dataset_are_refused_by_the_method(call, match):
    with small() as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        before = model.get_weights()
        with pytest.raises(InvalidArgumentError, match=match):
            call(model)
        for name, value in before.items():
            np.testing.assert_array_equal(model.get_weights()[name], value)


# --- two models of one name ---------------------------------------------------------------------------------
def test_two_models_of_one_name_sharing_layers_are_told_apart(tmp_path):
    base = Sequential.of(Input(4), Dense(8), Dense(3), seed=0)
    base.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
    base.save(tmp_path / "base")
    loaded = load_model(tmp_path / "base")  # compiled, as load_model's default
    new = Sequential([*loaded.layers[:2], Dense(2)], name=loaded.name, seed=0)
    with pytest.raises(
        ModelStateError,
        match=r"^compile\(\) on model 'sequential\w*': it shares layers \['dense_1'\] with another model also named "
        r"'sequential\w*' \(a loaded model keeps .* load_model\(\.\.\., compile=False\)",
    ):
        new.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
    loaded.close()
    new.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
    uncompiled = load_model(tmp_path / "base", compile=False)
    Sequential([*uncompiled.layers[:2], Dense(2)], seed=0).compile(optimizer="adam", loss="mse")
