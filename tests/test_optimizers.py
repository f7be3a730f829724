"""Optimizers: KotlinDL's defaults, the registry, config round trips and argument validation."""

from __future__ import annotations

import numpy as np
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
    # (RMSProp, AdaGrad, AdaDelta saved by name come back as Keras' class of that name, with their own numbers)
    assert opt.get(config).get_config() == config
    assert opt.get(cls) == optimizer


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sgd", opt.SGD),
        ("Momentum", opt.Momentum),
        ("rmsprop", opt.RMSprop),  # names are Keras' API: Keras' classes and defaults
        ("RMSprop", opt.RMSprop),
        ("RMSProp", opt.RMSProp),  # KotlinDL's class name, spelled exactly
        ("adadelta", opt.Adadelta),
        ("AdaDelta", opt.AdaDelta),
        ("adagrad", opt.Adagrad),
        ("AdaGrad", opt.AdaGrad),
        ("AdaGradDA", opt.AdaGradDA),
        ("adagrad_da", opt.AdaGradDA),
        ("adam", opt.Adam),
        ("adamax", opt.Adamax),
        ("Nadam", opt.Nadam),
        ("ftrl", opt.Ftrl),
    ],
)
def test_registry_resolves_names(name, cls):
    assert type(opt.get(name)) is cls


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(
        UnknownIdentifierError, match=r"Could not interpret optimizer 'adabelief'. Valid names: \['adadelta'"
    ):
        opt.get("adabelief")
    with pytest.raises(UnknownIdentifierError, match=r"Could not interpret optimizer 3 \(int\)"):
        opt.get(3)  # type: ignore[arg-type]


BAD = [
    (
        lambda: opt.Adam(learning_rate=-1e-3),
        r"Adam\(learning_rate=...\) expects a finite number in \[0, 3\.40282e\+38\]. Received: "
        r"learning_rate=-0.001",
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


@pytest.mark.parametrize(
    ("make", "arg", "expected"),
    [
        (lambda: opt.Adam(learning_rate=np.float32(0.5)), "learning_rate", 0.5),
        (lambda: opt.SGD(learning_rate=np.int64(1)), "learning_rate", 1.0),
        (lambda: opt.Adam(beta1=np.float64(0.8)), "beta1", 0.8),
        (lambda: opt.RMSProp(clip_norm=np.float16(2)), "clip_norm", 2.0),
        (lambda: opt.Ftrl(learning_rate_power=np.int32(-1)), "learning_rate_power", -1.0),
    ],
)
def test_numpy_scalars_are_accepted_and_stored_as_python_floats(make, arg, expected):
    value = getattr(make(), arg)
    assert type(value) is float and value == expected


def test_numpy_bool_flags_are_stored_as_bools():
    assert opt.Momentum(use_nesterov=np.bool_(False)).use_nesterov is False


@pytest.mark.parametrize("value", [True, np.True_, 10**400, "0.1", None])
def test_bools_strings_and_overflowing_ints_are_not_learning_rates(value):
    with pytest.raises(
        InvalidArgumentError, match=r"SGD\(learning_rate=...\) expects a finite number in \[0, 3\.40282e\+38\]"
    ):
        opt.SGD(learning_rate=value)


ASSIGNMENTS = [
    (
        opt.Adam,
        "learning_rate",
        -1.0,
        r"Adam\(learning_rate=...\) expects .* \[0, 3\.40282e\+38\]. Received: learning_rate=-1.0",
    ),
    (opt.Adam, "beta1", 5, r"Adam\(beta1=...\) expects a finite number in \(0, 1\). Received: beta1=5"),
    (opt.SGD, "learning_rate", "x", r"SGD\(learning_rate=...\) expects .* Received: learning_rate='x'"),
    (opt.SGD, "clip_norm", float("nan"), r"SGD\(clip_norm=...\) expects .* or None. Received: clip_norm=nan"),
    (opt.Momentum, "use_nesterov", 1, r"Momentum\(use_nesterov=...\) expects a bool. Received: use_nesterov=1"),
    (opt.RMSProp, "decay", 1.5, r"RMSProp\(decay=...\) expects a finite number in \[0, 1\]. Received: decay=1.5"),
    (opt.Ftrl, "learning_rate_power", 0.5, r"Ftrl\(learning_rate_power=...\) .* Received: learning_rate_power=0.5"),
]


@pytest.mark.parametrize(("cls", "arg", "value", "message"), ASSIGNMENTS)
def test_assignment_after_construction_is_checked_like_the_constructor(cls, arg, value, message):
    optimizer = cls()
    before = getattr(optimizer, arg)
    with pytest.raises(InvalidArgumentError, match=message):
        setattr(optimizer, arg, value)
    assert getattr(optimizer, arg) == before


def test_assigning_a_valid_rate_stores_a_float_and_keeps_the_config_round_trip():
    optimizer = opt.Adam()
    optimizer.learning_rate = np.float64(0.25)
    optimizer.clip_value = None
    assert type(optimizer.learning_rate) is float and optimizer.learning_rate == 0.25
    assert opt.get(optimizer.get_config()) == optimizer


def test_a_subclass_keeps_the_checks_of_its_bases():
    class Custom(opt.Adam):
        pass

    with pytest.raises(InvalidArgumentError, match=r"Custom\(beta2=...\) .* Received: beta2=2"):
        Custom(beta2=2)
    with pytest.raises(InvalidArgumentError, match=r"Custom\(learning_rate=...\) .* Received: learning_rate=-1"):
        Custom().learning_rate = -1


# Positional arguments follow KotlinDL's constructors (and Keras'): learning_rate, then each optimizer's own
# settings in KotlinDL's order. Every value differs from its default, so a value in the wrong field shows.
POSITIONAL = [
    (lambda: opt.SGD(0.5), {"learning_rate": 0.5}),
    (lambda: opt.Momentum(0.01, 0.9, False), {"learning_rate": 0.01, "momentum": 0.9, "use_nesterov": False}),
    (
        lambda: opt.RMSProp(0.01, 0.8, 0.5, 1e-6, True),
        {"learning_rate": 0.01, "decay": 0.8, "momentum": 0.5, "epsilon": 1e-6, "centered": True},
    ),
    (lambda: opt.AdaDelta(0.5, 0.9, 1e-6), {"learning_rate": 0.5, "rho": 0.9, "epsilon": 1e-6}),
    (lambda: opt.AdaGrad(0.5, 0.2), {"learning_rate": 0.5, "initial_accumulator_value": 0.2}),
    (
        lambda: opt.AdaGradDA(0.5, 0.2, 0.3, 0.4),
        {"learning_rate": 0.5, "initial_accumulator_value": 0.2, "l1_strength": 0.3, "l2_strength": 0.4},
    ),
    (
        lambda: opt.Adam(0.01, 0.8, 0.99, 1e-8),
        {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-8},
    ),
    (
        lambda: opt.Adamax(0.01, 0.8, 0.99, 1e-8),
        {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-8},
    ),
    (
        lambda: opt.Ftrl(0.01, 0.1, 0.2, -1.0, 0.3, 0.4),
        {
            "learning_rate": 0.01,
            "l1_regularization_strength": 0.1,
            "l2_regularization_strength": 0.2,
            "learning_rate_power": -1.0,
            "l2_shrinkage_regularization_strength": 0.3,
            "initial_accumulator_value": 0.4,
        },
    ),
]


@pytest.mark.parametrize(
    ("make", "expected"),
    POSITIONAL,
    ids=["SGD", "Momentum", "RMSProp", "AdaDelta", "AdaGrad", "AdaGradDA", "Adam", "Adamax", "Ftrl"],
)
def test_positional_arguments_follow_kotlindls_constructor_order(make, expected):
    optimizer = make()
    assert {name: getattr(optimizer, name) for name in expected} == expected
    assert optimizer.clip_norm is None and optimizer.clip_value is None
    assert opt.get(optimizer.get_config()).get_config() == optimizer.get_config()


def test_adam_second_positional_argument_is_beta1():
    adam = opt.Adam(0.001, 0.8)
    assert adam.beta1 == 0.8 and adam.clip_norm is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: opt.SGD(0.1, 1.0),
        lambda: opt.Momentum(0.01, 0.9, True, 1.0),
        lambda: opt.Adam(0.001, 0.9, 0.999, 1e-7, 1.0),
        lambda: opt.AdaGrad(0.1, 0.01, 1.0),
        lambda: opt.Ftrl(0.001, 0.0, 0.0, -0.5, 0.0, 0.0, 1.0),
    ],
    ids=["SGD", "Momentum", "Adam", "AdaGrad", "Ftrl"],
)
def test_clip_settings_are_keyword_only(make):
    with pytest.raises(TypeError, match="positional argument"):
        make()


def test_clip_settings_by_keyword_still_work():
    adam = opt.Adam(0.01, clip_norm=1.0, clip_value=0.5)
    assert (adam.learning_rate, adam.beta1, adam.clip_norm, adam.clip_value) == (0.01, 0.9, 1.0, 0.5)
