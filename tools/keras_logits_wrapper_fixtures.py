"""Write Keras 3 reference numbers for the logits rule reaching through a last TimeDistributed and a nested model, and
for a last convolution's softmax: tests/data/keras/logits_rule_wrappers.npz.

Keras' Dense defaults to linear; onnxtrain's (KotlinDL's) to ReLU, which the README's "Logits" rule leaves out of
the graphs for the Dense a model ends in under a loss on logits, and a softmax too under softmax cross-entropy:
also inside a last `TimeDistributed` and as the last layer of a nested model. So each onnxtrain model here, written
with Dense's activation left out (or a softmax), must take Keras' step: tests/test_logits_rule_wrappers.py compares,
without Keras installed.

Cases (one plain SGD step, learning rate 0.1, on one batch):
  * `tagger`: Input((6,), int64) -> Embedding(20, 8, mask_zero=True) -> LSTM(5, return_sequences=True) ->
    TimeDistributed(Dense(3)), CategoricalCrossentropy(from_logits=True) on one-hot tags, zero-padded sequences
    (Keras' masked loss).
  * `tagger_softmax`: the same ending in TimeDistributed(Dense(3, activation="softmax")), "categorical_crossentropy"
    (Keras' usual tagger head: the softmax is applied once).
  * `nested_head`: Input((6, 4)) -> LSTM(5) -> a model "head" (Input((5,)) -> Dense(4, tanh) -> Dense(3)),
    SparseCategoricalCrossentropy(from_logits=True).
  * `distributed_head`: Input((6, 4)) -> TimeDistributed(a model "head": Input((4,)) -> Dense(4, tanh) -> Dense(1)),
    BinaryCrossentropy(from_logits=True) on 0/1 per step.
  * `segmentation_softmax`: Input((4, 5, 2)) -> Conv2D(3, 1, activation="softmax"), "categorical_crossentropy" on
    one-hot classes per pixel (Keras' usual segmentation head: the softmax is applied once).
  * `conv1d_softmax`: Input((6, 4)) -> Conv1D(5, 3, "same", tanh) -> Conv1D(3, 3, "same", softmax),
    "categorical_crossentropy" on one-hot classes per step.
  * `segmentation_reshape`: Input((4, 5, 2)) -> Conv2D(3, 1, activation="softmax") -> Reshape((-1, 3)),
    "categorical_crossentropy" on one-hot classes per pixel, as (20, 3) (the softmax moved, still applied once).
Stored per case, under `<case>/`: x, y, the starting weights w0_<i> and the weights after the step w1_<i> (both in
`model.get_weights()` order, Keras' layouts), predict's output before the step, evaluate's loss before it and the
step's loss (`train_on_batch`).

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_logits_wrapper_fixtures.py
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras
from keras import layers

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "logits_rule_wrappers.npz"
STEPS, VOCABULARY, LEARNING_RATE = 6, 20, 0.1


def _tagger(activation: str | None) -> keras.Model:
    tokens = keras.Input((STEPS,), dtype="int64")
    h = layers.Embedding(VOCABULARY, 8, mask_zero=True)(tokens)
    h = layers.LSTM(5, return_sequences=True)(h)
    return keras.Model(tokens, layers.TimeDistributed(layers.Dense(3, activation=activation))(h))


def _head(features: int, units: int) -> keras.Model:
    x = keras.Input((features,))
    return keras.Model(x, layers.Dense(units)(layers.Dense(4, activation="tanh")(x)), name="head")


def _nested_head() -> keras.Model:
    x = keras.Input((STEPS, 4))
    return keras.Model(x, _head(5, 3)(layers.LSTM(5)(x)))


def _distributed_head() -> keras.Model:
    x = keras.Input((STEPS, 4))
    return keras.Model(x, layers.TimeDistributed(_head(4, 1))(x))


def _segmentation() -> keras.Model:
    x = keras.Input((4, 5, 2))
    return keras.Model(x, layers.Conv2D(3, 1, activation="softmax")(x))


def _segmentation_reshape() -> keras.Model:
    x = keras.Input((4, 5, 2))
    return keras.Model(x, layers.Reshape((-1, 3))(layers.Conv2D(3, 1, activation="softmax")(x)))


def _conv1d_softmax() -> keras.Model:
    x = keras.Input((STEPS, 4))
    h = layers.Conv1D(5, 3, padding="same", activation="tanh")(x)
    return keras.Model(x, layers.Conv1D(3, 3, padding="same", activation="softmax")(h))


def _case(
    name: str, make: Callable[[], keras.Model], x: np.ndarray, y: np.ndarray, loss: object, seed: int
) -> dict[str, np.ndarray]:
    model = make()
    rng = np.random.default_rng(seed)
    start = [rng.normal(0.0, 0.5, size=w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(start)
    predicted = np.asarray(model.predict(x, verbose=0))
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), loss=loss)
    evaluated = model.evaluate(x, y, batch_size=len(x), verbose=0)
    step_loss = model.train_on_batch(x, y)
    arrays = {
        "x": x,
        "y": y,
        "predicted": predicted,
        "evaluate_loss": np.float64(evaluated),
        "step_loss": np.float64(step_loss),
        "weights": np.array(len(start)),
    }
    arrays |= {f"w0_{i}": w for i, w in enumerate(start)}
    arrays |= {f"w1_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    print(f"{name}: loss {float(evaluated):.6f}, step loss {float(step_loss):.6f}, weights {[w.shape for w in start]}")
    return {f"{name}/{key}": value for key, value in arrays.items()}


def main() -> None:
    rng = np.random.default_rng(5)
    lengths = rng.integers(2, STEPS + 1, size=8)
    tokens = np.zeros((8, STEPS), np.int64)  # padded in front, as pad_sequences does
    for row, length in enumerate(lengths):
        tokens[row, STEPS - length :] = rng.integers(1, VOCABULARY, size=length)
    tags = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=(8, STEPS))]
    series = rng.normal(size=(8, STEPS, 4)).astype(np.float32)
    classes = rng.integers(0, 3, size=8).astype(np.int64)
    flags = (rng.uniform(size=(8, STEPS, 1)) < 0.5).astype(np.float32)
    arrays: dict[str, np.ndarray] = {}
    arrays |= _case(
        "tagger", lambda: _tagger(None), tokens, tags, keras.losses.CategoricalCrossentropy(from_logits=True), 1
    )
    arrays |= _case("tagger_softmax", lambda: _tagger("softmax"), tokens, tags, "categorical_crossentropy", 1)
    arrays |= _case(
        "nested_head", _nested_head, series, classes, keras.losses.SparseCategoricalCrossentropy(from_logits=True), 2
    )
    arrays |= _case(
        "distributed_head", _distributed_head, series, flags, keras.losses.BinaryCrossentropy(from_logits=True), 3
    )
    pixels = rng.normal(size=(8, 4, 5, 2)).astype(np.float32)
    pixel_classes = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=(8, 4, 5))]
    step_classes = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=(8, STEPS))]
    arrays |= _case("segmentation_softmax", _segmentation, pixels, pixel_classes, "categorical_crossentropy", 4)
    arrays |= _case("conv1d_softmax", _conv1d_softmax, series, step_classes, "categorical_crossentropy", 5)
    reshaped_classes = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=(8, 20))]  # drawn last: the rest stay
    arrays |= _case(
        "segmentation_reshape", _segmentation_reshape, pixels, reshaped_classes, "categorical_crossentropy", 6
    )
    arrays["keras_version"] = np.array(keras.__version__)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(OUT, **arrays)
    print(f"wrote {OUT} ({len(arrays)} arrays, Keras {keras.__version__})")


if __name__ == "__main__":
    main()
