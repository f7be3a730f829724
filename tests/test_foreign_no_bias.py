"""A torch.onnx dynamo export of modules built with `bias=False` (tests/data/onnx_dynamo_names/
no_bias_dynamo_default, by tools/onnx_dynamo_no_bias_fixtures.py): the optimizer's RemoveOptionalBiasFromConv
fires on the zero bias the exporter wrote for the aten call's `None`, but torch's module never had one, so
from_onnx restores none and warns about none; the zero bias a module has is still restored (`_removed_biases`)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from onnxtrain import from_onnx
from onnxtrain.foreign._removed_biases import restore_removed_biases
from onnxtrain.foreign._torch_names import FX_NODE, REWRITE_RULES
from onnxtrain.optimizers import SGD

DATA = Path(__file__).parent / "data" / "onnx_dynamo_names"
NAME = "no_bias_dynamo_default"
TOLERANCE = 1e-5  # max |ours - torch's| / max |torch's|, per weight


def fixture() -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    with np.load(DATA / f"{NAME}.npz") as arrays:
        reference = dict(arrays)
    return str(DATA / f"{NAME}.onnx"), json.loads((DATA / f"{NAME}.json").read_text()), reference


def import_quietly(source: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no bias was lost, so nothing warns
        return from_onnx(source)


def test_a_module_without_bias_gets_none_and_a_zero_bias_comes_back():
    path, meta, reference = fixture()
    nodes = onnx.load(path).graph.node
    rules = {n.name: p.value for n in nodes for p in n.metadata_props if p.key == REWRITE_RULES and "Bias" in p.value}
    assert rules == {"node_Conv_14": "RemoveOptionalBiasFromConv", "node_Gemm_18": "RemoveOptionalBiasFromGemm"}
    model = import_quietly(path)
    weights = model.get_weights()
    assert set(weights) == {key.split("/", 1)[1] for key in reference if key.startswith("step_0/")}  # torch's own
    np.testing.assert_array_equal(weights["fc.bias"], reference["step_0/fc.bias"])  # restored: zeros
    assert model.param_counts()[0] == meta["parameters"]  # torch's count
    np.testing.assert_allclose(model.predict(reference["x"][0]), reference["logits_0"], atol=1e-6)


# ONNX Runtime 1.19 has no CPU kernel for ConvTransposeGrad: the portable engine only.
def test_sgd_steps_equal_torch():
    path, meta, reference = fixture()
    model = import_quietly(path)
    model.compile(optimizer=SGD(learning_rate=meta["learning_rate"]), loss="softmax_cross_entropy_with_logits")
    for step in range(meta["steps"]):
        model.train_on_batch(reference["x"][step], reference["labels"][step])
    for name, value in model.get_weights().items():
        theirs = reference[f"step_{meta['steps']}/{name}"]
        assert np.max(np.abs(value - theirs)) <= TOLERANCE * np.max(np.abs(theirs)), name


def _gemm(fx_node: str) -> onnx.ModelProto:
    """Gemm(x, W) with the optimizer's rule recorded and `fx_node` as its aten call, W [3, 2] (transB)."""
    node = onnx.helper.make_node("Gemm", ["x", "W"], ["y"], name="node_Gemm_1", transB=1)
    node.metadata_props.add(key=REWRITE_RULES, value="RemoveOptionalBiasFromGemm")
    node.metadata_props.add(key=FX_NODE, value=fx_node)
    graph = onnx.helper.make_graph(
        [node],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 2])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n", 3])],
        [onnx.numpy_helper.from_array(np.ones((3, 2), np.float32), "W")],
    )
    graph.metadata_props.add(
        key="pkg.torch.export.ExportedProgram.graph_signature",
        value="# inputs\np_fc_weight: PARAMETER target='fc.weight'\np_fc_bias: PARAMETER target='fc.bias'\n",
    )
    return onnx.helper.make_model(graph)


CALL = "%linear : [num_users=1] = call_function[target=torch.ops.aten.linear.default]"


@pytest.mark.parametrize(
    ("fx_node", "restored"),
    [
        (f"{CALL}(args = (%x, %p_fc_weight, %p_fc_bias), kwargs = {{}})", "fc.bias"),
        (f"{CALL}(args = (%x, %p_fc_weight), kwargs = {{bias: %p_fc_bias}})", "fc.bias"),  # as a keyword
        (f"{CALL}(args = (%x, %p_fc_weight), kwargs = {{}})", None),  # Linear(bias=False): left out
        (f"{CALL}(args = (%x, %p_fc_weight, None), kwargs = {{}})", None),
        (f"{CALL}(args = (%x, %p_fc_weight), kwargs = {{bias: None}})", None),
    ],
)
def test_only_a_call_with_a_bias_argument_gets_it_back(fx_node, restored):
    model = _gemm(fx_node)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = restore_removed_biases(model, "from_onnx", warn=True)
    assert list(result.graph.node[0].input) == ["x", "W", *([restored] if restored else [])]
    assert [t.name for t in result.graph.initializer] == ["W", *([restored] if restored else [])]


def test_a_removed_bias_the_call_does_not_name_still_warns():
    model = _gemm(f"{CALL}(args = (%x, %p_fc_weight, %add), kwargs = {{}})")  # a bias, of no parameter
    with pytest.warns(UserWarning, match=r"removed the zero bias of 1 node\(s\) \(Gemm 'node_Gemm_1'\).*optimize"):
        result = restore_removed_biases(model, "from_onnx", warn=True)
    assert list(result.graph.node[0].input) == ["x", "W"]
