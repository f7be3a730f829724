"""Write Keras 3 reference outputs for the layer tests: tests/data/keras/<case id>.npz (x, y, the weights).

Each module in tools/keras_cases/ holds `CASES = {case id: (keras layer factory, per-example input shape)}` with
the ids of the LayerCase rows in tests/; a multi-input layer (a merge) gives a list of shapes, and its fixture
holds x0, x1, ... and `inputs` (how many) instead of x. For each case this builds the Keras layer on a seeded
input, draws its weights from a seeded normal distribution (so biases and statistics are not the trivial zeros and
ones), and stores the input, Keras' output and the weights in `layer.get_weights()` order. The tests map those
weights onto onnxtrain's parameters and compare forwards, without Keras installed.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_fixtures.py [--only ID ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import zlib
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

ROOT = Path(__file__).resolve().parent
OUT = ROOT.parent / "tests" / "data" / "keras"


def load_cases() -> dict[str, tuple]:
    cases: dict[str, tuple] = {}
    for path in sorted((ROOT / "keras_cases").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"keras_cases.{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cases.update(module.CASES)
    return cases


def write_fixture(case_id: str, make: object, input_shape: tuple[int, ...] | list[tuple[int, ...]]) -> None:
    rng = np.random.default_rng(zlib.crc32(case_id.encode()))
    shapes = input_shape if isinstance(input_shape, list) else [input_shape]
    xs = [rng.uniform(-2.0, 2.0, size=(5, *shape)).astype(np.float32) for shape in shapes]
    layer = make()  # type: ignore[operator]
    batched = [(None, *shape) for shape in shapes]
    layer.build(batched if isinstance(input_shape, list) else batched[0])
    weights = [rng.normal(0.0, 0.5, size=w.shape).astype(np.float32) for w in layer.get_weights()]
    # Variances must stay positive (BatchNormalization's moving_variance and the like).
    names = [w.path.split("/")[-1] for w in layer.weights]
    weights = [np.abs(w) + 0.1 if "variance" in n else w for w, n in zip(weights, names, strict=True)]
    layer.set_weights(weights)
    if isinstance(input_shape, list):
        y = np.asarray(layer(xs, training=False))
        arrays = {f"x{i}": x for i, x in enumerate(xs)} | {"inputs": np.array(len(xs))}
    else:
        y = np.asarray(layer(xs[0], training=False))
        arrays = {"x": xs[0]}
    arrays |= {"y": y, "weights": np.array(len(weights))} | {f"w{i}": w for i, w in enumerate(weights)}
    np.savez(OUT / f"{case_id}.npz", **arrays)
    print(f"{case_id}: x {[x.shape for x in xs]} -> y {y.shape}, weights {[w.shape for w in weights]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="case ids to write (default: all)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"Keras {keras.__version__} on {keras.backend.backend()}")
    for case_id, (make, input_shape) in load_cases().items():
        if not args.only or case_id in args.only:
            write_fixture(case_id, make, input_shape)


if __name__ == "__main__":
    main()
