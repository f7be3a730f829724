"""The ONNX Runtime training backend: artifact generation (onnxblock) and the training session (training API).

This is the only module that imports `onnxruntime.training`. Its quirks are handled here, once:
- importing the package runs `onnxruntime/training/__init__.py`, which imports torch (ORT issue #22070); we load
  only the torch-free submodules we need (see `_training_api`).
- onnxblock writes the optimizer model with the installed onnx's IR version (14 with onnx 1.23) while ORT 1.19 loads
  IR <= 10: every artifact's IR version is set explicitly.
- softmax cross-entropy labels are int64 of shape [batch] (enforced by losses.py before a batch reaches ORT).
- only AdamW and SGD optimizer graphs exist: Adam is AdamW with weight_decay=0.
- the gradient builder raises a bare RuntimeError for what it cannot build (an operator without a gradient, an
  opset newer than it knows): `_explained` turns it into an onnxtrain error that says why.
- the CPU kernel of the gradient builder's `ReluGrad` is several times slower than `Mul(dY, Cast(Greater(Y, 0)))`,
  so the training graph gets the latter (`_replace_relu_gradients`; the timings are in docs/measurements.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import math
import os
import re
import shutil
import sys
import tempfile
import types
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper

from onnxtrain import emit
from onnxtrain._float_env import FlushToZero
from onnxtrain._runtime import check_not_empty, session_options
from onnxtrain.distributed._communicator import Communicator, broadcast_bytes
from onnxtrain.distributed._reduce import GradientReduction
from onnxtrain.engine import Batch, EngineRequest
from onnxtrain.errors import InvalidArgumentError, OnnxtrainError, RuntimeSetupError, UnsupportedError
from onnxtrain.functional import as_graph
from onnxtrain.graph import DEFAULT_IR_VERSION, DEFAULT_OPSET, check_opset_and_ir
from onnxtrain.losses import Loss
from onnxtrain.optimizers import SGD, Adam, Optimizer
from onnxtrain.saving import created_directories

SUPPORTED_OPTIMIZERS = (Adam, SGD)
TRAINING_MODEL = "training_model.onnx"
EVAL_MODEL = "eval_model.onnx"
OPTIMIZER_MODEL = "optimizer_model.onnx"
CHECKPOINT = "checkpoint"


@cache
def _training_api() -> types.SimpleNamespace:
    """Import onnxblock and the training API without running `onnxruntime.training.__init__`.

    That `__init__` imports `optim`/`amp`, which import torch (https://github.com/microsoft/onnxruntime/issues/22070),
    although `artifacts`, `onnxblock` and `api` need none of it. Registering a bare package object with the real
    search path lets Python import those submodules directly. If torch is installed the workaround changes nothing.
    """
    try:
        import onnxruntime
    except ImportError as e:
        raise RuntimeSetupError(
            "Training needs an ONNX Runtime training build: `pip install onnxtrain[cpu]` (onnxruntime-training-cpu) "
            "or `onnxtrain[cuda]` (onnxruntime-training)."
        ) from e
    if "onnxruntime.training" not in sys.modules:
        spec = importlib.util.find_spec("onnxruntime.training")
        if spec is None or spec.submodule_search_locations is None:
            raise RuntimeSetupError(
                f"The installed onnxruntime {onnxruntime.__version__} is an inference-only build: the ort-training "
                'engine cannot run on it. engine="portable" trains with it; for ort-training, replace it with '
                "`pip install onnxtrain[cpu]` (or [cuda]). Exported models run with either."
            )
        package = types.ModuleType("onnxruntime.training")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["onnxruntime.training"] = package
    from onnxruntime.training import onnxblock

    onnxruntime.set_default_logger_severity(3)  # the training build logs every graph transformer at INFO
    from onnxruntime.capi.onnxruntime_pybind11_state import OrtValueVector
    from onnxruntime.training.api import CheckpointState, Module
    from onnxruntime.training.api import Optimizer as OrtOptimizer

    return types.SimpleNamespace(
        OrtValueVector=OrtValueVector,
        onnxblock=onnxblock,
        CheckpointState=CheckpointState,
        Module=Module,
        Optimizer=OrtOptimizer,
        ort=onnxruntime,
    )


def training_available() -> bool:
    """Whether an ONNX Runtime training build is installed (imports nothing heavy when it is not)."""
    try:
        _training_api()
    except RuntimeSetupError:
        return False
    return True


def require_training_api() -> None:
    """Check that ONNX Runtime's training API imports, before starting work that needs it.

    Raises:
        RuntimeSetupError: onnxruntime is missing or an inference-only build; the message says what to install.
    """
    _training_api()


@contextlib.contextmanager
def _native_stderr_captured() -> Iterator[None]:
    """Hide native stderr output while the block runs; replay it if the block fails.

    ORT's gradient builder logs every graph transformer at INFO level through a C++ logger that Python's
    `set_default_logger_severity` does not reach.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace")[-4000:])
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@dataclass(frozen=True)
class TrainingArtifacts:
    """Paths of the four files ONNX Runtime's training API (Python, C, C++, C#, Java) needs.

    Training model inputs: `input` (float32 [batch, ...]), `labels` (int64 [batch] for softmax cross-entropy,
    float32 like the output otherwise), then the parameters. Outputs: `loss`, `logits`, then the gradients.
    """

    directory: Path
    training_model: Path
    eval_model: Path
    optimizer_model: Path
    checkpoint: Path
    trainable: tuple[str, ...]
    frozen: tuple[str, ...]


def check_optimizer(optimizer: Optimizer) -> None:
    if not isinstance(optimizer, SUPPORTED_OPTIMIZERS):
        raise UnsupportedError(
            f"The ort-training engine cannot express optimizer {type(optimizer).__name__}: ONNX Runtime training "
            f"only has AdamW and SGD update graphs. Supported: {[c.__name__ for c in SUPPORTED_OPTIMIZERS]}; "
            'compile(engine="portable") runs every optimizer.'
        )
    if getattr(optimizer, "clip_value", None) is not None:
        raise UnsupportedError(
            "The ort-training engine cannot clip gradients by value (onnxblock only has ClipGradNorm). "
            f'Received: clip_value={optimizer.clip_value!r}. Use clip_norm=..., or compile(engine="portable").'
        )


def _optimizer_block(api: types.SimpleNamespace, optimizer: Optimizer) -> Any:
    optim = api.onnxblock.optim
    clip = optim.ClipGradNorm(optimizer.clip_norm) if optimizer.clip_norm is not None else None
    if isinstance(optimizer, Adam):
        return optim.AdamW(
            bias_correction=True,
            betas=(optimizer.beta1, optimizer.beta2),
            eps=optimizer.epsilon,
            weight_decay=0.0,
            clip_grad=clip,
        )
    return optim.SGD(clip_grad=clip)


def write_artifacts(
    layers: emit.ModelGraph,
    loss: Loss,
    optimizer: Optimizer,
    directory: str | Path,
    opset: int = DEFAULT_OPSET,
    ir_version: int = DEFAULT_IR_VERSION,
    for_cpu: bool = True,
) -> TrainingArtifacts:
    """Emit forward+loss, let onnxblock build the gradient and optimizer graphs, and write the four artifacts.

    `for_cpu`: rewrite ReLU gradients for ONNX Runtime's CPU kernels (`_replace_relu_gradients`). Artifacts for
    CUDA keep the gradient builder's one `ReluGrad` kernel, which no GPU here has measured against three.
    `directory` and its missing parents are created once the graphs are built; a failure writing the files removes
    those again while they are empty.

    Raises:
        UnsupportedError: the optimizer, or an operator without a gradient in ONNX Runtime training.
        InvalidArgumentError: ONNX Runtime refused the graphs, e.g. an opset newer than it knows (quoting why).
        RuntimeSetupError: no ONNX Runtime training build is installed.
    """
    check_optimizer(optimizer)
    check_opset_and_ir(opset, ir_version)
    api = _training_api()
    onnxblock = api.onnxblock
    directory = Path(directory)

    try:
        forward = emit.loss_model(layers, loss, opset, ir_version, training=True)
    except UnsupportedError as e:  # layer state (ONNX Runtime training keeps it frozen: onnxruntime#17879), Dropout
        raise UnsupportedError(
            f"The ort-training engine cannot train this model: {e}. Compile with engine='portable', which updates "
            "layer state and draws Dropout's masks in every step."
        ) from e
    graph = as_graph(layers)
    trainable = tuple(graph.trainable_params_by_name())
    frozen = tuple(name for name in graph.params_by_name() if name not in trainable)

    class ForwardWithLoss(onnxblock.TrainingBlock):  # type: ignore[name-defined]
        # The loss is already in the graph (emit.loss_model); this block only marks where backprop starts.
        def build(self, *output_names: str) -> tuple[str, ...]:
            return output_names

    block = ForwardWithLoss()
    for name in trainable:
        block.requires_grad(name, True)
    for name in frozen:
        block.requires_grad(name, False)
    try:
        with onnxblock.base(forward), _native_stderr_captured():
            block(emit.LOSS_NAME, emit.LOGITS_NAME)
            training_model, eval_model = block.to_model_proto()
    except RuntimeError as e:
        if isinstance(e, OnnxtrainError):
            raise
        raise _explained(e, opset, ir_version) from e
    parameters = block.parameters()
    if for_cpu:
        _replace_relu_gradients(training_model)

    with onnxblock.empty_base(opset_version=opset):
        optimizer_graph = _optimizer_block(api, optimizer)
        optimizer_graph(parameters)
        optimizer_model = optimizer_graph.to_model_proto()

    paths = {}
    with created_directories(directory):
        for file_name, model in [
            (TRAINING_MODEL, training_model),
            (EVAL_MODEL, eval_model),
            (OPTIMIZER_MODEL, optimizer_model),
        ]:
            model.ir_version = ir_version  # see the module docstring: ORT 1.19 loads IR <= 10
            onnx.save(model, directory / file_name)
            paths[file_name] = directory / file_name
        onnxblock.save_checkpoint(parameters, directory / CHECKPOINT)
    return TrainingArtifacts(
        directory=directory,
        training_model=paths[TRAINING_MODEL],
        eval_model=paths[EVAL_MODEL],
        optimizer_model=paths[OPTIMIZER_MODEL],
        checkpoint=directory / CHECKPOINT,
        trainable=trainable,
        frozen=frozen,
    )


def _explained(error: RuntimeError, opset: int, ir_version: int) -> OnnxtrainError:
    """ONNX Runtime's RuntimeError from building the training graphs, as the onnxtrain error it stands for."""
    missing = re.search(r"gradient builder has not been registered: (\w+) for node (\S+)", str(error))
    if missing:
        return UnsupportedError(
            f"ONNX Runtime training has no gradient for the {missing.group(1)} operator (node "
            f"{missing.group(2)}), so the ort-training engine cannot train this model."
        )
    # Others are ORT's refusals of the model, e.g. opset 22 on ORT 1.19 ("Opset 22 is under development"). The
    # reason comes last in ORT's text, after the C++ source location.
    cause = " ".join(str(error).split()).rstrip(".")
    return InvalidArgumentError(
        f"ONNX Runtime could not build training artifacts with opset {opset} and IR version {ir_version}: "
        f"{'…' + cause[-300:] if len(cause) > 300 else cause}. Try an older --opset or opset=... (the default is "
        f"{DEFAULT_OPSET}), or a lower IR version."
    )


def _replace_relu_gradients(model: onnx.ModelProto) -> None:
    """Rewrite each `ReluGrad(dY, Y)` (com.microsoft) of a training graph as `Mul(dY, Cast(Greater(Y, 0)))`.

    The same values: dY where Y > 0, else zero (-0.0 for a negative dY, which sums as 0.0). ONNX Runtime 1.19's
    kernel branches on the mask, which shuffled batches make unpredictable: rewritten, the ort-training step is
    faster, with bit-identical weights (docs/measurements.md; `tools/profile_step.py --engine ort-training
    [--keep-relugrad]`). The portable engine's ReLU rule is the same.
    """
    graph = model.graph
    if not any(node.op_type == "ReluGrad" for node in graph.node):
        return
    zero = "onnxtrain.relu_grad.zero"
    graph.initializer.append(onnx.numpy_helper.from_array(np.zeros((), np.float32), zero))
    nodes = []
    for node in graph.node:
        if node.op_type != "ReluGrad" or node.domain != "com.microsoft":
            nodes.append(node)
            continue
        grad_y, y = node.input
        base = f"{node.output[0]}.onnxtrain"  # output names are unique (SSA); node names need not be
        nodes += [
            onnx.helper.make_node("Greater", [y, zero], [f"{base}.positive"], name=f"{base}.greater"),
            onnx.helper.make_node(
                "Cast", [f"{base}.positive"], [f"{base}.mask"], name=f"{base}.cast", to=onnx.TensorProto.FLOAT
            ),
            onnx.helper.make_node("Mul", [grad_y, f"{base}.mask"], [node.output[0]], name=f"{base}.mul"),
        ]
    del graph.node[:]
    graph.node.extend(nodes)


def default_threads() -> int:
    """One intra-op thread per core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def checkpoint_bytes_from_weights(weights: Mapping[str, np.ndarray]) -> bytes:
    """An ORT training checkpoint holding `weights` (all trainable), for models saved before compile."""
    api = _training_api()
    tensors = [onnx.numpy_helper.from_array(np.asarray(v, np.float32), name) for name, v in weights.items()]
    with tempfile.TemporaryDirectory(prefix="onnxtrain-ckpt-") as tmp:
        path = Path(tmp) / CHECKPOINT
        api.onnxblock.save_checkpoint((tensors, []), path)
        return path.read_bytes()


def create_engine(request: EngineRequest) -> OrtTrainingEngine:
    """The ort-training engine for a compiled model (`onnxtrain.engines.ENGINES["ort-training"]`): writes the four
    artifacts to `request.artifacts_dir`, or to a temporary folder that closing the engine removes, and opens a
    training session over them, from `request.resume` when given (weights, optimizer state and step).

    Raises:
        UnsupportedError / InvalidArgumentError / RuntimeSetupError: see `write_artifacts`. A failure leaves no
            temporary folder, and no folder of `request.artifacts_dir` that it created (`created_directories`).
    """
    check_optimizer(request.optimizer)
    optimizer = request.optimizer
    if request.communicator is not None:
        # Distributed, GradientReduction clips the all-reduced gradients: ORT's ClipGradNorm gave two processes
        # different bits (1 ulp, from the same inputs) within a few steps, and the copies must stay equal.
        optimizer = dataclasses.replace(optimizer, clip_norm=None)
    temporary = None if request.artifacts_dir is not None else Path(tempfile.mkdtemp(prefix="onnxtrain-artifacts-"))
    directory = request.artifacts_dir if request.artifacts_dir is not None else temporary
    assert directory is not None  # one of the two is always set
    try:
        artifacts = write_artifacts(
            request.layers,
            request.loss,
            optimizer,
            directory,
            request.opset,
            request.ir_version,
            for_cpu=request.device.kind == "cpu",
        )
        resume = None
        if request.communicator is not None:  # every process starts from process 0's checkpoint
            start = request.resume if request.resume is not None else artifacts.checkpoint.read_bytes()
            resume_bytes: bytes | None = broadcast_bytes(request.communicator, start)
        else:
            resume_bytes = request.resume
        if resume_bytes is not None:
            resume = artifacts.directory / "resume_checkpoint"
            resume.write_bytes(resume_bytes)
        return OrtTrainingEngine(
            artifacts,
            request.optimizer,
            request.device.ort_device,
            request.threads,
            checkpoint=resume,
            owns_directory=temporary is not None,
            communicator=request.communicator,
        )
    except BaseException:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        raise


class OrtTrainingEngine:
    """One training session over a set of artifacts: train/eval steps, weights, learning rate, checkpoints.

    Args:
        artifacts: what `write_artifacts` wrote.
        optimizer: its learning rate is applied to ORT's optimizer.
        device: "cpu" or "cuda:N".
        threads: intra-op threads for ORT (None: ORT's default).
        checkpoint: a checkpoint to start from instead of the artifacts' one (resuming with optimizer state).
        owns_directory: remove the artifacts' folder (a temporary one) when the engine is closed, or, if it never
            is, when it is collected or at exit.
        communicator: the world of a data-parallel fit (None: alone). Each step then all-reduces the gradients
            between `train_step` and `optimizer_step`, and clips them (the artifacts' optimizer then must not).
    """

    def __init__(
        self,
        artifacts: TrainingArtifacts,
        optimizer: Optimizer,
        device: str = "cpu",
        threads: int | None = None,
        checkpoint: str | Path | None = None,
        owns_directory: bool = False,
        communicator: Communicator | None = None,
    ):
        api = _training_api()
        options = session_options(api.ort, threads or default_threads())
        self._api = api
        self._flush = FlushToZero()
        self._state = api.CheckpointState.load_checkpoint(str(checkpoint or artifacts.checkpoint))
        with self._flush.creating():
            try:
                self._module = api.Module(
                    str(artifacts.training_model),
                    self._state,
                    str(artifacts.eval_model),
                    device=device,
                    session_options=options,
                )
            except Exception as e:  # ORT's own exception types: any failure to open the gradient graph
                pattern = r"Could not find an implementation for (\w+)\(\d+\) node with name '([^']*)'"
                missing = re.search(pattern, str(e))
                if missing is None:
                    raise
                raise UnsupportedError(
                    f"ONNX Runtime training has no {device} kernel for {missing.group(1)} (node "
                    f"{missing.group(2)!r}), which the gradient of this model needs, so the ort-training engine "
                    "cannot train it. Compile with engine='portable'."
                ) from e
            self._optimizer = api.Optimizer(str(artifacts.optimizer_model), self._module)
        self._optimizer.set_learning_rate(float(optimizer.learning_rate))
        self.artifacts = artifacts
        self._reduction = None
        if communicator is not None:
            state = self._state._state  # the pybind CheckpointState: its parameters' gradients are OrtValues
            self._trainable = [
                state.get_parameter(name) for name in state.parameter_names() if state.get_parameter(name).requires_grad
            ]
            sizes = [int(np.prod(p.data.shape())) for p in self._trainable]
            self._offsets = np.cumsum([0, *sizes]).tolist()
            self._reduction = GradientReduction.clipping_as(optimizer, communicator, self._offsets[-1])
        self._cleanup = weakref.finalize(self, shutil.rmtree, artifacts.directory, True) if owns_directory else None

    def train_step(self, x: Batch, labels: np.ndarray) -> tuple[float, np.ndarray]:
        """Forward, backward and, when the loss is finite, one optimizer update.

        Returns (loss, outputs) of the batch before the update. A non-finite loss skips the update, so the
        weights stay those of the last good step; the caller decides what to do about it.
        """
        if self._reduction is not None:
            return self._reduced_train_step(x, labels, self._reduction)
        xs = [x] if isinstance(x, np.ndarray) else list(x)  # the graph's inputs: one per model input, then labels
        check_not_empty(xs[0])
        # The pybind objects behind Module/Optimizer, called directly: Module.__call__ converts every fetch and
        # rebuilds its argument list each step, about a tenth of a step for this model.
        fetches = self._api.OrtValueVector()
        with self._flush.active():
            self._module._model.train_step([*xs, labels], fetches)
            loss = float(fetches[0].numpy())
            if math.isfinite(loss):
                self._optimizer._optimizer.optimizer_step()
            self._module._model.lazy_reset_grad()
        return loss, fetches[1].numpy()

    def _reduced_train_step(
        self, x: Batch, labels: np.ndarray, reduction: GradientReduction
    ) -> tuple[float, np.ndarray]:
        """A data-parallel step: this process's gradients, copied into the reduction's buffer, all-reduced, copied
        back, then `optimizer_step` when the mean loss of all processes is finite."""
        xs = [x] if isinstance(x, np.ndarray) else list(x)
        examples = len(xs[0])
        fetches = self._api.OrtValueVector()
        with self._flush.active():
            loss, logits = 0.0, None
            if examples:  # an uneven last batch may leave this process no rows: it only joins the all-reduce
                self._module._model.train_step([*xs, labels], fetches)
                loss, logits = float(fetches[0].numpy()), fetches[1].numpy()
                for parameter, start, stop in zip(self._trainable, self._offsets[:-1], self._offsets[1:], strict=True):
                    reduction.gradients[start:stop] = parameter.grad.numpy().reshape(-1)
            loss = reduction.reduce(loss, examples)
            if math.isfinite(loss):
                for parameter, start, stop in zip(self._trainable, self._offsets[:-1], self._offsets[1:], strict=True):
                    gradient = parameter.grad
                    gradient.update_inplace(reduction.gradients[start:stop].reshape(gradient.shape()))
                self._optimizer._optimizer.optimizer_step()
            self._module._model.lazy_reset_grad()
        if logits is None:
            logits = np.empty((0, *self._output_shape()), np.float32)
        return loss, logits

    def _output_shape(self) -> tuple[int, ...]:
        """The per-example output shape, read off the eval model (for an empty batch's outputs)."""
        model = onnx.load(str(self.artifacts.eval_model), load_external_data=False)
        dims = model.graph.output[1].type.tensor_type.shape.dim[1:]
        return tuple(int(d.dim_value) for d in dims)

    def eval_step(self, x: Batch, labels: np.ndarray) -> tuple[float, np.ndarray]:
        xs = [x] if isinstance(x, np.ndarray) else list(x)
        check_not_empty(xs[0])
        fetches = self._api.OrtValueVector()
        with self._flush.active():
            self._module._model.eval_step([*xs, labels], fetches)
        return float(fetches[0].numpy()), fetches[1].numpy()

    def reset_gradients(self) -> None:
        self._module.lazy_reset_grad()

    @property
    def learning_rate(self) -> float:
        return float(self._optimizer.get_learning_rate())

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._optimizer.set_learning_rate(float(value))

    def get_weights(self) -> dict[str, np.ndarray]:
        parameters = self._state.parameters
        return {name: np.array(parameter.data, dtype=np.float32) for name, parameter in parameters}

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        parameters = self._state.parameters
        for name, value in weights.items():
            parameters[name] = np.ascontiguousarray(value, dtype=np.float32)

    def save_checkpoint(self, path: str | Path, include_optimizer_state: bool = False) -> None:
        self._api.CheckpointState.save_checkpoint(self._state, str(path), include_optimizer_state)

    def checkpoint_bytes(self, include_optimizer_state: bool = False) -> bytes:
        with tempfile.TemporaryDirectory(prefix="onnxtrain-ckpt-") as tmp:
            path = Path(tmp) / CHECKPOINT
            self.save_checkpoint(path, include_optimizer_state)
            return path.read_bytes()

    def close(self) -> None:
        # Dropping the references releases the native sessions.
        self._optimizer = self._module = self._state = None
        if self._cleanup is not None:
            self._cleanup()  # removes the temporary artifacts folder, once
