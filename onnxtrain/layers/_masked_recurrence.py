"""Keras' masked recurrence on ONNX's RNN, GRU and LSTM ops: a masked step leaves the states as they were, for any
mask (padding before the data, after it, or holes). Each sequence is compacted so that its unmasked steps come first,
in order; the op runs with sequence_lens = the number of them (its reverse direction then runs back from each
sequence's last unmasked step, as Keras' backward layer does), and the outputs are put back at the time steps they
belong to. The op's gradient rule takes sequence_lens (`autodiff/_recurrent_scan.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from onnxtrain.graph import GraphBuilder


@dataclass(frozen=True)
class Compaction:
    """One mask's compaction of a time-major sequence [steps, batch, features], emitted by `compact`."""

    steps: str  # the sequence with each example's unmasked steps first, in time order, then its masked ones
    lengths: str  # int32 [batch]: each example's unmasked steps, at least 1 (sequence_lens; see `compact`)
    counts: str  # int64 [steps, batch]: 1 at an unmasked step, else 0
    inclusive: str  # int64 [steps, batch]: the unmasked steps up to and including each step
    total: str  # int64 [1, batch]: each example's unmasked steps, 0 included

    def spread(self, builder: GraphBuilder, y: str, reverse: bool, zero_masked: bool) -> str:
        """A compacted direction's outputs y [steps, batch, units] (ONNX's Y: zeros beyond each length) at the time
        steps they belong to, in time order: at step t, the state after the unmasked steps up to t (forward) or
        from t on (reverse); zeros where it has seen none, and at every masked step with `zero_masked` (Keras'
        zero_output_for_mask, which Bidirectional sets when it returns sequences), else the state again there (the
        previous output, as Keras returns it)."""
        b = builder
        if reverse:  # the unmasked steps before t: where t, or the next unmasked step after it, sits
            index = b.node("Sub", [self.inclusive, self.counts], hint="before")
            seen = b.node("Less", [index, self.total], hint="seen")
        else:  # the last unmasked step up to t
            zero = b.constant(np.array(0, np.int64), "zero", np.int64)
            index = b.node("Max", [b.node("Sub", [self.inclusive, b.ints([1], "one")]), zero], hint="last_seen")
            seen = b.node("Greater", [self.inclusive, zero], hint="seen")
        if zero_masked:
            seen = b.node("Cast", [self.counts], hint="unmasked", to=TensorProto.BOOL)
        placed = _gather_steps(b, y, index)
        keep = b.node("Unsqueeze", [seen, b.ints([2], "axes")], hint="keep")
        return b.node("Where", [keep, placed, b.constant(np.float32(0.0))], hint="spread")

    def last(self, builder: GraphBuilder, y_h: str) -> str:
        """The last states y_h [batch, units] (one direction's Y_h), zeros where an example has no unmasked step (the
        initial state, as Keras; ONNX Runtime 1.19 runs such a sequence for the one step `compact` gives it)."""
        b = builder
        seen = b.node("Greater", [self.total, b.constant(np.array(0, np.int64), "zero", np.int64)])
        keep = b.node("Transpose", [seen], hint="keep", perm=[1, 0])  # [batch, 1]
        return b.node("Where", [keep, y_h, b.constant(np.float32(0.0))], hint="last")


def compact(builder: GraphBuilder, steps: str, mask: str, length: int) -> Compaction:
    """The compaction of `steps` [length, batch, features] (time-major) by `mask` [batch, length] (bool, True: a step
    to use). An example with no unmasked step gets length 1 (ONNX Runtime 1.19's recurrent kernels mishandle a
    length of 0: Y_h left unset at times); `Compaction.spread` and `last` give zeros there."""
    b = builder
    counts = b.node("Cast", [b.node("Transpose", [mask], hint="time_major_mask", perm=[1, 0])], to=TensorProto.INT64)
    inclusive = b.node("CumSum", [counts, b.constant(np.array(0, np.int64), "time_axis", np.int64)], hint="inclusive")
    total = b.reduce("ReduceSum", counts, [0], keepdims=True, hint="total")  # [1, batch]
    lengths = b.node("Max", [total, b.ints([1], "at_least_one")])
    lengths = b.node("Cast", [b.node("Squeeze", [lengths, b.ints([0], "axes")])], hint="lengths", to=TensorProto.INT32)
    # A key per step, largest first: the unmasked steps in time order, then the masked ones in time order.
    later_first = np.arange(length, 0, -1, dtype=np.float32).reshape(length, 1)
    key = b.node("Mul", [b.node("Cast", [counts], to=TensorProto.FLOAT), b.constant(np.float32(length), "length")])
    key = b.node("Add", [key, b.constant(later_first, "later_first")], hint="order_key")
    _, order = b.multi_output_node("TopK", [key, b.ints([length], "k")], 2, hint="order", axis=0)
    return Compaction(_gather_steps(b, steps, order), lengths, counts, inclusive, total)


def _gather_steps(builder: GraphBuilder, x: str, index: str) -> str:
    """x [steps, batch, width] at step index[t, b] ([steps, batch] int64) for each t and b."""
    b = builder
    spread = b.node("Expand", [b.node("Unsqueeze", [index, b.ints([2], "axes")]), b.node("Shape", [x])], hint="index")
    return b.node("GatherElements", [x, spread], hint="gathered", axis=0)
