"""A keyword a call does not take is one InvalidTypeError (a TypeError) naming it, its value, Python's spelling of
KotlinDL's camelCase, and what the call takes: the initializers, `Dataset`, `Dataset.create`, `load_model` and
`InferenceModel.load`, as a model's methods (`onnxtrain._keyword_arguments`). KotlinDL's own names of Constant's
value and of OnHeapDataset.create's arrays are taken."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onnxtrain import Dataset, InferenceModel, Sequential, initializers
from onnxtrain._keyword_arguments import refuse_unknown, shown_value
from onnxtrain._spelling import setting_hint
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.initializers import Constant, RandomUniform
from onnxtrain.layers import Dense, Input
from onnxtrain.loading import load_model

SNAKE = r"Python's spelling of KotlinDL's camelCase names is snake_case: "
X, Y = np.arange(6, dtype=np.float32).reshape(2, 3), np.array([0, 1])

INITIALIZERS = [
    ("RandomUniform minVal", lambda: RandomUniform(minVal=-1.0), rf"{SNAKE}'minVal' \(in Python: min_val\)"),
    ("RandomUniform maxVal", lambda: RandomUniform(maxVal=1.0), rf"{SNAKE}'maxVal' \(in Python: max_val\)"),
    ("Constant constantValue", lambda: Constant(constantValue=2.0), r"'constantValue' \(in Python: constant_value\)"),
    ("HeNormal typo", lambda: initializers.HeNormal(sed=1), r"^HeNormal\(\) got unexpected keyword argument 'sed'\."),
]
# Every initializer, by its own name and one it does not take (a plain TypeError before).
INITIALIZERS += [
    (f"{cls.__name__} fooBar", (lambda cls=cls: cls(fooBar=1)), rf"^{cls.__name__}\(\) got unexpected keyword argument")
    for cls in [
        initializers.Zeros,
        initializers.Ones,
        initializers.Constant,
        initializers.RandomNormal,
        initializers.RandomUniform,
        initializers.TruncatedNormal,
        initializers.VarianceScaling,
        initializers.Orthogonal,
        initializers.GlorotNormal,
        initializers.GlorotUniform,
        initializers.HeNormal,
        initializers.HeUniform,
        initializers.LeCunNormal,
        initializers.LeCunUniform,
    ]
]
DATASETS = [
    ("Dataset classNames", lambda: Dataset(X, Y, classNames=["a", "b"]), rf"{SNAKE}'classNames' \(in Python: class_"),
    ("Dataset inputScale", lambda: Dataset(X, Y, inputScale=1), rf"{SNAKE}'inputScale' \(in Python: input_scale\)"),
    ("create classNames", lambda: Dataset.create(X, Y, classNames=["a", "b"]), r"^Dataset\.create\(\) got .*class_"),
]


@pytest.mark.parametrize(
    ("call", "match"), [r[1:] for r in INITIALIZERS + DATASETS], ids=[r[0] for r in INITIALIZERS + DATASETS]
)
def test_an_unknown_keyword_is_one_error_naming_python_s_spelling(call, match):
    with pytest.raises(InvalidTypeError, match=match) as refused:
        call()
    assert isinstance(refused.value, TypeError)  # what Python raises for it, so callers catch either
    assert "It takes: " in str(refused.value) and "Received: " in str(refused.value)


def test_an_initializer_names_what_it_takes_and_the_value_received():
    with pytest.raises(InvalidTypeError) as refused:
        RandomUniform(minVal=-1.0, maxval=1.0)
    assert str(refused.value).endswith("It takes: minval, maxval, seed, min_val, max_val. Received: minVal=-1.0")


def test_constant_takes_kotlindl_s_name_of_its_value():
    assert Constant(constant_value=2.0) == Constant(2.0)
    assert Constant(constant_value=[[1, 2]]).get_config() == Constant([[1, 2]]).get_config()
    with pytest.raises(InvalidArgumentError, match=r"takes value or its KotlinDL name constant_value, not both"):
        Constant(1.0, constant_value=2.0)


def test_dataset_create_takes_kotlindl_s_features_and_labels():
    made = Dataset.create(features=X, labels=Y)
    assert np.array_equal(made.x, Dataset(X, Y).x) and np.array_equal(made.y, Dataset(X, Y).y)
    assert np.array_equal(Dataset.create(X, labels=Y).y, Y)
    with pytest.raises(InvalidArgumentError, match=r"Pass x=\.\.\. or features=\.\.\., not both"):
        Dataset.create(X, Y, features=X)
    with pytest.raises(InvalidArgumentError, match=r"needs x and y \(KotlinDL's features and labels\)\. Received: y"):
        Dataset.create(features=X)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with Sequential.of(Input(3), Dense(2), seed=0) as model:
        model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
        return Path(model.save(tmp_path_factory.mktemp("keywords") / "model"))


LOADERS = [
    (
        "load_model writingMode",
        lambda d: load_model(d, writingMode="override"),
        r"^load_model\(\) got unexpected keyword argument 'writingMode'\. KotlinDL's 'writingMode' is an argument "
        r"of save\(\) and export\(\) only",
    ),
    (
        "load_model loadOptimizerState",
        lambda d: load_model(d, loadOptimizerState=True),
        r"KotlinDL's 'loadOptimizerState' has no counterpart in onnxtrain: load_model resumes the optimizer state",
    ),
    (
        "load_model inputScale",
        lambda d: load_model(d, inputScale=1 / 255),
        r"'inputScale' \(in Python: input_scale\) is no argument of a loader: .*set model\.input_scale = \.\.\.",
    ),
    ("load_model customObjects", lambda d: load_model(d, customObjects={}), rf"{SNAKE}'customObjects' \(in Python: c"),
    (
        "InferenceModel.load inputScale",
        lambda d: InferenceModel.load(d, inputScale=1 / 255),
        r"^InferenceModel\.load\(\) got unexpected keyword argument 'inputScale'\. 'inputScale' \(in Python: "
        r"input_scale\) is no argument of a loader: the save holds the model's input_scale; set model\.input_scale",
    ),
    (
        "InferenceModel.load classNames",
        lambda d: InferenceModel.load(d, classNames=["a"]),
        r"'classNames' \(in Python: class_names\) is no argument of a loader: .* It takes: path, device, threads\.",
    ),
    ("InferenceModel.load typo", lambda d: InferenceModel.load(d, thread=2), r"It takes: path, device, threads\. Rec"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("call", "match"), [r[1:] for r in LOADERS], ids=[r[0] for r in LOADERS])
def test_a_loader_refuses_an_unknown_keyword_naming_where_it_belongs(saved, call, match):
    with pytest.raises(InvalidTypeError, match=match) as refused:
        call(saved)
    assert "Received: " in str(refused.value)


def test_refuse_unknown_lists_the_call_s_own_keywords_and_the_ones_it_also_takes():
    def call(self, a: int, b: int = 0, *, c: int = 0, **unknown: object) -> None: ...

    with pytest.raises(InvalidTypeError) as refused:
        refuse_unknown("call", {"dD": 1, "e": "x"}, call, also=["d_d"], renamed={})
    assert str(refused.value) == (
        "call() got unexpected keyword arguments 'dD', 'e'. Python's spelling of KotlinDL's camelCase names is "
        "snake_case: 'dD' (in Python: d_d). It takes: a, b, c, d_d. Received: dD=1, e='x'"
    )
    refuse_unknown("call", {}, call)  # nothing unknown: returns


def test_a_value_is_shown_short():
    assert shown_value(np.zeros((3, 2), np.float32)) == "<ndarray of shape (3, 2), dtype float32>"
    assert shown_value("x" * 200) == repr("x" * 200)[:79] + "…"
    assert shown_value(0.5) == "0.5"


def test_setting_hint_names_where_a_setting_is_set():
    settings = {"input_scale": "is the model's"}
    assert setting_hint(["inputScale", "input_scale", "other"], settings) == (
        " 'inputScale' (in Python: input_scale) is the model's. 'input_scale' is the model's."
    )
