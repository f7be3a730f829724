"""Initializers: the documented distributions, seeding, and the registry."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Sequential, initializers
from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError
from onnxtrain.initializers import (
    Constant,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    LeCunNormal,
    LeCunUniform,
    Ones,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    Zeros,
)
from onnxtrain.layers import (
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Dense,
    DepthwiseConv2D,
    Embedding,
    Flatten,
    Input,
    SeparableConv2D,
)

FAN_IN, FAN_OUT = 400, 200
SHAPE = (FAN_IN, FAN_OUT)

# (initializer, expected std, bound on |value| or None)
STATS = [
    (HeNormal(), np.sqrt(2 / FAN_IN), 2 * np.sqrt(2 / FAN_IN) / 0.8796),
    (HeUniform(), np.sqrt(6 / FAN_IN) / np.sqrt(3), np.sqrt(6 / FAN_IN)),
    (GlorotNormal(), np.sqrt(2 / (FAN_IN + FAN_OUT)), 2 * np.sqrt(2 / (FAN_IN + FAN_OUT)) / 0.8796),
    (GlorotUniform(), np.sqrt(6 / (FAN_IN + FAN_OUT)) / np.sqrt(3), np.sqrt(6 / (FAN_IN + FAN_OUT))),
    (LeCunNormal(), np.sqrt(1 / FAN_IN), 2 * np.sqrt(1 / FAN_IN) / 0.8796),
    (LeCunUniform(), np.sqrt(3 / FAN_IN) / np.sqrt(3), np.sqrt(3 / FAN_IN)),
    (RandomNormal(0.0, 0.05), 0.05, None),
    (TruncatedNormal(0.0, 0.05), 0.05 * 0.8796, 0.1),  # Keras': cut at two standard deviations, not rescaled
    (RandomUniform(-0.05, 0.05), 0.1 / np.sqrt(12), 0.05),
]


@pytest.mark.parametrize(("init", "std", "bound"), STATS, ids=[type(s[0]).__name__ for s in STATS])
def test_initializer_distribution(init, std, bound):
    values = init(SHAPE, FAN_IN, FAN_OUT, np.random.default_rng(0))
    assert values.dtype == np.float32 and values.shape == SHAPE
    assert abs(values.mean()) < 0.05 * std * 10
    assert values.std() == pytest.approx(std, rel=0.03)
    if bound is not None:
        assert np.abs(values).max() <= bound * (1 + 1e-6)


@pytest.mark.parametrize("shape", [(3, 12), (12, 3), (2, 3, 4), (5, 5)])
def test_orthogonal_rows_or_columns_are_orthonormal_as_in_keras(shape):
    """Keras' reading of the shape: every axis but the last are rows; the fewer of rows and columns are orthonormal."""
    values = Orthogonal(gain=2.0)(shape, 1, 1, np.random.default_rng(0))
    assert values.dtype == np.float32 and values.shape == shape
    matrix = values.reshape(-1, shape[-1]) / 2.0
    small = matrix @ matrix.T if matrix.shape[0] <= matrix.shape[1] else matrix.T @ matrix
    np.testing.assert_allclose(small, np.eye(len(small)), atol=1e-5)


def test_orthogonal_is_seeded_registered_and_refuses_vectors():
    a = Orthogonal(seed=4)((4, 4), 4, 4, np.random.default_rng(1))
    np.testing.assert_array_equal(a, Orthogonal(seed=4)((4, 4), 4, 4, np.random.default_rng(2)))
    assert initializers.get("orthogonal") == Orthogonal()
    assert initializers.get(Orthogonal(0.5, 3).get_config()) == Orthogonal(0.5, 3)
    with pytest.raises(InvalidArgumentError, match=r"Orthogonal .* two or more axes. Received: shape=\(5,\)"):
        Orthogonal()((5,), 5, 5, np.random.default_rng(0))
    with pytest.raises(InvalidArgumentError, match=r"Orthogonal\(gain=...\) expects a finite number.*gain='x'"):
        Orthogonal(gain="x")


def test_constant_initializers():
    rng = np.random.default_rng(0)
    assert not Zeros()((2, 2), 2, 2, rng).any()
    assert (Ones()((2, 2), 2, 2, rng) == 1).all()
    assert (Constant(0.5)((3,), 2, 3, rng) == 0.5).all()


def test_initializer_seed_gives_identical_values_whatever_the_generator():
    a = HeNormal(seed=3)((5, 5), 5, 5, np.random.default_rng(1))
    b = HeNormal(seed=3)((5, 5), 5, 5, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)


def test_model_seed_gives_bit_identical_weights_and_other_seeds_differ():
    def weights(seed):
        return Sequential.of(Input(28, 28, 1), Flatten(), Dense(30), Dense(10), seed=seed).get_weights()

    first, again, other = weights(12), weights(12), weights(13)
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
        assert not np.array_equal(first[name], other[name])


def test_default_seed_is_random_and_recorded():
    a = Sequential.of(Input(3), Dense(2))
    b = Sequential.of(Input(3), Dense(2), seed=a.seed)
    np.testing.assert_array_equal(a.get_weights()["dense_1.kernel"], b.get_weights()["dense_1.kernel"])


def test_registry_names_classes_configs():
    assert initializers.get("he_normal") == HeNormal()
    assert initializers.get("HeNormal") == HeNormal()
    assert initializers.get("GlorotUniform") == GlorotUniform()
    assert initializers.get(LeCunNormal) == LeCunNormal()
    assert initializers.get("xavier_normal") == GlorotNormal()
    assert initializers.get(RandomNormal(0.1, 0.2, 4).get_config()) == RandomNormal(0.1, 0.2, 4)
    assert initializers.get("truncated_normal") == initializers.get("TruncatedNormal") == TruncatedNormal()
    assert initializers.get(TruncatedNormal(0.1, 0.2, 4).get_config()) == TruncatedNormal(0.1, 0.2, 4)
    assert initializers.get(HeUniform(seed=9).get_config()) == HeUniform(seed=9)
    assert Dense(3, kernel_initializer="zeros").kernel_initializer == Zeros()


@pytest.mark.parametrize(
    ("factory", "error", "message"),
    [
        (
            lambda: initializers.get("he_norm"),
            UnknownIdentifierError,
            "Could not interpret initializer 'he_norm'",
        ),
        (lambda: initializers.get(1.5), UnknownIdentifierError, "Could not interpret initializer 1.5"),
        (lambda: RandomNormal(stddev=0), InvalidArgumentError, r"stddev=0"),
        (lambda: RandomUniform(1, 0), InvalidArgumentError, r"minval < maxval"),
        (lambda: Constant(float("nan")), InvalidArgumentError, r"finite number"),
    ],
)
def test_bad_initializers(factory, error, message):
    with pytest.raises(error, match=message):
        factory()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RandomUniform("a", "b"), r"RandomUniform\(minval=...\) expects a finite number.*Received: minval='a'"),
        (lambda: RandomUniform(0, "b"), r"RandomUniform\(maxval=...\) .*Received: maxval='b'"),
        (
            lambda: RandomNormal(seed=1.5),
            r"RandomNormal\(seed=...\) expects a non-negative int or None. Received: seed=1.5",
        ),
        (lambda: RandomNormal(seed=-1), r"Received: seed=-1"),
        (lambda: HeNormal(seed=True), r"HeNormal\(seed=...\) .*Received: seed=True"),
        (
            lambda: RandomNormal(mean=float("nan")),
            r"RandomNormal\(mean=...\) expects a finite number.*Received: mean=nan",
        ),
        (lambda: Constant(1e300), r"Constant\(value=...\) .*within float32 range.*Received: value=1e\+300"),
        (lambda: Constant(10**400), r"Constant\(value=...\) .*within float32 range"),
        (lambda: RandomNormal(stddev=1e300), r"RandomNormal\(stddev=...\) .*Received: stddev=1e\+300"),
        (lambda: RandomUniform(-1e300, 1e300), r"RandomUniform\(minval=...\) .*Received: minval=-1e\+300"),
        (lambda: VarianceScaling(scale=1e300), r"VarianceScaling\(scale=...\) .*Received: scale=1e\+300"),
        (lambda: VarianceScaling(mode="fan"), r"VarianceScaling\(mode=...\) .*Received: mode='fan'"),
    ],
)
def test_bad_initializer_arguments_fail_at_construction(make, message):
    with pytest.raises(InvalidArgumentError, match=message):
        make()


def test_weights_that_overflow_float32_fail_naming_the_initializer():
    # Each argument fits in float32, but mean + a few stddevs does not.
    init = RandomNormal(mean=3e38, stddev=3e38, seed=0)
    with pytest.raises(
        InvalidArgumentError,
        match=r"RandomNormal produced non-finite float32 weights .* for shape \(64,\).*mean=3e\+38",
    ):
        init((64,), 1, 64, np.random.default_rng(0))


def test_numpy_scalar_arguments_are_stored_as_python_numbers():
    init = RandomNormal(np.float32(0.5), np.float64(0.25), np.int64(3))
    assert (type(init.mean), type(init.stddev), type(init.seed)) == (float, float, int)
    assert init == RandomNormal(0.5, 0.25, 3)
    assert (Constant(np.int32(2))((2,), 1, 2, np.random.default_rng(0)) == 2).all()


def test_variance_scaling_config_keeps_its_settings():
    init = VarianceScaling(scale=3.0, mode="fan_out", distribution="uniform", seed=1)
    assert initializers.get(init.get_config()) == init


def test_seeded_draws_are_pinned():
    # Weights are drawn in float64 and cast: float32 draws would be other numbers, and every seeded model (the
    # tutorial's accuracy among them) would change.
    rng = np.random.default_rng(0)
    pinned = {
        HeNormal(seed=3): [[-0.5145931243896484, -0.24510103464126587], [0.47531452775001526, -0.6454672813415527]],
        GlorotUniform(seed=3): [[-1.0149481296539307, -0.6446799635887146], [0.7379686832427979, 0.20125506818294525]],
        RandomNormal(seed=3): [
            [0.1020459532737732, -0.12778325378894806],
            [0.020904941484332085, -0.028388479724526405],
        ],
    }
    for init, values in pinned.items():
        np.testing.assert_array_equal(init((2, 2), 2, 2, rng), np.array(values, np.float32))


class _ExhaustedGenerator:
    """Stands in for a numpy Generator on a machine without the memory for the draws."""

    def standard_normal(self, *args: object, **kwargs: object) -> np.ndarray:
        raise MemoryError("Unable to allocate 74.5 GiB for an array with shape (100000, 100000) and data type float64")

    uniform = normal = standard_normal


@pytest.mark.parametrize("init", [HeNormal(), GlorotUniform(), RandomNormal()], ids=lambda i: type(i).__name__)
def test_weights_beyond_memory_are_a_clear_error_naming_shape_and_size(init):
    with pytest.raises(InvalidArgumentError) as caught:
        init((100000, 100000), 100000, 100000, _ExhaustedGenerator())
    assert str(caught.value).startswith(
        f"{type(init).__name__} ran out of memory creating weights of shape (100000, 100000) (10,000,000,000 values): "
        "they take 37.3 GiB as float32, and about 111.8 GiB while they are drawn"
    )
    assert isinstance(caught.value.__cause__, MemoryError)


def test_a_model_too_big_for_memory_fails_on_its_own_line(monkeypatch):
    def exhausted(*args: object) -> np.ndarray:
        raise MemoryError

    monkeypatch.setattr(initializers, "truncated_normal", exhausted)  # HeNormal's draw, without 75 GB of memory
    with pytest.raises(InvalidArgumentError, match=r"HeNormal ran out of memory .* shape \(100000, 100000\)"):
        Sequential([Input(100000), Dense(100000)])


# What Keras 3.15 draws for these kernels (tools/keras_initializer_facts.py): Keras' kernel shape (*window, in, out),
# the std of its draw, and for Orthogonal which of the rows or columns of its (prod(window) * in, out) flattening are
# orthonormal. (layer case, initializer) -> (Keras' shape, std, orthonormal)
KERAS_KERNEL_FACTS = {
    ("conv1d", "glorot_uniform"): ((5, 32, 64), 0.06431, None),
    ("conv1d", "he_normal"): ((5, 32, 64), 0.11200, None),
    ("conv1d", "lecun_uniform"): ((5, 32, 64), 0.07888, None),
    ("conv1d", "orthogonal"): ((5, 32, 64), 0.07905, "columns"),
    ("conv2d", "glorot_uniform"): ((3, 3, 32, 64), 0.04808, None),
    ("conv2d", "glorot_normal"): ((3, 3, 32, 64), 0.04822, None),
    ("conv2d", "he_normal"): ((3, 3, 32, 64), 0.08344, None),
    ("conv2d", "he_uniform"): ((3, 3, 32, 64), 0.08369, None),
    ("conv2d", "lecun_normal"): ((3, 3, 32, 64), 0.05924, None),
    ("conv2d", "lecun_uniform"): ((3, 3, 32, 64), 0.05872, None),
    ("conv2d", "variance_scaling_fan_out"): ((3, 3, 32, 64), 0.02938, None),
    ("conv2d", "orthogonal"): ((3, 3, 32, 64), 0.05892, "columns"),
    ("conv2d_groups", "he_uniform"): ((3, 3, 16, 64), 0.11752, None),
    ("conv2d_groups", "variance_scaling_fan_out"): ((3, 3, 16, 64), 0.02969, None),
    ("conv2d_groups", "orthogonal"): ((3, 3, 16, 64), 0.08333, "columns"),
    ("conv2d_wide", "lecun_normal"): ((2, 2, 4, 512), 0.25041, None),
    ("conv2d_wide", "orthogonal"): ((2, 2, 4, 512), 0.04419, "rows"),
    ("conv2d_transpose", "glorot_uniform"): ((3, 3, 16, 48), 0.05865, None),
    ("conv2d_transpose", "he_normal"): ((3, 3, 16, 48), 0.11741, None),
    ("conv2d_transpose", "variance_scaling_fan_out"): ((3, 3, 16, 48), 0.03418, None),
    ("conv2d_transpose", "orthogonal"): ((3, 3, 16, 48), 0.08333, "columns"),
    ("conv1d_transpose", "lecun_uniform"): ((4, 24, 96), 0.10296, None),
    ("conv1d_transpose", "orthogonal"): ((4, 24, 96), 0.10206, "columns"),
    ("depthwise_conv2d", "glorot_normal"): ((3, 3, 64, 8), 0.05523, None),
    ("depthwise_conv2d", "he_uniform"): ((3, 3, 64, 8), 0.05945, None),
    ("depthwise_conv2d", "variance_scaling_fan_out"): ((3, 3, 64, 8), 0.08446, None),
    ("depthwise_conv2d", "orthogonal"): ((3, 3, 64, 8), 0.04167, "columns"),
    ("separable_depthwise", "lecun_normal"): ((3, 3, 64, 8), 0.04191, None),
    ("separable_depthwise", "orthogonal"): ((3, 3, 64, 8), 0.04167, "columns"),
    ("separable_pointwise", "glorot_uniform"): ((1, 1, 128, 96), 0.09365, None),
    ("separable_pointwise", "he_normal"): ((1, 1, 128, 96), 0.12476, None),
    ("separable_pointwise", "variance_scaling_fan_out"): ((1, 1, 128, 96), 0.07212, None),
    ("separable_pointwise", "orthogonal"): ((1, 1, 128, 96), 0.08839, "columns"),
}

# layer case -> (the layer with the initializer as its kernel's, input shape, the kernel's name, stored as depthwise)
KERNEL_LAYERS = {
    "conv1d": (lambda init: Conv1D(64, 5, kernel_initializer=init), (16, 32), "kernel", False),
    "conv2d": (lambda init: Conv2D(64, 3, kernel_initializer=init), (8, 8, 32), "kernel", False),
    "conv2d_groups": (lambda init: Conv2D(64, 3, groups=2, kernel_initializer=init), (8, 8, 32), "kernel", False),
    "conv2d_wide": (lambda init: Conv2D(512, 2, kernel_initializer=init), (8, 8, 4), "kernel", False),
    "conv2d_transpose": (lambda init: Conv2DTranspose(16, 3, kernel_initializer=init), (8, 8, 48), "kernel", False),
    "conv1d_transpose": (lambda init: Conv1DTranspose(24, 4, kernel_initializer=init), (16, 96), "kernel", False),
    "depthwise_conv2d": (
        lambda init: DepthwiseConv2D(3, depth_multiplier=8, depthwise_initializer=init),
        (8, 8, 64),
        "kernel",
        True,
    ),
    "separable_depthwise": (
        lambda init: SeparableConv2D(64, 3, depth_multiplier=8, depthwise_initializer=init),
        (8, 8, 64),
        "depthwise_kernel",
        True,
    ),
    "separable_pointwise": (
        lambda init: SeparableConv2D(96, 3, depth_multiplier=2, pointwise_initializer=init),
        (8, 8, 64),
        "pointwise_kernel",
        False,
    ),
}
NAMED_INITIALIZERS = {"variance_scaling_fan_out": VarianceScaling(scale=0.5, mode="fan_out", distribution="uniform")}


def in_keras_layout(kernel: np.ndarray, depthwise: bool, keras_shape: tuple[int, ...]) -> np.ndarray:
    """An ONNX Conv/ConvTranspose weight (out, in, *window) ((in, out, *window) for ConvTranspose: Keras' kernel
    ends (filters, in) there, so the same move) as Keras' (*window, in, out); a depthwise one (in * multiplier, 1,
    *window), whose output channel c * multiplier + m reads input channel c, as Keras' (*window, in, multiplier)."""
    window = kernel.shape[2:]
    spatial = tuple(range(2, 2 + len(window)))
    if depthwise:
        kernel = kernel.reshape(keras_shape[-2], keras_shape[-1], *window)
        return kernel.transpose(*spatial, 0, 1)
    return kernel.transpose(*spatial, 1, 0)


@pytest.mark.parametrize(
    ("case", "initializer"), list(KERAS_KERNEL_FACTS), ids=[f"{c}-{i}" for c, i in KERAS_KERNEL_FACTS]
)
def test_convolution_kernels_are_drawn_as_keras_draws_them_in_its_layout(case, initializer):
    keras_shape, keras_std, orthonormal = KERAS_KERNEL_FACTS[case, initializer]
    make, input_shape, weight, depthwise = KERNEL_LAYERS[case]
    layer = make(NAMED_INITIALIZERS.get(initializer, initializer))
    Sequential([Input(*input_shape), layer], seed=0)
    kernel = in_keras_layout(layer.params[weight], depthwise, keras_shape)
    assert kernel.shape == keras_shape
    assert kernel.std() == pytest.approx(keras_std, rel=0.06)
    assert abs(kernel.mean()) < 0.1 * keras_std
    if orthonormal is not None:
        matrix = kernel.reshape(-1, keras_shape[-1]).astype(np.float64)  # Keras' flattening
        gram = matrix.T @ matrix if orthonormal == "columns" else matrix @ matrix.T
        np.testing.assert_allclose(gram, np.eye(len(gram)), atol=1e-5)


def test_an_elementwise_initializer_draws_a_convolution_kernel_in_onnx_layout_directly():
    """Variance scaling draws each value alike, so it draws ONNX's layout (out, in, *window) with Keras' fans: a
    seed gives the weights it gave before Orthogonal kernels were drawn in Keras' layout."""
    drawn = initializers.onnx_conv_kernel(HeUniform(), (3, 3, 2, 4), np.random.default_rng(0))
    np.testing.assert_array_equal(drawn, HeUniform()((4, 2, 3, 3), 18, 36, np.random.default_rng(0)))


# --- KotlinDL's argument names (RandomNormal(mean, stdev, seed), RandomUniform(maxVal, minVal, seed)) -----------
@pytest.mark.parametrize(
    ("kotlindl", "keras"),
    [
        (lambda: RandomNormal(mean=1.0, stdev=0.5, seed=3), lambda: RandomNormal(mean=1.0, stddev=0.5, seed=3)),
        (lambda: RandomNormal(0.0, stdev=2.0), lambda: RandomNormal(0.0, 2.0)),
        (lambda: RandomUniform(max_val=1.0, min_val=-1.0), lambda: RandomUniform(minval=-1.0, maxval=1.0)),
        (lambda: RandomUniform(-2.0, max_val=3.0, seed=1), lambda: RandomUniform(-2.0, 3.0, seed=1)),
    ],
)
def test_kotlindls_argument_names_give_the_keras_initializer(kotlindl, keras):
    made = kotlindl()
    assert made == keras() and made.get_config() == keras().get_config()  # the config keeps Keras' names
    np.testing.assert_array_equal(made(SHAPE, FAN_IN, FAN_OUT, np.random.default_rng(0)), keras()(SHAPE, FAN_IN,
                                  FAN_OUT, np.random.default_rng(0)))  # fmt: skip


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: RandomNormal(stddev=1.0, stdev=2.0),
            r"^RandomNormal takes stddev or its KotlinDL name stdev, not both\. Received: stddev=1\.0, stdev=2\.0$",
        ),
        (lambda: RandomNormal(0.0, 1.0, stdev=2.0), r"Received: stddev \(positional\), stdev=2\.0"),
        (lambda: RandomUniform(minval=0.0, min_val=1.0), r"RandomUniform takes minval or its KotlinDL name min_val"),
        (lambda: RandomNormal(stdev=-1.0), r"RandomNormal\(stddev=...\) expects"),
        (
            lambda: RandomUniform(1.0, -1.0),  # KotlinDL's positional order, maxVal first
            r"expects minval < maxval.*minval first; KotlinDL's is maxVal first: pass them by name",
        ),
    ],
)
def test_kotlindls_argument_names_are_refused_beside_keras_ones(make, message):
    with pytest.raises(InvalidArgumentError, match=message):
        make()


# --- Constant(array): Keras 3's pretrained weights (`embeddings_initializer=Constant(embedding_matrix)`) ---------
def test_constant_of_an_array_gives_the_array():
    matrix = np.arange(12, dtype=np.float64).reshape(4, 3) / 7
    values = Constant(matrix)((4, 3), 4, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(values, matrix.astype(np.float32))
    assert Constant([[1, 2], [3, 4]])((2, 2), 2, 2, np.random.default_rng(0)).tolist() == [[1, 2], [3, 4]]
    assert Constant(np.float64(0.25)).value == 0.25 and Constant(np.array(2.0)).value == 2.0  # 0-d: a number


@pytest.mark.parametrize("case", sorted({case for case, _ in KERAS_KERNEL_FACTS}))
def test_constant_of_an_array_takes_a_convolution_kernel_in_keras_layout(case):
    keras_shape = next(shape for (c, _), (shape, _, _) in KERAS_KERNEL_FACTS.items() if c == case)
    make, input_shape, weight, depthwise = KERNEL_LAYERS[case]
    kernel = np.random.default_rng(1).normal(size=keras_shape).astype(np.float32)
    layer = make(Constant(kernel))
    Sequential([Input(*input_shape), layer], seed=0)
    np.testing.assert_array_equal(in_keras_layout(layer.params[weight], depthwise, keras_shape), kernel)


def test_constant_of_an_array_saves_in_its_config_and_compares_by_value():
    matrix = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    config = Constant(matrix).get_config()
    assert config["name"] == "constant" and config["value"]["shape"] == [5, 3]  # float32 bytes, base64
    rebuilt = initializers.get(config)
    np.testing.assert_array_equal(rebuilt.value, matrix)
    assert rebuilt == Constant(matrix) and hash(rebuilt) == hash(Constant(matrix)) and rebuilt != Constant(matrix + 1)
    keras_config = {"name": "constant", "value": {"class_name": "__numpy__", "config": {"value": matrix.tolist()}}}
    assert initializers.get(keras_config) == Constant(matrix)  # Keras 3 writes an array so
    assert repr(Constant(matrix)) == "Constant(value=<float32 array of shape (5, 3)>)"
    assert Constant(0.5).get_config() == {"value": 0.5, "name": "constant"}


def test_pretrained_embeddings_from_a_constant_matrix_stay_frozen_through_training():
    matrix = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    ids = np.random.default_rng(1).integers(0, 20, (32, 6))
    embedding = Embedding(20, 4, embeddings_initializer=Constant(matrix), trainable=False, name="emb")
    model = Sequential.of(Input(6, dtype="int64"), embedding, Flatten(), Dense(2, activation="linear"), seed=0)
    with model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(ids, ids[:, 0] % 2, epochs=1, verbose=0)
        np.testing.assert_array_equal(model.get_weights()["emb.embeddings"], matrix)
    assert model.param_counts() == (50, 80)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Constant([]), r"Constant\(value=...\) expects a finite number or a non-empty array.*empty array"),
        (lambda: Constant(np.array([True])), r"non-empty array of numbers. Received: an array of dtype bool"),
        (lambda: Constant([[1.0, np.inf]]), r"expects finite float32 values.*Received: value\[0, 1\]=inf"),
        (lambda: Constant([1e300]), r"Received: value\[0\]=1e\+300 \(1 of 1 not finite in float32\)"),
        (lambda: Constant({"shape": [2]}), r"or an encoded array as its config writes it.*keys \['shape'\]"),
        (
            lambda: Constant({"dtype": "float32", "shape": [3], "base64": "AAAAAA=="}),
            r"holds 4 bytes, and shape \[3\] takes 12",
        ),
        (
            lambda: Sequential.of(Input(6), Dense(3, kernel_initializer=Constant(np.ones((3, 6))))),
            r"holds an array of shape \(3, 6\), and the weight it initializes has shape \(6, 3\)",
        ),
        (
            lambda: Sequential.of(Input(4), Embedding(10, 8, embeddings_initializer=Constant(np.ones((10, 4))))),
            r"holds an array of shape \(10, 4\), and the weight it initializes has shape \(10, 8\)",
        ),
    ],
)
def test_bad_constant_arrays_are_refused_naming_the_shapes(make, message):
    with pytest.raises(InvalidArgumentError, match=message):
        make()
