"""Write a Keras 3 reference SGD step through MultiHeadAttention: tests/data/keras/attention_sgd_step.npz.

The model is what tests/test_layers_attention.py builds with onnxtrain's Functional API: inputs query (5, 4), value
(3, 6), key (3, 5) and an attention mask (5, 3) of 0/1 floats; `MultiHeadAttention(2, 3, value_dim=2)(query,
value, key, attention_mask=mask)`, GlobalAveragePooling1D, Dense(3); mean squared error; SGD(learning_rate=0.1).
From seeded normal weights it takes one step on one batch of 6. The file holds the batch, the loss Keras reports
for that step, and the weights before and after it in `model.get_weights()` order (the attention's 8, then
Dense's kernel and bias), so the test compares every gradient of the layer, through the mask, with Keras'.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_attention_step.py
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "attention_sgd_step.npz"
SHAPES = {"query": (5, 4), "value": (3, 6), "key": (3, 5), "mask": (5, 3)}
BATCH, LEARNING_RATE = 6, 0.1


def main() -> None:
    rng = np.random.default_rng(31)
    inputs = {name: keras.Input(shape) for name, shape in SHAPES.items()}
    # Asking for the scores routes Keras through its explicit einsum-softmax path: its fused path on JAX
    # (ops.dot_product_attention) fails when value_dim != key_dim.
    attended, _ = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=2)(
        inputs["query"], inputs["value"], inputs["key"], attention_mask=inputs["mask"], return_attention_scores=True
    )
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(attended))
    model = keras.Model(list(inputs.values()), outputs)
    start = [rng.normal(0.0, 0.5, size=w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(start)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE), loss="mse")
    xs = {name: rng.uniform(-2.0, 2.0, size=(BATCH, *shape)).astype(np.float32) for name, shape in SHAPES.items()}
    xs["mask"] = (xs["mask"] > -1.0).astype(np.float32)  # 3 of 4 positions attended
    y = rng.normal(size=(BATCH, 3)).astype(np.float32)
    loss = model.train_on_batch(list(xs.values()), y)
    after = model.get_weights()
    arrays = {f"x/{name}": x for name, x in xs.items()} | {"y": y, "loss": np.float32(loss)}
    arrays |= {"weights": np.array(len(start))}
    arrays |= {f"start/w{i}": w for i, w in enumerate(start)} | {f"after/w{i}": w for i, w in enumerate(after)}
    np.savez(OUT, **arrays)
    print(f"Keras {keras.__version__} on {keras.backend.backend()}: loss {float(loss):.6f}, {len(start)} weights")


if __name__ == "__main__":
    main()
