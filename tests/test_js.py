"""onnxtrain-js under Node.js (js/, onnxruntime-node): its own `node --test` suite, and the same steps as Python's
portable engine on the same batches giving the same weights. Needs node and js/node_modules (`.ci/run` runs
`npm ci` in js/); they are required in CI (CI=true), skipped with the reason elsewhere."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import onnxruntime as ort
import pytest

from onnxtrain import Sequential
from onnxtrain.bundle import read_metadata, read_state, unpack_state
from onnxtrain.layers import Dense, Flatten, Input
from tests.js_harness import (
    JS,
    ORT_NODE,
    in_ci,
    max_difference,
    missing_js_dependencies,
    python_steps,
    run_node,
    write_batches,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _node_and_packages() -> None:
    reason = missing_js_dependencies(ORT_NODE)
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI must run the Node.js tests: {reason}")
        pytest.skip(reason)


def test_the_js_package_tests_pass():
    done = subprocess.run(["node", "--test", "test/"], cwd=JS, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_node_steps_give_pythons_weights_and_its_export_predicts_alike(tmp_path, optimizer):
    rng = np.random.default_rng(2)
    x = rng.random((600, 6, 6, 1), dtype=np.float32)
    y = (x[:, :3].mean(axis=(1, 2, 3)) * 4).astype(np.int64) % 4
    with Sequential.of(Input(6, 6, 1), Flatten(), Dense(16), Dense(4, activation="linear"), seed=9) as model:
        model.compile(optimizer=optimizer, loss="softmax_cross_entropy_with_logits")
        model.fit((x, y), epochs=1, batch_size=200, verbose=0)  # a bundle continues a run: not from step 0
        model.export_training_bundle(tmp_path / "bundle")
        write_batches(tmp_path / "batches", x, y, 6)
        python_steps(model, x, y, 6)
        model.export_training_bundle(tmp_path / "python")
    result = run_node(tmp_path / "bundle", tmp_path / "batches", tmp_path / "node")
    metadata = read_metadata(tmp_path / "bundle")
    python = read_state(tmp_path / "python")
    node = unpack_state((tmp_path / "node" / "state.bin").read_bytes(), metadata["tensors"])
    assert node["step"] == python["step"] == 3 + 100
    difference = max_difference(node, python, metadata["trainable"])
    print(json.dumps({"runtime": result["runtime"], "steps": result["steps"], "max_weight_difference": difference}))
    assert difference < 1e-5
    session = ort.InferenceSession(str(tmp_path / "node" / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": x[:6]})[0]
    np.testing.assert_allclose(logits.ravel(), result["evaluation"]["logits"], rtol=0, atol=1e-5)
