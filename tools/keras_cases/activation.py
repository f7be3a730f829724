"""Keras twins of the activation layer rows in tests/test_layers_activation.py."""

import keras

CASES = {
    "activation_tanh": (lambda: keras.layers.Activation("tanh"), (3, 4)),
    "activation_softmax": (lambda: keras.layers.Activation("softmax"), (3, 4)),
    "relu_default": (lambda: keras.layers.ReLU(), (6,)),
    "relu_max_value": (lambda: keras.layers.ReLU(max_value=1.0), (6,)),
    "relu_slope_max": (lambda: keras.layers.ReLU(max_value=6.0, negative_slope=0.1), (6,)),
    "relu_all_arguments": (lambda: keras.layers.ReLU(max_value=1.5, negative_slope=0.2, threshold=0.5), (6,)),
    "thresholded_relu": (lambda: keras.layers.ReLU(threshold=0.5), (6,)),  # Keras 3 dropped ThresholdedReLU
    "leaky_relu_default": (lambda: keras.layers.LeakyReLU(), (6,)),
    "leaky_relu_alpha": (lambda: keras.layers.LeakyReLU(negative_slope=0.1), (6,)),
    "elu": (lambda: keras.layers.ELU(alpha=0.7), (6,)),
    "softmax_last": (lambda: keras.layers.Softmax(), (3, 4)),
    "softmax_axis1": (lambda: keras.layers.Softmax(axis=1), (3, 4)),
    "prelu": (lambda: keras.layers.PReLU(), (3, 4)),
    "prelu_shared_axes": (lambda: keras.layers.PReLU(shared_axes=[1, 2]), (3, 4, 2)),
}
