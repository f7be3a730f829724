"""The idioms the Scan rule of RNN, GRU and LSTM (`_recurrent_scan.py`) is written with: sequences as rows and as
[steps, batch, width] for a Scan, a sequence one step later, a Scan over time whose body the caller emits, and a
gate's activation with its slope."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from onnxtrain.autodiff._recurrent import Emitter
from onnxtrain.graph import GraphBuilder

_END = int(np.iinfo(np.int64).max)  # a Slice end past any length
# A Scan body: (its state inputs, its scan inputs: one step's slices) -> (its new states, its scan outputs)
Body = Callable[[list[str], list[str]], tuple[list[str], list[str]]]


class StepEmitter(Emitter):
    """`Emitter`'s idioms and those of sequences over the steps of time-major `x` [steps, batch, features], for a
    node of `hidden` units whose gates clip at `threshold` (None: no clip)."""

    def __init__(
        self,
        b: GraphBuilder,
        dtype: np.dtype,
        hidden: int,
        threshold: float | None,
        x: str,
        hard_sigmoid: tuple[float, float] | None = None,
    ):
        super().__init__(b, dtype, hard_sigmoid)
        self.size, self.threshold = hidden, threshold
        self.elem = helper.np_dtype_to_tensor_dtype(dtype)
        self._zero, self._zeros = "", ""
        shape = b.node("Shape", [x], hint="x_shape")
        self.steps_shape = b.node("Slice", [shape, self.ints([0], "start"), self.ints([2], "end")], hint="steps_batch")

    def scan(
        self, hint: str, states: list[str], sequences: Sequence[tuple[str, int]], body: Body, reverse: bool
    ) -> list[str]:
        """A Scan over the steps of `sequences` ((value [steps, batch, width], width)) carrying `states` ([batch,
        hidden]), last step first where `reverse`; returns its final states, then its scan outputs in time order."""
        b = self.b
        state_names = [b.unique_name(f"{hint}_state") for _ in states]
        step_names = [b.unique_name(f"{hint}_step") for _ in sequences]
        with b.subgraph() as nodes:
            new_states, outputs = body(state_names, step_names)
        widths = [self.size] * len(states) + [width for _, width in sequences]
        inputs = [
            helper.make_tensor_value_info(name, self.elem, [None, width])
            for name, width in zip([*state_names, *step_names], widths, strict=True)
        ]
        results = [helper.make_tensor_value_info(name, self.elem, None) for name in [*new_states, *outputs]]
        direction = int(reverse)
        return b.multi_output_node(
            "Scan",
            [*states, *(value for value, _ in sequences)],
            len(new_states) + len(outputs),
            hint=hint,
            body=helper.make_graph(nodes, hint, inputs, results),
            num_scan_inputs=len(sequences),
            scan_input_directions=[direction] * len(sequences),
            scan_output_directions=[direction] * len(outputs),
        )

    def gate(self, activation: str, pre: str) -> tuple[str, str]:
        """(activation(clip(pre)), its derivative with respect to pre)."""
        b, clip = self.b, self.threshold
        clipped = self.clip(pre, clip)
        value = self.act(activation, clipped)
        slope = self.slope(activation, clipped, value)
        if clip is not None:  # Clip passes no gradient outside its bounds
            bound = self._bounds[clip][1]  # clip's upper bound, made by `self.clip` above
            inside = b.node("LessOrEqual", [b.node("Abs", [pre]), bound], hint="inside_clip")
            slope = b.node("Mul", [slope, b.node("Cast", [inside], to=self.elem)], hint="clipped_slope")
        return value, slope

    def slope(self, activation: str, pre: str, value: str) -> str:
        """d activation(pre) / d pre, from pre and value = activation(pre)."""
        b, e = self.b, self
        if activation == "Sigmoid":
            return b.node("Mul", [value, b.node("Sub", [e.one(), value])], hint="sigmoid_slope")
        if activation == "Tanh":
            return b.node("Sub", [e.one(), b.node("Mul", [value, value])], hint="tanh_slope")
        if activation == "Relu":
            if not self._zero:
                self._zero = b.constant(np.zeros((), self.dtype), "zero", self.dtype)
            return b.node("Cast", [b.node("Greater", [pre, self._zero])], hint="relu_slope", to=self.elem)
        if activation == "Softsign":
            denominator = b.node("Add", [e.one(), b.node("Abs", [pre])])
            return b.node("Reciprocal", [b.node("Mul", [denominator, denominator])], hint="softsign_slope")
        if activation == "HardSigmoid":  # alpha where 0 < value < 1, else 0
            assert self.hard_sigmoid is not None, "Recurrence.of takes HardSigmoid with its alpha and beta only"
            if not self._zero:
                self._zero = b.constant(np.zeros((), self.dtype), "zero", self.dtype)
            inside = b.node("And", [b.node("Greater", [value, self._zero]), b.node("Less", [value, e.one()])])
            alpha = b.constant(np.array(self.hard_sigmoid[0], self.dtype), "alpha", self.dtype)
            return b.node("Mul", [b.node("Cast", [inside], to=self.elem), alpha], hint="hard_sigmoid_slope")
        assert activation == "Softplus", activation  # `Recurrence.of` admits no other
        return b.node("Sigmoid", [pre], hint="softplus_slope")

    def shifted(self, sequence3: str, first3: str, reverse: bool) -> str:
        """`sequence3` [steps, ...] moved one step later in processing order, `first3` [1, ...] at the first step."""
        e, b = self, self.b
        if reverse:
            later = b.node("Slice", [sequence3, e.ints([1], "start"), e.ints([_END], "end"), e.ints([0], "axis")])
            return e.concat([later, first3], 0)
        earlier = b.node("Slice", [sequence3, e.ints([0], "start"), e.ints([-1], "end"), e.ints([0], "axis")])
        return e.concat([first3, earlier], 0)

    def steps(self, rows: str, width: int) -> str:
        """Rows [steps * batch, width] as [steps, batch, width]."""
        shape = self.concat([self.steps_shape, self.ints([width], "width")], 0)
        return self.b.node("Reshape", [rows, shape], hint="steps")

    def column_sums(self, rows: str) -> str:
        return self.b.reduce("ReduceSum", rows, [0], keepdims=False, hint="bias_grad")

    def zeros_state(self) -> str:
        """Zeros [batch, hidden]: the initial state ONNX takes where none is given, and the gradient that flows into
        the last one where the loss does not read it."""
        if not self._zeros:
            e, b = self, self.b
            batch = b.node("Slice", [self.steps_shape, e.ints([1], "start"), e.ints([2], "end")], hint="batch")
            shape = e.concat([batch, e.ints([self.size], "hidden")], 0)
            zero = numpy_helper.from_array(np.zeros(1, self.dtype))
            self._zeros = b.node("ConstantOfShape", [shape], hint="zeros", value=zero)
        return self._zeros

    def valid_steps(self, sequence_lens: str) -> str:
        """[steps, batch, 1] in the node's dtype: 1 where a step is within its sequence's length (`sequence_lens`,
        [batch] int32), 0 beyond it."""
        b, e = self.b, self
        start, step = (b.constant(np.array(v, np.int64), "range", np.int64) for v in (0, 1))
        steps = b.node("Squeeze", [b.node("Slice", [self.steps_shape, e.ints([0], "start"), e.ints([1], "end")])])
        time = e.unsqueeze(b.node("Range", [start, steps, step], hint="time"), [1])
        lengths = e.unsqueeze(b.node("Cast", [sequence_lens], hint="lengths", to=TensorProto.INT64), [0])
        within = b.node("Less", [time, lengths], hint="within")  # [steps, batch]
        return e.unsqueeze(b.node("Cast", [within], hint="valid", to=self.elem), [2])

    def total(self, dh: str, dy_t: str) -> str:
        """dL/dh_t in a Scan body: from the later steps, plus from Y where it enters the loss."""
        return self.b.node("Add", [dh, dy_t], hint="gh") if dy_t else self.b.node("Identity", [dh], hint="gh")
