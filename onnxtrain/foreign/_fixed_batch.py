"""Whether an imported graph exported for one batch size runs at another: a probe in ONNX Runtime at import.

torch.onnx.export without dynamic_axes (TorchScript) or dynamic_shapes (dynamo) writes the example's batch into
shape constants, and not only batch-first ones: nn.MultiheadAttention reshapes its seq-first view to
[seq, batch * heads, head_dim], so a static look at Reshape nodes (`_graph.check_batch_not_fixed`) misses it. The
graph is run on zeros at batches 1 and 2 (at least one of them is not n, and a shape constant holding n fits
neither but by chance); when one fails or gives other rows while the exported batch n runs, the batch is fixed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import onnx

from onnxtrain.errors import UnsupportedError
from onnxtrain.foreign import _graph
from onnxtrain.foreign._graph import Shape


def exported_batch(model: onnx.ModelProto) -> int | None:
    """The batch size the file's data inputs were exported with: their common first dimension when it is a
    number (before `_graph.with_dynamic_batch` makes it symbolic); None when one is symbolic or they differ."""
    weights = {t.name for t in model.graph.initializer}
    firsts = {
        int(dims[0].dim_value) if dims[0].HasField("dim_value") else None
        for value in model.graph.input
        if value.name not in weights and (dims := value.type.tensor_type.shape.dim)
    }
    if len(firsts) != 1:
        return None
    batch = firsts.pop()
    return batch if batch is not None and batch > 0 else None


def zero_feeds(
    data_inputs: Sequence[onnx.ValueInfoProto],
    data_shapes: Sequence[Shape],
    weight_shapes: dict[str, Shape],
    batch: int,
) -> dict[str, np.ndarray]:
    """Zeros for every input of a stripped graph: the data inputs at `batch`, the weights at their shapes."""
    feeds = {
        value.name: np.zeros((batch, *shape), _graph.numpy_dtype(value))
        for value, shape in zip(data_inputs, data_shapes, strict=True)
    }
    return feeds | {name: np.zeros(shape, np.float32) for name, shape in weight_shapes.items()}


def check_batch_varies(
    stripped: onnx.ModelProto,
    data_inputs: Sequence[onnx.ValueInfoProto],
    data_shapes: Sequence[Shape],
    weight_shapes: dict[str, Shape],
    batch: int,
    owner: str,
) -> None:
    """Refuse `stripped` (batch made symbolic) when it runs at the exported `batch` but not at another.

    It runs at batches 1 and 2 first, small whatever the exported batch (a ResNet exported at 64 is not run at 65);
    only when one of them fails, or gives another number of rows, does it run at `batch` itself, to tell a fixed
    batch from a graph that cannot run on zeros at all (an op ORT refuses): that one passes, and the engine reports
    what it meets.

    Raises:
        UnsupportedError: naming the exported batch, the node ONNX Runtime failed at and the fix.
    """
    import onnxruntime as ort  # the inference API only; imported here to keep importing onnxtrain light

    options = ort.SessionOptions()
    options.log_severity_level = 4  # the failure expected here is reported below, not as ORT's red log line
    options.intra_op_num_threads = 1
    run_options = ort.RunOptions()
    run_options.log_severity_level = 4
    try:
        session = ort.InferenceSession(stripped.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception:  # ORT's own error types: nothing is proven about the batch
        return

    def rows_at(size: int) -> tuple[int, ...] | Exception:
        try:
            outputs = session.run(None, zero_feeds(data_inputs, data_shapes, weight_shapes, size), run_options)
        except Exception as e:  # ORT's own error types
            return e
        return tuple(outputs[0].shape)

    for other in (1, 2):
        found = rows_at(other)
        if isinstance(found, Exception) or found[:1] != (other,):
            break
    else:
        return
    if other == batch:
        return  # it fails at the exported batch itself: nothing is proven about the batch
    at_batch = rows_at(batch)
    if isinstance(at_batch, Exception) or at_batch[:1] != (batch,):
        return
    fix = _fix([v.name for v in data_inputs], stripped.graph.output[0].name)
    who = "" if owner in _graph.COMMANDS else f"{owner}: "  # a command's error line names the command already
    if isinstance(found, Exception):
        raise UnsupportedError(
            f"{who}the graph was exported for a batch of exactly {batch} and cannot run another: at a batch of "
            f"{other}, ONNX Runtime fails in {_where(str(found))}. Its shape constants hold the exported batch "
            f"(torch.onnx.export writes them so without dynamic axes). {fix}"
        ) from found
    raise UnsupportedError(
        f"{who}the graph was exported for a batch of exactly {batch}: a batch of {other} gives an output of shape "
        f"{list(found)}, not {other} {'row' if other == 1 else 'rows'}, so its shape constants mix the examples of "
        f"a batch. {fix}"
    )


def _fix(inputs: list[str], output: str) -> str:
    """How to export the graph again with a dynamic batch, with its own input and output names."""
    axes = ", ".join(f"{name!r}: {{0: 'batch'}}" for name in [*inputs, output])
    shapes = ", ".join("{0: batch}" for _ in inputs)
    return (
        f"Export the model again with a dynamic batch (torch: torch.onnx.export(..., dynamic_axes={{{axes}}}), or "
        f"dynamo=True with dynamic_shapes=({shapes},) where batch = torch.export.Dim('batch'))."
    )


def _where(error: str) -> str:
    """The node and reason in ONNX Runtime's error text ("the Reshape node '/enc/Reshape_5': The input tensor
    cannot be reshaped ..."), without the C++ source location."""
    text = " ".join(error.split())
    node = re.search(r"running (\w+) node\. Name:'([^']*)'", text)
    reason = text.split("Status Message:", 1)[-1].strip()
    reason = reason.split(" was false. ", 1)[-1] if " was false. " in reason else reason
    reason = reason if len(reason) <= 200 else "…" + reason[-200:]
    return f"the {node.group(1)} node {node.group(2)!r}: {reason}" if node else reason
