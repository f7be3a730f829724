"""The "Logits" rule (README) for a softmax whose probabilities the last layers carry to the output (UpSampling,
Cropping, max and average pooling, RepeatVector, Dropout): the loss reads them as Keras' cross-entropy of
probabilities does (renormalised over the classes, clipped, logged), not as the logits of a second softmax; and
for a `Softmax()` or `Activation("softmax")` layer after a head left at its default activation, which is emitted
linear as a head with its own softmax is. Keras 3 numbers (one SGD step: tools/keras_softmax_carried_fixtures.py,
tests/data/keras/logits_rule_carried.npz) are the reference, on both engines, with model(x), predict and the
export checked against them."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from onnxtrain import Model, Sequential, emit
from onnxtrain.errors import InvalidArgumentError, PortableEngineOnlyError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import (
    Activation,
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    Conv1D,
    Conv2D,
    Conv3D,
    Cropping1D,
    Cropping2D,
    Dense,
    Dropout,
    GaussianDropout,
    GaussianNoise,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    Input,
    Layer,
    MaxPooling2D,
    RepeatVector,
    Reshape,
    Softmax,
    SpatialDropout2D,
    TimeDistributed,
    UpSampling1D,
    UpSampling2D,
    ZeroPadding1D,
    ZeroPadding2D,
)
from onnxtrain.layers._layout import emit_layer
from onnxtrain.losses import SparseCategoricalCrossentropy
from onnxtrain.optimizers import SGD

FIXTURE = np.load(Path(__file__).parent / "data" / "keras" / "logits_rule_carried.npz")
EPSILON = 1e-7  # Keras' backend.epsilon()


def softmax_conv(rank: int) -> Layer:
    return {1: Conv1D, 2: Conv2D, 3: Conv3D}[rank](3, 1, activation="softmax")


def nested_softmax_layer() -> Model:
    inner = Input(5)
    head = Model(inner, Softmax()(Dense(3)(inner)), name="head")
    x = Input(4)
    return Model(x, RepeatVector(2)(head(Dense(5, activation="tanh")(x))))


# case -> (the fixture's model, with the activations Keras leaves linear not given (onnxtrain's default), and loss)
CASES: dict[str, tuple[Callable[[], Model | Sequential], str]] = {
    "upsampled": (lambda: Sequential([Input(2, 2, 2), softmax_conv(2), UpSampling2D(2)]), "sparse"),
    "cropped": (lambda: Sequential([Input(4, 4, 2), softmax_conv(2), Cropping2D(1)]), "categorical"),
    "max_pooled": (lambda: Sequential([Input(4, 4, 2), softmax_conv(2), MaxPooling2D(2)]), "sparse"),
    "global_max_pooled": (
        lambda: Sequential(
            [Input(6, 6, 2), Conv2D(4, 3, padding="valid", activation="tanh"), softmax_conv(2), GlobalMaxPooling2D()]
        ),
        "sparse",
    ),
    "average_pooled": (lambda: Sequential([Input(4, 4, 2), softmax_conv(2), AveragePooling2D(2)]), "sparse"),
    "average_pooled_1d": (lambda: Sequential([Input(4, 2), softmax_conv(1), AveragePooling1D(2)]), "sparse"),
    "average_pooled_3d": (lambda: Sequential([Input(2, 4, 4, 2), softmax_conv(3), AveragePooling3D(2)]), "sparse"),
    "upsampled_cropped_1d": (
        lambda: Sequential([Input(5, 2), softmax_conv(1), UpSampling1D(2), Cropping1D((1, 2))]),
        "sparse",
    ),
    "repeated": (lambda: Sequential([Input(4), Dense(3, activation="softmax"), RepeatVector(2)]), "sparse"),
    "dropped": (
        lambda: Sequential([Input(4), Dense(8, activation="relu"), Dense(3, activation="softmax"), Dropout(0.2)]),
        "sparse",
    ),
    "spatially_dropped": (lambda: Sequential([Input(4, 4, 2), softmax_conv(2), SpatialDropout2D(0.3)]), "sparse"),
    "all_convolutional": (  # Conv2D(3, 1) left at its default (ReLU), emitted linear as Keras' default is
        lambda: Sequential(
            [
                Input(6, 6, 2),
                Conv2D(4, 3, padding="valid", activation="tanh"),
                Conv2D(3, 1),
                GlobalAveragePooling2D(),
                Activation("softmax"),
            ]
        ),
        "sparse",
    ),
    "dense_softmax_layer": (
        lambda: Sequential([Input(4), Dense(5, activation="tanh"), Dense(3), Softmax()]),
        "sparse",
    ),
    "softmax_layer_upsampled": (
        lambda: Sequential([Input(2, 2, 2), Conv2D(3, 1), Softmax(), UpSampling2D(2)]),
        "sparse",
    ),
    "nested_softmax_layer": (nested_softmax_layer, "sparse"),
}
LOSSES = {"sparse": "sparse_categorical_crossentropy", "categorical": "categorical_crossentropy"}
# What ONNX Runtime 1.19's training build cannot train, which compile or the first step refuses with its reason:
# AveragePool gradients sized when the graph is built (`_ort_training_limits.py`), no ResizeGrad kernel
# (UpSampling), no GlobalMaxPool gradient, and no step counter for Dropout's masks
ORT_CANNOT_TRAIN = {
    **dict.fromkeys(
        ("average_pooled", "average_pooled_1d", "average_pooled_3d"), "cannot differentiate the AveragePool node"
    ),
    **dict.fromkeys(("upsampled", "softmax_layer_upsampled"), "has no cpu kernel for ResizeGrad"),
    "global_max_pooled": "has no gradient for the GlobalMaxPool operator",
    **dict.fromkeys(("dropped", "spatially_dropped"), "draws random numbers per training step"),
}


def keras_weights(case: str, step: int, names: list[str]) -> dict[str, np.ndarray]:
    """The fixture's weights before (`step` 0) or after (1) Keras' step, by our names (the same order): a
    convolution's kernel (*window, in, filters) as ONNX's (filters, in, *window), the rest as they are."""
    keras = [FIXTURE[f"{case}/w{step}_{i}"] for i in range(int(FIXTURE[f"{case}/weights"]))]
    assert len(keras) == len(names)
    return {name: onnx_weight(name, w) for name, w in zip(names, keras, strict=True)}


def onnx_weight(name: str, keras: np.ndarray) -> np.ndarray:
    if name.startswith("conv") and name.endswith(".kernel"):
        window = keras.ndim - 2
        return keras.transpose(window + 1, window, *range(window))
    return keras


def compiled(case: str, engine: str = "auto") -> Model | Sequential:
    """The case's model with Keras' starting weights, compiled as Keras' (plain SGD, rate 0.1)."""
    make, loss = CASES[case]
    model = make()
    model.set_weights(keras_weights(case, 0, list(model.get_weights())))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a softmax the loss reads as Keras does: nothing to warn about
        model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSSES[loss], engine=engine)
    return model


STEPS = [(case, "portable") for case in CASES] + [
    (case, "ort-training") for case in CASES if case not in ORT_CANNOT_TRAIN
]


@pytest.mark.parametrize(("case", "engine"), STEPS)
def test_evaluate_and_one_sgd_step_are_keras(case, engine):
    x, y = FIXTURE[f"{case}/x"], FIXTURE[f"{case}/y"]
    with compiled(case, engine) as model:
        # model(x): Keras' predict, the values the layers give (onnxtrain's predict gives class indices)
        np.testing.assert_allclose(np.asarray(model(x)), FIXTURE[f"{case}/predicted"], rtol=1e-5, atol=1e-6)
        assert float(model.evaluate(x, y, batch_size=len(x))) == pytest.approx(
            float(FIXTURE[f"{case}/evaluate_loss"]), abs=1e-5
        )
        if not int(FIXTURE[f"{case}/steps"]):  # a Dropout's training masks are random: evaluate only
            return
        assert float(model.train_on_batch(x, y)) == pytest.approx(float(FIXTURE[f"{case}/step_loss"]), abs=1e-5)
        after = model.get_weights()
        for name, expected in keras_weights(case, 1, list(after)).items():
            np.testing.assert_allclose(after[name], expected, rtol=0, atol=1e-5, err_msg=name)


@pytest.mark.training
@pytest.mark.parametrize("case", list(ORT_CANNOT_TRAIN))
def test_ort_training_refuses_what_it_cannot_train_with_its_own_reason(case):
    """The graphs build (a softmax average-pooled channels-first once failed ONNX shape inference); the engine's
    own limits are what refuse these cases there."""
    x, y = FIXTURE[f"{case}/x"], FIXTURE[f"{case}/y"]
    with pytest.raises((UnsupportedError, PortableEngineOnlyError), match=ORT_CANNOT_TRAIN[case]):
        with compiled(case, "ort-training") as model:
            model.train_on_batch(x, y)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("case", list(CASES))
def test_the_export_and_predict_hold_the_values_renormalised_over_the_classes(tmp_path, case):
    x, values = FIXTURE[f"{case}/x"], FIXTURE[f"{case}/predicted"]
    keras_probabilities = values / values.sum(axis=-1, keepdims=True)  # what Keras' cross-entropy reads
    with compiled(case) as model:
        model.export(tmp_path / "model.onnx")
        softly = model.predict_softly(x, verbose=0)
        classes = model.predict(x, verbose=0)
    session = ort.InferenceSession(tmp_path / "model.onnx")
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": x}), strict=True))
    assert set(outputs) == {"logits", "probabilities"}
    np.testing.assert_allclose(outputs["probabilities"], softmax(outputs["logits"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs["probabilities"], keras_probabilities, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(softly, outputs["probabilities"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(classes, np.argmax(outputs["probabilities"], axis=-1))


def emitted_last(layers: list, x: np.ndarray) -> np.ndarray:
    """Run the last of `layers` (built, as `emit.graph_layers` emits it under sparse softmax cross-entropy) on `x`."""
    last = emit.graph_layers(layers, SparseCategoricalCrossentropy())[-1]
    builder = GraphBuilder()
    value = builder.add_input("x", np.float32, (None, *x.shape[1:]))
    builder.add_output(emit_layer(builder, last, value), "y", np.float32, (None, *x.shape[1:]))
    session = ort.InferenceSession(builder.build().SerializeToString())
    return session.run(None, {"x": x})[0]


def test_the_log_probabilities_are_keras_cross_entropy_of_the_values_and_a_zero_sum_reads_the_floor():
    """Keras: log(clip(p / sum(p), 1e-7, 1 - 1e-7)) over the classes; a position whose values sum to 0 (every
    class dropped by a Dropout in training), NaN in Keras, reads the clip's floor for every class."""
    with Sequential([Input(2, 3), Activation("softmax"), Reshape((2, 3))]) as model:
        p = np.array([[[0.2, 0.6, 0.8], [0.0, 0.0, 0.0]], [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]], np.float32)
        got = emitted_last(model.layers, p)
    with np.errstate(invalid="ignore"):
        normalised = p / p.sum(axis=-1, keepdims=True)
    expected = np.log(np.clip(np.nan_to_num(normalised, nan=0.0), EPSILON, 1 - EPSILON))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_a_dropout_after_a_softmax_trains_on_finite_values_where_every_class_drops():
    """The portable engine's step (the ort-training engine draws no Dropout masks: `ORT_CANNOT_TRAIN`)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype(np.float32), rng.integers(0, 3, size=64)
    with Sequential([Input(4), Dense(3, activation="softmax"), Dropout(0.9, seed=1)]) as model:
        model.compile(optimizer=SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy", engine="portable")
        losses = [float(model.train_on_batch(x, y)) for _ in range(3)]  # ~73% of the rows drop every class
        assert np.all(np.isfinite(losses)), losses
        assert all(np.all(np.isfinite(w)) for w in model.get_weights().values())


REFUSED = [
    (
        lambda: Sequential([Input(4, 4, 2), Conv2D(3, 1, activation="softmax", name="head"), ZeroPadding2D(1)]),
        r"ZeroPadding2D layer 'zero_padding2d_1' after that softmax pads them with zeros: a padded position's classes "
        r"sum to 0, whose cross-entropy Keras computes as NaN",
    ),
    (
        lambda: Sequential([Input(4, 2), Dense(3), Softmax(name="probabilities"), ZeroPadding1D(1)]),
        r"the softmax of Softmax layer 'probabilities', .* ZeroPadding1D layer 'zero_padding1d_1'",
    ),
    (
        lambda: Sequential([Input(4), Dense(3, activation="softmax", name="head"), GaussianNoise(0.1)]),
        r"the softmax of Dense layer 'head', .* GaussianNoise layer 'gaussian_noise_1' after that softmax adds noise "
        r"to them in training",
    ),
    (
        lambda: Sequential([Input(4), Dense(3, activation="softmax"), Dropout(0.1), GaussianDropout(0.2)]),
        r"GaussianDropout layer 'gaussian_dropout_1' after that softmax adds noise .* Apply the noise before",
    ),
]


@pytest.mark.parametrize(
    ("make", "match"), REFUSED, ids=["zero_padded", "softmax_layer_padded", "noise", "noise_after_dropout"]
)
def test_a_softmax_whose_probabilities_no_logits_give_is_refused(make, match):
    with make() as model, pytest.raises(InvalidArgumentError, match=match):
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")


def test_under_a_loss_on_probabilities_the_default_relu_before_a_softmax_layer_stays():
    with compiled("dense_softmax_layer") as on_logits:
        weights = on_logits.get_weights()
    x = FIXTURE["dense_softmax_layer/x"]
    with Sequential([Input(4), Dense(5, activation="tanh"), Dense(3), Softmax()]) as model:
        model.set_weights(weights)
        model.compile(optimizer="sgd", loss="mse")
        z = np.tanh(x @ weights["dense_1.kernel"] + weights["dense_1.bias"]) @ weights["dense_2.kernel"]
        relu = softmax(np.maximum(z + weights["dense_2.bias"], 0))  # KotlinDL's default, which mse keeps
        np.testing.assert_allclose(np.asarray(model(x)), relu, rtol=1e-5, atol=1e-6)


def test_a_time_distributed_dense_then_a_softmax_layer_trains_as_its_own_softmax():
    """`TimeDistributed(Dense(3))` then `Softmax()` is `TimeDistributed(Dense(3, activation="softmax"))`: the
    Dense emitted linear, the softmax applied once."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 4, 2)).astype(np.float32), rng.integers(0, 3, size=(5, 4))
    kernel, bias = rng.normal(size=(2, 3)).astype(np.float32), np.zeros(3, np.float32)
    with (
        Sequential([Input(4, 2), TimeDistributed(Dense(3, name="dense")), Softmax()]) as layer,
        Sequential([Input(4, 2), TimeDistributed(Dense(3, activation="softmax", name="dense"))]) as own,
    ):
        for model in (layer, own):
            model.set_weights([kernel, bias])
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                model.compile(optimizer=SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy")
        np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(own(x)), rtol=1e-5, atol=1e-6)
        assert float(layer.evaluate(x, y)) == pytest.approx(float(own.evaluate(x, y)), abs=1e-6)
        assert float(layer.train_on_batch(x, y)) == pytest.approx(float(own.train_on_batch(x, y)), abs=1e-6)
        trained = layer.get_weights()
        for name, expected in own.get_weights().items():
            np.testing.assert_allclose(trained[name], expected, rtol=0, atol=1e-6, err_msg=name)


MARK = "[linear (logits)]"


@pytest.mark.parametrize(
    ("case", "marked"),
    [
        ("all_convolutional", "conv2d_2(Conv2D)"),
        ("dense_softmax_layer", "dense_2(Dense)"),
        ("softmax_layer_upsampled", "conv2d_1(Conv2D)"),
        ("upsampled", None),  # an explicit softmax, which model(x) keeps: nothing emitted linear
        ("dropped", None),
    ],
)
def test_the_summary_marks_the_head_a_softmax_layer_reads(case, marked):
    with compiled(case) as model:
        lines = model.summary(print_fn=None).splitlines()
    rows = [line.split()[0] for line in lines if MARK in line]
    assert rows == ([marked] if marked else [])


def test_the_layer_list_rule_emits_the_head_before_a_softmax_layer_linear():
    """`emit.graph_layers` (a layer list, as a Sequential's) follows the graph rule: the default head linear, the
    softmax layer left to the loss; carried probabilities end in their log."""
    loss = SparseCategoricalCrossentropy()
    with Sequential([Input(4, 4, 2), Conv2D(3, 1), GlobalAveragePooling2D(), Activation("softmax")]) as model:
        layers = model.layers
        emitted = emit.graph_layers(layers, loss)
        assert emitted[1] is not layers[1] and emitted[1].activation.name == "linear"
        assert emitted[2] is layers[2] and emitted[3].activation.name == "linear"
    with Sequential([Input(4), Dense(3), Softmax(), Dropout(0.2)]) as model:
        layers = model.layers
        emitted = emit.graph_layers(layers, loss)
        assert emitted[1].activation.name == "linear" and emitted[2] is layers[2] and emitted[3] is not layers[3]
