"""ONNX's recurrent ops (RNN, GRU, LSTM): their settings, checked (`Recurrence`), and their unrolling into standard ops
(each node becomes its equations, one step per time step: Gemm, Add, Split, Squeeze, the gate activations, Mul,
Concat), which the per-op rules differentiate. `backward` unrolls the recurrent nodes on the path to the loss that
`_recurrent_scan.py`'s rule does not take (`unrolled_for_gradient`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper

from onnxtrain._graph_names import subgraph_reads
from onnxtrain.autodiff._context import GraphFacts, node_attributes
from onnxtrain.errors import UnsupportedError
from onnxtrain.graph import GraphBuilder

RECURRENT_OPS = frozenset({"RNN", "GRU", "LSTM"})
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_DEFAULT_ACTIVATIONS = {"RNN": ("Tanh",), "GRU": ("Sigmoid", "Tanh"), "LSTM": ("Sigmoid", "Tanh", "Tanh")}
# ONNX's activation names (case-insensitive, as ONNX Runtime reads them) that take no alpha or beta, and HardSigmoid
# with both given (Keras' hard_sigmoid: alpha 1/6, beta 0.5). The others that take them are refused, as is
# HardSigmoid without them: without activation_alpha, ONNX Runtime 1.19's kernels do not use the default alpha that
# ONNX's spec gives them (its RNN's HardSigmoid outputs zeros, its LSTM's ThresholdedRelu and Elu differ), so no
# answer is right.
_ACTIVATIONS = {name.lower(): name for name in ("Sigmoid", "Tanh", "Relu", "Softsign", "Softplus", "HardSigmoid")}
_TAKING_ALPHA_BETA = "HardSigmoid"


def is_recurrent(node: onnx.NodeProto) -> bool:
    return node.op_type in RECURRENT_OPS and node.domain in ("", "ai.onnx")


def unrolled_for_gradient(node: onnx.NodeProto, facts: GraphFacts) -> bool:
    """Whether `backward` differentiates recurrent `node` through its unrolled equations rather than through the rule
    of `_recurrent_scan.py`: LSTM's peepholes (P), which that rule does not take. Checks the node's settings first.

    Raises:
        UnsupportedError: naming the node, for the forms neither way differentiates (see `Recurrence.of`).
    """
    Recurrence.of(node, facts)
    return node.op_type == "LSTM" and len(node.input) > 7 and bool(node.input[7])


def unroll_recurrent(builder: GraphBuilder, nodes: Sequence[onnx.NodeProto]) -> int:
    """Replace each of `nodes` (RNN, GRU or LSTM nodes of `builder`) by its equations unrolled over the time steps,
    computing the outputs that anything reads under their own names. Returns how many were unrolled.

    Every attribute ONNX gives the ops is followed (direction, layout, hidden_size, clip, input_forget,
    linear_before_reset, the activations that take no alpha or beta) and every input (sequence_lens, initial_h,
    initial_c, P): a step at or beyond its sequence's length leaves the states as they were and outputs zeros in Y.

    Raises:
        UnsupportedError: naming the node: a sequence length unknown before run time (nothing to unroll over), or
            a form `Recurrence.of` refuses.
    """
    if not nodes:
        return 0
    facts = GraphFacts.of(builder)
    read = {name for node in builder.nodes for name in node.input} | subgraph_reads(builder.nodes)
    read |= {o.name for o in builder.outputs}
    for node in nodes:
        step = Recurrence.of(node, facts)
        if step.steps is None:
            shape = facts.shape(node.input[0])
            raise UnsupportedError(
                f"Cannot unroll {node.op_type} node {node.name!r} to differentiate it: its input X {node.input[0]!r} "
                f"has shape {'unknown' if shape is None else list(shape)}, and the sequence length (axis "
                f"{step.layout}) must be known before run time to unroll it (LSTM's peepholes P are differentiated "
                "through the unrolled equations; without them any length trains)."
            )
        with builder.scope(f"{node.name or node.op_type.lower()}_unrolled"), builder.replacing([node]) as replaced:
            for value, output in zip(step.emit(builder, read), node.output, strict=False):
                if value is not None:
                    replaced[value] = output
    return len(nodes)


def make_time_major(builder: GraphBuilder, nodes: Sequence[onnx.NodeProto]) -> None:
    """Replace each of `nodes` (recurrent nodes of `builder` with layout=1) by the same op in layout 0 between
    Transposes of its batch-major inputs and outputs: ONNX Runtime's kernels refuse layout 1."""
    for node in nodes:
        attributes = {k: v for k, v in node_attributes(node).items() if k != "layout"}
        inputs = list(node.input)
        with builder.scope(f"{node.name or node.op_type.lower()}_time_major"), builder.replacing([node]) as replaced:
            for index in (0, 5, 6):  # X, initial_h, initial_c
                if index < len(inputs) and inputs[index]:
                    inputs[index] = builder.node("Transpose", [inputs[index]], hint="time_major", perm=[1, 0, 2])
            outputs = builder.multi_output_node(
                node.op_type, inputs, len(node.output), hint=node.op_type.lower(), **attributes
            )
            for index, (value, name) in enumerate(zip(outputs, node.output, strict=True)):
                if name:  # Y [steps, directions, batch, hidden]; Y_h, Y_c [directions, batch, hidden]
                    perm = [2, 0, 1, 3] if index == 0 else [1, 0, 2]
                    replaced[builder.node("Transpose", [value], hint="batch_major", perm=perm)] = name


def _alpha_beta(node: onnx.NodeProto, attributes: dict[str, Any], taking: int) -> tuple[float, float] | None:
    """The alpha and beta of the node's `taking` HardSigmoid activations (ONNX Runtime consumes one of each per
    activation that takes them, in order): one pair, the same for each; None where none takes them."""
    given = [list(attributes.get(name, [])) for name in ("activation_alpha", "activation_beta")]
    if not taking and not any(given):
        return None
    pairs = set(zip(*given, strict=False))
    if not taking or any(len(values) != taking for values in given) or len(pairs) != 1:
        raise _refuse(
            node,
            f"activation_alpha={given[0]} and activation_beta={given[1]} are not one alpha and beta for each of its "
            f"{taking} HardSigmoid activation(s), the same for each (only HardSigmoid takes them here)",
        )
    alpha, beta = pairs.pop()
    return float(alpha), float(beta)


def _refuse(node: onnx.NodeProto, why: str) -> UnsupportedError:
    return UnsupportedError(f"The {node.op_type} node {node.name!r} cannot be differentiated: {why}.")


@dataclass(frozen=True)
class Recurrence:
    """One recurrent node's settings, checked: what `emit` unrolls and `_recurrent_scan.py` differentiates."""

    node: onnx.NodeProto
    steps: int | None  # the sequence length, None where it is known at run time only
    hidden: int
    directions: tuple[str, ...]  # "forward" and/or "reverse"
    activations: tuple[tuple[str, ...], ...]  # per direction: f (and g, h)
    layout: int
    clip: float | None
    input_forget: bool
    linear_before_reset: bool
    dtype: np.dtype
    sequence_lens: str  # each sequence's length [batch] (int32), or "": every sequence has all the steps
    hard_sigmoid: tuple[float, float] | None = None  # the alpha and beta of every HardSigmoid activation

    @classmethod
    def of(cls, node: onnx.NodeProto, facts: GraphFacts) -> Recurrence:
        """Raises:
        UnsupportedError: naming the node: an activation other than Sigmoid, Tanh, Relu, Softsign, Softplus and
            HardSigmoid; activation_alpha/activation_beta other than one alpha and beta, the same, for each
            HardSigmoid; or hidden_size unknown.
        """
        attributes = node_attributes(node)
        op = node.op_type
        inputs = [*node.input, *[""] * 8]
        layout = int(attributes.get("layout", 0))
        shape = facts.shape(inputs[0])
        steps = shape[layout] if shape is not None and len(shape) == 3 else None
        r_shape = facts.shape(inputs[2])
        hidden = attributes.get("hidden_size", r_shape[-1] if r_shape else None)
        if not isinstance(hidden, int):
            raise _refuse(node, "neither hidden_size nor the shape of R is known")
        direction = attributes.get("direction", "forward")
        directions = ("forward", "reverse") if direction == "bidirectional" else (direction,)
        if direction not in ("forward", "reverse", "bidirectional"):
            raise _refuse(node, f"direction={direction!r} is none of forward, reverse, bidirectional")
        given = attributes.get("activations", _DEFAULT_ACTIVATIONS[op] * len(directions))
        names = [a.decode() if isinstance(a, bytes) else str(a) for a in given]
        per = len(_DEFAULT_ACTIVATIONS[op])
        unknown = [a for a in names if a.lower() not in _ACTIVATIONS]
        if unknown or len(names) not in (per, per * len(directions)):
            raise _refuse(
                node,
                f"activations={names} is not {per * len(directions)} of {sorted(_ACTIVATIONS.values())}",
            )
        canonical = [_ACTIVATIONS[a.lower()] for a in names]
        hard_sigmoid = _alpha_beta(node, attributes, canonical.count(_TAKING_ALPHA_BETA))
        if len(canonical) == per:
            canonical *= len(directions)
        activations = tuple(tuple(canonical[d * per : (d + 1) * per]) for d in range(len(directions)))
        elem = facts.elem_type(inputs[0]) or onnx.TensorProto.FLOAT
        clip = attributes.get("clip")
        return cls(
            node=node,
            steps=steps if isinstance(steps, int) else None,
            hidden=hidden,
            directions=directions,
            activations=activations,
            layout=layout,
            clip=None if clip is None else float(clip),
            input_forget=bool(attributes.get("input_forget", 0)),
            linear_before_reset=bool(attributes.get("linear_before_reset", 0)),
            dtype=np.dtype(helper.tensor_dtype_to_np_dtype(elem)),
            sequence_lens=inputs[4],
            hard_sigmoid=hard_sigmoid,
        )

    def emit(self, b: GraphBuilder, read: set[str]) -> list[str | None]:
        """The node's outputs (Y, Y_h[, Y_c]) computed by standard ops; None for those nothing reads."""
        op, n = self.node.op_type, [*self.node.input, *[""] * 8]
        e = Emitter(b, self.dtype, self.hard_sigmoid)
        x = e.transpose(n[0], [1, 0, 2]) if self.layout else n[0]  # [steps, batch, features]
        state_inputs = [n[5], n[6] if op == "LSTM" else ""]
        if self.layout:
            state_inputs = [e.transpose(v, [1, 0, 2]) if v else "" for v in state_inputs]
        count = len(self.directions)
        ws, rs = e.per_direction(n[1], count), e.per_direction(n[2], count)
        bs = e.per_direction(n[3], count) if n[3] else [""] * count
        h0s = e.per_direction(state_inputs[0], count) if state_inputs[0] else [""] * count
        c0s = e.per_direction(state_inputs[1], count) if state_inputs[1] else [""] * count
        ps = e.per_direction(n[7], count) if op == "LSTM" and n[7] else [""] * count
        read_y, read_h, read_c = (_is_read(self.node, i, read) for i in range(3))
        ys, hs, cs = [], [], []
        valid = self._valid_steps(e, n[4])
        for d, direction in enumerate(self.directions):
            forward = direction == "forward"
            args = (ws[d], rs[d], bs[d], h0s[d], c0s[d], ps[d], self.activations[d], forward, valid)
            outputs, h_last, c_last = self._direction(e, x, *args)
            if read_y:  # Y holds each step's output at its time position, whichever way the direction runs
                positional = outputs if forward else outputs[::-1]
                ys.append(e.concat([e.unsqueeze(h, [0, 1]) for h in positional], 0))
            hs.append(e.unsqueeze(h_last, [0]) if read_h else "")
            cs.append(e.unsqueeze(c_last, [0]) if read_c else "")
        results: list[str | None] = [None] * len(self.node.output)
        if read_y:
            y = e.concat(ys, 1)  # [steps, directions, batch, hidden]
            results[0] = e.transpose(y, [2, 0, 1, 3]) if self.layout else y
        for index, states, wanted in ((1, hs, read_h), (2, cs, read_c)):
            if wanted:
                state = e.concat(states, 0)  # [directions, batch, hidden]
                results[index] = e.transpose(state, [1, 0, 2]) if self.layout else state
        return results

    def _direction(
        self,
        e: Emitter,
        x: str,
        w: str,
        r: str,
        bias: str,
        h0: str,
        c0: str,
        peephole: str,
        activations: tuple[str, ...],
        forward: bool,
        valid: list[str],
    ) -> tuple[list[str], str, str]:
        """Each step's output (Y) in processing order, and the last hidden and cell states ("" but for LSTM).
        `valid`: per time step, 1 where the step is within its sequence's length, else 0 ([batch, 1]; empty: every
        step is); an invalid step keeps the states and outputs zeros."""
        op, size, gates = self.node.op_type, self.hidden, GATES[self.node.op_type]
        b = e.b
        recurrent_h_bias = ""
        if bias:
            w_bias, r_bias = e.split(bias, [gates * size, gates * size], 0)
            if op == "GRU" and self.linear_before_reset:  # Rbh is added inside r * (...)
                w_zr, w_h = e.split(w_bias, [2 * size, size], 0)
                r_zr, recurrent_h_bias = e.split(r_bias, [2 * size, size], 0)
                input_bias = e.concat([b.node("Add", [w_zr, r_zr]), w_h], 0)
            else:
                input_bias = b.node("Add", [w_bias, r_bias], hint="bias")
        # Every step's input projection at once, as one Gemm over [steps * batch, features]. Gemm with transB, not
        # MatMul of a Transpose, which ONNX Runtime fuses into a FusedMatMul that has no double kernel.
        rows = b.node("Flatten", [x], hint="x_rows", axis=2)
        projected = b.node("Gemm", [rows, w, *([input_bias] if bias else [])], hint="x_w", transB=1)
        assert self.steps is not None  # checked by unroll_recurrent
        steps = b.node("Reshape", [projected, e.ints([self.steps, -1, gates * size], "shape")], hint="x_w_steps")
        xs = [e.squeeze(v, [0]) for v in e.split(steps, [1] * self.steps, 0)]
        if self.node.op_type == "GRU" and not self.linear_before_reset:
            r_t, r_h_t = e.split(r, [2 * size, size], 0)
        else:
            r_t, r_h_t = r, ""
        h, c = h0, c0
        outputs = []
        for t in range(self.steps) if forward else reversed(range(self.steps)):
            x_t = xs[t]
            if op == "RNN":
                pre = b.node("Add", [x_t, e.times_transposed(h, r_t)]) if h else x_t
                new_h, new_c = e.act(activations[0], e.clip(pre, self.clip)), ""
            elif op == "GRU":
                new_h, new_c = self._gru_step(e, x_t, h, r_t, r_h_t, recurrent_h_bias, activations), ""
            else:
                new_h, new_c = self._lstm_step(e, x_t, h, c, r_t, peephole, activations)
            if valid:  # beyond its length a sequence keeps its states, and Y is zero there
                outputs.append(b.node("Mul", [new_h, valid[t]], hint="y_t"))
                h, c = e.kept(valid[t], new_h, h), e.kept(valid[t], new_c, c) if new_c else ""
            else:
                outputs.append(new_h)
                h, c = new_h, new_c
        return outputs, h, c

    def _valid_steps(self, e: Emitter, sequence_lens: str) -> list[str]:
        """Per time step, [batch, 1] in the node's dtype: 1 where the step is within its sequence's length, else 0;
        empty without sequence_lens."""
        if not sequence_lens:
            return []
        b = e.b
        assert self.steps is not None  # checked by unroll_recurrent
        lengths = e.unsqueeze(b.node("Cast", [sequence_lens], hint="lengths", to=onnx.TensorProto.INT64), [1])
        elem = helper.np_dtype_to_tensor_dtype(self.dtype)
        return [
            b.node("Cast", [b.node("Less", [e.ints([t], "step"), lengths])], hint="valid", to=elem)
            for t in range(self.steps)
        ]

    def _gru_step(
        self, e: Emitter, x_t: str, h: str, r_t: str, r_h_t: str, r_h_bias: str, activations: tuple[str, ...]
    ) -> str:
        b, size, clip = e.b, self.hidden, self.clip
        f, g = activations
        x_z, x_r, x_h = e.split(x_t, [size] * 3, 1)
        if self.linear_before_reset:
            if h:
                h_z, h_r, h_h = e.split(e.times_transposed(h, r_t), [size] * 3, 1)
                z = e.act(f, e.clip(b.node("Add", [x_z, h_z]), clip))
                reset = e.act(f, e.clip(b.node("Add", [x_r, h_r]), clip))
                linear = b.node("Add", [h_h, r_h_bias]) if r_h_bias else h_h
                candidate = b.node("Add", [x_h, b.node("Mul", [reset, linear])])
            else:  # H_{t-1} = 0: the recurrent terms vanish but for Rbh
                z = e.act(f, e.clip(x_z, clip))
                reset = e.act(f, e.clip(x_r, clip)) if r_h_bias else ""
                candidate = b.node("Add", [x_h, b.node("Mul", [reset, r_h_bias])]) if r_h_bias else x_h
        elif h:
            h_z, h_r = e.split(e.times_transposed(h, r_t), [size] * 2, 1)
            z = e.act(f, e.clip(b.node("Add", [x_z, h_z]), clip))
            reset = e.act(f, e.clip(b.node("Add", [x_r, h_r]), clip))
            candidate = b.node("Add", [x_h, e.times_transposed(b.node("Mul", [reset, h]), r_h_t)])
        else:
            z, candidate = e.act(f, e.clip(x_z, clip)), x_h
        h_tilde = e.act(g, e.clip(candidate, clip))
        kept = b.node("Mul", [b.node("Sub", [e.one(), z]), h_tilde], hint="update")
        return b.node("Add", [kept, b.node("Mul", [z, h])], hint="h") if h else kept

    def _lstm_step(
        self, e: Emitter, x_t: str, h: str, c: str, r_t: str, peephole: str, activations: tuple[str, ...]
    ) -> tuple[str, str]:
        b, size, clip = e.b, self.hidden, self.clip
        f, g, h_act = activations
        pre = b.node("Add", [x_t, e.times_transposed(h, r_t)]) if h else x_t
        i_pre, o_pre, f_pre, c_pre = e.split(pre, [size] * 4, 1)
        p_i, p_o, p_f = e.split(peephole, [size] * 3, 0) if peephole else ("", "", "")
        if p_i and c:
            i_pre = b.node("Add", [i_pre, b.node("Mul", [p_i, c])])
            f_pre = b.node("Add", [f_pre, b.node("Mul", [p_f, c])])
        i = e.act(f, e.clip(i_pre, clip))
        forget = b.node("Sub", [e.one(), i]) if self.input_forget else e.act(f, e.clip(f_pre, clip))
        cell = b.node("Mul", [i, e.act(g, e.clip(c_pre, clip))], hint="input_times_cell")
        if c:
            cell = b.node("Add", [b.node("Mul", [forget, c]), cell], hint="c")
        if p_o:
            o_pre = b.node("Add", [o_pre, b.node("Mul", [p_o, cell])])
        o = e.act(f, e.clip(o_pre, clip))
        return b.node("Mul", [o, e.act(h_act, cell)], hint="h"), cell


def _is_read(node: onnx.NodeProto, index: int, read: set[str]) -> bool:
    """Whether output `index` of `node` exists and anything reads it."""
    return index < len(node.output) and bool(node.output[index]) and node.output[index] in read


class Emitter:
    """The few idioms the recurrent equations are written with (unrolled here, batched in `_recurrent_scan.py`), in
    the builder's opset and the node's dtype."""

    def __init__(self, b: GraphBuilder, dtype: np.dtype, hard_sigmoid: tuple[float, float] | None = None):
        self.b = b
        self.dtype = dtype
        self.hard_sigmoid = hard_sigmoid  # HardSigmoid's alpha and beta
        self._one = ""
        self._bounds: dict[float, tuple[str, str]] = {}

    def ints(self, values: Sequence[int], hint: str) -> str:
        return self.b.constant(np.array(values, np.int64), hint, np.int64)

    def one(self) -> str:
        if not self._one:
            self._one = self.b.constant(np.ones((), self.dtype), "one", self.dtype)
        return self._one

    def clip(self, value: str, threshold: float | None) -> str:
        if threshold is None:
            return value
        if threshold not in self._bounds:
            self._bounds[threshold] = (
                self.b.constant(np.array(-threshold, self.dtype), "clip_min", self.dtype),
                self.b.constant(np.array(threshold, self.dtype), "clip_max", self.dtype),
            )
        return self.b.node("Clip", [value, *self._bounds[threshold]], hint="clipped")

    def act(self, name: str, value: str) -> str:
        if name == _TAKING_ALPHA_BETA:
            assert self.hard_sigmoid is not None, "Recurrence.of takes HardSigmoid with its alpha and beta only"
            alpha, beta = self.hard_sigmoid
            return self.b.node(name, [value], hint=name.lower(), alpha=alpha, beta=beta)
        return self.b.node(name, [value], hint=name.lower())

    def times_transposed(self, a: str, b: str) -> str:
        """a @ b^T of two matrices."""
        return self.b.node("Gemm", [a, b], hint="h_r", transB=1)

    def transpose(self, value: str, perm: list[int]) -> str:
        return self.b.node("Transpose", [value], hint="transposed", perm=perm)

    def squeeze(self, value: str, axes: list[int]) -> str:
        return self.b.node("Squeeze", [value, self.ints(axes, "axes")], hint="squeezed")

    def kept(self, valid: str, new: str, old: str) -> str:
        """valid * new + (1 - valid) * old: the state a step of `valid` (1 or 0 per row) leaves; `old` "" is zeros."""
        b = self.b
        taken = b.node("Mul", [new, valid], hint="taken")
        if not old:
            return taken
        return b.node("Add", [taken, b.node("Mul", [old, b.node("Sub", [self.one(), valid])])], hint="kept")

    def unsqueeze(self, value: str, axes: list[int]) -> str:
        return self.b.node("Unsqueeze", [value, self.ints(axes, "axes")], hint="unsqueezed")

    def split(self, value: str, sizes: list[int], axis: int) -> list[str]:
        if len(sizes) == 1:
            return [value]
        return self.b.multi_output_node("Split", [value, self.ints(sizes, "split")], len(sizes), "part", axis=axis)

    def concat(self, values: list[str], axis: int) -> str:
        return values[0] if len(values) == 1 else self.b.node("Concat", values, hint="stacked", axis=axis)

    def per_direction(self, value: str | None, count: int, axis: int = 0) -> list[str]:
        """`value` with its directions on `axis` ([directions, ...] by default) as one value per direction, without
        that axis; "" for each where `value` is absent."""
        if not value:
            return [""] * count
        return [self.squeeze(part, [axis]) for part in self.split(value, [1] * count, axis)]
