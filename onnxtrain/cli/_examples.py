"""The built-in run configs of `onnxtrain train --example NAME` (examples/*.toml hold the same configs)."""

from __future__ import annotations

import copy
from typing import Any

# The tutorial (README, tools/tutorial.py): KotlinDL's Fashion-MNIST MLP, with linear logits (the tutorial's
# Dense(10) is relu, which compile warns about: it can leave classes unlearnable, see tools/seed_study.py), a
# fixed seed and per-epoch figures on the test set. examples/fashion_mlp.toml is the same config.
EXAMPLES: dict[str, dict[str, Any]] = {
    "fashion-mlp": {
        "name": "fashion_mlp",
        "seed": 42,
        "layers": [
            {"type": "Input", "shape": [28, 28, 1]},
            {"type": "Flatten"},
            {"type": "Dense", "units": 300, "activation": "relu"},
            {"type": "Dense", "units": 100, "activation": "relu"},
            {"type": "Dense", "units": 10, "activation": "linear"},
        ],
        "optimizer": {"name": "adam", "learning_rate": 0.001},
        "loss": "softmax_cross_entropy_with_logits",
        "metric": "accuracy",
        "epochs": 10,
        "batch_size": 100,
        "data": {"train": "fashion-mnist:train", "test": "fashion-mnist:test", "validation": "test"},
    },
    # The LeNet-style CNN of issue 20 (tools/_tutorial.py cnn_layers, which tools/bench_peers times against torch,
    # JAX and Keras), trained as the MLP is. examples/fashion_cnn.toml is the same config.
    "fashion-cnn": {
        "name": "fashion_cnn",
        "seed": 42,
        "layers": [
            {"type": "Input", "shape": [28, 28, 1]},
            {"type": "Conv2D", "filters": 32, "kernel_size": 3, "padding": "same", "activation": "relu"},
            {"type": "MaxPooling2D", "pool_size": 2},
            {"type": "Conv2D", "filters": 64, "kernel_size": 3, "padding": "valid", "activation": "relu"},
            {"type": "MaxPooling2D", "pool_size": 2},
            {"type": "Flatten"},
            {"type": "Dense", "units": 128, "activation": "relu"},
            {"type": "Dropout", "rate": 0.5},
            {"type": "Dense", "units": 10, "activation": "linear"},
        ],
        "optimizer": {"name": "adam", "learning_rate": 0.001},
        "loss": "softmax_cross_entropy_with_logits",
        "metric": "accuracy",
        "epochs": 10,
        "batch_size": 100,
        "data": {"train": "fashion-mnist:train", "test": "fashion-mnist:test", "validation": "test"},
    },
}
EXAMPLE_HELP = {"fashion-mlp": "the tutorial's MLP", "fashion-cnn": "a LeNet-style CNN"}  # for train --help


def example_config(name: str) -> dict[str, Any]:
    """A copy of the built-in config `name` (one of EXAMPLES), safe to override."""
    return copy.deepcopy(EXAMPLES[name])
