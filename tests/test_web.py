"""onnxtrain-js in a real browser: Debian's Chromium, headless, driven by Playwright for Python, runs onnxruntime-web
(WebAssembly) from a page served by a local http.server thread. The page's steps give Python's weights, and the
.onnx it exports (the demo page's download) loads in Python's onnxruntime and predicts as the page does.

Needs playwright, /usr/bin/chromium and js/node_modules (`.ci/run` installs them): with CI=true a missing one fails
the tests, elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from onnxtrain import Sequential
from onnxtrain.bundle import read_metadata, read_state, unpack_state
from onnxtrain.layers import Dense, Flatten, Input
from tests.js_harness import (
    ROOT,
    chromium_page,
    in_ci,
    max_difference,
    missing_browser,
    python_steps,
    run_browser,
    serve,
    write_batches,
)

pytestmark = pytest.mark.slow
CLASSES = tuple(f"class {k}" for k in range(10))


@pytest.fixture(scope="module", autouse=True)
def _browser() -> None:
    reason = missing_browser()
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)


def _site(tmp_path: Path) -> Path:
    """A folder to serve: js/ and examples/ of the repository (linked) and the test's own files."""
    site = tmp_path / "site"
    site.mkdir()
    for name in ("js", "examples"):
        (site / name).symlink_to(ROOT / name)
    return site


def _images(count: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 28x28 'images' whose class the mean of their top rows decides."""
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, size=(count, 28, 28, 1), dtype=np.uint8)
    return pixels, (pixels[:, :8].mean(axis=(1, 2, 3)) * 10 / 256).astype(np.int64) % 10


def _model() -> Sequential:
    model = Sequential.of(Input(28, 28, 1), Flatten(), Dense(16), Dense(10, activation="linear"), seed=12)
    model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
    model.input_scale = 1 / 255
    model.class_names = CLASSES
    return model


@pytest.mark.parametrize("threads", [1, 2])
def test_browser_steps_give_pythons_weights_and_its_export_predicts_alike(tmp_path, threads):
    site = _site(tmp_path)
    pixels, labels = _images(1200)
    x = pixels.astype(np.float32) / np.float32(255)
    with _model() as model:
        model.fit((x[:40], labels[:40]), epochs=1, batch_size=20, verbose=0)  # the bundle continues a run
        model.export_training_bundle(site / "bundle")
        write_batches(site / "batches", x, labels, 12)  # 100 steps
        python_steps(model, x, labels, 12)
        model.export_training_bundle(tmp_path / "python")
    with serve(site) as base, chromium_page() as page:
        result = run_browser(page, base, "bundle/", "batches/", threads=threads)
    metadata = read_metadata(site / "bundle")
    browser = unpack_state(base64.b64decode(result["state"]), metadata["tensors"])
    python = read_state(tmp_path / "python")
    difference = max_difference(browser, python, metadata["trainable"])
    shown = {k: result[k] for k in ("runtime", "threads", "crossOriginIsolated", "steps", "seconds")}
    print(json.dumps({**shown, "max_weight_difference": difference}))
    assert result["crossOriginIsolated"] and result["threads"] == threads
    assert browser["step"] == python["step"] == 2 + 100
    assert difference < 1e-5
    session = ort.InferenceSession(base64.b64decode(result["model"]), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": x[:12]})[0]
    np.testing.assert_allclose(logits.ravel(), result["evaluation"]["logits"], rtol=0, atol=1e-5)


def test_demo_page_fine_tunes_and_its_download_predicts_like_the_page(tmp_path):
    site = _site(tmp_path)
    pixels, labels = _images(300)
    data = site / "data"
    data.mkdir()
    pixels.tofile(data / "test-images.bin")
    labels.astype(np.uint8).tofile(data / "test-labels.bin")
    spec = {"count": len(pixels), "shape": [28, 28, 1], "class_names": list(CLASSES)}
    (data / "data.json").write_text(json.dumps(spec), encoding="utf-8")
    with _model() as model:
        model.export_training_bundle(data / "bundle")
        python_steps(model, pixels, labels, 50)  # uint8 pixels: read with the model's input scale, as the page
        expected = model.get_weights()
    with serve(site) as base, chromium_page() as page:
        page.goto(base + "examples/web/?bundle=/data/bundle/&data=/data/")
        page.wait_for_function("window.demoReady === true || window.demoError !== undefined", timeout=60_000)
        assert page.evaluate("window.demoError") is None, page.console_messages
        page.fill("#count", "300")
        page.fill("#batch", "50")
        page.click("#train")
        page.wait_for_function("window.demoResult !== undefined || window.demoError !== undefined", timeout=120_000)
        assert page.evaluate("window.demoError") is None, page.console_messages
        result = page.evaluate("window.demoResult")
        shown = page.eval_on_selector_all("#gallery figcaption", "captions => captions.map(c => c.textContent)")
        with page.expect_download() as download:
            page.click("#download")
        path = download.value.path()
        assert download.value.suggested_filename == "sequential-finetuned.onnx"
        model_bytes = Path(path).read_bytes()
    assert result["steps"] == 6 and result["images"] == 300
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["logits", "probabilities"]
    predicted = session.run(["logits"], {"input": pixels[:16].astype(np.float32) / np.float32(255)})[0].argmax(1)
    assert shown == [CLASSES[k] for k in predicted]
    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load_from_string(model_bytes).graph.initializer}
    assert max_difference(weights, expected, list(expected)) < 1e-5
