"""The Functional API: symbolic calls, the merge layers, and the `Functional` graph of layer calls.

Forwards run in ONNX Runtime against numpy; the merge rows also against Keras 3 fixtures
(tests/data/keras/<row id>.npz, written by tools/keras_fixtures.py from tools/keras_cases/merge.py).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onnxtrain import Model, Sequential, activations, autodiff, emit
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from onnxtrain.functional import Functional
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import (
    Add,
    Average,
    Concatenate,
    Conv2D,
    Dense,
    Dot,
    Flatten,
    Input,
    Layer,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    SymbolicTensor,
)
from onnxtrain.layers._merge import broadcast_shapes
from tests.layer_harness import KERAS_FIXTURES


def run(graph: Functional, *xs: np.ndarray, loss: bool = False) -> tuple[list[np.ndarray], GraphBuilder]:
    """`graph` emitted into a fresh GraphBuilder (inputs "in0", "in1", ...) and run in ONNX Runtime."""
    builder = GraphBuilder()
    names = [builder.add_input(f"in{i}", np.float32, (None, *x.shape)) for i, x in enumerate(graph.inputs)]
    for i, (value, y) in enumerate(zip(graph.emit(builder, names), graph.outputs, strict=True)):
        builder.add_output(value, f"out{i}", np.float32, (None, *y.shape))
    session = ort.InferenceSession(builder.build().SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {name: x for name, x in zip(names, xs, strict=True)}), builder


def data(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-2.0, 2.0, size=shape).astype(np.float32)


def dense(p: dict[str, np.ndarray], name: str, x: np.ndarray) -> np.ndarray:
    return x @ p[f"{name}.kernel"] + p[f"{name}.bias"]


# --- the two-input model with a skip connection --------------------------------------------------------------
def skip_model(seed: int = 0) -> Functional:
    a, b = Input(8, name="a"), Input(4, name="b")
    h = Add()([Dense(8, activation="tanh")(a), a])
    y = Dense(3, activation="linear")(Concatenate()([h, b]))
    return Functional([a, b], y, seed=seed)


def test_two_input_model_with_a_skip_connection_matches_numpy() -> None:
    graph = skip_model()
    a, b = data(5, 8), data(5, 4, seed=1)
    (y,), _ = run(graph, a, b)
    p = graph.params_by_name()
    h = np.tanh(dense(p, "dense_1", a)) + a
    np.testing.assert_allclose(y, dense(p, "dense_2", np.concatenate([h, b], axis=1)), rtol=1e-5, atol=1e-5)


def test_layers_are_named_in_call_order_as_sequential_names_them() -> None:
    graph = skip_model()
    assert [layer.name for layer in graph.layers] == ["a", "b", "dense_1", "add_1", "concatenate_1", "dense_2"]
    assert list(graph.params_by_name()) == ["dense_1.kernel", "dense_1.bias", "dense_2.kernel", "dense_2.bias"]
    assert graph.param_count == 8 * 8 + 8 + 12 * 3 + 3


def test_summary_rows_say_what_each_layer_reads() -> None:
    rows = skip_model().summary_rows()
    assert rows[0] == ("a(Input)", "[None, 8]", "0", "")
    assert rows[3] == ("add_1(Add)", "[None, 8]", "0", "dense_1[0], a[0]")
    assert rows[5] == ("dense_2(Dense)", "[None, 3]", "39", "concatenate_1[0]")


def test_the_same_seed_gives_the_same_weights() -> None:
    first, second = skip_model(seed=4).params_by_name(), skip_model(seed=4).params_by_name()
    assert all(np.array_equal(first[name], second[name]) for name in first)
    assert not np.array_equal(first["dense_1.kernel"], skip_model(seed=5).params_by_name()["dense_1.kernel"])


def test_input_is_a_symbolic_tensor_and_still_starts_a_sequential() -> None:
    x = Input(28, 28, 1)
    assert isinstance(x, SymbolicTensor) and x.shape == (28, 28, 1) and x.layer is x
    y = Dense(10)(Flatten()(x))
    assert y.shape == (10,) and y.inputs[0].inputs == (x,) and y.call_index == 0
    model = Sequential.of(Input(3), Dense(2, activation="linear"), seed=0)
    proto = emit.inference_graph(model.layers)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x3 = data(4, 3)
    np.testing.assert_allclose(session.run(None, {"input": x3})[0], dense(model.get_weights(), "dense_1", x3), 1e-5)


# --- shared layers and nested graphs ----------------------------------------------------------------------------
def test_a_layer_called_twice_shares_its_weights_and_emits_them_once() -> None:
    a, b = Input(4), Input(4)
    shared = Dense(5, activation="tanh")
    y = Subtract()([shared(a), shared(b)])
    graph = Functional([a, b], y, seed=0)
    assert [layer.name for layer in graph.layers] == ["input_1", "input_2", "dense_1", "subtract_1"]
    xa, xb = data(6, 4), data(6, 4, seed=1)
    (out,), builder = run(graph, xa, xb)
    assert [t.name for t in builder.initializers] == ["dense_1.kernel", "dense_1.bias"]
    p = graph.params_by_name()
    np.testing.assert_allclose(out, np.tanh(dense(p, "dense_1", xa)) - np.tanh(dense(p, "dense_1", xb)), 1e-5, 1e-5)
    assert graph.summary_rows()[2][3] == "input_1[0], input_2[0]"
    assert graph.get_config()["layers"][2]["inbound_nodes"] == [[["input_1", 0]], [["input_2", 0]]]


def test_an_output_can_be_emitted_by_a_shallow_copy_sharing_the_weights() -> None:
    x = Input(3)
    last = Dense(3, activation="softmax")
    y = last(last(x))  # shared: the copy replaces its second call only
    graph = Functional(x, y, seed=0)
    logits = copy.copy(last)
    logits.activation = activations.Linear()
    builder = GraphBuilder()
    (value,) = graph.emit(builder, [builder.add_input("x", np.float32, (None, 3))], substitutes={0: logits})
    builder.add_output(value, "logits", np.float32, (None, 3))
    assert [t.name for t in builder.initializers] == ["dense_1.kernel", "dense_1.bias"]
    session = ort.InferenceSession(builder.build().SerializeToString(), providers=["CPUExecutionProvider"])
    xs, p = data(4, 3), graph.params_by_name()
    z = dense(p, "dense_1", xs)
    softmax = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(session.run(None, {"x": xs})[0], dense(p, "dense_1", softmax), rtol=1e-5, atol=1e-6)


def _linear_copy(layer: Dense) -> Dense:
    logits = copy.copy(layer)
    logits.activation = activations.Linear()
    return logits


def _softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def _run_with(graph: Functional, substitutes: dict[int, Layer], x: np.ndarray) -> tuple[list[np.ndarray], int]:
    """The outputs of `graph` emitted with `substitutes`, and how many MatMul nodes its graph holds."""
    builder = GraphBuilder()
    values = graph.emit(builder, [builder.add_input("x", np.float32, (None, *x.shape[1:]))], substitutes=substitutes)
    for i, (value, y) in enumerate(zip(values, graph.outputs, strict=True)):
        builder.add_output(value, f"out{i}", np.float32, (None, *y.shape))
    model = builder.build()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x}), sum(node.op_type in ("MatMul", "Gemm") for node in model.graph.node)


def test_a_substitute_replaces_its_outputs_call_where_nothing_else_reads_it() -> None:
    x = Input(3)
    last = Dense(3, activation="softmax")
    graph = Functional(x, last(Dense(4, activation="tanh")(x)), seed=0)
    xs, p = data(5, 3), graph.params_by_name()
    (logits,), products = _run_with(graph, {0: _linear_copy(last)}, xs)
    np.testing.assert_allclose(logits, dense(p, "dense_2", np.tanh(dense(p, "dense_1", xs))), rtol=1e-5, atol=1e-6)
    assert products == 2  # the softmax Dense is not emitted beside its copy


def test_a_substitute_is_emitted_beside_the_call_that_another_layer_or_output_reads() -> None:
    # Keras computes every layer as it is; only a loss reads logits. A layer reading the output, or the same tensor
    # listed again without a substitute (Model(x, [p, p]) with a loss on logits for the first only), reads the
    # probabilities.
    x = Input(3)
    last = Dense(3, activation="softmax")
    p_tensor = last(x)
    xs = data(5, 3)
    for outputs, expected_products in (([p_tensor, Dense(2, activation="linear")(p_tensor)], 3), ([p_tensor] * 2, 2)):
        graph = Functional(x, outputs, seed=0)
        w = graph.params_by_name()
        (logits, other), products = _run_with(graph, {0: _linear_copy(last)}, xs)
        probabilities = _softmax(dense(w, "dense_1", xs))
        np.testing.assert_allclose(logits, dense(w, "dense_1", xs), rtol=1e-5, atol=1e-6)
        reads = dense(w, "dense_2", probabilities) if len(graph.layers) == 3 else probabilities
        np.testing.assert_allclose(other, reads, rtol=1e-5, atol=1e-6)
        assert products == expected_products  # the substitute once more, beside its call


def test_a_tensor_listed_twice_with_a_substitute_at_each_position_is_emitted_once() -> None:
    x = Input(3)
    last = Dense(3, activation="softmax")
    y = last(x)
    graph = Functional(x, [y, y], seed=0)
    xs, w = data(5, 3), graph.params_by_name()
    (first, second), products = _run_with(graph, {0: _linear_copy(last), 1: _linear_copy(last)}, xs)
    np.testing.assert_allclose(first, dense(w, "dense_1", xs), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(first, second)
    assert products == 1


@pytest.mark.parametrize(
    ("key", "match"),
    [
        ("tensor", r"output positions \(0 to 0\) as keys. Received: \[SymbolicTensor"),
        (1, r"Received: \[1\]"),
        (True, r"Received: \[True\]"),
    ],
    ids=["tensor", "out_of_range", "bool"],
)
def test_substitutes_are_refused_unless_keyed_by_output_position(key, match) -> None:
    x = Input(3)
    y = Dense(3, activation="softmax")(x)
    graph = Functional(x, y, seed=0)
    builder = GraphBuilder()
    with pytest.raises(InvalidArgumentError, match=match):
        graph.emit(builder, [builder.add_input("x", np.float32, (None, 3))], {y if key == "tensor" else key: y.layer})


def test_a_shared_layer_called_on_another_shape_says_so() -> None:
    shared = Dense(5)
    shared(Input(4))
    with pytest.raises(ShapeError, match=r"built for inputs of shape \[None, 4\] by its first call.*Received: "):
        shared(Input(6))


def encoder() -> Functional:
    x = Input(4)
    return Functional(x, Dense(3, activation="tanh")(Dense(6, activation="tanh")(x)), name="encoder", seed=1)


def test_a_nested_graph_is_named_under_its_own_name_and_shared_once() -> None:
    inner = encoder()
    a, b = Input(4, name="a"), Input(4, name="b")
    y = Dense(2, activation="linear")(Concatenate()([inner(a), inner(b)]))  # a siamese pair
    graph = Functional([a, b], y, seed=0)
    assert list(graph.params_by_name()) == [
        "encoder.dense_1.kernel",
        "encoder.dense_1.bias",
        "encoder.dense_2.kernel",
        "encoder.dense_2.bias",
        "dense_1.kernel",
        "dense_1.bias",
    ]
    xa, xb = data(3, 4), data(3, 4, seed=1)
    (out,), builder = run(graph, xa, xb)
    assert sorted(t.name for t in builder.initializers) == sorted(graph.params_by_name())
    p = graph.params_by_name()

    def encode(x: np.ndarray) -> np.ndarray:
        return np.tanh(dense(p, "encoder.dense_2", np.tanh(dense(p, "encoder.dense_1", x))))

    expected = dense(p, "dense_1", np.concatenate([encode(xa), encode(xb)], axis=1))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert graph.param_count == inner.param_count + 6 * 2 + 2


def test_an_unnamed_nested_graph_is_named_like_any_layer() -> None:
    x = Input(4)
    inner = Functional(x, Dense(3)(x), seed=0)
    outer = Functional(x2 := Input(4), inner(x2), seed=0)
    assert outer.layers[1].name == "functional_1"
    assert list(outer.params_by_name()) == ["functional_1.dense_1.kernel", "functional_1.dense_1.bias"]


def test_freezing_a_nested_graph_freezes_its_layers() -> None:
    inner = encoder()
    x = Input(4)
    graph = Functional(x, Dense(2)(inner(x)), seed=0)
    inner.trainable = False
    assert list(graph.trainable_params_by_name()) == ["dense_1.kernel", "dense_1.bias"]
    assert all(not layer.trainable for layer in inner.layers if not isinstance(layer, Input))
    assert graph.summary_rows()[1][0] == "encoder(Functional) [frozen]"
    inner.trainable = True
    assert len(graph.trainable_params_by_name()) == 6


# --- config -----------------------------------------------------------------------------------------------------
def test_config_round_trip_rebuilds_the_same_graph_and_weights() -> None:
    inner = encoder()
    a, b = Input(4, name="a"), Input(2, name="b")
    shared = Dense(3, activation="linear")
    encoded = inner(a)
    h = Average()([encoded, shared(encoded), shared(shared(encoded))])
    y = Dot(axes=1)([Concatenate()([h, b]), Concatenate()([b, h])])
    graph = Functional([a, b], y, name="pair", seed=7)
    config = json.loads(json.dumps(graph.get_config()))  # plain JSON
    rebuilt = Functional.from_config(config)
    assert rebuilt.get_config() == config
    rebuilt_by_layer = Layer.from_config(graph.serialize())
    assert isinstance(rebuilt_by_layer, Functional) and rebuilt_by_layer.get_config() == config
    first, second = graph.params_by_name(), rebuilt.params_by_name()
    assert list(first) == list(second) and all(np.array_equal(first[k], second[k]) for k in first)
    xa, xb = data(3, 4), data(3, 2, seed=1)
    np.testing.assert_allclose(run(rebuilt, xa, xb)[0][0], run(graph, xa, xb)[0][0], rtol=1e-6)


def test_a_config_with_a_missing_tensor_is_refused() -> None:
    config = skip_model().get_config()
    config["layers"][2]["inbound_nodes"] = [[["nowhere", 0]]]
    with pytest.raises(InvalidArgumentError, match=r"calls of \['add_1', 'concatenate_1', 'dense_1', 'dense_2'\]"):
        Functional.from_config(config)


# --- mistakes ---------------------------------------------------------------------------------------------------
def _disconnected() -> None:
    a, b = Input(3), Input(3)
    Functional(a, Add()([a, b]))


def _called_on_data() -> None:
    Dense(3)([[0.0, 1.0, 2.0]])  # a list: numpy arrays compute at once (tests/test_layers_eager_call.py)


def _merge_of_mismatched_shapes() -> None:
    Add()([Input(8), Input(4)])


MISTAKES: list[tuple[Callable[[], object], type[Exception], str]] = [
    (_called_on_data, InvalidTypeError, r"called on symbolic tensors: an Input\(...\).*Received as its input: list"),
    (lambda: Input(3)(Input(3)), InvalidTypeError, "is a tensor already, not a layer to call"),
    (lambda: Dense(3)([Input(3), Input(3)]), InvalidTypeError, r"takes one tensor. Received: a list of 2"),
    (lambda: Add()(Input(3)), InvalidTypeError, r"takes a list of tensors, e.g. Add\(\)\(\[a, b\]\)"),
    (lambda: Add()([Input(3)]), InvalidArgumentError, "takes a list of at least 2 tensors. Received: 1"),
    (lambda: Subtract()([Input(3)] * 3), InvalidArgumentError, "takes a list of exactly 2 tensors. Received: 3"),
    (_merge_of_mismatched_shapes, ShapeError, r"Received: \[None, 8\], \[None, 4\]"),
    (lambda: Concatenate()([Input(2, 3), Input(3, 3)]), ShapeError, "same shape except on the concatenation axis"),
    (lambda: Concatenate(axis=0)([Input(2), Input(2)]), InvalidArgumentError, r"axis 0 is the batch"),
    (lambda: Dot(axes=1)([Input(3), Input(4)]), ShapeError, "dotted axes to be the same size"),
    (lambda: Dot(axes=(1, 1, 1)), InvalidArgumentError, "an int or a pair of ints"),
    (lambda: Sequential.of(Input(3), Add()), InvalidArgumentError, "a Sequential model cannot hold it"),
    (
        _disconnected,
        InvalidArgumentError,
        r"Graph disconnected: outputs\[0\] \(Add layer output\) depends on Input of shape \[None, 3\]",
    ),
    (lambda: Functional(Dense(2)(Input(2)), Input(2)), InvalidTypeError, r"inputs\[0\]: Dense layer output"),
    (lambda: Functional(Input(2), [np.zeros(2)]), InvalidTypeError, r"outputs\[0\]: ndarray"),
]


@pytest.mark.parametrize("make, error, message", MISTAKES, ids=[m[2][:30] for m in MISTAKES])
def test_mistakes_are_refused_with_a_clear_message(
    make: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        make()


# --- the merge layers, one row each -----------------------------------------------------------------------------
@dataclass
class MergeCase:
    id: str
    make: Callable[[], Layer]
    input_shapes: list[tuple[int, ...]]
    output_shape: tuple[int, ...]
    reference: Callable[..., np.ndarray]


def _batch_dot(x: np.ndarray, y: np.ndarray, a: int, b: int) -> np.ndarray:
    out = np.stack([np.tensordot(xi, yi, axes=(a - 1, b - 1)) for xi, yi in zip(x, y, strict=True)])
    return out.reshape(len(x), -1) if out.ndim == 1 else out


def _normalized(x: np.ndarray, axis: int) -> np.ndarray:
    return x / np.maximum(np.sqrt(np.sum(x * x, axis=axis, keepdims=True)), 1e-7)


MERGES = [
    MergeCase("add", Add, [(3, 4), (3, 4), (3, 4)], (3, 4), lambda a, b, c: a + b + c),
    MergeCase("add_broadcast", Add, [(3, 4), (1, 4), (4,)], (3, 4), lambda a, b, c: a + b + c[:, None, :]),
    MergeCase("subtract", Subtract, [(5,), (5,)], (5,), lambda a, b: a - b),
    MergeCase("multiply", Multiply, [(2, 3), (2, 3)], (2, 3), lambda a, b: a * b),
    MergeCase("average", Average, [(4,), (4,), (4,)], (4,), lambda a, b, c: (a + b + c) / 3),
    MergeCase("maximum", Maximum, [(4,), (4,), (4,)], (4,), lambda a, b, c: np.maximum(np.maximum(a, b), c)),
    MergeCase("minimum", Minimum, [(2, 2), (2, 1)], (2, 2), np.minimum),
    MergeCase("concatenate", Concatenate, [(3,), (5,)], (8,), lambda a, b: np.concatenate([a, b], -1)),
    MergeCase(
        "concatenate_axis1",
        lambda: Concatenate(axis=1),
        [(2, 3), (4, 3)],
        (6, 3),
        lambda a, b: np.concatenate([a, b], 1),
    ),
    MergeCase("dot", lambda: Dot(axes=1), [(5,), (5,)], (1,), lambda a, b: _batch_dot(a, b, 1, 1)),
    MergeCase(
        "dot_axes_1_2",
        lambda: Dot(axes=(1, 2)),
        [(3, 5), (4, 3)],
        (5, 4),
        lambda a, b: _batch_dot(a, b, 1, 2),
    ),
    MergeCase("dot_vector_matrix", lambda: Dot(axes=(1, 2)), [(3,), (4, 3)], (4,), lambda a, b: _batch_dot(a, b, 1, 2)),
    MergeCase(
        "dot_normalize",
        lambda: Dot(axes=-1, normalize=True),
        [(2, 3), (4, 3)],
        (2, 4),
        lambda a, b: _batch_dot(_normalized(a, 2), _normalized(b, 2), 2, 2),
    ),
]


def merge_graph(case: MergeCase) -> tuple[Functional, Layer]:
    layer = case.make()
    inputs = [Input(*shape) for shape in case.input_shapes]
    return Functional(inputs, layer(inputs), seed=0), layer


@pytest.mark.parametrize("case", MERGES, ids=[case.id for case in MERGES])
def test_merge_layer(case: MergeCase) -> None:
    graph, layer = merge_graph(case)
    assert layer.output_shape == case.output_shape and layer.param_count == 0
    rebuilt = Layer.from_config(layer.serialize())
    assert type(rebuilt) is type(layer) and rebuilt.get_config() == layer.get_config()
    xs = [data(7, *shape, seed=i) for i, shape in enumerate(case.input_shapes)]
    (y,), _ = run(graph, *xs)
    assert y.shape == (7, *case.output_shape)
    np.testing.assert_allclose(y, case.reference(*[x.astype(np.float64) for x in xs]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", MERGES, ids=[case.id for case in MERGES])
def test_merge_layer_matches_keras(case: MergeCase) -> None:
    path = KERAS_FIXTURES / f"merge_{case.id}.npz"
    assert path.exists(), f"no Keras fixture {path.name}: run tools/keras_fixtures.py"
    with np.load(path) as fixture:
        xs = [fixture[f"x{i}"] for i in range(int(fixture["inputs"]))]
        expected = fixture["y"]
    graph, _ = merge_graph(case)
    np.testing.assert_allclose(run(graph, *xs)[0][0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(1, 3), min_size=1, max_size=3), min_size=2, max_size=3))
def test_elementwise_merges_broadcast_per_example_shapes_as_numpy_does(shapes: list[list[int]]) -> None:
    given = [tuple(shape) for shape in shapes]
    try:
        expected = np.broadcast_shapes(*given)
    except ValueError:
        with pytest.raises(ShapeError, match="expects inputs of the same shape"):
            broadcast_shapes(Add(), given)
    else:
        assert broadcast_shapes(Add(), given) == expected


def test_merges_of_channels_first_values_stay_channels_first() -> None:
    a, b = Input(4, 5, 2), Input(4, 5, 3)
    ca, cb = (Conv2D(n, 1, activation="linear", use_bias=False, name=f"conv_{n}") for n in (2, 3))
    joined = Concatenate()([ca(a), cb(b)])  # channels: axis 1 of the channels-first values
    rows = Concatenate(axis=1)([joined, joined])
    y = Add()([rows, Maximum()([rows, rows])])
    graph = Functional([a, b], y, seed=0)
    identity = {f"conv_{n}.kernel": np.eye(n, dtype=np.float32).reshape(n, n, 1, 1) for n in (2, 3)}
    graph.set_params_by_name(identity)  # 1x1 convolutions that keep the values: channels-first copies
    xa, xb = data(2, 4, 5, 2), data(2, 4, 5, 3, seed=1)
    (out,), builder = run(graph, xa, xb)
    expected_rows = np.concatenate([np.concatenate([xa, xb], -1)] * 2, axis=1)
    np.testing.assert_allclose(out, 2 * expected_rows, rtol=1e-6)
    concat_axes = [n.attribute[0].i for n in builder.nodes if n.op_type == "Concat"]
    assert concat_axes == [1, 2]  # channels-first axes of Keras' -1 and 1
    assert sum(n.op_type == "Transpose" for n in builder.nodes) == 3  # one per input, one for the output


# --- gradients through a merged graph ---------------------------------------------------------------------------
def test_autodiff_differentiates_a_merged_graph() -> None:
    a, b = Input(6, name="a"), Input(3, name="b")
    shared = Dense(6, activation="tanh")
    h = shared(a)
    s = Add()([h, a])
    m = Multiply()([s, h])
    av = Average()([Maximum()([m, a]), Minimum()([m, a]), s])
    h2 = shared(Subtract()([av, h]))  # the shared layer's second call
    d = Dot(axes=1, normalize=True)([h, a])
    y = Dense(2, activation="linear")(Concatenate()([h2, b, d]))
    graph = Functional([a, b], y, seed=3)
    params = graph.params_by_name()
    xa, xb = data(4, 6, seed=5), data(4, 3, seed=6)

    builder = GraphBuilder()
    inputs = [builder.add_input("a", np.float32, (None, 6)), builder.add_input("b", np.float32, (None, 3))]
    (out,) = graph.emit(builder, inputs)
    loss = builder.reduce("ReduceSum", out, None, keepdims=False, hint="loss")
    with builder.scope("backward"):
        grads = autodiff.backward(builder, loss, [*params, "a"])
    for name, grad in grads.items():
        builder.add_output(grad, f"d_{name}", np.float32, xa.shape if name == "a" else params[name].shape)
    session = ort.InferenceSession(builder.build().SerializeToString(), providers=["CPUExecutionProvider"])
    analytic = dict(zip(grads, session.run(None, {"a": xa, "b": xb}), strict=True))

    def forward(p: dict[str, np.ndarray], xa: np.ndarray) -> float:
        h = np.tanh(dense(p, "dense_1", xa))
        s = h + xa
        m = s * h
        av = (np.maximum(m, xa) + np.minimum(m, xa) + s) / 3
        h2 = np.tanh(dense(p, "dense_1", av - h))
        d = np.sum(_normalized(h, 1) * _normalized(xa, 1), axis=1, keepdims=True)
        return float(np.sum(dense(p, "dense_2", np.concatenate([h2, xb, d], axis=1))))

    p64 = {k: v.astype(np.float64) for k, v in params.items()}
    for name in [*params, "a"]:
        base = xa.astype(np.float64) if name == "a" else p64[name]
        numeric = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            shifted = []
            for step in (1e-6, -1e-6):
                value = base.copy()
                value[index] += step
                shifted.append(forward(p64, value) if name == "a" else forward({**p64, name: value}, xa))
            numeric[index] = (shifted[0] - shifted[1]) / 2e-6
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-3, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_dot_normalize_trains_through_an_all_zero_row(engine: str) -> None:
    """A row of zeros (a dead ReLU's) has norm 0: Dot(normalize=True) divides it by epsilon, and its gradient stays
    finite on both engines (ONNX Runtime's gradient graph made NaN of Sqrt's infinite slope at 0 before)."""
    a, b = Input(3, name="a"), Input(3, name="b")
    dead = Dense(3, activation="relu", kernel_initializer="zeros", bias_initializer="zeros")(a)
    y = Dense(1, activation="linear")(Dot(axes=1, normalize=True)([dead, b]))
    x = [data(8, 3, seed=1), data(8, 3, seed=2)]
    with Model(inputs=[a, b], outputs=y, seed=0) as model:
        model.compile(optimizer="sgd", loss="mse", engine=engine)
        history = model.fit(x, data(8, 1, seed=3), epochs=2, verbose=0)
        weights = model.get_weights()
    assert all(np.isfinite(loss) for loss in history.history["loss"])
    assert all(np.isfinite(value).all() for value in weights.values())
