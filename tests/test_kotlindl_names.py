"""KotlinDL's names of a model's keywords and attributes, as a user porting KotlinDL code writes them: every refusal
of an unknown keyword names Python's spelling (`spelling_hint`), a model's camelCase attribute names the method,
`predict(dataset=...)`, `Dataset.create`, `Metrics.MSLE`, and a closed model refused at `with`."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Dataset, Model, Sequential, WritingMode
from onnxtrain._call_arguments import KOTLINDL_ARGUMENTS, spelling_hint
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelStateError, ShapeError
from onnxtrain.layers import Dense, Input
from onnxtrain.metrics import Metrics, get
from onnxtrain.optimizers import SGD, Adam, RMSProp

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 4)).astype(np.float32)
Y = RNG.integers(0, 3, 12)
SNAKE = r"Python's spelling of KotlinDL's camelCase names is snake_case: "


def functional() -> Model:
    a = Input(4)
    return Model(a, Dense(3)(a), seed=0)


# --- the hint ---------------------------------------------------------------------------------------------------
HINTS = [
    ("camelCase of a taken name", ["batchSize"], ["batch_size"], {}, f" {SNAKE}'batchSize' (in Python: batch_size)."),
    ("snake_case is not camelCase", ["batch_sizes"], ["batch_size"], {}, ""),
    ("camelCase of nothing taken", ["fooBar"], ["batch_size"], {}, ""),
    ("renamed", ["trainBatchSize"], ["batch_size"], {"train_batch_size": "is b"}, " KotlinDL's 'trainBatchSize' is b."),
    (
        "renamed, snake-cased: ours, said beside KotlinDL's",
        ["train_batch_size"],
        ["batch_size"],
        {"train_batch_size": "is b"},
        " 'train_batch_size' (KotlinDL's 'trainBatchSize') is b.",
    ),
    ("renamed, one word: the same in both", ["callback"], [], {"callback": "is c"}, " KotlinDL's 'callback' is c."),
    ("renamed but taken", ["trainBatchSize"], ["train_batch_size"], {"train_batch_size": "is b"}, f" {SNAKE}"),
    (
        "both kinds",
        ["trainBatchSize", "validationBatchSize"],
        ["batch_size", "validation_batch_size"],
        KOTLINDL_ARGUMENTS,
        f" {SNAKE}'validationBatchSize' (in Python: validation_batch_size). KotlinDL's 'trainBatchSize' is batch_size",
    ),
]


@pytest.mark.parametrize(("unknown", "takes", "renamed", "start"), [r[1:] for r in HINTS], ids=[r[0] for r in HINTS])
def test_spelling_hint_names_pythons_spelling(unknown, takes, renamed, start) -> None:
    hint = spelling_hint(unknown, takes, renamed)
    assert hint.startswith(start) and (hint == "") == (start == "")


# --- unknown keywords -------------------------------------------------------------------------------------------
REFUSED = [
    ("fit batchSize", lambda m: m.fit(X, Y, batchSize=4), r"^fit\(\) got .* 'batchSize'\. " + SNAKE + r"'batchSize'"),
    (
        "fit trainBatchSize",
        lambda m: m.fit(X, Y, trainBatchSize=4, validationBatchSize=4),
        r"'validationBatchSize' \(in Python: validation_batch_size\)\. KotlinDL's 'trainBatchSize' is batch_size ",
    ),
    (
        "fit train_batch_size",
        lambda m: m.fit(training_dataset=(X, Y), train_batch_size=4),
        r"'training_dataset' \(KotlinDL's 'trainingDataset'\) is dataset in onnxtrain\. 'train_batch_size' "
        r"\(KotlinDL's 'trainBatchSize'\) is batch_size ",
    ),
    (
        "fit writing_mode",
        lambda m: m.fit(X, Y, writing_mode="override"),
        r"^fit\(\) got .*'writing_mode'\. 'writing_mode' \(KotlinDL's 'writingMode'\) is an argument of save\(\) "
        r"and export\(\) only",
    ),
    (
        "fit validationDataset",
        lambda m: m.fit(X, Y, validationDataset=(X, Y)),
        r"KotlinDL's 'validationDataset' is validation \(or Keras' validation_data\) in onnxtrain\. It takes: ",
    ),
    ("fit validationRate", lambda m: m.fit(X, Y, validationRate=0.1), r"'validationRate' is validation_split in "),
    ("evaluate batchSize", lambda m: m.evaluate(X, Y, batchSize=4), r"^evaluate\(\) got .*'batchSize' \(in Python"),
    ("predict batchSize", lambda m: m.predict(X, batchSize=4), r"^predict\(\) got .*'batchSize' \(in Python: batch"),
    ("predict_softly", lambda m: m.predict_softly(X, batchSize=4), r"^predict_softly\(\) got .*\(in Python: batch_"),
    (
        "save writingMode",
        lambda m: m.save("unused", writingMode=WritingMode.OVERRIDE),
        r"^save\(\) got unexpected keyword argument 'writingMode'\. " + SNAKE + r"'writingMode' \(in Python: writing_",
    ),
    (
        "save savingFormat",
        lambda m: m.save("unused", savingFormat="JSON_CONFIG_CUSTOM_VARIABLES"),
        r"KotlinDL's 'savingFormat' has no counterpart in onnxtrain: save always writes model\.onnx",
    ),
    ("save modelDirectory", lambda m: m.save(modelDirectory="unused"), r"'modelDirectory' is directory in onnxtrain"),
    (
        "export writingMode",
        lambda m: m.export("unused.onnx", writingMode="override"),
        r"^export\(\) got .*writing_mode",
    ),
    (
        "compile callback",
        lambda m: m.compile(optimizer="sgd", callback=object()),
        r"^compile\(\) got .*'callback'\. KotlinDL's 'callback' \(compile's, up to KotlinDL 0\.3\) is fit's callbacks "
        r"in onnxtrain: model\.fit\(\.\.\., callbacks=\[callback\]\)\. It takes: optimizer, loss",
    ),
    ("compile lossWeights", lambda m: m.compile(lossWeights=[1.0]), r"'lossWeights' \(in Python: loss_weights\)"),
    ("Adam learningRate", lambda m: Adam(learningRate=0.01), r"^Adam\(\) got .*'learningRate' \(in Python: learning_"),
    ("SGD learningRate", lambda m: SGD(learningRate=0.01), r"'learningRate' \(in Python: learning_rate\)\. SGD takes"),
    ("RMSProp clipGradient", lambda m: RMSProp(clipGradient=None), r"'clipGradient' \(in Python: clip_gradient\)"),
    ("Dense kernelInitializer", lambda m: Dense(3, kernelInitializer="zeros"), r"\(in Python: kernel_initializer\)"),
]


@pytest.mark.parametrize(("call", "match"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_an_unknown_keyword_is_refused_naming_pythons_spelling_of_kotlindls(call, match, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with functional() as model, pytest.raises(InvalidTypeError, match=match):
        call(model)
    assert not list(tmp_path.iterdir())  # refused before anything is written


def test_a_keyword_no_name_stands_for_is_refused_without_a_hint() -> None:
    with functional() as model, pytest.raises(InvalidTypeError) as refused:
        model.fit(X, Y, workers=2)
    assert str(refused.value).startswith("fit() got unexpected keyword argument 'workers'. It takes: dataset, y,")


# --- attributes ---------------------------------------------------------------------------------------------------
ATTRIBUTES = [
    ("predictSoftly", SNAKE + "model.predict_softly$"),
    ("printSummary", SNAKE + "model.print_summary$"),
    ("getLayer", SNAKE + "model.get_layer$"),
    ("stopTraining", SNAKE + "model.stop_training$"),  # an attribute the model sets, not its class's
    ("countParams", SNAKE + "model.count_params$"),
    ("layersByName", r"For KotlinDL's layersByName, use model\.get_layer\(name\), or \{layer\.name: layer for "),
    ("isModelCompiled", r"For KotlinDL's isModelCompiled, use model\.is_compiled$"),
    ("predictAndGetActivations", r"For KotlinDL's predictAndGetActivations, use model\.predict\(x\) for the "),
    ("fooBar", r"no attribute 'fooBar'$"),  # nothing stands for it
    ("_privateName", r"no attribute '_privateName'$"),
]


@pytest.mark.parametrize(("attribute", "match"), ATTRIBUTES)
def test_a_kotlindl_attribute_name_is_refused_naming_pythons(attribute: str, match: str) -> None:
    model = functional()
    with pytest.raises(AttributeError, match=rf"^'Model' object has no attribute '{attribute}'") as refused:
        getattr(model, attribute)
    assert refused.match(match)
    assert not hasattr(model, attribute)
    assert getattr(model, "print_summary") == model.print_summary  # the real ones are untouched  # noqa: B009


def test_a_sequential_refuses_kotlindl_attribute_names_naming_pythons() -> None:
    with pytest.raises(AttributeError, match=SNAKE + "model.predict_softly$"):
        Sequential([Input(4), Dense(3)]).predictSoftly  # noqa: B018


# --- predict(dataset=...) -------------------------------------------------------------------------------------------
def test_predict_takes_kotlindls_dataset_keyword() -> None:
    with Sequential([Input(4), Dense(3)], seed=0) as model:
        uncompiled = model.predict(X)
        np.testing.assert_array_equal(model.predict(dataset=X), uncompiled)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        dataset = Dataset(X, Y)
        np.testing.assert_array_equal(model.predict(dataset=dataset, batch_size=5), model.predict(X))
        np.testing.assert_allclose(model.predict_softly(dataset=dataset), model.predict_softly(X), rtol=1e-6)
        assert model.predict(dataset=X[0]) == model.predict(X[:1])[0]


@pytest.mark.parametrize("method", ["predict", "predict_softly"])
def test_predict_takes_x_or_dataset_one_of_them(method: str) -> None:
    with functional() as model:
        model.compile(optimizer="sgd")
        with pytest.raises(
            InvalidArgumentError,
            match=rf"^{method}\(\) expects .* one of them .* Received: x=ndarray, dataset=Dataset$",
        ):
            getattr(model, method)(X, dataset=Dataset(X, Y))
        with pytest.raises(
            InvalidTypeError, match=r"^x expects a numpy array of shape \[None, 4\]\. Received: NoneType"
        ):
            getattr(model, method)()  # neither: as before


# --- a closed model -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("close", ["with", "close()"])
def test_with_on_a_closed_model_is_refused(close: str) -> None:
    model = Sequential([Input(4), Dense(3)], name="net")
    if close == "with":
        with model as entered:
            assert entered is model
    else:
        model.close()
    with pytest.raises(ModelStateError, match=r"^`with` on Sequential 'net', which was closed when its `with` block"):
        with model:
            pass  # pragma: no cover


# --- data -------------------------------------------------------------------------------------------------------
def test_dataset_create_is_kotlindls_name_for_the_constructor() -> None:
    x, y = RNG.integers(0, 256, (6, 4)).astype(np.uint8), np.arange(6) % 2
    made = Dataset.create(x, y, class_names=["a", "b"], input_scale=1 / 255)
    same = Dataset(x, y, class_names=["a", "b"], input_scale=1 / 255)
    assert isinstance(made, Dataset) and made.class_names == same.class_names and made.input_scale == same.input_scale
    np.testing.assert_array_equal(made.x, same.x)
    np.testing.assert_array_equal(made.y, same.y)


@pytest.mark.parametrize(
    ("shape", "hint"),
    [
        ((12,), r"For one example, reshape it with x\.reshape\(2, 2, 3\)\.$"),  # flat (KotlinDL's FloatArray)
        ((2, 6), r"For one example, reshape it with x\.reshape\(2, 2, 3\)\.$"),
        ((5, 12), r"Reshape it with x\.reshape\(-1, 2, 2, 3\)\.$"),  # a batch, as before
        ((13,), r"Received: x\.shape=\(13,\)\.$"),  # no reshape makes it one
    ],
)
def test_one_flat_example_gets_the_reshape_hint(shape: tuple[int, ...], hint: str) -> None:
    with Sequential([Input(2, 2, 3), Dense(2)], seed=0) as model:
        with pytest.raises(ShapeError, match=hint):
            model.predict(np.zeros(shape, np.float32))
        one = RNG.normal(size=12).astype(np.float32)
        np.testing.assert_array_equal(model.predict(one.reshape(2, 2, 3)), model.predict(one.reshape(1, 2, 2, 3))[0])


# --- Metrics.MSLE -----------------------------------------------------------------------------------------------
def test_metrics_msle_is_keras_mean_squared_logarithmic_error() -> None:
    assert [m.name for m in Metrics][:3] == ["ACCURACY", "MAE", "MSE"] and Metrics.MSLE.value == "msle"
    assert get("msle") is get("MSLE") is get("mean_squared_logarithmic_error") is Metrics.MSLE
    targets = np.abs(RNG.normal(size=(12, 3))).astype(np.float32)
    with Sequential([Input(4), Dense(3, activation="linear")], seed=0) as model:
        model.compile(optimizer="sgd", loss="mse", metrics=[Metrics.MSLE, "mean_squared_logarithmic_error"])
        figures = model.evaluate(X, targets, batch_size=5, return_dict=True)
        outputs = model.predict(X)
    assert outputs.min() < 0  # the floor at 1e-7 matters
    logs = np.log1p(np.maximum(outputs.astype(np.float64), 1e-7)) - np.log1p(targets.astype(np.float64))
    expected = float(np.mean(logs**2))
    assert figures["msle"] == pytest.approx(expected, rel=1e-5)
    assert figures["mean_squared_logarithmic_error"] == pytest.approx(expected, rel=1e-5)
