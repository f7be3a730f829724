"""Write the demo page's data: the fashion-mlp training bundle and the 10,000 Fashion-MNIST test images.

    python examples/web/prepare.py                    # trains fashion-mlp for 1 epoch first (about a minute)
    python examples/web/prepare.py --model runs/fashion-mlp/model   # or bundles a model you saved

writes examples/web/data/bundle/ (`onnxtrain bundle`) and examples/web/data/test-images.bin (uint8 pixels,
784 per image), test-labels.bin (uint8) and data.json (count, image shape, class names). When js/node_modules lacks
onnxruntime-web, the page's runtime, it runs `npm ci --ignore-scripts` in js/ first.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
JS = HERE.parent.parent / "js"


def install_runtime() -> None:
    """onnxruntime-web for the page, from js/package-lock.json, unless it is there already."""
    if (JS / "node_modules" / "onnxruntime-web").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("The page needs onnxruntime-web from npm: install Node.js 20, then run this again.")
    subprocess.run([npm, "ci", "--ignore-scripts"], cwd=JS, check=True)


def write_images(out: Path, count: int) -> None:
    from onnxtrain.datasets import fashion_mnist

    _, test = fashion_mnist(progress=False)
    pixels = np.rint(np.asarray(test.x[:count]) / test.input_scale).astype(np.uint8)
    pixels.tofile(out / "test-images.bin")
    np.asarray(test.y[:count], np.uint8).tofile(out / "test-labels.bin")
    spec = {"count": len(pixels), "shape": list(pixels.shape[1:]), "class_names": list(test.class_names or ())}
    (out / "data.json").write_text(json.dumps(spec), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a saved model directory to bundle (default: train fashion-mlp)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the fashion-mlp trained without --model")
    parser.add_argument("--count", type=int, default=10_000, help="test images to write")
    parser.add_argument("--out", default=str(HERE / "data"), help="output folder (default: examples/web/data)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    install_runtime()
    cli = [sys.executable, "-m", "onnxtrain"]
    with tempfile.TemporaryDirectory() as scratch:
        model = args.model
        if model is None:
            run = Path(scratch) / "run"
            train = [*cli, "train", "--example", "fashion-mlp", "--epochs", str(args.epochs), "--output", str(run)]
            subprocess.run([*train, "--verbose", "2"], check=True)
            model = str(run / "model")
        subprocess.run([*cli, "bundle", model, str(out / "bundle"), "--overwrite"], check=True)
    write_images(out, args.count)
    print(
        f"Wrote {out}. In the repository root run `python -m http.server 8000`, open http://localhost:8000/examples/web/"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
