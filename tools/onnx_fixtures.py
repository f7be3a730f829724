"""Write real exporters' ONNX graphs with torch's reference training: tests/data/onnx_models/<name>.{onnx,npz,json}.

Each fixture is a small torch model exported by torch.onnx (the TorchScript exporter, `dynamo=False`, or the dynamo
exporter), five fixed batches with labels, and the weights after each of five plain SGD steps (no momentum) on the
mean softmax cross-entropy of the logits, computed by torch in float32. The tests import the graph, append the
loss, differentiate it with onnxtrain.autodiff and compare their weights with torch's, without torch installed.
The format (keys, trainable set, how exporters rename weights) is in tests/data/onnx_models/README.md.

Exporters fold and rename weights (TorchScript's constant folding turns a Linear's weight on a 3-D input into the
transposed initializer `onnx::MatMul_123`): each float initializer is matched to the torch parameter or buffer of
equal value (as is, transposed or reshaped: tools/_onnx_fixture_files.py), and torch's weights after each step
are stored under the initializer's name, transformed the same way. Initializers matched to a parameter are the
trainable set; the other float initializers (BatchNorm's running statistics, folded constants) are frozen. Keras'
exports are written by tools/onnx_fixtures_keras.py.

Runs in a Python with torch, onnx and onnxscript (not onnxtrain's); checks that each graph loads in onnxtrain's
ONNX Runtime 1.19.2 by running `--check-python` on it. Seconds.

Usage: /work/venv-torch/bin/python tools/onnx_fixtures.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from _onnx_fixture_files import (
    BATCH,
    LEARNING_RATE,
    ROOT,
    STEPS,
    match_initializers,
    save,
    steps_arrays,
)
from onnx import numpy_helper
from torch import nn

TORCHSCRIPT_OPSET = 17  # ONNX Runtime 1.19.2 (onnxtrain's) loads IR <= 10; opset 17 is IR 8
DYNAMO_OPSET = 20  # the first opset with Gelu; IR 9


# --- the models ---------------------------------------------------------------------------------------------------
class Mlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 12)
        self.head = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)


class ResidualCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.block = ResidualBlock(4)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(torch.relu(self.bn(self.stem(x))))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


class EncoderLayer(nn.Module):
    """Pre-norm self-attention and a Gelu feed-forward, written out so the attention MatMuls are in the graph."""

    def __init__(self, width: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.ff1 = nn.Linear(width, hidden)
        self.ff2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(width, dim=-1)
        q, k, v = (t.reshape(batch, length, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(width // self.heads)
        attended = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(batch, length, width)
        x = x + self.proj(attended)
        return x + self.ff2(nn.functional.gelu(self.ff1(self.norm2(x))))


class Transformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(8, 2, 16) for _ in range(2)])
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x).mean(dim=1))


class TorchEncoder(nn.Module):
    """torch's own nn.TransformerEncoder (2 pre-norm layers, gelu, no dropout), mean pool, Linear: the graph its
    attention module exports to (packed in_proj, Slice/Mod shape arithmetic), not one written out by hand."""

    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(8, 3)
        with torch.no_grad():  # TransformerEncoder copies one layer: both start equal, which exporters deduplicate
            for parameter in self.parameters():
                parameter.normal_(0.0, 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean(dim=1))


@dataclass(frozen=True)
class Fixture:
    name: str
    make: Callable[[], nn.Module]
    example_shape: tuple[int, ...]  # one example, without the batch
    classes: int
    exporter: str  # "torchscript" or "dynamo"
    description: str
    # The dynamo exporter's default optimizer folds eval-mode BatchNorm into the Conv weights: off keeps the nodes.
    optimize: bool = True
    # Torch trains in train mode (BatchNorm: batch statistics, running statistics updated); the graph is still the
    # eval-mode export, for an importer's "switch BatchNorm to training mode" option.
    batch_norm_training: bool = False
    # The graph has BatchNorm folded into the Conv weights (the dynamo exporter's default): torch trains the model
    # fused the same way (torch.nn.utils.fusion), starting from the graph's weights.
    batch_norm_folded: bool = False


FIXTURES = [
    Fixture("mlp_torchscript", Mlp, (8,), 4, "torchscript", "MLP: Linear-ReLU-Linear-ReLU-Linear"),
    Fixture(
        "cnn_torchscript",
        ResidualCnn,
        (1, 6, 6),
        3,
        "torchscript",
        "ResNet-style CNN: Conv-BN-ReLU, a residual block with BatchNorm and Add, global average pool, Linear",
    ),
    Fixture(
        "cnn_dynamo",
        ResidualCnn,
        (1, 6, 6),
        3,
        "dynamo",
        "ResNet-style CNN: Conv-BN-ReLU, a residual block with BatchNorm and Add, global average pool, Linear "
        "(exported with optimize=False, which keeps the BatchNorm nodes)",
        optimize=False,
    ),
    Fixture(
        "cnn_dynamo_folded",
        ResidualCnn,
        (1, 6, 6),
        3,
        "dynamo",
        "ResNet-style CNN as the dynamo exporter writes it by default (optimize=True): each BatchNorm folded into the "
        "Conv before it; trained by torch as the same fused model",
        batch_norm_folded=True,
    ),
    Fixture(
        "cnn_torchscript_bn_training",
        ResidualCnn,
        (1, 6, 6),
        3,
        "torchscript",
        "cnn_torchscript's graph, trained by torch with BatchNorm in training mode (batch statistics, running "
        "statistics updated)",
        batch_norm_training=True,
    ),
    Fixture(
        "transformer_torchscript",
        Transformer,
        (5, 8),
        3,
        "torchscript",
        "2-layer pre-norm transformer encoder (LayerNorm, 2-head attention MatMuls, Softmax, Gelu), mean pool, Linear",
    ),
    Fixture(
        "torch_encoder_torchscript",
        TorchEncoder,
        (5, 8),
        3,
        "torchscript",
        "torch's nn.TransformerEncoder: 2 pre-norm layers (MultiheadAttention, gelu feed-forward), mean pool, Linear",
    ),
    Fixture(
        "torch_encoder_dynamo",
        TorchEncoder,
        (5, 8),
        3,
        "dynamo",
        "torch's nn.TransformerEncoder: 2 pre-norm layers (MultiheadAttention, gelu feed-forward), mean pool, Linear",
    ),
    Fixture(
        "transformer_dynamo",
        Transformer,
        (5, 8),
        3,
        "dynamo",
        "2-layer pre-norm transformer encoder (LayerNorm, 2-head attention MatMuls, Softmax, Gelu), mean pool, Linear",
    ),
]


# --- export -------------------------------------------------------------------------------------------------------
def export(fixture: Fixture, model: nn.Module, example: torch.Tensor) -> onnx.ModelProto:
    """The graph the exporter writes for `model` in eval mode (BatchNorm with its running statistics), batch dynamic."""
    model.eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fixture.exporter == "torchscript":
            # PRESERVE keeps BatchNormalization nodes: EVAL's peephole pass would fold them into the Conv weights.
            torch.onnx.export(
                model,
                (example,),
                buffer,
                dynamo=False,
                opset_version=TORCHSCRIPT_OPSET,
                input_names=["input"],
                output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}},
                training=torch.onnx.TrainingMode.PRESERVE,
            )
            return onnx.load_from_string(buffer.getvalue())
        batch = torch.export.Dim("batch", min=2)
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=DYNAMO_OPSET,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: batch},),
            verbose=False,
            optimize=fixture.optimize,
        )
        assert program is not None
        graph = program.model_proto
    for node in graph.graph.node:  # stack traces name this machine's paths and this file's line numbers
        kept = [entry for entry in node.metadata_props if entry.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
    return graph


def folded(model: nn.Module) -> nn.Module:
    """`model` (a ResidualCnn, in eval mode) with each BatchNorm folded into the Conv before it, as the dynamo
    exporter's optimizer folds them; the BatchNorms become Identity."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    assert isinstance(model, ResidualCnn)
    model.eval()
    model.stem = fuse_conv_bn_eval(model.stem, model.bn)
    model.bn = nn.Identity()  # type: ignore[assignment]
    block = model.block
    block.conv1, block.bn1 = fuse_conv_bn_eval(block.conv1, block.bn1), nn.Identity()  # type: ignore[assignment]
    block.conv2, block.bn2 = fuse_conv_bn_eval(block.conv2, block.bn2), nn.Identity()  # type: ignore[assignment]
    for parameter in model.parameters():
        parameter.requires_grad_(True)  # a bias the fusion created for a bias-less Conv comes without
    return model


def randomize(model: nn.Module, generator: torch.Generator) -> None:
    """Non-trivial BatchNorm and LayerNorm affine parameters and BatchNorm statistics (not 1 and 0)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d | nn.LayerNorm):
                module.weight.copy_(1 + 0.2 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=generator))
            if isinstance(module, nn.BatchNorm2d):
                assert module.running_mean is not None and module.running_var is not None
                module.running_mean.copy_(0.3 * torch.randn(module.running_mean.shape, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=generator))


# --- reference training -------------------------------------------------------------------------------------------
def write_fixture(fixture: Fixture, check_python: str) -> None:
    seed = sum(fixture.make.__name__.encode())  # one model and data for both exporters
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = fixture.make()
    randomize(model, generator)
    x = torch.randn((STEPS, BATCH, *fixture.example_shape), generator=generator)
    labels = torch.randint(0, fixture.classes, (STEPS, BATCH), generator=generator)

    graph = export(fixture, model, x[0])

    def parameters() -> dict[str, np.ndarray]:
        return {name: p.detach().numpy().copy() for name, p in model.named_parameters()}

    def buffers() -> dict[str, np.ndarray]:
        return {name: b.numpy().copy() for name, b in model.named_buffers() if b.dtype.is_floating_point}

    if fixture.batch_norm_folded:
        model = folded(model)
        trainable, frozen, held = match_initializers(graph, parameters(), buffers(), rtol=1e-5)
        initial = {init.name: numpy_helper.to_array(init) for init in graph.graph.initializer}
        named = dict(model.named_parameters())
        with torch.no_grad():  # start from the graph's folded values, not torch's (a rounding apart)
            for name, match in trainable.items():
                like = named[match.name].detach().numpy()
                named[match.name].copy_(torch.tensor(match.give(initial[name], like)))
    else:
        trainable, frozen, held = match_initializers(graph, parameters(), buffers())
    model.eval()
    with torch.no_grad():
        logits0 = model(x[0]).numpy()
    arrays: dict[str, np.ndarray] = {"x": x.numpy(), "labels": labels.numpy(), "logits_0": logits0}
    arrays |= steps_arrays(0, trainable, parameters(), held if fixture.batch_norm_training else {}, buffers())
    if fixture.batch_norm_training:
        model.train()
    # Otherwise eval mode throughout: BatchNorm normalizes with its running statistics, which stay as exported.
    losses = []
    for step in range(STEPS):
        model.zero_grad()
        loss = nn.functional.cross_entropy(model(x[step]), labels[step])
        loss.backward()
        with torch.no_grad():
            for parameter in model.parameters():
                assert parameter.grad is not None
                parameter -= LEARNING_RATE * parameter.grad
        losses.append(loss.item())
        arrays |= steps_arrays(
            step + 1, trainable, parameters(), held if fixture.batch_norm_training else {}, buffers()
        )
    arrays["losses"] = np.array(losses, np.float32)
    exporter = f"torch.onnx {fixture.exporter}" + ("" if fixture.optimize else " (optimize=False)")
    save(
        fixture.name,
        graph,
        arrays,
        trainable,
        frozen,
        check_python,
        description=fixture.description,
        exporter=exporter,
        framework=f"torch {torch.__version__}",
        batch_norm=_batch_norm_mode(fixture, graph),
    )


def _batch_norm_mode(fixture: Fixture, graph: onnx.ModelProto) -> str | None:
    if fixture.batch_norm_folded:
        return "folded into the Conv weights by the exporter (no BatchNormalization node)"
    if not any(node.op_type == "BatchNormalization" for node in graph.graph.node):
        return None
    if not fixture.batch_norm_training:
        return "eval mode (running statistics frozen)"
    return (
        "training mode: batch statistics (biased variance); running statistics updated, with torch's momentum 0.1 "
        "(ONNX's momentum 0.9) and the unbiased batch variance (ONNX's spec: biased)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="fixture names to write (default: all)")
    parser.add_argument(
        "--check-python",
        default=str(ROOT / ".venv" / "bin" / "python"),
        help="a Python with onnxruntime 1.19.2, to check each graph loads there",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, onnx {onnx.__version__}", file=sys.stderr)
    for fixture in FIXTURES:
        if not args.only or fixture.name in args.only:
            write_fixture(fixture, args.check_python)


if __name__ == "__main__":
    main()
