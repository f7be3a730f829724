"""One attention layer called on numpy arrays several times, with and without its masks, against Keras 3's outputs
(tests/data/keras/attention_eager_calls.npz, tools/keras_attention_eager_call_fixtures.py): `attention_mask` and
`use_causal_mask` are each call's own (`layers/_attention_eager.py`), whatever call built the layer, as are the
query, value and key lengths (tests/test_layers_eager_shapes.py); a built layer refuses a key of other features,
naming them; a layer shared in a model (symbolic calls) names the mask or key that makes a call differ from its
first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.layers import AdditiveAttention, Attention, Input, Layer, MultiHeadAttention

with np.load(Path(__file__).parent / "data" / "keras" / "attention_eager_calls.npz") as _data:
    KERAS = dict(_data)
Q, V, K, MASK, SELF_MASK = (KERAS[k] for k in ("query", "value", "key", "mask", "self_mask"))

Call = Callable[[Layer], np.ndarray]
MHA_CALLS: dict[str, Call] = {
    "plain": lambda layer: layer(Q, V),
    "masked": lambda layer: layer(Q, V, attention_mask=MASK),
    "causal": lambda layer: layer(Q, V, use_causal_mask=True),
    "masked_causal": lambda layer: layer(Q, V, attention_mask=MASK, use_causal_mask=True),
    "keyed_masked": lambda layer: layer(Q, V, K, attention_mask=MASK),
    "plain_again": lambda layer: layer(Q, V),
}
SELF_CALLS: dict[str, Call] = {
    "causal": lambda layer: layer(Q, Q, use_causal_mask=True),
    "masked_causal": lambda layer: layer(Q, Q, attention_mask=SELF_MASK, use_causal_mask=True),
    "plain": lambda layer: layer(Q, Q),
}
LIST_CALLS: dict[str, Call] = {
    "plain": lambda layer: layer([Q, V]),
    "causal": lambda layer: layer([Q, V], use_causal_mask=True),
    "keyed_causal": lambda layer: layer([Q, V, K], use_causal_mask=True),
    "plain_again": lambda layer: layer([Q, V]),
}
LAYERS: dict[str, tuple[Callable[[], Layer], dict[str, Call]]] = {
    "mha": (lambda: MultiHeadAttention(num_heads=2, key_dim=3), MHA_CALLS),
    "mha_self": (lambda: MultiHeadAttention(num_heads=2, key_dim=3), SELF_CALLS),
    "attention": (lambda: Attention(use_scale=True), LIST_CALLS),
    "additive": (lambda: AdditiveAttention(), LIST_CALLS),
}
CASES = [(name, first) for name, (_, calls) in LAYERS.items() for first in calls]


def keras_weights(name: str) -> list[np.ndarray]:
    return [KERAS[f"{name}/w{i}"] for i in range(sum(k.startswith(f"{name}/w") for k in KERAS))]


@pytest.mark.parametrize(("name", "first"), CASES)
def test_one_layer_takes_its_masks_or_not_at_each_call_as_keras_does(name: str, first: str) -> None:
    make, calls = LAYERS[name]
    layer = make()
    calls[first](layer)  # whichever call builds the layer, the others follow
    layer.set_weights(keras_weights(name))
    for call, compute in [(first, calls[first]), *calls.items()]:
        np.testing.assert_allclose(compute(layer), KERAS[f"{name}/{call}"], rtol=1e-5, atol=1e-6, err_msg=call)
    assert not layer.use_causal_mask and layer.get_config()["use_causal_mask"] is False  # the calls' own
    assert layer.settings_assigned() == []  # nothing a compiled model would take for a changed setting


def test_self_attention_on_one_tensor_takes_masks_too() -> None:
    layer = MultiHeadAttention(num_heads=2, key_dim=3)
    layer(Q)  # onnxtrain's self-attention form: built for query = value = key
    layer.set_weights(keras_weights("mha_self"))
    np.testing.assert_allclose(layer(Q, use_causal_mask=True), KERAS["mha_self/causal"], rtol=1e-5, atol=1e-6)
    masked = layer(Q, attention_mask=SELF_MASK, use_causal_mask=True)
    np.testing.assert_allclose(masked, KERAS["mha_self/masked_causal"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer(Q, Q), KERAS["mha_self/plain"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer(Q), KERAS["mha_self/plain"], rtol=1e-5, atol=1e-6)
    assert layer.input_shape == (4, 6) and not layer.multi_input  # its first call's record, kept


@pytest.mark.parametrize(
    ("make", "call", "expected"),
    [
        (lambda: MultiHeadAttention(2, 3, use_causal_mask=True), lambda layer, **kw: layer(Q, Q, **kw), "mha_self"),
        (lambda: Attention(use_scale=True, use_causal_mask=True), lambda layer, **kw: layer([Q, V], **kw), "attention"),
    ],
)
def test_a_causal_layer_computes_causally_unless_a_call_says_otherwise(make, call, expected: str) -> None:
    layer = make()
    call(layer)
    layer.set_weights(keras_weights(expected))
    causal, plain = ("causal", "plain")
    np.testing.assert_allclose(call(layer), KERAS[f"{expected}/{causal}"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(call(layer, use_causal_mask=False), KERAS[f"{expected}/{plain}"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(call(layer), KERAS[f"{expected}/{causal}"], rtol=1e-5, atol=1e-6)
    assert layer.use_causal_mask


def test_an_eager_training_call_takes_the_masks_of_that_call() -> None:
    layer = MultiHeadAttention(num_heads=2, key_dim=3)  # no dropout: training computes what inference does
    layer(Q, V, training=True)
    layer.set_weights(keras_weights("mha"))
    trained = layer(Q, V, attention_mask=MASK, use_causal_mask=True, training=True)
    np.testing.assert_allclose(trained, KERAS["mha/masked_causal"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer(Q, V, training=True), KERAS["mha/plain"], rtol=1e-5, atol=1e-6)


def test_a_layer_built_for_cross_attention_takes_masked_self_attention_as_keras() -> None:
    layer = MultiHeadAttention(num_heads=2, key_dim=3)
    layer(Q, V)  # query [2, 4, 6], value [2, 5, 6]: the weights take the feature sizes only
    layer.set_weights(keras_weights("mha_self"))
    masked = layer(Q, Q, attention_mask=SELF_MASK, use_causal_mask=True)
    np.testing.assert_allclose(masked, KERAS["mha_self/masked_causal"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer(Q, Q), KERAS["mha_self/plain"], rtol=1e-5, atol=1e-6)
    assert layer.input_shapes == [(4, 6), (5, 6)]  # its first call's, which a model's calls keep to


def _built(layer: Layer, *arrays: np.ndarray) -> Layer:
    """`layer` built by a call on the list of `arrays` (for MultiHeadAttention: [query, value, key, mask])."""
    layer(list(arrays))
    return layer


BAD = [
    (
        lambda: _built(MultiHeadAttention(2, 3), Q, V)(Q, V, attention_mask=MASK[:, :, :4]),
        ShapeError,
        r"MultiHeadAttention layer expects attention_mask of shape \[None, 4, 5\].*Received: \[None, 4, 4\]",
    ),
    (
        lambda: _built(AdditiveAttention(), Q, V)([Q, V, K[:, :, :5]], use_causal_mask=True),
        ShapeError,
        r"^AdditiveAttention layer scores query steps against key steps feature by feature: they need the same "
        r"features. Received: query \[None, 4, 6\], key \[None, 5, 5\]",
    ),
    (
        lambda: _built(MultiHeadAttention(2, 3), Q, V)(Q, V[0, 0], attention_mask=MASK),
        InvalidArgumentError,
        r"expects numpy arrays of numbers with a batch axis first.*Received: input 1 of shape \(6,\)",
    ),
]


def _shared_in_a_model(first: dict[str, object], then: dict[str, object]) -> None:
    query, value = Input(4, 6), Input(5, 6)
    layer = MultiHeadAttention(2, 3)
    layer(query, value, **{k: Input(*v) for k, v in first.items()})
    layer(query, value, **{k: Input(*v) for k, v in then.items()})


SHARED = r"a layer shared in a model computes every call as its first.*Received: "
SYMBOLIC = [
    (
        lambda: _shared_in_a_model({}, {"attention_mask": (4, 5)}),
        r"first called as mha\(query, value\), and " + SHARED + r"mha\(query, value, key, attention_mask=\[None, 4, "
        r"5\]\), an attention_mask more \(the query, value and key shapes are the same\)",
    ),
    (
        lambda: _shared_in_a_model({"attention_mask": (4, 5)}, {}),
        r"first called as mha\(query, value, key, attention_mask=\[None, 4, 5\]\).*Received: mha\(query, value\), "
        r"no attention_mask",
    ),
    (
        lambda: _shared_in_a_model({"attention_mask": (4, 5)}, {"attention_mask": (1, 5)}),
        r"Received: mha\(query, value, key, attention_mask=\[None, 1, 5\]\), an attention_mask of another shape",
    ),
    (lambda: _shared_in_a_model({"key": (5, 6)}, {}), r"Received: mha\(query, value\), no key"),
]
BAD += [(call, ShapeError, match) for call, match in SYMBOLIC]


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_calls_a_built_layer_cannot_take_are_refused_naming_the_difference(
    call: Callable[[], object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call()
