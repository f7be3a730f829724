"""Write a torch model that `chunk`s and `split`s, exported as docs/foreign.md recommends for fine-tuning
(`torch.onnx.export(dynamo=True, optimize=False)`), with torch's reference training:
tests/data/onnx_sequences/chunk_dynamo.{onnx,npz}; and a model of nested modules exported by both exporters, with
each module's output: tests/data/onnx_sequences/nested_{torchscript,dynamo}.onnx and nested.npz.

The dynamo exporter writes `x.chunk(3, -1)` and `torch.split(x, [1, 3], -1)` as SplitToSequence + SequenceAt, which
from_onnx turns into Split at import (`onnxtrain/foreign/_sequence_split.py`). `chunk(3)` of 10 features gives parts
of 4, 4 and 2 (a scalar split that does not divide the axis). The .npz holds the five batches (`x`, `labels`), torch's
logits of `x[0]` before training (`logits_0`) and each parameter after five plain SGD steps (learning rate 0.1) on
the mean softmax cross-entropy of the logits (`step_5/<parameter>`, the initializer's name in the graph).

`Nested` is for cutting at a module's name (`from_onnx(outputs=["stages.0.fc"])`, onnxtrain/foreign/_cut.py): a
Sequential's child (`enc.2`), a module's child inside a Sequential (`stages.0.fc`, as ResNet's `layer1.0.conv1`) and
a Sequential inside a Sequential (`stages.1.0`). TorchScript scopes a node by each module's name from its last
non-numeric part (`/enc/enc.2/Gemm`, `/stages/stages.0/fc/Gemm`, `/stages/stages.1/stages.1.0/Gemm`), the dynamo
exporter by full names in its metadata. nested.npz holds a batch `x` and torch's output of each module for it, keyed
by the module's name (`logits` for the model's).

Usage: /work/venv-torch/bin/python tools/onnx_sequence_fixtures.py   (seconds; torch, onnx and onnxscript)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "onnx_sequences"
STEPS, BATCH, LEARNING_RATE = 5, 4, 0.1


class Chunks(nn.Module):
    """Linear 6-10 per position, chunked into 4 + 4 + 2 features, the first two summed and split 1 + 3, mixed
    with the third, averaged over the 3 positions, Linear 6-3."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(6, 10)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b, c = self.qkv(x).chunk(3, dim=-1)
        d, e = torch.split(a + b, [1, 3], dim=-1)
        mixed = torch.cat([d * c[..., :1], torch.tanh(e), c], dim=-1)
        return self.head(mixed.mean(dim=1))


class Stage(nn.Module):
    """A residual Linear: named children inside a Sequential (`stages.0.fc`)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.fc(x))


class Nested(nn.Module):
    """Linear 6-8, a Sequential `enc` (Linear, ReLU, Linear, ReLU), a Sequential `stages` of a Stage and of a
    Sequential (Linear, Tanh), Linear 8-3."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(6, 8)
        self.enc = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU())
        self.stages = nn.Sequential(Stage(8), nn.Sequential(nn.Linear(8, 8), nn.Tanh()))
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.enc(self.embed(x))))


def without_stack_traces(graph: onnx.ModelProto) -> None:
    """Drop the dynamo exporter's stack traces, which name this machine's paths."""
    for node in graph.graph.node:
        kept = [entry for entry in node.metadata_props if entry.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)


def dynamo_export(model: torch.nn.Module, x: torch.Tensor) -> onnx.ModelProto:
    """`model` exported by the dynamo exporter as the docs recommend for fine-tuning (optimize=False), opset 20, its
    batch axis dynamic, without the stack traces that would make the fixture differ by machine."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (x,),
            dynamo=True,
            optimize=False,
            opset_version=20,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=2)},),
            verbose=False,
        )
    assert program is not None
    graph = program.model_proto
    without_stack_traces(graph)
    return graph


def write_chunks() -> None:
    torch.manual_seed(0)
    model = Chunks().eval()
    x = torch.randn(STEPS, BATCH, 3, 6)
    labels = torch.randint(0, 3, (STEPS, BATCH))
    graph = dynamo_export(model, x[0])
    ops = {node.op_type for node in graph.graph.node}
    assert {"SplitToSequence", "SequenceAt"} <= ops, f"the exporter no longer writes sequences: {sorted(ops)}"
    onnx.checker.check_model(graph, full_check=True)
    arrays: dict[str, np.ndarray] = {"x": x.numpy(), "labels": labels.numpy()}
    with torch.no_grad():
        arrays["logits_0"] = model(x[0]).numpy()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    for step in range(STEPS):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[step]), labels[step]).backward()
        optimizer.step()
    arrays |= {f"step_{STEPS}/{name}": p.detach().numpy().copy() for name, p in model.named_parameters()}
    OUT.mkdir(parents=True, exist_ok=True)
    onnx.save(graph, OUT / "chunk_dynamo.onnx")
    np.savez_compressed(OUT / "chunk_dynamo.npz", **arrays)
    print(f"wrote {OUT / 'chunk_dynamo.onnx'} ({sorted(ops)}) and .npz")


def write_nested() -> None:
    torch.manual_seed(0)
    model = Nested().eval()
    x = torch.randn(BATCH, 6)
    outputs: dict[str, np.ndarray] = {}

    def keep(name: str) -> Callable[[nn.Module, object, torch.Tensor], None]:
        def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            outputs[name] = output.detach().numpy().copy()

        return hook

    hooks = [module.register_forward_hook(keep(name)) for name, module in model.named_modules() if name]
    with torch.no_grad():
        outputs["logits"] = model(x).numpy()
    for handle in hooks:
        handle.remove()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = OUT / "nested_torchscript.onnx"
        torch.onnx.export(
            model,
            (x,),
            path,
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}},
        )
    graph = dynamo_export(model, x)
    onnx.save(graph, OUT / "nested_dynamo.onnx")
    scopes = [node.name for node in onnx.load(path).graph.node]
    for scope in ["/enc/enc.2/Gemm", "/stages/stages.0/fc/Gemm", "/stages/stages.1/stages.1.0/Gemm"]:
        assert scope in scopes, f"TorchScript no longer scopes nodes as {scope}: {scopes}"
    np.savez_compressed(OUT / "nested.npz", x=x.numpy(), **outputs)
    print(f"wrote {OUT}/nested_{{torchscript,dynamo}}.onnx and nested.npz ({sorted(outputs)})")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    write_chunks()
    write_nested()


if __name__ == "__main__":
    main()
