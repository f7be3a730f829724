"""onnxtrain-js under Node.js (js/, onnxruntime-node): its own `node --test` suite, the same steps as Python's
portable engine on the same batches giving the same weights, and `fit` / `predict` giving Python's History and
predictions. Needs node and js/node_modules (`.ci/run` runs `npm ci` in js/); they are required in CI (CI=true),
skipped with the reason elsewhere."""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import onnxruntime as ort
import pytest

from onnxtrain import InferenceModel, Model, Sequential, losses
from onnxtrain.bundle import read_metadata, read_state, unpack_state
from onnxtrain.callbacks import Callback, Logs
from onnxtrain.layers import Concatenate, Dense, Embedding, Flatten, Input
from tests.js_harness import (
    JS,
    ORT_NODE,
    in_ci,
    in_js_names,
    max_difference,
    missing_js_dependencies,
    node_script,
    padded_pool_model,
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


# --- inputs and labels read by Python's rules (onnxtrain/arrays.py, losses.py; js/src/inputs.js)

X = np.random.default_rng(5).random((8, 4), dtype=np.float32)
PIXELS = np.random.default_rng(6).integers(0, 256, size=(8, 4), dtype=np.uint8)
Y = np.array([0, 2, 1, 0, 2, 1, 1, 0])
IDS = np.array([[1, 2, 3], [9, 0, 4]])


def _mlp(loss: str | losses.Loss = "sparse_categorical_crossentropy") -> Sequential:
    model = Sequential.of(Input(4), Dense(5, activation="relu"), Dense(3), seed=1)
    model.compile(optimizer="adam", loss=loss)
    model.input_scale = 1 / 255
    return model


def _embedding(dtype: str = "int64") -> Sequential:
    model = Sequential.of(Input(shape=(3,), dtype=dtype), Embedding(10, 2), Flatten(), Dense(2), seed=1)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.input_scale = 1 / 255  # never applies to token ids
    return model


def _loss(model: Sequential, x: object, y: np.ndarray) -> float:
    return float(model.evaluate(x, y, return_dict=True)["loss"])


def test_float_batches_are_used_as_they_are_and_integer_ones_scaled_as_python_reads_them(tmp_path):
    with _mlp() as model:
        model.export_training_bundle(tmp_path / "bundle")
        python = {
            "float": [_loss(model, X, Y), _loss(model, X.astype(np.float64), Y)],
            "pixels": [_loss(model, PIXELS, Y), _loss(model, PIXELS.astype(np.int32), Y)],
        }
    result = node_script(
        f"""
const t = await Trainer.load(ort, {json.dumps(str(tmp_path / "bundle"))});
const x = Float32Array.from({json.dumps(X.ravel().tolist())});
const pixels = {json.dumps(PIXELS.ravel().tolist())};
const y = {json.dumps(Y.tolist())};
const loss = async (batch) => (await t.evaluate(batch, y)).loss;
result = {{
  float: [await loss(x), await loss(Float64Array.from(x)), await loss(Array.from(x))],
  pixels: [await loss(Uint8Array.from(pixels)), await loss(Uint8ClampedArray.from(pixels)),
           await loss(Int32Array.from(pixels)), await loss(Uint16Array.from(pixels))],
}};
""",
        tmp_path,
    )
    print(json.dumps({"node": result, "python": python}))
    assert len(set(result["float"])) == 1  # Float64Array and plain numbers: not scaled, as Float32Array
    assert len(set(result["pixels"])) == 1
    np.testing.assert_allclose(result["float"][0], python["float"], rtol=1e-6)
    np.testing.assert_allclose(result["pixels"][0], python["pixels"], rtol=1e-6)
    assert abs(result["float"][0] - result["pixels"][0]) > 1e-3  # the two batches differ: the check can tell


@pytest.mark.parametrize("dtype", ["int64", "float32"])
def test_token_ids_are_never_scaled_and_a_flat_array_is_the_one_inputs_ids(tmp_path, dtype):
    with _embedding(dtype) as model:
        model.export_training_bundle(tmp_path / "bundle")
        expected = _loss(model, IDS, np.array([0, 1]))
    assert read_metadata(tmp_path / "bundle")["inputs"][0]["token_ids"] == {"input_dim": 10, "layer": "embedding_1"}
    result = node_script(
        f"""
const t = await Trainer.load(ort, {json.dumps(str(tmp_path / "bundle"))});
const ids = {json.dumps(IDS.ravel().tolist())};
const loss = async (batch) => (await t.evaluate(batch, [0, 1])).loss;
result = [await loss(ids), await loss([ids]), await loss(Uint8Array.from(ids)), await loss(Int32Array.from(ids)),
          await loss(Float64Array.from(ids)), await loss(BigInt64Array.from(ids, BigInt))];
""",
        tmp_path,
    )
    np.testing.assert_allclose(result, [expected] * len(result), rtol=1e-6)


def _python_refusal(model: Sequential, x: object, y: object) -> str:
    """Python's message for fitting on x, y, named as the JS trainer names its arguments (x, labels)."""
    with pytest.raises(ValueError) as refused:
        model.fit(x, y, epochs=1, verbose=0)
    return in_js_names(str(refused.value))


@pytest.mark.parametrize(
    ("which", "x", "labels"),
    [
        ("mlp", X[:2], [0, -1]),
        ("mlp", X[:2], [3, 0]),
        ("mlp", X[:2], [0, 1.5]),
        ("embedding", [[1, 2, -1], [9, 0, 4]], [0, 1]),
        ("embedding", [[1, 2, 3], [9, 30, 4]], [0, 1]),
        ("embedding", [[-1, 2, 30], [9, 10, 4]], [0, 1]),
        ("categorical", X[:2], [[0, 1, 0], [0.5, -0.5, 1]]),  # probability targets: in [0, 1]
        ("binary", X[:2], [[0, 1, 0], [0, 1.5, 1]]),
    ],
)
def test_labels_and_token_ids_out_of_range_are_refused_with_pythons_message(tmp_path, which, x, labels):
    models = {
        "mlp": _mlp,
        "embedding": _embedding,
        "categorical": lambda: _mlp("categorical_crossentropy"),
        "binary": lambda: _mlp(losses.BinaryCrossentropy(from_logits=True)),
    }
    with models[which]() as model:
        model.export_training_bundle(tmp_path / "bundle")
        expected = _python_refusal(model, np.asarray(x), np.asarray(labels))
    result = node_script(
        f"""
const t = await Trainer.load(ort, {json.dumps(str(tmp_path / "bundle"))});
const before = t.stateBytes();
const x = {json.dumps(np.asarray(x).ravel().tolist())};
const labels = {json.dumps(np.asarray(labels).ravel().tolist())};
result = {{
  step: await attempt(() => t.step(x, labels)),
  evaluate: await attempt(() => t.evaluate(x, labels)),
  unchanged: t.stepCount === 0 && t.stateBytes().every((b, i) => b === before[i]),
}};
""",
        tmp_path,
    )
    assert result["step"] == result["evaluate"] == {"error": "RangeError", "message": expected}
    assert result["unchanged"]


BAD_ARGUMENTS = [
    (
        "t.step(x, [0, 1.5])",
        "RangeError",
        r"^labels for loss '\S+' expects integral class indices. Received: labels\[1\]=1.5$",
    ),
    ("t.step(x, [0, NaN])", "RangeError", r"expects integral class indices. Received: labels\[1\]=NaN$"),
    (
        "t.step(x, ['a', 1])",
        "TypeError",
        r"^labels for loss '\S+' expects class indices \(numbers\). Received: labels\[0\]=\"a\"$",
    ),
    (
        "t.step(undefined, [0, 1])",
        "TypeError",
        r"^x expects a typed array or an array of numbers, rows of examples \(number\[\]\[\]\) or a tensor "
        r"\(input input\). Received: undefined$",
    ),
    ("t.step(null, [0, 1])", "TypeError", r"^x expects .* Received: null$"),
    (
        "t.step(x, undefined)",
        "TypeError",
        r"^labels expects class indices: a typed array or an array of numbers, rows of them or a tensor. "
        r"Received: undefined$",
    ),
    ("t.step(x, {0: 1})", "TypeError", r"^labels expects .* Received: an Object$"),
    (  # two arrays for a model of one input are rows of examples (number[][]): each must hold one example
        "t.step([x, x], [0, 1])",
        "RangeError",
        r"^x expects rows of 4 values \(one example of shape \[4\] each\). Received: x\[0\] of 8 values$",
    ),
    (
        "t.step([0.1, 0.2, '0.3', 0.4, 0, 0, 0, 0], [0, 1])",
        "TypeError",
        r"^x expects numbers. Received: x\[0, 2\]=\"0.3\"$",
    ),
    (
        "t.step([0.1, NaN, 0, 0, 0, 0, 0, 0], [0, 1])",
        "RangeError",
        r"^x expects finite values. Received: x\[0, 1\]=NaN$",
    ),
    (
        "t.evaluate(new Float32Array([0, 0, 0, 0, 0, 0, -Infinity, 0]), [0, 1])",
        "RangeError",
        r"^x expects finite values. Received: x\[1, 2\]=-Infinity$",
    ),
    (
        "t.step(new Float64Array([0, 0, 0, 1e39, 0, 0, 0, 0]), [0, 1])",
        "RangeError",
        r"^x expects values within float32's range \(\|x\| <= 3.4e38\), which the model computes in. "
        r"Received: x\[0, 3\]=1e\+39$",
    ),
    ("t.step(new Float32Array(7), [0, 1])", "RangeError", r"^x expects a multiple of 4 values: .* Received: 7 values$"),
    ("t.step(x, [0, 1, 2])", "RangeError", r"^labels expects 2 values \(shape \[2\]\); received 3$"),
    (
        "t.learningRate = '0.1'",
        "TypeError",
        r'^learningRate expects a finite number >= 0. Received: "0.1" \(a string\)$',
    ),
    ("t.learningRate = -1", "RangeError", r"^learningRate expects a finite number >= 0. Received: -1$"),
    (
        "mse.step(x, [0, 1, 2, NaN, 0, 0])",
        "RangeError",
        r"^labels expects finite float targets. Received: labels\[1, 0\]=NaN$",
    ),
    ("mse.step(x, [0, 1, 2, '3', 0, 0])", "TypeError", r"^labels expects numbers. Received: labels\[1, 0\]=\"3\"$"),
]


def test_bad_arguments_give_one_clear_error_naming_argument_position_and_value(tmp_path):
    with _mlp() as model:
        model.export_training_bundle(tmp_path / "bundle")
    with _mlp("mse") as model:
        model.export_training_bundle(tmp_path / "mse")
    cases = ",\n".join(f"await attempt(async () => {{ await ({code}); }})" for code, _, _ in BAD_ARGUMENTS)
    result = node_script(
        f"""
const t = await Trainer.load(ort, {json.dumps(str(tmp_path / "bundle"))});
const mse = await Trainer.load(ort, {json.dumps(str(tmp_path / "mse"))});
const x = Float32Array.from({json.dumps(X[:2].ravel().tolist())});
result = {{ errors: [{cases}], steps: [t.stepCount, mse.stepCount], learningRate: t.learningRate }};
""",
        tmp_path,
    )
    for (code, kind, pattern), got in zip(BAD_ARGUMENTS, result["errors"], strict=True):
        assert got.get("error") == kind, (code, got)
        assert re.search(pattern, got["message"]), (code, got["message"])
    assert result["steps"] == [0, 0] and result["learningRate"] == pytest.approx(0.001)


def test_a_model_of_two_inputs_takes_one_array_per_input_and_says_what_it_received(tmp_path):
    a, b = Input(shape=(4,), name="a"), Input(shape=(2,), dtype="int64", name="b")
    with Model(
        inputs=[a, b], outputs=Dense(3)(Concatenate()([Dense(4)(a), Flatten()(Embedding(10, 2)(b))])), seed=1
    ) as model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.input_scale = 1 / 255
        model.export_training_bundle(tmp_path / "bundle")
        ids = np.array([[1, 2], [3, 9]])
        expected = [_loss(model, [X[:2], ids], Y[:2]), _loss(model, [PIXELS[:2], ids], Y[:2])]
    result = node_script(
        f"""
const t = await Trainer.load(ort, {json.dumps(str(tmp_path / "bundle"))});
const x = {json.dumps(X[:2].ravel().tolist())};
const pixels = Uint8Array.from({json.dumps(PIXELS[:2].ravel().tolist())});
const ids = {json.dumps(ids.ravel().tolist())};
const y = {json.dumps(Y[:2].tolist())};
result = {{
  losses: [(await t.evaluate([x, ids], y)).loss, (await t.evaluate([pixels, BigInt64Array.from(ids, BigInt)], y)).loss],
  flat: await attempt(() => t.step(x, y)),
  one: await attempt(() => t.step([x], y)),
  id: await attempt(() => t.step([x, [1, 2, 3, 10]], y)),
  examples: await attempt(() => t.step([x, [1, 2]], y)),
}};
""",
        tmp_path,
    )
    np.testing.assert_allclose(result["losses"], expected, rtol=1e-6)
    expects = "x expects an array of 2 arrays or tensors, one per model input (a, b). Received: "
    assert result["flat"] == {"error": "TypeError", "message": expects + "an array of 8 numbers"}
    assert result["one"] == {"error": "RangeError", "message": expects + "an array of 1 arrays"}
    assert result["id"]["message"] == (
        "x[1] expects integer token ids in [0, 9] for Embedding layer 'embedding_1' (input_dim=10). "
        "Received: x[1][1, 1]=10"
    )
    assert result["examples"]["message"] == "x expects as many examples in every input. Received: 2 and 1 (x[1])"


# --- fit and predict (js/src/fit.js, js/src/predict.js) against Python's fit and InferenceModel.predict

FIT_X = np.random.default_rng(21).random((50, 6), dtype=np.float32)
FIT_VALIDATION = np.random.default_rng(22).random((20, 6), dtype=np.float32)


def _targets(x: np.ndarray, kind: str) -> np.ndarray:
    """Labels a model of `kind` learns from x: class indices, one-hot rows, 0/1 units or float targets."""
    score = x[:, :3].sum(axis=1) - x[:, 3:].sum(axis=1)
    classes = np.digitize(score, [-0.3, 0.3])
    return {
        "softmax": classes,
        "categorical": np.eye(3, dtype=np.float32)[classes],
        "binary_logits": (score > 0).astype(np.float32)[:, None],
        "binary_sigmoid": np.stack([score > 0, x[:, 0] > 0.5], axis=1).astype(np.float32),
        "mse": np.stack([score, x[:, 1]], axis=1).astype(np.float32),
    }[kind]


def _fit_model(kind: str) -> Sequential:
    last, loss = {
        "softmax": (Dense(3, activation="linear"), "sparse_categorical_crossentropy"),
        "categorical": (Dense(3, activation="softmax"), "categorical_crossentropy"),
        "binary_logits": (Dense(1, activation="linear"), losses.BinaryCrossentropy(from_logits=True)),
        "binary_sigmoid": (Dense(2, activation="sigmoid"), "binary_crossentropy"),
        "mse": (Dense(2, activation="linear"), "mse"),
    }[kind]
    model = Sequential.of(Input(6), Dense(8, activation="relu"), last, seed=3)
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


class _BatchLosses(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self.losses.append(float((logs or {})["loss"]))


@pytest.mark.parametrize("kind", ["softmax", "categorical", "binary_logits", "binary_sigmoid", "mse"])
def test_node_fit_gives_pythons_history_and_predict_pythons_predictions(tmp_path, kind):
    y, y_validation = _targets(FIT_X, kind), _targets(FIT_VALIDATION, kind)
    classifier = kind != "mse"
    with _fit_model(kind) as model:
        model.export_training_bundle(tmp_path / "bundle")
        before = model.predict(FIT_X)
        before_soft = model.predict_softly(FIT_X) if classifier else None
        batches = _BatchLosses()
        history = model.fit(
            (FIT_X, y),
            epochs=2,
            batch_size=8,
            shuffle=False,
            verbose=0,
            validation_data=(FIT_VALIDATION, y_validation),
            callbacks=[batches],
        )
        model.export_training_bundle(tmp_path / "python")
    result = node_script(
        f"""
const {{ writeFileSync }} = await import("node:fs");
const bundle = {json.dumps(str(tmp_path / "bundle"))};
const x = Float32Array.from({json.dumps(FIT_X.ravel().tolist())});
const y = {json.dumps(y.ravel().tolist())};
const xv = Float32Array.from({json.dumps(FIT_VALIDATION.ravel().tolist())});
const yv = {json.dumps(y_validation.ravel().tolist())};
const fresh = await Trainer.load(ort, bundle);
const before = await fresh.predict(x, {{ batchSize: 16 }});
const beforeSoft = {json.dumps(classifier)} ? await fresh.predictSoftly(x, {{ batchSize: 7 }}) : null;
const t = await Trainer.load(ort, bundle);
const batchLosses = [];
const history = await t.fit(x, y, {{
  epochs: 2, batchSize: 8, shuffle: false, validationData: [xv, yv],
  callbacks: {{ onBatchEnd: async (batch, logs) => {{ batchLosses.push(logs.loss); }} }},
}});
writeFileSync({json.dumps(str(tmp_path / "node.onnx"))}, t.exportModel());
writeFileSync({json.dumps(str(tmp_path / "node.state"))}, t.stateBytes());
result = {{
  before, beforeSoft, history, batchLosses, steps: t.stepCount,
  after: await t.predict(x, {{ batchSize: 9 }}),
  afterSoft: {json.dumps(classifier)} ? await t.predict(x, {{ probabilities: true }}) : null,
}};
""",
        tmp_path,
    )
    print(json.dumps({"node": result["history"], "python": history.history, "predicted": result["after"][:12]}))
    # same initial weights: Python's predict and predict_softly
    np.testing.assert_array_equal(result["before"], np.asarray(before).ravel())
    if classifier:
        np.testing.assert_allclose(result["beforeSoft"], np.asarray(before_soft).ravel(), rtol=0, atol=1e-6)
    # fit without shuffling: Python's batches, so Python's losses to float32 tolerance
    assert result["steps"] == 2 * 7  # 50 examples in batches of 8: the last of 2
    assert result["history"]["epoch"] == [0, 1]  # Keras' and TF.js' 0-based epochs; Python's History counts from 1
    assert set(result["history"]["history"]) == set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for key, values in history.history.items():
        np.testing.assert_allclose(result["history"]["history"][key], values, rtol=1e-5, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(result["batchLosses"], batches.losses, rtol=1e-5, atol=1e-6)
    metadata = read_metadata(tmp_path / "bundle")
    node_state = unpack_state((tmp_path / "node.state").read_bytes(), metadata["tensors"])
    assert max_difference(node_state, read_state(tmp_path / "python"), metadata["trainable"]) < 1e-5
    # predict on the trained weights: InferenceModel's on the model Node exported with them
    with InferenceModel.load(tmp_path / "node.onnx") as exported:
        np.testing.assert_array_equal(result["after"], np.asarray(exported.predict(FIT_X)).ravel())
        if classifier:
            soft = np.asarray(exported.predict_softly(FIT_X)).ravel()
            np.testing.assert_allclose(result["afterSoft"], soft, rtol=0, atol=1e-6)


def test_node_fit_and_predict_take_one_array_per_input_of_a_model_of_several(tmp_path):
    rng = np.random.default_rng(23)
    x, ids = rng.random((10, 4), dtype=np.float32), rng.integers(0, 10, size=(10, 2))
    y = (x[:, 0] > 0.5).astype(np.int64) + (ids[:, 0] > 4)
    a, b = Input(shape=(4,), name="a"), Input(shape=(2,), dtype="int64", name="b")
    outputs = Dense(3, activation="linear")(Concatenate()([Dense(4)(a), Flatten()(Embedding(10, 2)(b))]))
    with Model(inputs=[a, b], outputs=outputs, seed=2) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.export_training_bundle(tmp_path / "bundle")
        before = model.predict([x, ids])
        history = model.fit([x, ids], y, epochs=2, batch_size=3, shuffle=False, verbose=0)
    result = node_script(
        f"""
const bundle = {json.dumps(str(tmp_path / "bundle"))};
const x = [Float32Array.from({json.dumps(x.ravel().tolist())}), {json.dumps(ids.ravel().tolist())}];
const y = {json.dumps(y.tolist())};
const t = await Trainer.load(ort, bundle);
const before = await t.predict(x, {{ batchSize: 4 }});
const history = await t.fit(x, y, {{ epochs: 2, batchSize: 3, shuffle: false }});
const shuffled = await Trainer.load(ort, bundle);
const runs = [await shuffled.fit(x, y, {{ epochs: 2, batchSize: 3, seed: 5 }})];
const again = await Trainer.load(ort, bundle);
runs.push(await again.fit(x, y, {{ epochs: 2, batchSize: 3, seed: 5 }}));
result = {{ before, history: history.history, shuffled: runs.map((h) => h.history.loss), steps: again.stepCount }};
""",
        tmp_path,
    )
    np.testing.assert_array_equal(result["before"], before)
    for key, values in history.history.items():
        np.testing.assert_allclose(result["history"][key], values, rtol=1e-5, atol=1e-6, err_msg=key)
    assert result["shuffled"][0] == result["shuffled"][1]  # the same seed: the same gathered batches
    assert result["shuffled"][0] != result["history"]["loss"]
    assert result["steps"] == 2 * 4


def test_node_fit_of_rows_with_validation_split_gives_pythons_history(tmp_path):
    """TF.js' habits: rows (number[][]) for x and labels, and validationSplit, which holds out the examples Python's
    validation_split does (the last round(n * split), before any shuffling)."""
    y = _targets(FIT_X, "softmax")
    with _fit_model("softmax") as model:
        model.export_training_bundle(tmp_path / "bundle")
        history = model.fit(FIT_X, y, epochs=2, batch_size=8, shuffle=False, verbose=0, validation_split=0.3)
    result = node_script(
        f"""
const t = await Trainer.load(ort, {json.dumps(str(tmp_path / "bundle"))});
const rows = {json.dumps(FIT_X.tolist())};
const labels = {json.dumps([[int(v)] for v in y])};
const history = await t.fit(rows, labels, {{ epochs: 2, batchSize: 8, shuffle: false, validationSplit: 0.3 }});
result = {{ history: history.history, steps: t.stepCount }};
""",
        tmp_path,
    )
    assert result["steps"] == 2 * 5  # 35 training examples of 50 in batches of 8
    assert set(result["history"]) == set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for key, values in history.history.items():
        np.testing.assert_allclose(result["history"][key], values, rtol=1e-5, atol=1e-6, err_msg=key)


def test_node_trainer_predicts_and_steps_a_zero_padding_before_a_pool_as_python_does(tmp_path):
    """ONNX Runtime's Pad_Fusion folds a ZeroPadding2D into the next MaxPool's own padding (filled with -inf):
    Trainer.predict and evaluate gave other numbers than Python's until its sessions ran without it, as Python's
    do (js/src/sessions.js). The steps are checked too, and the exported model in a session of sessionOptions()."""
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(24, 6, 6, 2)) - 2).astype(np.float32)
    y = rng.integers(0, 3, size=24)
    with padded_pool_model() as model:
        model.export_training_bundle(tmp_path / "bundle")
        before = model.predict(x)
        before_soft = model.predict_softly(x)
        python_steps(model, x, y, 8)
        after = model.predict(x)
        model.export_training_bundle(tmp_path / "python")
    with InferenceModel.load(tmp_path / "bundle" / "model.onnx") as exported:
        logits = exported.predict_outputs(x)["logits"]
    result = node_script(
        f"""
const {{ sessionOptions }} = await import({json.dumps((JS / "src" / "index.js").as_uri())});
const x = Float32Array.from({json.dumps(x.ravel().tolist())});
const y = {json.dumps(y.tolist())};
const t = await Trainer.load(ort, {json.dumps(str(tmp_path / "bundle"))});
const before = await t.predict(x);
const beforeSoft = await t.predictSoftly(x);
const {{ logits }} = await t.evaluate(x, y);
await t.fit(x, y, {{ epochs: 1, batchSize: 8, shuffle: false }});
const session = await ort.InferenceSession.create(t.exportModel(), sessionOptions());
const exported = await session.run({{ input: new ort.Tensor("float32", x, [24, 6, 6, 2]) }});
const after = await t.predict(x);
result = {{ before, beforeSoft, logits, after, exported: exported.logits.data, state: t.stateBytes() }};
""",
        tmp_path,
    )
    assert len(set(before.tolist())) > 1  # a check that could fail: more than one class
    np.testing.assert_allclose(result["logits"], logits.ravel(), rtol=0, atol=1e-5)
    assert result["before"] == before.tolist()
    np.testing.assert_allclose(result["beforeSoft"], before_soft.ravel(), rtol=0, atol=1e-6)
    assert result["after"] == after.tolist()
    metadata = read_metadata(tmp_path / "bundle")
    node_state = unpack_state(bytes(result["state"]), metadata["tensors"])
    assert max_difference(node_state, read_state(tmp_path / "python"), metadata["trainable"]) < 1e-5
    with InferenceModel.load(tmp_path / "python" / "model.onnx") as trained:
        expected = trained.predict_outputs(x)["logits"]
    np.testing.assert_allclose(result["exported"], expected.ravel(), rtol=0, atol=1e-5)
