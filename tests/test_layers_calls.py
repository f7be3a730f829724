"""How layers are called and rebuilt, in the forms ported Keras and KotlinDL code uses: KotlinDL's vararg merge call
`Add()(a, b)`, a layer class written in Keras' form (`call()` and sub-layers, refused saying what to do instead),
an unknown class in a config, and Keras' variable-length `Input(shape=(None,))`."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Model
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnknownIdentifierError, UnsupportedError
from onnxtrain.layers import (
    Add,
    Average,
    Concatenate,
    Dense,
    Dot,
    Embedding,
    GlobalAveragePooling1D,
    Input,
    Layer,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
)

# merge layer -> its numpy reference on (a, b)
MERGES = {
    "add": (Add, lambda a, b: a + b),
    "subtract": (Subtract, lambda a, b: a - b),
    "multiply": (Multiply, lambda a, b: a * b),
    "average": (Average, lambda a, b: (a + b) / 2),
    "maximum": (Maximum, np.maximum),
    "minimum": (Minimum, np.minimum),
    "concatenate": (Concatenate, lambda a, b: np.concatenate([a, b], axis=-1)),
    "dot": (lambda: Dot(axes=1), lambda a, b: (a * b).sum(axis=1, keepdims=True)),
}


def _predict(model: Model, *xs: np.ndarray) -> np.ndarray:
    with model:
        model.compile(optimizer="sgd", loss="mse")
        return model.predict(list(xs))


@pytest.mark.parametrize("merge", MERGES, ids=MERGES.keys())
def test_a_merge_takes_its_tensors_as_separate_arguments_as_kotlindl_calls_it(merge):
    make, reference = MERGES[merge]
    a, b = Input(3, name="a"), Input(3, name="b")
    vararg, listed = make()(a, b), make()([a, b])
    assert vararg.shape == listed.shape and vararg.inputs == (a, b)
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(_predict(Model([a, b], vararg), xa, xb), reference(xa, xb), rtol=1e-5, atol=1e-6)


def test_a_model_of_several_inputs_called_as_a_layer_takes_them_as_separate_arguments():
    a, b = Input(3), Input(3)
    inner = Model([a, b], Add()(a, b), name="inner")
    x, y = Input(3, name="x"), Input(3, name="y")
    assert inner.graph(x, y).shape == (3,)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: Dense(2)(x, x), r"^Dense layer takes one tensor, Dense\(...\)\(x\). Received: 2 positional"),
        (lambda x: GlobalAveragePooling1D()(x, x, x), r"^GlobalAveragePooling1D layer takes one tensor.*Received: 3"),
        (lambda x: Dense(2, name="head")(x, x), r"^Dense layer 'head' takes one tensor.*merge them first"),
        (lambda x: Add()([x, x], x), r"Add layer is called on symbolic tensors.*Received as inputs\[0\]: list"),
    ],
)
def test_several_tensors_to_a_layer_of_one_input_is_one_clear_error(call, message):
    with pytest.raises(InvalidTypeError, match=message):
        call(Input(4, 3))


# --- a layer written in Keras' form -----------------------------------------------------------------------------
class TransformerBlock(Layer):
    """Keras' "Text classification with Transformer" block, as written for Keras."""

    def __init__(self, embed_dim, ff_dim):
        super().__init__()
        self.ffn1, self.ffn2 = Dense(ff_dim), Dense(embed_dim)

    def call(self, inputs):
        return Add()([inputs, self.ffn2(self.ffn1(inputs))])


class KerasFormWithShape(TransformerBlock):
    def compute_output_shape(self, input_shape):
        return input_shape


class ScaledDense(Dense):
    """A Keras subclass of a built-in layer that changes what it computes in call(): here, never run."""

    def call(self, inputs):
        return inputs * 2


class SkipsLayerInit(Layer):
    def __init__(self):  # no super().__init__(): found at the first call instead
        self.name = None

    def call(self, inputs):
        return inputs


class EmitsAndCalls(Layer):
    """Both forms: onnxtrain runs emit (this class's own), so call is only Keras'."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def emit(self, builder, x):
        return x

    def call(self, inputs):
        return inputs


KERAS_FORM = [
    (lambda: TransformerBlock(16, 32), "TransformerBlock"),
    (lambda: KerasFormWithShape(16, 32), "KerasFormWithShape"),
    (lambda: ScaledDense(4), "ScaledDense"),
    (lambda: SkipsLayerInit()(Input(3)), "SkipsLayerInit"),
]


@pytest.mark.parametrize(("make", "name"), KERAS_FORM, ids=[name for _, name in KERAS_FORM])
def test_a_layer_written_in_keras_form_is_refused_when_made_saying_what_to_do(make, name):
    with pytest.raises(UnsupportedError) as refused:
        make()
    message = str(refused.value)
    assert message.startswith(f"{name} defines call(), Keras' way of computing a layer, which onnxtrain never runs")
    assert "emit(builder, x)" in message and 'docs/layers.md, "Write your own layer"' in message
    assert "nested Model" in message and 'docs/layers.md, "A block of layers: a nested Model"' in message
    assert isinstance(refused.value, NotImplementedError)


def test_a_layer_with_its_own_emit_may_define_call_too():
    x = Input(3)
    assert EmitsAndCalls()(x).shape == (3,)


class NoShape(Layer):
    def emit(self, builder, x):
        return x


class NoEmit(Layer):
    def compute_output_shape(self, input_shape):
        return input_shape


def test_a_custom_layer_missing_a_method_is_told_which():
    with pytest.raises(UnsupportedError, match=r"^NoShape defines no compute_output_shape\(input_shape\): .*"):
        NoShape()(Input(3))
    with pytest.raises(UnsupportedError, match=r"^NoEmit defines no emit\(builder, x\): a layer emits its ONNX"):
        Model(x := Input(3), NoEmit()(x)).inference_model()


# --- unknown classes in a config --------------------------------------------------------------------------------
def test_an_unknown_layer_class_lists_the_public_layers_only():
    with pytest.raises(UnknownIdentifierError) as refused:
        Layer.from_config({"class_name": "Conv9D", "config": {}})
    message = str(refused.value)
    assert message.startswith("Could not interpret layer class 'Conv9D'.")
    known = message.split("Known layers: ")[1].split(", ")
    assert {"Dense", "Conv2D", "LSTM", "Functional", "MaxPooling2D"} <= set(known)
    assert not [name for name in known if name.startswith("_") or name in ("BaseConv", "Layer")]
    assert len([name for name in known if "." not in name]) < 90  # onnxtrain's own; layers of one's own too


@pytest.mark.parametrize(
    ("class_name", "message"),
    [
        ("Flattn", r"^Could not interpret layer class 'Flattn'. Did you mean 'Flatten'\? Known layers: "),
        (
            "my_project.blocks.Scale",
            r"^Could not interpret layer class 'my_project.blocks.Scale'. It names a layer of one's own, Scale of "
            r"module 'my_project.blocks', which is registered when its class is defined: import my_project.blocks \(or "
            r"define Scale\) before loading",
        ),
        (None, r"^Could not interpret layer class None. Known layers: "),
    ],
)
def test_an_unknown_layer_class_says_what_to_do(class_name, message):
    with pytest.raises(UnknownIdentifierError, match=message):
        Layer.from_config({"class_name": class_name, "config": {}})


# --- Keras' variable-length input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "masking"),
    [
        (lambda: Input(shape=(None,), dtype="int64"), "mask_zero=True"),  # token ids: a masking Embedding
        (lambda: Input(None, dtype="int32"), "mask_zero=True"),
        (lambda: Input(shape=(None, 8)), "Input(shape=(40, 8)); a Masking(mask_value=0.0)"),  # a float series
    ],
)
def test_a_variable_length_input_is_refused_saying_to_pad_to_one_length(make, masking):
    with pytest.raises(InvalidArgumentError) as refused:
        make()
    message = str(refused.value)
    assert "fixed shape per example" in message and "dims[0] is None" in message
    assert "pad_sequences" in message and "np.pad" in message and masking in message


def test_a_padded_fixed_length_input_with_masking_is_what_the_message_offers():
    ids = Input(shape=(5,), dtype="int64")
    model = Model(ids, Dense(1)(GlobalAveragePooling1D()(Embedding(10, 4, mask_zero=True)(ids))), seed=0)
    after, before = _predict(model, np.array([[3, 4, 0, 0, 0], [0, 0, 0, 3, 4]]))  # padded after or before
    np.testing.assert_allclose(after, before, rtol=1e-6)
