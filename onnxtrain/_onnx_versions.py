"""The opset and IR versions of what onnxtrain emits: the defaults, and `check_opset_and_ir`, which refuses a pair
outside what it can emit."""

from __future__ import annotations

import onnx

from onnxtrain.errors import InvalidArgumentError

DEFAULT_OPSET = 17
# ONNX Runtime 1.19 (the last onnxruntime-training release) loads IR versions up to 10; 8 is the IR version that
# belongs to opset 17, and the widest-loadable choice for other runtimes.
DEFAULT_IR_VERSION = 8
MAX_ORT_TRAINING_IR_VERSION = 10


def check_opset_and_ir(opset: int, ir_version: int) -> None:
    """Raise when the opset or IR version is outside what onnxtrain can emit."""
    latest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or isinstance(opset, bool) or not 13 <= opset <= latest:
        raise InvalidArgumentError(f"opset expects an int in [13, {latest}]. Received: opset={opset!r}")
    needed = min_ir_version(opset)
    if not isinstance(ir_version, int) or isinstance(ir_version, bool) or not needed <= ir_version <= onnx.IR_VERSION:
        raise InvalidArgumentError(
            f"ir_version expects an int in [{needed}, {onnx.IR_VERSION}] for opset {opset} "
            f"(ONNX Runtime 1.19 loads at most {MAX_ORT_TRAINING_IR_VERSION}). Received: ir_version={ir_version!r}"
        )


def min_ir_version(opset: int) -> int:
    """The oldest IR version that holds `opset`."""
    # VERSION_TABLE rows are (onnx release, IR version, ai.onnx opset, ai.onnx.ml opset[, training opset]).
    return min((row[1] for row in onnx.helper.VERSION_TABLE if row[2] >= opset), default=onnx.IR_VERSION)
