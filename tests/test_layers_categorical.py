"""IntegerLookup, CategoryEncoding, Hashing and Discretization: the layer harness against numpy references of
Keras 3's semantics (keras/src/layers/preprocessing/*), Keras' own documented examples, adapt (order, ties,
max_tokens, bad data), and models of integer inputs through fit, evaluate, predict, save/load and the export run by
plain ONNX Runtime. No Keras fixtures: Keras' IntegerLookup and Hashing need TensorFlow, and Hashing's bins are
onnxtrain's own (docs/layers.md, "Categorical features")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from layer_harness import LayerCase, check_reference, check_training_and_export

from onnxtrain import Model, Sequential, load_model
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelStateError, ShapeError, UnsupportedError
from onnxtrain.layers import (
    CategoryEncoding,
    Concatenate,
    Dense,
    Discretization,
    Embedding,
    Flatten,
    Hashing,
    Input,
    IntegerLookup,
    Layer,
    Normalization,
)
from onnxtrain.layers._hashing import PRIME, hash_bins, hash_keys


# --- numpy references of Keras' semantics ------------------------------------------------------------------------
def keras_indices(x, tokens, num_oov=1, mask=None, int_mode=True):
    """Keras' IndexLookup._lookup_dense: mask -> 0 ("int") or nothing; OOV -> oov_start + x mod num_oov."""
    oov_start = 1 if mask is not None and int_mode else 0
    table = {t: oov_start + num_oov + i for i, t in enumerate(tokens)}
    oov = [oov_start + (int(v) % num_oov if num_oov > 1 else 0) for v in np.ravel(x)]
    out = np.array([table.get(int(v), o) for v, o in zip(np.ravel(x), oov, strict=True)]).reshape(np.shape(x))
    return np.where(np.asarray(x) == mask, 0 if int_mode else -1, out) if mask is not None else out


def keras_encode(indices, depth, mode):
    """Keras' encode_categorical_inputs (an index outside [0, depth) sets no value)."""
    indices = np.asarray(indices)
    if mode == "int":
        return indices.astype(np.float64)
    if mode == "one_hot" and indices.shape[-1] == 1:
        indices = indices[..., 0]
    hot = (indices[..., None] == np.arange(depth)).astype(np.float64)
    return hot if mode == "one_hot" else hot.max(axis=-2) if mode == "multi_hot" else hot.sum(axis=1)


def lookup_reference(tokens, num_oov=1, mask=None, mode="int", depth=None):
    def reference(layer, x):
        indices = keras_indices(x, tokens, num_oov, mask, mode == "int")
        return keras_encode(indices, depth or layer.vocabulary_size(), mode)

    return reference


def adapted_lookup() -> IntegerLookup:
    layer = IntegerLookup()
    layer.adapt(np.random.default_rng(4).integers(0, 5, size=(40, 2)))
    return layer


def adapted_discretization() -> Discretization:
    layer = Discretization(num_bins=4, output_mode="one_hot")
    layer.adapt(np.random.default_rng(5).normal(size=(60, 1)))
    return layer


CASES = [
    LayerCase("lookup_int", lambda: IntegerLookup(vocabulary=[4, 1, 3]), (3,), (3,), 0,
              lookup_reference([4, 1, 3]), input_range=(0, 6), integer_inputs=True),
    LayerCase("lookup_one_hot", lambda: IntegerLookup(vocabulary=[4, 1, 3], output_mode="one_hot"), (1,), (4,), 0,
              lookup_reference([4, 1, 3], mode="one_hot"), input_range=(0, 6), integer_inputs=True),
    LayerCase("lookup_multi_hot_mask_oov2",
              lambda: IntegerLookup(vocabulary=[4, 1, 3], mask_token=0, num_oov_indices=2, output_mode="multi_hot"),
              (5,), (5,), 0, lookup_reference([4, 1, 3], 2, 0, "multi_hot"), input_range=(-3, 7), integer_inputs=True),
    LayerCase("lookup_int_mask_oov3",
              lambda: IntegerLookup(vocabulary=[4, 1, 3], mask_token=0, num_oov_indices=3), (2, 3), (2, 3), 0,
              lookup_reference([4, 1, 3], 3, 0), input_range=(-9, 9), integer_inputs=True),
    LayerCase("lookup_count_padded",
              lambda: IntegerLookup(vocabulary=[2, 5], output_mode="count", max_tokens=6, pad_to_max_tokens=True),
              (4,), (6,), 0, lookup_reference([2, 5], mode="count", depth=6), input_range=(0, 7), integer_inputs=True),
    LayerCase("lookup_adapted", adapted_lookup, (2,), (2,), 0,
              lambda layer, x: keras_indices(x, layer.get_vocabulary(False)).astype(np.float64),
              input_range=(-1, 7), integer_inputs=True),
    LayerCase("category_one_hot", lambda: CategoryEncoding(5, "one_hot"), (2,), (2, 5), 0,
              lambda _, x: keras_encode(x.astype(int), 5, "one_hot"), input_range=(0, 5), integer_inputs=True),
    LayerCase("category_multi_hot", lambda: CategoryEncoding(5), (3,), (5,), 0,
              lambda _, x: keras_encode(x.astype(int), 5, "multi_hot"), input_range=(0, 5), integer_inputs=True),
    LayerCase("category_multi_hot_rank2", lambda: CategoryEncoding(4), (2, 3), (2, 4), 0,
              lambda _, x: keras_encode(x.astype(int), 4, "multi_hot"), input_range=(0, 4), integer_inputs=True),
    LayerCase("category_count", lambda: CategoryEncoding(5, "count"), (3,), (5,), 0,
              lambda _, x: keras_encode(x.astype(int), 5, "count"), input_range=(0, 5), integer_inputs=True),
    LayerCase("hashing_int", lambda: Hashing(7), (3,), (3,), 0, lambda _, x: hash_bins(x, 7).astype(np.float64),
              input_range=(-1000, 1000), integer_inputs=True),
    LayerCase("hashing_one_hot_mask_salt", lambda: Hashing(6, mask_value=0, salt=[3, 9], output_mode="one_hot"),
              (1,), (6,), 0, lambda _, x: keras_encode(hash_bins(x, 6, [3, 9], 0), 6, "one_hot"),
              input_range=(-3, 3), integer_inputs=True),
    LayerCase("discretization_int", lambda: Discretization([0.0, 0.5, 1.0]), (3,), (3,), 0,
              lambda _, x: np.digitize(x, [0.0, 0.5, 1.0]).astype(np.float64), input_range=(-1, 2)),
    LayerCase("discretization_adapted_one_hot", adapted_discretization, (1,), (4,), 0,
              lambda layer, x: keras_encode(np.digitize(x, np.float32(layer.bin_boundaries)), 4, "one_hot")),
]  # fmt: skip
IDS = [case.id for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_layer_forward_matches_numpy(case: LayerCase) -> None:
    check_reference(case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_layer_trains_and_exports(case: LayerCase, engine: str, tmp_path: Path) -> None:
    check_training_and_export(case, tmp_path, engine)


# --- Keras' own examples (its docstrings and tests) --------------------------------------------------------------
def test_integer_lookup_adapts_as_keras_does():
    data = [1, 1, 1, 2, 2, 3]
    lookup = IntegerLookup()
    lookup.adapt(data)
    assert lookup.get_vocabulary() == [-1, 1, 2, 3]
    np.testing.assert_array_equal(lookup(np.array([[1, 2, 4], [2, 3, 5]])), [[1, 2, 0], [2, 3, 0]])
    one_hot = IntegerLookup(output_mode="one_hot")
    one_hot.adapt(data)
    np.testing.assert_array_equal(one_hot(np.array([[1], [2], [4]])), [[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]])
    multi_hot = IntegerLookup(output_mode="multi_hot")
    multi_hot.adapt(data)
    np.testing.assert_array_equal(multi_hot(np.array([[1, 2, 4]])), [[1, 1, 1, 0]])
    count = IntegerLookup(output_mode="count")
    count.adapt(data)
    np.testing.assert_array_equal(count(np.array([[1, 2, 3, 4, 1, 2, 1]])), [[1, 3, 2, 1]])


def test_integer_lookup_keras_examples_of_given_vocabularies():
    np.testing.assert_array_equal(
        IntegerLookup(vocabulary=[1, 2, 3], mask_token=0)(np.array([[0, 1, 2, 3]])), [[0, 2, 3, 4]]
    )
    out = IntegerLookup(vocabulary=[1, 2, 3], num_oov_indices=2)(np.array([[1, 2, 3, 999, 1000]]))
    np.testing.assert_array_equal(out, [[2, 3, 4, 999 % 2, 1000 % 2]])
    one_hot = IntegerLookup(vocabulary=[1, 2, 3], output_mode="one_hot")(np.array([[1, 2], [3, 0]]))
    np.testing.assert_array_equal(one_hot, [[[0, 1, 0, 0], [0, 0, 1, 0]], [[0, 0, 0, 1], [1, 0, 0, 0]]])
    padded = IntegerLookup(vocabulary=[1, 2], output_mode="multi_hot", max_tokens=5, pad_to_max_tokens=True)
    assert padded(np.array([[1, 2]])).shape == (1, 5)


def test_category_encoding_keras_examples():
    np.testing.assert_array_equal(
        CategoryEncoding(4, "one_hot")(np.array([[3], [2], [0], [1]])), np.eye(4)[[3, 2, 0, 1]]
    )
    ids = np.array([[0, 1], [0, 0], [1, 2], [3, 1]])
    np.testing.assert_array_equal(
        CategoryEncoding(4, "multi_hot")(ids), [[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1]]
    )
    np.testing.assert_array_equal(
        CategoryEncoding(4, "count")(ids), [[1, 1, 0, 0], [2, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1]]
    )


@pytest.mark.parametrize(
    ("mode", "x", "expected"),
    [
        ("int", [[-1.0, 0.0, 0.1, 0.8, 1.2]], [[0, 1, 1, 2, 3]]),
        ("one_hot", [[0.1], [0.8]], [[0, 1, 0, 0], [0, 0, 1, 0]]),
        ("multi_hot", [[0.1, 0.8]], [[0, 1, 1, 0]]),
        ("multi_hot", [[[0.15, 0.75], [0.85, 0.45]]], [[[0, 1, 1, 0], [0, 1, 1, 0]]]),
        ("count", [[0.1, 0.8, 0.9]], [[0, 1, 2, 0]]),
    ],
)
def test_discretization_keras_examples(mode, x, expected):
    layer = Discretization(bin_boundaries=[0.0, 0.5, 1.0], output_mode=mode)
    np.testing.assert_array_equal(layer(np.array(x, np.float32)), expected)


def test_discretization_adapt_gives_keras_documented_bins():
    x = np.array([[-1.5, 1.0, 3.4, 0.5], [0.0, 3.0, 1.3, 0.0]])
    layer = Discretization(num_bins=4, epsilon=0.01)
    layer.adapt(x)
    np.testing.assert_array_equal(layer(x.astype(np.float32)), [[0, 2, 3, 2], [1, 3, 3, 1]])


def test_discretization_adapt_approximates_quantiles_and_takes_batches():
    data = np.random.default_rng(0).uniform(0, 1, size=(4000, 1))
    layer = Discretization(num_bins=4)
    layer.adapt(np.split(data, 4))
    np.testing.assert_allclose(layer.bin_boundaries, np.quantile(data, [0.25, 0.5, 0.75]), atol=0.03)


# --- adapt and vocabularies --------------------------------------------------------------------------------------
def test_adapt_orders_by_count_then_larger_token_and_drops_special_tokens():
    layer = IntegerLookup(mask_token=0, max_tokens=6)
    layer.adapt([np.array([7, 7, 3, 3, 9, 0, 0, 0, -1, -1, -1]), np.array([[5, 12], [1, 9]])])
    # counts: 9:2, 7:2, 3:2, then 12, 5, 1 once each; 6 indices = mask + OOV + 4 tokens
    assert layer.get_vocabulary() == [0, -1, 9, 7, 3, 12]
    assert layer.get_vocabulary(include_special_tokens=False) == [9, 7, 3, 12]
    assert layer.vocabulary_size() == 6


def test_adapted_vocabulary_is_in_the_config_and_rebuilds_the_same_layer():
    layer = adapted_lookup()
    rebuilt = Layer.from_config(layer.serialize())
    assert rebuilt.get_config() == layer.get_config()
    x = np.arange(-2, 8).reshape(5, 2)
    np.testing.assert_array_equal(rebuilt(x), layer(x))
    discretization = adapted_discretization()
    config = discretization.get_config()
    assert config["num_bins"] == 4 and len(config["bin_boundaries"]) == 3
    assert Discretization.from_config(config).get_config() == config


def test_given_vocabulary_may_start_with_the_special_tokens():
    assert IntegerLookup(vocabulary=[0, -1, 5, 6], mask_token=0).get_vocabulary() == [0, -1, 5, 6]
    assert IntegerLookup(vocabulary=[-1, 5, 6]).get_vocabulary(False) == [5, 6]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: IntegerLookup(vocabulary=[1, 2, 1]), InvalidArgumentError, r"distinct tokens.*repeated \[1\]"),
        (lambda: IntegerLookup(vocabulary=[1, 0], mask_token=0), InvalidArgumentError, "holds the mask token 0"),
        (  # Keras: "Found reserved OOV token at unexpected location"; leading [0, -1] would be the special tokens
            lambda: IntegerLookup(vocabulary=[-1, 1, 2], mask_token=0),
            InvalidArgumentError,
            r"holds the OOV token -1 after its leading special tokens \[0, -1\]",
        ),
        (lambda: IntegerLookup(vocabulary=[1, 2, 3], max_tokens=3), InvalidArgumentError, "more than max_tokens=3"),
        (lambda: IntegerLookup(vocabulary=[1.5]), InvalidArgumentError, "integer tokens. Received: 1.5"),
        (lambda: IntegerLookup(vocabulary=["a"]), InvalidTypeError, "Received: dtype <U1"),
        (lambda: IntegerLookup(max_tokens=1), InvalidArgumentError, r"max_tokens=...\) expects an int > 1"),
        (lambda: IntegerLookup(num_oov_indices=0), InvalidArgumentError, "expects an int >= 1"),
        (lambda: IntegerLookup(invert=True), UnsupportedError, "invert=True"),
        (lambda: IntegerLookup(output_mode="tf_idf"), InvalidArgumentError, "output_mode='tf_idf'"),
        (lambda: IntegerLookup(pad_to_max_tokens=True), InvalidArgumentError, "needs max_tokens"),
        (lambda: CategoryEncoding(0), InvalidArgumentError, "num_tokens=0"),
        (lambda: CategoryEncoding(3, output_mode="int"), InvalidArgumentError, "output_mode='int'"),
        (lambda: CategoryEncoding(3, sparse=True), UnsupportedError, "sparse=True"),
        (lambda: Hashing(1, mask_value=0), InvalidArgumentError, "num_bins >= 2"),
        (lambda: Hashing(4, salt="x"), InvalidArgumentError, "salt='x'"),
        (lambda: Discretization(), InvalidArgumentError, "either bin_boundaries or num_bins"),
        (lambda: Discretization([0.0, 1.0], num_bins=3), InvalidArgumentError, "either bin_boundaries or num_bins"),
        (lambda: Discretization([1.0, 0.0]), InvalidArgumentError, "increasing numbers"),
        (lambda: Discretization([0.0, float("nan")]), InvalidArgumentError, "finite, increasing"),
    ],
)
def test_bad_arguments_fail_with_clear_messages(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    ("make", "data", "error", "message"),
    [
        (IntegerLookup, np.array([1.0, np.nan]), InvalidArgumentError, "integer tokens. Received: nan"),
        (IntegerLookup, np.array([1.0, 2.5]), InvalidArgumentError, "integer tokens. Received: 2.5"),
        (IntegerLookup, np.array(["a", "b"]), InvalidTypeError, "map strings to ints first"),
        (IntegerLookup, np.array([True]), InvalidTypeError, "dtype bool"),
        (IntegerLookup, np.array([-1, -1]), InvalidArgumentError, "at least one token"),
        (lambda: IntegerLookup(vocabulary=[1]), np.array([1]), InvalidArgumentError, "was given a vocabulary"),
        (lambda: Discretization(num_bins=3), np.array([0.0, np.nan]), InvalidArgumentError, "finite numbers"),
        (lambda: Discretization(num_bins=3), np.array(["a"]), InvalidTypeError, "expects numbers"),
        (lambda: Discretization(num_bins=3), np.zeros((0, 1)), InvalidArgumentError, "at least one value"),
        (lambda: Discretization([0.5]), np.array([1.0]), InvalidArgumentError, "create it with num_bins"),
    ],
)
def test_adapt_refuses_bad_data_clearly(make, data, error, message):
    with pytest.raises(error, match=message):
        make().adapt(data)


def test_adapt_is_refused_once_the_layer_is_in_a_model():
    lookup, discretization = IntegerLookup(), Discretization(num_bins=2)
    Sequential([Input(1, dtype="int64"), lookup])
    Sequential([Input(1), discretization])
    with pytest.raises(ModelStateError, match="adapt before making the model"):
        lookup.adapt([1, 2])
    with pytest.raises(ModelStateError, match="adapt before making it"):
        discretization.adapt([1.0, 2.0])


def test_encodings_that_need_a_vocabulary_or_one_axis_say_so():
    with pytest.raises(ModelStateError, match="give it vocabulary"):
        Sequential([Input(1, dtype="int64"), IntegerLookup(output_mode="one_hot")])
    with pytest.raises(ModelStateError, match=r"has no vocabulary \(every token would map to an OOV index\)"):
        IntegerLookup()(np.array([[1], [2]]))  # "int" mode: was an ONNX shape-inference error
    with pytest.raises(ModelStateError, match="has no vocabulary"):
        Sequential([Input(1, dtype="int64"), IntegerLookup(), Dense(2)]).predict(np.array([[1], [2]]))
    with pytest.raises(ShapeError, match="counts one axis of ids"):
        Sequential([Input(2, 3, dtype="int64"), CategoryEncoding(4, "count")])


# --- Hashing -----------------------------------------------------------------------------------------------------
def test_hashing_graph_matches_its_numpy_formula_over_the_whole_int64_range():
    info = np.iinfo(np.int64)
    x = np.concatenate([np.arange(-50, 50), [info.min, info.min + 1, info.max, 2**31, 2**31 - 1, -(2**31), 10**15]])
    layer = Hashing(1000, salt=7)
    np.testing.assert_array_equal(layer(x[:, None].astype(np.int64))[:, 0], hash_bins(x, 1000, 7))
    a, b = hash_keys(7)  # the documented formula in Python integers
    expected = [(((v >> 31) % PRIME * a * a + (v % 2**31) % PRIME * a + b) % PRIME) % 1000 for v in x.tolist()]
    np.testing.assert_array_equal(hash_bins(x, 1000, 7), expected)


def test_hashing_spreads_tokens_and_its_salt_picks_another_hash():
    x = np.arange(100_000)
    counts = np.bincount(hash_bins(x, 10), minlength=10)
    assert counts.min() > 9_000 and counts.max() < 11_000, counts
    assert (hash_bins(x, 10, salt=1) != hash_bins(x, 10)).mean() > 0.8
    masked = hash_bins(np.array([0, 1, 2, 3]), 4, mask_value=0)
    assert masked[0] == 0 and (masked[1:] >= 1).all()


# --- models of integer inputs -------------------------------------------------------------------------------------
def _exported_probabilities(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The export run by plain ONNX Runtime: its logits, as softmax probabilities (what predict_softly gives)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, feeds)[0]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_lookup_feeds_an_embedding_through_fit_save_load_and_export(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.choice([3, 7, 11, 100, 5000], size=(96, 1)).astype(np.int64)
    y = (x[:, 0] > 50).astype(np.int64)
    lookup = IntegerLookup()
    lookup.adapt(x)
    with Sequential(
        [Input(1, dtype="int64"), lookup, Embedding(lookup.vocabulary_size(), 4), Flatten(), Dense(2, "linear")],
        seed=1,
    ) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        losses = model.fit(x, y, epochs=15, batch_size=16, verbose=0).history["loss"]
        assert losses[-1] < losses[0]
        model.evaluate(x, y, verbose=0)
        unseen = np.array([[7], [123456789012], [-5]], np.int64)  # out of the vocabulary: index 0, never refused
        expected = model.predict_softly(unseen)
        np.testing.assert_array_equal(expected[1], expected[2])
        model.save(tmp_path / "saved")
        model.export(tmp_path / "model.onnx")
    with load_model(tmp_path / "saved") as loaded:
        np.testing.assert_allclose(loaded.predict_softly(unseen), expected, rtol=1e-6)
        assert loaded.layers[1].get_vocabulary() == lookup.get_vocabulary()
    np.testing.assert_allclose(_exported_probabilities(tmp_path / "model.onnx", {"input": unseen}), expected, rtol=1e-5)


def test_functional_model_of_several_categorical_and_numeric_inputs(tmp_path):
    rng = np.random.default_rng(1)
    n = 128
    city = rng.choice([10, 20, 30, 40], size=(n, 1)).astype(np.int64)
    user = rng.integers(0, 10**9, size=(n, 1)).astype(np.int64)
    age = rng.uniform(18, 80, size=(n, 1)).astype(np.float32)
    y = ((city[:, 0] == 20) | (age[:, 0] > 60)).astype(np.int64)
    lookup, bins, norm = (
        IntegerLookup(output_mode="one_hot"),
        Discretization(num_bins=4, output_mode="one_hot"),
        Normalization(),
    )
    lookup.adapt(city)
    bins.adapt(age)
    norm.adapt(age)
    inputs = [Input(1, dtype="int64", name="city"), Input(1, dtype="int64", name="user"), Input(1, name="age")]
    features = Concatenate()(
        [lookup(inputs[0]), Hashing(8, output_mode="one_hot")(inputs[1]), bins(inputs[2]), norm(inputs[2])]
    )
    with Model(inputs, Dense(2, "linear")(Dense(8, "relu")(features)), seed=2) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        losses = model.fit([city, user, age], y, epochs=10, batch_size=32, verbose=0).history["loss"]
        assert losses[-1] < losses[0]
        expected = model.predict_softly([city, user, age])
        model.save(tmp_path / "saved")
        model.export(tmp_path / "model.onnx")
    with load_model(tmp_path / "saved") as loaded:
        np.testing.assert_allclose(loaded.predict_softly([city, user, age]), expected, rtol=1e-5, atol=1e-6)
    exported = _exported_probabilities(tmp_path / "model.onnx", {"city": city, "user": user, "age": age})
    np.testing.assert_allclose(exported, expected, rtol=1e-5, atol=1e-6)


# --- Normalization: weights after adapt, invert ---------------------------------------------------------------------
def test_normalization_get_weights_reflect_adapt_before_the_layer_is_in_a_model():
    x = np.random.default_rng(2).normal(3.0, 2.0, size=(200, 3))
    layer = Normalization()
    assert layer.get_weights() == []
    layer.adapt(x)
    mean, variance = layer.get_weights()
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(variance, x.var(axis=0), rtol=1e-5)
    assert [w.trainable for w in layer.weights] == [False, False]
    layer.set_weights([np.zeros(3), np.full(3, 4.0)])
    model = Sequential([Input(3), layer])
    np.testing.assert_allclose(model.predict(np.ones((1, 3), np.float32)), [[0.5, 0.5, 0.5]])
    np.testing.assert_array_equal(layer.get_weights()[1], [4.0, 4.0, 4.0])


def test_normalization_invert_undoes_an_adapted_normalization():
    x = np.random.default_rng(3).normal(5.0, 3.0, size=(50, 2, 3)).astype(np.float32)
    forward, inverse = Normalization(axis=(1, 2)), Normalization(axis=(1, 2), invert=True)
    forward.adapt(x)
    inverse.adapt(x)
    np.testing.assert_allclose(inverse(forward(x)), x, rtol=1e-5, atol=1e-5)


def test_an_assigned_vocabulary_or_boundaries_is_checked_and_used():
    layer = IntegerLookup(vocabulary=[1, 2])
    layer.vocabulary = [5, 6]
    assert layer.get_config()["vocabulary"] == [5, 6]
    np.testing.assert_array_equal(layer(np.array([[5, 1]])), [[1, 0]])
    with pytest.raises(InvalidArgumentError, match="distinct tokens"):
        layer.vocabulary = [5, 5]
    one_hot = IntegerLookup(vocabulary=[1, 2], output_mode="one_hot")
    Sequential([Input(1, dtype="int64"), one_hot])
    with pytest.raises(ShapeError, match="output shape would be"):
        one_hot.vocabulary = [1, 2, 3]
    discretization = Discretization([0.0, 1.0])
    discretization.bin_boundaries = [2.0]
    np.testing.assert_array_equal(discretization(np.array([[1.0, 3.0]], np.float32)), [[0, 1]])
