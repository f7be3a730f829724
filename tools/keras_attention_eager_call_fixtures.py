"""Write what Keras 3's attention layers return when one layer is called on numpy arrays several times, with and
without its masks, for tests/test_layers_attention_eager_calls.py: tests/data/keras/attention_eager_calls.npz.

Keras' `attention_mask` and `use_causal_mask` are call arguments: one layer (one set of weights) takes them or not
at each call, and a call without them attends to every key again. The file holds the inputs `query` [2, 4, 6],
`value` [2, 5, 6], `key` [2, 5, 6], the bool masks `mask` [2, 4, 5] and `self_mask` [2, 4, 4] (every query attends
to key 0 at least), and, for each layer, its weights `<layer>/w<i>` (`get_weights()` order, seeded normal draws so a
scale is not the trivial one) and the output of each of its calls `<layer>/<call>`, in the order written below:

  * mha (MultiHeadAttention(num_heads=2, key_dim=3)): plain (query, value), masked (attention_mask=mask), causal
    (use_causal_mask=True), masked_causal (both), keyed_masked (query, value, key, attention_mask=mask), plain_again;
  * mha_self (another one): causal (query, query, use_causal_mask=True), masked_causal (attention_mask=self_mask
    too), plain (query, query);
  * attention (Attention(use_scale=True)) and additive (AdditiveAttention()): plain ([query, value]), causal
    (use_causal_mask=True), keyed_causal ([query, value, key], causal), plain_again.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_attention_eager_call_fixtures.py
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "attention_eager_calls.npz"


def record(
    arrays: dict[str, np.ndarray], name: str, layer: keras.layers.Layer, calls: dict[str, Callable[[], object]]
) -> None:
    """Build `layer` by its first call, give it seeded weights, then write each call's output (in order)."""
    next(iter(calls.values()))()
    rng = np.random.default_rng(len(arrays))
    weights = [rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()]
    layer.set_weights(weights)
    arrays |= {f"{name}/w{i}": w for i, w in enumerate(weights)}
    for call, compute in calls.items():
        arrays[f"{name}/{call}"] = np.asarray(compute())


def main() -> None:
    rng = np.random.default_rng(0)
    query, value, key = (rng.normal(size=(2, t, 6)).astype(np.float32) for t in (4, 5, 5))
    mask = rng.random((2, 4, 5)) > 0.4
    mask[:, :, 0] = True
    self_mask = mask[:, :, :4]
    arrays: dict[str, np.ndarray] = {"query": query, "value": value, "key": key, "mask": mask, "self_mask": self_mask}

    mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    record(
        arrays,
        "mha",
        mha,
        {
            "plain": lambda: mha(query, value),
            "masked": lambda: mha(query, value, attention_mask=mask),
            "causal": lambda: mha(query, value, use_causal_mask=True),
            "masked_causal": lambda: mha(query, value, attention_mask=mask, use_causal_mask=True),
            "keyed_masked": lambda: mha(query, value, key, attention_mask=mask),
            "plain_again": lambda: mha(query, value),
        },
    )
    own = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    record(
        arrays,
        "mha_self",
        own,
        {
            "causal": lambda: own(query, query, use_causal_mask=True),
            "masked_causal": lambda: own(query, query, attention_mask=self_mask, use_causal_mask=True),
            "plain": lambda: own(query, query),
        },
    )
    for name, layer in (
        ("attention", keras.layers.Attention(use_scale=True)),
        ("additive", keras.layers.AdditiveAttention()),
    ):
        record(
            arrays,
            name,
            layer,
            {
                "plain": lambda layer=layer: layer([query, value]),
                "causal": lambda layer=layer: layer([query, value], use_causal_mask=True),
                "keyed_causal": lambda layer=layer: layer([query, value, key], use_causal_mask=True),
                "plain_again": lambda layer=layer: layer([query, value]),
            },
        )
    for name in ("mha", "attention", "additive"):  # the masks were the calls' own
        np.testing.assert_array_equal(arrays[f"{name}/plain_again"], arrays[f"{name}/plain"])
    np.savez(OUT, **arrays)
    print(f"wrote {OUT} ({keras.__version__})")


if __name__ == "__main__":
    main()
