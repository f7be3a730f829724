"""Train on Fashion-MNIST, export, and compare Node.js predictions with Python's on the first test images.

    cd examples/node && npm ci --ignore-scripts && cd ../..
    python examples/node/compare_with_python.py [--epochs 1] [--count 100] [--out runs/node-demo]

Writes model.onnx and test_images.npy into --out, runs `node predict.mjs` on them, prints both predictions
side by side and exits 1 unless every prediction is identical and every probability agrees within 1e-5.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def node_predictions(workdir: Path, model: Path, images: Path) -> dict:
    """Run predict.mjs from `workdir` (which holds node_modules) and return its JSON."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not installed")
    if not (workdir / "node_modules" / "onnxruntime-node").is_dir():
        raise SystemExit(f"run `npm ci --ignore-scripts` in {workdir} first")
    done = subprocess.run(  # absolute paths: node runs in `workdir`, the caller may be anywhere
        [node, str(workdir / "predict.mjs"), str(model.resolve()), str(images.resolve())],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=workdir,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"predict.mjs failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    from onnxtrain import InferenceModel, Sequential
    from onnxtrain.datasets import fashion_mnist
    from onnxtrain.layers import Dense, Flatten, Input

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--count", type=int, default=100, help="how many test images to compare")
    parser.add_argument("--out", type=Path, default=Path("runs/node-demo"))
    parser.add_argument(
        "--node-dir",
        type=Path,
        default=HERE,
        help="folder with predict.mjs, the .mjs modules beside it and node_modules",
    )
    args = parser.parse_args(argv)
    args.out = args.out.resolve()  # relative to where this runs (e.g. the repository root, as the README allows)

    train, test = fashion_mnist(progress=False)
    with Sequential.of(Input(28, 28, 1), Flatten(), Dense(128), Dense(10, activation="linear"), seed=7) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", metric="accuracy")
        model.fit(train, epochs=args.epochs, batch_size=100, verbose=0)
        accuracy = model.evaluate(test).metrics
        model.export(args.out / "model.onnx", writing_mode="override")
    images = np.ascontiguousarray(test.x[: args.count], dtype=np.float32)
    np.save(args.out / "test_images.npy", images)

    python = InferenceModel.load(args.out / "model.onnx")
    py_predictions = python.predict(images)
    py_probabilities = python.predict_softly(images)
    node = node_predictions(args.node_dir, args.out / "model.onnx", args.out / "test_images.npy")
    js_predictions = np.array(node["predictions"])
    js_probabilities = np.array(node["probabilities"], dtype=np.float64)

    print(f"model: {args.out / 'model.onnx'} (test {accuracy}); inputs {node['inputs']}, outputs {node['outputs']}")
    print(f"{'#':>3}  {'label':<12} {'python':<12} {'node.js':<12}")
    names = test.class_names or tuple(map(str, range(10)))
    for i in range(len(images)):
        mark = "" if py_predictions[i] == js_predictions[i] else "  <-- differs"
        print(f"{i:>3}  {names[test.y[i]]:<12} {names[py_predictions[i]]:<12} {names[js_predictions[i]]:<12}{mark}")
    same = int((py_predictions == js_predictions).sum())
    diff = float(np.abs(py_probabilities.astype(np.float64) - js_probabilities).max())
    print(f"identical predictions: {same}/{len(images)}; max |probability difference|: {diff:.2e}")
    print(f"python:  {py_predictions.tolist()}")
    print(f"node.js: {js_predictions.tolist()}")
    return 0 if same == len(images) and diff <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
