"""Sequential: the KotlinDL flow (compile, summary, fit, evaluate, predict, close) and its error paths."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import reference as ref

from onnxtrain import Dataset, Sequential, activations, load_model
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelStateError,
    RuntimeSetupError,
    UnknownIdentifierError,
    UnsupportedError,
)
from onnxtrain.layers import Activation, Dense, Flatten, Input, Softmax
from onnxtrain.losses import BinaryCrossentropy, Losses
from onnxtrain.metrics import Metrics
from onnxtrain.optimizers import Adam


def blob_model(seed: int = 4) -> Sequential:
    return Sequential.of(Input(4, 3), Flatten(), Dense(16), Dense(3, activation="linear"), seed=seed)


def test_fit_evaluate_predict_learn_a_separable_problem(blobs):
    x, y = blobs
    with blob_model() as model:
        model.compile(
            optimizer=Adam(learning_rate=0.01),
            loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS,
            metric=Metrics.ACCURACY,
        )
        history = model.fit(dataset=Dataset(x, y), epochs=5, batch_size=16, verbose=0)
        assert history.epochs == [1, 2, 3, 4, 5]
        assert set(history.history) == {"loss", "accuracy"}
        assert history.history["loss"][-1] < history.history["loss"][0]
        result = model.evaluate(dataset=(x, y), batch_size=32)
        assert result.metrics[Metrics.ACCURACY] == result.metrics["accuracy"] >= 0.95
        predictions = model.predict(x)
        assert predictions.shape == (120,) and predictions.dtype == np.int64
        assert isinstance(model.predict(x[0]), int)
        probabilities = model.predict_softly(x)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
        np.testing.assert_array_equal(probabilities.argmax(axis=1), predictions)


def test_evaluate_equals_numpy_on_the_trained_weights(blobs):
    x, y = blobs
    with blob_model() as model:
        model.compile(optimizer="adam", metric="accuracy")
        model.fit((x, y), epochs=1, batch_size=50, verbose=0)
        result = model.evaluate((x, y), batch_size=50)
        weights = model.get_weights()
    loss, _ = ref.mlp_gradients(weights, x, y, ["dense_1", "dense_2"], ["relu", "linear"])
    logits = ref.mlp_forward(weights, x, ["dense_1", "dense_2"], ["relu", "linear"])[-1]
    assert result.loss == pytest.approx(loss, rel=1e-4)
    assert result.metrics["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == y))


def test_same_seed_gives_bit_identical_weights_after_fit(blobs):
    x, y = blobs

    def train(seed):
        with blob_model(seed) as model:
            model.compile(optimizer="adam")
            model.fit((x, y), epochs=2, batch_size=16, verbose=0)
            return model.get_weights()

    first, again, other = train(1), train(1), train(2)
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
        assert not np.array_equal(first[name], other[name])


def test_fit_seed_changes_only_the_shuffle(blobs):
    x, y = blobs

    def train(fit_seed):
        with blob_model(1) as model:
            model.compile(optimizer="adam")
            model.fit((x, y), epochs=1, batch_size=16, seed=fit_seed, verbose=0)
            return model.get_weights()["dense_1.kernel"]

    np.testing.assert_array_equal(train(5), train(5))
    assert not np.array_equal(train(5), train(6))


def test_last_partial_batch_is_trained(blobs):
    x, y = blobs
    with blob_model() as model:
        model.compile(optimizer="sgd")
        model.fit((x[:17], y[:17]), epochs=1, batch_size=16, shuffle=False, verbose=0)
        after_two_steps = model.get_weights()
    with blob_model() as model:
        model.compile(optimizer="sgd")
        model.fit((x[:16], y[:16]), epochs=1, batch_size=16, shuffle=False, verbose=0)
        after_one_step = model.get_weights()
    assert not np.array_equal(after_two_steps["dense_1.kernel"], after_one_step["dense_1.kernel"])


def test_fit_prints_one_line_per_epoch(blobs, capsys):
    x, y = blobs
    with blob_model() as model:
        model.compile(optimizer="adam", metric="accuracy")
        model.fit((x, y), epochs=2, batch_size=32, verbose=2)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 2 and "loss" in lines[0] and "accuracy" in lines[0]


def test_regression_loss_trains_and_predicts_raw_outputs():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32)
    with Sequential.of(Input(3), Dense(1, activation="linear"), seed=1) as model:
        model.compile(optimizer=Adam(learning_rate=0.05), loss=Losses.MSE, metric=Metrics.MAE)
        history = model.fit((x, y), epochs=30, batch_size=20, verbose=0)
        assert history.history["loss"][-1] < 0.01
        assert model.predict(x).shape == (200, 1)
        with pytest.raises(InvalidArgumentError, match="predict_softly needs a classification loss"):
            model.predict_softly(x)


def test_binary_crossentropy_on_a_sigmoid_output():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 2)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    with Sequential.of(Input(2), Dense(1, activation="sigmoid"), seed=1) as model:
        model.compile(optimizer=Adam(learning_rate=0.05), loss=Losses.BINARY_CROSSENTROPY, metric="accuracy")
        model.fit((x, y), epochs=20, batch_size=20, verbose=0)
        assert model.evaluate((x, y)).metrics["accuracy"] > 0.95
        assert set(np.unique(model.predict(x))) <= {0, 1}


@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_crossentropy_on_several_units_predicts_them_as_keras_an_autoencoder(from_logits):
    # README: predict decides classes for softmax or ONE sigmoid unit; several units (a reconstruction, multi-label
    # scores) come back as the layer gives them, as Keras' predict returns them.
    x = np.random.default_rng(3).uniform(size=(40, 6)).astype(np.float32)
    last = Dense(6, activation="linear" if from_logits else "sigmoid")
    with Sequential.of(Input(6), Dense(4), last, seed=1) as model:
        model.compile(optimizer=Adam(), loss=BinaryCrossentropy(from_logits=from_logits))
        model.fit((x, x), epochs=1, batch_size=20, verbose=0)
        weights = model.get_weights()
        hidden = np.maximum(x @ weights["dense_1.kernel"] + weights["dense_1.bias"], 0)
        raw = hidden @ weights["dense_2.kernel"] + weights["dense_2.bias"]
        sigmoid = 1 / (1 + np.exp(-raw))
        predictions = model.predict(x)
        assert predictions.dtype == np.float32 and predictions.shape == (40, 6)
        np.testing.assert_allclose(predictions, raw if from_logits else sigmoid, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model.predict_softly(x), sigmoid, rtol=1e-5, atol=1e-6)


@pytest.mark.training
def test_with_block_closes_and_close_is_idempotent(blobs):
    x, y = blobs
    model = blob_model()
    with model:
        model.compile(optimizer="adam", engine="ort-training")
        artifacts_dir = model._trainer.engine.artifacts.directory
        assert artifacts_dir.is_dir()
    assert not artifacts_dir.exists()
    model.close()
    with pytest.raises(ModelStateError, match="closed model"):
        model.fit((x, y), epochs=1, batch_size=8)


@pytest.mark.training
def test_artifacts_dir_keeps_the_artifacts(tmp_path):
    with blob_model() as model:
        model.compile(optimizer="adam", artifacts_dir=tmp_path / "artifacts", engine="ort-training")
    assert sorted(p.name for p in (tmp_path / "artifacts").iterdir()) == [
        "checkpoint",
        "eval_model.onnx",
        "optimizer_model.onnx",
        "training_model.onnx",
    ]


def _fail_after_making(monkeypatch, write: bool) -> None:
    """Make the engine's artifact writer fail on its first file, once it has created its folder (and, with
    `write`, left a file in it), as a full disk would. Both engines' writers save their graphs with onnx.save."""
    import onnx

    def save_then_fail(model, path, *args, **kwargs):
        if write:
            (Path(path).parent / "eval.onnx").write_bytes(b"half")
        raise UnsupportedError("no gradient for this operator")

    monkeypatch.setattr(onnx, "save", save_then_fail)


# The ort-training engine builds its graphs with the training API before it writes them.
ARTIFACT_ENGINES = [pytest.param("ort-training", marks=pytest.mark.training), "portable"]


@pytest.mark.parametrize("engine", ARTIFACT_ENGINES)
def test_a_failed_compile_removes_the_artifacts_folders_it_created(tmp_path, monkeypatch, engine):
    _fail_after_making(monkeypatch, write=False)
    with blob_model() as model:
        with pytest.raises(UnsupportedError, match="no gradient"):
            model.compile(engine=engine, artifacts_dir=tmp_path / "runs" / "artifacts")
        assert not model.is_compiled
    assert os.listdir(tmp_path) == []  # the missing parent "runs" it made is gone too


@pytest.mark.parametrize("engine", ARTIFACT_ENGINES)
@pytest.mark.parametrize("before", ["empty folder", "earlier artifacts", "missing"])
def test_a_failed_compile_keeps_a_folder_that_existed_or_holds_files(tmp_path, monkeypatch, engine, before):
    # A folder holding other files than artifacts is refused before anything is written (test_artifacts_folder).
    directory = tmp_path / "artifacts"
    if before != "missing":
        directory.mkdir()
    if before == "earlier artifacts":
        (directory / "checkpoint").write_bytes(b"an earlier compile's")
    _fail_after_making(monkeypatch, write=before == "missing")  # missing: made, then written into
    with blob_model() as model, pytest.raises(UnsupportedError):
        model.compile(engine=engine, artifacts_dir=directory)
    expected = {"empty folder": [], "earlier artifacts": ["checkpoint"], "missing": ["eval.onnx"]}[before]
    assert sorted(os.listdir(directory)) == expected
    if before == "earlier artifacts":
        assert (directory / "checkpoint").read_bytes() == b"an earlier compile's"


BAD_CALLS = [
    (lambda m, d: m.fit(d, epochs=1, batch_size=8), ModelStateError, r"fit\(\) needs a compiled model"),
    (lambda m, d: m.evaluate(d), ModelStateError, r"evaluate\(\) needs a compiled model"),
    (lambda m, d: m.predict_softly(d[0]), ModelStateError, r"predict_softly\(\) needs a compiled model"),
    (
        lambda m, d: m.compile(optimizer="rmsprop2"),
        UnknownIdentifierError,
        r"Could not interpret optimizer 'rmsprop2'",
    ),
    (lambda m, d: m.compile(loss="focal"), UnknownIdentifierError, r"Could not interpret loss 'focal'"),
    (lambda m, d: m.compile(metric="f1"), UnknownIdentifierError, r"Could not interpret metric 'f1'"),
    (lambda m, d: m.compile(device="tpu"), InvalidArgumentError, r"device expects .*Received: device='tpu'"),
    (lambda m, d: m.compile(engine="jax"), InvalidArgumentError, r"engine expects"),
    (lambda m, d: m.compile(artifacts_dir=""), InvalidArgumentError, r"Received: artifacts_dir=''"),
    (lambda m, d: m.compile(artifacts_dir=3), InvalidArgumentError, r"folder path.*Received: artifacts_dir=3"),
    (lambda m, d: m.compile(optimizer=Adam(learning_rate=-1)), InvalidArgumentError, r"learning_rate=-1"),
    (lambda m, d: m.compile(opset=99), InvalidArgumentError, r"opset expects an int"),
    (lambda m, d: m.compile(ir_version=3), InvalidArgumentError, r"ir_version expects an int"),
]


@pytest.mark.parametrize(("call", "error", "message"), BAD_CALLS)
def test_bad_calls_fail_with_clear_messages(blobs, call, error, message):
    with blob_model() as model, pytest.raises(error, match=message):
        call(model, blobs)


def test_cuda_without_a_cuda_provider_names_the_extra():
    from onnxtrain._runtime import available_providers

    if "CUDAExecutionProvider" in available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with (
        blob_model() as model,
        pytest.raises(RuntimeSetupError, match=r"CUDA execution provider.*onnxtrain\[cuda\]"),
    ):
        model.compile(device="cuda")


def tutorial_model(last: Dense) -> Sequential:
    return Sequential.of(Input(28, 28, 1), Flatten(), Dense(300), Dense(100), last, seed=0)


def relu_inputs(model: onnx.ModelProto | Path) -> set[str]:
    """The values a graph passes through a Relu: the forward's (both engines write ReLU's gradient without one)."""
    graph = (onnx.load(model) if isinstance(model, Path) else model).graph
    return {node.input[0] for node in graph.node if node.op_type == "Relu"}


TRAINING_GRAPHS = [
    pytest.param("ort-training", "training_model.onnx", marks=pytest.mark.training),
    ("portable", "train_step.onnx"),
]


@pytest.mark.parametrize(("engine", "graph"), TRAINING_GRAPHS)
def test_the_tutorial_as_written_trains_linear_logits_and_hidden_relus(tmp_path, engine, graph):
    # KotlinDL's tutorial: Dense(10) with no activation under softmax cross-entropy. Dense's ReLU default stays
    # on the hidden layers; on the logits it would leave a class whose unit starts inactive unlearnable.
    with tutorial_model(Dense(10)) as model, warnings.catch_warnings():
        warnings.simplefilter("error")
        model.compile(
            optimizer=Adam(), loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, engine=engine, artifacts_dir=tmp_path
        )
        assert model.layers[-1].activation.name == "relu" and not model.layers[-1].activation_given
    assert relu_inputs(tmp_path / graph) == {"dense_1.gemm", "dense_2.gemm"}  # none after dense_3's Gemm


@pytest.mark.parametrize(("engine", "graph"), TRAINING_GRAPHS)
def test_explicit_relu_logits_keep_their_relu_and_warn(tmp_path, engine, graph):
    with (
        tutorial_model(Dense(10, activation="relu")) as model,
        pytest.warns(UserWarning, match=r"expects logits.*'dense_3' applies activation 'relu'"),
    ):
        model.compile(loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, engine=engine, artifacts_dir=tmp_path)
    assert relu_inputs(tmp_path / graph) == {"dense_1.gemm", "dense_2.gemm", "dense_3.gemm"}


@pytest.mark.parametrize("engine", ["ort-training", "portable"])
def test_a_last_dense_without_activation_trains_and_exports_as_linear_logits(blobs, engine):
    x, y = blobs
    results = {}
    for given in (False, True):
        last = Dense(3, activation="linear") if given else Dense(3)
        with Sequential.of(Input(4, 3), Flatten(), Dense(16), last, seed=4) as model:
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine=engine)
            history = model.fit((x, y), epochs=3, batch_size=16, verbose=0)
            results[given] = (model.get_weights(), history.history["loss"], model.predict_softly(x))
            exported = model.inference_model()
            assert relu_inputs(exported) == {"dense_1.gemm"}
    for name, value in results[True][0].items():
        np.testing.assert_array_equal(results[False][0][name], value, err_msg=name)
    assert results[False][1] == results[True][1]
    np.testing.assert_array_equal(results[False][2], results[True][2])


def test_summary_shows_linear_logits_where_the_default_activation_gives_way():
    with tutorial_model(Dense(10)) as model:
        assert "linear (logits)" not in model.summary(print_fn=None)  # no loss yet: nothing is decided
        model.compile(loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)
        text = model.summary(print_fn=None)
        row = next(line for line in text.splitlines() if line.startswith("dense_3"))
        assert row.split() == ["dense_3(Dense)", "[linear", "(logits)]", "[None,", "10]", "1010"]
        assert text.count("linear (logits)") == 1  # the hidden layers keep their ReLU
        model.compile(loss="mse")
        assert "linear (logits)" not in model.summary(print_fn=None)
    with tutorial_model(Dense(10, activation="relu")) as model, pytest.warns(UserWarning):
        model.compile(loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)
        assert "linear (logits)" not in model.summary(print_fn=None)


def test_a_loaded_uncompiled_model_marks_the_logits_it_was_trained_with(tmp_path):
    with tutorial_model(Dense(10)) as model:
        model.compile(loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)
        expected = model.summary(print_fn=None)
        model.save(tmp_path / "saved")
    with load_model(tmp_path / "saved", compile=False) as loaded:
        assert loaded.summary(print_fn=None) == expected
        assert expected.count("linear (logits)") == 1


@pytest.mark.parametrize("engine", ["ort-training", "portable"])
def test_a_softmax_output_trains_on_its_logits_as_in_keras(blobs, engine):
    # Keras' usual classifier: Dense(n, activation="softmax") with "sparse_categorical_crossentropy". The loss
    # applies the softmax itself, so the graphs leave the layer's out: the same steps as linear logits, no warning.
    # A last Softmax() or Activation("softmax") layer after linear logits is the same model in Keras.
    x, y = blobs
    forms = {
        "linear": [Dense(3, activation="linear")],
        "Dense softmax": [Dense(3, activation="softmax")],
        "Softmax layer": [Dense(3, activation="linear"), Softmax()],
        "Activation softmax": [Dense(3, activation="linear"), Activation("softmax")],
    }
    results = {}
    for form, last in forms.items():
        with Sequential.of(Input(4, 3), Flatten(), Dense(16), *last, seed=4) as model:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine=engine)
            history = model.fit((x, y), epochs=10, batch_size=16, verbose=0)
            results[form] = (
                model.get_weights(),
                history.history["loss"],
                model.predict_softly(x),
                model.predict(x),
                model.inference_model(),
            )
        unchanged = getattr(last[-1], "activation", activations.Softmax()).name  # the model's layers are not changed
        assert unchanged == ("linear" if form == "linear" else "softmax")
    reference = results.pop("linear")
    for form, (weights, losses, probabilities, classes, exported) in results.items():
        for name, value in reference[0].items():
            np.testing.assert_array_equal(weights[name], value, err_msg=f"{form}: {name}")
        assert losses == reference[1] and losses[-1] < losses[0], form
        np.testing.assert_allclose(probabilities, reference[2], rtol=1e-6, err_msg=form)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
        # Squashed twice, three classes could not pass e / (e + 2) = 0.58.
        assert np.median(probabilities.max(axis=1)) > 0.8, form
        np.testing.assert_array_equal(classes, reference[3], err_msg=form)
        ops = [node.op_type for node in exported.graph.node]
        assert ops.count("Softmax") == 1, form  # only the `probabilities` output's


def test_auto_device_falls_back_to_cpu():
    with blob_model() as model:
        model.compile(device="auto")
        assert model._trainer.device.kind in ("cpu", "cuda")


@pytest.mark.cuda
def test_a_short_cuda_fit_learns_what_the_cpu_fit_learns(blobs):
    x, y = blobs
    fits = {}
    for device in ("cpu", "cuda"):
        with blob_model() as model:
            model.compile(optimizer="adam", metric="accuracy", device=device)
            history = model.fit((x, y), epochs=10, batch_size=16, verbose=0)
            fits[device] = history.history["loss"], model.evaluate((x, y)).metrics["accuracy"], model.predict(x)
    losses, accuracy, predictions = fits["cuda"]
    assert losses[-1] < losses[0] / 5 and accuracy > 0.95
    np.testing.assert_allclose(losses, fits["cpu"][0], rtol=1e-3)  # the same steps, to float32 rounding
    assert accuracy == fits["cpu"][1] and np.array_equal(predictions, fits["cpu"][2])


COMPILED_BAD_CALLS = [
    (lambda m, x, y: m.fit((x, y), shuffle="no"), InvalidTypeError, r"shuffle expects a bool. Received: shuffle='no'"),
    (
        lambda m, x, y: m.fit((x, y), validation_split=0.2, validation_batch_size=0),
        InvalidArgumentError,
        r"validation_batch_size expects a positive int. Received: validation_batch_size=0",
    ),
    (lambda m, x, y: m.predict(x > 0), InvalidTypeError, r"Received: dtype bool"),
    (
        lambda m, x, y: m.fit(Dataset(x, y), y),
        InvalidArgumentError,
        r"fit\(\) got a Dataset and, as y, an array of shape \(120,\): a Dataset carries its labels, so y must be None",
    ),
    (lambda m, x, y: m.fit(x), InvalidTypeError, r"dataset expects .* alone: y \(the labels\) is missing"),
    (lambda m, x, y: m.evaluate(x), InvalidTypeError, r"y \(the labels\) is missing"),
    (lambda m, x, y: m.evaluate(x=x), InvalidTypeError, r"y \(the labels\) is missing"),
]


@pytest.mark.parametrize(("call", "error", "message"), COMPILED_BAD_CALLS)
def test_bad_calls_on_a_compiled_model(blobs, call, error, message):
    x, y = blobs
    with blob_model() as model:
        model.compile(optimizer="adam")
        with pytest.raises(error, match=message):
            call(model, x, y)


def test_learning_rate_accepts_numpy_scalars():
    with blob_model() as model:
        model.compile(optimizer="adam")
        model.learning_rate = np.float32(0.01)
        assert model.learning_rate == pytest.approx(0.01)


# --- what a failing or unusual call must leave as it was ----------------------------------------------------
def test_a_compile_that_fails_leaves_the_model_compiled_as_it_was(blobs):
    x, y = blobs
    with blob_model() as model:
        model.compile(optimizer=Adam(learning_rate=0.01), engine="portable")
        model.fit((x, y), epochs=2, batch_size=16, verbose=0)
        engine, weights = model._trainer.engine, model.get_weights()
        with pytest.raises(InvalidArgumentError, match="opset"):
            model.compile(optimizer="adam", opset=12)  # refused by the checks before anything is built
        with pytest.raises(InvalidArgumentError, match="engine"):
            model.compile(optimizer="adam", engine="tensorflow")
        with pytest.raises(RuntimeSetupError):
            model.compile(optimizer="adam", engine="portable", device="cuda:63")  # fails while building
        assert model.is_compiled and model._trainer.engine is engine and engine.step == 16
        assert model._trainer.epochs_trained == 2
        for name, value in model.get_weights().items():
            np.testing.assert_array_equal(value, weights[name])
        model.fit((x, y), epochs=1, batch_size=16, verbose=0)  # and it trains on, optimizer state included
        assert engine.step == 24


def test_only_fits_training_data_sets_the_input_scale_and_class_names(blobs):
    x, y = blobs
    pixels = np.clip(np.rint(x * 10 + 100), 0, 255).astype(np.uint8)
    scaled = Dataset(pixels / 255, y, input_scale=1 / 255, class_names=["a", "b", "c"])
    with blob_model() as model:
        model.compile(optimizer="adam")
        model.evaluate(scaled)  # evaluating data says nothing about what the model is trained on
        with pytest.raises(InvalidArgumentError, match="validation_split"):
            model.fit(scaled, epochs=1, validation_split=5, verbose=0)  # refused before it trains
        assert (model.input_scale, model.class_names) == (1.0, None)
        with pytest.warns(UserWarning, match="input_scale is 1, so the model reads the raw values"):
            model.fit((pixels, y), epochs=1, batch_size=16, verbose=0, validation_data=scaled)
        assert (model.input_scale, model.class_names) == (1.0, None)  # raw pixels trained, raw pixels predicted
        model.fit(scaled, epochs=1, batch_size=16, verbose=0)  # a later fit does not change the scale either
        assert (model.input_scale, model.class_names) == (1.0, ("a", "b", "c"))
    with blob_model() as model:
        model.compile(optimizer="adam")
        model.fit(scaled, epochs=1, batch_size=16, verbose=0)
        assert (model.input_scale, model.class_names) == (1 / 255, ("a", "b", "c"))


def test_an_opset_or_ir_version_the_installed_runtime_cannot_load_is_refused_at_compile():
    import onnx

    from onnxtrain._runtime import _runtime_refuses

    opset, ir_version = onnx.defs.onnx_opset_version(), onnx.IR_VERSION
    if not _runtime_refuses(opset, ir_version):
        pytest.skip(f"this onnxruntime loads opset {opset} and IR {ir_version}")
    with blob_model() as model:
        with pytest.raises(InvalidArgumentError, match=rf"cannot load.*onnxruntime .*Received: opset={opset}"):
            model.compile(optimizer="adam", opset=opset, ir_version=ir_version)
        assert not model.is_compiled


def test_keras_keyword_spellings_of_fit_and_evaluate(blobs):
    x, y = blobs
    with blob_model() as model:
        model.compile(optimizer=Adam(learning_rate=0.01), metrics="accuracy")
        history = model.fit(x=x, y=y, epochs=2, batch_size=16, verbose=0, validation_data=(x[:20], y[:20]))
        assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert model.evaluate(x=x, y=y).metrics["accuracy"] > 0.5
        with pytest.raises(InvalidArgumentError, match=r"validation=\.\.\. or validation_data=\.\.\., not both"):
            model.fit((x, y), validation=(x, y), validation_data=(x, y), verbose=0)
        with pytest.raises(InvalidArgumentError, match=r"dataset=\.\.\. or x=\.\.\., not both"):
            model.evaluate((x, y), x=x)
        with pytest.raises(InvalidTypeError, match=r"metrics expects a list.*Received: metrics=5"):
            model.compile(metrics=5)


@pytest.mark.parametrize("action", ["close", "compile"])
def test_a_callback_cannot_close_or_recompile_the_model_fit_is_training(blobs, action):
    from onnxtrain.callbacks import Callback

    x, y = blobs

    class Meddler(Callback):
        def on_epoch_end(self, epoch, logs=None):
            getattr(self.model, action)()

    with blob_model() as model:
        model.compile(optimizer="adam")
        with pytest.raises(ModelStateError, match=rf"{action}\(\) was called while fit\(\) is running"):
            model.fit((x, y), epochs=2, batch_size=16, verbose=0, callbacks=[Meddler()])
        assert model.is_compiled
        model.fit((x, y), epochs=1, batch_size=16, verbose=0)  # fit is over: the model works as before


@pytest.mark.parametrize("engine", ["ort-training", "portable"])
def test_changing_trainable_after_compile_asks_for_compile_before_fit(blobs, engine):
    x, y = blobs
    with blob_model() as model:
        model.compile(optimizer="adam", engine=engine)
        model.layers[2].trainable = False  # dense_1
        before = model.get_weights()
        with pytest.raises(ModelStateError, match=r"trainable flag of layer\(s\) \['dense_1'\] changed after compile"):
            model.fit((x, y), epochs=1, verbose=0)
        assert all(np.array_equal(before[k], v) for k, v in model.get_weights().items())  # nothing trained
        model.compile(optimizer="adam", engine=engine)
        model.fit((x, y), epochs=1, verbose=0)
        after = model.get_weights()
        np.testing.assert_array_equal(after["dense_1.kernel"], before["dense_1.kernel"])  # frozen now
        assert not np.array_equal(after["dense_2.kernel"], before["dense_2.kernel"])


def test_summary_prints_once_and_returns_none_or_returns_the_table_without_printing(capsys):
    model = blob_model()
    assert model.summary() is None  # a REPL or notebook then has nothing to echo a second time
    printed = capsys.readouterr().out
    assert printed.count("Layer (type)") == 1
    text = model.summary(print_fn=None)
    assert capsys.readouterr().out == "" and printed == text + "\n"
    lines: list[str] = []
    assert model.print_summary(print_fn=lines.append) is None and lines == [text]


def test_a_dataset_and_a_tuple_of_the_same_integer_arrays_give_the_same_numbers(blobs):
    x, y = blobs
    pixels = np.clip(np.rint(x * 10 + 100), 0, 255).astype(np.uint8)
    with blob_model() as model:
        model.compile(optimizer="adam", metric="accuracy")
        model.input_scale = 1 / 255
        assert model.evaluate(Dataset(pixels, y)) == model.evaluate((pixels, y))
        assert model.evaluate(Dataset(pixels, y)) == model.evaluate((pixels / np.float32(255), y))
    with blob_model() as model, blob_model() as twin:
        model.compile(optimizer="adam")
        twin.compile(optimizer="adam")
        model.fit(Dataset(pixels, y, input_scale=np.float32(1 / 255)), epochs=2, batch_size=16, verbose=0)
        twin.fit(Dataset(pixels, y, input_scale=float(np.float32(1 / 255))), epochs=2, batch_size=16, verbose=0)
        assert model.input_scale == twin.input_scale == float(np.float32(1 / 255))
        for name, value in model.get_weights().items():
            np.testing.assert_array_equal(value, twin.get_weights()[name])
    with blob_model() as model, blob_model() as twin:
        model.compile(optimizer="adam")
        twin.compile(optimizer="adam")
        model.fit(Dataset(pixels, y, input_scale=1 / 255), epochs=2, batch_size=16, verbose=0)
        twin.fit(Dataset(pixels / np.float32(255), y, input_scale=1 / 255), epochs=2, batch_size=16, verbose=0)
        assert model.input_scale == 1 / 255  # recorded, and what it trained on
        for name, value in model.get_weights().items():
            np.testing.assert_array_equal(value, twin.get_weights()[name])
        np.testing.assert_array_equal(model.predict(pixels), twin.predict(pixels / np.float32(255)))


@pytest.mark.parametrize("engine", ["ort-training", "portable"])
def test_compile_threads_reach_the_prediction_session_too(blobs, engine):
    x, _ = blobs
    with blob_model() as model:
        model.compile(engine=engine, threads=1)
        model.predict(x)
        assert model._trainer._session().get_session_options().intra_op_num_threads == 1
    with blob_model() as model:
        model.compile(engine=engine)
        model.predict(x)
        assert model._trainer._session().get_session_options().intra_op_num_threads == 0  # ORT's default


@pytest.mark.parametrize("engine", ["ort-training", "portable"])
def test_integer_validation_data_is_read_with_the_scale_the_first_fit_adopts(engine):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (60, 4)).astype(np.uint8), rng.integers(0, 3, 60)
    for validation in ((x[40:], y[40:]), Dataset(x[40:], y[40:])):
        with Sequential.of(Input(4), Dense(8), Dense(3, activation="linear"), seed=3) as model:
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine=engine)
            history = model.fit(Dataset(x[:40], y[:40], input_scale=1 / 255), epochs=2, validation=validation)
            assert model.input_scale == 1 / 255
            # the last epoch's validation loss is the loss of the validation data as the model now reads it
            assert history.history["val_loss"][-1] == pytest.approx(model.evaluate((x[40:], y[40:])).loss, rel=1e-6)


@pytest.mark.parametrize("verbose", [0, 1, 2, "auto", True])
def test_predict_takes_keras_verbose_and_shows_no_progress(blobs, capsys, verbose):
    x, _ = blobs
    with blob_model() as model:
        model.compile(optimizer="adam")
        predictions, probabilities = model.predict(x), model.predict_softly(x)
        np.testing.assert_array_equal(model.predict(x, verbose=verbose), predictions)
        np.testing.assert_array_equal(model.predict_softly(x, batch_size=7, verbose=verbose), probabilities)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("call", ["predict", "predict_softly", "evaluate"])
def test_a_bad_verbose_is_refused_by_predict_and_evaluate(blobs, call):
    x, y = blobs
    with blob_model() as model:
        model.compile(optimizer="adam")
        args = (x, y) if call == "evaluate" else (x,)
        with pytest.raises(InvalidArgumentError, match=r"verbose expects 0 \(silent\).*'auto'.*Received: verbose=3"):
            getattr(model, call)(*args, verbose=3)


def test_fit_and_evaluate_take_keras_verbose_auto(blobs, capsys):
    x, y = blobs
    with blob_model() as model:
        model.compile(optimizer="adam")
        model.fit(x, y, epochs=1, batch_size=60, verbose="auto")
        model.evaluate(x, y, verbose="auto")
    out = capsys.readouterr().out  # not a terminal: one plain line each
    assert "Epoch 1/1 - 2 batches" in out and "Evaluate - 4 batches" in out


def test_evaluate_return_dict_gives_keras_dict_of_loss_and_metrics(blobs):
    x, y = blobs
    with blob_model() as model:
        model.compile(optimizer="adam", metrics=["accuracy", "mse"])
        result = model.evaluate(x, y)
        figures = model.evaluate(x, y, return_dict=True)
        assert figures == {"loss": result.loss, "accuracy": result.metrics["accuracy"], "mse": result.metrics["mse"]}
        assert list(figures) == ["accuracy", "loss", "mse"]  # sorted, as Keras 3's
        assert isinstance(model.evaluate(x, y), type(result))
        with pytest.raises(InvalidArgumentError, match=r"evaluate\(return_dict=\.\.\.\) expects a bool\. Received"):
            model.evaluate(x, y, return_dict="yes")
