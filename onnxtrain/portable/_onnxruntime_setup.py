"""ONNX Runtime for the portable engine: the import, with what to install when it is missing, and the check that
the installed build has the execution provider the engine's device needs."""

from __future__ import annotations

from typing import Any

from onnxtrain._runtime import Device
from onnxtrain.errors import RuntimeSetupError


def import_onnxruntime() -> Any:
    """The onnxruntime module (any build: CPU, GPU or training).

    Raises:
        RuntimeSetupError: onnxruntime is not installed.
    """
    try:
        import onnxruntime
    except ImportError as e:
        raise RuntimeSetupError(
            "The portable engine needs ONNX Runtime: `pip install onnxruntime` (CPU) or `onnxruntime-gpu` (CUDA); "
            "a training build (onnxtrain[cpu] / [cuda]) works too."
        ) from e
    return onnxruntime


def check_provider(ort: Any, device: Device) -> None:
    """Raises RuntimeSetupError where `device` is CUDA and `ort` has no CUDA execution provider."""
    available = ort.get_available_providers()
    if device.kind == "cuda" and "CUDAExecutionProvider" not in available:
        raise RuntimeSetupError(
            f"device={str(device)!r} needs ONNX Runtime's CUDA execution provider; the installed build "
            "offers "
            f"{available}. Install onnxruntime-gpu (alone: uninstall other onnxruntime packages first)."
        )
