"""Write Keras 3 reference numbers for the Keras layer arguments that a Keras config carries and onnxtrain computes
too: tests/data/keras/layer_arguments.npz, for tests/test_layers_keras_configs.py.

Cases (each key `<case>/<name>`):
- a step case: a small Sequential with BatchNormalization's or LayerNormalization's beta_regularizer and
  gamma_regularizer (and LayerNormalization's rms_scaling=True), seeded weights, MSE and SGD(0.1). Stored: the
  input `x` and targets `y`, each layer's starting weights (`<layer>.<i>`, Keras' `get_weights()` order), the loss
  `evaluate` reports (inference mode; Keras adds the penalties), the loss of one `train_on_batch` step and each
  layer's weights after it (`after.<layer>.<i>`).
- a forward case: Masking -> a recurrent layer with return_sequences and zero_output_for_mask=True over steps
  masked before, after and between the data, or LayerNormalization(rms_scaling=True) alone. Stored: `x`, Keras'
  output `y` and the layer's weights.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_layer_argument_fixtures.py
"""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

L = keras.layers
R = keras.regularizers
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "layer_arguments.npz"
ROWS, STEPS, FEATURES = 6, 5, 3
# The steps that hold data (1) and the masked ones (0): before, after and between the data, none, all masked.
PATTERN = np.array(
    [[0, 0, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 1, 0, 1], [1, 1, 1, 1, 1], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]]
)

# step cases: the model's layers after its input of shape `shape` (names as the test names its layers)
STEP: dict[str, tuple[tuple[int, ...], Callable[[], list[keras.layers.Layer]]]] = {
    "batch_norm_regularized": (
        (4,),
        lambda: [
            L.Dense(3, name="dense"),
            L.BatchNormalization(beta_regularizer=R.L1(0.05), gamma_regularizer=R.L2(0.1), name="batch_norm"),
            L.Dense(2, name="dense_b"),
        ],
    ),
    "batch_norm_regularized_axis_1": (
        (3, 4),
        lambda: [
            L.BatchNormalization(axis=1, gamma_regularizer=R.L1L2(0.02, 0.05), name="batch_norm"),
            L.Flatten(name="flatten"),
            L.Dense(2, name="dense"),
        ],
    ),
    "layer_norm_regularized": (
        (3, 4),
        lambda: [
            L.LayerNormalization(beta_regularizer=R.L2(0.1), gamma_regularizer=R.L1L2(0.05, 0.1), name="layer_norm"),
            L.Flatten(name="flatten"),
            L.Dense(2, name="dense"),
        ],
    ),
    "layer_norm_rms_scaling": (
        (3, 4),
        lambda: [
            L.LayerNormalization(rms_scaling=True, gamma_regularizer=R.L2(0.1), name="layer_norm"),
            L.Flatten(name="flatten"),
            L.Dense(2, name="dense"),
        ],
    ),
}

# forward cases: (the input's per-example shape, whether a Masking layer comes first, the layer)
FORWARD: dict[str, tuple[tuple[int, ...], bool, Callable[[], keras.layers.Layer]]] = {
    "lstm_zero_output_for_mask": (
        (STEPS, FEATURES),
        True,
        lambda: L.LSTM(3, return_sequences=True, zero_output_for_mask=True, name="recurrent"),
    ),
    "gru_zero_output_for_mask_backwards": (
        (STEPS, FEATURES),
        True,
        lambda: L.GRU(3, return_sequences=True, go_backwards=True, zero_output_for_mask=True, name="recurrent"),
    ),
    "simple_rnn_zero_output_for_mask": (
        (STEPS, FEATURES),
        True,
        lambda: L.SimpleRNN(2, return_sequences=True, zero_output_for_mask=True, name="recurrent"),
    ),
    "layer_norm_rms_scaling_axes": (
        (3, 4, 2),
        False,
        lambda: L.LayerNormalization(axis=[1, 3], rms_scaling=True, scale=False, epsilon=0.01, name="layer_norm"),
    ),
}


def seeded_weights(model: keras.Model, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Give every layer seeded weights (variances positive) and return them as `<layer>.<i>`."""
    arrays = {}
    for layer in model.layers:
        weights = []
        for variable in layer.weights:
            shape = tuple(variable.shape)
            if "variance" in variable.path:
                value = rng.uniform(0.5, 2.0, shape)
            else:
                value = rng.normal(0.0, 0.5, shape) + (1.0 if "gamma" in variable.path else 0.0)
            weights.append(value.astype(np.float32))
        layer.set_weights(weights)
        arrays |= {f"{layer.name}.{i}": w for i, w in enumerate(weights)}
    return arrays


def step_case(name: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    shape, layers = STEP[name]
    model = keras.Sequential([keras.Input(shape), *layers()])
    arrays = seeded_weights(model, rng)
    x = (rng.normal(size=(8, *shape)) * 1.5 + 0.7).astype(np.float32)  # not centered: rms_scaling keeps the mean
    y = rng.normal(size=(8, 2)).astype(np.float32)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    evaluated = model.evaluate(x, y, batch_size=8, verbose=0)
    stepped = model.train_on_batch(x, y)
    after = {f"after.{layer.name}.{i}": w for layer in model.layers for i, w in enumerate(layer.get_weights())}
    return {"x": x, "y": y, "evaluate": np.float64(evaluated), "loss": np.float64(stepped), **arrays, **after}


def forward_case(name: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    shape, masked, layer = FORWARD[name]
    inputs = keras.Input(shape)
    model = keras.Model(inputs, layer()(L.Masking(0.0)(inputs) if masked else inputs))
    arrays = seeded_weights(model, rng)
    x = (rng.normal(size=(ROWS, *shape)) + 0.5).astype(np.float32)
    if masked:
        x[PATTERN == 0] = 0.0
    return {"x": x, "y": np.asarray(model.predict(x, verbose=0)), **arrays}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    warnings.filterwarnings("ignore", message=".*rms_scaling=True.*")  # Keras deprecates it; configs still hold it
    arrays = {}
    for seed, name in enumerate([*STEP, *FORWARD]):
        keras.utils.clear_session()
        rng = np.random.default_rng(seed)
        case = step_case(name, rng) if name in STEP else forward_case(name, rng)
        arrays |= {f"{name}/{key}": value for key, value in case.items()}
    np.savez_compressed(OUT, **arrays)
    print(f"Keras {keras.__version__}: {len(STEP) + len(FORWARD)} cases -> {OUT}")


if __name__ == "__main__":
    main()
