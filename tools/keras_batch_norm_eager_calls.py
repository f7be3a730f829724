"""Write Keras 3's BatchNormalization moving statistics after eager training calls, `model(x, training=True)`, for
tests/test_layers_eager_state.py: tests/data/keras/batch_norm_eager_calls.npz.

A Sequential Input(3) -> BatchNormalization(momentum=m) (Keras' default initializers: gamma 1, beta 0, moving mean 0,
moving variance 1) is called with training=True on batch `x1`, then on batch `x2`; the file holds the two batches
and, for m in 0.99 and 0.9, `<m>/mean<i>`, `<m>/variance<i>` (the moving statistics after call i, i = 1, 2) and
`<m>/output<i>` (what call i returned: the batch normalized by its own statistics). Keras gives the same numbers for
the layer called alone (`BatchNormalization()(x, training=True)`) and for a model nested in another; a frozen layer
(`trainable=False`) and `predict` leave the statistics as they are.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_batch_norm_eager_calls.py
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "batch_norm_eager_calls.npz"
MOMENTA = ("0.99", "0.9")


def main() -> None:
    rng = np.random.default_rng(0)
    x1 = rng.normal(2.0, 3.0, (6, 3)).astype(np.float32)
    x2 = rng.normal(-1.0, 0.5, (6, 3)).astype(np.float32)
    arrays: dict[str, np.ndarray] = {"x1": x1, "x2": x2}
    for momentum in MOMENTA:
        layer = keras.layers.BatchNormalization(momentum=float(momentum))
        model = keras.Sequential([keras.Input((3,)), layer])
        for i, x in enumerate((x1, x2), start=1):
            arrays[f"{momentum}/output{i}"] = np.asarray(model(x, training=True))
            arrays[f"{momentum}/mean{i}"] = np.asarray(layer.moving_mean)
            arrays[f"{momentum}/variance{i}"] = np.asarray(layer.moving_variance)
        model.predict(x1, verbose=0)  # never moves them
        np.testing.assert_array_equal(np.asarray(layer.moving_mean), arrays[f"{momentum}/mean2"])
    np.savez(OUT, **arrays)
    print(f"wrote {OUT} ({keras.__version__})")


if __name__ == "__main__":
    main()
