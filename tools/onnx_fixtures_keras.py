"""Write Keras 3 models exported by Keras' own `model.export(format="onnx")`, with Keras' reference training:
tests/data/onnx_models/keras_<model>_<backend>.{onnx,npz,json} (format: tests/data/onnx_models/README.md).

With the torch backend Keras' export runs torch.onnx's TorchScript exporter; with the TensorFlow backend, tf2onnx.
Keras trains each model for five `train_on_batch` steps of SGD (no momentum) on
SparseCategoricalCrossentropy(from_logits=True). No BatchNormalization: both exports fold gamma / sqrt(var + eps)
into one constant (a parameterization Keras does not train). LayerNormalization only with TensorFlow: with the torch
backend it does not export with a dynamic batch (TorchScript: "Failed to export a node ... because it is not
constant", keras 3.15.1). Gelu is the tanh approximation: tf2onnx has no Erfc, which the exact form needs.

Runs in a Python with Keras 3 and the backend's exporter (not onnxtrain's); seconds. The TensorFlow venv:
`python3.11 -m venv ../venv-tf && ../venv-tf/bin/pip install tensorflow-cpu tf2onnx keras` (about 2.5 minutes).

Usage: ../venv-torch/bin/python tools/onnx_fixtures_keras.py --backend torch    (needs `pip install keras onnx`)
       ../venv-tf/bin/python tools/onnx_fixtures_keras.py --backend tensorflow
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings

import numpy as np
import onnx
from _onnx_fixture_files import BATCH, LEARNING_RATE, ROOT, STEPS, match_initializers, save, steps_arrays

EXPORTERS = {
    "torch": "Keras model.export(format='onnx'), torch backend (torch.onnx TorchScript)",
    "tensorflow": "Keras model.export(format='onnx'), TensorFlow backend (tf2onnx)",
}


def keras_model(backend: str) -> object:
    import keras

    gelu = keras.layers.Activation(lambda x: keras.activations.gelu(x, approximate=True), name="gelu")
    layers = [
        keras.Input((6, 6, 1)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(8),
        gelu,
        *([keras.layers.LayerNormalization()] if backend == "tensorflow" else []),
        keras.layers.Dense(3),
    ]
    return keras.Sequential(layers)


def write_keras_fixture(backend: str, check_python: str) -> None:
    os.environ["KERAS_BACKEND"] = backend
    import keras

    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    model = keras_model(backend)
    # Random biases and LayerNormalization parameters (not 0 and 1), so no two weights are equal.
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in model.weights])
    x = rng.normal(size=(STEPS, BATCH, 6, 6, 1)).astype(np.float32)
    labels = rng.integers(0, 3, size=(STEPS, BATCH)).astype(np.int64)
    logits0 = keras.ops.convert_to_numpy(model(x[0], training=False))
    with tempfile.TemporaryDirectory() as directory, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.export(f"{directory}/model.onnx", format="onnx", verbose=False)
        graph = onnx.load(f"{directory}/model.onnx")

    def parameters() -> dict[str, np.ndarray]:
        return {w.path: keras.ops.convert_to_numpy(w.value).copy() for w in model.trainable_weights}

    trainable, frozen, _ = match_initializers(graph, parameters(), {})
    model.compile(
        optimizer=keras.optimizers.SGD(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    arrays: dict[str, np.ndarray] = {"x": x, "labels": labels, "logits_0": logits0}
    arrays |= steps_arrays(0, trainable, parameters(), {}, {})
    losses = []
    for step in range(STEPS):
        losses.append(float(model.train_on_batch(x[step], labels[step])))
        arrays |= steps_arrays(step + 1, trainable, parameters(), {}, {})
    arrays["losses"] = np.array(losses, np.float32)
    names = [type(layer).__name__ if layer.name != "gelu" else "gelu (tanh)" for layer in model.layers]
    save(
        f"keras_cnn_{'tf2onnx' if backend == 'tensorflow' else 'torch'}",
        graph,
        arrays,
        trainable,
        frozen,
        check_python,
        description=f"Keras Sequential, channels last: {', '.join(names)}",
        exporter=EXPORTERS[backend],
        framework=f"Keras {keras.__version__}, {backend} backend",
        batch_norm=None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=sorted(EXPORTERS), required=True)
    parser.add_argument(
        "--check-python",
        default=str(ROOT / ".venv" / "bin" / "python"),
        help="a Python with onnxruntime 1.19.2, to check each graph loads there",
    )
    args = parser.parse_args()
    print(f"onnx {onnx.__version__}", file=sys.stderr)
    write_keras_fixture(args.backend, args.check_python)


if __name__ == "__main__":
    main()
