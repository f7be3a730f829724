"""Write Keras 3 reference numbers for Attention (Luong) and AdditiveAttention (Bahdanau), for
tests/test_layers_dot_attention.py: tests/data/keras/dot_attention_*.npz and additive_attention_*.npz.

Three kinds of case, each from seeded draws, with seeded normal weights (so a scale is not the trivial one):
  * layer cases, the shared harness's rows (tests/layer_harness.py): the layer called on [x, x] (what onnxtrain's
    layer computes on one tensor, as a Sequential holds it); the file holds x, y and the weights w0, w1, ... in
    `layer.get_weights()` order, as tools/keras_fixtures.py writes them;
  * model cases, a small Functional model: inputs x0, x1, ... (`inputs`: how many), Keras' output y and each
    layer's weights as `<layer name>.<i>`. They cover the calls on [query, value] and [query, value, key], the
    causal mask, and the masks of Embedding(mask_zero=True) and Masking as Keras applies them (the query's zeroes
    the output at its masked steps; the value's keeps masked steps out of the softmax; the key's is ignored);
  * step cases (`*_step*`): a model case plus targets `target`, the loss Keras reports for one SGD(0.1) step on
    the batch (mean squared error) and every layer's weights after it as `after.<layer name>.<i>`.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_dot_attention_fixtures.py [--only CASE ...]
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
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras"
BATCH, VOCABULARY, LEARNING_RATE = 6, 9, 0.1
# Which steps hold tokens (1) and which are padding (0), per example: pre- and post-padded, holes, full, one step,
# and (last row) none at all, which leaves a query row no value step to attend to.
PATTERN = np.array(
    [
        [0, 0, 1, 1, 1, 1],
        [1, 1, 1, 1, 0, 0],
        [1, 0, 1, 0, 1, 1],
        [1, 1, 1, 1, 1, 1],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ]
)


class Called(L.Layer):
    """`attention` called on [x, x] (one input) or on the list it is given, with `use_causal_mask`: what a
    Sequential's onnxtrain layer computes on its one tensor."""

    def __init__(self, attention: L.Layer, use_causal_mask: bool = False, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.attention = attention
        self.use_causal_mask = use_causal_mask

    def build(self, input_shape: tuple) -> None:
        self.attention.build([input_shape, input_shape])

    def call(self, x: object, training: bool = False) -> object:
        return self.attention([x, x], training=training, use_causal_mask=self.use_causal_mask)


LAYER_CASES: dict[str, tuple[Callable[[], L.Layer], tuple[int, ...]]] = {
    "dot_attention_self": (lambda: Called(L.Attention()), (4, 6)),
    "dot_attention_scale": (lambda: Called(L.Attention(use_scale=True)), (4, 6)),
    "dot_attention_concat": (lambda: Called(L.Attention(score_mode="concat")), (5, 3)),
    "dot_attention_concat_scale": (lambda: Called(L.Attention(use_scale=True, score_mode="concat")), (5, 3)),
    "dot_attention_causal": (lambda: Called(L.Attention(use_scale=True), use_causal_mask=True), (5, 4)),
    "dot_attention_dropout": (lambda: Called(L.Attention(dropout=0.3, seed=2)), (4, 6)),
    "dot_attention_rank4": (lambda: Called(L.Attention(use_scale=True, score_mode="concat")), (2, 3, 4)),
    "additive_attention_self": (lambda: Called(L.AdditiveAttention()), (4, 6)),
    "additive_attention_no_scale": (lambda: Called(L.AdditiveAttention(use_scale=False)), (5, 3)),
    "additive_attention_causal": (lambda: Called(L.AdditiveAttention(), use_causal_mask=True), (5, 4)),
    "additive_attention_dropout": (lambda: Called(L.AdditiveAttention(dropout=0.4, seed=1)), (4, 6)),
}


def write_layer_case(case: str, make: Callable[[], L.Layer], shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    x = rng.uniform(-2.0, 2.0, size=(5, *shape)).astype(np.float32)
    layer = make()
    layer.build((None, *shape))
    weights = [rng.normal(0.0, 0.5, size=w.shape).astype(np.float32) for w in layer.get_weights()]
    layer.set_weights(weights)
    y = np.asarray(layer(x, training=False))
    arrays = {"x": x, "y": y, "weights": np.array(len(weights))} | {f"w{i}": w for i, w in enumerate(weights)}
    np.savez(OUT / f"{case}.npz", **arrays)
    print(f"{case}: x {x.shape} -> y {y.shape}, weights {[w.shape for w in weights]}")


# --- model cases: (inputs, output, the padding of each padded input by name) ------------------------------------
Case = tuple[list, keras.KerasTensor, dict[str, np.ndarray]]
# A query padding for the step cases, which average the output over the query's unmasked steps: none is empty.
QUERY_PATTERN = np.vstack([PATTERN[:-1], [[0, 1, 1, 0, 1, 0]]])


def features(shape: tuple[int, ...], name: str) -> keras.KerasTensor:
    return keras.Input(shape, name=name)


Padded = tuple[keras.KerasTensor, keras.KerasTensor, dict[str, np.ndarray]]


def embedded(name: str, shift: int = 0, pattern: np.ndarray = PATTERN) -> Padded:
    """Token ids `ids_<name>`, padded as `pattern`'s rows rolled `shift` on, and their Embedding(mask_zero=True)
    `name`: (the input, the embedding, {input name: padding})."""
    x = keras.Input((pattern.shape[1],), dtype="int32", name=f"ids_{name}")
    e = L.Embedding(VOCABULARY, 3, mask_zero=True, name=name)(x)
    return x, e, {x.name: np.roll(pattern, shift, axis=0)}


def masked(shape: tuple[int, ...], name: str) -> Padded:
    """Features `features_<name>` whose steps are all 0 where PATTERN is 0, and their Masking(0.0) `name`."""
    x = keras.Input(shape, name=f"features_{name}")
    return x, L.Masking(0.0, name=name)(x), {x.name: PATTERN[:, : shape[0]]}


def draw(x: keras.KerasTensor, padding: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """A batch for input `x`: ids where `padding` is 1 and 0 elsewhere, or uniform features (every feature 0 at a
    padded step)."""
    shape = tuple(x.shape[1:])
    if x.dtype == "int32":
        assert padding is not None
        return (rng.integers(1, VOCABULARY, size=(BATCH, *shape)) * padding).astype(np.int32)
    values = rng.uniform(-2.0, 2.0, size=(BATCH, *shape)).astype(np.float32)
    if padding is not None:
        values[padding == 0] = 0.0
    return values


def call_case(attention: Callable[[], L.Layer], shapes: list[tuple[int, ...]], causal: bool = False) -> Callable:
    def make() -> Case:
        xs = [features(shape, name) for shape, name in zip(shapes, ("query", "value", "key"), strict=False)]
        return xs, attention()(xs, use_causal_mask=causal), {}

    return make


def masks_query_and_value() -> Case:
    (q, eq, pq), (v, ev, pv) = embedded("embedding_q"), embedded("embedding_v", shift=2)
    return [q, v], L.Attention(use_scale=True, name="attention")([eq, ev]), pq | pv


def masks_key_causal_concat() -> Case:
    """The key's mask (another padding than the value's) is ignored, as Keras ignores it."""
    (q, eq, pq), (v, ev, pv), (k, ek, pk) = (
        embedded("embedding_q"),
        embedded("embedding_v", 1),
        embedded("embedding_k", 3),
    )
    attended = L.Attention(score_mode="concat", name="attention")([eq, ev, ek], use_causal_mask=True)
    return [q, v, k], attended, pq | pv | pk


def masks_self_causal() -> Case:
    """What a Sequential of Embedding(mask_zero=True) and Attention(use_causal_mask=True) computes."""
    x, e, p = embedded("embedding")
    return [x], L.Attention(use_scale=True, name="attention")([e, e], use_causal_mask=True), p


def masks_value_only() -> Case:
    q, (v, mv, pv) = features((4, 3), "query"), masked((6, 3), "masking")
    return [q, v], L.Attention(name="attention")([q, mv]), pv


def masks_query_only() -> Case:
    (q, mq, pq), v, k = masked((6, 3), "masking"), features((5, 2), "value"), features((5, 3), "key")
    attended = L.Attention(use_scale=True, score_mode="concat", name="attention")([mq, v, k])
    return [q, v, k], attended, pq


def additive_masks() -> Case:
    (q, eq, pq), (v, ev, pv), (k, ek, pk) = (
        embedded("embedding_q"),
        embedded("embedding_v", 2),
        embedded("embedding_k", 4),
    )
    return [q, v, k], L.AdditiveAttention(name="attention")([eq, ev, ek]), pq | pv | pk


def additive_masks_causal() -> Case:
    (q, mq, pq), (v, ev, pv) = masked((6, 3), "masking"), embedded("embedding_v", 1)
    return [q, v], L.AdditiveAttention(name="attention")([mq, ev], use_causal_mask=True), pq | pv


MODEL_CASES: dict[str, Callable[[], Case]] = {
    "dot_attention_cross": call_case(lambda: L.Attention(use_scale=True, name="attention"), [(4, 3), (5, 3)]),
    "dot_attention_key": call_case(
        lambda: L.Attention(use_scale=True, score_mode="concat", name="attention"), [(4, 3), (5, 2), (5, 3)]
    ),
    "dot_attention_key_dot": call_case(lambda: L.Attention(name="attention"), [(4, 3), (5, 2), (5, 3)]),
    "dot_attention_causal_cross": call_case(lambda: L.Attention(name="attention"), [(5, 4), (3, 4)], causal=True),
    "dot_attention_causal_wide": call_case(
        lambda: L.Attention(score_mode="concat", name="attention"), [(3, 4), (5, 4), (5, 4)], causal=True
    ),
    "dot_attention_rank4_cross": call_case(
        lambda: L.Attention(use_scale=True, name="attention"), [(2, 3, 4), (2, 5, 3), (2, 5, 4)]
    ),
    "additive_attention_key": call_case(lambda: L.AdditiveAttention(name="attention"), [(4, 3), (5, 2), (5, 3)]),
    "additive_attention_causal_cross": call_case(
        lambda: L.AdditiveAttention(name="attention"), [(3, 4), (5, 4)], causal=True
    ),
    "dot_attention_masks": masks_query_and_value,
    "dot_attention_masks_key_causal_concat": masks_key_causal_concat,
    "dot_attention_masks_self_causal": masks_self_causal,
    "dot_attention_masks_value_only": masks_value_only,
    "dot_attention_masks_query_only": masks_query_only,
    "additive_attention_masks": additive_masks,
    "additive_attention_masks_causal": additive_masks_causal,
}


# --- step cases: a model case with projections and a head, trained one SGD step on mean squared error ----------
def head(attended: keras.KerasTensor) -> keras.KerasTensor:
    return L.Dense(3, name="head")(L.GlobalAveragePooling1D(name="pooling")(attended))


def projected_step(attention: Callable[[], L.Layer]) -> Callable[[], Case]:
    """query (5, 4), value (3, 6) and key (3, 5) inputs, query and key through Dense(4) each, then `attention`."""

    def make() -> Case:
        q, v, k = features((5, 4), "query"), features((3, 6), "value"), features((3, 5), "key")
        pq, pk = L.Dense(4, name="dense_q")(q), L.Dense(4, name="dense_k")(k)
        return [q, v, k], head(attention()([pq, v, pk])), {}

    return make


def masked_step() -> Case:
    """Embedded query and value, causal: the pooling averages over the query's unmasked steps (the output's mask);
    the value's empty row leaves query rows no step to attend to."""
    (q, eq, pq), (v, ev, pv) = embedded("embedding_q", pattern=QUERY_PATTERN), embedded("embedding_v", 2)
    attended = L.Attention(use_scale=True, name="attention")([eq, ev], use_causal_mask=True)
    return [q, v], head(attended), pq | pv


def additive_masked_step() -> Case:
    (q, eq, pq), (v, ev, pv) = embedded("embedding_q", pattern=QUERY_PATTERN), embedded("embedding_v", 3)
    return [q, v], head(L.AdditiveAttention(name="attention")([eq, ev])), pq | pv


STEP_CASES: dict[str, Callable[[], Case]] = {
    "dot_attention_step_concat": projected_step(
        lambda: L.Attention(use_scale=True, score_mode="concat", name="attention")
    ),
    "dot_attention_step_dot": projected_step(lambda: L.Attention(use_scale=True, name="attention")),
    "dot_attention_step_masked": masked_step,
    "additive_attention_step": projected_step(lambda: L.AdditiveAttention(name="attention")),
    "additive_attention_step_masked": additive_masked_step,
}


def write_model_case(case: str, make: Callable[[], Case], step: bool) -> None:
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    inputs, output, padding = make()
    model = keras.Model(inputs, output)
    arrays: dict[str, np.ndarray] = {"inputs": np.array(len(inputs))}
    for layer in model.layers:
        weights = [rng.normal(0.0, 0.5, size=w.shape).astype(np.float32) for w in layer.get_weights()]
        layer.set_weights(weights)
        arrays |= {f"{layer.name}.{i}": w for i, w in enumerate(weights)}
    xs = [draw(x, padding.get(x.name), rng) for x in inputs]
    arrays |= {f"x{i}": x for i, x in enumerate(xs)} | {"y": np.asarray(model(xs, training=False))}
    if step:
        target = rng.normal(size=(BATCH, 3)).astype(np.float32)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE), loss="mse")
        arrays |= {"target": target, "loss": np.float32(model.train_on_batch(xs, target))}
        for layer in model.layers:
            arrays |= {f"after.{layer.name}.{i}": w for i, w in enumerate(layer.get_weights())}
    np.savez(OUT / f"{case}.npz", **arrays)
    loss = f", loss {arrays['loss']:.6f}" if step else ""
    print(f"{case}: x {[x.shape for x in xs]} -> y {arrays['y'].shape}{loss}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="case ids to write (default: all)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"Keras {keras.__version__} on {keras.backend.backend()}")

    def chosen(case: str) -> bool:
        return not args.only or case in args.only

    for case, (make, shape) in LAYER_CASES.items():
        if chosen(case):
            write_layer_case(case, make, shape)
    for cases, step in ((MODEL_CASES, False), (STEP_CASES, True)):
        for case, make_model in cases.items():
            if chosen(case):
                write_model_case(case, make_model, step)


if __name__ == "__main__":
    main()
