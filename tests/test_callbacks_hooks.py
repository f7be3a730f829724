"""fit refuses, before its first step, a callback whose hooks it could not call as written: KotlinDL's camelCase
names, and hooks that cannot take Keras' arguments. Hooks that can (defaults, *args, **kwargs) run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.callbacks import Callback, LambdaCallback
from onnxtrain.errors import InvalidTypeError
from onnxtrain.layers import Dense, Input


def tiny_model() -> Sequential:
    model = Sequential.of(Input(4), Dense(3, activation="linear"), seed=0)
    model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", metric="accuracy")
    return model


def tiny_data() -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def assert_refused_before_training(callback: Callback, match: str) -> None:
    x, y = tiny_data()
    with tiny_model() as model:
        before = model.get_weights()
        with pytest.raises(InvalidTypeError, match=match):
            model.fit(x, y, epochs=1, batch_size=8, callbacks=[callback], verbose=0)
        for name, value in before.items():
            np.testing.assert_array_equal(model.get_weights()[name], value)


class KotlinArity(Callback):
    def on_epoch_end(self, epoch, event, logs):  # KotlinDL's (epoch, event, logs)
        raise AssertionError("never called")


class TooFew(Callback):
    def on_train_begin(self):
        raise AssertionError("never called")


class KotlinBatchArity(Callback):
    def on_train_batch_end(self, batch, batch_size, event, logs):
        raise AssertionError("never called")


class AliasArity(Callback):
    def on_batch_begin(self, batch):
        raise AssertionError("never called")


class NotAMethod(Callback):
    on_epoch_begin = None


@pytest.mark.parametrize(
    ("callback", "match"),
    [
        (
            KotlinArity(),
            r"Callback KotlinArity's on_epoch_end cannot take the arguments fit passes it \(epoch, logs\): missing a "
            r"required argument: 'logs'\. Define it as Keras' on_epoch_end\(self, epoch, logs=None\) \(KotlinDL's "
            r"event figures are in logs: .*Received: on_epoch_end\(self, epoch, event, logs\)\. Nothing was trained",
        ),
        (
            TooFew(),
            r"TooFew's on_train_begin cannot take the arguments fit passes it \(logs\): too many positional "
            r"arguments\. Define it as Keras' on_train_begin\(self, logs=None\)\. Received: on_train_begin\(self\)",
        ),
        (
            KotlinBatchArity(),
            r"on_train_batch_end\(self, batch, logs=None\).*Received: "
            r"on_train_batch_end\(self, batch, batch_size, event, logs\)",
        ),
        (AliasArity(), r"Keras' on_batch_begin\(self, batch, logs=None\)\. Received: on_batch_begin\(self, batch\)"),
        (NotAMethod(), r"NotAMethod's on_epoch_begin must be a method.*Received: on_epoch_begin=None"),
    ],
)
def test_fit_refuses_hook_that_cannot_take_keras_arguments(callback: Callback, match: str) -> None:
    assert_refused_before_training(callback, match)


class CamelEpochEnd(Callback):
    def onEpochEnd(self, epoch, event, logs):  # KotlinDL's name, as ported code has it
        raise AssertionError("never called")


class CamelTrainBegin(Callback):
    def onTrainBegin(self):
        raise AssertionError("never called")


class CamelTestEnd(Callback):
    def onTestEnd(self, logs):
        raise AssertionError("never called")


@pytest.mark.parametrize(
    ("callback", "match"),
    [
        (
            CamelEpochEnd(),
            r"Callback CamelEpochEnd defines onEpochEnd, KotlinDL's name for a hook, which fit never calls: onnxtrain "
            r"calls Keras' hooks\. Rename it to Keras' on_epoch_end\(self, epoch, logs=None\) .*Received: "
            r"onEpochEnd\(self, epoch, event, logs\)\. Nothing was trained",
        ),
        (CamelTrainBegin(), r"Rename it to Keras' on_train_begin\(self, logs=None\)\. Received: onTrainBegin\(self\)"),
        (
            CamelTestEnd(),
            r"defines onTestEnd.*Keras names it on_test_end\(self, logs=None\), which onnxtrain never calls either: "
            r"evaluate and predict take no callbacks",
        ),
    ],
)
def test_fit_refuses_kotlindl_camel_case_hook(callback: Callback, match: str) -> None:
    assert_refused_before_training(callback, match)


class Flexible(Callback):
    """Hooks Python can call with fit's arguments, however they spell their parameters, and a helper method."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_train_begin(self, *args):
        self.calls.append(("train_begin", args))

    def on_epoch_begin(self, epoch, logs):  # no default: fit always passes logs
        self.calls.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None, extra=0):
        self.calls.append(("epoch_end", (epoch, sorted(logs or {}), extra)))

    def on_train_batch_end(self, batch, **kwargs):
        raise AssertionError("fit passes logs by position: never reached in this test")

    def on_batch_end(self, *args, **kwargs):
        self.calls.append(("batch_end", args[0]))

    def on_train_end(self, logs=None, /):
        self.calls.append(("train_end", logs))

    def summarize(self, a, b, c):  # not a hook: never checked
        return a + b + c


def test_fit_calls_hooks_whose_signatures_take_keras_arguments() -> None:
    class WithBatches(Flexible):
        def on_train_batch_end(self, batch, logs=None):
            self.on_batch_end(batch, logs)

    callback = WithBatches()
    x, y = tiny_data()
    with tiny_model() as model:
        model.fit(x, y, epochs=1, batch_size=8, callbacks=[callback], verbose=0)
    assert [name for name, _ in callback.calls] == [
        "train_begin",
        "epoch_begin",
        "batch_end",
        "batch_end",
        "epoch_end",
        "train_end",
    ]
    assert callback.calls[1] == ("epoch_begin", 1)
    assert callback.calls[4] == ("epoch_end", (1, ["accuracy", "loss"], 0))


def test_keyword_only_batch_hook_with_positional_call_is_refused() -> None:
    # Flexible's on_train_batch_end(batch, **kwargs) cannot take fit's (batch, logs) by position.
    assert_refused_before_training(Flexible(), r"on_train_batch_end cannot take .*too many positional arguments")


@pytest.mark.parametrize(
    ("hook", "function", "match"),
    [
        ("on_epoch_end", lambda epoch: None, r"on_epoch_end\(epoch, logs\): too many positional arguments"),
        ("on_train_begin", lambda: None, r"on_train_begin\(logs\): too many positional arguments"),
        (
            "on_train_batch_end",
            lambda batch, log: None,
            r"on_train_batch_end\(batch, logs=logs\): missing a required argument: 'log'.*which takes \(batch, log\)",
        ),
        ("on_batch_begin", lambda: None, r"on_batch_begin\(batch, logs=logs\): too many positional arguments"),
    ],
)
def test_lambda_callback_refuses_function_fit_cannot_call(hook: str, function: Any, match: str) -> None:
    with pytest.raises(InvalidTypeError, match=r"LambdaCallback\(" + hook + r"=\.\.\.\) expects a function .*" + match):
        LambdaCallback(**{hook: function})


def test_lambda_callback_takes_functions_that_fit_can_call() -> None:
    seen: list[Any] = []
    callback = LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(epoch),
        on_train_batch_end=lambda batch, logs: seen.append(batch),
        on_train_begin=print,  # a builtin, whose signature Python may not read: left to the call
    )
    x, y = tiny_data()
    with tiny_model() as model:
        model.fit(x, y, epochs=1, batch_size=8, callbacks=[callback], verbose=0)
    assert seen == [1, 2, 1]
