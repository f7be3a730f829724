"""Optimizer update rules as ONNX: gradient clipping, and one `UpdateRule` per optimizer class.

Each rule is TensorFlow's `Apply*` kernel (what KotlinDL runs), written with the same operation order so
float32
results match a numpy transcription of that kernel. `t` is the 1-based number of the update being made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from onnxtrain import optimizers as opt
from onnxtrain.graph import GraphBuilder
from onnxtrain.portable._ops import reduce, scalar
from onnxtrain.portable._registry import RuleRegistry

Names = dict[str, str]
Update = tuple[str, Names]
CLIP_NORM_EPSILON = 1e-6  # as ONNX Runtime's InplaceClipGradNorm and torch.nn.utils.clip_grad_norm_


@dataclass(frozen=True)
class Slot:
    """One optimizer state tensor per parameter, shaped like it, starting at `initial`.

    The graph carries the slot's value times `scale`: a rule may keep a rescaled moment when that saves a pass
    over the tensor per step (Adam). `initial` and what `PortableEngine.optimizer_state` reports are unscaled.
    """

    name: str
    initial: float = 0.0
    scale: float = 1.0


class UpdateRule:
    """How one optimizer class updates a parameter.

    `prepare` emits per-step scalars once (bias corrections, constants); `update` emits one parameter's update.
    """

    def slots(self, optimizer: opt.Optimizer) -> tuple[Slot, ...]:
        return ()

    def prepare(self, b: GraphBuilder, optimizer: opt.Optimizer, lr: str, t: str) -> Names:
        """Scalars shared by every parameter's update, by name; `lr` and `t` are float32 scalars."""
        return {"lr": lr}

    def update(self, b: GraphBuilder, optimizer: opt.Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        """Return (new parameter, {slot: new state}); `state` maps slots to values, `s` is `prepare`'s."""
        raise NotImplementedError


_RULES: RuleRegistry[UpdateRule] = RuleRegistry(
    "optimizer", opt.Optimizer, (), "register_update_rule", rule_name="update rule"
)


def register_update_rule(cls: type[opt.Optimizer], rule: UpdateRule) -> None:
    """Teach the portable engine a new optimizer class (its subclasses inherit the rule)."""
    _RULES.register(cls, rule)


def update_rule(optimizer: opt.Optimizer) -> UpdateRule:
    return _RULES.lookup(optimizer)


def clip_gradients(b: GraphBuilder, optimizer: opt.Optimizer, grads: Sequence[str]) -> list[str]:
    """Apply `clip_value` (per element), then `clip_norm` (global L2 norm over all gradients)."""
    grads = list(grads)
    if optimizer.clip_value is not None:
        low, high = scalar(b, -optimizer.clip_value, "clip_low"), scalar(b, optimizer.clip_value, "clip_high")
        grads = [b.node("Clip", [g, low, high], hint="clipped") for g in grads]
    if optimizer.clip_norm is not None:
        squares = [reduce(b, "ReduceSumSquare", g, None, keepdims=False, hint="grad_sq") for g in grads]
        total = squares[0] if len(squares) == 1 else b.node("Sum", squares, hint="grad_sq_total")
        norm = b.node("Add", [b.node("Sqrt", [total]), scalar(b, CLIP_NORM_EPSILON, "clip_eps")])
        factor = b.node(
            "Min",
            [b.node("Div", [scalar(b, optimizer.clip_norm, "clip_norm"), norm]), scalar(b, 1.0, "one")],
            hint="clip_factor",
        )
        grads = [b.node("Mul", [g, factor], hint="clipped") for g in grads]
    return grads


def _one_minus(b: GraphBuilder, value: float, hint: str) -> str:
    return scalar(b, 1.0 - value, hint)


class SGDRule(UpdateRule):
    def update(self, b: GraphBuilder, optimizer: opt.Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        return b.node("Sub", [w, b.node("Mul", [g, s["lr"]])], hint="new"), {}


class MomentumRule(UpdateRule):
    def slots(self, optimizer: opt.Optimizer) -> tuple[Slot, ...]:
        return (Slot("accum"),)

    def prepare(self, b: GraphBuilder, optimizer: opt.Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, opt.Momentum)
        momentum = scalar(b, optimizer.momentum, "momentum")
        return {"lr": lr, "momentum": momentum, "lr_momentum": b.node("Mul", [momentum, lr])}

    def update(self, b: GraphBuilder, optimizer: opt.Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        assert isinstance(optimizer, opt.Momentum)
        accum = b.node("Add", [b.node("Mul", [state["accum"], s["momentum"]]), g], hint="accum")
        if optimizer.use_nesterov:
            step = b.node("Add", [b.node("Mul", [g, s["lr"]]), b.node("Mul", [accum, s["lr_momentum"]])])
        else:
            step = b.node("Mul", [accum, s["lr"]])
        return b.node("Sub", [w, step], hint="new"), {"accum": accum}


class RMSPropRule(UpdateRule):
    """The momentum slot exists only when momentum > 0: with 0, mom is lr * g / sqrt(ms + eps) each step."""

    def slots(self, optimizer: opt.Optimizer) -> tuple[Slot, ...]:
        assert isinstance(optimizer, opt.RMSProp)
        slots = [Slot("ms", 1.0)]  # KotlinDL starts the mean square at 1
        if optimizer.momentum > 0:
            slots.append(Slot("mom"))
        if optimizer.centered:
            slots.append(Slot("mg"))
        return tuple(slots)

    def prepare(self, b: GraphBuilder, optimizer: opt.Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, opt.RMSProp)
        return {
            "lr": lr,
            "one_minus_rho": _one_minus(b, optimizer.decay, "one_minus_rho"),
            "eps": scalar(b, optimizer.epsilon, "eps"),
            "momentum": scalar(b, optimizer.momentum, "momentum"),
        }

    def update(self, b: GraphBuilder, optimizer: opt.Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        assert isinstance(optimizer, opt.RMSProp)
        new: Names = {}
        ms = state["ms"]
        new["ms"] = ms = b.node(
            "Add",
            [ms, b.node("Mul", [b.node("Sub", [b.node("Mul", [g, g]), ms]), s["one_minus_rho"]])],
            hint="ms",
        )
        denom = ms
        if optimizer.centered:
            mg = state["mg"]
            new["mg"] = mg = b.node("Add", [mg, b.node("Mul", [b.node("Sub", [g, mg]), s["one_minus_rho"]])], hint="mg")
            denom = b.node("Sub", [ms, b.node("Mul", [mg, mg])])
        step = b.node("Div", [b.node("Mul", [g, s["lr"]]), b.node("Sqrt", [b.node("Add", [denom, s["eps"]])])])
        if optimizer.momentum > 0:
            new["mom"] = step = b.node("Add", [b.node("Mul", [state["mom"], s["momentum"]]), step], hint="mom")
        return b.node("Sub", [w, step], hint="new"), new


class AdaDeltaRule(UpdateRule):
    def slots(self, optimizer: opt.Optimizer) -> tuple[Slot, ...]:
        return (Slot("accum"), Slot("accum_update"))

    def prepare(self, b: GraphBuilder, optimizer: opt.Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, opt.AdaDelta)
        return {
            "lr": lr,
            "rho": scalar(b, optimizer.rho, "rho"),
            "one_minus_rho": _one_minus(b, optimizer.rho, "one_minus_rho"),
            "eps": scalar(b, optimizer.epsilon, "eps"),
        }

    def update(self, b: GraphBuilder, optimizer: opt.Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        accum = b.node(
            "Add",
            [
                b.node("Mul", [state["accum"], s["rho"]]),
                b.node("Mul", [b.node("Mul", [g, g]), s["one_minus_rho"]]),
            ],
            hint="accum",
        )
        ratio = b.node(
            "Div",
            [
                b.node("Sqrt", [b.node("Add", [state["accum_update"], s["eps"]])]),
                b.node("Sqrt", [b.node("Add", [accum, s["eps"]])]),
            ],
        )
        step = b.node("Mul", [ratio, g])
        accum_update = b.node(
            "Add",
            [
                b.node("Mul", [state["accum_update"], s["rho"]]),
                b.node("Mul", [b.node("Mul", [step, step]), s["one_minus_rho"]]),
            ],
            hint="accum_update",
        )
        new_w = b.node("Sub", [w, b.node("Mul", [step, s["lr"]])], hint="new")
        return new_w, {"accum": accum, "accum_update": accum_update}


class AdaGradRule(UpdateRule):
    def slots(self, optimizer: opt.Optimizer) -> tuple[Slot, ...]:
        assert isinstance(optimizer, opt.AdaGrad)
        return (Slot("accum", optimizer.initial_accumulator_value),)

    def update(self, b: GraphBuilder, optimizer: opt.Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        accum = b.node("Add", [state["accum"], b.node("Mul", [g, g])], hint="accum")
        step = b.node("Div", [b.node("Mul", [g, s["lr"]]), b.node("Sqrt", [accum])])
        return b.node("Sub", [w, step], hint="new"), {"accum": accum}


class AdaGradDARule(UpdateRule):
    def slots(self, optimizer: opt.Optimizer) -> tuple[Slot, ...]:
        assert isinstance(optimizer, opt.AdaGradDA)
        return (Slot("grad_accum"), Slot("grad_squared_accum", optimizer.initial_accumulator_value))

    def prepare(self, b: GraphBuilder, optimizer: opt.Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, opt.AdaGradDA)
        # denominator offset l2 * t * lr, and the l1 threshold l1 * t
        l2_t_lr = b.node("Mul", [b.node("Mul", [scalar(b, optimizer.l2_strength, "l2"), t]), lr], hint="l2_t_lr")
        l1_t = b.node("Mul", [scalar(b, optimizer.l1_strength, "l1"), t], hint="l1_t")
        return {"lr": lr, "minus_lr": b.node("Neg", [lr]), "l2_t_lr": l2_t_lr, "l1_t": l1_t}

    def update(self, b: GraphBuilder, optimizer: opt.Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        assert isinstance(optimizer, opt.AdaGradDA)
        acc = b.node("Add", [state["grad_accum"], g], hint="grad_accum")
        sq = b.node("Add", [state["grad_squared_accum"], b.node("Mul", [g, g])], hint="grad_squared_accum")
        denom = b.node("Add", [s["l2_t_lr"], b.node("Sqrt", [sq])])
        if optimizer.l1_strength > 0:
            shrunk = b.node("Max", [b.node("Sub", [b.node("Abs", [acc]), s["l1_t"]]), scalar(b, 0.0, "zero")])
            numerator = b.node("Mul", [b.node("Mul", [s["minus_lr"], b.node("Sign", [acc])]), shrunk])
        else:
            numerator = b.node("Mul", [s["minus_lr"], acc])
        return b.node("Div", [numerator, denom], hint="new"), {"grad_accum": acc, "grad_squared_accum": sq}


class AdamRule(UpdateRule):
    """TensorFlow's ApplyAdam with the moments carried rescaled: m / (1 - beta1) and v / (1 - beta2).

    Then m' = beta1 m + g and v' = beta2 v + g^2 need no multiplication of g, and the constants move into the
    step's scalars: 10 passes over each parameter per step instead of 12, about a twentieth of the tutorial's
    train step. The weights agree with the unscaled formula to float32 rounding (tests/test_portable_optimizers.py).
    """

    def slots(self, optimizer: opt.Optimizer) -> tuple[Slot, ...]:
        assert isinstance(optimizer, opt.Adam)
        return (Slot("m", scale=1.0 / (1.0 - optimizer.beta1)), Slot("v", scale=1.0 / (1.0 - optimizer.beta2)))

    def prepare(self, b: GraphBuilder, optimizer: opt.Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, opt.Adam)
        one = scalar(b, 1.0, "one")
        beta1, beta2 = scalar(b, optimizer.beta1, "beta1"), scalar(b, optimizer.beta2, "beta2")
        beta1_power = b.node("Pow", [beta1, t], hint="beta1_power")
        beta2_power = b.node("Pow", [beta2, t], hint="beta2_power")
        # alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t), times (1 - beta1) / sqrt(1 - beta2) for the rescaled moments
        rescale = scalar(b, (1.0 - optimizer.beta1) / math.sqrt(1.0 - optimizer.beta2), "moment_rescale")
        alpha = b.node(
            "Div",
            [
                b.node("Mul", [b.node("Mul", [lr, rescale]), b.node("Sqrt", [b.node("Sub", [one, beta2_power])])]),
                b.node("Sub", [one, beta1_power]),
            ],
            hint="alpha",
        )
        return {
            "alpha": alpha,
            "beta1": beta1,
            "beta2": beta2,
            "eps": scalar(b, optimizer.epsilon / math.sqrt(1.0 - optimizer.beta2), "eps"),
        }

    def update(self, b: GraphBuilder, optimizer: opt.Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        m = b.node("Add", [b.node("Mul", [state["m"], s["beta1"]]), g], hint="m")
        v = b.node("Add", [b.node("Mul", [state["v"], s["beta2"]]), b.node("Mul", [g, g])], hint="v")
        step = b.node("Div", [b.node("Mul", [m, s["alpha"]]), b.node("Add", [b.node("Sqrt", [v]), s["eps"]])])
        return b.node("Sub", [w, step], hint="new"), {"m": m, "v": v}


class AdamaxRule(UpdateRule):
    def slots(self, optimizer: opt.Optimizer) -> tuple[Slot, ...]:
        return (Slot("m"), Slot("v"))

    def prepare(self, b: GraphBuilder, optimizer: opt.Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, opt.Adamax)
        beta1_power = b.node("Pow", [scalar(b, optimizer.beta1, "beta1"), t], hint="beta1_power")
        alpha = b.node("Div", [lr, b.node("Sub", [scalar(b, 1.0, "one"), beta1_power])], hint="alpha")
        return {
            "alpha": alpha,
            "one_minus_beta1": _one_minus(b, optimizer.beta1, "one_minus_beta1"),
            "beta2": scalar(b, optimizer.beta2, "beta2"),
            "eps": scalar(b, optimizer.epsilon, "eps"),
        }

    def update(self, b: GraphBuilder, optimizer: opt.Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        m = state["m"]
        m = b.node("Add", [m, b.node("Mul", [b.node("Sub", [g, m]), s["one_minus_beta1"]])], hint="m")
        v = b.node("Max", [b.node("Mul", [state["v"], s["beta2"]]), b.node("Abs", [g])], hint="v")
        step = b.node("Mul", [s["alpha"], b.node("Div", [m, b.node("Add", [v, s["eps"]])])])
        return b.node("Sub", [w, step], hint="new"), {"m": m, "v": v}


class FtrlRule(UpdateRule):
    def slots(self, optimizer: opt.Optimizer) -> tuple[Slot, ...]:
        assert isinstance(optimizer, opt.Ftrl)
        return (Slot("accum", optimizer.initial_accumulator_value), Slot("linear"))

    def prepare(self, b: GraphBuilder, optimizer: opt.Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, opt.Ftrl)
        return {
            "lr": lr,
            "l1": scalar(b, optimizer.l1_regularization_strength, "l1"),
            "two_l2": scalar(b, 2.0 * optimizer.l2_regularization_strength, "two_l2"),
            "power": scalar(b, -optimizer.learning_rate_power, "power"),
        }

    def _power(self, b: GraphBuilder, optimizer: opt.Ftrl, x: str, s: Names) -> str:
        if optimizer.learning_rate_power == -0.5:
            return b.node("Sqrt", [x])
        return b.node("Pow", [x, s["power"]])

    def update(self, b: GraphBuilder, optimizer: opt.Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        assert isinstance(optimizer, opt.Ftrl)
        accum, linear = state["accum"], state["linear"]
        if optimizer.l2_shrinkage_regularization_strength > 0:
            shrink = scalar(b, 2.0 * optimizer.l2_shrinkage_regularization_strength, "two_l2_shrinkage")
            g = b.node("Add", [g, b.node("Mul", [w, shrink])], hint="grad_with_shrinkage")
        new_accum = b.node("Add", [accum, b.node("Mul", [g, g])], hint="accum")
        new_power = self._power(b, optimizer, new_accum, s)
        sigma = b.node("Div", [b.node("Sub", [new_power, self._power(b, optimizer, accum, s)]), s["lr"]])
        linear = b.node("Add", [linear, b.node("Sub", [g, b.node("Mul", [sigma, w])])], hint="linear")
        x = b.node("Sub", [b.node("Mul", [s["l1"], b.node("Sign", [linear])]), linear])
        y = b.node("Add", [b.node("Div", [new_power, s["lr"]]), s["two_l2"]])
        keep = b.node("Greater", [b.node("Abs", [linear]), s["l1"]])
        new_w = b.node("Where", [keep, b.node("Div", [x, y]), scalar(b, 0.0, "zero")], hint="new")
        return new_w, {"accum": new_accum, "linear": linear}


for _cls, _rule in [
    (opt.SGD, SGDRule()),
    (opt.Momentum, MomentumRule()),
    (opt.RMSProp, RMSPropRule()),
    (opt.AdaDelta, AdaDeltaRule()),
    (opt.AdaGrad, AdaGradRule()),
    (opt.AdaGradDA, AdaGradDARule()),
    (opt.Adam, AdamRule()),
    (opt.Adamax, AdamaxRule()),
    (opt.Ftrl, FtrlRule()),
]:
    register_update_rule(_cls, _rule)
