"""Write torch.onnx loss graphs that `onnxtrain.autodiff.gradients` must treat with care, with torch's gradients:
tests/data/autodiff_torch/<name>.onnx and <name>.npz (read by tests/test_autodiff_torch_exports.py without torch).

- `local_response_norm_torchscript`: Conv2d(2, 3, 3) then F.local_response_norm(size=3), loss sum(y * r) for a fixed
  r; TorchScript exporter, static shapes [2, 2, 6, 6]. The exporter tests the input's rank with an `If` whose
  branches read the AveragePool output from the graph around them (implicit inputs): gradients() must refuse the If,
  and differentiate the graph after `fold_constants`, whose condition is a constant there.
- `lstm_dynamic_sequence_dynamo`: LSTM(5, 8, batch_first) on x [batch, seq, 5], the last step through Linear(8, 3),
  mean cross-entropy; dynamo exporter with a dynamic batch and sequence length, exported at batch 4 and length 7.
  Its value_info records some values at those sizes ([batch, 7, 8]): the gradient graph must not take them for
  static, and runs at batch 3 and length 9 (the gradients stored are torch's at that size).
- `grid_sample_<padding>_align<0|1>_torchscript`: Conv2d(2, 3, 1) then F.grid_sample (bilinear) with the grid a graph
  input, points up to 1.5 times the image's reach; padding zeros (align_corners 0), reflection (1), border (0);
  TorchScript exporter, opset 16. torch's gradients of x, the grid and the Conv.

The .npz holds the inputs (`in:<name>`), the loss (`loss`) and torch's gradients (`grad:<name>`), by the name of the
graph input or initializer they belong to.

Usage: /work/venv-torch/bin/python tools/autodiff_torch_fixtures.py  (torch 2.13, onnx, onnxscript)
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "autodiff_torch"


class LocalResponseNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.register_buffer("r", torch.randn(2, 3, 4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (F.local_response_norm(self.conv(x), 3) * self.r).sum()


class LastStep(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(5, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(x)
        return F.cross_entropy(self.head(h[:, -1]), y)


def local_response_norm() -> None:
    torch.manual_seed(0)
    model = LocalResponseNorm()
    x = torch.randn(2, 2, 6, 6)
    buffer = io.BytesIO()
    torch.onnx.export(model, (x,), buffer, dynamo=False, opset_version=17, input_names=["x"], output_names=["loss"])
    proto = onnx.load_from_string(buffer.getvalue())
    assert "If" in {n.op_type for n in proto.graph.node}, "the export has no If: the fixture tests nothing"
    x.requires_grad_(True)
    loss = model(x)
    loss.backward()
    arrays = {"in:x": x.detach().numpy(), "loss": loss.detach().numpy()}
    arrays |= {"grad:x": x.grad.numpy()}
    arrays |= {f"grad:{name}": p.grad.numpy() for name, p in model.named_parameters()}
    _save("local_response_norm_torchscript", proto, arrays)


def lstm_dynamic_sequence() -> None:
    torch.manual_seed(1)
    model = LastStep()
    x, y = torch.randn(4, 7, 5), torch.tensor([0, 1, 2, 1])
    batch, seq = torch.export.Dim("batch", min=2), torch.export.Dim("seq", min=2)
    program = torch.onnx.export(
        model,
        (x, y),
        dynamo=True,
        input_names=["x", "y"],
        output_names=["loss"],
        dynamic_shapes=({0: batch, 1: seq}, {0: batch}),
        external_data=False,
    )
    assert program is not None
    proto = program.model_proto
    for node in proto.graph.node:  # stack traces name this machine's paths
        kept = [entry for entry in node.metadata_props if entry.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
    stale = [
        v.name
        for v in proto.graph.value_info
        if any(d.HasField("dim_value") and d.dim_value == 7 for d in v.type.tensor_type.shape.dim)
    ]
    assert stale, "the export's value_info holds no dimension of the export's length: the fixture tests nothing"
    x, y = torch.randn(3, 9, 5, requires_grad=True), torch.tensor([2, 0, 1])
    loss = model(x, y)
    loss.backward()
    arrays = {"in:x": x.detach().numpy(), "in:y": y.numpy(), "loss": loss.detach().numpy(), "grad:x": x.grad.numpy()}
    arrays |= {f"grad:{name}": grad for name, grad in _onnx_lstm_gradients(model, proto).items()}
    _save("lstm_dynamic_sequence_dynamo", proto, arrays)


def _onnx_lstm_gradients(model: LastStep, proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    """torch's gradients under the names of the initializers that hold their parameters: the head's as they are,
    the LSTM's as ONNX lays them out (W [1, 4H, in], R [1, 4H, H], B [1, 8H]; gates i, o, f, c where torch has
    i, f, g, o), each initializer matched to the parameter of equal value."""

    def layout(a: torch.Tensor) -> np.ndarray:
        i, f, g, o = a.detach().chunk(4, 0)
        return torch.cat([i, o, f, g]).numpy()

    rnn = model.rnn
    pairs = {
        "head.weight": (model.head.weight.detach().numpy(), model.head.weight.grad.numpy()),
        "head.bias": (model.head.bias.detach().numpy(), model.head.bias.grad.numpy()),
        "W": (layout(rnn.weight_ih_l0)[None], layout(rnn.weight_ih_l0.grad)[None]),
        "R": (layout(rnn.weight_hh_l0)[None], layout(rnn.weight_hh_l0.grad)[None]),
        "B": (
            np.concatenate([layout(rnn.bias_ih_l0), layout(rnn.bias_hh_l0)])[None],
            np.concatenate([layout(rnn.bias_ih_l0.grad), layout(rnn.bias_hh_l0.grad)])[None],
        ),
    }
    grads = {}
    for tensor in proto.graph.initializer:
        value = onnx.numpy_helper.to_array(tensor)
        for weight, grad in pairs.values():
            if value.shape == weight.shape and np.array_equal(value, weight):
                grads[tensor.name] = grad
    assert len(grads) == len(pairs), f"matched {sorted(grads)} only"
    return grads


class GridSample(nn.Module):
    def __init__(self, padding_mode: str, align_corners: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 1)
        self.padding_mode, self.align_corners = padding_mode, align_corners
        self.register_buffer("r", torch.randn(2, 3, 3, 4))

    def forward(self, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        y = F.grid_sample(
            self.conv(x), grid, mode="bilinear", padding_mode=self.padding_mode, align_corners=self.align_corners
        )
        return (y * self.r).sum()


def grid_sample() -> None:
    """F.grid_sample with the grid a graph input (a spatial transformer's), points up to 1.5 times the image's
    reach, so that padding and reflection matter: torch's gradients of x, the grid and the Conv's weights."""
    for padding, align in (("zeros", False), ("reflection", True), ("border", False)):
        torch.manual_seed(2)
        model = GridSample(padding, align)
        x, grid = torch.randn(2, 2, 5, 6), torch.empty(2, 3, 4, 2).uniform_(-1.5, 1.5)
        buffer = io.BytesIO()
        torch.onnx.export(
            model, (x, grid), buffer, dynamo=False, opset_version=16, input_names=["x", "grid"], output_names=["loss"]
        )
        proto = onnx.load_from_string(buffer.getvalue())
        x.requires_grad_(True)
        grid.requires_grad_(True)
        loss = model(x, grid)
        loss.backward()
        arrays = {"in:x": x.detach().numpy(), "in:grid": grid.detach().numpy(), "loss": loss.detach().numpy()}
        arrays |= {"grad:x": x.grad.numpy(), "grad:grid": grid.grad.numpy()}
        arrays |= {f"grad:{name}": p.grad.numpy() for name, p in model.named_parameters()}
        _save(f"grid_sample_{padding}_align{int(align)}_torchscript", proto, arrays)


def _save(name: str, proto: onnx.ModelProto, arrays: dict[str, np.ndarray]) -> None:
    onnx.checker.check_model(proto, full_check=True)
    OUT.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, OUT / f"{name}.onnx")
    np.savez(OUT / f"{name}.npz", **arrays)
    print(f"wrote {OUT / name}.onnx ({(OUT / f'{name}.onnx').stat().st_size:,} bytes) and .npz")


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local_response_norm()
        lstm_dynamic_sequence()
        grid_sample()
