"""Fuzz the loaders of untrusted files, each parse in a worker process that a native crash cannot take down.

    python tools/fuzz.py --examples 2000 [--target idx|config|onnx|checkpoint|ort-checkpoint|all] [--seed 0]

Targets (each mutates a valid file made here, then loads it the way a user would):
- idx: random and mutated IDX files (plain and gzip) through `read_idx`; only DataFormatError may come out.
- config: JSON-level mutations of a saved model's config.json (values, types, deleted and added keys) and some
  byte-level ones, through `load_model` (compiled, resuming the optimizer state) and one predict + fit step.
- onnx: protobuf-level mutations of model.onnx (initializer dims, types and data, node ops and inputs, graph
  inputs, opset and IR versions) and byte-level ones, through `load_model` and `InferenceModel.load` +
  `predict` (ONNX Runtime's C++ parser and graph checks).
- checkpoint: byte-level mutations of the checkpoint of a save, loaded with `load_model` (resuming the
  optimizer state): the SHA-256 that config.json records must refuse the damage.
- external: the save's model.onnx with its weights in data.bin, its external-data fields mutated (location:
  '../', absolute, symlinks, non-UTF-8, empty; offset, length, dims, dtype, data_location, duplicate and
  missing entries) and data.bin itself (truncated, grown, a symlink out, a folder, a FIFO), with config.json's
  SHA-256 recomputed as an attacker would. Through `read_onnx_model`, `load_model` and `InferenceModel.load`;
  a weight holding the value of `secret.bin`, which sits beside the case folder, is a bad verdict (escaped).
- npz: .npy headers inside .npz archives mutated (shape, dtype, fortran order, header bytes, truncated data,
  deflated members, renamed, added and pickled members): the portable checkpoint of a save (its SHA-256
  recomputed) through `load_model`, resuming, and a dataset through the CLI's `--data` reader.
- ort-checkpoint (not part of "all"): the same mutations in a save whose config.json lacks the SHA-256 (as
  saves made before it was recorded), so ONNX Runtime's native checkpoint reader parses the damage. With
  onnxruntime-training 1.19.2 about 1 case in 1,000 segfaults there (`--examples 3000 --seed 2` finds 3).

Verdicts: ok (loaded and ran), refused (the documented error: DataFormatError from read_idx, ModelFileError
from the loaders, any onnxtrain error from a call on a model that loaded), unclear (a loader raised another
onnxtrain error), leaked (any other exception), crashed (the worker died: a native crash), hung (no answer
within --timeout), escaped (a loader returned data from outside the model's folder). The run exits 1 unless
every case is ok or refused. tests/test_reliability_fuzz.py runs a bounded, derandomized version of the
config, onnx, checkpoint, external and npz targets.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import hashlib
import io
import json
import math
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("idx", "config", "onnx", "checkpoint", "external", "npz")
EXTRA_TARGETS = ("ort-checkpoint",)
OK, REFUSED, UNCLEAR, LEAKED, CRASHED, HUNG = "ok", "refused", "unclear", "leaked", "crashed", "hung"
ESCAPED = "escaped"
BAD_VERDICTS = (UNCLEAR, LEAKED, CRASHED, HUNG, ESCAPED)
SECRET_VALUE = np.float32(31337.0)  # fills secret.bin, beside every case folder: no loader may return it
READY = '{"ready": true}'  # the worker's first line, once it has imported what the checks need
MAX_PREDICT_VALUES = 10**6  # a mutated input shape can ask for more memory than a probe batch should take

# --- what the worker runs ------------------------------------------------------------------------------


def _check_idx(path: Path) -> None:
    from onnxtrain.datasets import read_idx

    read_idx(path)


class WrongErrorType(Exception):
    """A loader raised an onnxtrain error other than the one it documents for a bad file."""


def _probe_batch(shape: tuple[int, ...]) -> np.ndarray | None:
    return np.zeros((2, *shape), np.float32) if 2 * math.prod(shape) <= MAX_PREDICT_VALUES else None


def _check_saved_model(path: Path) -> None:
    """load_model (compiled, resuming) then predict + one fit step; InferenceModel.load then predict.

    The loaders must raise ModelFileError for a bad file; a model that loads may refuse a call with any
    onnxtrain error (e.g. NonFiniteLossError for a mutated learning rate), never with another exception.
    """
    import warnings

    from onnxtrain import InferenceModel, load_model
    from onnxtrain.errors import ModelFileError, OnnxtrainError

    warnings.simplefilter("ignore")  # e.g. the logits-activation warning of a mutated last layer
    try:
        model = load_model(path)
    except OnnxtrainError as e:
        if not isinstance(e, ModelFileError):
            raise WrongErrorType(f"load_model raised {type(e).__name__}: {e}") from e
        raise
    with model:
        x = _probe_batch(model.input_shape)
        if x is not None and model.is_compiled:  # an uncompiled model (compile: null) cannot predict
            model.predict(x)
            dtype, shape = model._trainer.compiled.loss.label_spec(model.output_shape)
            model.fit((x, np.zeros((2, *shape[1:]), dtype)), epochs=1, batch_size=2, verbose=0)
    try:
        inference = InferenceModel.load(path)
    except OnnxtrainError as e:
        if not isinstance(e, ModelFileError):
            raise WrongErrorType(f"InferenceModel.load raised {type(e).__name__}: {e}") from e
        raise
    with inference:
        x = _probe_batch(inference.input_shape)
        if x is not None:
            inference.predict(x)


class SecretRead(Exception):
    """A loader returned bytes of secret.bin, a file outside the model's folder."""


def _check_secret(arrays: dict[str, np.ndarray], loader: str) -> None:
    for name, array in arrays.items():
        if np.issubdtype(array.dtype, np.floating) and np.any(array == SECRET_VALUE):
            raise SecretRead(f"{loader} returned {name} holding secret.bin's value {SECRET_VALUE}")


def _check_external(path: Path) -> None:
    """read_onnx_model, load_model and InferenceModel.load of a save whose weights are external data: each must
    refuse with ModelFileError or return no byte of secret.bin; then the full `_check_saved_model`."""
    from onnx import numpy_helper

    from onnxtrain import load_model
    from onnxtrain._onnx_file import read_onnx_model
    from onnxtrain.errors import ModelFileError, OnnxtrainError

    try:
        proto = read_onnx_model(path / "model.onnx")
    except OnnxtrainError as e:
        if not isinstance(e, ModelFileError):
            raise WrongErrorType(f"read_onnx_model raised {type(e).__name__}: {e}") from e
        raise
    _check_secret({t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}, "read_onnx_model")
    with load_model(path, compile=False) as model:
        _check_secret(model.get_weights(), "load_model")
    _check_saved_model(path)


def _check_npz_data(path: Path) -> None:
    """The CLI's --data reader: DataFormatError for a malformed file, any onnxtrain error for a wrong one."""
    from onnxtrain.cli._data import DatasetLoader

    DatasetLoader(path.parent).load(path.name, "--data")


def _bad_verdict(error: Exception) -> str:
    return UNCLEAR if isinstance(error, WrongErrorType) else ESCAPED if isinstance(error, SecretRead) else LEAKED


def _worker() -> None:
    """Say READY once imported, then answer one JSON line per request line: {"target", "path"} -> {"verdict",
    "error", "message"}."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # native code that prints to stdout must not corrupt the answers
    sys.stdout = sys.stderr
    import onnxtrain.datasets  # noqa: F401  (imported before READY, so that no check's time includes them)
    from onnxtrain import InferenceModel, load_model  # noqa: F401
    from onnxtrain.errors import DataFormatError, ModelFileError, OnnxtrainError

    answers.write(READY + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        path = Path(request["path"])
        if request["target"] == "self-test-crash":  # tests check that the isolation catches these
            os.kill(os.getpid(), signal.SIGSEGV)
        if request["target"] == "self-test-hang":
            time.sleep(3600)
        try:
            if request["target"] == "idx":
                _check_idx(path)
            elif request["target"] == "external":
                _check_external(path)
            elif path.suffix == ".npz":
                _check_npz_data(path)
            else:
                _check_saved_model(path)
            answer = {"verdict": OK}
        except (DataFormatError, ModelFileError, OnnxtrainError) as e:
            answer = {"verdict": REFUSED, "error": type(e).__name__, "message": str(e)[:500]}
        except Exception as e:
            answer = {
                "verdict": UNCLEAR
                if isinstance(e, WrongErrorType)
                else ESCAPED
                if isinstance(e, SecretRead)
                else LEAKED,
                "error": f"{type(e).__module__}.{type(e).__name__}",
                "message": str(e)[:500],
                "traceback": traceback.format_exc()[-3000:],
            }
        answers.write(json.dumps(answer) + "\n")


class WorkerStartError(RuntimeError):
    """The worker process died or stayed silent before it was ready: no case was checked."""


class IsolatedChecker:
    """Runs checks in a worker process; a crash or hang becomes a verdict and the worker is restarted.

    A case's `timeout` counts from the moment it is sent to a worker that said it is ready, so the time a (re)started
    worker takes to import onnxtrain, which a busy machine stretches to seconds, never turns a case into a hang;
    starting gets `start_timeout` of its own.
    """

    def __init__(self, timeout: float = 60.0, log: Path | None = None, start_timeout: float = 300.0):
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.log = log or Path(tempfile.mkstemp(prefix="onnxtrain-fuzz-worker-", suffix=".log")[1])
        self.restarts = 0
        self._process: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        with open(self.log, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            )
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], self.start_timeout)
        line = process.stdout.readline() if ready else ""
        if line.strip() != READY:
            process.kill()
            code = process.wait()
            what = "stayed silent" if not ready else f"exited with status {code}" if not line else "answered"
            raise WorkerStartError(
                f"the fuzz worker {what} before it was ready (start timeout {self.start_timeout} s; output "
                f"{line[:200]!r}); its stderr is in {self.log}"
            )
        self._process = process
        return process

    def check(self, target: str, path: Path) -> dict[str, Any]:
        process = self._start()
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(json.dumps({"target": target, "path": str(path)}) + "\n")
            process.stdin.flush()
        except BrokenPipeError:
            pass
        ready, _, _ = select.select([process.stdout], [], [], self.timeout)
        line = process.stdout.readline() if ready else ""
        if line:
            return json.loads(line)
        if not ready:
            process.kill()
            process.wait()
            self._process = None
            self.restarts += 1
            return {"verdict": HUNG, "message": f"no answer within {self.timeout} s"}
        code = process.wait()
        self._process = None
        self.restarts += 1
        return {"verdict": CRASHED, "message": f"the worker died with exit status {code}", "returncode": code}

    def close(self) -> None:
        if self._process is not None:
            if self._process.stdin is not None:
                self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


# --- the valid files that get mutated ------------------------------------------------------------------


@dataclass
class Corpus:
    """A trained, saved model (with optimizer state) and a valid IDX file, with scratch space for cases."""

    root: Path
    model_dir: Path
    files: dict[str, bytes]
    config: dict[str, Any]
    idx: bytes
    scratch: dict[str, Path] = field(default_factory=dict)
    external: dict[str, bytes] = field(default_factory=dict)  # model.onnx with its weights in data.bin
    data_npz: bytes = b""  # a dataset as the CLI's --data reads it

    @classmethod
    def create(cls, root: Path) -> Corpus:
        import warnings

        from onnxtrain import Sequential
        from onnxtrain.layers import Dense, Flatten, Input

        warnings.simplefilter("ignore")
        rng = np.random.default_rng(0)
        x = rng.random((32, 3, 2), dtype=np.float32)
        y = rng.integers(0, 3, 32)
        with Sequential.of(Input(3, 2), Flatten(), Dense(5), Dense(3, activation="linear"), seed=3) as model:
            model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", metric="accuracy")
            model.fit((x, y), epochs=1, batch_size=8, verbose=0)
            model.class_names = ("a", "b", "c")
            model_dir = model.save(root / "model", save_optimizer_state=True)
        files = {name: (model_dir / name).read_bytes() for name in sorted(os.listdir(model_dir))}
        labels = np.arange(12, dtype=np.uint8)
        idx = bytes((0, 0, 0x08, 1)) + struct.pack(">I", 12) + labels.tobytes()
        corpus = cls(root, model_dir, files, json.loads(files["config.json"]), idx)
        corpus.external = _external_model(files["model.onnx"], root / "external-base")
        (root / "secret.bin").write_bytes(np.full(1024, SECRET_VALUE, np.float32).tobytes())
        buffer = io.BytesIO()
        np.savez(buffer, x=(x * 255).astype(np.uint8), y=y, class_names=np.array(["a", "b", "c"]))
        corpus.data_npz = buffer.getvalue()
        return corpus

    def case(self, target: str, name: str, data: bytes, config: bytes | None = None) -> Path:
        """A fresh model directory (or IDX file) for one case, holding the mutated file."""
        if target == "idx":
            path = self.root / "case.idx"
            path.write_bytes(data)
            return path
        directory = self.root / f"case-{target}"
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir()
        for file_name, content in self.files.items():
            (directory / file_name).write_bytes(content)
        if config is not None:
            (directory / "config.json").write_bytes(config)
        (directory / name).write_bytes(data)
        return directory

    def config_with_checksums(self, **files: bytes) -> bytes:
        """config.json with the SHA-256 of the given files (model.onnx, checkpoint) recomputed, as an attacker who
        edits a save does, so that a mutation reaches the checks behind the checksum."""
        names = {"model.onnx": "model_sha256", "checkpoint": "checkpoint_sha256"}
        config = dict(self.config)
        for name, content in files.items():
            config[names[name.replace("_", ".")]] = hashlib.sha256(content).hexdigest()
        return (json.dumps(config, indent=2) + "\n").encode()

    def config_without_checksum(self) -> bytes:
        config = {k: v for k, v in self.config.items() if k != "checkpoint_sha256"}
        return (json.dumps(config, indent=2) + "\n").encode()


# --- mutations -----------------------------------------------------------------------------------------

_BOUNDARY_INTS = [0, -1, 1, 2, 3, 255, 256, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, 10**6, -(2**63)]
_INT64_BOUNDARIES = [d for d in _BOUNDARY_INTS if -(2**63) <= d < 2**63]
_NAMES = [
    "Dense",
    "Flatten",
    "Input",
    "Conv2D",
    "adam",
    "sgd",
    "rmsprop",
    "relu",
    "linear",
    "softmax",
    "mse",
    "binary_crossentropy",
    "softmax_cross_entropy_with_logits",
    "accuracy",
    "auto",
    "portable",
    "ort-training",
    "onnxtrain.sequential/1",
    "",
    "dense_1",
    "dense_1.kernel",
    "\u00e9\u0000",
]
_json_scalars = (
    st.none()
    | st.booleans()
    | st.sampled_from(_BOUNDARY_INTS)
    | st.integers()
    | st.floats()
    | st.sampled_from(_NAMES)
    | st.text(max_size=12)
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=8,
)


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found += _paths(value, (*prefix, index))
    return found


def _mutate_json(data: st.DataObject, config: dict[str, Any]) -> Any:
    tree: Any = copy.deepcopy(config)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = _paths(tree)
        path = data.draw(st.sampled_from(paths), label="path")
        operation = data.draw(st.sampled_from(["replace", "replace", "delete", "insert", "scale"]), label="op")
        if not path:
            if operation == "replace":
                tree = data.draw(_json_values, label="root")
            continue
        parent = tree
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        current = parent[key]
        if operation == "replace":
            parent[key] = data.draw(_json_values, label="value")
        elif operation == "delete":
            del parent[key]
        elif operation == "insert" and isinstance(current, dict):
            current[data.draw(st.sampled_from([*current, "units", "name", "seed", "x"]), label="key")] = data.draw(
                _json_values, label="inserted"
            )
        elif operation == "insert" and isinstance(current, list):
            current.insert(data.draw(st.integers(0, len(current))), data.draw(_json_values, label="inserted"))
        elif operation == "scale" and isinstance(current, int | float) and not isinstance(current, bool):
            parent[key] = current * data.draw(st.sampled_from([0, -1, 2, 1000, 10**9, 0.5]), label="factor")
    return tree


def _mutate_bytes(data: st.DataObject, base: bytes, label: str = "bytes") -> bytes:
    buffer = bytearray(base)
    for _ in range(data.draw(st.integers(1, 4), label=f"{label} mutations")):
        operation = data.draw(st.sampled_from(["flip", "word", "truncate", "insert", "delete"]), label=label)
        position = data.draw(st.integers(0, max(len(buffer) - 1, 0)), label=f"{label} position")
        if operation == "flip" and buffer:
            buffer[position] ^= 1 << data.draw(st.integers(0, 7))
        elif operation == "word" and buffer:
            word = data.draw(st.sampled_from([0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 1, 0xFF]), label="word")
            buffer[position : position + 4] = struct.pack("<I", word)
        elif operation == "truncate":
            del buffer[position:]
        elif operation == "insert":
            buffer[position:position] = data.draw(st.binary(min_size=1, max_size=16), label="inserted")
        elif operation == "delete":
            del buffer[position : position + data.draw(st.integers(1, 16))]
    return bytes(buffer)


def draw_config_case(data: st.DataObject, corpus: Corpus) -> bytes:
    if data.draw(st.integers(0, 9), label="byte-level") == 0:
        return _mutate_bytes(data, corpus.files["config.json"], "config bytes")
    mutated = _mutate_json(data, corpus.config)
    return (json.dumps(mutated, indent=2) + "\n").encode()


_OPS = ["Gemm", "MatMul", "Add", "Relu", "Reshape", "Flatten", "Softmax", "Conv", "Loop", "If", "Scan", "NoSuchOp"]


def draw_onnx_case(data: st.DataObject, corpus: Corpus) -> bytes:
    import onnx

    base = corpus.files["model.onnx"]
    if data.draw(st.integers(0, 3), label="byte-level") == 0:
        return _mutate_bytes(data, base, "onnx bytes")
    model = onnx.load_model_from_string(base)
    graph = model.graph
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        where = data.draw(st.sampled_from(["initializer", "node", "io", "model"]), label="where")
        if where == "initializer" and graph.initializer:
            tensor = graph.initializer[data.draw(st.integers(0, len(graph.initializer) - 1))]
            what = data.draw(st.sampled_from(["dims", "type", "raw", "name", "external", "float_data"]))
            if what == "dims":
                dims = list(tensor.dims)
                dims = data.draw(st.lists(st.sampled_from([*_INT64_BOUNDARIES, *dims]), max_size=4))
                del tensor.dims[:]
                tensor.dims.extend(dims)
            elif what == "type":
                tensor.data_type = data.draw(st.integers(0, 40))
            elif what == "raw":
                tensor.raw_data = data.draw(st.binary(max_size=64)) if data.draw(st.booleans()) else b""
            elif what == "name":
                tensor.name = data.draw(st.sampled_from(["", "input", "logits", "dense_2.bias", "x\u0000"]))
            elif what == "external":
                tensor.data_location = onnx.TensorProto.EXTERNAL
                entry = tensor.external_data.add()
                entry.key = data.draw(st.sampled_from(["location", "offset", "length", "checksum"]))
                entry.value = data.draw(st.sampled_from(["weights.bin", "../x", "/etc/hostname", "-1", "9" * 30]))
            else:
                tensor.float_data.extend(data.draw(st.lists(st.floats(width=32), max_size=8)))
        elif where == "node" and graph.node:
            node = graph.node[data.draw(st.integers(0, len(graph.node) - 1))]
            what = data.draw(st.sampled_from(["op", "input", "output", "attribute", "delete", "domain"]))
            if what == "op":
                node.op_type = data.draw(st.sampled_from(_OPS))
            elif what == "input" and node.input:
                node.input[data.draw(st.integers(0, len(node.input) - 1))] = data.draw(
                    st.sampled_from(["", "input", "missing", "logits", node.output[0] if node.output else "y"])
                )
            elif what == "output" and node.output:
                node.output[0] = data.draw(st.sampled_from(["", "input", "logits", "probabilities", "z"]))
            elif what == "attribute":
                node.attribute.append(
                    onnx.helper.make_attribute(
                        data.draw(st.sampled_from(["axis", "transB", "alpha", "perm", "junk"])),
                        data.draw(st.sampled_from([0, 1, -1, 2**40, 1.5, "s", [1, 2]])),
                    )
                )
            elif what == "delete":
                graph.node.remove(node)
            else:
                node.domain = data.draw(st.sampled_from(["com.microsoft", "ai.onnx.ml", "nope"]))
        elif where == "io":
            values = data.draw(st.sampled_from([graph.input, graph.output]))
            if values:
                value = values[data.draw(st.integers(0, len(values) - 1))]
                what = data.draw(st.sampled_from(["elem", "dim", "param", "drop_dim", "remove"]))
                shape = value.type.tensor_type.shape
                if what == "elem":
                    value.type.tensor_type.elem_type = data.draw(st.integers(0, 30))
                elif what == "dim" and shape.dim:
                    shape.dim[data.draw(st.integers(0, len(shape.dim) - 1))].dim_value = data.draw(
                        st.sampled_from(_INT64_BOUNDARIES)
                    )
                elif what == "param" and shape.dim:
                    shape.dim[data.draw(st.integers(0, len(shape.dim) - 1))].dim_param = "n"
                elif what == "drop_dim" and shape.dim:
                    del shape.dim[-1]
                elif what == "remove":
                    values.remove(value)
        else:
            what = data.draw(st.sampled_from(["opset", "ir", "metadata", "graph"]))
            if what == "opset":
                model.opset_import[0].version = data.draw(st.sampled_from([0, 1, 6, 11, 13, 17, 21, 22, 99, -1]))
            elif what == "ir":
                model.ir_version = data.draw(st.sampled_from([0, 1, 3, 7, 8, 10, 11, 99, -1]))
            elif what == "metadata":
                entry = model.metadata_props.add()
                entry.key = data.draw(st.sampled_from(["input_scale", "class_names", "onnxtrain.loss", "x"]))
                entry.value = data.draw(st.sampled_from(["-1", "nan", "0", "[1]", "{", "mse", "\u00ff", "1e400"]))
            else:
                model.ClearField("graph")
    return model.SerializeToString()


def draw_checkpoint_case(data: st.DataObject, corpus: Corpus) -> bytes:
    return _mutate_bytes(data, corpus.files["checkpoint"], "checkpoint bytes")


def draw_idx_case(data: st.DataObject, corpus: Corpus) -> bytes:
    kind = data.draw(st.sampled_from(["mutated", "random", "header"]), label="idx kind")
    if kind == "random":
        content = data.draw(st.binary(max_size=80))
    elif kind == "header":
        code = data.draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]))
        dims = data.draw(st.lists(st.sampled_from([0, 1, 2, 3, 12, 2**31, 2**32 - 1]), max_size=4))
        rank = data.draw(st.sampled_from([len(dims), len(dims) + 1, 0, 33, 255]))
        content = bytes((0, 0, code, rank)) + b"".join(struct.pack(">I", d) for d in dims)
        content += data.draw(st.binary(max_size=40))
    else:
        content = _mutate_bytes(data, corpus.idx, "idx bytes")
    if data.draw(st.booleans(), label="gzip"):
        content = gzip.compress(content)
        if data.draw(st.booleans(), label="damage gzip"):
            content = _mutate_bytes(data, content, "gzip bytes")
    return content


def _external_model(model: bytes, folder: Path) -> dict[str, bytes]:
    """model.onnx's bytes with every initializer's data moved to data.bin, and data.bin's."""
    import onnx
    from onnx import external_data_helper

    folder.mkdir()
    proto = onnx.load_model_from_string(model)
    external_data_helper.convert_model_to_external_data(proto, location="data.bin", size_threshold=0)
    onnx.save(proto, folder / "model.onnx")
    return {name: (folder / name).read_bytes() for name in ("model.onnx", "data.bin")}


_LOCATIONS = [
    "data.bin", "./data.bin", "sub/../data.bin", "inner.bin", "../secret.bin", "sub/../../secret.bin", "link.bin",
    "/dev/zero", "C:\\secret.bin", "", ".", "..", "data.bin\u0000", "data.bin/", "%2e%2e/secret.bin", "\u00e9.bin",
]  # fmt: skip
_EXTERNAL_NUMBERS = ["0", "1", "-1", "48", "120", "4096", "9" * 30, "abc", "1e3", " 4", "0x10", "", str(2**63)]
_DATA_FILE_OPS = ["truncate", "grow", "symlink-out", "folder", "fifo", "missing"]


def draw_external_case(data: st.DataObject, corpus: Corpus) -> Path:
    """A save whose model.onnx keeps its weights in data.bin, with its external-data fields (and data.bin)
    mutated; link.bin points at ../secret.bin, inner.bin at data.bin."""
    import onnx

    directory = corpus.case("external", "model.onnx", corpus.external["model.onnx"])
    model = onnx.load_model_from_string(corpus.external["model.onnx"])
    tensors = list(model.graph.initializer)
    raw = corpus.external["data.bin"]
    file_op = None
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        tensor = tensors[data.draw(st.integers(0, len(tensors) - 1), label="tensor")]
        entries = tensor.external_data
        what = data.draw(st.sampled_from(["location", "offset", "length", "entry", "dims", "type", "where", "file"]))
        if what == "location":
            entries.add(
                key="location", value=data.draw(st.sampled_from([*_LOCATIONS, str(corpus.root / "secret.bin")]))
            )
        elif what in ("offset", "length"):
            entries.add(key=what, value=data.draw(st.sampled_from(_EXTERNAL_NUMBERS), label=what))
        elif what == "entry":  # drop one, or add a key nobody reads
            if data.draw(st.booleans(), label="drop") and len(entries):
                del entries[data.draw(st.integers(0, len(entries) - 1))]
            else:
                entries.add(key=data.draw(st.sampled_from(["checksum", "basepath", "x"])), value="1")
        elif what == "dims":
            dims = data.draw(st.lists(st.sampled_from([0, 1, 3, 5, 6, 2**31, 2**40, 2**62]), max_size=4))
            del tensor.dims[:]
            tensor.dims.extend(dims)
        elif what == "type":
            tensor.data_type = data.draw(st.sampled_from([0, 1, 2, 7, 8, 10, 11, 16, 21, 29, 40]), label="type")
        elif what == "where":
            if data.draw(st.booleans(), label="default location"):
                tensor.data_location = onnx.TensorProto.DEFAULT
            else:
                tensor.raw_data = data.draw(st.binary(max_size=24), label="raw")
        else:
            file_op = data.draw(st.sampled_from(_DATA_FILE_OPS), label="data.bin")
    serialized = model.SerializeToString()
    if data.draw(st.integers(0, 9), label="non-UTF-8") == 0:  # protobuf then gives bytes, not str
        serialized = serialized.replace(b"data.bin", b"dat\xff.bin", 1)
    (directory / "model.onnx").write_bytes(serialized)
    (directory / "config.json").write_bytes(corpus.config_with_checksums(model_onnx=serialized))
    (directory / "link.bin").symlink_to(Path("..") / "secret.bin")
    (directory / "inner.bin").symlink_to("data.bin")
    data_file = directory / "data.bin"
    if file_op == "truncate":
        data_file.write_bytes(raw[: data.draw(st.integers(0, len(raw) - 1), label="cut")])
    elif file_op == "grow":
        data_file.write_bytes(raw + data.draw(st.binary(min_size=1, max_size=64), label="grown"))
    elif file_op == "symlink-out":
        data_file.symlink_to(Path("..") / "secret.bin")
    elif file_op == "folder":
        data_file.mkdir()
    elif file_op == "fifo":
        os.mkfifo(data_file)
    elif file_op is None:
        data_file.write_bytes(raw)
    return directory


_NPY_DESCRS = ["<f4", "<f8", "|u1", "<i8", "|O", "<U10", "<U0", ">f4", "|V8", "<c8", "|b1", "<m8"]


def _mutate_npy(data: st.DataObject, content: bytes) -> bytes:
    """One .npy member with its header (shape, dtype, order or raw bytes) or data mutated."""
    stream = io.BytesIO(content)
    try:
        version = np.lib.format.read_magic(stream)
        header = np.lib.format._read_array_header(stream, version)  # (shape, fortran_order, dtype)
    except Exception:  # an earlier mutation broke it: mutate the bytes instead
        return _mutate_bytes(data, content, "npy bytes")
    body = content[stream.tell() :]
    fields = {"descr": np.lib.format.dtype_to_descr(header[2]), "fortran_order": header[1], "shape": header[0]}
    what = data.draw(st.sampled_from(["shape", "descr", "fortran", "bytes", "body"]), label="npy mutation")
    if what == "shape":
        sizes = [0, 1, 2, 3, 5, 6, -1, -6, 2**31, 2**40, 10**12]
        fields["shape"] = tuple(data.draw(st.lists(st.sampled_from(sizes), max_size=4), label="shape"))
    elif what == "descr":
        fields["descr"] = data.draw(st.sampled_from(_NPY_DESCRS), label="descr")
    elif what == "fortran":
        fields["fortran_order"] = not fields["fortran_order"]
    elif what == "bytes":
        return _mutate_bytes(data, content[:128], "npy header bytes") + content[128:]
    else:
        body = _mutate_bytes(data, body, "npy data")
    written = io.BytesIO()
    np.lib.format.write_array_header_1_0(written, fields)
    return written.getvalue() + body


def _mutate_npz(data: st.DataObject, archive: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        members = {info.filename: source.read(info) for info in source.infolist()}
    for _ in range(data.draw(st.integers(1, 3), label="npz mutations")):
        name = data.draw(st.sampled_from(sorted(members)), label="member")
        what = data.draw(st.sampled_from(["npy", "npy", "npy", "rename", "add", "pickle", "drop"]), label="npz op")
        if what == "npy":
            members[name] = _mutate_npy(data, members[name])
        elif what == "rename":
            members[data.draw(st.sampled_from(["x.txt", "step.npy", "param/.npy", "../x.npy"]))] = members.pop(name)
        elif what == "add":
            members[data.draw(st.sampled_from(["param/nope.npy", "state/nope.npy", "junk.npy"]))] = members[name]
        elif what == "pickle":
            buffer = io.BytesIO()
            np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
            members[name] = buffer.getvalue()
        elif len(members) > 1:
            del members[name]
    written = io.BytesIO()
    compression = zipfile.ZIP_DEFLATED if data.draw(st.booleans(), label="deflate") else zipfile.ZIP_STORED
    with zipfile.ZipFile(written, "w", compression) as target:
        for name, content in members.items():
            target.writestr(name, content)
    return written.getvalue()


def draw_npz_case(data: st.DataObject, corpus: Corpus) -> Path:
    """A save whose portable checkpoint (.npz) has mutated members, its SHA-256 recomputed; or a dataset .npz."""
    if data.draw(st.booleans(), label="checkpoint or dataset"):
        checkpoint = _mutate_npz(data, corpus.files["checkpoint"])
        return corpus.case("npz", "checkpoint", checkpoint, config=corpus.config_with_checksums(checkpoint=checkpoint))
    path = corpus.root / "case-data.npz"
    path.write_bytes(_mutate_npz(data, corpus.data_npz))
    return path


def draw_case(target: str, data: st.DataObject, corpus: Corpus) -> Path:
    """Draw one mutated file of `target` and write the case; returns the path to load."""
    if target == "idx":
        return corpus.case("idx", "case.idx", draw_idx_case(data, corpus))
    if target == "config":
        return corpus.case("config", "config.json", draw_config_case(data, corpus))
    if target == "onnx":
        return corpus.case("onnx", "model.onnx", draw_onnx_case(data, corpus))
    if target == "checkpoint":
        return corpus.case("checkpoint", "checkpoint", draw_checkpoint_case(data, corpus))
    if target == "external":
        return draw_external_case(data, corpus)
    if target == "npz":
        return draw_npz_case(data, corpus)
    if target == "ort-checkpoint":
        case = draw_checkpoint_case(data, corpus)
        return corpus.case("ort-checkpoint", "checkpoint", case, config=corpus.config_without_checksum())
    raise ValueError(f"unknown target {target!r}; choose from {TARGETS + EXTRA_TARGETS}")


# --- runs ----------------------------------------------------------------------------------------------


@dataclass
class TargetReport:
    target: str
    examples: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bad(self) -> int:
        return sum(self.verdicts[v] for v in BAD_VERDICTS)

    def row(self) -> str:
        v = self.verdicts
        return (
            f"{self.target:<10} {self.examples:>8} {v[OK]:>6} {v[REFUSED]:>8} {v[UNCLEAR]:>7} {v[LEAKED]:>7} "
            f"{v[CRASHED]:>8} {v[HUNG]:>5} {v[ESCAPED]:>7} {self.seconds:>7.1f}s"
        )


def fuzz_target(
    target: str,
    corpus: Corpus,
    checker: IsolatedChecker,
    examples: int,
    seed: int | None = 0,
    failures_dir: Path | None = None,
) -> TargetReport:
    """Run `examples` cases of `target`; never stops early, records every bad verdict."""
    report = TargetReport(target)
    started = time.monotonic()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=seed is None,
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        path = draw_case(target, data, corpus)
        verdict = checker.check(target, path)
        report.examples += 1
        report.verdicts[verdict["verdict"]] += 1
        if verdict.get("error"):
            report.errors[verdict["error"]] += 1
        if verdict["verdict"] in BAD_VERDICTS:
            report.failures.append(verdict)
            if failures_dir is not None:
                keep = failures_dir / f"{target}-{report.examples:06d}"
                if path.is_dir():  # links stay links; a FIFO is not copied
                    shutil.copytree(path, keep, symlinks=True, ignore_dangling_symlinks=True, dirs_exist_ok=True)
                else:
                    keep.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, keep)
                (failures_dir / f"{keep.name}.json").write_text(json.dumps(verdict, indent=2))

    if seed is not None:
        run = hypothesis_seed(seed)(run)
    run()
    report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=500, help="cases per target")
    parser.add_argument("--target", choices=[*TARGETS, *EXTRA_TARGETS, "all"], default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds before a case counts as hung (worker start-up excluded)"
    )
    parser.add_argument("--keep-failures", type=Path, help="copy every leaked/crashed/hung case here")
    parser.add_argument("--json", action="store_true", help="print one JSON summary line at the end")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker()
        return 0
    targets = TARGETS if args.target == "all" else (args.target,)
    reports = []
    with tempfile.TemporaryDirectory(prefix="onnxtrain-fuzz-") as tmp:
        corpus = Corpus.create(Path(tmp))
        checker = IsolatedChecker(timeout=args.timeout, log=Path(tmp) / "worker.log")
        try:
            print(
                f"{'target':<10} {'examples':>8} {'ok':>6} {'refused':>8} {'unclear':>7} {'leaked':>7} "
                f"{'crashed':>8} {'hung':>5} {'escaped':>7} {'time':>8}"
            )
            for target in targets:
                report = fuzz_target(target, corpus, checker, args.examples, args.seed, args.keep_failures)
                reports.append(report)
                print(report.row(), flush=True)
        finally:
            checker.close()
    for report in reports:
        print(f"{report.target}: refusals by type {dict(report.errors.most_common())}")
        for failure in report.failures[:5]:
            print(f"  {failure['verdict'].upper()}: {failure.get('error', '')} {failure.get('message', '')[:300]}")
            if failure.get("traceback"):
                print("    " + failure["traceback"].strip().splitlines()[-3].strip())
    if args.json:
        print(json.dumps({r.target: {"examples": r.examples, **r.verdicts} for r in reports}))
    return 1 if any(r.bad for r in reports) else 0


if __name__ == "__main__":
    if "--worker" not in sys.argv:
        try:
            import onnxtrain  # noqa: F401
        except ImportError:  # run from a checkout without installing
            sys.path.insert(0, str(REPO))
    sys.exit(main())
