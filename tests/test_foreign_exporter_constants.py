"""from_onnx's exporter constants: float initializers that are no parameters (one element: a scale, an epsilon; or
holding ±inf / nan: an attention mask) stay frozen by default, as torch's dynamo exporter writes them, and train
when `trainable` names them. A PRelu's single slope is a parameter."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxtrain import from_onnx
from onnxtrain.layers import OnnxLayer
from onnxtrain.optimizers import SGD

LOSS = "softmax_cross_entropy_with_logits"
RNG = np.random.default_rng(3)
WEIGHTS = {
    "w": RNG.normal(size=(5, 5)).astype(np.float32),
    "mask": np.array([[0, 0, 0, -np.inf, -np.inf]], np.float32),  # a causal / padding mask's row
    "scale": np.array([0.59460354], np.float32),  # torch's dynamo attention scale `val_101`, shape [1]
    "eps": np.array([[1e-3]], np.float32),  # [1, 1]
    "head": RNG.normal(size=(5, 3)).astype(np.float32),
    "slope": np.array([0.25], np.float32),  # nn.PReLU()'s single learned slope
}


def masked_model() -> onnx.ModelProto:
    """x [N, 5] -> MatMul w, + mask, Softmax, * scale, + eps, MatMul head, PRelu slope: logits [N, 3]."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["s"]),
        helper.make_node("Add", ["s", "mask"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["p"], axis=-1),
        helper.make_node("Mul", ["p", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "eps"], ["z"]),
        helper.make_node("MatMul", ["z", "head"], ["h"]),
        helper.make_node("PRelu", ["h", "slope"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "masked",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(a, n) for n, a in WEIGHTS.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def fitted(model) -> dict[str, np.ndarray]:
    x = RNG.normal(size=(8, 5)).astype(np.float32)
    y = RNG.integers(0, 3, 8)
    with model:
        model.compile(optimizer=SGD(learning_rate=0.5), loss=LOSS)
        model.fit(x, y, batch_size=4, verbose=0)
        return model.get_weights()


@pytest.mark.parametrize(
    ("trainable", "trains"),
    [
        (None, {"w", "head", "slope"}),
        (True, {"w", "head", "slope"}),
        (["mask", "scale"], {"mask", "scale"}),
        (["*"], set(WEIGHTS)),
    ],
    ids=["default", "True", "named", "every pattern"],
)
def test_one_element_and_non_finite_initializers_are_frozen_unless_named(trainable, trains):
    model = from_onnx(masked_model(), trainable=trainable)
    assert set(model.graph.trainable_params_by_name()) == trains
    after = fitted(model)
    changed = {name for name, value in WEIGHTS.items() if not np.array_equal(after[name], value)}
    assert changed == trains  # a trained mask moves where it is finite


def test_a_non_finite_constant_stays_frozen_in_a_layer_rebuilt_from_its_config():
    """The mask is known by its values at import; a layer rebuilt from its config (as load_model rebuilds it) has
    zeros until its weights are set, so the import records the mask in the stored graph."""
    layer = OnnxLayer(masked_model())
    rebuilt = OnnxLayer.from_layer_config(layer.get_config())
    assert all(not array.any() for array in rebuilt.params.values())  # zeros, as load_model makes them first
    assert rebuilt.non_trainable == layer.non_trainable == {"mask", "scale", "eps"}


def test_summary_counts_the_exporter_constants_among_the_frozen(tmp_path, capsys):
    from onnxtrain.cli._main import main

    onnx.save(masked_model(), tmp_path / "masked.onnx")
    assert main(["summary", str(tmp_path / "masked.onnx")]) == 0
    line = next(t for t in capsys.readouterr().out.splitlines() if t.startswith("Parameters: 48 in 6 weights"))
    assert "41 train by default, 7 frozen (3 exporter constants: 1-element or non-finite);" in line
