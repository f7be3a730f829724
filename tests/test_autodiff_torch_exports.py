"""gradients() on torch.onnx loss graphs that need care (tests/data/autodiff_torch/, tools/autodiff_torch_fixtures.py),
against torch's own gradients: an `If` whose branches read the gradient path (refused, then folded away), and a
dynamo export whose value_info records a dynamic sequence length at the export's size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from onnxtrain import autodiff
from onnxtrain.errors import UnsupportedError

DATA = Path(__file__).parent / "data" / "autodiff_torch"


def torch_reference(name: str) -> tuple[Path, dict[str, np.ndarray]]:
    return DATA / f"{name}.onnx", dict(np.load(DATA / f"{name}.npz"))


def run_gradients(model: onnx.ModelProto, wrt: list[str], feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = onnxruntime.InferenceSession(
        autodiff.gradients(model, wrt).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    names = ["loss", *(f"{name}_grad" for name in wrt)]
    return dict(zip(names, session.run(names, feeds), strict=True))


def assert_torch_gradients(ours: dict[str, np.ndarray], reference: dict[str, np.ndarray], wrt: list[str]) -> None:
    np.testing.assert_allclose(ours["loss"], reference["loss"], rtol=1e-5)
    for name in wrt:
        expected = reference[f"grad:{name}"]
        scale = float(np.abs(expected).max())
        np.testing.assert_allclose(ours[f"{name}_grad"], expected, rtol=1e-4, atol=1e-5 * scale, err_msg=name)


def test_an_if_reading_the_gradient_path_is_refused_and_fold_constants_removes_it():
    """TorchScript's F.local_response_norm tests the input's rank with an If whose branches read the AveragePool
    output by name: its gradient was silently zero. Refused now; folded away (a constant condition) it trains."""
    path, reference = torch_reference("local_response_norm_torchscript")
    wrt = ["conv.weight", "conv.bias", "x"]
    with pytest.raises(
        UnsupportedError,
        match=r"No gradient rule for op 'If' .*its subgraphs read '/AveragePool_output_0' from the graph around it"
        r".*the gradients of 'conv.weight', 'conv.bias', 'x' need it.*An If whose condition is a constant .*"
        r"fold_constants\(model, keep=",
    ):
        autodiff.gradients(path, wrt)
    folded = autodiff.fold_constants(onnx.load(path), keep=wrt)
    assert "If" not in {node.op_type for node in folded.graph.node}
    assert_torch_gradients(run_gradients(folded, wrt, {"x": reference["in:x"]}), reference, wrt)


def test_a_dynamic_sequence_length_is_not_fixed_by_the_export_s_value_info():
    """Exported at batch 4 and length 7, the dynamo LSTM's value_info says [batch, 7, 8]: the gradient graph built
    on that failed at any other length. Its gradients at batch 3 and length 9 are torch's."""
    path, reference = torch_reference("lstm_dynamic_sequence_dynamo")
    model = onnx.load(path)
    assert any(d.dim_value == 7 for v in model.graph.value_info for d in v.type.tensor_type.shape.dim)
    wrt = [name.removeprefix("grad:") for name in reference if name.startswith("grad:")]
    feeds = {"x": reference["in:x"], "y": reference["in:y"]}
    assert_torch_gradients(run_gradients(model, wrt, feeds), reference, wrt)


def test_a_foreign_logits_graph_gets_its_loss_from_emit_loss_model():
    """docs/autodiff.md: from_onnx, then emit.loss_model appends the loss; the gradients are torch's first SGD step
    of the mlp_torchscript fixture ((weights before - after) / learning rate)."""
    from onnxtrain import emit, from_onnx

    fixture = Path(__file__).parent / "data" / "onnx_models" / "mlp_torchscript"
    steps = dict(np.load(fixture.with_suffix(".npz")))
    imported = from_onnx(fixture.with_suffix(".onnx"))
    forward = emit.loss_model(imported.layers, "softmax_cross_entropy_with_logits")
    weights = list(imported.graph.trainable_params_by_name())
    assert sorted(weights) == sorted(k.removeprefix("step_0/") for k in steps if k.startswith("step_0/"))
    got = run_gradients(forward, weights, {"input": steps["x"][0], "labels": steps["labels"][0]})
    for name in weights:
        expected = (steps[f"step_0/{name}"] - steps[f"step_1/{name}"]) / 0.1
        scale = float(np.abs(expected).max())
        np.testing.assert_allclose(got[f"{name}_grad"], expected, rtol=1e-3, atol=1e-5 * scale, err_msg=name)


@pytest.mark.parametrize(
    "name",
    [
        "grid_sample_zeros_align0_torchscript",
        "grid_sample_reflection_align1_torchscript",
        "grid_sample_border_align0_torchscript",
    ],
)
def test_grid_sample_gradients_are_torch_s(name):
    """F.grid_sample with the grid a graph input and points beyond the image: the gradients of x, the grid and the
    Conv before it equal torch's (padding zeros, reflection, border)."""
    path, reference = torch_reference(name)
    wrt = ["x", "grid", "conv.weight", "conv.bias"]
    feeds = {"x": reference["in:x"], "grid": reference["in:grid"]}
    assert_torch_gradients(run_gradients(onnx.load(path), wrt, feeds), reference, wrt)
