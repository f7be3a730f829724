"""Portable engine update rules: each optimizer's steps against a float64 numpy transcription of the
TensorFlow
kernel KotlinDL calls (ApplyGradientDescent, ApplyMomentum, ApplyRmsProp, ApplyCenteredRmsProp, ApplyAdadelta,
ApplyAdagrad, ApplyAdagradDA, ApplyAdam, ApplyAdaMax, ApplyFtrlV2), with and without gradient clipping; and of
Keras 3's Nadam, AdamW and Adam(amsgrad=True) (decoupled decay first, then Adam; vhat = max(vhat, v)), and
SGD(momentum=...) as ApplyMomentum.

The model is one linear Dense layer under MSE, whose gradient numpy computes exactly.
"""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from onnxtrain import Sequential, losses
from onnxtrain import optimizers as opt
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import Dense, Input
from onnxtrain.optimizers._nadam import NadamRule, fused_nadam
from onnxtrain.portable import PortableEngine, _fused

STEPS = 4
RNG = np.random.default_rng(3)
BATCHES = [
    (RNG.normal(size=(6, 4)).astype(np.float32), RNG.normal(size=(6, 3)).astype(np.float32)) for _ in range(STEPS)
]


def mse_gradients(w: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    x = x.astype(np.float64)
    d_out = 2 * (x @ w["dense_1.kernel"] + w["dense_1.bias"] - y) / y.size
    return {"dense_1.kernel": x.T @ d_out, "dense_1.bias": d_out.sum(axis=0)}


def clip(o: opt.Optimizer, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if o.clip_value is not None:
        grads = {n: np.clip(g, -o.clip_value, o.clip_value) for n, g in grads.items()}
    if o.clip_norm is not None:
        norm = np.sqrt(sum(float((g**2).sum()) for g in grads.values()))
        factor = min(1.0, o.clip_norm / (norm + 1e-6))
        grads = {n: g * factor for n, g in grads.items()}
    return grads


def initial_state(o: opt.Optimizer, w: np.ndarray) -> dict[str, np.ndarray]:
    zeros = np.zeros_like(w)
    return {
        opt.SGD: lambda: {"accum": zeros},
        opt.Momentum: lambda: {"accum": zeros},
        opt.RMSProp: lambda: {"ms": np.full_like(w, getattr(o, "initial_mean_square", 1.0)), "mom": zeros, "mg": zeros},
        opt.AdaDelta: lambda: {"accum": zeros, "accum_update": zeros},
        opt.AdaGrad: lambda: {"accum": np.full_like(w, getattr(o, "initial_accumulator_value", 0))},
        opt.AdaGradDA: lambda: {
            "grad_accum": zeros,
            "grad_squared_accum": np.full_like(w, getattr(o, "initial_accumulator_value", 0)),
        },
        opt.Adam: lambda: {"m": zeros, "v": zeros, "vhat": zeros},
        opt.AdamW: lambda: {"m": zeros, "v": zeros, "vhat": zeros},
        opt.Adamax: lambda: {"m": zeros, "v": zeros},
        opt.Nadam: lambda: {"m": zeros, "v": zeros},
        opt.Ftrl: lambda: {
            "accum": np.full_like(w, getattr(o, "initial_accumulator_value", 0)),
            "linear": zeros,
        },
    }[type(o)]()


def tf_update(o: opt.Optimizer, w: np.ndarray, g: np.ndarray, s: dict[str, np.ndarray], t: int) -> np.ndarray:
    """One TensorFlow Apply* step; updates `s` in place and returns the new parameter."""
    lr = o.learning_rate
    if isinstance(o, opt.SGD) and o.momentum == 0:
        return w - lr * g
    if isinstance(o, opt.Momentum | opt.SGD):
        s["accum"] = s["accum"] * o.momentum + g
        if o.use_nesterov if isinstance(o, opt.Momentum) else o.nesterov:
            return w - (g * lr + s["accum"] * o.momentum * lr)
        return w - s["accum"] * lr
    if isinstance(o, opt.RMSProp):
        s["ms"] = s["ms"] + (g * g - s["ms"]) * (1 - o.decay)
        denom = s["ms"]
        if o.centered:
            s["mg"] = s["mg"] + (g - s["mg"]) * (1 - o.decay)
            denom = s["ms"] - s["mg"] ** 2
        s["mom"] = s["mom"] * o.momentum + g * lr / np.sqrt(denom + o.epsilon)
        return w - s["mom"]
    if isinstance(o, opt.AdaDelta):
        s["accum"] = s["accum"] * o.rho + g * g * (1 - o.rho)
        update = np.sqrt(s["accum_update"] + o.epsilon) / np.sqrt(s["accum"] + o.epsilon) * g
        s["accum_update"] = s["accum_update"] * o.rho + update**2 * (1 - o.rho)
        return w - update * lr
    if isinstance(o, opt.AdaGrad):
        s["accum"] = s["accum"] + g * g
        return w - g * lr / np.sqrt(s["accum"])
    if isinstance(o, opt.AdaGradDA):
        s["grad_accum"] = s["grad_accum"] + g
        s["grad_squared_accum"] = s["grad_squared_accum"] + g * g
        acc, denom = s["grad_accum"], o.l2_strength * t * lr + np.sqrt(s["grad_squared_accum"])
        if o.l1_strength > 0:
            return -lr * np.sign(acc) * np.maximum(np.abs(acc) - o.l1_strength * t, 0) / denom
        return -lr * acc / denom
    if isinstance(o, opt.Adam | opt.AdamW):  # Keras 3's Adam: weight decay first, then the update
        w = w - w * o.weight_decay * lr
        s["m"] = s["m"] + (g - s["m"]) * (1 - o.beta1)
        s["v"] = s["v"] + (g * g - s["v"]) * (1 - o.beta2)
        s["vhat"] = np.maximum(s["vhat"], s["v"])
        alpha = lr * np.sqrt(1 - o.beta2**t) / (1 - o.beta1**t)
        return w - s["m"] * alpha / (np.sqrt(s["vhat"] if o.amsgrad else s["v"]) + o.epsilon)
    if isinstance(o, opt.Nadam):  # Keras 3's Nadam, its momentum schedule's product written out
        u = [o.beta1 * (1 - 0.5 * 0.96**i) for i in range(1, t + 2)]
        product = float(np.prod(u[:t]))
        w = w - w * o.weight_decay * lr
        s["m"] = s["m"] + (g - s["m"]) * (1 - o.beta1)
        s["v"] = s["v"] + (g * g - s["v"]) * (1 - o.beta2)
        m_hat = u[t] * s["m"] / (1 - product * u[t]) + (1 - u[t - 1]) * g / (1 - product)
        return w - m_hat * lr / (np.sqrt(s["v"] / (1 - o.beta2**t)) + o.epsilon)
    if isinstance(o, opt.Adamax):
        s["m"] = s["m"] + (g - s["m"]) * (1 - o.beta1)
        s["v"] = np.maximum(o.beta2 * s["v"], np.abs(g))
        return w - lr / (1 - o.beta1**t) * (s["m"] / (s["v"] + o.epsilon))
    assert isinstance(o, opt.Ftrl)
    p = -o.learning_rate_power
    gs = g + 2 * o.l2_shrinkage_regularization_strength * w
    new_accum = s["accum"] + gs * gs
    s["linear"] = s["linear"] + gs - (new_accum**p - s["accum"] ** p) / lr * w
    s["accum"] = new_accum
    x = o.l1_regularization_strength * np.sign(s["linear"]) - s["linear"]
    y = new_accum**p / lr + 2 * o.l2_regularization_strength
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(s["linear"]) > o.l1_regularization_strength, x / y, 0.0)


CASES = [
    opt.SGD(),
    opt.SGD(learning_rate=0.5, clip_value=0.05),
    opt.Momentum(),
    opt.Momentum(learning_rate=0.05, momentum=0.9, use_nesterov=False),
    opt.SGD(learning_rate=0.05, momentum=0.9),
    opt.SGD(learning_rate=0.05, momentum=0.5, nesterov=True, clip_norm=0.1),
    opt.RMSProp(),
    opt.RMSProp(learning_rate=0.01, momentum=0.5, centered=True),
    opt.RMSProp(learning_rate=0.01, momentum=0.5, initial_mean_square=0.0),
    opt.AdaDelta(),
    opt.AdaGrad(),
    opt.AdaGradDA(),
    opt.AdaGradDA(l1_strength=0.0, l2_strength=0.1),
    opt.Adam(),
    opt.Adam(learning_rate=0.01, clip_norm=0.1),
    opt.Adam(learning_rate=0.01, clip_value=0.02, clip_norm=0.05),
    opt.Adam(learning_rate=0.01, beta2=0.5, amsgrad=True),
    opt.Adam(learning_rate=0.01, weight_decay=0.1),
    opt.AdamW(),
    opt.AdamW(learning_rate=0.01, weight_decay=0.1, beta1=0.8, beta2=0.5, amsgrad=True, clip_norm=0.1),
    opt.Adamax(),
    opt.Nadam(),
    opt.Nadam(learning_rate=0.01, beta1=0.8, beta2=0.6, weight_decay=0.1, clip_norm=0.1),
    opt.Ftrl(learning_rate=0.1),
    opt.Ftrl(
        learning_rate=0.1,
        l1_regularization_strength=0.01,
        l2_regularization_strength=0.1,
        l2_shrinkage_regularization_strength=0.05,
        initial_accumulator_value=0.1,
        learning_rate_power=-0.7,
    ),
]


# The graph's update for every optimizer, and the fused kernel (portable/_fused.py) for those that have one.
PATHS = [pytest.param(o, "graph", id=f"graph-{o!r}") for o in CASES] + [
    pytest.param(
        o,
        "fused",
        id=f"fused-{o!r}",
        marks=pytest.mark.skipif(not _fused.available(), reason="numba is not installed (onnxtrain[fast])"),
    )
    for o in CASES
    if _fused.supports(o)
]


@pytest.mark.parametrize(("optimizer", "update"), PATHS)
def test_update_rule_matches_tensorflow_kernel(optimizer, update):
    model = Sequential.of(Input(4), Dense(3, activation="linear"), seed=9)
    engine = PortableEngine(model.layers, losses.get("mse"), optimizer, update=update)
    assert engine.fused == (update == "fused")
    w = {n: v.astype(np.float64) for n, v in model.get_weights().items()}
    state = {n: initial_state(optimizer, v) for n, v in w.items()}
    for t, (x, y) in enumerate(BATCHES, start=1):
        grads = clip(optimizer, mse_gradients(w, x, y))
        w = {n: tf_update(optimizer, w[n], grads[n], state[n], t) for n in w}
        engine.train_step(x, y)
        for name, value in engine.get_weights().items():
            np.testing.assert_allclose(value, w[name], rtol=2e-5, atol=1e-6, err_msg=f"{name} after step {t}")
    for state_name, value in engine.optimizer_state().items():
        _, slot, parameter = state_name.split(".", 2)
        np.testing.assert_allclose(value, state[parameter][slot], rtol=2e-5, atol=1e-6, err_msg=state_name)
    assert engine.step == STEPS
    engine.close()


def test_rmsprop_without_momentum_keeps_no_momentum_slot():
    model = Sequential.of(Input(4), Dense(3), seed=1)
    engine = PortableEngine(model.layers, losses.get("mse"), opt.RMSProp())
    assert sorted({t.slot for t in engine.graph.state}) == ["ms"]


def test_learning_rate_is_a_graph_input_changed_between_steps():
    model = Sequential.of(Input(4), Dense(3, activation="linear"), seed=9)
    engine = PortableEngine(model.layers, losses.get("mse"), opt.SGD(learning_rate=0.1))
    x, y = BATCHES[0]
    w0 = engine.get_weights()
    engine.learning_rate = 0.3
    assert engine.learning_rate == pytest.approx(0.3)
    engine.train_step(x, y)
    g = mse_gradients({n: v.astype(np.float64) for n, v in w0.items()}, x, y)
    np.testing.assert_allclose(
        engine.get_weights()["dense_1.bias"],
        w0["dense_1.bias"] - 0.3 * g["dense_1.bias"],
        rtol=1e-5,
        atol=1e-7,
    )


@pytest.mark.parametrize("t", [1, 2, 50, 390, 407, 408, 409, 1000, 100_000])
def test_nadam_schedule_scalars_follow_keras_product_at_any_step(t):
    """Nadam's per-step scalars from the step count alone (the schedule's product over at most SCHEDULE_TERMS
    factors), on the graph's `prepare` and the fused kernel's `scalars`, against the running product in float64."""
    optimizer = opt.Nadam(beta1=0.99, beta2=0.9)  # beta1 near 1: the product stays far from 0 for longer
    u = [optimizer.beta1 * (1 - 0.5 * 0.96**i) for i in range(1, t + 2)]
    product = float(np.prod(u[:t]))
    expected = {
        "m_scale": u[t] / (1 - product * u[t]),
        "g_scale": (1 - u[t - 1]) / (1 - product),
        "v_scale": 1 / (1 - optimizer.beta2**t),
    }
    b = GraphBuilder()
    step = b.add_input("t", np.float32, ())
    scalars = NadamRule().prepare(b, optimizer, b.constant(np.float32(0.01), "lr"), step)
    for name in expected:
        b.add_output(scalars[name], name, np.float32, ())
    session = onnxruntime.InferenceSession(b.build().SerializeToString(), providers=["CPUExecutionProvider"])
    graph = dict(zip(expected, session.run(list(expected), {"t": np.array(t, np.float32)}), strict=True))
    fused = dict(zip(expected, fused_nadam(optimizer).scalars(t, np.float32(0.01))[:3], strict=True))
    for name, value in expected.items():
        assert float(graph[name]) == pytest.approx(value, rel=1e-5), name
        assert float(fused[name]) == pytest.approx(value, rel=1e-5), name
