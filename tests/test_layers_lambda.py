"""Lambda: a layer computed by a function(builder, x) of one's own. Forwards against numpy, one SGD step of a siamese
model against a numpy backward, save/load by the function's registered name (a lambda refused at save), the export,
and the refusals."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxtrain import Model, Sequential, load_model
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelFileError,
    ShapeError,
    UnknownIdentifierError,
    UnsupportedError,
)
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import Dense, Flatten, Input, Lambda, Layer
from onnxtrain.layers import _lambda as lambda_module
from onnxtrain.optimizers import SGD


@pytest.fixture(autouse=True)
def _registry_as_it_was():
    """Each test starts with no function registered (registration is process-wide: the docs' examples register
    theirs), and leaves the registry as it found it."""
    before = dict(lambda_module._FUNCTIONS.objects)
    lambda_module._FUNCTIONS.objects.clear()
    yield
    lambda_module._FUNCTIONS.objects.clear()
    lambda_module._FUNCTIONS.objects.update(before)


def l1_distance(g: GraphBuilder, t: list[str]) -> str:
    """Keras' siamese `Lambda(lambda t: ops.abs(t[0] - t[1]))`."""
    return g.node("Abs", [g.node("Sub", t)])


def data(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def siamese(function=l1_distance) -> Model:
    a, b = Input(4, name="a"), Input(4, name="b")
    shared = Dense(3, activation="tanh")
    distance = Lambda(function, name="distance")([shared(a), shared(b)])
    return Model([a, b], Dense(1, activation="linear")(distance), seed=0)


def siamese_forward(p: dict[str, np.ndarray], xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    ha = np.tanh(xa @ p["dense_1.kernel"] + p["dense_1.bias"])
    hb = np.tanh(xb @ p["dense_1.kernel"] + p["dense_1.bias"])
    return np.abs(ha - hb) @ p["dense_2.kernel"] + p["dense_2.bias"]


# --- forwards ---------------------------------------------------------------------------------------------------
def test_a_siamese_distance_on_a_list_of_inputs_computes_as_numpy() -> None:
    model = siamese()
    xa, xb = data(6, 4), data(6, 4, seed=1)
    assert model.get_layer("distance").output_shape == (3,)
    predicted = model.predict([xa, xb], verbose=0)
    np.testing.assert_allclose(predicted, siamese_forward(model.get_weights(), xa, xb), rtol=1e-5, atol=1e-6)


def test_a_constant_of_numpys_default_integers_multiplies_float_values() -> None:
    # np.array([1, 2, 3]) is int64 in numpy: builder.constant makes it float32 unless a dtype is given
    x = Input(3)
    model = Model(x, Lambda(lambda g, v: g.node("Mul", [v, g.constant(np.array([1, 2, 3]))]))(x))
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(model(data), data * np.array([1, 2, 3], np.float32))


def test_a_lambda_takes_its_inputs_as_separate_arguments_too() -> None:
    a, b = Input(3), Input(3)
    layer = Lambda(lambda g, t: g.node("Mul", t))
    assert layer(a, b).shape == (3,) and layer.multi_input
    xa, xb = data(2, 3), data(2, 3, seed=1)
    np.testing.assert_allclose(layer([xa, xb]), xa * xb, rtol=1e-6)  # on numpy arrays: computed at once


SINGLE = [
    # (function, arguments, input shape, expected output shape, numpy reference)
    (lambda g, x, factor: g.node("Mul", [x, g.constant(factor)]), {"factor": 2.5}, (4,), (4,), lambda x: x * 2.5),
    (  # slicing, the end an argument
        lambda g, x, end: g.node("Slice", [x, g.ints([0]), g.ints([end]), g.ints([1])]),
        {"end": 3},
        (5, 2),
        (3, 2),
        lambda x: x[:, :3],
    ),
    (  # Keras' l2_normalize over the features
        lambda g, x: g.node("Div", [x, g.node("Sqrt", [g.reduce("ReduceSumSquare", x, [-1], keepdims=True)])]),
        {},
        (2, 3),
        (2, 3),
        lambda x: x / np.sqrt((x**2).sum(-1, keepdims=True)),
    ),
    (lambda g, x: g.reduce("ReduceMean", x, [1], keepdims=False), {}, (4,), (), lambda x: x.mean(1)),
    (lambda g, x: x, {}, (2, 2), (2, 2), lambda x: x),  # the identity: x itself
]


@pytest.mark.parametrize(("function", "arguments", "shape", "expected", "reference"), SINGLE)
def test_the_output_shape_is_inferred_and_the_forward_is_numpy_s(function, arguments, shape, expected, reference):
    model = Sequential.of(Input(*shape), Lambda(function, arguments=arguments), seed=0)
    assert model.output_shape == expected
    x = data(5, *shape)
    np.testing.assert_allclose(model.predict(x, verbose=0), reference(x), rtol=1e-5, atol=1e-6)


def tile_by_value(g: GraphBuilder, x: str) -> str:
    """Tiles x (batch, 3) by a count read from the data: shape inference cannot tell the width."""
    count = g.node("Cast", [g.reduce("ReduceMax", x, None, keepdims=False)], to=onnx.TensorProto.INT64)
    return g.node("Tile", [x, g.node("Concat", [g.ints([1]), g.node("Reshape", [count, g.ints([1])])], axis=0)])


def test_output_shape_is_given_where_inference_cannot_tell() -> None:
    with pytest.raises(ShapeError, match=r"shape inference gives its output shape \[\?, \?\]; give it.*output_shape="):
        Lambda(tile_by_value)(Input(3))
    model = Sequential.of(Input(3), Lambda(tile_by_value, output_shape=(6,)), seed=0)
    x = np.full((2, 3), 2.0, np.float32)  # max 2: tiled twice
    assert model.output_shape == (6,)
    np.testing.assert_array_equal(model.predict(x, verbose=0), np.tile(x, (1, 2)))


def test_a_lambda_reads_channels_last_values_after_a_convolution() -> None:
    from onnxtrain.layers import Conv2D

    x = Input(4, 4, 1)
    conv = Conv2D(2, 3, padding="same", activation="linear")
    first_channel = Lambda(lambda g, v: g.node("Slice", [v, g.ints([0]), g.ints([1]), g.ints([3])]))
    model = Model(x, Flatten()(first_channel(conv(x))), seed=0)
    images = data(2, 4, 4, 1)
    both = Model(x, Flatten()(conv(x)), seed=0)
    both.set_weights(model.get_weights())
    np.testing.assert_allclose(
        model.predict(images, verbose=0), both.predict(images, verbose=0).reshape(2, 4, 4, 2)[..., 0].reshape(2, -1)
    )


# --- training ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_one_sgd_step_through_a_lambda_is_numpy_s(engine: str) -> None:
    """autodiff differentiates the Lambda's Abs and Sub as any layer's: one SGD step against a numpy backward."""
    xa, xb, y = data(8, 4), data(8, 4, seed=1), data(8, 1, seed=2)
    with siamese() as model:
        p = {k: v.astype(np.float64) for k, v in model.get_weights().items()}
        model.compile(optimizer=SGD(learning_rate=0.1), loss="mse", engine=engine)
        model.fit([xa, xb], y, epochs=1, batch_size=8, verbose=0)
        stepped = model.get_weights()
    za, zb = xa @ p["dense_1.kernel"] + p["dense_1.bias"], xb @ p["dense_1.kernel"] + p["dense_1.bias"]
    ha, hb = np.tanh(za), np.tanh(zb)
    d = np.abs(ha - hb)
    d_out = 2 * (d @ p["dense_2.kernel"] + p["dense_2.bias"] - y) / len(y)  # mse over 8 examples, 1 column
    d_s = (d_out @ p["dense_2.kernel"].T) * np.sign(ha - hb)  # through Abs, then Sub: +ha, -hb
    d_za, d_zb = d_s * (1 - ha**2), -d_s * (1 - hb**2)
    gradients = {
        "dense_1.kernel": xa.T @ d_za + xb.T @ d_zb,
        "dense_1.bias": (d_za + d_zb).sum(0),
        "dense_2.kernel": d.T @ d_out,
        "dense_2.bias": d_out.sum(0),
    }
    for name, gradient in gradients.items():
        np.testing.assert_allclose(stepped[name], p[name] - 0.1 * gradient, rtol=1e-4, atol=1e-6, err_msg=name)


# --- save, load and export --------------------------------------------------------------------------------------
def test_a_registered_function_saves_and_loads_by_its_name(tmp_path) -> None:
    Lambda.register(l1_distance)
    model = siamese()
    xa, xb = data(5, 4), data(5, 4, seed=1)
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    saved = next(layer for layer in config["layers"] if layer["class_name"] == "Lambda")["config"]
    assert saved == {
        "function": "l1_distance",
        "output_shape": None,
        "arguments": {},
        "name": "distance",
        "trainable": True,
    }
    loaded = load_model(tmp_path / "m", compile=False)
    assert loaded.get_layer("distance").function is l1_distance
    np.testing.assert_allclose(loaded.predict([xa, xb], verbose=0), model.predict([xa, xb], verbose=0), rtol=1e-6)


def test_save_refuses_a_lambda_before_writing_naming_the_fix_and_the_named_function_then_saves(tmp_path) -> None:
    model = siamese(lambda g, t: g.node("Abs", [g.node("Sub", t)]))
    xa, xb = data(5, 4), data(5, 4, seed=1)
    predicted = model.predict([xa, xb], verbose=0)
    with pytest.raises(
        UnsupportedError,
        match=r"^save\(\) refused: Lambda layer 'distance' computes with a lambda\. "
        r".*@onnxtrain\.layers\.Lambda\.register"
        r".*model\.get_layer\('distance'\)\.function = my_function; .*custom_objects=",
    ):
        model.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()  # refused before anything was written, not at load_model
    model.export(tmp_path / "m.onnx")  # the inference model holds the nodes, and needs no name
    saved = onnx.load(str(tmp_path / "m.onnx"))
    assert {"Abs", "Sub"} <= {node.op_type for node in saved.graph.node if node.name.startswith("distance.")}
    model.get_layer("distance").function = Lambda.register(l1_distance)  # the fix the message names
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m", compile=False)
    np.testing.assert_allclose(loaded.predict([xa, xb], verbose=0), predicted, rtol=1e-6)


def test_a_callable_that_is_no_function_is_refused_at_save_too(tmp_path) -> None:
    class Distance:
        def __call__(self, g: GraphBuilder, t: list[str]) -> str:
            return l1_distance(g, t)

    with pytest.raises(UnsupportedError, match=r"computes with .*Distance.*, which is no function\."):
        siamese(Distance()).save(tmp_path / "m")


def test_a_config_naming_a_lambda_is_refused_at_load_naming_the_layer() -> None:
    config = {"class_name": "Lambda", "config": {"function": "<lambda>", "name": "distance"}}
    with pytest.raises(
        UnknownIdentifierError,
        match=r"Lambda layer 'distance' computes with a lambda, which a save cannot name: .* "
        r"Define the function with def and register it with @onnxtrain\.layers\.Lambda\.register",
    ):
        Layer.from_config(config)


def test_an_unregistered_function_loads_once_given_or_registered(tmp_path) -> None:
    siamese().save(tmp_path / "m")
    with pytest.raises(ModelFileError, match=r"function 'l1_distance', which is not registered \(registered: none\)"):
        load_model(tmp_path / "m", compile=False)
    loaded = load_model(tmp_path / "m", compile=False, custom_objects={"l1_distance": l1_distance})  # Keras' way
    assert loaded.get_layer("distance").function is l1_distance
    with pytest.raises(ModelFileError, match=r"load_model\(path, custom_objects=\{'name': function\}\)"):
        load_model(tmp_path / "m", compile=False)  # for that load only
    Lambda.register(l1_distance)
    assert load_model(tmp_path / "m", compile=False).get_layer("distance").function is l1_distance


def test_the_config_round_trip_keeps_the_arguments_and_the_given_output_shape() -> None:
    @Lambda.register
    def scaled(g, x, factor):
        return g.node("Mul", [x, g.constant(factor)])

    layer = Lambda(scaled, output_shape=(3,), arguments={"factor": 2.0}, name="scale")
    rebuilt = Layer.from_config(json.loads(json.dumps(layer.serialize())))
    assert isinstance(rebuilt, Lambda) and rebuilt.get_config() == layer.get_config()
    assert rebuilt.function is scaled and rebuilt.arguments == {"factor": 2.0}
    np.testing.assert_allclose(rebuilt(np.ones((2, 3), np.float32)), np.full((2, 3), 2.0))
    again = Lambda.from_config({**layer.get_config(), "function": scaled})  # or passed again by the caller
    assert again.function is scaled


def test_the_export_holds_the_lambda_s_nodes(tmp_path) -> None:
    model = siamese()
    xa, xb = data(5, 4), data(5, 4, seed=1)
    path = model.export(tmp_path / "siamese.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, dict(zip([i.name for i in session.get_inputs()], [xa, xb], strict=True)))
    np.testing.assert_allclose(outputs[0], model.predict([xa, xb], verbose=0), rtol=1e-6)


# --- refusals ---------------------------------------------------------------------------------------------------
def _call(layer: Lambda, shape: tuple[int, ...] = (3,)) -> None:
    layer(Input(*shape))


REFUSED = [
    (
        lambda: _call(Lambda(lambda g, x: None)),
        InvalidTypeError,
        r"must return the name .* Received: None \(it emitted",
    ),
    (lambda: _call(Lambda(lambda g, x: [x, x])), InvalidTypeError, r"Received: a list of 2; a Lambda has one output"),
    (lambda: _call(Lambda(lambda g, x: "y")), InvalidTypeError, r"Received: 'y', which no node computes"),
    (lambda: _call(Lambda(lambda g, x: 3)), InvalidTypeError, r"Received: 3 \(int\)"),
    (lambda: Lambda(lambda x: x), InvalidTypeError, r"function\(builder, x, \*\*arguments\).*written lambda g, x"),
    (lambda: Lambda(3), InvalidTypeError, r"expects a function\(builder, x\) or the name .* Received: 3 \(int\)"),
    (lambda: Lambda("not_registered"), UnknownIdentifierError, r"'not_registered', which is not registered"),
    (lambda: Lambda(l1_distance, output_shape=(0,)), InvalidArgumentError, r"output_shape=\(0,\)"),
    (lambda: Lambda(l1_distance, output_shape=lambda s: s), InvalidArgumentError, r"expects a tuple of positive ints"),
    (lambda: Lambda(l1_distance, arguments={"w": np.ones(2)}), InvalidArgumentError, r"pass arrays as lists"),
    (lambda: Lambda(l1_distance, arguments=[1]), InvalidTypeError, r"expects a dict of keyword arguments"),
    (
        lambda: _call(Lambda(lambda g, x: g.node("ArgMax", [x], axis=1))),
        InvalidTypeError,
        r"returns a value of type int64; .* g\.node\('Cast', \[y\], to=1\)",
    ),
    (
        lambda: _call(Lambda(lambda g, x: g.reduce("ReduceSum", x, None, keepdims=True))),
        ShapeError,
        r"shape \[1, 1\], which does not keep the batch axis first",
    ),
    (
        lambda: _call(Lambda(lambda g, x: g.node("Mul", [x, g.add_initializer("w", np.ones(3, np.float32))]))),
        InvalidArgumentError,
        r"adds initializers \['lambda\.w'\]; a Lambda has no weights",
    ),
    (
        lambda: _call(Lambda(lambda g, x: x, output_shape=(4,), name="id")),
        ShapeError,
        r"Lambda layer 'id': its function returns a value of shape \[None, 3\], and output_shape says \[None, 4\]",
    ),
    (lambda: Lambda(l1_distance)([Input(3)]), InvalidArgumentError, r"a list of one tensor; call it on the tensor"),
]


@pytest.mark.parametrize(("make", "error", "match"), REFUSED)
def test_mistakes_are_refused_where_the_layer_is_made_or_called(make, error, match) -> None:
    with pytest.raises(error, match=match):
        make()


def test_a_shared_lambda_takes_the_same_kind_of_input_at_every_call() -> None:
    layer = Lambda(l1_distance)
    layer([Input(3), Input(3)])
    with pytest.raises(InvalidArgumentError, match=r"first called on a list of tensors; a shared layer"):
        layer(Input(3))


def test_assigned_settings_are_checked_as_the_constructor_checks_them() -> None:
    layer = Lambda(lambda g, x, factor: g.node("Mul", [x, g.constant(factor)]), arguments={"factor": 2.0})
    layer.arguments = {"factor": 3.0}  # an unregistered lambda: checked without a rebuild from the config
    np.testing.assert_allclose(layer(np.ones((1, 2), np.float32)), [[3.0, 3.0]])
    with pytest.raises(InvalidTypeError, match=r"cannot take that"):
        layer.arguments = {"scale": 3.0}
    assert layer.arguments == {"factor": 3.0}
    layer.function = lambda g, x, factor: g.node("Add", [x, g.constant(factor)])
    np.testing.assert_allclose(layer(np.ones((1, 2), np.float32)), [[4.0, 4.0]])
    layer(Input(2))
    with pytest.raises(InvalidArgumentError, match=r"is built .* so its arguments are too\. Make a new Lambda"):
        layer.arguments = {"factor": 1.0}


def test_register_refuses_a_lambda() -> None:
    with pytest.raises(InvalidTypeError, match=r"a lambda has none to save"):
        Lambda.register(lambda g, x: x)
