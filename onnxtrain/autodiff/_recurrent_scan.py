"""The gradient rule of ONNX's RNN, GRU and LSTM ops at any sequence length, without unrolling them. The forward stays
the op (its Y output holds every hidden state); the backward recomputes the gate pre-activations of all steps at once
by Gemms from X and the previous hidden states (LSTM's cell states by a Scan over time), runs the recurrence of the
hidden state's gradient in one Scan backwards over time, and takes the gradients of X, W, R, B and the initial states
from what that Scan emits by Gemms and ReduceSums. The graph does not grow with the sequence length.

With sequence_lens, a step at or beyond its sequence's length left the states as they were and wrote zeros to Y: its
dL/dY is dropped, the gradients of the states pass through it unchanged, and it adds nothing to the weights' (the
gate slopes are zeroed there, the forget and update gates made 1 there)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from onnx import numpy_helper

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._recurrent import GATES, Recurrence
from onnxtrain.autodiff._recurrent_steps import StepEmitter
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]


@rule("RNN", "GRU", "LSTM")
def _recurrent(ctx: GradientContext) -> Grads:
    settings = Recurrence.of(ctx.node, ctx.facts)
    # `backward` unrolls the nodes with peepholes and makes layout 1 time-major before any rule runs
    # (`_backward._unroll_recurrent_ops`), so this rule never sees either.
    assert not ctx.input(7), "LSTM's peepholes are differentiated through the unrolled equations"
    assert not settings.layout, "layout 1 is differentiated as layout 0 between Transposes"
    with ctx.builder.scope(f"{ctx.node.name or ctx.op_type.lower()}_grad"):
        return _ScanBackward(ctx, settings).gradients()


@dataclass(frozen=True)
class _Direction:
    """One direction's inputs, time-major; its sequences as rows [steps * batch, ...] unless named *3 ([steps,
    batch, ...]). "" for an absent input or a gradient that does not flow."""

    x: str  # X rows [steps * batch, features]
    y3: str  # Y of this direction [steps, batch, hidden]: the hidden state after each step, at its time position
    w: str  # [gates * hidden, features]
    r: str  # [gates * hidden, hidden]
    bias: str  # [2 * gates * hidden]: Wb, then Rb
    h0: str  # [batch, hidden]
    c0: str
    dy3: str  # dL/dY [steps, batch, hidden]
    dy_last: str  # dL/dY_h [batch, hidden]
    dc_last: str  # dL/dY_c
    reverse: bool
    activations: tuple[str, ...]


@dataclass(frozen=True)
class _Partials:
    """One direction's gradients, as rows [steps * batch, gates * hidden]: those of X W^T + Wb and of H_prev R^T + Rb
    (the previous hidden states'), with H_prev itself, dL/dR where it is no Gemm of those two (GRU with
    linear_before_reset=0), and those of the initial states."""

    input_part: str
    recurrent_part: str
    h_prev: str
    dr: str | None
    dh0: str
    dc0: str


class _ScanBackward:
    """The gradients of one recurrent node's inputs, emitted into its context's builder."""

    def __init__(self, ctx: GradientContext, settings: Recurrence):
        self.ctx, self.s, self.b = ctx, settings, ctx.builder
        self.size = settings.hidden
        self.e = StepEmitter(
            ctx.builder, settings.dtype, settings.hidden, settings.clip, ctx.input(0), settings.hard_sigmoid
        )
        # With sequence_lens: 1 where a step is within its sequence's length, 0 beyond ([steps, batch, 1]; as rows
        # [steps * batch, 1]), and 1 - that; "" without.
        self.valid3 = self.invalid3 = self.valid = self.invalid = ""
        if settings.sequence_lens:
            self.valid3 = self.e.valid_steps(settings.sequence_lens)
            self.invalid3 = self.b.node("Sub", [self.e.one(), self.valid3], hint="invalid")
            self.valid, self.invalid = (self.b.node("Flatten", [v], axis=2) for v in (self.valid3, self.invalid3))

    def gradients(self) -> Grads:
        ctx, e, s, op = self.ctx, self.e, self.s, self.ctx.op_type
        count = len(s.directions)
        x, y = ctx.input(0), ctx.forward_output(0)
        h0, c0 = ctx.input(5), ctx.input(6) if op == "LSTM" else ""
        dy, dy_h, dy_c = ctx.grad(0), ctx.grad(1), ctx.grad(2) if op == "LSTM" else None
        rows = self.b.node("Flatten", [x], hint="x_rows", axis=2)
        weights = e.per_direction(ctx.input(1), count)
        columns = zip(
            e.per_direction(y, count, axis=1),
            weights,
            e.per_direction(ctx.input(2), count),
            e.per_direction(ctx.input(3), count),
            e.per_direction(h0, count),
            e.per_direction(c0, count),
            e.per_direction(dy, count, axis=1),
            e.per_direction(dy_h, count),
            e.per_direction(dy_c, count),
            strict=True,
        )
        parts = []
        for (y3, w, r, bias, h, c, dy3, dy_last, dc_last), direction, activations in zip(
            columns, s.directions, s.activations, strict=True
        ):
            v = _Direction(rows, y3, w, r, bias, h, c, dy3, dy_last, dc_last, direction == "reverse", activations)
            parts.append(getattr(self, f"_{op.lower()}")(v))
        return self._input_gradients(parts, x, rows, weights)

    def _input_gradients(self, parts: Sequence[_Partials], x: str, rows: str, weights: Sequence[str]) -> Grads:
        ctx, e, b = self.ctx, self.e, self.b

        def stacked(values: Sequence[str]) -> str:
            return e.concat([e.unsqueeze(v, [0]) for v in values], 0)

        def summed(values: Sequence[str]) -> str:
            return values[0] if len(values) == 1 else b.node("Sum", list(values), hint="directions")

        grads: Grads = [None] * len(ctx.inputs)
        if ctx.needs_grad(0):
            dx_rows = summed(
                [b.node("MatMul", [p.input_part, w], hint="dx_rows") for p, w in zip(parts, weights, strict=True)]
            )
            grads[0] = b.node("Reshape", [dx_rows, b.node("Shape", [x], hint="x_shape")], hint="dx")
        if ctx.needs_grad(1):
            grads[1] = stacked([b.node("Gemm", [p.input_part, rows], hint="dw", transA=1) for p in parts])
        if ctx.needs_grad(2):
            grads[2] = stacked(
                [p.dr or b.node("Gemm", [p.recurrent_part, p.h_prev], hint="dr", transA=1) for p in parts]
            )
        if ctx.needs_grad(3):
            grads[3] = stacked(
                [e.concat([e.column_sums(p.input_part), e.column_sums(p.recurrent_part)], 0) for p in parts]
            )
        for index, name in ((5, "dh0"), (6, "dc0")):
            if ctx.needs_grad(index):
                grads[index] = stacked([getattr(p, name) for p in parts])
        return grads

    # --- the three ops: one direction each ------------------------------------------------------------------
    def _rnn(self, v: _Direction) -> _Partials:
        b, e = self.b, self.e
        h_prev = self._previous_states(v)
        x_w = self._input_projection(v.x, v.w, self._summed_bias(v.bias))
        pre = b.node("Add", [x_w, e.times_transposed(h_prev, v.r)])
        _, slope = e.gate(v.activations[0], pre)

        def body(states: list[str], steps: list[str]) -> tuple[list[str], list[str]]:
            gh = e.total(states[0], steps[0] if v.dy3 else "")
            d_pre = b.node("Mul", [gh, steps[int(bool(v.dy3))]], hint="d_pre")
            return [self._passed(b.node("MatMul", [d_pre, v.r], hint="dh_prev"), gh, steps)], [d_pre]

        sequences = [*self._dy(v), (e.steps(self._within(slope), self.size), self.size), *self._invalid()]
        dh0, d_pre3 = e.scan("rnn_backward", [v.dy_last or e.zeros_state()], sequences, body, not v.reverse)
        d_pre = b.node("Flatten", [d_pre3], hint="d_pre", axis=2)
        return _Partials(d_pre, d_pre, h_prev, None, dh0, "")

    def _gru(self, v: _Direction) -> _Partials:
        b, e, size = self.b, self.e, self.size
        f, g = v.activations
        linear_before_reset = self.s.linear_before_reset
        h_prev = self._previous_states(v)
        input_bias, r_h_bias = "", ""
        if not linear_before_reset:
            input_bias = self._summed_bias(v.bias)
        elif v.bias:  # Rbh is added inside r * (...)
            w_bias, r_bias = e.split(v.bias, [3 * size, 3 * size], 0)
            w_zr, w_h = e.split(w_bias, [2 * size, size], 0)
            r_zr_bias, r_h_bias = e.split(r_bias, [2 * size, size], 0)
            input_bias = e.concat([b.node("Add", [w_zr, r_zr_bias]), w_h], 0)
        x_z, x_r, x_h = e.split(self._input_projection(v.x, v.w, input_bias), [size] * 3, 1)
        if linear_before_reset:
            h_z, h_r, h_h = e.split(e.times_transposed(h_prev, v.r), [size] * 3, 1)
            linear = b.node("Add", [h_h, r_h_bias]) if r_h_bias else h_h
        else:
            r_zr, r_h = e.split(v.r, [2 * size, size], 0)
            h_z, h_r = e.split(e.times_transposed(h_prev, r_zr), [size] * 2, 1)
        z, z_slope = e.gate(f, b.node("Add", [x_z, h_z]))
        reset, reset_slope = e.gate(f, b.node("Add", [x_r, h_r]))
        if linear_before_reset:
            candidate_pre = b.node("Add", [x_h, b.node("Mul", [reset, linear])])
        else:
            reset_h = b.node("Mul", [reset, h_prev], hint="reset_h")
            candidate_pre = b.node("Add", [x_h, e.times_transposed(reset_h, r_h)])
        candidate, candidate_slope = e.gate(g, candidate_pre)
        # dL/d(each gate's pre-activation) = dL/dh_t times these (zeros beyond a sequence's length)
        a_z = self._within(b.node("Mul", [b.node("Sub", [h_prev, candidate]), z_slope], hint="a_z"))
        a_h = self._within(b.node("Mul", [b.node("Sub", [e.one(), z]), candidate_slope], hint="a_h"))
        z = self._kept(z)  # h_{t-1}'s share of h_t: 1 beyond a sequence's length, where h_t = h_{t-1}
        dy = self._dy(v)
        if linear_before_reset:
            a_r = b.node("Mul", [b.node("Mul", [a_h, linear]), reset_slope], hint="a_r")  # a_h: zeros beyond
            a_x = e.concat([a_z, a_r, a_h], 1)  # of X W^T + Wb
            a_rec = e.concat([a_z, a_r, b.node("Mul", [a_h, reset])], 1)  # of H_prev R^T + Rb

            def body(states: list[str], steps: list[str]) -> tuple[list[str], list[str]]:
                gh = e.total(states[0], steps[0] if v.dy3 else "")
                step_z, step_a_rec = steps[-2:]
                d_rec = b.node("Mul", [e.concat([gh] * 3, 1), step_a_rec], hint="d_rec")
                kept = b.node("Mul", [gh, step_z], hint="kept")
                return [b.node("Add", [kept, b.node("MatMul", [d_rec, v.r])], hint="dh_prev")], [gh]

            sequences = [*dy, (e.steps(z, size), size), (e.steps(a_rec, 3 * size), 3 * size)]
            dh0, gh3 = e.scan("gru_backward", [v.dy_last or e.zeros_state()], sequences, body, not v.reverse)
            gh = b.node("Flatten", [gh3], hint="gh", axis=2)
            tiled = e.concat([gh] * 3, 1)
            input_part, recurrent_part = b.node("Mul", [tiled, a_x]), b.node("Mul", [tiled, a_rec])
            return _Partials(input_part, recurrent_part, h_prev, None, dh0, "")

        a_r = b.node("Mul", [h_prev, reset_slope], hint="a_r")  # times dL/d(reset * H_prev)

        def body_reset_before(states: list[str], steps: list[str]) -> tuple[list[str], list[str]]:
            gh = e.total(states[0], steps[0] if v.dy3 else "")
            step_z, step_reset, step_a_z, step_a_h, step_a_r = steps[-5:]
            d_reset_h = b.node("MatMul", [b.node("Mul", [gh, step_a_h]), r_h], hint="d_reset_h")
            d_zr = e.concat([b.node("Mul", [gh, step_a_z]), b.node("Mul", [d_reset_h, step_a_r])], 1)
            parts = [
                b.node("Mul", [gh, step_z]),
                b.node("Mul", [d_reset_h, step_reset]),
                b.node("MatMul", [d_zr, r_zr]),
            ]
            return [b.node("Sum", parts, hint="dh_prev")], [gh]

        sequences = [*dy, *((e.steps(value, size), size) for value in (z, reset, a_z, a_h, a_r))]
        dh0, gh3 = e.scan("gru_backward", [v.dy_last or e.zeros_state()], sequences, body_reset_before, not v.reverse)
        gh = b.node("Flatten", [gh3], hint="gh", axis=2)
        d_candidate = b.node("Mul", [gh, a_h], hint="d_candidate")
        d_reset_h = b.node("MatMul", [d_candidate, r_h], hint="d_reset_h")
        d_zr = e.concat([b.node("Mul", [gh, a_z]), b.node("Mul", [d_reset_h, a_r])], 1)
        d_pre = e.concat([d_zr, d_candidate], 1)
        dr = None
        if self.ctx.needs_grad(2):
            by_h_prev = b.node("Gemm", [d_zr, h_prev], hint="dr_zr", transA=1)
            dr = e.concat([by_h_prev, b.node("Gemm", [d_candidate, reset_h], hint="dr_h", transA=1)], 0)
        return _Partials(d_pre, d_pre, h_prev, dr, dh0, "")

    def _lstm(self, v: _Direction) -> _Partials:
        b, e, size = self.b, self.e, self.size
        f, g, h_act = v.activations
        h_prev = self._previous_states(v)
        x_w = self._input_projection(v.x, v.w, self._summed_bias(v.bias))
        pre = b.node("Add", [x_w, e.times_transposed(h_prev, v.r)])
        i_pre, o_pre, f_pre, c_pre = e.split(pre, [size] * 4, 1)
        i, i_slope = e.gate(f, i_pre)
        o, o_slope = e.gate(f, o_pre)
        candidate, candidate_slope = e.gate(g, c_pre)
        if self.s.input_forget:
            forget, forget_slope = b.node("Sub", [e.one(), i], hint="forget"), ""
        else:
            forget, forget_slope = e.gate(f, f_pre)
        update = b.node("Mul", [i, candidate], hint="update")
        if self.valid:  # beyond a sequence's length the cell state is kept: forget 1, update 0
            forget, update = self._kept(forget), self._within(update)

        def cell(states: list[str], steps: list[str]) -> tuple[list[str], list[str]]:
            c = b.node("Add", [b.node("Mul", [steps[0], states[0]]), steps[1]], hint="c")
            return [c], [b.node("Identity", [c], hint="c_t")]

        c0 = v.c0 or e.zeros_state()
        sequences = [(e.steps(forget, size), size), (e.steps(update, size), size)]
        _, cells3 = e.scan("cells", [c0], sequences, cell, v.reverse)
        cells = b.node("Flatten", [cells3], hint="cells", axis=2)
        c_prev = b.node("Flatten", [e.shifted(cells3, e.unsqueeze(c0, [0]), v.reverse)], hint="c_prev", axis=2)
        squashed = e.act(h_act, cells)
        # dL/d(cell state) from dL/dh_t, and dL/d(each gate's pre-activation) from dL/dc_t (i, f, c) or dL/dh_t (o)
        k = self._within(b.node("Mul", [o, e.slope(h_act, cells, squashed)], hint="k"))
        a_o = b.node("Mul", [squashed, o_slope], hint="a_o")
        if self.s.input_forget:  # forget = 1 - i
            a_i = b.node("Mul", [b.node("Sub", [candidate, c_prev]), i_slope], hint="a_i")
            zero = numpy_helper.from_array(np.zeros(1, self.s.dtype))
            a_f = b.node("ConstantOfShape", [b.node("Shape", [c_prev])], hint="a_f", value=zero)
        else:
            a_i = b.node("Mul", [candidate, i_slope], hint="a_i")
            a_f = b.node("Mul", [c_prev, forget_slope], hint="a_f")
        a = self._within(e.concat([a_i, a_o, a_f, b.node("Mul", [i, candidate_slope], hint="a_c")], 1))

        def body(states: list[str], steps: list[str]) -> tuple[list[str], list[str]]:
            (dh, dc), (step_k, step_a, step_forget) = states, steps[int(bool(v.dy3)) :][:3]
            gh = e.total(dh, steps[0] if v.dy3 else "")
            dc_t = b.node("Add", [dc, b.node("Mul", [gh, step_k])], hint="dc_t")
            d_pre = b.node("Mul", [e.concat([dc_t, gh, dc_t, dc_t], 1), step_a], hint="d_pre")
            dh_prev = self._passed(b.node("MatMul", [d_pre, v.r], hint="dh_prev"), gh, steps)
            return [dh_prev, b.node("Mul", [dc_t, step_forget], hint="dc_prev")], [d_pre]

        sequences = [
            *self._dy(v),
            (e.steps(k, size), size),
            (e.steps(a, 4 * size), 4 * size),
            (e.steps(forget, size), size),
            *self._invalid(),
        ]
        initial = [v.dy_last or e.zeros_state(), v.dc_last or e.zeros_state()]
        dh0, dc0, d_pre3 = e.scan("lstm_backward", initial, sequences, body, not v.reverse)
        d_pre = b.node("Flatten", [d_pre3], hint="d_pre", axis=2)
        return _Partials(d_pre, d_pre, h_prev, None, dh0, dc0)

    # --- shared pieces --------------------------------------------------------------------------------------
    def _dy(self, v: _Direction) -> list[tuple[str, int]]:
        """dL/dY as a Scan sequence; beyond a sequence's length Y is a constant zero, so its gradient is dropped."""
        if not v.dy3:
            return []
        return [(self.b.node("Mul", [v.dy3, self.valid3], hint="dy_within") if self.valid3 else v.dy3, self.size)]

    def _previous_states(self, v: _Direction) -> str:
        """H_prev as rows: the hidden state before each step (the initial one, zeros without it, at the first)."""
        e, b, states = self.e, self.b, v.y3
        first = e.unsqueeze(v.h0 or e.zeros_state(), [0])
        if self.valid3 and v.reverse and v.h0:  # the steps beyond a sequence's length run first and keep h0
            states = b.node("Add", [states, b.node("Mul", [self.invalid3, first])], hint="kept_h0")
        return b.node("Flatten", [e.shifted(states, first, v.reverse)], hint="h_prev", axis=2)

    def _within(self, rows: str) -> str:
        """`rows` [steps * batch, width], zeros beyond each sequence's length (`rows` itself without sequence_lens)."""
        return self.b.node("Mul", [rows, self.valid], hint="within") if self.valid else rows

    def _kept(self, rows: str) -> str:
        """`rows` [steps * batch, width] within each sequence's length, ones beyond it: a gate that keeps a state."""
        return self.b.node("Add", [self._within(rows), self.invalid], hint="kept") if self.valid else rows

    def _invalid(self) -> list[tuple[str, int]]:
        """With sequence_lens, the last Scan sequence: 1 - valid per step ([steps, batch, 1])."""
        return [(self.invalid3, 1)] if self.invalid3 else []

    def _passed(self, dh_prev: str, gh: str, steps: list[str]) -> str:
        """In a Scan body, dL/dh_{t-1}: `dh_prev` within a sequence's length, `gh` (dL/dh_t) beyond it, where the
        step kept the state (the body's last step input is then 1 - valid, `_invalid`)."""
        if not self.invalid3:
            return dh_prev
        return self.b.node("Add", [dh_prev, self.b.node("Mul", [gh, steps[-1]])], hint="dh_passed")

    def _input_projection(self, x_rows: str, w: str, bias: str) -> str:
        """X W^T (+ bias) as rows. Gemm with transB, not MatMul of a Transpose, which ONNX Runtime fuses into a
        FusedMatMul that has no double kernel."""
        return self.b.node("Gemm", [x_rows, w, *([bias] if bias else [])], hint="x_w", transB=1)

    def _summed_bias(self, bias: str) -> str:
        """Wb + Rb: "" without a bias."""
        if not bias:
            return ""
        width = GATES[self.ctx.op_type] * self.size
        return self.b.node("Add", self.e.split(bias, [width, width], 0), hint="bias")
