"""The "Logits" rule (README) through a last TimeDistributed and a last nested model: the Dense they end in, left at
its default activation (KotlinDL's ReLU), or a softmax under softmax cross-entropy, is emitted as the rule emits a
plain last Dense, in training, prediction, the export, the summary and the warnings; and a last convolution's
softmax (Keras' segmentation head `Conv2D(n, 1, activation="softmax")`) is applied once, as a Dense's is. Keras 3
numbers (one SGD step: tools/keras_logits_wrapper_fixtures.py, tests/data/keras/logits_rule_wrappers.npz) are the
reference."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from onnxtrain import Model, Sequential
from onnxtrain.layers import (
    LSTM,
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    Conv3DTranspose,
    Dense,
    DepthwiseConv2D,
    Dropout,
    Embedding,
    Input,
    Layer,
    Permute,
    Reshape,
    SeparableConv2D,
    TimeDistributed,
)
from onnxtrain.losses import BinaryCrossentropy, CategoricalCrossentropy, Loss, SparseCategoricalCrossentropy
from onnxtrain.optimizers import SGD

FIXTURE = np.load(Path(__file__).parent / "data" / "keras" / "logits_rule_wrappers.npz")
LSTM_GATES = (0, 3, 1, 2)  # ONNX's gate blocks (i, o, f, c) as indices of Keras' (i, f, c, o)


def head(features: int, units: int) -> Model:
    """The fixture's nested model: Dense(4, tanh) then Dense(units) at its default activation."""
    x = Input(features)
    return Model(x, Dense(units)(Dense(4, activation="tanh")(x)), name="head")


def tagger(last: Dense) -> Sequential:
    return Sequential(
        [Input(shape=(6,), dtype="int64"), Embedding(20, 8, mask_zero=True), LSTM(5, return_sequences=True), last]
    )


def nested_head() -> Model:
    x = Input(6, 4)
    return Model(x, head(5, 3)(LSTM(5)(x)))


def conv1d_softmax() -> Sequential:
    return Sequential(
        [
            Input(6, 4),
            Conv1D(5, 3, padding="same", activation="tanh"),
            Conv1D(3, 3, padding="same", activation="softmax"),
        ]
    )


# case -> (model, loss, what `predict` gives: "logits", or "probabilities" of an explicit softmax)
CASES: dict[str, tuple[Callable[[], Model | Sequential], Loss | str, str]] = {
    "tagger": (lambda: tagger(TimeDistributed(Dense(3))), CategoricalCrossentropy(from_logits=True), "logits"),
    "tagger_softmax": (
        lambda: tagger(TimeDistributed(Dense(3, activation="softmax"))),
        "categorical_crossentropy",
        "probabilities",
    ),
    "nested_head": (nested_head, SparseCategoricalCrossentropy(from_logits=True), "logits"),
    "distributed_head": (
        lambda: Sequential([Input(6, 4), TimeDistributed(head(4, 1))]),
        BinaryCrossentropy(from_logits=True),
        "logits",
    ),
    "segmentation_softmax": (
        lambda: Sequential([Input(4, 5, 2), Conv2D(3, 1, activation="softmax")]),
        "categorical_crossentropy",
        "probabilities",
    ),
    "conv1d_softmax": (conv1d_softmax, "categorical_crossentropy", "probabilities"),
    "segmentation_reshape": (  # the softmax moved by a Reshape that keeps the classes last: still applied once
        lambda: Sequential([Input(4, 5, 2), Conv2D(3, 1, activation="softmax"), Reshape((-1, 3))]),
        "categorical_crossentropy",
        "probabilities",
    ),
}


def keras_weights(case: str, step: int, names: list[str]) -> dict[str, np.ndarray]:
    """The fixture's weights before (`step` 0) or after (1) Keras' step, by our names (the same layer order):
    an LSTM's gate blocks reordered and transposed into ONNX's layout, a convolution's kernel (*window, in, filters)
    as ONNX's (filters, in, *window), the rest as they are."""
    keras = [FIXTURE[f"{case}/w{step}_{i}"] for i in range(int(FIXTURE[f"{case}/weights"]))]
    assert len(keras) == len(names)
    return {name: onnx_weight(name, w) for name, w in zip(names, keras, strict=True)}


def onnx_weight(name: str, keras: np.ndarray) -> np.ndarray:
    if name.startswith("lstm_"):
        return onnx_lstm(name, keras)
    if name.startswith("conv") and name.endswith(".kernel"):
        window = keras.ndim - 2
        return keras.transpose(window + 1, window, *range(window))
    return keras


def onnx_lstm(name: str, keras: np.ndarray) -> np.ndarray:
    """Keras' LSTM kernel [inputs, 4 units] (or recurrent kernel, or bias [4 units]) as ONNX's [1, 4 units, inputs]."""
    matrix = keras[None] if name.endswith(".bias") else keras
    blocks = np.split(matrix, 4, axis=1)
    ours = np.concatenate([blocks[k] for k in LSTM_GATES], axis=1).T[None]
    return ours[0, :, 0][None] if name.endswith(".bias") else ours


def compiled(case: str, engine: str = "auto") -> Model | Sequential:
    """The case's model with Keras' starting weights, compiled as Keras' (plain SGD, rate 0.1)."""
    make, loss, _ = CASES[case]
    model = make()
    model.set_weights(keras_weights(case, 0, list(model.get_weights())))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # logits as meant: nothing to warn about
        model.compile(optimizer=SGD(learning_rate=0.1), loss=loss, engine=engine)
    return model


# the ort-training engine has no LSTM gradient: only the cases without one
STEPS = [(case, "portable") for case in CASES] + [
    (case, "ort-training")
    for case in ("distributed_head", "segmentation_softmax", "conv1d_softmax", "segmentation_reshape")
]


@pytest.mark.parametrize(("case", "engine"), STEPS)
def test_one_sgd_step_through_a_wrapper_or_nested_model_is_keras_step(case, engine):
    x, y = FIXTURE[f"{case}/x"], FIXTURE[f"{case}/y"]
    with compiled(case, engine) as model:
        # model(x): Keras' predict (onnxtrain's predict gives class indices, as KotlinDL's)
        np.testing.assert_allclose(np.asarray(model(x)), FIXTURE[f"{case}/predicted"], rtol=1e-5, atol=1e-5)
        assert float(model.evaluate(x, y, batch_size=len(x))) == pytest.approx(
            float(FIXTURE[f"{case}/evaluate_loss"]), abs=1e-5
        )
        step_loss = model.train_on_batch(x, y)
        assert float(step_loss) == pytest.approx(float(FIXTURE[f"{case}/step_loss"]), abs=1e-5)
        after = model.get_weights()
        for name, expected in keras_weights(case, 1, list(after)).items():
            np.testing.assert_allclose(after[name], expected, rtol=0, atol=1e-5, err_msg=name)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("case", list(CASES))
def test_the_export_holds_keras_logits_and_their_probabilities(tmp_path, case):
    x, keras_output = FIXTURE[f"{case}/x"], FIXTURE[f"{case}/predicted"]
    with compiled(case) as model:
        model.export(tmp_path / "model.onnx")
        called = np.asarray(model(x))
        softly = model.predict_softly(x, verbose=0)  # predict's probabilities
    session = ort.InferenceSession(tmp_path / "model.onnx")
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": x}), strict=True))
    assert set(outputs) == {"logits", "probabilities"}
    probabilities = 1 / (1 + np.exp(-outputs["logits"])) if case == "distributed_head" else softmax(outputs["logits"])
    np.testing.assert_allclose(outputs["probabilities"], probabilities, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(softly, outputs["probabilities"], rtol=1e-5, atol=1e-6)
    if CASES[case][2] == "logits":  # Keras' linear Dense: its output is the logits, which model(x) gives too
        np.testing.assert_allclose(outputs["logits"], keras_output, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(called, keras_output, rtol=1e-5, atol=1e-5)
    else:  # an explicit softmax: Keras' output is the probabilities, as model(x)'s is
        np.testing.assert_allclose(outputs["probabilities"], keras_output, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(called, keras_output, rtol=1e-5, atol=1e-6)


MARK = "[linear (logits)]"


@pytest.mark.parametrize(
    ("case", "marked"),
    [
        ("tagger", ["time_distributed_1(TimeDistributed)"]),
        ("nested_head", ["head(Functional)", "└ dense_2(Dense)"]),  # the nested row the rule reaches too
        ("distributed_head", ["time_distributed_1(TimeDistributed)"]),
        ("tagger_softmax", []),  # an explicit softmax, which predict keeps, is not marked
        ("segmentation_softmax", []),
        ("conv1d_softmax", []),
        ("segmentation_reshape", []),
    ],
)
def test_the_summary_marks_the_layers_the_rule_emits_linear(case, marked):
    with compiled(case) as model:
        lines = model.summary(print_fn=None, expand_nested=True).splitlines()
    assert sum(MARK in line for line in lines) == len(marked)
    for label in marked:
        (row,) = [i for i, line in enumerate(lines) if label in line]
        # beside the label, or where it would not fit there, on the next line: never cut in two
        assert MARK in lines[row] or lines[row + 1].startswith(MARK), lines[row : row + 2]


# every layer whose forward ends in its `activation` argument applied to a linear map: name -> (layer, input shape)
ACTIVATED_LINEAR_MAPS: dict[str, tuple[Callable[..., Layer], tuple[int, ...]]] = {
    "conv1d": (lambda **kw: Conv1D(3, 3, **kw), (6, 2)),
    "conv2d": (lambda **kw: Conv2D(3, 2, **kw), (4, 5, 2)),
    "conv3d": (lambda **kw: Conv3D(3, 2, **kw), (3, 4, 4, 2)),
    "conv1d_transpose": (lambda **kw: Conv1DTranspose(3, 3, strides=2, **kw), (5, 2)),
    "conv2d_transpose": (lambda **kw: Conv2DTranspose(3, 2, strides=2, **kw), (3, 4, 2)),
    "conv3d_transpose": (lambda **kw: Conv3DTranspose(3, 2, **kw), (2, 3, 3, 2)),
    "separable_conv2d": (lambda **kw: SeparableConv2D(3, 3, **kw), (4, 5, 2)),
    "depthwise_conv2d": (lambda **kw: DepthwiseConv2D(3, depth_multiplier=2, **kw), (4, 5, 2)),
}


@pytest.mark.parametrize("kind", list(ACTIVATED_LINEAR_MAPS))
def test_a_last_convolution_softmax_is_applied_once_under_softmax_cross_entropy(kind):
    """The reference: the same layer with a linear activation under CategoricalCrossentropy(from_logits=True), whose
    output is the logits, and the cross-entropy of their softmax in numpy."""
    make, shape = ACTIVATED_LINEAR_MAPS[kind]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, *shape)).astype(np.float32)
    with (
        Sequential([Input(*shape), make(activation="softmax", name="head")]) as model,
        Sequential([Input(*shape), make(activation="linear", name="head")]) as linear,
    ):
        linear.compile(optimizer=SGD(0.1), loss=CategoricalCrossentropy(from_logits=True))
        start = {name: rng.normal(0, 0.5, w.shape).astype(np.float32) for name, w in linear.get_weights().items()}
        linear.set_weights(start)
        logits = np.asarray(linear(x))
        y = np.eye(logits.shape[-1], dtype=np.float32)[rng.integers(0, logits.shape[-1], size=logits.shape[:-1])]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a softmax the loss applies: nothing to warn about
            model.compile(optimizer=SGD(0.1), loss="categorical_crossentropy")
        model.set_weights(start)
        np.testing.assert_allclose(np.asarray(model(x)), softmax(logits), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model.predict_softly(x, verbose=0), softmax(logits), rtol=1e-5, atol=1e-6)
        expected = -np.mean(np.sum(y * np.log(softmax(logits)), axis=-1))
        assert float(model.evaluate(x, y, batch_size=len(x))) == pytest.approx(expected, abs=1e-5)
        assert float(model.train_on_batch(x, y)) == pytest.approx(float(linear.train_on_batch(x, y)), abs=1e-6)
        after, reference = model.get_weights(), linear.get_weights()
        assert set(after) == set(reference)
        for name, expected_weight in reference.items():
            np.testing.assert_allclose(after[name], expected_weight, rtol=0, atol=1e-6, err_msg=name)
        assert MARK not in model.summary(print_fn=None)  # an explicit softmax, which model(x) keeps


def test_without_a_loss_on_logits_the_wrapped_dense_keeps_its_default_relu():
    with compiled("tagger") as on_logits:
        weights = on_logits.get_weights()
    with tagger(TimeDistributed(Dense(3))) as model:
        model.set_weights(weights)
        model.compile(optimizer="sgd", loss="mse")
        assert MARK not in model.summary(print_fn=None)
        relu = np.maximum(FIXTURE["tagger/predicted"], 0)  # Keras' linear outputs, clamped by KotlinDL's default
        np.testing.assert_allclose(np.asarray(model(FIXTURE["tagger/x"])), relu, rtol=1e-5, atol=1e-5)


def with_dropout_inside(units: int) -> Model:
    x = Input(5)
    return Model(x, Dropout(0.1)(Dense(units)(x)), name="head")


def nested(model: Model) -> Model:
    x = Input(6, 4)
    return Model(x, model(LSTM(5)(x)))


def relu_head() -> Model:
    x = Input(5)
    return Model(x, Dense(3, activation="relu", name="scores")(x), name="head")


WARNINGS = [
    (
        lambda: Sequential([Input(6, 4), TimeDistributed(Dense(3, activation="relu"))]),
        "categorical_crossentropy",
        r"the last layer 'time_distributed_1' \(its Dense 'dense'\) applies activation 'relu' to them: relu logits "
        r"are clamped",
    ),
    (
        lambda: nested(relu_head()),
        "sparse_categorical_crossentropy",
        r"the last layer 'head' \(its Dense 'scores'\) applies activation 'relu'",
    ),
    (
        lambda: Sequential([Input(6, 4), TimeDistributed(Dense(3)), Dropout(0.1)]),
        CategoricalCrossentropy(from_logits=True),
        r"output 'dropout_1' carries the values of Dense layer\(s\) \['dense'\] left at Dense's default activation",
    ),
    (
        lambda: nested(with_dropout_inside(3)),
        "sparse_categorical_crossentropy",
        r"output 'head' carries the values of Dense layer\(s\) \['dense_1'\] left at Dense's default activation",
    ),
    (
        lambda: Sequential([Input(6, 4), TimeDistributed(Dense(1))]),
        "binary_crossentropy",
        r"expects probabilities, but the last layer 'time_distributed_1' \(its Dense 'dense'\) ends in activation "
        r"'relu'",
    ),
]


@pytest.mark.parametrize(
    ("make", "loss", "match"),
    WARNINGS,
    ids=["relu_in_time_distributed", "relu_in_nested", "dropout_after", "dropout_in_nested", "probabilities_loss"],
)
def test_compile_warns_of_clamped_logits_inside_a_wrapper_or_nested_model(make, loss, match):
    with make() as model, pytest.warns(UserWarning, match=match):
        model.compile(optimizer="sgd", loss=loss)


def segmentation_moved(*movers: object) -> Model:
    pixels = Input(4, 5, 2)
    y = Conv2D(3, 1, activation="softmax", name="conv2d")(pixels)
    for mover in movers:
        y = mover(y)
    return Model(pixels, y)


def keras_categorical_crossentropy(probabilities: np.ndarray, y: np.ndarray) -> float:
    """Keras' categorical cross-entropy of probabilities: normalised, clipped to [1e-7, 1 - 1e-7], averaged."""
    p = np.clip(probabilities / probabilities.sum(axis=-1, keepdims=True), 1e-7, 1 - 1e-7)
    return float(np.mean(-(y * np.log(p)).sum(axis=-1)))


@pytest.mark.parametrize("movers", [(Reshape((-1, 3)),), (Reshape((5, 4, 3)), Permute((2, 1, 3)))], ids=str)
def test_a_softmax_moved_by_layers_that_keep_the_classes_last_is_applied_once(movers):
    # A functional model (the Sequential case is `segmentation_reshape` above): the loss is Keras' on model(x)
    x = FIXTURE["segmentation_reshape/x"]
    with segmentation_moved(*[type(m).from_config(m.get_config()) for m in movers]) as model:
        model.set_weights(keras_weights("segmentation_reshape", 0, list(model.get_weights())))
        probabilities = np.asarray(model(x))
        y = np.eye(3, dtype=np.float32)[np.argsort(probabilities, axis=-1)[..., 0]]  # mostly unlikely classes
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.compile(optimizer=SGD(learning_rate=0.1), loss="categorical_crossentropy")
        assert float(model.evaluate(x, y, batch_size=len(x))) == pytest.approx(
            keras_categorical_crossentropy(probabilities, y), abs=1e-5
        )
