"""Which ONNX Runtime is installed, and which execution provider a device string maps to.

Every onnxruntime flavour (onnxruntime, onnxruntime-gpu, onnxruntime-training, onnxruntime-training-cpu, ...)
installs the same `onnxruntime` module; two of them in one environment overwrite each other's files and fail in
confusing ways, so `import onnxtrain` checks for that once and says which to remove.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onnxtrain.errors import InvalidArgumentError, RuntimeSetupError

if TYPE_CHECKING:
    import onnx

# Distributions that ship the top-level `onnxruntime` module. The extras in pyproject.toml install one of them.
ORT_FLAVOURS: dict[str, str] = {
    "onnxruntime-training-cpu": "cpu",
    "onnxruntime-training": "cuda",
    "onnxruntime": "infer",
    "onnxruntime-gpu": "infer-gpu",
    "onnxruntime-directml": "",
    "onnxruntime-openvino": "",
    "onnxruntime-qnn": "",
    "onnxruntime-rocm": "",
    "onnxruntime-cann": "",
    "onnxruntime-silicon": "",
}
TRAINING_FLAVOURS = frozenset({"onnxruntime-training-cpu", "onnxruntime-training"})


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_flavours() -> list[str]:
    """Names of the installed distributions that provide the `onnxruntime` module, sorted."""
    found = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and _normalize(name) in ORT_FLAVOURS:
            found.add(_normalize(name))
    return sorted(found)


def check_single_flavour(flavours: list[str] | None = None) -> str | None:
    """Return the one installed onnxruntime flavour (or None), raising if there are several.

    Raises:
        RuntimeSetupError: two or more flavours are installed in this environment.
    """
    flavours = installed_flavours() if flavours is None else flavours
    if len(flavours) > 1:
        keep = next((f for f in flavours if f in TRAINING_FLAVOURS), flavours[0])
        others = " ".join(f for f in flavours if f != keep)
        raise RuntimeSetupError(
            f"Several ONNX Runtime packages are installed together: {', '.join(flavours)}. They all install the "
            f"same `onnxruntime` module and break each other; keep exactly one. To keep {keep}: "
            f"`pip uninstall -y {' '.join(flavours)} && pip install {keep}` (or drop {others}). "
            "Extras: [cpu] trains on CPU, [cuda] trains on GPU, [infer]/[infer-gpu] run exported models only."
        )
    return flavours[0] if flavours else None


@dataclass(frozen=True)
class Device:
    """A parsed device string: `kind` is "cpu" or "cuda", `index` the CUDA device ordinal."""

    kind: str
    index: int = 0

    @property
    def provider(self) -> str:
        return "CUDAExecutionProvider" if self.kind == "cuda" else "CPUExecutionProvider"

    @property
    def ort_device(self) -> str:
        """The device string ORT's training API takes ("cpu" or "cuda:N")."""
        return f"cuda:{self.index}" if self.kind == "cuda" else "cpu"

    def __str__(self) -> str:
        return self.ort_device


def check_not_empty(x: Any) -> None:
    """Refuse an empty batch before a session runs it: ONNX Runtime 1.19 dies of SIGFPE (an integer division by
    zero) on one, in training and plain sessions alike. `fit`, `evaluate` and `predict` refuse empty data earlier;
    this guards the engines' own steps.
    """
    if len(x) == 0:
        raise InvalidArgumentError(
            f"A step expects at least one example. Received: x.shape={getattr(x, 'shape', None)}"
        )


def available_providers() -> list[str]:
    """Execution providers of the installed onnxruntime ([] when none is installed)."""
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


def check_runtime_loads(opset: int, ir_version: int) -> None:
    """Raise when the installed onnxruntime cannot load models of this opset and IR version (onnx knows newer ones
    than a runtime does: onnx 1.23 writes IR 14 and opset 25, ONNX Runtime 1.19 loads IR 10 and opset 21).

    Raises:
        InvalidArgumentError: naming both values and ONNX Runtime's reason.
    """
    reason = _runtime_refuses(opset, ir_version)
    if reason:
        raise InvalidArgumentError(
            f"The installed ONNX Runtime cannot load a model of opset {opset} and IR version {ir_version} ({reason}). "
            "Choose an older opset / ir_version (the defaults, 17 and 8, load everywhere). "
            f"Received: opset={opset}, ir_version={ir_version}"
        )


def default_opset(model: onnx.ModelProto) -> int:
    """The model's opset of the default (ai.onnx) domain; 0 when it imports none."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def runtime_refusal(opset: int, ir_version: int) -> str:
    """Why the installed onnxruntime cannot load a model of this opset and IR version ("": it can, or none is
    installed), e.g. "onnxruntime 1.19.2: Unsupported model IR version: 11, max supported IR version: 10"."""
    return _runtime_refuses(opset, ir_version)


@cache
def _runtime_refuses(opset: int, ir_version: int) -> str:
    """ONNX Runtime's reason for refusing a one-node model of this opset and IR version ("": it loads it)."""
    try:
        import onnxruntime
    except ImportError:
        return ""  # nothing to run it with here; the engine says so when it starts
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as e:
        known = re.search(
            r"Unsupported model IR version: \d+, max supported IR version: \d+"
            r"|Current official support for domain \S+ is till opset \d+",
            str(e),
        )
        return f"onnxruntime {onnxruntime.__version__}: {known[0].strip() if known else runtime_tail(str(e), 200)}"
    return ""


def cuda_extra_hint() -> str:
    return (
        "The CUDA execution provider comes with `pip install onnxtrain[cuda]` (onnxruntime-training, Python <= 3.11) "
        "for either engine, or `onnxtrain[infer-gpu]` (onnxruntime-gpu, any Python) for inference and the portable "
        "engine; uninstall the current flavour first."
    )


_PRELOADED: set[Any] = set()  # the onnxruntime modules whose preload_dlls() has run (once per process)


def optimized_by_ort(model: onnx.ModelProto, disabled_optimizers: Sequence[str] = ()) -> onnx.ModelProto:
    """`model` as ONNX Runtime's basic graph optimizations (constant folding, redundant node elimination) leave it,
    on the CPU, one thread; ONNX Runtime's own exception when it refuses the model."""
    import onnx
    import onnxruntime as ort  # the inference API only

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory() as folder:
        options.optimized_model_filepath = str(Path(folder) / "optimized.onnx")
        ort.InferenceSession(
            model.SerializeToString(),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(disabled_optimizers),
        )
        return onnx.load(options.optimized_model_filepath)


# ONNX Runtime's PadFusion folds a zero Pad into the next MaxPool's or AveragePool's own pads, where MaxPool pads
# with -inf and AveragePool (count_include_pad=0) leaves pads out of the mean: Conv -> ZeroPadding2D/3D ->
# MaxPooling(padding="same") computed other numbers (microsoft/onnxruntime#18136, #21556; the AveragePool half fixed
# after 1.19 by #23190). Without it a model's Pad nodes run as they are; onnxtrain emits none for a padded Conv.
DISABLED_OPTIMIZERS = ["Pad_Fusion"]  # its registered name (the class is PadFusion)


def session_options(ort: Any, threads: int | None) -> Any:
    """The SessionOptions of the sessions that train, evaluate and predict for a compiled model.

    Subnormal floats are flushed to zero inside ONNX Runtime (late epochs are 1.5-2x slower without it; see
    _float_env.py for the caller's side). `threads` intra-op threads with one inter-op thread, or ONNX Runtime's
    defaults for None. Intra-op threads keep ORT's default spinning between operators: with one thread per core
    they take no core from the Python thread, and on an otherwise idle 2-core machine steps were 7-11% faster than
    with spinning off (tools/bench.py); on a machine busy with other work, spinning costs more, and
    ONNXTRAIN_SPINNING=0 turns it off (for several training processes or test workers on one machine).
    `InferenceModel` keeps plain options: its results match other runtimes', subnormals included. ONNX Runtime
    logs errors only: its warnings (e.g. an imported graph's unused initializer) are not the user's to act on.

    Raises:
        InvalidArgumentError: ONNXTRAIN_SPINNING is neither "0" nor "1".
    """
    spinning = os.environ.get("ONNXTRAIN_SPINNING", "1")
    if spinning not in ("0", "1"):
        raise InvalidArgumentError(f'ONNXTRAIN_SPINNING expects "0" or "1". Received: {spinning!r}')
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    if spinning == "0":
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def create_session(ort: Any, model: bytes, options: Any, device: Device) -> Any:
    """An `ort.InferenceSession` of `model` on `device`, that runs there or not at all.

    ONNX Runtime quietly builds a CPU-only session when its CUDA provider's libraries (CUDA, cuDNN) do not load,
    and quietly moves a session to the CPU when a CUDA run fails. Asked for CUDA, this preloads the libraries that
    pip's nvidia packages installed (`onnxruntime.preload_dlls`, ORT >= 1.21; once a process) and tries again; then it
    raises, and the sessions it returns raise their run errors instead of moving.

    Raises:
        RuntimeSetupError: the CUDA provider did not start.
    """
    if device.kind != "cuda":
        return ort.InferenceSession(
            model, options, providers=["CPUExecutionProvider"], disabled_optimizers=DISABLED_OPTIMIZERS
        )
    # TF32 off: full float32 matrix products, as on the CPU and PyTorch's default (TF32 differs from the CPU by
    # ~1e-3 relative; this MLP's steps are launch-bound, so it buys nothing here).
    cuda = {"device_id": str(device.index), "use_tf32": "0"}
    providers = [("CUDAExecutionProvider", cuda), "CPUExecutionProvider"]
    session = _cuda_session(ort, model, options, providers)
    preload = getattr(ort, "preload_dlls", None)
    if not _on_cuda(session) and preload is not None and ort not in _PRELOADED:
        _PRELOADED.add(ort)
        preload()
        session = _cuda_session(ort, model, options, providers)
    if isinstance(session, Exception):
        try:  # a model that does not load on the CPU either is the caller's bad model, not a CUDA problem
            ort.InferenceSession(
                model, options, providers=["CPUExecutionProvider"], disabled_optimizers=DISABLED_OPTIMIZERS
            )
        except Exception:
            raise session from None
        raise RuntimeSetupError(
            f"device={str(device)!r}: ONNX Runtime {ort.__version__} could not start its CUDA provider "
            f"({type(session).__name__}: {runtime_tail(str(session))}). {_cuda_causes(ort, device)}"
        ) from session
    if not _on_cuda(session):
        raise RuntimeSetupError(
            f"device={str(device)!r}: ONNX Runtime {ort.__version__} has a CUDA provider but could not start it "
            f"(session providers: {session.get_providers()}; ONNX Runtime's log above says why). "
            + _cuda_causes(ort, device)
        )
    session.disable_fallback()
    return session


def _cuda_session(ort: Any, model: bytes, options: Any, providers: list[Any]) -> Any:
    """The session, or the exception ONNX Runtime raised building it. enable_fallback=0 (ORT >= 1.2x; older ones
    ignore it) makes a provider that fails to start raise, instead of printing a banner and building a CPU session.
    """
    try:
        return ort.InferenceSession(
            model, options, providers=providers, enable_fallback=0, disabled_optimizers=DISABLED_OPTIMIZERS
        )
    except Exception as error:  # ORT raises Fail, RuntimeException, ... from its C++ layer
        return error


def _on_cuda(session: Any) -> bool:
    return not isinstance(session, Exception) and "CUDAExecutionProvider" in session.get_providers()


def runtime_tail(message: str, limit: int = 300) -> str:
    """The end of an ONNX Runtime error, where it says what failed (it starts with a long source location)."""
    message = " ".join(message.split())
    return message if len(message) <= limit else "..." + message[-limit:]


def _cuda_causes(ort: Any, device: Device) -> str:
    wants = f"CUDA {getattr(ort, 'cuda_version', None) or '12 or 13'} and cuDNN 9"
    return (
        f"Either there is no GPU {device.index} (`nvidia-smi -L` lists them, numbered from 0), or the provider's "
        f"libraries did not load: this build needs {wants}, which `pip install onnxruntime-gpu[cuda,cudnn]` "
        "installs as Python packages (or put the system's on LD_LIBRARY_PATH); check with "
        "`python -c 'import onnxruntime; onnxruntime.preload_dlls(); onnxruntime.print_debug_info()'`."
    )


_DEVICE_PATTERN = re.compile(r"^(cpu|cuda|auto)(?::(\d+))?$")


def resolve_device(device: str, providers: list[str] | None = None) -> Device:
    """Map "cpu", "cuda", "cuda:N" or "auto" to a Device the installed runtime can run on.

    Raises:
        InvalidArgumentError: the string is not one of the accepted forms.
        RuntimeSetupError: CUDA was asked for and the installed onnxruntime has no CUDA provider.
    """
    if not isinstance(device, str):
        raise InvalidArgumentError(
            f'device expects "cpu", "cuda", "cuda:N" or "auto". Received: device={device!r} ({type(device).__name__})'
        )
    match = _DEVICE_PATTERN.match(device.strip().lower())
    if match is None or (match.group(1) != "cuda" and match.group(2) is not None):
        raise InvalidArgumentError(f'device expects "cpu", "cuda", "cuda:N" or "auto". Received: device={device!r}')
    kind, index = match.group(1), int(match.group(2) or 0)
    providers = available_providers() if providers is None else providers
    has_cuda = "CUDAExecutionProvider" in providers
    if kind == "auto":
        return Device("cuda", 0) if has_cuda else Device("cpu")
    if kind == "cuda" and not has_cuda:
        raise RuntimeSetupError(
            f"device={device!r} needs ONNX Runtime's CUDA execution provider, but the installed build offers only "
            f"{providers or 'no providers (onnxruntime is not installed)'}. {cuda_extra_hint()}"
        )
    return Device(kind, index)
