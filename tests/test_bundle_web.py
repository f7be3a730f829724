"""js/README.md's page without a bundler, as written: its import map of onnxruntime-web's WebAssembly build and
onnxtrain-js loads a training bundle in headless Chromium and trains a step."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.layers import Dense, Input
from tests.js_harness import JS, ORT_WEB, chromium_page, missing_browser, serve

pytestmark = pytest.mark.slow


def _readme_page() -> str:
    """The README's ```html block."""
    found = re.search(r"```html\n(.*?)```", (JS / "README.md").read_text(encoding="utf-8"), re.S)
    assert found is not None, "js/README.md has no ```html block"
    return found.group(1)


def test_the_readmes_import_map_page_trains_in_chromium():
    reason = missing_browser()
    if reason is not None:
        pytest.skip(reason)
    html = _readme_page()
    last = html.rindex("</script>")  # the module script's end: record what a step gives
    step = "  window.result = (await trainer.step(new Float32Array(2 * 4).fill(0.5), [0, 1])).loss;\n"
    page_html = html[:last] + step + html[last:]
    assert page_html.count("window.result") == 1
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "node_modules").mkdir()
        (root / "node_modules" / "onnxruntime-web").symlink_to(ORT_WEB)
        (root / "node_modules" / "onnxtrain-js").symlink_to(JS)
        (root / "index.html").write_text(page_html, encoding="utf-8")
        with Sequential.of(Input(4), Dense(3, activation="linear"), seed=1) as model:
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            model.export_training_bundle(root / "bundle")
            expected = float(model.train_on_batch(np.full((2, 4), 0.5, np.float32), np.array([0, 1])))
        with serve(root) as base, chromium_page() as page:
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + "index.html")
            page.wait_for_function("window.result !== undefined", timeout=60000)
            assert errors == []
            assert page.evaluate("window.result") == pytest.approx(expected, rel=1e-5)
