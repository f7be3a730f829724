"""onnxtrain-js in a real browser: Debian's Chromium, headless, driven by Playwright for Python, runs onnxruntime-web
(WebAssembly) from a page served by a local http.server thread. The page's steps give Python's weights, and the
.onnx it exports (the demo page's download) loads in Python's onnxruntime and predicts as the page does; a
ZeroPadding2D before a pool evaluates as in Python (the page's sessions run without ONNX Runtime's Pad_Fusion).

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

from onnxtrain import InferenceModel, Sequential
from onnxtrain.bundle import read_metadata, read_state, unpack_state
from onnxtrain.layers import Dense, Embedding, Flatten, Input
from tests.js_harness import (
    ROOT,
    chromium_page,
    draw_on_pad,
    in_ci,
    in_js_names,
    max_difference,
    missing_browser,
    padded_pool_model,
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
    model = Sequential.of(
        Input(28, 28, 1), Flatten(), Dense(16), Dense(10, activation="linear"), seed=12, name="sequential"
    )
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


def test_browser_evaluates_and_steps_a_zero_padding_before_a_pool_as_python_does(tmp_path):
    """onnxruntime-web's Pad_Fusion folds a ZeroPadding2D into the next MaxPool's own padding (filled with -inf),
    and the page's evaluate gave logits 3-5 away from Python's until Trainer.load's sessions ran without it."""
    site = _site(tmp_path)
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(24, 6, 6, 2)) - 2).astype(np.float32)
    y = rng.integers(0, 3, size=24)
    with padded_pool_model() as model:
        model.export_training_bundle(site / "bundle")
        write_batches(site / "batches", x, y, 8)
        python_steps(model, x, y, 8)
        model.export_training_bundle(tmp_path / "python")
    with serve(site) as base, chromium_page() as page:
        result = run_browser(page, base, "bundle/", "batches/")
    metadata = read_metadata(site / "bundle")
    browser = unpack_state(base64.b64decode(result["state"]), metadata["tensors"])
    assert max_difference(browser, read_state(tmp_path / "python"), metadata["trainable"]) < 1e-5
    with InferenceModel.load(tmp_path / "python" / "model.onnx") as trained:
        expected = trained.predict_outputs(x[:8])["logits"]
    np.testing.assert_allclose(result["evaluation"]["logits"], expected.ravel(), rtol=0, atol=1e-5)


def _demo_data(site: Path, count: int) -> tuple[np.ndarray, np.ndarray, Path]:
    """The demo page's data/ under `site` (what examples/web/prepare.py writes), with `_images(count)`."""
    pixels, labels = _images(count)
    data = site / "data"
    data.mkdir()
    pixels.tofile(data / "test-images.bin")
    labels.astype(np.uint8).tofile(data / "test-labels.bin")
    spec = {"count": len(pixels), "shape": [28, 28, 1], "class_names": list(CLASSES)}
    (data / "data.json").write_text(json.dumps(spec), encoding="utf-8")
    return pixels, labels, data


def _open_demo(page, base: str, query: str = "bundle=/data/bundle/&data=/data/") -> None:
    page.goto(base + "examples/web/?" + query)
    page.wait_for_function("window.demoReady === true || window.demoError !== undefined", timeout=60_000)
    assert page.evaluate("window.demoError") is None, page.console_messages


def _fine_tune(page, **fields: str) -> dict:
    """Fill the fine-tune controls (#id: value), press Fine-tune and wait for the page's result."""
    for name, value in fields.items():
        page.fill(f"#{name}", value)
        page.press(f"#{name}", "Tab")  # commits it, as a person moving on does
    page.click("#train")
    page.wait_for_function("window.demoResult !== undefined || window.demoError !== undefined", timeout=120_000)
    assert page.evaluate("window.demoError") is None, page.console_messages
    return page.evaluate("window.demoResult")


def _download(page) -> bytes:
    """Press the download button; checks it names the file it saves and returns the file."""
    with page.expect_download() as download:
        page.click("#download")
    assert page.text_content("#download") == f"Download {download.value.suggested_filename}"
    assert download.value.suggested_filename == "sequential-finetuned.onnx"
    return Path(download.value.path()).read_bytes()


def _logits(model: bytes | Path, pixels: np.ndarray) -> np.ndarray:
    """The exported model's logits for uint8 pixels, scaled as the page scales them."""
    source = model if isinstance(model, bytes) else str(model)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    x = np.asarray(pixels, np.uint8).reshape(-1, 28, 28, 1).astype(np.float32) / np.float32(255)
    return session.run(["logits"], {"input": x})[0]


def _held_out_shown(page, which: str) -> tuple[str, str]:
    return page.text_content(f"#{which}"), page.text_content(f"#{which}-count")


def _expected_shown(right: int, total: int) -> tuple[str, str]:
    return f"{right / total * 100:.2f}%", f"{right} of {total}"


def test_demo_page_fine_tunes_and_scores_the_held_out_slice_as_python_does(tmp_path):
    site = _site(tmp_path)
    pixels, labels, data = _demo_data(site, 300)
    with _model() as model:
        model.export_training_bundle(data / "bundle")
        python_steps(model, pixels[:200], labels[:200], 50)  # uint8 pixels: read with the model's input scale
        expected = model.get_weights()
    with serve(site) as base, chromium_page() as page:
        _open_demo(page, base)
        page.fill("#heldout", "100")
        page.press("#heldout", "Tab")
        assert page.get_attribute("#count", "max") == "200"
        page.uncheck("#shuffle")  # in order, as python_steps
        result = _fine_tune(page, count="200", batch="50")
        before, after = _held_out_shown(page, "before"), _held_out_shown(page, "after")
        shown = page.eval_on_selector_all("#gallery figcaption", "captions => captions.map(c => c.textContent)")
        status = page.text_content("#status")
        model_bytes = _download(page)
    assert result["steps"] == 4 and result["images"] == 200
    assert result["heldOut"]["first"] == 200 and result["heldOut"]["count"] == 100
    assert status.startswith("Done: 4 steps") and "sequential-finetuned.onnx" in status
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["logits", "probabilities"]
    held_out = slice(200, 300)
    right_before = int((_logits(data / "bundle" / "model.onnx", pixels[held_out]).argmax(1) == labels[held_out]).sum())
    right_after = int((_logits(model_bytes, pixels[held_out]).argmax(1) == labels[held_out]).sum())
    print(json.dumps({"held_out_shown": [before, after], "python": [right_before, right_after], **result}))
    assert before == _expected_shown(right_before, 100)
    assert after == _expected_shown(right_after, 100)
    assert shown == [CLASSES[k] for k in _logits(model_bytes, pixels[200:216]).argmax(1)]
    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load_from_string(model_bytes).graph.initializer}
    assert max_difference(weights, expected, list(expected)) < 1e-5


# Strokes in fractions of the drawing pad: a filled box with a handle (a bag) and two legs (trousers).
BODY = [(0.2, 0.4), (0.8, 0.4), (0.8, 0.85), (0.2, 0.85), (0.2, 0.5), (0.8, 0.5), (0.8, 0.65), (0.2, 0.65)]
BAG = [[*BODY, (0.2, 0.75), (0.8, 0.75)], [(0.35, 0.4), (0.4, 0.2), (0.6, 0.2), (0.65, 0.4)]]
TROUSERS = [[(0.35, 0.1), (0.65, 0.1)], [(0.38, 0.1), (0.32, 0.9)], [(0.62, 0.1), (0.68, 0.9)]]


def _assert_like_fashion_mnist(pixels: list[int]) -> None:
    """White on black, the longer side spanning the 28 pixels and the shorter one centred, as Fashion-MNIST."""
    image = np.asarray(pixels).reshape(28, 28)
    rows, columns = np.nonzero(image.any(axis=1))[0], np.nonzero(image.any(axis=0))[0]
    spans = sorted([(rows[0], rows[-1]), (columns[0], columns[-1])], key=lambda s: s[1] - s[0])
    assert image.max() == 255 and (image == 0).mean() > 0.2
    assert spans[1] == (0, 27)
    assert abs((spans[0][0] + spans[0][1]) / 2 - 13.5) <= 1


def test_demo_page_learns_drawn_examples_and_its_download_predicts_like_the_page(tmp_path):
    site = _site(tmp_path)
    pixels, labels, data = _demo_data(site, 300)
    with _model() as model:
        model.export_training_bundle(data / "bundle")
    template = data / "bundle" / "model.onnx"
    with serve(site) as base, chromium_page() as page:
        _open_demo(page, base)
        drawn = []
        for strokes, label in ((BAG, 8), (TROUSERS, 1)):
            drawn.append(draw_on_pad(page, strokes))
            guess = page.evaluate("window.demoPrediction.guess")
            assert page.text_content("#prediction li span") == CLASSES[guess]  # the likeliest class comes first
            assert guess == _logits(template, drawn[-1]).argmax(1)[0]
            page.select_option("#example-class", CLASSES[label])
            page.click("#add")
        page.wait_for_function("document.querySelectorAll('#examples figcaption').length === 2")
        assert page.evaluate("window.demoExamples()") == [
            {"label": 8, "pixels": drawn[0]},
            {"label": 1, "pixels": drawn[1]},
        ]
        assert page.is_checked("#mine")
        result = _fine_tune(page, heldout="100", count="100", repeats="10", batch="20", epochs="3")
        captions = page.eval_on_selector_all("#examples figcaption", "captions => captions.map(c => c.textContent)")
        after = _held_out_shown(page, "after")
        model_bytes = _download(page)
        page.fill("#epochs", "20")
        page.fill("#batch", "1")
        page.click("#train")
        page.click("#stop")  # enabled once training starts; the page finishes the step in flight and scores
        page.wait_for_function("window.demoResult !== undefined || window.demoError !== undefined", timeout=60_000)
        stopped, status = page.evaluate("window.demoResult"), page.text_content("#status")
        assert page.is_enabled("#download") and page.is_enabled("#train")
    assert status.startswith(f"Stopped: {stopped['steps']} steps") and stopped["steps"] < 20 * 120
    assert result["steps"] == 3 * 6 and result["images"] == 3 * (100 + 2 * 10)
    for strokes in drawn:
        _assert_like_fashion_mnist(strokes)
    guesses = _logits(model_bytes, np.asarray(drawn)).argmax(1)
    assert captions == [f"{CLASSES[8]} → {CLASSES[guesses[0]]}", f"{CLASSES[1]} → {CLASSES[guesses[1]]}"]
    right = int((_logits(model_bytes, pixels[200:]).argmax(1) == labels[200:]).sum())
    print(json.dumps({"examples_shown": captions, "held_out_shown": after, "python": right, "stopped": stopped}))
    assert after == _expected_shown(right, 100)


def test_demo_page_says_which_command_makes_a_missing_bundle(tmp_path):
    site = _site(tmp_path)
    _demo_data(site, 300)
    with serve(site) as base, chromium_page() as page:
        page.goto(base + "examples/web/?bundle=/no-bundle/&data=/data/")
        page.wait_for_function("window.demoError !== undefined", timeout=60_000)
        assert page.get_attribute("body", "data-state") == "error"
        assert page.is_visible("#error") and page.is_disabled("#train")
        message = page.text_content("#error")
    assert "/no-bundle/" in message and "HTTP 404" in message
    assert "python examples/web/prepare.py" in message


def test_browser_reads_float64_batches_unscaled_and_refuses_labels_and_ids_out_of_range_as_python(tmp_path):
    """onnxruntime-web, through the same input rules as Node.js (js/src/inputs.js; tests/test_js.py has the table)."""
    site = _site(tmp_path)
    x = np.random.default_rng(5).random((2, 4), dtype=np.float32)
    with Sequential.of(Input(4), Dense(5, activation="relu"), Dense(3), seed=1) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.input_scale = 1 / 255
        model.export_training_bundle(site / "mlp")
        expected_loss = float(model.evaluate(x, np.array([0, 2]), return_dict=True)["loss"])
        with pytest.raises(ValueError) as label:
            model.fit(x, np.array([0, -1]), verbose=0)
    with Sequential.of(Input(shape=(3,), dtype="int64"), Embedding(10, 2), Flatten(), Dense(2), seed=1) as model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.export_training_bundle(site / "embedding")
        with pytest.raises(ValueError) as ids:
            model.fit(np.array([[1, 2, 30], [9, 0, 4]]), np.array([0, 1]), verbose=0)
    with serve(site) as base, chromium_page() as page:
        page.goto(base + "js/tools/browser/harness.html")
        page.wait_for_function("window.harnessReady === true", timeout=60_000)
        result = page.evaluate(
            """async (x) => {
              const { ort, Trainer } = window.onnxtrain;
              ort.env.wasm.numThreads = 1;
              const options = { sessionOptions: { executionProviders: ["wasm"] } };
              const t = await Trainer.load(ort, "/mlp/", options);
              const e = await Trainer.load(ort, "/embedding/", options);
              const refusal = async (f) => { try { await f(); return null; } catch (err) { return err.message; } };
              return {
                losses: [(await t.evaluate(Float32Array.from(x), [0, 2])).loss,
                         (await t.evaluate(Float64Array.from(x), [0, 2])).loss,
                         (await t.evaluate(x, [0, 2])).loss],
                label: await refusal(() => t.step(Float32Array.from(x), [0, -1])),
                ids: await refusal(() => e.step([1, 2, 30, 9, 0, 4], [0, 1])),
                steps: [t.stepCount, e.stepCount],
              };
            }""",
            x.ravel().tolist(),
        )
    assert len(set(result["losses"])) == 1
    np.testing.assert_allclose(result["losses"][0], expected_loss, rtol=1e-6)
    assert result["label"] == in_js_names(str(label.value))
    assert result["ids"] == in_js_names(str(ids.value))
    assert result["steps"] == [0, 0]
