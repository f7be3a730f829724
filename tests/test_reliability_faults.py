"""Training, file and process faults: a non-finite loss or Ctrl-C leaves a usable model; a damaged, foreign or
unreadable file is one clear ModelFileError; a failed save keeps the previous model; kill -9 during fit and
concurrent saves lose nothing. tools/kill_during_fit.py runs the process loops longer.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper

from onnxtrain import InferenceModel, Sequential, _bounded_read, load_model, saving
from onnxtrain.callbacks import Callback
from onnxtrain.errors import ModelFileError, NonFiniteLossError, ShapeError
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.optimizers import SGD, Adam
from onnxtrain.saving import _writing

REPO = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(4)
X = RNG.random((40, 4, 3), dtype=np.float32)
Y = (X.reshape(40, -1).sum(axis=1) * 3).astype(np.int64) % 3


def _model(seed: int = 1, units: int = 8, engine: str = "auto") -> Sequential:
    model = Sequential.of(Input(4, 3), Flatten(), Dense(units), Dense(3, activation="linear"), seed=seed)
    model.compile(optimizer=Adam(learning_rate=0.01), loss="softmax_cross_entropy_with_logits", engine=engine)
    return model


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


class RecordSteps(Callback):
    """Keeps the weights after every step, and raises `interrupt` after step (epoch, batch) when asked."""

    def __init__(self, interrupt_at: tuple[int, int] | None = None):
        self.interrupt_at, self.epoch = interrupt_at, 0
        self.weights: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        self.first_non_finite: tuple[int, int] | None = None

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_batch_end(self, batch: int, logs: Any = None) -> None:
        self.weights[self.epoch, batch] = self.model.get_weights()
        if self.first_non_finite is None and not np.isfinite((logs or {}).get("loss", 0.0)):
            self.first_non_finite = (self.epoch, batch)
        if (self.epoch, batch) == self.interrupt_at:
            raise KeyboardInterrupt


# --- training faults ------------------------------------------------------------------------------------


def test_a_non_finite_loss_names_epoch_and_batch_and_keeps_a_usable_model(tmp_path):
    x = RNG.normal(size=(64, 4, 3)).astype(np.float32) * 100
    y = RNG.normal(size=(64, 3)).astype(np.float32) * 1e6
    record = RecordSteps()
    with Sequential.of(Input(4, 3), Flatten(), Dense(3, activation="linear"), seed=2) as model:
        model.compile(optimizer=SGD(learning_rate=10.0), loss="mse")
        with pytest.raises(NonFiniteLossError) as caught:
            model.fit((x, y), epochs=50, batch_size=8, shuffle=False, verbose=0, callbacks=[record])
        epoch, batch = record.first_non_finite
        assert f"at epoch {epoch}, batch {batch}/8" in str(caught.value)
        assert "the weights of the last finite step were kept" in str(caught.value)
        last_finite = record.weights[(epoch, batch - 1)] if batch > 1 else record.weights[(epoch - 1, 8)]
        assert _same(model.get_weights(), last_finite)
        assert all(np.isfinite(w).all() for w in model.get_weights().values())
        assert isinstance(model.evaluate((x, y)).loss, float)  # still evaluates (the diverged loss may be inf)
        with load_model(model.save(tmp_path / "after-nan")) as loaded:
            assert _same(loaded.get_weights(), last_finite)


@pytest.mark.parametrize("engine", ["ort-training", "portable"])
def test_ctrl_c_mid_epoch_keeps_the_last_completed_step_and_a_usable_model(tmp_path, engine):
    record = RecordSteps(interrupt_at=(2, 3))
    with _model(engine=engine) as model:
        with pytest.raises(KeyboardInterrupt):
            model.fit((X, Y), epochs=5, batch_size=8, verbose=0, callbacks=[record])
        assert _same(model.get_weights(), record.weights[(2, 3)])
        assert model._trainer.epochs_trained == 1  # the interrupted epoch does not count
        predictions = model.predict_softly(X)
        assert np.isfinite(model.evaluate((X, Y)).loss)
        directory = model.save(tmp_path / "interrupted", save_optimizer_state=True)
        exported = InferenceModel.load(directory)
        np.testing.assert_allclose(exported.predict_softly(X), predictions, rtol=0, atol=1e-6)
        assert model.fit((X, Y), epochs=1, verbose=0).epochs == [2]  # and it trains on
    with load_model(directory) as loaded:
        assert _same(loaded.get_weights(), record.weights[(2, 3)])


def test_ctrl_c_right_after_an_update_drops_the_stale_prediction_session():
    with _model() as model:
        before = model.predict_softly(X)  # caches an inference session of the initial weights
        real_step = model._trainer.engine.train_step

        def interrupted_step(x: np.ndarray, y: np.ndarray) -> Any:
            real_step(x, y)  # the update lands, then the signal arrives before fit records it
            raise KeyboardInterrupt

        model._trainer.engine.train_step = interrupted_step
        with pytest.raises(KeyboardInterrupt):
            model.fit((X, Y), epochs=1, batch_size=8, verbose=0)
        model._trainer.engine.train_step = real_step
        after = model.predict_softly(X)
        assert not np.array_equal(after, before)
        exported = InferenceModel(model.inference_model().SerializeToString())
        np.testing.assert_allclose(exported.predict_softly(X), after, rtol=0, atol=1e-6)


SIGINT_CHILD = textwrap.dedent(
    """
    import json, sys, numpy as np
    from onnxtrain import Sequential, load_model
    from onnxtrain.callbacks import Callback
    from onnxtrain.layers import Dense, Flatten, Input

    class Ready(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                print("ready", flush=True)

    rng = np.random.default_rng(0)
    x, y = rng.random((512, 4, 3), dtype=np.float32), rng.integers(0, 3, 512)
    model = Sequential.of(Input(4, 3), Flatten(), Dense(16), Dense(3, activation="linear"), seed=1)
    model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
    try:
        model.fit((x, y), epochs=100000, batch_size=4, verbose=0, callbacks=[Ready()])
    except KeyboardInterrupt:
        weights = model.get_weights()
        loss = model.evaluate((x, y)).loss
        directory = model.save(sys.argv[1], save_optimizer_state=True)
        with load_model(directory) as loaded:
            same = all(np.array_equal(weights[k], loaded.get_weights()[k]) for k in weights)
            loaded.fit((x, y), epochs=1, verbose=0)
        print(json.dumps({"interrupted": True, "epochs": model._trainer.epochs_trained, "finite": bool(
            np.isfinite(loss) and all(np.isfinite(w).all() for w in weights.values())), "reloaded_same": same}))
    """
)


@pytest.mark.slow
def test_a_real_sigint_during_fit_leaves_a_saveable_model(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", SIGINT_CHILD, str(tmp_path / "m")], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGINT)
        output, _ = child.communicate(timeout=60)
    finally:
        child.kill()
    report = json.loads(output.strip().splitlines()[-1])
    assert report == {"interrupted": True, "epochs": report["epochs"], "finite": True, "reloaded_same": True}
    assert report["epochs"] >= 2


# --- file faults when loading -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    with _model() as model:
        model.fit((X, Y), epochs=1, verbose=0)
        directory = model.save(tmp_path_factory.mktemp("faults") / "model", save_optimizer_state=True)
    return {name: (directory / name).read_bytes() for name in os.listdir(directory)}


def _copy(files: dict[str, bytes], directory: Path) -> Path:
    directory.mkdir()
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


@contextlib.contextmanager
def _unreadable(name: str) -> Iterator[None]:
    """Reads of files called `name` fail with EACCES (chmod does not stop root, who may run the tests)."""
    real = pathlib.Path.read_bytes
    real_open = _bounded_read.open_regular  # how the loaders open a model's files

    def read_bytes(self: Path) -> bytes:
        if self.name == name:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    def open_regular(path: Path) -> io.BufferedReader:
        if Path(path).name == name:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pathlib.Path, "read_bytes", read_bytes)
        patch.setattr(_bounded_read, "open_regular", open_regular)
        yield


FAULTS: dict[str, Callable[[bytes], bytes | None]] = {
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "last-byte-cut": lambda data: data[:-1],
    "random-bytes": lambda data: np.random.default_rng(len(data)).bytes(len(data)),
    "directory": lambda data: None,
    "unreadable": lambda data: data,
}
MODEL_CHECKSUM = r"model\.onnx does not match the SHA-256 that config\.json recorded when it was saved"
# What load_model says, per file and fault (the file is always named).
LOAD_MESSAGES = {
    ("model.onnx", "empty"): rf"{MODEL_CHECKSUM}, and it is empty \(0 bytes\): the file was damaged after the save",
    ("model.onnx", "truncated"): rf"{MODEL_CHECKSUM}, and it is truncated \(\d+ bytes; it ends inside its 'graph'",
    ("model.onnx", "last-byte-cut"): rf"{MODEL_CHECKSUM}, and it is truncated \(\d+ bytes; it ends inside its",
    ("model.onnx", "random-bytes"): rf"{MODEL_CHECKSUM}, and it is not an ONNX model \(it does not parse as an ONNX",
    ("model.onnx", "directory"): r"not a saved onnxtrain model: model\.onnx is missing",
    ("model.onnx", "unreadable"): r"Cannot read '.*model\.onnx': Permission denied",
    ("config.json", "empty"): r"config\.json is not readable JSON: Expecting value",
    ("config.json", "truncated"): r"config\.json is not readable JSON",
    ("config.json", "last-byte-cut"): None,  # the final newline: the JSON is whole, the model loads
    ("config.json", "random-bytes"): r"config\.json is not readable JSON: 'utf-8' codec can't decode",
    ("config.json", "directory"): r"not a saved onnxtrain model: config\.json is missing",
    ("config.json", "unreadable"): r"Cannot read '.*config\.json': Permission denied",
    ("checkpoint", "directory"): r"checkpoint is missing although config\.json says the optimizer state was saved",
    ("checkpoint", "unreadable"): r"Cannot read '.*checkpoint': Permission denied",
}
DAMAGED_CHECKPOINT = r"optimizer state of .*checkpoint failed: its SHA-256 differs .* the checkpoint is damaged"
INFERENCE_MESSAGES = {  # the same checksum check as load_model's
    **{fault: LOAD_MESSAGES["model.onnx", fault] for fault in ("empty", "truncated", "last-byte-cut", "random-bytes")},
    "directory": r"has no model\.onnx: pass a directory written by model\.save\(\)",
    "unreadable": r"Cannot read '.*model\.onnx': Permission denied",
}
FILE_FAULTS = [(name, fault) for name in ("model.onnx", "config.json", "checkpoint") for fault in FAULTS]


@pytest.mark.parametrize("name, fault", FILE_FAULTS, ids=[f"{n}-{f}" for n, f in FILE_FAULTS])
def test_a_damaged_file_is_one_model_file_error_naming_it(tmp_path, saved, name, fault):
    directory = _copy(saved, tmp_path / "model")
    damaged = FAULTS[fault](saved[name])
    if damaged is None:
        (directory / name).unlink()
        (directory / name).mkdir()
    else:
        (directory / name).write_bytes(damaged)
    message = LOAD_MESSAGES.get((name, fault), DAMAGED_CHECKPOINT)
    with _unreadable(name if fault == "unreadable" else "-"):
        if message is None:
            load_model(directory).close()
        else:
            with pytest.raises(ModelFileError, match=message):
                load_model(directory)
        if name == "model.onnx":
            with pytest.raises(ModelFileError, match=INFERENCE_MESSAGES[fault]):
                InferenceModel.load(directory)
        else:
            InferenceModel.load(directory).close()  # InferenceModel needs model.onnx only


def _flip_until_ort_accepts(checkpoint: bytes, directory: Path) -> bytes:
    """A one-byte change ONNX Runtime loads without complaint, changing the weights (a silent corruption)."""
    expected = load_model(directory, compile=False).get_weights()
    config = json.loads((directory / "config.json").read_text())
    config.pop("checkpoint_sha256")  # a save made before the checksum was recorded
    (directory / "config.json").write_text(json.dumps(config))
    for position in range(len(checkpoint) - 8, len(checkpoint) // 2, -7):
        damaged = bytearray(checkpoint)
        damaged[position] ^= 0x40
        (directory / "checkpoint").write_bytes(bytes(damaged))
        with contextlib.suppress(ModelFileError), load_model(directory) as model:
            if not _same(model.get_weights(), expected):
                return bytes(damaged)
    raise AssertionError("no silently accepted corruption found")


@pytest.fixture(scope="module")
def saved_by_ort_training(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    with _model(engine="ort-training") as model:
        model.fit((X, Y), epochs=1, verbose=0)
        directory = model.save(tmp_path_factory.mktemp("faults-ort") / "model", save_optimizer_state=True)
    return {name: (directory / name).read_bytes() for name in os.listdir(directory)}


@pytest.mark.slow
@pytest.mark.training
def test_a_corrupted_checkpoint_is_refused_by_its_checksum_before_onnx_runtime_reads_it(
    tmp_path, saved_by_ort_training, monkeypatch
):
    # ONNX Runtime's checkpoint format has no checksum of its own: a flipped byte can load as other weights. (A
    # portable checkpoint is a zip, whose CRC refuses such a byte anyway.)
    saved = saved_by_ort_training
    legacy = _copy(saved, tmp_path / "legacy")
    damaged = _flip_until_ort_accepts(saved["checkpoint"], legacy)  # without the checksum: wrong weights
    directory = _copy({**saved, "checkpoint": damaged}, tmp_path / "model")

    def no_engine(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the damaged checkpoint reached the training engine")

    monkeypatch.setattr("onnxtrain.training.Trainer.create", no_engine)
    with pytest.raises(ModelFileError, match=DAMAGED_CHECKPOINT):
        load_model(directory)
    monkeypatch.undo()
    with load_model(directory, optimizer=Adam()) as fresh:  # the fix the message names: weights from model.onnx
        assert _same(fresh.get_weights(), load_model(directory, compile=False).get_weights())


def _foreign_model(**changes: Any) -> bytes:
    """A valid ONNX model that onnxtrain did not write: Relu of a [batch, 3] input, optionally changed."""
    batch = changes.get("batch", "N")
    graph = helper.make_graph(
        changes.get("nodes", [helper.make_node("Relu", ["input"], ["logits"])]),
        "foreign",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3])],
        changes.get("outputs", [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 3])]),
        changes.get("initializers", []),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in changes.get("metadata", {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    data = model.SerializeToString()
    return data.replace(b"\xc3\xa9", b"\xff\xfe") if changes.get("broken_utf8") else data


FOREIGN = {
    "fixed-batch-not-a-multiple": (
        _foreign_model(batch=2),
        lambda m: m.predict(np.ones((3, 3), np.float32)),
        ShapeError,
        r"x expects a multiple of 2 examples: .* fixes the batch size of its input 'input' to 2\. Received: "
        r"x\.shape=\(3, 3\)",
    ),
    "fails-while-running": (
        _foreign_model(
            nodes=[helper.make_node("Reshape", ["input", "shape"], ["logits"])],
            initializers=[helper.make_tensor("shape", TensorProto.INT64, [2], [7, 5])],
        ),
        lambda m: m.predict(np.ones((5, 3), np.float32)),
        ModelFileError,
        r"failed in ONNX Runtime on x of shape \(5, 3\) .*The model is damaged or is not one that onnxtrain exports",
    ),
    "metadata-not-utf8": (
        _foreign_model(metadata={"class_names": "caf\u00e9"}, broken_utf8=True),
        InferenceModel,
        ModelFileError,
        r"has metadata that is not valid UTF-8",
    ),
    "no-outputs": (_foreign_model(outputs=[]), InferenceModel, ModelFileError, r"has no outputs"),
}


@pytest.mark.parametrize("case", list(FOREIGN))
def test_a_foreign_onnx_model_is_refused_clearly_by_inference_model(case):
    data, call, error, match = FOREIGN[case]
    with pytest.raises(error, match=match):
        call(InferenceModel(data) if call is not InferenceModel else data)


def test_a_foreign_model_with_a_fixed_batch_runs_in_batches_of_that_size():
    model = InferenceModel(_foreign_model(batch=2))
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    assert np.array_equal(model.predict(x, batch_size=4), np.maximum(x, 0))


def test_a_valid_onnx_model_that_is_not_this_models_is_refused_by_load_model(tmp_path, saved):
    with _model(units=5) as other:
        foreign = other.inference_model().SerializeToString()
    cases = {
        "other-onnxtrain-model": (
            foreign,
            r"makes weight 'kernel' of shape \(12, 8\), which model\.onnx does not declare \(it declares "
            r"'dense_1\.kernel' of shape \(12, 5\)\)",
        ),
        "not-an-onnxtrain-model": (
            _foreign_model(),
            r"model\.onnx does not declare \(it has no weight 'dense_1\.kernel'\)",
        ),
    }
    for name, (data, match) in cases.items():
        directory = _copy({**saved, "model.onnx": data}, tmp_path / name)
        with pytest.raises(ModelFileError, match=match):
            load_model(directory)


def _config_with(saved: dict[str, bytes], change: Callable[[dict[str, Any]], Any]) -> bytes:
    config = json.loads(saved["config.json"])
    result = change(config)
    return result if isinstance(result, bytes) else json.dumps(config).encode()


CONFIG_FAULTS = {  # found by tools/fuzz.py --target config; each was an exception other than ModelFileError
    "deep-nesting": (lambda c: b"[" * 100_000 + b"]" * 100_000, r"config\.json is not readable JSON"),
    "huge-integer-literal": (lambda c: b'{"seed": ' + b"9" * 5000 + b"}", r"config\.json is not readable JSON"),
    "layer-not-an-object": (lambda c: c["layers"].insert(1, [1, 2]), r"describes a model that cannot be rebuilt"),
    "layer-too-big-to-build": (
        lambda c: c["layers"][2]["config"].update(units=10**16),  # beyond any address space: no OOM risk
        r"makes weight 'kernel' of shape \(12, 10000000000000000\), which model\.onnx does not declare",
    ),
    "epochs-trained-not-a-number": (
        lambda c: c.update(epochs_trained={}),
        r"'epochs_trained' expects a non-negative int\. Received: epochs_trained=\{\}",
    ),
    "negative-learning-rate": (
        lambda c: c.update(current_learning_rate=-0.1),
        r"current_learning_rate must be a positive number\. Found: -0\.1",
    ),
    "unknown-engine": (lambda c: c["compile"].update(engine="jax"), r"engine must be one of .* Found: 'jax'"),
    "unsupported-opset": (lambda c: c["compile"].update(opset=99), r"compile settings that cannot be used.*opset"),
}


@pytest.mark.parametrize("case", list(CONFIG_FAULTS))
def test_a_damaged_config_is_one_model_file_error(tmp_path, saved, case):
    change, match = CONFIG_FAULTS[case]
    directory = _copy({**saved, "config.json": _config_with(saved, change)}, tmp_path / "model")
    with pytest.raises(ModelFileError, match=match):
        load_model(directory)


# --- file faults when saving: the previous model stays intact -----------------------------------------------


@pytest.fixture(params=["tmpfs", "patched-write"])
def full_disk(request, tmp_path, monkeypatch) -> Iterator[Path]:
    """A folder whose disk fills up: a real 96 KiB tmpfs (needs root), or writes patched to fail with ENOSPC
    after 64 KiB of any file bigger than that."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if request.param == "tmpfs":
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(folder)], capture_output=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
        try:
            yield folder
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        return
    real = _writing._write_new_file

    def write_until_full(path: Path, data: Any) -> None:
        if path.is_relative_to(folder) and not callable(data) and len(data) > 64 * 1024:
            path.write_bytes(bytes(data)[: 64 * 1024])  # what fitted before the disk filled up
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(_writing, "_write_new_file", write_until_full)
    yield folder


def _scratch(folder: Path) -> list[str]:
    """Every scratch entry under `folder`, lock files included: a save's lock file exists only while the save holds
    the lock, so only a save killed while holding it leaves one (until the next save or load), and none is killed
    here."""
    return [p.name for p in folder.rglob("*") if p.name.startswith(saving.SCRATCH_PREFIX)]


@pytest.mark.parametrize("mode", ["override", "append"])
def test_disk_full_during_save_keeps_the_previous_model(full_disk, mode):
    with _model(seed=1, units=4) as small, _model(seed=2, units=2000) as big:  # about 0.3 KB and 128 KB of weights
        directory = small.save(full_disk / "model")
        with pytest.raises(OSError, match=r"Could not save .*The disk is full.*The previous contents are intact") as e:
            big.save(directory, writing_mode=mode)
        assert e.value.errno == errno.ENOSPC
        with load_model(directory) as loaded:
            assert _same(loaded.get_weights(), small.get_weights())
        exported = small.export(full_disk / "model.onnx")
        with pytest.raises(OSError, match=r"The disk is full"):
            big.export(exported, writing_mode="override")
        assert InferenceModel.load(exported).input_shape == (4, 3)
    assert _scratch(full_disk) == []


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda m, d: m.save(d / "model" / "model.onnx" / "nested"),
            NotADirectoryError,
            r"Could not save .*Not a directory\. The previous contents are intact",
        ),
        (lambda m, d: m.export(d / "model" / "model.onnx" / "x.onnx"), NotADirectoryError, r"Not a directory"),
        (
            lambda m, d: m.export(d / "model", writing_mode="override"),
            ValueError,
            r"export\(path=\.\.\.\) expects a file path .* a directory; use save\(\)",
        ),
        (
            lambda m, d: m.save(d / "model" / "model.onnx", writing_mode="override"),
            ValueError,
            r"expects a directory path, but .*model\.onnx' is an existing file",
        ),
    ],
    ids=["save-under-a-file", "export-under-a-file", "export-onto-a-directory", "save-onto-a-file"],
)
def test_a_file_where_a_directory_belongs_and_vice_versa_is_refused_and_kept(tmp_path, call, error, match):
    with _model() as model:
        directory = model.save(tmp_path / "model")
        before = {p.name: p.read_bytes() for p in directory.iterdir()}
        with pytest.raises(error, match=match):
            call(model, tmp_path)
        assert {p.name: p.read_bytes() for p in directory.iterdir()} == before


# --- process faults: kill -9 during fit, concurrent saves -------------------------------------------------------


@pytest.fixture(scope="module")
def process_faults() -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "kill_during_fit.py"),
            "--kills",
            "4",
            # Many more epochs than kills: a kill lands within ~1.3 epochs of a child's start, so a child can
            # never finish the whole run first (with 4 epochs a fast child under a slow reference sometimes did).
            "--epochs",
            "12",
            "--examples",
            "2000",
            "--concurrent-rounds",
            "2",
            "--saves",
            "20",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "returncode": done.returncode, "out": done.stdout}


@pytest.mark.slow
def test_kill_9_during_fit_loses_at_most_the_epoch_in_progress(process_faults):
    """Children train with ModelCheckpoint(save_optimizer_state=True) and are SIGKILLed mid-epoch (sometimes
    inside the save); each resumes from the checkpoint, and the finished run equals an uninterrupted one."""
    report = process_faults["kill_during_fit"]
    assert report["problems"] == [] and process_faults["returncode"] == 0, process_faults["out"]
    assert report["kills"] >= 1 and report["models_lost"] == 0
    assert report["max_epochs_lost"] <= 1
    assert report["resumes"] + report["restarts_from_scratch"] == report["kills"]
    assert report["final_matches_reference"] and report["max_weight_difference"] <= 1e-5


@pytest.mark.slow
def test_two_processes_saving_one_directory_leave_one_complete_model(process_faults):
    report = process_faults["concurrent_saves"]
    assert report["problems"] == [], process_faults["out"]
    assert report["rounds"] == 2 and report["saves"] == 80 and report["reads"] >= 2
    assert report["mixed_or_partial"] == 0 and report["unloadable"] == 0 and report["models_lost"] == 0


@pytest.mark.slow
def test_the_kill_check_catches_lost_epochs_and_unloadable_checkpoints(tmp_path):
    tool = _load_tool("kill_during_fit")
    with _model() as model:
        model.fit((X, Y), epochs=1, verbose=0)
        checkpoint = model.save(tmp_path / tool.CHECKPOINT_DIR, save_optimizer_state=True)
    report = tool.FitKillReport(kills=1)
    assert tool.check_after_kill(checkpoint, begun=2, saved=1, report=report)
    assert (report.models_lost, report.max_epochs_lost, report.resumes) == (0, 1, 1)
    assert tool.check_after_kill(checkpoint, begun=3, saved=2, report=report)  # epoch 2 was reported saved
    assert (report.models_lost, report.max_epochs_lost) == (1, 2)
    (checkpoint / "config.json").write_bytes(b"{")
    assert not tool.check_after_kill(checkpoint, begun=2, saved=1, report=report)
    assert report.models_lost == 2 and "does not load" in report.problems[-1]
    missing = tool.FitKillReport(kills=1)
    assert tool.check_after_kill(tmp_path / "never-saved", begun=1, saved=1, report=missing)
    assert missing.models_lost == 1 and missing.restarts_from_scratch == 1


def _load_tool(name: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
