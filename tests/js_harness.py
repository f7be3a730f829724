"""What the JavaScript parity checks share (tests/test_js.py, tests/test_web.py, tools/js_parity.py): fixed batches
on disk in the layout `js/tools/steps.js` reads, the same steps in Python, and the comparison of the two states."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "js"
ORT_NODE = JS / "node_modules" / "onnxruntime-node"
ORT_WEB = JS / "node_modules" / "onnxruntime-web"
CHROMIUM = Path("/usr/bin/chromium")
# Chromium hangs on a machine without network unless these are off (and Playwright downloads no browser: Debian's).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_js_dependencies(*packages: Path) -> str | None:
    """Why the JS checks cannot run here (node or js/node_modules missing: `.ci/run` runs `npm ci` in js/), or
    None."""
    if shutil.which("node") is None:
        return "node is not installed (CI installs Node.js 20)"
    for package in packages:
        if not package.is_dir():
            return f"{package.relative_to(ROOT)} is missing: run `npm ci --ignore-scripts` in js/ (.ci/run does)"
    return None


def in_js_names(python_message: str) -> str:
    """Python's message about `fit(x, y)` as the JS trainer words it: its arguments are x and labels."""
    return re.sub(r"(^|Received: )y(?=[\[ .])", r"\1labels", python_message)


def write_batches(directory: Path, x: np.ndarray, y: np.ndarray, batch_size: int) -> Path:
    """x.bin (float32), y.bin (int64 class indices or float32 targets) and batches.json: len(x) // batch_size
    batches, in order."""
    steps = len(x) // batch_size
    directory.mkdir(parents=True, exist_ok=True)
    labels = np.ascontiguousarray(y[: steps * batch_size])
    label_dtype = "int64" if np.issubdtype(labels.dtype, np.integer) else "float32"
    np.ascontiguousarray(x[: steps * batch_size], "<f4").tofile(directory / "x.bin")
    labels.astype("<i8" if label_dtype == "int64" else "<f4").tofile(directory / "y.bin")
    spec = {"steps": steps, "batch_size": batch_size, "x": "x.bin", "y": "y.bin", "label_dtype": label_dtype}
    (directory / "batches.json").write_text(json.dumps(spec), encoding="utf-8")
    return directory


def padded_pool_model(seed: int = 6) -> Any:
    """Conv -> ZeroPadding2D -> MaxPooling2D(padding="same") on [6, 6, 2] examples, 3 classes, compiled: the model
    whose numbers ONNX Runtime's Pad_Fusion changes (js/src/sessions.js). Feed it mostly negative values (normal
    minus 2), where the padding's zeros are the maxima of the border windows."""
    from onnxtrain import Sequential
    from onnxtrain.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D, ZeroPadding2D

    model = Sequential.of(
        Input(6, 6, 2),
        Conv2D(3, 3, activation="linear"),
        ZeroPadding2D(1),
        MaxPooling2D(3, strides=1, padding="same"),
        Flatten(),
        Dense(3, activation="linear"),
        seed=seed,
    )
    model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
    return model


def python_steps(model: object, x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    """Train the compiled `model` one epoch over x, y in order (one step per batch, as the JS loop runs them);
    returns the seconds fit took."""
    start = time.perf_counter()
    model.fit((x, y), epochs=1, batch_size=batch_size, shuffle=False, verbose=0)  # type: ignore[attr-defined]
    return time.perf_counter() - start


def max_difference(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], names: Sequence[str]) -> float:
    """The largest absolute difference between `a` and `b` over the tensors `names`."""
    return max(float(np.max(np.abs(np.asarray(a[n], np.float64) - np.asarray(b[n], np.float64)))) for n in names)


def run_node(
    bundle: Path, batches: Path, out: Path, steps: int | None = None, threads: int = 0, warmup: int = 0
) -> dict:
    """js/tools/parity.mjs on a bundle and batches; returns its result.json (state.bin and model.onnx are in
    `out`). `threads` 0 is onnxruntime-node's default; `warmup` untimed steps run first on a trainer of their own."""
    command = ["node", str(JS / "tools" / "parity.mjs"), str(bundle), str(batches), str(out)]
    if steps is not None:
        command.append(str(steps))
    env = {**os.environ, "ONNXTRAIN_JS_THREADS": str(threads), "ONNXTRAIN_JS_WARMUP": str(warmup)}
    done = subprocess.run(command, cwd=JS, capture_output=True, text=True, timeout=300, env=env)
    if done.returncode != 0:
        raise AssertionError(f"node tools/parity.mjs failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads((out / "result.json").read_text(encoding="utf-8"))


def node_script(body: str, directory: Path) -> Any:
    """Run `body` (the statements of an async ES module) under Node.js with `ort` (onnxruntime-node), `Trainer`
    (js/src) and `attempt(f)` in scope; `attempt` resolves to {value} or {error: the class name, message}. The
    module sets `result`, returned as JSON (bigints as numbers, typed arrays as lists)."""
    preamble = f"""
import * as ort from {json.dumps((ORT_NODE / "dist" / "index.js").as_uri())};
import {{ Trainer }} from {json.dumps((JS / "src" / "index.js").as_uri())};
const attempt = async (f) => {{
  try {{ return {{ value: await f() }}; }} catch (e) {{ return {{ error: e.constructor.name, message: e.message }}; }}
}};
let result = null;
"""
    epilogue = """
console.log(JSON.stringify(result, (k, v) =>
  typeof v === "bigint" ? Number(v) : ArrayBuffer.isView(v) ? Array.from(v, Number) : v));
"""
    script = directory / "script.mjs"
    script.write_text(preamble + body + epilogue, encoding="utf-8")
    done = subprocess.run(["node", str(script)], cwd=JS, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"node {script} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with the headers that make a page cross-origin isolated (COOP/COEP), which onnxruntime-web
    needs for WebAssembly threads (SharedArrayBuffer); without them it runs one thread."""

    extensions_map = {  # noqa: RUF012 (SimpleHTTPRequestHandler's own class attribute)
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".onnx": "application/octet-stream",
    }
    isolated = True

    def end_headers(self) -> None:
        if self.isolated:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the tests print what matters
        pass


@contextlib.contextmanager
def serve(root: Path, isolated: bool = True) -> Iterator[str]:
    """Serve `root` on a free localhost port from a thread; yields the base URL (ending in /)."""
    handler = type("Handler", (_Handler,), {"isolated": isolated})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def missing_browser() -> str | None:
    """Why the browser checks cannot run here (Playwright for Python, Debian's chromium), or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e .[dev])"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does as root)"
    return missing_js_dependencies(ORT_WEB)


@contextlib.contextmanager
def chromium_page() -> Iterator[Any]:
    """A new page of a headless Debian Chromium, closed after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            messages: list[str] = []
            page.on("console", lambda message: messages.append(message.text))
            page.on("pageerror", lambda error: messages.append(f"page error: {error}"))
            page.console_messages = messages  # read by the tests' failure messages
            yield page
        finally:
            browser.close()


def draw_on_pad(page: Any, strokes: Sequence[Sequence[tuple[float, float]]], steps: int = 6) -> list[int]:
    """Draw `strokes` (points in fractions of the demo page's drawing pad) with the mouse, `steps` mouse moves per
    segment; returns the 28x28 pixels the page made of them once its live prediction has caught up."""
    pad = page.locator("#draw")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0] * box["width"], box["y"] + stroke[0][1] * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=steps)
        page.mouse.up()
    page.wait_for_function(
        "window.demoPrediction?.guess != null && window.demoPrediction.version === window.demoDrawing().version",
        timeout=30_000,
    )
    return page.evaluate("window.demoDrawing().pixels")


def run_browser(
    page: Any, base: str, bundle: str, batches: str, threads: int = 1, steps: int | None = None, warmup: int = 0
) -> dict:
    """js/tools/browser/harness.html, loaded afresh (onnxruntime-web takes `threads` when it first starts), on a
    bundle and batches under the served root; returns runParity's result."""
    page.goto(base + "js/tools/browser/harness.html")
    try:
        page.wait_for_function("window.harnessReady === true", timeout=60_000)
    except Exception as e:
        raise AssertionError(f"the harness page did not load: {page.console_messages[-10:]}") from e
    options: dict[str, int] = {"threads": threads, "warmup": warmup}
    if steps is not None:
        options["steps"] = steps
    return page.evaluate(
        "([bundle, batches, options]) => window.runParity(bundle, batches, options)",
        [base + bundle, base + batches, options],
    )
