"""Optimizers: KotlinDL's defaults, the registry, config round trips and argument validation."""

from __future__ import annotations

import pytest

from onnxtrain import optimizers as opt
from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError

# KotlinDL's constructor defaults (org.jetbrains.kotlinx.dl.api.core.optimizer), in snake_case.
KOTLINDL_DEFAULTS = [
    (opt.SGD, {"learning_rate": 0.2}),
    (opt.Momentum, {"learning_rate": 0.001, "momentum": 0.99, "use_nesterov": True}),
    (
        opt.RMSProp,
        {"learning_rate": 0.001, "decay": 0.9, "momentum": 0.0, "epsilon": 1e-10, "centered": False},
    ),
    (opt.AdaDelta, {"learning_rate": 0.1, "rho": 0.95, "epsilon": 1e-8}),
    (opt.AdaGrad, {"learning_rate": 0.1, "initial_accumulator_value": 0.01}),
    (
        opt.AdaGradDA,
        {"learning_rate": 0.1, "initial_accumulator_value": 0.01, "l1_strength": 0.01, "l2_strength": 0.01},
    ),
    (opt.Adam, {"learning_rate": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7}),
    (opt.Adamax, {"learning_rate": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7}),
    (
        opt.Ftrl,
        {
            "learning_rate": 0.001,
            "l1_regularization_strength": 0.0,
            "l2_regularization_strength": 0.0,
            "learning_rate_power": -0.5,
            "l2_shrinkage_regularization_strength": 0.0,
            "initial_accumulator_value": 0.0,
        },
    ),
]


@pytest.mark.parametrize(("cls", "defaults"), KOTLINDL_DEFAULTS, ids=lambda v: getattr(v, "__name__", ""))
def test_defaults_are_kotlindls_and_config_round_trips(cls, defaults):
    optimizer = cls()
    config = optimizer.get_config()
    assert {k: config[k] for k in defaults} == defaults
    assert config["clip_norm"] is None and config["clip_value"] is None
    assert opt.get(config) == optimizer
    assert opt.get(cls) == optimizer


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sgd", opt.SGD),
        ("Momentum", opt.Momentum),
        ("rmsprop", opt.RMSProp),
        ("RMSProp", opt.RMSProp),
        ("adadelta", opt.AdaDelta),
        ("adagrad", opt.AdaGrad),
        ("AdaGradDA", opt.AdaGradDA),
        ("adagrad_da", opt.AdaGradDA),
        ("adam", opt.Adam),
        ("adamax", opt.Adamax),
        ("ftrl", opt.Ftrl),
    ],
)
def test_registry_resolves_names(name, cls):
    assert type(opt.get(name)) is cls


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(
        UnknownIdentifierError, match=r"Could not interpret optimizer 'nadam'. Valid names: \['adadelta'"
    ):
        opt.get("nadam")
    with pytest.raises(UnknownIdentifierError, match=r"Could not interpret optimizer 3 \(int\)"):
        opt.get(3)  # type: ignore[arg-type]


BAD = [
    (
        lambda: opt.Adam(learning_rate=0),
        r"Adam\(learning_rate=...\) expects a finite number in \(0, inf\). Received: "
        r"learning_rate=0",
    ),
    (lambda: opt.SGD(clip_value=-1.0), r"SGD\(clip_value=...\) expects .* Received: clip_value=-1.0"),
    (lambda: opt.SGD(clip_norm=float("inf")), r"clip_norm=inf"),
    (
        lambda: opt.Adam(beta1=1.0),
        r"Adam\(beta1=...\) expects a finite number in \(0, 1\). Received: beta1=1.0",
    ),
    (lambda: opt.Momentum(momentum=-0.1), r"momentum=...\) expects a finite number in \[0, inf\)"),
    (lambda: opt.Momentum(use_nesterov=1), r"use_nesterov=...\) expects a bool"),
    (lambda: opt.RMSProp(decay=1.5), r"RMSProp\(decay=...\) expects a finite number in \[0, 1\]"),
    (lambda: opt.RMSProp(epsilon=0.0), r"RMSProp\(epsilon=...\) expects a finite number in \(0, inf\)"),
    (lambda: opt.AdaGrad(initial_accumulator_value=0.0), r"AdaGrad\(initial_accumulator_value=...\)"),
    (lambda: opt.AdaGradDA(l1_strength=-1), r"l1_strength=-1"),
    (
        lambda: opt.Ftrl(learning_rate_power=0.5),
        r"Ftrl\(learning_rate_power=...\) expects a finite number in "
        r"\(-inf, 0\]",
    ),
    (
        lambda: opt.Ftrl(l2_shrinkage_regularization_strength=-0.1),
        r"l2_shrinkage_regularization_strength=-0.1",
    ),
    (lambda: opt.Adamax(epsilon=True), r"epsilon=True"),
]


@pytest.mark.parametrize(("make", "message"), BAD)
def test_bad_hyper_parameters_fail_with_clear_messages(make, message):
    with pytest.raises(InvalidArgumentError, match=message):
        make()
