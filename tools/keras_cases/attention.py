"""Keras twins of the MultiHeadAttention rows in tests/test_layers_attention.py (ids prefixed attention_).

Keras' MultiHeadAttention is called as `mha(query, value, key, attention_mask=...)`, not on one tensor or a list,
so each case wraps it in `Called`, which takes what tools/keras_fixtures.py hands a layer: one tensor (self-attention,
`mha(x, x)`) or the list [query, value] / [query, value, key] / [query, value, key, mask input]. A mask input is
drawn like the others, uniform in [-2, 2): the mask is `input > MASK_THRESHOLD`, and the test feeds that 0/1 array.

`explicit=True` asks Keras for the attention scores too (and drops them), which routes it through its explicit
einsum-softmax path: Keras 3.15's fused path on JAX (`ops.dot_product_attention`) fails when value_dim != key_dim,
and gives a query row that the mask leaves no key to attend to other values than the explicit path's zeros (the
Softmax layer's documented masking, which onnxtrain follows).
"""

import keras

L = keras.layers
MASK_THRESHOLD = -1.0  # 3 of 4 positions attended: no query row is fully masked
SPARSE_MASK_THRESHOLD = 1.0  # 1 of 4 attended: some rows are fully masked (their scores are all 0 in Keras)


class Called(L.Layer):
    """`mha` called on one tensor (as query and value) or on a list, as the module docstring says."""

    def __init__(self, mha, use_causal_mask=False, mask_threshold=MASK_THRESHOLD, explicit=False, **kwargs):
        super().__init__(**kwargs)
        self.mha = mha
        self.explicit = explicit
        self.use_causal_mask = use_causal_mask
        self.mask_threshold = mask_threshold

    def build(self, input_shape):
        shapes = input_shape if isinstance(input_shape, list) else [input_shape, input_shape]
        self.mha.build(*shapes[:3])

    def call(self, inputs, training=False):
        xs = inputs if isinstance(inputs, list) else [inputs, inputs]
        mask = xs[3] > self.mask_threshold if len(xs) > 3 else None
        key = xs[2] if len(xs) > 2 else None
        output = self.mha(
            xs[0],
            xs[1],
            key,
            attention_mask=mask,
            use_causal_mask=self.use_causal_mask,
            training=training,
            return_attention_scores=self.explicit,
        )
        return output[0] if self.explicit else output


def mha(**kwargs):
    return L.MultiHeadAttention(**kwargs)


CASES = {
    "attention_self": (lambda: Called(mha(num_heads=2, key_dim=3)), (4, 6)),
    "attention_cross": (lambda: Called(mha(num_heads=2, key_dim=3)), [(4, 6), (5, 3)]),
    "attention_key": (lambda: Called(mha(num_heads=3, key_dim=2)), [(4, 6), (5, 3), (5, 2)]),
    "attention_value_dim": (lambda: Called(mha(num_heads=2, key_dim=3, value_dim=5), explicit=True), (4, 6)),
    "attention_output_shape": (lambda: Called(mha(num_heads=2, key_dim=3, output_shape=7)), [(4, 6), (3, 6)]),
    "attention_output_shape_2d": (lambda: Called(mha(num_heads=2, key_dim=3, output_shape=(2, 3))), (4, 6)),
    "attention_no_bias": (lambda: Called(mha(num_heads=2, key_dim=4, use_bias=False)), (5, 3)),
    "attention_causal": (lambda: Called(mha(num_heads=2, key_dim=3), use_causal_mask=True), (5, 4)),
    "attention_causal_cross": (
        lambda: Called(mha(num_heads=2, key_dim=3), use_causal_mask=True),
        [(5, 4), (3, 4)],
    ),
    "attention_mask": (
        lambda: Called(mha(num_heads=2, key_dim=3)),
        [(4, 6), (5, 3), (5, 3), (4, 5)],
    ),
    "attention_mask_causal": (  # the mask and causality leave some rows nothing: Keras' explicit path zeroes them
        lambda: Called(mha(num_heads=2, key_dim=3), use_causal_mask=True, explicit=True),
        [(4, 6), (4, 6), (4, 6), (4, 4)],
    ),
    "attention_mask_fully_masked_rows": (
        lambda: Called(mha(num_heads=2, key_dim=3, dropout=0.2), mask_threshold=SPARSE_MASK_THRESHOLD),
        [(6, 4), (3, 4), (3, 4), (6, 3)],
    ),
    "attention_dropout": (lambda: Called(mha(num_heads=2, key_dim=3, dropout=0.3)), (4, 6)),
    "attention_rank4": (lambda: Called(mha(num_heads=2, key_dim=3)), (2, 3, 4)),
    "attention_rank4_cross": (lambda: Called(mha(num_heads=2, key_dim=3)), [(2, 3, 4), (3, 2, 5)]),
    "attention_sliding_window": (
        lambda: Called(mha(num_heads=2, key_dim=3, sliding_window=2), use_causal_mask=True),
        (5, 4),
    ),
    "attention_gate": (lambda: Called(mha(num_heads=2, key_dim=3, use_gate=True)), (4, 6)),
}
