"""The same train steps in Python (the portable engine), Node.js (onnxruntime-node) and a browser (onnxruntime-web in
Debian's headless Chromium, WebAssembly threads on and off): max weight difference to Python and steps/s; then the
demo page (examples/web) fine-tuning one epoch of the 10,000 Fashion-MNIST test images, timed.

The model is the tutorial MLP (784-300-100-10, Adam) after `--epochs` epochs on the training set; each runtime then
continues it for `--steps` steps of `--batch-size` test images, in order, from the same training bundle. The JS
runtimes and Python first run `--warmup` untimed steps on a trainer (model) of their own, then time a fresh one
(V8 runs WebAssembly on its baseline tier until the optimizing one has compiled it: the first seconds are slower).
The demo's time is its training loop (the page's own figure), without the accuracy it measures before and after.
Needs node, js/node_modules (`cd js && npm ci --ignore-scripts`), playwright and /usr/bin/chromium.

Usage:
    python tools/js_parity.py [--steps 100] [--batch-size 100] [--epochs 1] [--threads 1 2] [--warmup 20]
        [--screenshot demo.png] [--out result.json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout; tests.js_harness: shared steps

from _tutorial import tutorial_data, tutorial_model

from onnxtrain.bundle import read_metadata, read_state, unpack_state
from onnxtrain.loading import load_model
from tests.js_harness import (
    ORT_NODE,
    ROOT,
    chromium_page,
    max_difference,
    missing_browser,
    missing_js_dependencies,
    python_steps,
    run_browser,
    run_node,
    serve,
    write_batches,
)


class _Runs:
    """Each runtime's results over the repeats: its largest weight difference to Python and its median steps/s."""

    def __init__(self, steps: int):
        self.steps = steps
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, runtime: str, threads: str, difference: float, seconds: float) -> None:
        row = self.rows.setdefault(
            (runtime, threads), {"runtime": runtime, "threads": threads, "differences": [], "seconds": []}
        )
        row["differences"].append(difference)
        row["seconds"].append(seconds)

    def table(self) -> list[dict[str, Any]]:
        return [
            {
                **row,
                "steps": self.steps,
                "max_weight_difference": max(row["differences"]),
                "steps_per_s": self.steps / statistics.median(row["seconds"]),
            }
            for row in self.rows.values()
        ]


_HELD_OUT = 2000  # images after the 10,000 the demo epoch trains on
PYTHON = "Python, portable engine (onnxruntime-training 1.19.2)"


def _write_demo_data(folder: Path, test: Any, train: Any) -> None:
    """The demo page's images beside the bundle, in the layout examples/web/prepare.py writes: the 10,000 test
    images the timed epoch trains on, then `_HELD_OUT` training-set images as the slice the page scores (the page
    holds out the last ones; here the timing is what counts)."""
    x = np.concatenate([np.asarray(test.x), np.asarray(train.x[:_HELD_OUT])])
    pixels = np.rint(x / test.input_scale).astype(np.uint8)
    pixels.tofile(folder / "test-images.bin")
    labels = np.concatenate([np.asarray(test.y), np.asarray(train.y[:_HELD_OUT])])
    labels.astype(np.uint8).tofile(folder / "test-labels.bin")
    spec = {"count": len(pixels), "shape": list(pixels.shape[1:]), "class_names": list(test.class_names or ())}
    (folder / "data.json").write_text(json.dumps(spec), encoding="utf-8")


def _demo_epoch(page: Any, base: str, threads: int, batch_size: int) -> dict[str, Any]:
    """One epoch of the demo page over all its images with `threads` wasm threads; the page's own figures."""
    page.set_viewport_size({"width": 900, "height": 1000})
    page.goto(base + f"examples/web/?bundle=/data/bundle/&data=/data/&threads={threads}")
    page.wait_for_function("window.demoReady === true || window.demoError !== undefined", timeout=120_000)
    shown = page.eval_on_selector("#threads", "select => select.value")
    if shown != str(threads):
        raise RuntimeError(f"the demo page offers no {threads} threads (it shows {shown}): not cross-origin isolated?")
    page.fill("#heldout", str(_HELD_OUT))
    page.dispatch_event("#heldout", "change")
    page.fill("#count", "10000")
    page.fill("#batch", str(batch_size))
    page.click("#train")
    page.wait_for_function("window.demoResult !== undefined || window.demoError !== undefined", timeout=600_000)
    error = page.evaluate("window.demoError")
    if error is not None:
        raise RuntimeError(f"the demo page failed: {error}")
    return page.evaluate("window.demoResult")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=1, help="epochs of Python training before the bundle")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="wasm thread counts in the browser")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first, on a trainer of their own")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each runtime; steps/s is their median")
    parser.add_argument("--screenshot", help="save the demo page after its epoch as this PNG")
    parser.add_argument("--out", help="write the table and the demo timings as JSON")
    args = parser.parse_args(argv)
    for reason in (missing_js_dependencies(ORT_NODE), missing_browser()):
        if reason is not None:
            parser.error(reason)

    train, test = tutorial_data()
    count = args.steps * args.batch_size
    x, y = np.asarray(test.x[:count], np.float32), np.asarray(test.y[:count], np.int64)
    runs, demo = _Runs(args.steps), []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        site, bundle = work / "site", work / "site" / "data" / "bundle"
        (site / "data").mkdir(parents=True)
        for name in ("js", "examples"):
            (site / name).symlink_to(ROOT / name)
        with tutorial_model(args.seed, "linear") as model:
            model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", metric="accuracy")
            model.fit(train, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
            model.export_training_bundle(bundle)
            model.save(work / "saved", save_optimizer_state=True)  # each repeat's Python run resumes from here
        write_batches(site / "batches", x, y, args.batch_size)
        _write_demo_data(site / "data", test, train)
        metadata = read_metadata(bundle)
        names = metadata["trainable"]
        python: dict[str, np.ndarray] = {}
        with serve(site) as base, chromium_page() as page:
            for repeat in range(args.repeats):  # the runtimes take turns, so that they share the machine's load
                for threads in (None, 1):
                    if args.warmup > 0:  # as the JS runtimes: untimed steps on a model of their own first
                        with load_model(work / "saved", threads=threads) as scratch_model:
                            warm = args.warmup * args.batch_size
                            python_steps(scratch_model, x[:warm], y[:warm], args.batch_size)
                    with load_model(work / "saved", threads=threads) as model:
                        seconds = python_steps(model, x, y, args.batch_size)
                        model.export_training_bundle(work / f"python{threads}-{repeat}")
                    state = read_state(work / f"python{threads}-{repeat}")
                    python = python or state
                    label = "default" if threads is None else str(threads)
                    runs.add(PYTHON, label, max_difference(state, python, names), seconds)
                for threads in (0, 1):
                    out = work / f"node{threads}-{repeat}"
                    result = run_node(bundle, site / "batches", out, threads=threads, warmup=args.warmup)
                    state = unpack_state((out / "state.bin").read_bytes(), metadata["tensors"])
                    label = "default" if threads == 0 else str(threads)
                    runs.add(result["runtime"], label, max_difference(state, python, names), result["seconds"])
                for threads in args.threads:
                    result = run_browser(page, base, "data/bundle/", "batches/", threads=threads, warmup=args.warmup)
                    state = unpack_state(base64.b64decode(result["state"]), metadata["tensors"])
                    runtime = f"{result['runtime']} (wasm, Chromium)"
                    runs.add(runtime, str(result["threads"]), max_difference(state, python, names), result["seconds"])
                for threads in args.threads:
                    demo.append(_demo_epoch(page, base, threads, args.batch_size))
                    if args.screenshot and repeat == args.repeats - 1 and threads == args.threads[0]:
                        page.screenshot(path=args.screenshot, full_page=False)

    rows = runs.table()
    print(f"load average after: {', '.join(f'{v:.1f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs)")
    print("| runtime | threads | steps | max weight difference | steps/s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['runtime']} | {row['threads']} | {row['steps']} | {row['max_weight_difference']:.2e} | "
            f"{row['steps_per_s']:.1f} |"
        )
    print()
    print("| demo page: one epoch (median) | threads | images | steps | seconds | images/s | accuracy before | after |")
    print("|---|---|---|---|---|---|---|---|")
    for threads in args.threads:
        runs_of = [d for d in demo if d["threads"] == threads]
        seconds = statistics.median(d["seconds"] for d in runs_of)
        d = runs_of[0]
        print(
            f"| onnxruntime-web, Chromium | {threads} | {d['images']:,} | {d['steps']} | {seconds:.2f} | "
            f"{d['images'] / seconds:,.0f} | {d['before']} | {d['after']} |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"parity": rows, "demo": demo}, indent=1), encoding="utf-8")
    worst = max(row["max_weight_difference"] for row in rows)
    return 0 if worst < 1e-5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
