from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `import reference`
# The suite runs in parallel workers (tools/test.sh) that start subprocesses of their own: ONNX Runtime's threads
# spinning between operators would take the cores from the other processes (the fast loop's CPU time went from
# 164 to 117 s with spinning off, on 2 cores). Spinning changes no result; tests/test_runtime.py tests the setting.
os.environ.setdefault("ONNXTRAIN_SPINNING", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from onnxtrain import _ort_training
    from onnxtrain._runtime import available_providers
    from onnxtrain.errors import RuntimeSetupError

    missing = {}
    if "CUDAExecutionProvider" not in available_providers():
        missing["cuda"] = "no CUDA execution provider in the installed onnxruntime"
    try:
        _ort_training._training_api()
    except RuntimeSetupError:
        missing["training"] = "no onnxruntime-training build installed (the ort-training engine)"
    for item in items:
        for marker, reason in missing.items():
            if marker in item.keywords or (marker == "training" and _runs_ort_training(item)):
                item.add_marker(pytest.mark.skip(reason=reason))


def _runs_ort_training(item: pytest.Item) -> bool:
    """Whether a parametrized test runs the ort-training engine (a parameter "ort-training"), which needs a
    training build as the `training` marker does: the inference-only onnxruntime of Python 3.13+ has none."""
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "ort-training" in [str(v) for v in callspec.params.values()]


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """A small separable 3-class problem shaped like tiny images: x (120, 4, 3), y int64 (120,)."""
    rng = np.random.default_rng(7)
    centers = rng.normal(0, 3, size=(3, 12))
    y = np.repeat(np.arange(3), 40)
    x = (centers[y] + rng.normal(0, 0.5, size=(120, 12))).astype(np.float32).reshape(120, 4, 3)
    order = rng.permutation(120)
    return x[order], y[order]
