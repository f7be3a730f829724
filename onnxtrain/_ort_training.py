"""The ONNX Runtime training backend's import of `onnxruntime.training`, and artifact generation (onnxblock).

The backend's other modules: the training session over the artifacts (`_ort_training_session`, which gets the
training API through `require_training_api`) and the rewrite of the training graph (`_ort_rewrites`).

This is the only module that imports `onnxruntime.training`. Its quirks are handled here, once:
- importing the package runs `onnxruntime/training/__init__.py`, which imports torch (ORT issue #22070); we load
  only the torch-free submodules we need (see `_training_api`).
- onnxblock writes the optimizer model with the installed onnx's IR version (14 with onnx 1.23) while ORT 1.19 loads
  IR <= 10: every artifact's IR version is set explicitly.
- its gradient builder has no RNN gradient, and the LSTMGrad/GRUGrad graph it builds for LSTM and GRU fails ONNX
  Runtime's own type check ("Type 'tensor(float)' of input parameter (Y) of operator (LSTMGrad) ... is invalid"):
  `_ort_training_limits.refuse_recurrent` refuses the three ops up front, by name.
- its AveragePoolGrad kernel sizes its output by the input shape known when the graph is built, so with the
  symbolic batch it fails or kills the process (SIGFPE) in the first step: `refuse_average_pool_gradients`
  (in `_ort_training_limits`) refuses the AveragePool nodes the gradient flows through up front.
- softmax cross-entropy labels are int64 of shape [batch] (enforced by losses.py before a batch reaches ORT).
- only AdamW and SGD optimizer graphs exist: Adam is AdamW with weight_decay=0. onnxblock fixes AdamW's
  adam_mode to 1 (Hugging Face), which decays the weights after the update where Keras' AdamW decays them
  before, so AdamW runs here only with weight_decay=0 (`check_optimizer`); SGD's graph has no momentum.
- the gradient builder raises a bare RuntimeError for what it cannot build (an operator without a gradient, an
  opset newer than it knows): `_ort_training_limits.explained` turns it into an onnxtrain error that says why. Its
  refusals of an op's form (Pow's exponent, Pad's non-constant modes: "not implemented", "currently supports") end
  in "Try an older --opset" there, which would not help: `gradient_refused` names the node and points to
  engine='portable'.
- the CPU kernel of the gradient builder's `ReluGrad` is several times slower than `Mul(dY, Cast(Greater(Y, 0)))`,
  so the training graph gets the latter (`_ort_rewrites.replace_relu_gradients`; the timings are in
  docs/measurements.md).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper

from onnxtrain import emit
from onnxtrain._ort_rewrites import replace_relu_gradients
from onnxtrain._ort_training_limits import explained, gradient_refused, refuse_average_pool_gradients, refuse_recurrent
from onnxtrain.errors import (
    OnnxtrainError,
    PortableEngineOnlyError,
    RuntimeSetupError,
    UnsupportedError,
    listing,
)
from onnxtrain.functional import as_graph
from onnxtrain.graph import DEFAULT_IR_VERSION, DEFAULT_OPSET, check_opset_and_ir
from onnxtrain.layers import Input
from onnxtrain.losses import Loss
from onnxtrain.optimizers import SGD, Adam, AdamW, Optimizer
from onnxtrain.saving import created_directories

SUPPORTED_OPTIMIZERS = (Adam, AdamW, SGD)
TRAINING_MODEL = "training_model.onnx"
EVAL_MODEL = "eval_model.onnx"
OPTIMIZER_MODEL = "optimizer_model.onnx"
CHECKPOINT = "checkpoint"
LISTED_LAYERS = 5  # a refusal names at most this many layers


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


def require_training_api() -> types.SimpleNamespace:
    """ONNX Runtime's training API, imported once (`_training_api`): a check before starting work that needs it,
    and how the training session (`_ort_training_session`) gets it.

    Returns:
        The namespace of `onnxblock`, `CheckpointState`, `Module`, `Optimizer`, `OrtValueVector` and `ort`.

    Raises:
        RuntimeSetupError: onnxruntime is missing or an inference-only build; the message says what to install.
    """
    return _training_api()


@contextlib.contextmanager
def _native_stderr_captured() -> Iterator[None]:
    """Hide native stderr output while the block runs; replay what is not INFO-level logging if it fails.

    ORT's gradient builder logs every graph transformer at INFO level through a C++ logger that Python's
    `set_default_logger_severity` does not reach: ~20 lines of "GraphTransformer ... modified: 0" that would
    bury the error (which names its cause itself).
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
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if "[I:onnxruntime" not in line)[-4000:])
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
    owner = type(optimizer).__name__
    if isinstance(optimizer, Adam | AdamW) and optimizer.weight_decay > 0:
        raise UnsupportedError(
            f"The ort-training engine cannot run {owner}(weight_decay=...) as Keras does: ONNX Runtime's AdamW "
            "kernel (adam_mode=1, the only mode onnxblock builds) decays the weights after the Adam update, Keras "
            f'and compile(engine="portable") before it. Received: weight_decay={optimizer.weight_decay!r}. Use '
            'compile(engine="portable"), or weight_decay=0.'
        )
    if isinstance(optimizer, Adam | AdamW) and optimizer.amsgrad:
        raise UnsupportedError(
            f"The ort-training engine cannot run {owner}(amsgrad=True): ONNX Runtime's AdamW kernel has no "
            'AMSGrad. Use compile(engine="portable"), or amsgrad=False.'
        )
    if isinstance(optimizer, SGD) and optimizer.momentum > 0:
        raise UnsupportedError(
            "The ort-training engine cannot run SGD(momentum=...): ONNX Runtime's SGD kernel has no momentum. "
            f'Received: momentum={optimizer.momentum!r}. Use compile(engine="portable"), or momentum=0.'
        )


def refuse_nothing_to_train(layers: emit.ModelGraph, owner: str, fix: str) -> None:
    """Refuse a model with no trainable parameter up front: onnxblock fails on it with an IndexError.

    Args:
        owner: who refuses, the subject of the message ("generate_artifacts").
        fix: the sentence that says what to do instead.

    Raises:
        UnsupportedError: every parameter is frozen, or no layer has any (naming the layers).
    """
    graph = as_graph(layers)
    if graph.trainable_params_by_name():
        return
    if graph.params_by_name():
        received = "a model whose parameters are all frozen"
    else:
        names = [str(layer.name) for layer in graph.layers if not isinstance(layer, Input)]
        received = f"a model that has none (no layer has weights: {listing(names, LISTED_LAYERS)})"
    raise UnsupportedError(
        f"{owner} needs at least one trainable parameter: ONNX Runtime's training artifacts have nothing to build "
        f"without one. Received: {received}. {fix}"
    )


def _optimizer_block(api: types.SimpleNamespace, optimizer: Optimizer) -> Any:
    optim = api.onnxblock.optim
    clip = optim.ClipGradNorm(optimizer.clip_norm) if optimizer.clip_norm is not None else None
    if isinstance(optimizer, Adam | AdamW):  # weight decay 0 (check_optimizer): the same as Adam
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

    `for_cpu`: rewrite ReLU gradients for ONNX Runtime's CPU kernels (`replace_relu_gradients`). Artifacts for
    CUDA keep the gradient builder's one `ReluGrad` kernel, which no GPU here has measured against three.
    `directory` and its missing parents are created once the graphs are built; a failure writing the files removes
    those again while they are empty.

    Raises:
        UnsupportedError: no trainable parameter (`refuse_nothing_to_train`), the optimizer, an operator without
            a gradient in ONNX Runtime training, or a form of one its gradient builder refuses or gets wrong (an
            AveragePool after a trainable weight, Pow's exponent, Pad's non-constant modes), naming the node.
        InvalidArgumentError: ONNX Runtime refused the graphs, e.g. an opset newer than it knows (quoting why).
        RuntimeSetupError: no ONNX Runtime training build is installed.
    """
    check_optimizer(optimizer)
    check_opset_and_ir(opset, ir_version)
    refuse_nothing_to_train(layers, "write_artifacts", "Pass a model with a trainable layer.")
    api = _training_api()
    onnxblock = api.onnxblock
    directory = Path(directory)

    try:
        forward = emit.loss_model(layers, loss, opset, ir_version, training=True)
    except PortableEngineOnlyError as e:  # layer state (ORT training keeps it frozen: onnxruntime#17879), Dropout
        raise PortableEngineOnlyError(
            f"The ort-training engine cannot train this model: {str(e).rstrip('.')}. Compile with "
            "engine='portable', which updates layer state and draws Dropout's masks in every step."
        ) from e
    refuse_recurrent(forward)
    graph = as_graph(layers)
    trainable = tuple(graph.trainable_params_by_name())
    frozen = tuple(name for name in graph.params_by_name() if name not in trainable)
    refuse_average_pool_gradients(forward, trainable, graph.layers)

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
        refused = gradient_refused(e, forward, trainable, graph.layers)
        raise (refused or explained(e, opset, ir_version)) from e
    parameters = block.parameters()
    if for_cpu:
        replace_relu_gradients(training_model)

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


def checkpoint_bytes_from_weights(weights: Mapping[str, np.ndarray]) -> bytes:
    """An ORT training checkpoint holding `weights` (all trainable), for models saved before compile."""
    api = _training_api()
    tensors = [onnx.numpy_helper.from_array(np.asarray(v, np.float32), name) for name, v in weights.items()]
    with tempfile.TemporaryDirectory(prefix="onnxtrain-ckpt-") as tmp:
        path = Path(tmp) / CHECKPOINT
        api.onnxblock.save_checkpoint((tensors, []), path)
        return path.read_bytes()
