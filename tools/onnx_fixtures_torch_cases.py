"""Write torch.onnx exports that onnxtrain must import with care or refuse: tests/data/onnx_torch_cases/<name>.onnx.

Unlike tools/onnx_fixtures.py's, these graphs carry no reference training: the tests check what the import,
the CLI and the checks before a run make of them (docs/foreign.md). One model per case, small (kilobytes):

- `tokens_torchscript`: token ids (int64 [N, 7]) through nn.Embedding(50, 16), a torch nn.TransformerEncoderLayer
  (batch_first, 2 heads), the mean over the sequence and a Linear(16, 3); TorchScript exporter, dynamic batch.
- `tokens_fixed_batch_torchscript`, `tokens_fixed_batch_dynamo`: the same model exported as torch does by default,
  without dynamic_axes / dynamic_shapes: batch 4 is written into the attention's Reshape shapes ([7, 4 * 2, 8]).
- `mlp_fp16_torchscript`: an MLP (Linear 12-16, ReLU, Linear 16-4) in float16 (`model.half()`), dynamic batch.
- `mlp_qdq_int8`: the float32 MLP quantized by ONNX Runtime's `quantize_static` (QDQ format, int8 weights and
  activations): its weights are int8 initializers behind DequantizeLinear, its activations pass QuantizeLinear.

Usage: /work/venv-torch/bin/python tools/onnx_fixtures_torch_cases.py  (torch, onnx, onnxscript, onnxruntime)
"""

from __future__ import annotations

import io
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "onnx_torch_cases"
OPSET = 17  # TorchScript's; onnxtrain's ONNX Runtime 1.19.2 loads IR <= 10
DYNAMO_OPSET = 18
FIXED_BATCH = 4


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.enc = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.fc = nn.Linear(16, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc(self.enc(self.emb(ids)).mean(1))


class Mlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(12, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def torchscript(model: nn.Module, example: torch.Tensor, input_name: str, dynamic: bool) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            model,
            (example,),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=[input_name],
            output_names=["logits"],
            dynamic_axes={input_name: {0: "batch"}, "logits": {0: "batch"}} if dynamic else None,
        )
    return onnx.load_from_string(buffer.getvalue())


def dynamo_static(model: nn.Module, example: torch.Tensor, input_name: str) -> onnx.ModelProto:
    program = torch.onnx.export(
        model, (example,), dynamo=True, opset_version=DYNAMO_OPSET, input_names=[input_name], output_names=["logits"]
    )
    assert program is not None
    graph = program.model_proto
    for node in graph.graph.node:  # stack traces name this machine's paths
        kept = [entry for entry in node.metadata_props if entry.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
    return graph


def quantized(model: onnx.ModelProto, example: np.ndarray) -> onnx.ModelProto:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = [{"x": example[i : i + 1]} for i in range(len(example))]

        def get_next(self) -> dict[str, np.ndarray] | None:
            return self.left.pop() if self.left else None

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "mlp.onnx", Path(folder) / "mlp_qdq.onnx"
        onnx.save(model, source)
        quantize_static(
            source,
            target,
            Batches(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
        )
        return onnx.load(target)


def write(name: str, model: onnx.ModelProto) -> None:
    onnx.checker.check_model(model, full_check=True)
    OUT.mkdir(parents=True, exist_ok=True)
    onnx.save(model, OUT / f"{name}.onnx")
    print(f"{name}: {len(model.graph.node)} nodes, {(OUT / f'{name}.onnx').stat().st_size:,} bytes")


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, onnx {onnx.__version__}", file=sys.stderr)
    tokens = Tokens().eval()
    ids = torch.randint(0, 50, (FIXED_BATCH, 7))
    write("tokens_torchscript", torchscript(tokens, ids, "ids", dynamic=True))
    write("tokens_fixed_batch_torchscript", torchscript(tokens, ids, "ids", dynamic=False))
    write("tokens_fixed_batch_dynamo", dynamo_static(tokens, ids, "ids"))
    mlp = Mlp().eval()
    x = torch.randn(FIXED_BATCH, 12)
    write("mlp_fp16_torchscript", torchscript(Mlp().eval().half(), x.half(), "x", dynamic=True))
    write("mlp_qdq_int8", quantized(torchscript(mlp, x, "x", dynamic=True), torch.randn(16, 12).numpy()))


if __name__ == "__main__":
    main()
