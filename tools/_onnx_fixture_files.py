"""What the ONNX fixture tools share: matching a graph's initializers to the framework's weights, and writing
tests/data/onnx_models/<name>.{onnx,npz,json} (format: tests/data/onnx_models/README.md). numpy and onnx only, so
that it runs in the torch and the TensorFlow venvs alike."""

from __future__ import annotations

import itertools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "onnx_models"
STEPS = 5
BATCH = 4
LEARNING_RATE = 0.1


@dataclass(frozen=True)
class Match:
    """The framework's weight `name` that an initializer holds: `weight.transpose(perm).reshape(shape)`."""

    name: str
    perm: tuple[int, ...]
    shape: tuple[int, ...]

    def take(self, weights: dict[str, np.ndarray]) -> np.ndarray:
        return np.ascontiguousarray(weights[self.name].transpose(self.perm).reshape(self.shape))

    def give(self, value: np.ndarray, like: np.ndarray) -> np.ndarray:
        """The initializer's `value` in the framework's layout (shaped like `like`): the inverse of `take`."""
        transposed = value.reshape(like.transpose(self.perm).shape)
        return np.ascontiguousarray(transposed.transpose(np.argsort(self.perm)))

    def is_identity(self) -> bool:
        return self.perm == tuple(range(len(self.perm))) and len(self.shape) == len(self.perm)

    def __str__(self) -> str:
        changes = []
        if self.perm != tuple(range(len(self.perm))):
            changes.append("transposed" if self.perm == (1, 0) else f"axes {self.perm}")
        if len(self.shape) != len(self.perm):
            changes.append(f"reshaped to {list(self.shape)}")
        return f"{self.name} ({', '.join(changes)})" if changes else self.name


def match_initializers(
    graph: onnx.ModelProto, parameters: dict[str, np.ndarray], buffers: dict[str, np.ndarray], rtol: float = 0.0
) -> tuple[dict[str, Match], list[str], dict[str, str]]:
    """Trainable initializer -> the parameter it holds; the frozen float initializers; and frozen initializer -> the
    buffer it holds (BatchNorm's running statistics). Matched by value (equal, or within `rtol` for weights that the
    exporter computed, as folded BatchNorm), as is, with its axes permuted or reshaped."""
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
                and _same((match := Match(name, perm, value.shape)).take({name: array}), value, rtol)
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
        "loads_in_onnxruntime_1_19": loads_in_onnxruntime(check_python, OUT / f"{name}.onnx"),
    }
    (OUT / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = sum((OUT / f"{name}{s}").stat().st_size for s in (".onnx", ".npz", ".json"))
    print(
        f"{name}: opset {opset}, IR {graph.ir_version}, {len(graph.graph.node)} nodes, "
        f"{len(trainable)} trainable, {len(frozen)} frozen, loss {losses[0]:.4f} -> {losses[-1]:.4f}, "
        f"{size / 1024:.1f} KiB, ORT 1.19 loads: {meta['loads_in_onnxruntime_1_19']}"
    )


def loads_in_onnxruntime(python: str, path: Path) -> bool | str:
    """Whether onnxtrain's ONNX Runtime (1.19.2) builds a session of the graph; the error's first line if not."""
    code = "import sys, onnxruntime as o; o.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])"
    done = subprocess.run([python, "-c", code, str(path)], capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return True
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"


def _same(a: np.ndarray, b: np.ndarray, rtol: float) -> bool:
    return bool(np.allclose(a, b, rtol=rtol, atol=0.0)) if rtol else bool(np.array_equal(a, b))
