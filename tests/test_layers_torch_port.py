"""A PyTorch CNN's weights ported as docs/layers.md ("Porting weights from PyTorch") says give PyTorch's logits
(tests/data/torch_port/cnn.npz, tools/torch_port_fixtures.py): Conv kernels as they are (OIHW), BatchNorm2d's four
arrays in order with epsilon 1e-5, nn.Linear's weight transposed and, after a conv, its columns permuted from
PyTorch's (C, H, W) flattening to Flatten's (H, W, C); a strided Conv2d's padding=1 as ZeroPadding2D(1) then
"valid". And BatchNorm2d's momentum 0.1 is BatchNormalization's 0.9,
with a biased variance in the moving average where PyTorch's is unbiased."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from onnxtrain import Sequential
from onnxtrain.layers import BatchNormalization, Conv2D, Dense, Flatten, Input, ReLU, ZeroPadding2D

TORCH = np.load(Path(__file__).parent / "data" / "torch_port" / "cnn.npz")


def ported(permute_linear: bool = True) -> Sequential:
    model = Sequential.of(
        Input(6, 5, 2),
        Conv2D(4, 3, padding="same", activation="linear", name="conv1"),
        BatchNormalization(epsilon=1e-5, name="bn"),
        ReLU(),
        Conv2D(3, 3, strides=2, padding="valid", activation="linear", name="conv2"),
        Flatten(),
        Dense(5, activation="linear", name="fc"),
        seed=0,
    )
    t = TORCH
    model.get_layer("conv1").set_weights([t["conv1.weight"], t["conv1.bias"]])
    model.get_layer("conv2").set_weights([t["conv2.weight"], t["conv2.bias"]])
    bn = [t["bn.weight"], t["bn.bias"], t["bn.running_mean"], t["bn.running_var"]]
    model.get_layer("bn").set_weights(bn)
    weight = t["fc.weight"]  # (out, C * H * W), PyTorch flattening NCHW
    if permute_linear:
        weight = weight.reshape(5, 3, 2, 2).transpose(0, 2, 3, 1).reshape(5, 12)  # to (out, H * W * C)
    model.get_layer("fc").set_weights([weight.T, t["fc.bias"]])
    return model


def test_ported_weights_give_pytorch_s_logits():
    x = np.moveaxis(TORCH["x"], 1, -1)  # NCHW -> NHWC
    np.testing.assert_allclose(ported()(x), TORCH["logits"], rtol=1e-4, atol=1e-5)


def test_without_the_permutation_a_linear_after_a_conv_computes_something_else():
    x = np.moveaxis(TORCH["x"], 1, -1)
    assert np.abs(ported(permute_linear=False)(x) - TORCH["logits"]).max() > 0.1


def test_pytorch_s_momentum_maps_to_one_minus_it_with_a_biased_variance():
    batch = np.moveaxis(TORCH["train_batch"], 1, -1)  # (8, 3, 3, 4)
    layer = BatchNormalization(momentum=0.9, epsilon=1e-5)  # BatchNorm2d(4) has momentum=0.1, eps=1e-5
    layer(batch, training=True)
    _, _, mean, variance = layer.get_weights()
    np.testing.assert_allclose(mean, TORCH["train_running_mean"], rtol=1e-5, atol=1e-6)
    n = batch.size // 4  # values per channel
    unbiased = (TORCH["train_running_var"] - 0.9) / 0.1
    np.testing.assert_allclose(variance, 0.9 + 0.1 * unbiased * (n - 1) / n, rtol=1e-5, atol=1e-6)
    assert (np.abs(variance / TORCH["train_running_var"] - 1) > 1e-4).all()  # the two conventions differ


def test_a_strided_conv_s_padding_1_is_zero_padding_then_valid_not_same_on_an_even_size():
    x, expected = np.moveaxis(TORCH["strided_x"], 1, -1), np.moveaxis(TORCH["strided_y"], 1, -1)
    outputs = {}
    for padding, front in (("valid", [ZeroPadding2D(1)]), ("same", [])):
        conv = Conv2D(3, 3, strides=2, padding=padding, activation="linear")
        model = Sequential.of(Input(6, 6, 2), *front, conv, seed=0)
        conv.set_weights([TORCH["strided.weight"], TORCH["strided.bias"]])
        outputs[padding] = model(x)
    np.testing.assert_allclose(outputs["valid"], expected, rtol=1e-4, atol=1e-5)
    assert np.abs(outputs["same"] - expected).max() > 0.1
