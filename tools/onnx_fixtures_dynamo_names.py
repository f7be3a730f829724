"""Write torch.onnx dynamo exports made with the exporter's default optimizer (`optimize=True`), whose weights lose
their torch names, with torch's SGD steps: tests/data/onnx_dynamo_names/<name>.{onnx,npz,json}.

The optimizer folds `Transpose(W)` of an `nn.Linear` read by a MatMul into an unnamed initializer (`val_6`), and
drops a bias that holds only zeros (onnxscript's RemoveOptionalBiasFrom{Gemm,Conv,ConvTranspose}). The tests
(tests/test_foreign_dynamo_names.py, without torch) check that from_onnx finds each weight's torch name in the
export's metadata, restores the dropped biases, and trains what torch trains:

- `encoder_dynamo_default`: Linear(6, 8) on [N, 5, 6] (a MatMul of a folded transpose), a fresh
  nn.TransformerEncoderLayer(8, 2 heads, 16, gelu, pre-norm, no dropout: its in_proj_weight and linear1/linear2
  weights folded, its zero `self_attn.out_proj.bias` dropped, its LayerNorm weights merged), the mean over the
  sequence and Linear(8, 3) (a Gemm).
- `conv_dynamo_default`: Conv2d(1, 4, 3), ReLU, ConvTranspose2d(4, 2, 2, stride 2), ReLU, Flatten and
  Linear(128, 3), each bias zero (as `nn.init.zeros_` leaves it): all three dropped.

Each `.npz` holds the data (`x` [steps, 4, ...], `labels` [steps, 4]), torch's logits of `x[0]` before any step
(`logits_0`) and every torch parameter by its torch name before and after each of `steps` SGD steps
(`step_<k>/<name>`, learning rate 0.1, no momentum, mean cross-entropy of the logits, model in eval mode). The
`.json` records the parameter count and, found by name or value, which initializer of the graph holds which
parameter (`val_6`: `enc.self_attn.in_proj_weight (transposed)`) and which parameters no initializer holds (merged
into another of equal value, or dropped).

Usage: /work/venv-torch/bin/python tools/onnx_fixtures_dynamo_names.py  (torch, onnx, onnxscript)
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "onnx_dynamo_names"
STEPS, BATCH, LEARNING_RATE = 3, 4, 0.1


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(6, 8)
        self.enc = nn.TransformerEncoderLayer(
            8, 2, 16, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc(self.embed(x)).mean(1))


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.up = nn.ConvTranspose2d(4, 2, 2, stride=2)
        self.fc = nn.Linear(128, 3)
        for layer in (self.conv, self.up, self.fc):
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.up(torch.relu(self.conv(x)))).flatten(1))


def export(model: nn.Module, example: torch.Tensor) -> onnx.ModelProto:
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, (example,), dynamo=True, input_names=["x"], output_names=["logits"], dynamic_shapes=({0: batch},)
        )
    assert program is not None
    graph = program.model_proto
    for node in graph.graph.node:  # stack traces name this machine's paths
        kept = [entry for entry in node.metadata_props if entry.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
    return graph


def holders(graph: onnx.ModelProto, parameters: dict[str, np.ndarray]) -> tuple[dict[str, str], list[str]]:
    """{initializer: the parameter it holds, "(transposed)" where it holds its transpose} for the float
    initializers that hold one: by name, else by value where one parameter alone has it; and the parameters no
    initializer holds (merged into another of equal value, or dropped for being zero)."""
    held: dict[str, str] = {}
    for init in graph.graph.initializer:
        value = numpy_helper.to_array(init)
        if value.dtype != np.float32:
            continue
        if init.name in parameters:
            held[init.name] = init.name
            continue
        same = [n for n, p in parameters.items() if p.shape == value.shape and np.array_equal(p, value)]
        flipped = [
            n for n, p in parameters.items() if p.ndim == 2 and p.T.shape == value.shape and np.array_equal(p.T, value)
        ]
        if len(same) + len(flipped) == 1:
            held[init.name] = same[0] if same else f"{flipped[0]} (transposed)"
    found = {name.split(" ")[0] for name in held.values()}
    return held, [name for name in parameters if name not in found]


def train(name: str, model: nn.Module, shape: tuple[int, ...], classes: int) -> None:
    model.eval()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((STEPS, BATCH, *shape)).astype(np.float32)
    labels = rng.integers(0, classes, (STEPS, BATCH))
    graph = export(model, torch.from_numpy(x[0]))
    onnx.checker.check_model(graph, full_check=True)
    arrays: dict[str, np.ndarray] = {"x": x, "labels": labels}
    with torch.no_grad():
        arrays["logits_0"] = model(torch.from_numpy(x[0])).numpy()
    parameters = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}
    held, absent = holders(graph, parameters)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    for step in range(STEPS + 1):
        arrays |= {f"step_{step}/{n}": p.detach().numpy().copy() for n, p in model.named_parameters()}
        if step == STEPS:
            break
        optimizer.zero_grad()
        F.cross_entropy(model(torch.from_numpy(x[step])), torch.from_numpy(labels[step])).backward()
        optimizer.step()
    OUT.mkdir(parents=True, exist_ok=True)
    onnx.save(graph, OUT / f"{name}.onnx")
    np.savez_compressed(OUT / f"{name}.npz", **arrays)
    meta = {
        "exporter": f"torch.onnx.export(dynamo=True), optimize=True (default); torch {torch.__version__}",
        "input": "x",
        "output": "logits",
        "steps": STEPS,
        "learning_rate": LEARNING_RATE,
        "parameters": int(sum(p.size for p in parameters.values())),
        "held": held,
        "not_in_graph": absent,
    }
    (OUT / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = (OUT / f"{name}.onnx").stat().st_size
    print(f"{name}: {len(graph.graph.node)} nodes, {size:,} bytes; not in the graph: {absent}; held: {held}")


def main() -> None:
    print(f"torch {torch.__version__}, onnx {onnx.__version__}", file=sys.stderr)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    train("encoder_dynamo_default", Encoder(), (5, 6), 3)
    torch.manual_seed(1)
    train("conv_dynamo_default", ConvNet(), (1, 6, 6), 3)


if __name__ == "__main__":
    main()
