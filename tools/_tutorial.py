"""The benchmark models and data as the tools build them: the tutorial MLP, the CNN of issue 20, Fashion-MNIST.

One definition for every script in tools/ (`from _tutorial import tutorial_model`; a script's own folder is on
sys.path when it runs). tools/tutorial.py alone keeps the README's code verbatim, since that is what it checks.
"""

from __future__ import annotations

from pathlib import Path

from onnxtrain import Dataset, Sequential
from onnxtrain import layers as onnxtrain_layers
from onnxtrain.datasets import fashion_mnist
from onnxtrain.layers import Dense, Flatten, Input, Layer

# The CNN's layer classes, each by its names in onnxtrain.layers (Keras' first, then KotlinDL's).
CNN_LAYERS = (("Conv2D",), ("MaxPooling2D", "MaxPool2D"))


def tutorial_layers(last_activation: str | None = "linear") -> list[Layer]:
    """The tutorial's MLP: Input 28x28x1, Flatten, Dense(300), Dense(100), Dense(10, `last_activation`).

    The hidden layers keep KotlinDL's defaults (ReLU, He-normal kernels, He-uniform biases). `last_activation=None`
    is `Dense(10)` as the tutorial writes it, no activation given (under softmax cross-entropy it trains linear
    logits); the tools name "linear", so that their model does not depend on that rule.
    """
    last = Dense(10) if last_activation is None else Dense(10, activation=last_activation)
    return [Input(28, 28, 1), Flatten(), Dense(300), Dense(100), last]


def tutorial_model(seed: int | None = None, last_activation: str | None = "linear") -> Sequential:
    """`Sequential(tutorial_layers(last_activation), seed=seed)`, not compiled."""
    return Sequential(tutorial_layers(last_activation), seed=seed)


def tutorial_data(path: str | Path | None = None) -> tuple[Dataset, Dataset]:
    """Fashion-MNIST's (train, test), pixels scaled to [0, 1]: `fashion_mnist(path)`, which finds the files as the
    main job does ($ONNXTRAIN_DATA, the user cache, /usr/share/datasets/fashion-mnist, else a download).
    """
    return fashion_mnist(path)


def missing_cnn_layers(dropout: float = 0.0) -> list[str]:
    """The layer classes `cnn_layers(dropout)` needs that onnxtrain.layers does not have yet."""
    needed = [*CNN_LAYERS, *([("Dropout",)] if dropout else [])]
    return [names[0] for names in needed if _layer_class(names) is None]


def _layer_class(names: tuple[str, ...]) -> type[Layer] | None:
    return next((getattr(onnxtrain_layers, name) for name in names if hasattr(onnxtrain_layers, name)), None)


def cnn_layers(dropout: float = 0.5) -> list[Layer]:
    """The LeNet-style CNN of issue 20, as tools/bench_peers builds it in torch, JAX and Keras: Conv2D 32 3x3 same +
    ReLU, MaxPooling2D 2, Conv2D 64 3x3 valid + ReLU, MaxPooling2D 2, Flatten, Dense(128) ReLU, Dropout(`dropout`)
    when it is not 0, Dense(10) linear logits.

    Raises:
        ImportError: onnxtrain.layers lacks a layer it needs (Conv2D, MaxPooling2D, Dropout: issue 20).
    """
    missing = missing_cnn_layers(dropout)
    if missing:
        names = ", ".join(f"onnxtrain.layers.{name}" for name in missing)
        raise ImportError(
            f"The CNN needs {names}, which this checkout does not have (issue 20). Benchmark the peers alone "
            "(--engines torch,jax,keras-jax)"
            + (", or pass --dropout 0 where only Dropout is missing." if missing == ["Dropout"] else ".")
        )
    conv, pool = (_layer_class(names) for names in CNN_LAYERS)
    return [
        Input(28, 28, 1),
        conv(filters=32, kernel_size=3, padding="same", activation="relu"),
        pool(pool_size=2),
        conv(filters=64, kernel_size=3, padding="valid", activation="relu"),
        pool(pool_size=2),
        Flatten(),
        Dense(128),
        *([_layer_class(("Dropout",))(dropout)] if dropout else []),
        Dense(10, activation="linear"),
    ]
