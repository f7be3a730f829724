"""The shared end-to-end check of a layer: one `LayerCase` row per layer and configuration.

For each row `check_layer` verifies the config round trip, the output shape against ONNX Runtime's, the parameter
count, the forward (inference graph) against a numpy reference, the export against the model's own predict, a
short training run on the portable engine (and on ort-training, which either trains it or refuses it clearly), and,
where a Keras fixture exists (`tools/keras_fixtures.py` writes them to tests/data/keras/), the forward against
Keras 3's for the same weights and input. The tests need neither Keras nor TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from onnxtrain import InferenceModel, Model, Sequential, emit, load_model
from onnxtrain.errors import UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import Dense, Flatten, Input, Layer
from onnxtrain.layers._keras_arguments import keras_arguments
from onnxtrain.layers._layout import channels_first

KERAS_FIXTURES = Path(__file__).parent / "data" / "keras"

Reference = Callable[[Layer, np.ndarray], np.ndarray]
KerasWeights = Callable[[list[np.ndarray]], dict[str, np.ndarray]]


@dataclass
class LayerCase:
    """One layer configuration under test.

    Attributes:
        id: the row's name; also the name of its Keras fixture (tests/data/keras/<id>.npz), if any.
        make: builds the layer under test.
        input_shape: per-example input shape (channels last, as in Keras).
        output_shape: the expected per-example output shape.
        params: the expected parameter count (trainable and not).
        reference: numpy forward of the built layer in inference mode (None: Keras parity only).
        keras_weights: Keras' weight list (`layer.get_weights()` order) -> this layer's params by local name.
        trains: whether a short fit must lower the loss and change the layer's parameters (a Dense head follows
            the layer, so layers without parameters are trained through too).
        tolerance: (rtol, atol) of the forward comparisons.
        input_range: inputs are drawn uniformly from this range (e.g. positive for a log).
        integer_inputs: the draws are rounded down to whole numbers (an Embedding's token ids, which fit and
            predict refuse when fractional).
    """

    id: str
    make: Callable[[], Layer]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    reference: Reference | None = None
    keras_weights: KerasWeights | None = None
    trains: bool = True
    tolerance: tuple[float, float] = (1e-5, 1e-5)
    input_range: tuple[float, float] = (-2.0, 2.0)
    integer_inputs: bool = False
    extra: Mapping[str, object] = field(default_factory=dict)


class ToChannelsFirst(Layer):
    """Hands its input on channels first, as a convolution does (the next layer sees a channels-first value)."""

    accepts_channels_first = True

    def compute_output_shape(self, input_shape):
        return input_shape

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None
        return channels_first(builder, x, len(self.input_shape) + 1)


def sample(case: LayerCase, n: int = 7, seed: int = 0) -> np.ndarray:
    low, high = case.input_range
    x = np.random.default_rng(seed).uniform(low, high, size=(n, *case.input_shape))
    return (np.floor(x) if case.integer_inputs else x).astype(np.float32)


def forward(model: Sequential, x: np.ndarray) -> np.ndarray:
    """The inference graph's output (no loss: the layers exactly as declared)."""
    proto = emit.inference_graph(model.layers)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": x})[0]


def check_structure(case: LayerCase) -> Sequential:
    layer = case.make()
    model = Sequential.of(Input(*case.input_shape), layer, seed=5)
    assert layer.output_shape == case.output_shape, (layer.output_shape, case.output_shape)
    assert layer.param_count == case.params, (layer.param_count, case.params)
    rebuilt = Layer.from_config(layer.serialize())
    assert type(rebuilt) is type(layer)
    assert rebuilt.get_config() == layer.get_config()
    check_keras_defaults(layer)
    y = forward(model, sample(case))
    assert y.shape[1:] == case.output_shape, (y.shape, case.output_shape)
    return model


def check_keras_defaults(layer: Layer) -> None:
    """A config that also holds Keras' defaults of the arguments onnxtrain has no parameter for (what Keras'
    get_config writes: data_format="channels_last", every constraint None) rebuilds the same layer, whose own
    config leaves them out."""
    names = keras_arguments(type(layer))
    if not names:
        return
    config = layer.get_config()
    assert not names & config.keys(), sorted(names & config.keys())
    defaults = {name: "channels_last" if name == "data_format" else None for name in names}
    rebuilt = Layer.from_config({"class_name": type(layer).registry_key(), "config": {**config, **defaults}})
    assert type(rebuilt) is type(layer) and rebuilt.get_config() == config


def check_reference(case: LayerCase) -> None:
    model = check_structure(case)
    if case.reference is None:
        return
    x = sample(case)
    expected = case.reference(model.layers[1], x.astype(np.float64))
    rtol, atol = case.tolerance
    np.testing.assert_allclose(forward(model, x), expected, rtol=rtol, atol=atol)


def check_keras(case: LayerCase) -> bool:
    """The forward against Keras' for the fixture's weights and input; False when the row has no fixture."""
    path = KERAS_FIXTURES / f"{case.id}.npz"
    if not path.exists():
        return False
    with np.load(path) as data:
        x, expected = data["x"], data["y"]
        weights = [data[f"w{i}"] for i in range(int(data["weights"]))]
    model = Sequential.of(Input(*case.input_shape), case.make(), seed=5)
    layer = model.layers[1]
    if weights:
        assert case.keras_weights is not None, f"{case.id}: the fixture has weights; give keras_weights"
        model.set_weights({f"{layer.name}.{k}": v for k, v in case.keras_weights(weights).items()})
    rtol, atol = case.tolerance
    np.testing.assert_allclose(forward(model, x), expected, rtol=max(rtol, 1e-5), atol=max(atol, 1e-5))
    return True


def check_training_and_export(case: LayerCase, tmp_path: Path, engine: str = "portable") -> None:
    """A short fit of Input -> layer -> Flatten -> Dense(3) (gradients flow through the layer into its own
    parameters), then the export's predictions against the model's."""
    x = sample(case, n=64, seed=1)
    y = np.random.default_rng(2).integers(0, 3, len(x))
    layers: list[Layer] = [Input(*case.input_shape), case.make()]
    if len(case.output_shape) > 1:
        layers.append(Flatten())
    layers.append(Dense(3, activation="linear"))
    with Sequential(layers, seed=3) as model:
        try:
            model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", engine=engine)
        except UnsupportedError:
            assert engine == "ort-training", "the portable engine trains every layer"
            return
        name = model.layers[1].name
        before = {k: v.copy() for k, v in model.get_weights().items() if k.startswith(f"{name}.")}
        history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        losses = history.history["loss"]
        assert all(np.isfinite(losses)), losses
        if case.trains:
            assert losses[-1] < losses[0], losses
            after = model.get_weights()
            changed = [k for k, v in before.items() if not np.array_equal(after[k], v)]
            assert changed or not before, "the layer's weights did not change"
        model.export(tmp_path / f"{engine}.onnx")
        expected = model.predict_softly(x)
    exported = InferenceModel.load(tmp_path / f"{engine}.onnx")
    np.testing.assert_allclose(exported.predict_softly(x), expected, rtol=1e-5, atol=1e-6)


def check_resumed_fit(compiled: Callable[[], Sequential | Model], x: np.ndarray, y: np.ndarray, tmp_path: Path) -> None:
    """Two epochs of `compiled()` give the weights, bit for bit, of one epoch, a save with the optimizer state, a
    load and one more epoch: the layers' random draws (dropout masks, noise) are a function of the step, which a
    resumed run carries on from."""
    with compiled() as straight:
        straight.fit(x, y, epochs=2, batch_size=10, verbose=0, seed=1)
        expected = straight.get_weights()
    with compiled() as first:
        first.fit(x, y, epochs=1, batch_size=10, verbose=0, seed=1)
        first.save(tmp_path / "saved", save_optimizer_state=True)
    with load_model(tmp_path / "saved") as resumed:
        resumed.fit(x, y, epochs=1, batch_size=10, verbose=0, seed=1)
        for name, value in expected.items():
            np.testing.assert_array_equal(resumed.get_weights()[name], value, err_msg=name)


def check_resumed_fit_of_layer(make: Callable[[], Layer], tmp_path: Path) -> None:
    """`check_resumed_fit` of Input(8) -> Dense(16) -> make() -> Dense(3) on random data."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 8)).astype(np.float32), rng.integers(0, 3, 40)

    def compiled() -> Sequential:
        model = Sequential.of(Input(8), Dense(16), make(), Dense(3, activation="linear"), seed=4)
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", engine="portable")
        return model

    check_resumed_fit(compiled, x, y, tmp_path)


def table_tests(cases: list[LayerCase]) -> tuple[Callable[..., None], Callable[..., None]]:
    """The two tests every module's table of cases gets, for the module to bind to its own test names: the forward
    against numpy and Keras (`check_reference`, `check_keras`), and `check_training_and_export` on each engine.

        test_layer_forward_matches_numpy_and_keras, test_layer_trains_and_exports = table_tests(CASES)
    """
    ids = [case.id for case in cases]

    @pytest.mark.parametrize("case", cases, ids=ids)
    def forward_matches_numpy_and_keras(case: LayerCase) -> None:
        check_reference(case)
        assert check_keras(case), f"no Keras fixture for {case.id}: run tools/keras_fixtures.py"

    @pytest.mark.parametrize("case", cases, ids=ids)
    @pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
    def trains_and_exports(case: LayerCase, engine: str, tmp_path: Path) -> None:
        check_training_and_export(case, tmp_path, engine)

    return forward_matches_numpy_and_keras, trains_and_exports
