"""Portable engine: standard-ONNX graphs, device-resident state, checkpoints, parity with the ort-training
engine,
and the fit/evaluate/predict/save flow through the Trainer.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnx.reference
import onnxruntime
import pytest

from onnxtrain import Sequential, _ort_training, _ort_training_session, emit, losses, metrics, optimizers
from onnxtrain._runtime import Device
from onnxtrain.errors import InvalidArgumentError, ModelFileError, RuntimeSetupError, UnsupportedError
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.optimizers import SGD, Adam, Ftrl, RMSProp
from onnxtrain.portable import PortableEngine, _checkpoint, _fused
from onnxtrain.portable._graphs import gradient_model

SCE = losses.get("softmax_cross_entropy_with_logits")
NEEDS_NUMBA = pytest.mark.skipif(not _fused.available(), reason="numba is not installed (onnxtrain[fast])")


def mlp(seed: int = 3, activation: str = "relu") -> Sequential:
    return Sequential.of(
        Input(4, 3), Flatten(), Dense(16, activation=activation), Dense(3, activation="linear"), seed=seed
    )


def batches(x: np.ndarray, y: np.ndarray, size: int = 30) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


def ort_training_available() -> bool:
    try:
        _ort_training._training_api()
    except RuntimeSetupError:
        return False
    return True


def test_train_step_graph_is_standard_onnx_only():
    engine = PortableEngine(mlp().layers, SCE, Adam(clip_norm=1.0, clip_value=0.5))
    for model in (engine.graph.model, engine.eval_graph):
        onnx.checker.check_model(model, full_check=True)
        assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
        assert {n.domain for n in model.graph.node} == {""}
        assert not model.graph.initializer  # parameters and state are inputs, bound once
    names = [o.name for o in engine.graph.model.graph.output]
    assert names[:3] == ["loss", "logits", "updated.dense_1.kernel"] and names[-1] == "updated.step"
    # every output is written by its producer: no Identity copies a parameter, the loss or the logits per step
    for model in (engine.graph.model, engine.eval_graph, gradient_model(mlp().layers, SCE, Adam())):
        outputs = {o.name for o in model.graph.output}
        assert not [n for n in model.graph.node if n.op_type == "Identity" and n.output[0] in outputs]


def test_the_backward_reads_the_batch_size_once_for_every_layer():
    # The loss gradient's 1/batch and each Dense layer's bias gradient (a MatMul with ones[batch]) share one Shape.
    model = gradient_model(mlp().layers, SCE, Adam())
    shapes = [n for n in model.graph.node if n.op_type == "Shape"]
    ones = [n for n in model.graph.node if n.op_type == "ConstantOfShape"]
    assert len(shapes) == len(ones) == 1
    batch = ones[0].input[0]
    assert [n.op_type for n in model.graph.node if batch in n.input] == ["Cast", "ConstantOfShape"]
    bias_sums = [n for n in model.graph.node if n.op_type == "MatMul"]
    assert len(bias_sums) == 2 and {n.input[0] for n in bias_sums} == {ones[0].output[0]}


def test_saved_train_step_runs_in_a_plain_session_like_the_engine(blobs, tmp_path: Path):
    x, y = blobs
    # Bit for bit with the graph's own update; test_portable_fused.py compares the fused kernel's result.
    engine = PortableEngine(mlp().layers, SCE, Adam(learning_rate=0.01), update="graph")
    train_path, _ = engine.save_graphs(tmp_path)
    feeds: dict[str, np.ndarray] = {**engine.get_weights(), **engine.optimizer_state()}
    feeds.update(step=np.array(0, np.int64), learning_rate=np.array(0.01, np.float32), input=x[:30], labels=y[:30])
    session = onnxruntime.InferenceSession(str(train_path), providers=["CPUExecutionProvider"])
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))
    loss, _ = engine.train_step(x[:30], y[:30])
    assert outputs["loss"] == pytest.approx(loss) and outputs["updated.step"] == 1
    for name, value in engine.get_weights().items():
        np.testing.assert_array_equal(outputs[f"updated.{name}"], value)


def test_onnx_reference_evaluator_runs_the_train_step_like_the_engine(blobs):
    """The ONNX specification's own Python evaluator, not ONNX Runtime: the graph is standard ONNX, If included."""
    x, y = blobs
    engine = PortableEngine(mlp().layers, SCE, Adam(learning_rate=0.01))
    reference = onnx.reference.ReferenceEvaluator(engine.graph.model)
    names = [o.name for o in engine.graph.model.graph.output]
    bad = x[:30].copy()
    bad[0, 0, 0] = np.nan
    for xb in (x[:30], bad):
        feeds: dict[str, np.ndarray] = {**engine.get_weights(), **engine.carried_state()}
        feeds.update(step=np.array(engine.step, np.int64), learning_rate=np.array(0.01, np.float32))
        outputs = dict(zip(names, reference.run(None, {**feeds, "input": xb, "labels": y[:30]}), strict=True))
        loss, _ = engine.train_step(xb, y[:30])
        np.testing.assert_allclose(outputs["loss"], loss, rtol=1e-5)
        assert outputs["updated.step"] == engine.step
        for name, value in {**engine.get_weights(), **engine.carried_state()}.items():
            np.testing.assert_allclose(outputs[f"updated.{name}"], value, rtol=1e-5, atol=1e-7, err_msg=name)
    assert engine.step == 1  # the NaN batch passed every value through, in both


@pytest.mark.skipif(not ort_training_available(), reason="needs onnxruntime-training for the reference engine")
def test_adam_weights_match_the_ort_training_engine_after_50_steps(blobs):
    # ONNX Runtime's AdamW runs in Hugging Face mode (adam_mode=1): epsilon is added to sqrt(v) before the
    # bias
    # correction is applied to the step size, exactly TensorFlow's (and so KotlinDL's) placement.
    x, y = blobs
    model, optimizer = mlp(), Adam(learning_rate=0.01)
    portable = PortableEngine(model.layers, SCE, optimizer)
    with tempfile.TemporaryDirectory() as tmp:
        reference = _ort_training_session.OrtTrainingEngine(
            _ort_training.write_artifacts(model.layers, SCE, optimizer, tmp), optimizer
        )
        data = batches(x, y)
        for step in range(50):
            xb, yb = data[step % len(data)]
            loss_a, _ = portable.train_step(xb, yb)
            loss_b, _ = reference.train_step(xb, yb)
            assert loss_a == pytest.approx(loss_b, rel=1e-4)
        expected = reference.get_weights()
        reference.close()
    for name, value in portable.get_weights().items():
        relative = np.linalg.norm(value - expected[name]) / np.linalg.norm(expected[name])
        assert relative < 1e-5, (name, relative)


def test_non_finite_loss_drops_the_update_and_training_continues(blobs):
    x, y = blobs
    engine = PortableEngine(mlp().layers, SCE, Adam())
    engine.train_step(x[:30], y[:30])
    before, state, step = engine.get_weights(), engine.optimizer_state(), engine.step
    bad = x[:30].copy()
    bad[0, 0, 0] = np.nan
    loss, _ = engine.train_step(bad, y[:30])
    assert np.isnan(loss)
    assert engine.step == step
    for name, value in engine.get_weights().items():
        np.testing.assert_array_equal(value, before[name])
    for name, value in engine.optimizer_state().items():
        np.testing.assert_array_equal(value, state[name])
    assert np.isfinite(engine.train_step(x[:30], y[:30])[0]) and engine.step == step + 1


def test_a_batch_reusing_one_buffer_is_read_afresh_and_outputs_are_not_overwritten(blobs):
    """The trainer gathers every batch into one buffer, which the engine binds once: each step must still see
    the buffer's current contents, and the logits it returned must survive the next steps."""
    x, y = blobs
    reused = PortableEngine(mlp().layers, SCE, Adam())
    fresh = PortableEngine(mlp().layers, SCE, Adam())
    x_buffer, y_buffer = np.empty_like(x[:30]), np.empty_like(y[:30])
    kept = []
    for xb, yb in batches(x[:120], y[:120]):
        x_buffer[:], y_buffer[:] = xb, yb
        loss, logits = reused.train_step(x_buffer, y_buffer)
        expected_loss, expected_logits = fresh.train_step(xb.copy(), yb.copy())
        assert loss == expected_loss
        np.testing.assert_array_equal(logits, expected_logits)
        kept.append((logits, expected_logits.copy()))  # a copy made now, whatever the engine returns
    for logits, expected in kept:
        np.testing.assert_array_equal(logits, expected)
    # A smaller batch (an epoch's last) in a view of the same buffer, then the full size again.
    for size in (7, 30):
        x_buffer[:size], y_buffer[:size] = x[-size:], y[-size:]
        loss, logits = reused.eval_step(x_buffer[:size], y_buffer[:size])
        expected_loss, expected_logits = fresh.eval_step(x[-size:], y[-size:])
        assert logits.shape == (size, 3) and loss == expected_loss
        np.testing.assert_array_equal(logits, expected_logits)


def test_set_weights_checks_names_and_shapes():
    engine = PortableEngine(mlp().layers, SCE, SGD())
    weights = engine.get_weights()
    engine.set_weights({"dense_2.bias": np.ones(3)})
    np.testing.assert_array_equal(engine.get_weights()["dense_2.bias"], np.ones(3, np.float32))
    with pytest.raises(InvalidArgumentError, match=r"Unknown: \['dense_9.kernel'\]"):
        engine.set_weights({"dense_9.kernel": weights["dense_1.kernel"]})
    with pytest.raises(InvalidArgumentError, match=r"dense_1.kernel expects shape \(12, 16\). Received: \(2, 2\)"):
        engine.set_weights({"dense_1.kernel": np.zeros((2, 2))})
    with pytest.raises(InvalidArgumentError, match="learning_rate expects a finite number >= 0"):
        engine.learning_rate = float("nan")


@pytest.mark.parametrize("optimizer", [Adam(), RMSProp(momentum=0.5, centered=True), Ftrl()], ids=repr)
def test_checkpoint_resumes_exactly_where_training_stopped(blobs, optimizer):
    x, y = blobs
    data = batches(x, y)
    first = PortableEngine(mlp().layers, SCE, optimizer)
    for xb, yb in data[:3]:
        first.train_step(xb, yb)
    saved = first.checkpoint_bytes(include_optimizer_state=True)
    resumed = PortableEngine(mlp(seed=99).layers, SCE, optimizer, resume=saved)  # other seed: weights come from bytes
    assert resumed.step == 3
    for xb, yb in data[3:]:
        assert first.train_step(xb, yb)[0] == resumed.train_step(xb, yb)[0]
    for name, value in first.get_weights().items():
        np.testing.assert_array_equal(resumed.get_weights()[name], value)


def test_adam_carries_rescaled_moments_and_reports_them_unscaled(blobs):
    x, y = blobs
    engine = PortableEngine(mlp().layers, SCE, Adam(beta1=0.8, beta2=0.99))
    engine.train_step(x[:30], y[:30])
    carried = engine.carried_state()
    for name, value in engine.optimizer_state().items():
        scale = 1 / (1 - 0.8) if ".m." in name else 1 / (1 - 0.99)
        np.testing.assert_allclose(carried[name], value * scale, rtol=1e-6, atol=1e-12)


def test_format_1_checkpoint_with_unscaled_state_resumes(blobs):
    # Format 1 stored Adam's moments unscaled; they are rescaled on reading and training goes on as before.
    x, y = blobs
    data = batches(x, y)
    first = PortableEngine(mlp().layers, SCE, Adam(learning_rate=0.01))
    for xb, yb in data[:3]:
        first.train_step(xb, yb)
    old = _checkpoint.Checkpoint(first.get_weights(), first.optimizer_state(), first.step, "adam")
    arrays = dict(np.load(io.BytesIO(_checkpoint.write_checkpoint(old))))
    arrays["format"] = np.array("onnxtrain.portable/1")
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    resumed = PortableEngine(mlp(seed=99).layers, SCE, Adam(learning_rate=0.01), resume=buffer.getvalue())
    assert resumed.step == 3
    for xb, yb in data[3:]:
        assert resumed.train_step(xb, yb)[0] == pytest.approx(first.train_step(xb, yb)[0], rel=1e-6)
    for name, value in first.get_weights().items():
        np.testing.assert_allclose(resumed.get_weights()[name], value, rtol=1e-5, atol=1e-7)


def test_checkpoint_without_state_restarts_the_optimizer():
    engine = PortableEngine(mlp().layers, SCE, Adam())
    engine.train_step(np.ones((2, 4, 3), np.float32), np.array([0, 1]))
    again = PortableEngine(mlp(seed=5).layers, SCE, Adam(), resume=engine.checkpoint_bytes())
    assert again.step == 0 and not any(v.any() for v in again.optimizer_state().values())
    np.testing.assert_array_equal(again.get_weights()["dense_1.kernel"], engine.get_weights()["dense_1.kernel"])


def test_resume_rejects_foreign_or_mismatched_checkpoints():
    with pytest.raises(ModelFileError, match=r"not a portable-engine checkpoint.*ort-training"):
        PortableEngine(mlp().layers, SCE, Adam(), resume=b"\x10\x00\x00\x00ORTC not a zip")
    saved = PortableEngine(mlp().layers, SCE, Adam()).checkpoint_bytes(include_optimizer_state=True)
    with pytest.raises(InvalidArgumentError, match=r"optimizer state of 'adam'.*compiled with 'rmsprop'"):
        PortableEngine(mlp().layers, SCE, RMSProp(), resume=saved)


def test_eval_step_matches_the_exported_inference_model(blobs):
    x, y = blobs
    model = mlp()
    engine = PortableEngine(model.layers, SCE, Adam(learning_rate=0.05))
    for xb, yb in batches(x, y):
        engine.train_step(xb, yb)
    loss, logits = engine.eval_step(x, y)
    weights = engine.get_weights()
    for layer in model.layers:
        for local in layer.params:
            layer.params[local] = weights[f"{layer.name}.{local}"]
    session = onnxruntime.InferenceSession(
        emit.inference_graph(model.layers, SCE).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    np.testing.assert_allclose(session.run(["logits"], {"input": x})[0], logits, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(float(-np.log(SCE.probabilities(logits)[np.arange(len(y)), y]).mean()), rel=1e-5)


def test_unsupported_pieces_fail_when_the_engine_is_made():
    class Custom(optimizers.Optimizer):
        pass

    with pytest.raises(UnsupportedError, match=r"no update rule for optimizer Custom.*register_update_rule"):
        PortableEngine(mlp().layers, SCE, Custom(learning_rate=0.1))


# --- through the Trainer: fit / evaluate / predict / save ---------------------------------------------------


def test_fit_evaluate_predict_and_save_with_the_portable_engine(blobs, tmp_path: Path):
    x, y = blobs
    with mlp() as model:
        model.compile(engine="portable", optimizer=Adam(learning_rate=0.02), loss=SCE, metrics=["accuracy"])
        history = model.fit((x, y), epochs=15, batch_size=20, verbose=0)
        assert history.history["loss"][-1] < history.history["loss"][0]
        result = model.evaluate((x, y), batch_size=32)
        assert result.metrics[metrics.Metrics.ACCURACY] >= 0.95
        np.testing.assert_array_equal(model.predict(x[:10]), y[:10])
        model.save(tmp_path / "saved", save_optimizer_state=True)
        saved_weights = model.get_weights()
    exported = onnx.load(tmp_path / "saved" / "model.onnx")
    stored = {i.name: onnx.numpy_helper.to_array(i) for i in exported.graph.initializer}
    for name, value in saved_weights.items():
        np.testing.assert_array_equal(stored[name], value)


def test_artifacts_dir_keeps_the_train_step_and_eval_graphs(blobs, tmp_path: Path):
    """compile(artifacts_dir=...) keeps this engine's artifacts, as it keeps ort-training's four files."""
    x, y = blobs
    with mlp() as model:
        model.compile(engine="portable", optimizer=Adam(learning_rate=0.02), loss=SCE, artifacts_dir=tmp_path / "a")
        assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["eval.onnx", "train_step.onnx"]
        before = model.get_weights()
        model.fit((x, y), epochs=1, batch_size=20, verbose=0)  # the engine trains as without the folder
        assert any(not np.array_equal(before[k], v) for k, v in model.get_weights().items())
    step = onnx.load(tmp_path / "a" / "train_step.onnx")
    onnx.checker.check_model(step, full_check=True)
    assert {i.name for i in step.graph.input} >= {"input", "labels", "learning_rate", "step", "dense_1.kernel"}
    assert (tmp_path / "a" / "eval.onnx").is_file()  # close() removes temporary folders only


def test_an_artifacts_dir_that_cannot_be_written_fails_the_compile_and_leaves_the_model_uncompiled(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with mlp() as model:
        with pytest.raises(OSError):
            model.compile(engine="portable", artifacts_dir=blocker / "artifacts")
        assert not model.is_compiled


@pytest.mark.cuda
def test_cuda_engine_keeps_state_on_the_device_and_matches_cpu(blobs):
    x, y = blobs
    cpu = PortableEngine(mlp().layers, SCE, Adam(learning_rate=0.01))
    gpu = PortableEngine(mlp().layers, SCE, Adam(learning_rate=0.01), device=Device("cuda", 0))
    assert all(v.device_name().lower() == "cuda" for v in gpu._sets[0].values())
    # Every batch through one reused buffer, as the trainer feeds them.
    xb, yb = np.empty((30, *x.shape[1:]), np.float32), np.empty(30, np.int64)
    for start in list(range(0, len(x), 30)) * 3:
        np.take(x, np.arange(start, start + 30), axis=0, out=xb)
        np.take(y, np.arange(start, start + 30), out=yb)
        (cpu_loss, cpu_logits), (gpu_loss, gpu_logits) = cpu.train_step(xb, yb), gpu.train_step(xb, yb)
        np.testing.assert_allclose(gpu_loss, cpu_loss, rtol=1e-4)
        np.testing.assert_allclose(gpu_logits, cpu_logits, rtol=1e-4, atol=1e-5)
    for name, value in cpu.get_weights().items():
        np.testing.assert_allclose(gpu.get_weights()[name], value, rtol=1e-3, atol=1e-5)


@pytest.mark.cuda
def test_a_gpu_that_is_not_there_is_one_clear_error_when_the_engine_starts():
    with pytest.raises(RuntimeSetupError, match=r"device='cuda:63'.*no GPU 63"):
        PortableEngine(mlp().layers, SCE, Adam(), device=Device("cuda", 63))


class RecordingBinding:
    def __init__(self) -> None:
        self.bound: list[str] = []

    def bind_cpu_input(self, name: str, value: np.ndarray) -> None:
        self.bound.append(name)

    def bind_output(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("device", "binds"), [(Device("cpu"), 2), (Device("cuda", 0), 6)])
def test_a_reused_batch_buffer_is_bound_once_unless_the_device_copies_it_when_bound(device, binds):
    from onnxtrain.portable._batch_binding import BatchBinding

    binding = RecordingBinding()
    batch = BatchBinding(binding, (3,), device)
    x, labels = np.zeros((4, 2), np.float32), np.zeros(4, np.int64)
    for value in range(3):
        x[...] = value  # the trainer gathers each batch into the same buffer
        batch.bind_batch(x, labels)
    assert len(binding.bound) == binds  # CUDA copies a host input when it is bound, so every batch is bound anew


def test_save_and_load_resume_exactly_with_the_portable_engine(blobs, tmp_path: Path):
    """fit(2) + save(with optimizer state) + load + fit(1) == fit(3), all on the portable engine."""
    from onnxtrain import load_model

    x, y = blobs
    settings = {"optimizer": RMSProp(learning_rate=0.01, momentum=0.5), "loss": SCE}
    with mlp() as straight:
        straight.compile(engine="portable", **settings)
        straight.fit((x, y), epochs=3, batch_size=20, verbose=0)
        expected = straight.get_weights()
    with mlp() as first:
        first.compile(engine="portable", **settings)
        first.fit((x, y), epochs=2, batch_size=20, verbose=0)
        first.save(tmp_path / "saved", save_optimizer_state=True)
    with load_model(tmp_path / "saved") as again:
        assert isinstance(again._trainer.engine, PortableEngine) and again._trainer.engine.step == 12
        again.fit((x, y), epochs=1, batch_size=20, verbose=0)
        for name, value in again.get_weights().items():
            np.testing.assert_allclose(value, expected[name], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("opset", "ir_version"), [(13, 7), (18, 8), (21, 10)])
def test_train_step_at_other_opsets_matches_opset_17(blobs, opset, ir_version):
    # Reductions take their axes as an input from opset 13 (ReduceSum) or 18 (the others): the rules emit both forms.
    x, y = blobs
    optimizer = Adam(learning_rate=0.01, clip_norm=1.0)
    reference = PortableEngine(mlp().layers, SCE, optimizer)
    engine = PortableEngine(mlp().layers, SCE, optimizer, opset=opset, ir_version=ir_version)
    assert [(o.domain, o.version) for o in engine.graph.model.opset_import] == [("", opset)]
    for xb, yb in batches(x, y)[:3]:
        assert engine.train_step(xb, yb)[0] == pytest.approx(reference.train_step(xb, yb)[0], rel=1e-6)
    for name, value in reference.get_weights().items():
        np.testing.assert_allclose(engine.get_weights()[name], value, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("update", ["graph", pytest.param("fused", marks=NEEDS_NUMBA)])
def test_an_empty_batch_is_refused_before_onnx_runtime_sees_it(update):
    engine = PortableEngine(mlp().layers, SCE, Adam(), update=update)
    for step in (engine.train_step, engine.eval_step):
        with pytest.raises(InvalidArgumentError, match=r"at least one example. Received: x.shape=\(0, 4, 3\)"):
            step(np.zeros((0, 4, 3), np.float32), np.zeros(0, np.int64))
    assert engine.step == 0
