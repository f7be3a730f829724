"""Write Keras 3 reference numbers for a softmax whose probabilities the last layers carry to the output, and for a
softmax layer after a head left at its default activation: tests/data/keras/logits_rule_carried.npz.

Under "sparse_categorical_crossentropy" (or "categorical_crossentropy") Keras computes the cross-entropy of the
values the model gives: normalised over the classes (the last axis), clipped to [1e-7, 1 - 1e-7], logged. A softmax
followed by UpSampling, Cropping, max or average pooling, RepeatVector or Dropout gives probabilities carried class
by class, which onnxtrain's logits rule reads as Keras does (`_carried_probabilities.log_probabilities`), not as
logits of a second softmax. Keras' Dense and convolutions default to linear; onnxtrain's (KotlinDL's) to ReLU, which
the rule emits linear where a last `Softmax()` or `Activation("softmax")` layer reads them under softmax cross-
entropy, so each onnxtrain model here, written with that activation left out, must take Keras' step:
tests/test_logits_rule_carried.py compares, without Keras installed.

Cases (one plain SGD step, learning rate 0.1, on one batch; the Dropout cases evaluate only, as their training
masks are random):
  * `upsampled`: Input((2, 2, 2)) -> Conv2D(3, 1, softmax) -> UpSampling2D(2), sparse labels per pixel.
  * `cropped`: Input((4, 4, 2)) -> Conv2D(3, 1, softmax) -> Cropping2D(1), one-hot labels per pixel,
    "categorical_crossentropy".
  * `max_pooled`: Input((4, 4, 2)) -> Conv2D(3, 1, softmax) -> MaxPooling2D(2), sparse labels per pixel.
  * `global_max_pooled`: Input((6, 6, 2)) -> Conv2D(4, 3, tanh) -> Conv2D(3, 1, softmax) -> GlobalMaxPooling2D().
  * `average_pooled`: Input((4, 4, 2)) -> Conv2D(3, 1, softmax) -> AveragePooling2D(2); `average_pooled_1d`,
    `average_pooled_3d` the same in 1-D ((4, 2), Conv1D) and 3-D ((2, 4, 4, 2), Conv3D).
  * `upsampled_cropped_1d`: Input((5, 2)) -> Conv1D(3, 1, softmax) -> UpSampling1D(2) -> Cropping1D((1, 2)).
  * `repeated`: Input((4,)) -> Dense(3, softmax) -> RepeatVector(2), sparse labels per step.
  * `dropped` (evaluate only): Input((4,)) -> Dense(8, relu) -> Dense(3, softmax) -> Dropout(0.2).
  * `spatially_dropped` (evaluate only): Input((4, 4, 2)) -> Conv2D(3, 1, softmax) -> SpatialDropout2D(0.3).
  * `all_convolutional`: Input((6, 6, 2)) -> Conv2D(4, 3, tanh) -> Conv2D(3, 1) -> GlobalAveragePooling2D() ->
    Activation("softmax") (Keras' all-convolutional head).
  * `dense_softmax_layer`: Input((4,)) -> Dense(5, tanh) -> Dense(3) -> Softmax().
  * `softmax_layer_upsampled`: Input((2, 2, 2)) -> Conv2D(3, 1) -> Softmax() -> UpSampling2D(2).
  * `nested_softmax_layer`: Input((4,)) -> Dense(5, tanh) -> a model "head" (Input((5,)) -> Dense(3) ->
    Softmax()) -> RepeatVector(2).
Stored per case, under `<case>/`: x, y, the starting weights w0_<i> and (stepped cases) the weights after the step
w1_<i> (both in `model.get_weights()` order, Keras' layouts), predict's output before the step, evaluate's loss
before it and the step's loss (`train_on_batch`), and `steps` (1, or 0 for an evaluate-only case).

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_softmax_carried_fixtures.py
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras
from keras import layers

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "logits_rule_carried.npz"
LEARNING_RATE = 0.1
BATCH = 6


def _sequential(shape: tuple[int, ...], *stack: keras.layers.Layer) -> keras.Model:
    return keras.Sequential([keras.Input(shape), *stack])


def _nested_softmax_layer() -> keras.Model:
    inner = keras.Input((5,))
    head = keras.Model(inner, layers.Softmax()(layers.Dense(3)(inner)), name="head")
    x = keras.Input((4,))
    return keras.Model(x, layers.RepeatVector(2)(head(layers.Dense(5, activation="tanh")(x))))


# case -> (model, input shape, label shape per example, loss, whether it takes a step)
CASES: dict[str, tuple[Callable[[], keras.Model], tuple[int, ...], tuple[int, ...], str, bool]] = {
    "upsampled": (
        lambda: _sequential((2, 2, 2), layers.Conv2D(3, 1, activation="softmax"), layers.UpSampling2D(2)),
        (2, 2, 2),
        (4, 4),
        "sparse_categorical_crossentropy",
        True,
    ),
    "cropped": (
        lambda: _sequential((4, 4, 2), layers.Conv2D(3, 1, activation="softmax"), layers.Cropping2D(1)),
        (4, 4, 2),
        (2, 2),
        "categorical_crossentropy",
        True,
    ),
    "max_pooled": (
        lambda: _sequential((4, 4, 2), layers.Conv2D(3, 1, activation="softmax"), layers.MaxPooling2D(2)),
        (4, 4, 2),
        (2, 2),
        "sparse_categorical_crossentropy",
        True,
    ),
    "global_max_pooled": (
        lambda: _sequential(
            (6, 6, 2),
            layers.Conv2D(4, 3, activation="tanh"),
            layers.Conv2D(3, 1, activation="softmax"),
            layers.GlobalMaxPooling2D(),
        ),
        (6, 6, 2),
        (),
        "sparse_categorical_crossentropy",
        True,
    ),
    "average_pooled": (
        lambda: _sequential((4, 4, 2), layers.Conv2D(3, 1, activation="softmax"), layers.AveragePooling2D(2)),
        (4, 4, 2),
        (2, 2),
        "sparse_categorical_crossentropy",
        True,
    ),
    "average_pooled_1d": (
        lambda: _sequential((4, 2), layers.Conv1D(3, 1, activation="softmax"), layers.AveragePooling1D(2)),
        (4, 2),
        (2,),
        "sparse_categorical_crossentropy",
        True,
    ),
    "average_pooled_3d": (
        lambda: _sequential((2, 4, 4, 2), layers.Conv3D(3, 1, activation="softmax"), layers.AveragePooling3D(2)),
        (2, 4, 4, 2),
        (1, 2, 2),
        "sparse_categorical_crossentropy",
        True,
    ),
    "upsampled_cropped_1d": (
        lambda: _sequential(
            (5, 2), layers.Conv1D(3, 1, activation="softmax"), layers.UpSampling1D(2), layers.Cropping1D((1, 2))
        ),
        (5, 2),
        (7,),
        "sparse_categorical_crossentropy",
        True,
    ),
    "repeated": (
        lambda: _sequential((4,), layers.Dense(3, activation="softmax"), layers.RepeatVector(2)),
        (4,),
        (2,),
        "sparse_categorical_crossentropy",
        True,
    ),
    "dropped": (
        lambda: _sequential(
            (4,), layers.Dense(8, activation="relu"), layers.Dense(3, activation="softmax"), layers.Dropout(0.2)
        ),
        (4,),
        (),
        "sparse_categorical_crossentropy",
        False,
    ),
    "spatially_dropped": (
        lambda: _sequential((4, 4, 2), layers.Conv2D(3, 1, activation="softmax"), layers.SpatialDropout2D(0.3)),
        (4, 4, 2),
        (4, 4),
        "sparse_categorical_crossentropy",
        False,
    ),
    "all_convolutional": (
        lambda: _sequential(
            (6, 6, 2),
            layers.Conv2D(4, 3, activation="tanh"),
            layers.Conv2D(3, 1),
            layers.GlobalAveragePooling2D(),
            layers.Activation("softmax"),
        ),
        (6, 6, 2),
        (),
        "sparse_categorical_crossentropy",
        True,
    ),
    "dense_softmax_layer": (
        lambda: _sequential((4,), layers.Dense(5, activation="tanh"), layers.Dense(3), layers.Softmax()),
        (4,),
        (),
        "sparse_categorical_crossentropy",
        True,
    ),
    "softmax_layer_upsampled": (
        lambda: _sequential((2, 2, 2), layers.Conv2D(3, 1), layers.Softmax(), layers.UpSampling2D(2)),
        (2, 2, 2),
        (4, 4),
        "sparse_categorical_crossentropy",
        True,
    ),
    "nested_softmax_layer": (_nested_softmax_layer, (4,), (2,), "sparse_categorical_crossentropy", True),
}


def _case(name: str, seed: int) -> dict[str, np.ndarray]:
    make, shape, label_shape, loss, steps = CASES[name]
    model = make()
    rng = np.random.default_rng(seed)
    start = [rng.normal(0.0, 0.7, size=w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(start)
    x = rng.normal(size=(BATCH, *shape)).astype(np.float32)
    classes = rng.integers(0, 3, size=(BATCH, *label_shape)).astype(np.int64)
    y = np.eye(3, dtype=np.float32)[classes] if loss == "categorical_crossentropy" else classes
    predicted = np.asarray(model.predict(x, verbose=0))
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), loss=loss)
    evaluated = model.evaluate(x, y, batch_size=BATCH, verbose=0)
    arrays = {
        "x": x,
        "y": y,
        "predicted": predicted,
        "evaluate_loss": np.float64(evaluated),
        "weights": np.array(len(start)),
        "steps": np.array(int(steps)),
    }
    arrays |= {f"w0_{i}": w for i, w in enumerate(start)}
    if steps:
        arrays["step_loss"] = np.float64(model.train_on_batch(x, y))
        arrays |= {f"w1_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    print(f"{name}: loss {float(evaluated):.6f}, weights {[w.shape for w in start]}")
    return {f"{name}/{key}": value for key, value in arrays.items()}


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    for seed, name in enumerate(CASES):
        arrays |= _case(name, seed)
    arrays["keras_version"] = np.array(keras.__version__)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(OUT, **arrays)
    print(f"wrote {OUT} ({len(arrays)} arrays, Keras {keras.__version__})")


if __name__ == "__main__":
    main()
