"""Write real exporters' ONNX graphs with torch's reference training: tests/data/onnx_models/<name>.{onnx,npz,json}.

Each fixture is a small torch model exported by torch.onnx (the TorchScript exporter, `dynamo=False`, or the dynamo
exporter), five fixed batches with labels, and the weights after each of five plain SGD steps (no momentum) on the
mean softmax cross-entropy of the logits, computed by torch in float32. The tests import the graph, append the
loss, differentiate it with onnxtrain.autodiff and compare their weights with torch's, without torch installed.
The format (keys, trainable set, how exporters rename weights) is in tests/data/onnx_models/README.md.

Exporters fold and rename weights (TorchScript's constant folding turns a Linear's weight on a 3-D input into the
transposed initializer `onnx::MatMul_123`): each float initializer is matched to the torch parameter or buffer of
equal value, as is or transposed, and torch's weights after each step are stored under the initializer's name,
transformed the same way. Initializers matched to a parameter are the trainable set; the other float initializers
(BatchNorm's running statistics, folded constants) are frozen.

Runs in a Python with torch, onnx and onnxscript (not onnxtrain's); checks that each graph loads in onnxtrain's
ONNX Runtime 1.19.2 by running `--check-python` on it. Seconds.

Usage: /work/venv-torch/bin/python tools/onnx_fixtures.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "onnx_models"
STEPS = 5
BATCH = 4
LEARNING_RATE = 0.1
TORCHSCRIPT_OPSET = 17  # ONNX Runtime 1.19.2 (onnxtrain's) loads IR <= 10; opset 17 is IR 8
DYNAMO_OPSET = 20  # the first opset with Gelu; IR 9
KERAS_FIXTURE = "keras_cnn_torch"


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


@dataclass(frozen=True)
class Match:
    """The framework's weight `name` that an initializer holds: `weight.transpose(perm).reshape(shape)`."""

    name: str
    perm: tuple[int, ...]
    shape: tuple[int, ...]

    def take(self, weights: dict[str, np.ndarray]) -> np.ndarray:
        return np.ascontiguousarray(weights[self.name].transpose(self.perm).reshape(self.shape))

    def is_identity(self) -> bool:
        return self.perm == tuple(range(len(self.perm))) and len(self.shape) == len(self.perm)

    def __str__(self) -> str:
        changes = []
        if self.perm != tuple(range(len(self.perm))):
            changes.append("transposed" if self.perm == (1, 0) else f"axes {self.perm}")
        if len(self.shape) != len(self.perm):
            changes.append(f"reshaped to {list(self.shape)}")
        return f"{self.name} ({', '.join(changes)})" if changes else self.name


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


def match_initializers(
    graph: onnx.ModelProto, parameters: dict[str, np.ndarray], buffers: dict[str, np.ndarray]
) -> tuple[dict[str, Match], list[str], dict[str, str]]:
    """Trainable initializer -> the parameter it holds; the frozen float initializers; and frozen initializer -> the
    buffer it holds (BatchNorm's running statistics). Matched by value, as is or with its axes permuted."""
    trainable: dict[str, Match] = {}
    frozen: list[str] = []
    held: dict[str, str] = {}
    for init in graph.graph.initializer:
        value = numpy_helper.to_array(init)
        if value.dtype.kind != "f":
            continue
        found = next(
            (
                match
                for name, array in {**buffers, **parameters}.items()
                for perm in itertools.permutations(range(array.ndim))
                if array.size == value.size
                and np.array_equal((match := Match(name, perm, value.shape)).take({name: array}), value)
            ),
            None,
        )
        if found and found.name in parameters:
            trainable[init.name] = found
        else:
            frozen.append(init.name)
            if found and found.is_identity():
                held[init.name] = found.name
    matched = [match.name for match in trainable.values()]
    if sorted(matched) != sorted(parameters):
        raise SystemExit(
            f"each parameter must match exactly one initializer of the exported graph. Received: parameters "
            f"{sorted(parameters)}, matched {sorted(matched)}"
        )
    return trainable, frozen, held


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


def steps_arrays(
    step: int,
    trainable: dict[str, Match],
    parameters: dict[str, np.ndarray],
    held: dict[str, str],
    buffers: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """The npz entries of the weights (`step_<k>/`) and trained statistics (`state_<k>/`) after step k."""
    arrays = {f"step_{step}/{name}": match.take(parameters) for name, match in trainable.items()}
    return arrays | {f"state_{step}/{name}": buffers[buffer] for name, buffer in held.items()}


def save(
    name: str,
    graph: onnx.ModelProto,
    arrays: dict[str, np.ndarray],
    trainable: dict[str, Match],
    frozen: list[str],
    check_python: str,
    **description: object,
) -> None:
    """Check the graph and write `<name>.onnx`, `.npz` and `.json`."""
    onnx.checker.check_model(graph, full_check=True)
    OUT.mkdir(parents=True, exist_ok=True)
    onnx.save(graph, OUT / f"{name}.onnx")
    np.savez_compressed(OUT / f"{name}.npz", **arrays)
    opset = next(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx"))
    losses = arrays["losses"]
    meta: dict[str, object] = {
        "description": description.pop("description"),
        "exporter": description.pop("exporter"),
        "framework": description.pop("framework"),
        "opset": opset,
        "ir_version": graph.ir_version,
        "ops": sorted({node.op_type for node in graph.graph.node}),
        "input": graph.graph.input[0].name,
        "output": graph.graph.output[0].name,
        "classes": int(arrays["logits_0"].shape[-1]),
        "loss": "softmax_cross_entropy_with_logits (mean over the batch)",
        "optimizer": "SGD, no momentum, no weight decay",
        "learning_rate": LEARNING_RATE,
        "steps": STEPS,
        **description,
        "trainable": {init: str(match) for init, match in trainable.items()},
        "frozen": frozen,
        "loads_in_onnxruntime_1_19": _loads(check_python, OUT / f"{name}.onnx"),
    }
    (OUT / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = sum((OUT / f"{name}{s}").stat().st_size for s in (".onnx", ".npz", ".json"))
    print(
        f"{name}: opset {opset}, IR {graph.ir_version}, {len(graph.graph.node)} nodes, "
        f"{len(trainable)} trainable, {len(frozen)} frozen, loss {losses[0]:.4f} -> {losses[-1]:.4f}, "
        f"{size / 1024:.1f} KiB, ORT 1.19 loads: {meta['loads_in_onnxruntime_1_19']}"
    )


def write_keras_fixture(name: str, check_python: str) -> None:
    """A Keras 3 model (torch backend) exported by `model.export(format="onnx")` (Keras' own exporter, which traces
    the torch backend with torch.onnx's TorchScript exporter), trained by Keras' SGD on its
    SparseCategoricalCrossentropy(from_logits=True). No normalization layer: Keras' BatchNormalization export folds
    gamma / sqrt(var + eps) into one constant, a parameterization Keras does not train, and its LayerNormalization
    does not export with a dynamic batch (the TorchScript exporter: "Failed to export a node ... because it is not
    constant", keras 3.15.1)."""
    os.environ["KERAS_BACKEND"] = "torch"
    import keras

    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(8, activation="gelu"),
            keras.layers.Dense(3),
        ]
    )
    # Random biases (not zeros), so no two weights are equal.
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in model.weights])
    x = rng.normal(size=(STEPS, BATCH, 6, 6, 1)).astype(np.float32)
    labels = rng.integers(0, 3, size=(STEPS, BATCH)).astype(np.int64)
    logits0 = np.asarray(model(x[0], training=False).detach().cpu())
    with tempfile.TemporaryDirectory() as directory, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.export(f"{directory}/model.onnx", format="onnx", verbose=False)
        graph = onnx.load(f"{directory}/model.onnx")

    def parameters() -> dict[str, np.ndarray]:
        return {w.path: np.asarray(w.numpy()).copy() for w in model.trainable_weights}

    trainable, frozen, _ = match_initializers(graph, parameters(), {})
    model.compile(
        optimizer=keras.optimizers.SGD(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    arrays: dict[str, np.ndarray] = {"x": x, "labels": labels, "logits_0": logits0}
    arrays |= steps_arrays(0, trainable, parameters(), {}, {})
    losses = []
    for step in range(STEPS):
        losses.append(float(model.train_on_batch(x[step], labels[step])))
        arrays |= steps_arrays(step + 1, trainable, parameters(), {}, {})
    arrays["losses"] = np.array(losses, np.float32)
    save(
        name,
        graph,
        arrays,
        trainable,
        frozen,
        check_python,
        description="Keras Sequential: Conv2D (relu, channels last), GlobalAveragePooling2D, Dense (gelu, exact "
        "form), Dense",
        exporter="Keras model.export(format='onnx'), torch backend (torch.onnx TorchScript)",
        framework=f"Keras {keras.__version__}, torch {torch.__version__}",
        batch_norm=None,
    )


def _batch_norm_mode(fixture: Fixture, graph: onnx.ModelProto) -> str | None:
    if not any(node.op_type == "BatchNormalization" for node in graph.graph.node):
        return None
    if not fixture.batch_norm_training:
        return "eval mode (running statistics frozen)"
    return (
        "training mode: batch statistics (biased variance); running statistics updated, with torch's momentum 0.1 "
        "(ONNX's momentum 0.9) and the unbiased batch variance (ONNX's spec: biased)"
    )


def _loads(python: str, path: Path) -> bool | str:
    """Whether onnxtrain's ONNX Runtime (1.19.2) builds a session of the graph; the error's first line if not."""
    code = "import sys, onnxruntime as o; o.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])"
    done = subprocess.run([python, "-c", code, str(path)], capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return True
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"


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
    if not args.only or KERAS_FIXTURE in args.only:
        write_keras_fixture(KERAS_FIXTURE, args.check_python)


if __name__ == "__main__":
    main()
