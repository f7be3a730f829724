"""The ort-training engine's session (`_ort_training_session`): it refuses what ONNX Runtime would fail on, and it
reaches ONNX Runtime's training API only through `_ort_training`, the one module that imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import Sequential, _ort_training, _ort_training_session
from onnxtrain import losses as loss_module
from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.layers import Dense, Flatten, Input, Softmax
from onnxtrain.optimizers import Adam

PACKAGE = Path(_ort_training.__file__).parent


def imports_training_api(tree: ast.AST) -> bool:
    """Whether a module's source imports `onnxruntime.training` or one of its submodules, anywhere in it."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        if any(name == "onnxruntime.training" or name.startswith("onnxruntime.training.") for name in names):
            return True
    return False


@pytest.mark.slow
def test_only_ort_training_imports_the_training_api():
    importing = sorted(
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if imports_training_api(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    )
    assert importing == ["onnxtrain/_ort_training.py"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from onnxruntime.training import onnxblock", True),
        ("from onnxruntime import training", True),
        ("def f():\n    import onnxruntime.training.api", True),
        ("import onnxruntime", False),
        ("from onnxruntime.capi import onnxruntime_pybind11_state", False),
    ],
)
def test_the_import_check_sees_every_form_of_the_import(source, expected):
    assert imports_training_api(ast.parse(source)) is expected


@pytest.mark.training
def test_an_empty_batch_is_refused_before_onnx_runtime_sees_it(tmp_path):
    sce = loss_module.get("softmax_cross_entropy_with_logits")
    layers = Sequential.of(Input(4, 3), Flatten(), Dense(5), Dense(3), seed=1).layers
    artifacts = _ort_training.write_artifacts(layers, sce, Adam(), tmp_path)
    engine = _ort_training_session.OrtTrainingEngine(artifacts, Adam())
    for step in (engine.train_step, engine.eval_step):
        with pytest.raises(InvalidArgumentError, match=r"at least one example. Received: x.shape=\(0, 4, 3\)"):
            step(np.zeros((0, 4, 3), np.float32), np.zeros(0, np.int64))
    engine.close()


@pytest.mark.training
@pytest.mark.parametrize(
    ("model", "received"),
    [
        (
            lambda: Sequential.of(Input(3), Dense(2, trainable=False), seed=1),
            r"a model whose parameters are all frozen\.",
        ),
        (
            lambda: Sequential.of(Input(2, 3), Flatten(), Softmax(), seed=1),
            r"a model that has none \(no layer has weights: 'flatten_\d+', 'softmax_\d+'\)\.",
        ),
    ],
    ids=["frozen", "weightless"],
)
def test_the_engine_refuses_a_model_with_nothing_to_train_in_write_artifacts_words(model, received):
    """The same refusal as write_artifacts' (`refuse_nothing_to_train`), naming the engine and its fix."""
    expected = (
        r"^The ort-training engine needs at least one trainable parameter: ONNX Runtime's training artifacts have "
        rf"nothing to build without one\. Received: {received} Compile with engine='portable' \(the default\) to "
        r"evaluate, predict or export it\.$"
    )
    with model() as refused, pytest.raises(UnsupportedError, match=expected):
        refused.compile(loss="mse", engine="ort-training")
