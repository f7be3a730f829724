"""Write Keras 3 reference numbers for masking (Embedding(mask_zero=True), Masking and the layers that read or pass a
mask) for tests/test_layers_masking.py: tests/data/keras_masking/<case>.npz.

Every case is a small Keras model over a batch whose masked steps come before the data (pre-padding, what
pad_sequences does by default), after it, between (holes), or everywhere, with seeded normal weights. A forward case
holds the input `x` (`x0`, `x1` for two inputs), Keras' output `y` and each layer's weights (`<layer name>.<i>` in
`get_weights()` order); a step case (`step_*`) also holds the targets `y_true`, the loss Keras reports for one
SGD(0.1) step on the batch (`loss`), and every layer's weights after it (`after.<layer name>.<i>`). The tests build
the same models in onnxtrain, map the weights onto its parameters and compare, without Keras installed.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_masking_fixtures.py [--only CASE ...]
"""

from __future__ import annotations

import argparse
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

L = keras.layers
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras_masking"
STEPS, VOCABULARY, FEATURES = 7, 12, 3
# Which steps hold data (1) and which are masked (0), per example: pre-padded, post-padded, holes, full, one step
# first, one step last, holes at both ends, and all padding (the last row only where a layer takes it: a mean over no
# step is NaN in Keras too).
PATTERN = np.array(
    [
        [0, 0, 0, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 0, 0],
        [1, 0, 1, 0, 0, 1, 1],
        [1, 1, 1, 1, 1, 1, 1],
        [1, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 1, 1, 0, 1, 1, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ]
)


def token_ids(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Ids in [1, VOCABULARY) where PATTERN has data, 0 (padding) elsewhere."""
    return (rng.integers(1, VOCABULARY, size=(rows, STEPS)) * PATTERN[:rows]).astype(np.int32)


def masked_features(rng: np.random.Generator, rows: int, mask_value: float) -> np.ndarray:
    """Features where PATTERN has data, every feature `mask_value` elsewhere; one unmasked step has a single feature
    equal to mask_value (a step is masked only where all are)."""
    x = rng.uniform(-2.0, 2.0, size=(rows, STEPS, FEATURES)).astype(np.float32)
    x[PATTERN[:rows] == 0] = mask_value
    x[3, 2, 1] = mask_value
    return x


def embedded(layer: Callable[[keras.KerasTensor], keras.KerasTensor], rows: int = 8) -> Callable[[], tuple]:
    """A case: ids -> Embedding(mask_zero=True) -> `layer`."""

    def make() -> tuple:
        ids = keras.Input((STEPS,), dtype="int32", name="ids")
        return ids, layer(L.Embedding(VOCABULARY, 4, mask_zero=True, name="embedding")(ids)), "ids", rows

    return make


def masking(
    layer: Callable[[keras.KerasTensor], keras.KerasTensor], mask_value: float = 0.0, rows: int = 8
) -> Callable[[], tuple]:
    """A case: features -> Masking(mask_value) -> `layer`."""

    def make() -> tuple:
        x = keras.Input((STEPS, FEATURES), name="features")
        return x, layer(L.Masking(mask_value, name="masking")(x)), ("features", mask_value), rows

    return make


def merged(merge: keras.layers.Layer) -> Callable[[keras.KerasTensor], keras.KerasTensor]:
    """Two masked sequences (an LSTM's and a Dense's) merged by `merge`, read by an LSTM."""

    def layer(e: keras.KerasTensor) -> keras.KerasTensor:
        a = L.LSTM(3, return_sequences=True, name="lstm_a")(e)
        return L.LSTM(2, name="lstm")(merge([a, L.Dense(3, name="dense_b")(e)]))

    return layer


def two_masks(merge: keras.layers.Layer) -> Callable[[], tuple]:
    """Two id inputs whose paddings differ (the second's pattern two steps later), each embedded with its mask,
    merged by `merge` (Keras 3's merges OR the masks), read by an LSTM."""

    def make() -> tuple:
        ids = [keras.Input((STEPS,), dtype="int32", name=name) for name in ("ids", "ids_b")]
        embedded = [
            L.Embedding(VOCABULARY, 4, mask_zero=True, name=f"embedding{s}")(x)
            for s, x in zip(("", "_b"), ids, strict=True)
        ]
        return ids, L.LSTM(2, name="lstm")(merge(embedded)), "two_ids", 8

    return make


def beside_unmasked() -> tuple:
    """A masked and an unmasked sequence side by side (Concatenate along the features: every step counts)."""
    ids = keras.Input((STEPS,), dtype="int32", name="ids")
    masked = L.Embedding(VOCABULARY, 4, mask_zero=True, name="embedding")(ids)
    plain = L.Embedding(VOCABULARY, 2, name="embedding_b")(ids)
    return ids, L.LSTM(2, name="lstm")(L.Concatenate(name="join")([masked, plain])), "ids", 8


FORWARD = {
    "lstm": embedded(lambda e: L.Dense(2, name="dense")(L.LSTM(3, name="lstm")(e))),
    "lstm_sequences": embedded(lambda e: L.Dense(2, name="dense")(L.LSTM(3, return_sequences=True, name="lstm")(e))),
    "gru_backwards_sequences": embedded(lambda e: L.GRU(3, go_backwards=True, return_sequences=True, name="gru")(e)),
    "gru_reset_before": embedded(lambda e: L.GRU(3, reset_after=False, name="gru")(e)),
    "simple_rnn_stacked": embedded(
        lambda e: L.SimpleRNN(2, name="simple_rnn_b")(L.SimpleRNN(3, return_sequences=True, name="simple_rnn")(e))
    ),
    "lstm_backwards": embedded(lambda e: L.LSTM(3, go_backwards=True, name="lstm")(e)),
    "bidirectional_lstm": embedded(lambda e: L.Bidirectional(L.LSTM(3), name="bidirectional")(e)),
    "bidirectional_lstm_sequences": embedded(
        lambda e: L.Bidirectional(L.LSTM(3, return_sequences=True), name="bidirectional")(e)
    ),
    "bidirectional_two_nodes_sequences_sum": embedded(
        lambda e: L.Bidirectional(
            L.LSTM(3, return_sequences=True),
            backward_layer=L.GRU(3, go_backwards=True, return_sequences=True),
            merge_mode="sum",
            name="bidirectional",
        )(e)
    ),
    "global_average_pooling": embedded(lambda e: L.GlobalAveragePooling1D(name="pooling")(e), rows=7),
    "attention": embedded(lambda e: L.MultiHeadAttention(2, 3, name="attention")(e, e), rows=7),
    "attention_pooled": embedded(
        lambda e: L.Dense(2, name="dense")(
            L.GlobalAveragePooling1D(name="pooling")(
                L.LayerNormalization(name="norm")(
                    L.Add(name="add")([e, L.MultiHeadAttention(2, 3, name="attention")(e, e)])
                )
            )
        ),
        rows=7,
    ),
    "masking_lstm_stacked": masking(
        lambda x: L.LSTM(2, name="lstm_b")(L.LSTM(3, return_sequences=True, name="lstm")(x))
    ),
    "masking_bidirectional_gru_pooled": masking(
        lambda x: L.GlobalAveragePooling1D(name="pooling")(
            L.Bidirectional(L.GRU(3, return_sequences=True), name="bidirectional")(x)
        ),
        rows=7,
    ),
    "masking_value": masking(lambda x: x, mask_value=0.5),
    "masking_value_simple_rnn_sequences": masking(
        lambda x: L.SimpleRNN(3, return_sequences=True, name="simple_rnn")(x), mask_value=0.5
    ),
    "add": embedded(merged(L.Add(name="sum"))),
    "concatenate_steps": embedded(merged(L.Concatenate(axis=1, name="join"))),
    "concatenate_beside_unmasked": beside_unmasked,
    "add_two_masks": two_masks(L.Add(name="sum")),
    "concatenate_two_masks": two_masks(L.Concatenate(name="join")),
}

# step cases: (model, targets: "classes" (sparse, from logits), "one_hot" (per step, from logits) or "values" (mse))
STEP = {
    "step_lstm": (embedded(lambda e: L.Dense(2, name="dense")(L.LSTM(3, name="lstm")(e))), "classes"),
    "step_gru_stacked": (
        embedded(
            lambda e: L.Dense(2, name="dense")(L.GRU(2, name="gru_b")(L.GRU(3, return_sequences=True, name="gru")(e)))
        ),
        "classes",
    ),
    "step_bidirectional": (
        embedded(
            lambda e: L.Dense(2, name="dense")(
                L.Bidirectional(L.LSTM(2), name="bidirectional_b")(
                    L.Bidirectional(L.LSTM(3, return_sequences=True), name="bidirectional")(e)
                )
            )
        ),
        "classes",
    ),
    "step_tagger": (
        embedded(
            lambda e: L.TimeDistributed(L.Dense(3), name="time_distributed")(
                L.LSTM(3, return_sequences=True, name="lstm")(e)
            )
        ),
        "one_hot",
    ),
    "step_sequence_mse": (
        embedded(lambda e: L.Dense(2, name="dense")(L.GRU(3, return_sequences=True, name="gru")(e))),
        "values",
    ),
    "step_masking_simple_rnn": (
        masking(lambda x: L.Dense(2, name="dense")(L.SimpleRNN(3, name="simple_rnn")(x))),
        "classes",
    ),
}


def build(
    case: str, make: Callable[[], tuple]
) -> tuple[keras.Model, np.ndarray | list[np.ndarray], dict[str, np.ndarray]]:
    """The case's model with seeded weights, its input batch, and the arrays every fixture holds."""
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    inputs, outputs, source, rows = make()
    model = keras.Model(inputs, outputs)
    if source == "two_ids":  # the second input's padding two steps later
        x = [token_ids(rng, rows), np.roll(token_ids(rng, rows), 2, axis=1)]
    else:
        x = token_ids(rng, rows) if source == "ids" else masked_features(rng, rows, source[1])
    arrays: dict[str, np.ndarray] = {f"x{i}": v for i, v in enumerate(x)} if isinstance(x, list) else {"x": x}
    for layer in model.layers:
        weights = [rng.normal(0.0, 0.5, size=w.shape).astype(np.float32) for w in layer.get_weights()]
        layer.set_weights(weights)
        arrays |= {f"{layer.name}.{i}": w for i, w in enumerate(weights)}
    return model, x, arrays


def write_forward(case: str, make: Callable[[], tuple]) -> None:
    model, x, arrays = build(case, make)
    y = np.asarray(model(x, training=False))
    np.savez(OUT / f"{case}.npz", y=y, **arrays)
    print(f"{case}: x {[v.shape for v in x] if isinstance(x, list) else x.shape} -> y {y.shape}")


def write_step(case: str, make: Callable[[], tuple], targets: str) -> None:
    model, x, arrays = build(case, make)
    rng = np.random.default_rng(zlib.crc32(case.encode()) + 1)
    shape = model.output_shape[1:]
    if targets == "classes":
        y_true = rng.integers(0, shape[-1], size=len(x)).astype(np.int64)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    elif targets == "one_hot":
        y_true = np.eye(shape[-1], dtype=np.float32)[rng.integers(0, shape[-1], size=(len(x), *shape[:-1]))]
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    else:
        y_true = rng.normal(size=(len(x), *shape)).astype(np.float32)
        loss = keras.losses.MeanSquaredError()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    value = float(model.train_on_batch(x, y_true))
    after = {f"after.{layer.name}.{i}": w for layer in model.layers for i, w in enumerate(layer.get_weights())}
    np.savez(OUT / f"{case}.npz", y_true=y_true, loss=np.array(value), **arrays, **after)
    print(f"{case}: x {x.shape}, loss {value:.6f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="cases to write (default: all)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"Keras {keras.__version__} on {keras.backend.backend()}")
    for case, make in FORWARD.items():
        if not args.only or case in args.only:
            write_forward(case, make)
    for case, (make, targets) in STEP.items():
        if not args.only or case in args.only:
            write_step(case, make, targets)


if __name__ == "__main__":
    main()
