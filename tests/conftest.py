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


SLOW_LIST = Path(__file__).parent / "slow_tests.txt"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-slow-list",
        action="store_true",
        help="don't mark the tests listed in tests/slow_tests.txt slow (tools/slow_tests.py measures them so)",
    )


def _listed_slow_tests() -> set[str]:
    """The fast-loop tests measured at 0.05 s or more (tools/slow_tests.py writes the list)."""
    lines = SLOW_LIST.read_text().splitlines() if SLOW_LIST.exists() else []
    return {line for line in lines if line and not line.startswith("#")}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--no-slow-list"):
        listed = _listed_slow_tests()
        for item in items:
            if item.nodeid in listed:
                item.add_marker(pytest.mark.slow)
    _skip_what_this_install_lacks(items)


def _skip_what_this_install_lacks(items: list[pytest.Item]) -> None:
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
