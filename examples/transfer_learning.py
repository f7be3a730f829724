"""Transfer learning from an ONNX file: the tutorial MLP's export as a frozen feature extractor, plus a new head.

The base is the saved model of `onnxtrain train --example fashion-mlp` (its `model/model.onnx`, an ordinary ONNX
file: any exporter's would do). The graph is cut before its last Dense (`outputs=[...]`: the 100 features the old
head read), frozen, and a new Dense(10) head is trained on top for one epoch. Then the new model is exported as one
ONNX file and run in ONNX Runtime and, when Node.js and examples/node's packages are there, in Node.js.

Usage:
    onnxtrain train --example fashion-mlp --output model/fashion-mlp     # the base (about a minute)
    python examples/transfer_learning.py [--base model/fashion-mlp/model] [--output runs/transfer]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from onnxtrain import Sequential, WritingMode, load_model
from onnxtrain.datasets import fashion_mnist
from onnxtrain.layers import Dense, Input, OnnxLayer
from onnxtrain.optimizers import Adam

NODE_EXAMPLE = Path(__file__).parent / "node"


def features_value(model: onnx.ModelProto) -> str:
    """The value the last layer reads: the input of the node that computes `logits`."""
    return next(node.input[0] for node in model.graph.node if "logits" in node.output)


def run_in_node(exported: Path, images: np.ndarray, folder: Path) -> np.ndarray | None:
    """Node.js's predictions for `images` (examples/node/predict.mjs), or None where Node.js cannot run it."""
    node = shutil.which("node")
    if node is None or not (NODE_EXAMPLE / "node_modules" / "onnxruntime-node").is_dir():
        print("Node.js: skipped (needs node and `npm ci --ignore-scripts` in examples/node)")
        return None
    np.save(folder / "images.npy", images)
    script = NODE_EXAMPLE / "predict.mjs"
    result = subprocess.run(
        [node, str(script), str(exported), str(folder / "images.npy")], capture_output=True, text=True, check=True
    )
    return np.array(json.loads(result.stdout)["predictions"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=Path("model/fashion-mlp/model"), help="the saved base model")
    parser.add_argument("--output", type=Path, default=Path("runs/transfer"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    base_file = args.base / "model.onnx"
    if not base_file.is_file():
        raise SystemExit(
            f"{base_file} is missing: run `onnxtrain train --example fashion-mlp --output {args.base.parent}`"
        )
    train, test = fashion_mnist()

    with load_model(args.base) as original:
        _, base_accuracy = original.evaluate(test)
        input_scale = original.input_scale
    print(f"base model {base_file}: test accuracy {base_accuracy:.4f}")

    base = onnx.load(str(base_file))
    cut = features_value(base)
    features = OnnxLayer(base, outputs=[cut], trainable=False, name="base")
    model = Sequential.of(Input(28, 28, 1), features, Dense(10, activation="linear", name="head"), seed=args.seed)
    model.input_scale = input_scale
    model.summary()
    with model:
        model.compile(optimizer=Adam(), loss="softmax_cross_entropy_with_logits", metric="accuracy")
        model.fit(train, epochs=1, batch_size=100)
        _, accuracy = model.evaluate(test)
        print(f"new head after 1 epoch: test accuracy {accuracy:.4f} ({100 * (accuracy - base_accuracy):+.2f} points)")

        args.output.mkdir(parents=True, exist_ok=True)
        exported = model.export(args.output / "transfer.onnx", writing_mode=WritingMode.OVERRIDE)
        images = test.x[:1000].astype(np.float32)
        ours = model.predict(images)
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": images})[0]  # the Dataset's x is scaled already
    nodes = len(onnx.load(str(exported)).graph.node)
    print(f"export {exported}: {exported.stat().st_size} bytes, one graph of {nodes} nodes")
    print(f"onnxruntime: {np.mean(logits.argmax(1) == ours):.4f} of 1000 predictions equal onnxtrain's")
    in_node = run_in_node(exported, images, args.output)
    if in_node is not None:
        print(f"Node.js: {np.mean(in_node == ours):.4f} of 1000 predictions equal onnxtrain's")


if __name__ == "__main__":
    main()
