"""What a Keras user writes: Keras' argument spellings (onnxtrain/optimizers/_keras_arguments.py), AdamW,
Adam(amsgrad=True, weight_decay=...) and SGD(momentum=..., nesterov=...).

The steps are compared with Keras 3 itself: tests/data/keras_optimizer_steps.npz holds a small MLP's weights after
each of five updates under Keras' optimizers (written by tools/keras_optimizer_fixtures.py), and each case's Keras
keywords build onnxtrain's optimizer of the same class name here, on the graph's update and on the fused kernel.
The numpy references (float64) for the same optimizers are in tests/test_portable_optimizers.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import Sequential, losses
from onnxtrain import optimizers as opt
from onnxtrain._ort_training import check_optimizer
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnknownIdentifierError, UnsupportedError
from onnxtrain.layers import Dense, Input
from onnxtrain.portable import PortableEngine, _fused

KERAS_STEPS = np.load(Path(__file__).parent / "data" / "keras_optimizer_steps.npz")
CASES = sorted({key.split("/")[0] for key in KERAS_STEPS.files} - {"start", "x", "y"})
STEPS = sum(1 for key in KERAS_STEPS.files if key.startswith("x/"))
UPDATES = [
    "graph",
    pytest.param("fused", marks=pytest.mark.skipif(not _fused.available(), reason="numba is not installed")),
]


def keras_case(case: str) -> opt.Optimizer:
    """onnxtrain's optimizer made with the Keras class name and keywords the fixture was written with."""
    cls, arguments, ours = json.loads(str(KERAS_STEPS[f"{case}/arguments"]))
    return getattr(opt, cls)(**arguments, **ours)


def run(optimizer: opt.Optimizer, update: str = "graph"):
    """The fixture's model trained from its start with `optimizer`: the weights after each step, from step 1."""
    model = Sequential.of(Input(4), Dense(5, activation="relu"), Dense(3, activation="linear"), seed=0)
    engine = PortableEngine(model.layers, losses.get("mse"), optimizer, update=update)
    assert engine.fused == (update == "fused")
    engine.set_weights({name: KERAS_STEPS[f"start/{name}"] for name in model.get_weights()})
    steps = []
    for step in range(STEPS):
        engine.train_step(KERAS_STEPS[f"x/{step}"], KERAS_STEPS[f"y/{step}"])
        steps.append(engine.get_weights())
    engine.close()
    return steps


def keras_error(case: str, steps) -> float:
    """The largest difference from Keras' weights, relative to the weights' scale, over every step."""
    return max(
        float(np.abs(value - KERAS_STEPS[f"{case}/{step}/{name}"]).max() / np.abs(value).max())
        for step, weights in enumerate(steps, start=1)
        for name, value in weights.items()
    )


@pytest.mark.parametrize("update", UPDATES)
@pytest.mark.parametrize("case", CASES)
def test_steps_match_keras_3(case, update):
    # float32 both, agreeing to ~1e-7 of the weights' scale; global_clipnorm to ~1e-6, by onnxtrain's +1e-6 on the
    # norm. ONNX Runtime's AdamW order (decay after the update) would be off by lr * weight_decay * each update.
    assert keras_error(case, run(keras_case(case), update)) < 5e-6


@pytest.mark.parametrize(
    ("case", "without"),
    [
        ("adamw", opt.AdamW(learning_rate=0.01, weight_decay=0.0)),
        ("adam_amsgrad", opt.Adam(learning_rate=0.01, beta2=0.5)),
        ("sgd_nesterov", opt.SGD(learning_rate=0.05, momentum=0.9)),
        ("nadam", opt.Adam(learning_rate=0.01, beta1=0.8, beta2=0.6, epsilon=1e-6)),
        ("nadam_weight_decay", opt.Nadam(learning_rate=0.01, clip_norm=0.1)),
        ("rmsprop", opt.RMSProp(learning_rate=0.01, rho=0.8, epsilon=1e-7)),
    ],
    ids=["weight_decay", "amsgrad", "nesterov", "nadam-not-adam", "nadam-weight_decay", "rmsprop-initial_mean_square"],
)
def test_the_keras_fixture_tells_each_option_apart(case, without):
    # Without the option the same steps end far outside test_steps_match_keras_3's tolerance: the fixture tests it.
    assert keras_error(case, run(keras_case(case))) < 5e-6
    assert keras_error(case, run(without)) > 1e-3


# Keras' spelling -> what onnxtrain stores, per class.
SPELLINGS = [
    (lambda: opt.Adam(beta_1=0.8, beta_2=0.99), {"beta1": 0.8, "beta2": 0.99}),
    (lambda: opt.AdamW(beta_1=0.8, beta_2=0.99), {"beta1": 0.8, "beta2": 0.99}),
    (lambda: opt.Adamax(beta_1=0.8, beta_2=0.99), {"beta1": 0.8, "beta2": 0.99}),
    (lambda: opt.Nadam(beta_1=0.8, beta_2=0.99), {"beta1": 0.8, "beta2": 0.99}),
    (lambda: opt.RMSProp(rho=0.8), {"decay": 0.8}),
    (lambda: opt.Momentum(nesterov=False), {"use_nesterov": False}),
    (lambda: opt.SGD(clipvalue=0.5), {"clip_value": 0.5}),
    (lambda: opt.Adam(global_clipnorm=1.0), {"clip_norm": 1.0}),
    (lambda: opt.Ftrl(clipvalue=0.5, global_clipnorm=2.0), {"clip_value": 0.5, "clip_norm": 2.0}),
]


KERAS_DEFAULTS = [  # keras/src/optimizers/{rmsprop,adagrad,adadelta}.py; KotlinDL's classes keep KotlinDL's
    (opt.RMSprop, opt.RMSProp, {"learning_rate": 0.001, "decay": 0.9, "epsilon": 1e-7, "initial_mean_square": 0.0}),
    (opt.Adagrad, opt.AdaGrad, {"learning_rate": 0.001, "initial_accumulator_value": 0.1}),
    (opt.Adadelta, opt.AdaDelta, {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7}),
]


@pytest.mark.parametrize(("keras", "kotlindl", "defaults"), KERAS_DEFAULTS, ids=lambda c: getattr(c, "__name__", ""))
def test_keras_class_names_have_keras_defaults_and_names_pick_them(keras, kotlindl, defaults):
    assert issubclass(keras, kotlindl) and keras is not kotlindl
    made = keras()
    assert {name: getattr(made, name) for name in defaults} == defaults
    assert {name: getattr(kotlindl(), name) for name in defaults} != defaults
    assert type(opt.get(made.name)) is keras and type(opt.get(keras.__name__)) is keras  # compile("rmsprop")
    kotlindl_config = kotlindl().get_config()  # a KotlinDL optimizer saved by name comes back with its numbers
    assert opt.get(kotlindl_config).get_config() == kotlindl_config
    assert _fused.supports(made) == _fused.supports(kotlindl())


def test_keras_rmsprop_with_keras_arguments_alone_steps_as_keras_3():
    cls, arguments, _ = json.loads(str(KERAS_STEPS["rmsprop/arguments"]))
    assert cls == "RMSprop"
    assert keras_error("rmsprop", run(opt.RMSprop(**arguments))) < 5e-6


@pytest.mark.parametrize(("make", "expected"), SPELLINGS)
def test_keras_spellings_set_onnxtrains_arguments_and_the_config_keeps_onnxtrains_names(make, expected):
    optimizer = make()
    assert {name: getattr(optimizer, name) for name in expected} == expected
    config = optimizer.get_config()
    assert not {"beta_1", "beta_2", "rho", "clipvalue", "global_clipnorm"} & config.keys()
    assert opt.get(config).get_config() == config  # (a KotlinDL RMSProp comes back as Keras' class, same numbers)


def test_keras_arguments_that_ask_for_nothing_are_accepted():
    # What Keras' get_config() holds for an optimizer without EMA, loss scaling or accumulation.
    off = {
        "name": "adam",  # a label Keras' config holds
        "use_ema": False,
        "ema_momentum": 0.99,
        "ema_overwrite_frequency": None,
        "loss_scale_factor": None,
        "gradient_accumulation_steps": None,
        "clipnorm": None,
        "global_clipnorm": None,
        "clipvalue": None,
    }
    assert opt.Adam(beta_1=0.9, **off) == opt.Adam()
    assert opt.RMSProp(weight_decay=None, **off) == opt.RMSProp()
    assert opt.Adam(weight_decay=None) == opt.Adam()


BAD = [
    (
        lambda: opt.SGD(momentum=1.5),
        InvalidArgumentError,
        r"SGD\(momentum=\.\.\.\) expects a finite number in \[0, 1\]",
    ),
    (lambda: opt.Adam(beta1=0.8, beta_1=0.9), InvalidArgumentError, r"Adam takes beta1 or its Keras name beta_1, not"),
    (lambda: opt.Adam(0.1, 0.8, beta_1=0.9), InvalidArgumentError, r"Received: beta1 \(positional\), beta_1=0\.9"),
    (lambda: opt.RMSProp(decay=0.8, rho=0.9), InvalidArgumentError, r"RMSProp takes decay or its Keras name rho"),
    (
        lambda: opt.SGD(clip_value=1.0, clipvalue=2.0),
        InvalidArgumentError,
        r"SGD takes clip_value or its Keras name clipvalue, not both\. Received: clip_value=1\.0, clipvalue=2\.0",
    ),
    (lambda: opt.Adam(clip_norm=1.0, global_clipnorm=1.0), InvalidArgumentError, r"clip_norm or its Keras name"),
    (
        lambda: opt.SGD(clipnorm=1.0),
        UnsupportedError,
        r"SGD does not support Keras' clipnorm=1\.0 \(Keras' clipnorm clips each variable's gradient by its own "
        r"norm; .* global_clipnorm=\.\.\.",
    ),
    (
        lambda: opt.Adam(use_ema=True, ema_momentum=0.9, loss_scale_factor=128.0, gradient_accumulation_steps=4),
        UnsupportedError,
        r"Adam does not support Keras' use_ema=True .*; ema_momentum=0\.9 .*; loss_scale_factor=128\.0 .*; "
        r"gradient_accumulation_steps=4 \(.*batch_size",
    ),
    (lambda: opt.RMSProp(weight_decay=0.01), UnsupportedError, r"weight_decay=0\.01 \(.*AdamW\(weight_decay="),
    (lambda: opt.Adam(nesterov=True), InvalidTypeError, r"Adam\(\) got an unexpected keyword argument 'nesterov'"),
    (lambda: opt.Adam(weight_decay=-1.0), InvalidArgumentError, r"Adam\(weight_decay=\.\.\.\) expects"),
    (lambda: opt.AdamW(amsgrad="yes"), InvalidArgumentError, r"AdamW\(amsgrad=\.\.\.\) expects a bool"),
    (lambda: opt.SGD(momentum=-0.5), InvalidArgumentError, r"SGD\(momentum=\.\.\.\) expects"),
    (lambda: opt.get("lion"), UnknownIdentifierError, r"Keras' Lion .* AdamW is the nearest"),
]


@pytest.mark.parametrize(("make", "error", "message"), BAD)
def test_keras_arguments_onnxtrain_cannot_honour_are_refused_by_name(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_adamw_has_keras_defaults_and_keras_positional_order():
    assert opt.AdamW().get_config() == {
        "name": "adamw",
        "learning_rate": 0.001,
        "weight_decay": 0.004,
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
        "clip_norm": None,
        "clip_value": None,
    }
    assert opt.AdamW(0.01, 0.1).weight_decay == 0.1  # keras.optimizers.AdamW(learning_rate, weight_decay, ...)
    assert opt.get("AdamW") == opt.AdamW()
    assert opt.get(opt.AdamW(amsgrad=True).get_config()) == opt.AdamW(amsgrad=True)


def test_sgd_with_momentum_stays_an_sgd_whose_config_round_trips_and_the_string_keeps_kotlindls_defaults():
    sgd = opt.SGD(learning_rate=0.05, momentum=0.9, nesterov=True)
    assert isinstance(sgd, opt.SGD) and opt.get(sgd.get_config()) == sgd
    assert opt.get("sgd") == opt.SGD(learning_rate=0.2, momentum=0.0, nesterov=False)
    with pytest.raises(TypeError, match="positional argument"):
        opt.SGD(0.1, 0.9)  # KotlinDL's second argument is its clipping: momentum is keyword-only


def test_sgd_with_momentum_takes_momentums_update_and_state():
    model = Sequential.of(Input(4), Dense(3), seed=1)
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    y = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    engines = [
        PortableEngine(model.layers, losses.get("mse"), o, update="graph")
        for o in (opt.SGD(0.05, momentum=0.9, nesterov=True), opt.Momentum(0.05, 0.9, True))
    ]
    for _ in range(3):
        for engine in engines:
            engine.train_step(x, y)
    sgd, momentum = engines
    assert sgd.optimizer_state().keys() == momentum.optimizer_state().keys()
    for name, value in sgd.get_weights().items():
        np.testing.assert_array_equal(value, momentum.get_weights()[name])
    assert {t.slot for t in PortableEngine(model.layers, losses.get("mse"), opt.SGD()).graph.state} == set()


ORT_REFUSED = [
    (opt.AdamW(), r"cannot run AdamW\(weight_decay=\.\.\.\) as Keras does: .* decays the weights after"),
    (opt.Adam(weight_decay=0.01), r"cannot run Adam\(weight_decay=\.\.\.\)"),
    (opt.Adam(amsgrad=True), r"cannot run Adam\(amsgrad=True\)"),
    (opt.SGD(momentum=0.9), r"cannot run SGD\(momentum=\.\.\.\): ONNX Runtime's SGD kernel has no momentum"),
]


@pytest.mark.parametrize(("optimizer", "message"), ORT_REFUSED, ids=repr)
def test_ort_training_refuses_what_its_kernels_compute_differently(optimizer, message):
    with pytest.raises(UnsupportedError, match=message):
        check_optimizer(optimizer)


def test_ort_training_takes_adamw_without_weight_decay_and_sgd_without_momentum():
    for optimizer in (opt.AdamW(weight_decay=0.0), opt.Adam(weight_decay=None), opt.SGD(momentum=0.0)):
        check_optimizer(optimizer)


@pytest.mark.training
def test_ort_training_runs_adamw_without_weight_decay_as_the_portable_engine():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(8, 3)).astype(np.float32)
    optimizer = opt.AdamW(learning_rate=0.01, weight_decay=0.0, beta_1=0.8, global_clipnorm=0.5)
    portable = PortableEngine(
        Sequential.of(Input(4), Dense(5), Dense(3, activation="linear"), seed=2).layers,
        losses.get("mse"),
        optimizer,
        update="graph",
    )
    with Sequential.of(Input(4), Dense(5), Dense(3, activation="linear"), seed=2) as model:
        model.compile(optimizer=optimizer, loss="mse", engine="ort-training")
        for _ in range(3):
            model._trainer.engine.train_step(x, y)
            portable.train_step(x, y)
        for name, value in model.get_weights().items():
            np.testing.assert_allclose(value, portable.get_weights()[name], rtol=1e-5, atol=1e-6, err_msg=name)
    portable.close()
