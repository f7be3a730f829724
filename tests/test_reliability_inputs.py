"""Bad inputs never reach ONNX Runtime: each is refused with one onnxtrain error that names the argument, what
was received and what was expected; the edge cases that are valid are handled and give the canonical result.

The table covers Sequential.fit / evaluate / predict / predict_softly, InferenceModel.predict and the model's
state. Test ids start with the category; `pytest --collect-only -q tests/test_reliability_inputs.py` counts
them (docs/reliability.md has the figures).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from onnxtrain import Dataset, InferenceModel, Sequential, load_model
from onnxtrain.callbacks import CSVLogger, TerminateOnNaN
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelStateError,
    OnnxtrainError,
    ShapeError,
    UnknownIdentifierError,
)
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.optimizers import SGD, Adam

N = 24
RNG = np.random.default_rng(11)
X = RNG.random((N, 4, 3), dtype=np.float32)
Y = (X.reshape(N, -1).sum(axis=1) * 3).astype(np.int64) % 3


def _model(seed: int = 2, loss: str = "softmax_cross_entropy_with_logits", units: int = 3) -> Sequential:
    last = "sigmoid" if loss == "binary_crossentropy" else "linear"
    return Sequential.of(Input(4, 3), Flatten(), Dense(8), Dense(units, activation=last), seed=seed)


def _compiled(seed: int = 2, loss: str = "softmax_cross_entropy_with_logits", units: int = 3) -> Sequential:
    model = _model(seed, loss, units)
    model.compile(optimizer=Adam(learning_rate=0.01), loss=loss, metric="accuracy")
    return model


@dataclass
class Env:
    model: Sequential  # compiled softmax classifier, 3 classes
    regression: Sequential  # compiled mse, 2 outputs
    binary: Sequential  # compiled binary cross-entropy, 1 sigmoid output
    inference: InferenceModel
    closed: Sequential
    closed_inference: InferenceModel
    uncompiled: Sequential
    loaded_uncompiled: Sequential


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    folder = tmp_path_factory.mktemp("reliability-inputs")
    model = _compiled()
    model.fit((X, Y), epochs=1, batch_size=8, verbose=0)
    closed = _compiled()
    closed.close()
    closed_inference = InferenceModel.load(model.export(folder / "closed.onnx"))
    closed_inference.close()
    _model(seed=3).save(folder / "uncompiled")
    yield Env(
        model=model,
        regression=_compiled(loss="mse", units=2),
        binary=_compiled(loss="binary_crossentropy", units=1),
        inference=InferenceModel.load(model.save(folder / "saved")),
        closed=closed,
        closed_inference=closed_inference,
        uncompiled=_model(seed=4),
        loaded_uncompiled=load_model(folder / "uncompiled"),
    )
    model.close()


def _fit(model: Sequential, x: Any = X, y: Any = Y, **kwargs: Any) -> Any:
    return model.fit((x, y), **{"epochs": 1, "batch_size": 8, "verbose": 0, **kwargs})


def _with(x: np.ndarray, index: tuple[int, ...], value: float) -> np.ndarray:
    x = x.astype(np.float64 if math.isinf(value) and abs(value) > 3e38 else x.dtype, copy=True)
    x[index] = value
    return x


@dataclass(frozen=True)
class Bad:
    """One bad call: the error type, a pattern of its message, and the argument the message must name."""

    category: str
    name: str
    call: Callable[[Env], Any]
    error: type[Exception]
    match: str
    argument: str

    @property
    def id(self) -> str:
        return f"{self.category}:{self.name}"


# Every message names the argument, what was received (or found) and what was expected (or valid); a state
# error names the call, the state the model is in, and what to do first.
RECEIVED = re.compile(r"Received|Found|found|Could not interpret \w+ \S")
EXPECTED = re.compile(r"expects|expected|Expected|Valid names|needs|must")
STATE = re.compile(r"closed|needs a compiled model|needs a classification loss")
FIX = re.compile(r"first|again|use ")

BAD: list[Bad] = [
    # --- x shape: per-example shape, rank, zero-length data -------------------------------------------------
    Bad(
        "shape",
        "fit-flat-784-style",
        lambda e: _fit(e.model, X.reshape(N, 12)),
        ShapeError,
        r"dataset\.x expects shape \[None, 4, 3\]\. Received: dataset\.x\.shape=\(24, 12\)\. "
        r"Reshape the examples: x\.reshape\(-1, 4, 3\), or Dataset\(x\.reshape\(-1, 4, 3\), y\)",
        "dataset.x",
    ),
    Bad(
        "shape",
        "fit-channels-first",
        lambda e: _fit(e.model, np.ascontiguousarray(np.moveaxis(X, -1, 1))),
        ShapeError,
        r"dataset\.x expects shape \[None, 4, 3\]\. Received: dataset\.x\.shape=\(24, 3, 4\)\. The examples look "
        r"channels-first; the model reads channels last: move the channel axis with np\.moveaxis\(x, 1, -1\) \(a "
        r"reshape would scramble the images\)\.",
        "dataset.x",
    ),
    Bad(
        "shape",
        "predict-784-for-28x28x1",
        lambda e: e.model.predict(np.zeros((5, 784), np.float32)),
        ShapeError,
        r"x expects shape \[None, 4, 3\] or \[4, 3\] for one example\. Received: x\.shape=\(5, 784\)",
        "x",
    ),
    Bad(
        "shape",
        "inference-predict-flat",
        lambda e: e.inference.predict(X.reshape(N, 12)),
        ShapeError,
        r"x expects shape \[None, 4, 3\].*Received: x\.shape=\(24, 12\)\. Reshape it",
        "x",
    ),
    Bad(
        "shape",
        "evaluate-transposed",
        lambda e: e.model.evaluate((X.transpose(0, 2, 1), Y)),
        ShapeError,
        r"dataset\.x expects shape \[None, 4, 3\]\. Received: dataset\.x\.shape=\(24, 3, 4\)",
        "dataset.x",
    ),
    Bad(
        "shape",
        "fit-rank-4",
        lambda e: _fit(e.model, X[..., None]),
        ShapeError,
        r"Received: dataset\.x\.shape=\(24, 4, 3, 1\)",
        "dataset.x",
    ),
    Bad(
        "shape",
        "predict-rank-1",
        lambda e: e.model.predict(X.reshape(-1)),
        ShapeError,
        r"Received: x\.shape=\(288,\)",
        "x",
    ),
    Bad(
        "shape",
        "inference-rank-0",
        lambda e: e.inference.predict(np.array(1.0, np.float32)),
        ShapeError,
        r"Received: x\.shape=\(\)",
        "x",
    ),
    Bad(
        "shape",
        "fit-x-rank-1-vs-labels",
        lambda e: _fit(e.model, X.reshape(-1)),
        ShapeError,
        r"dataset\[0\] and dataset\[1\] to have the same length\. Received: dataset\[0\]\.shape=\(288,\)",
        "dataset[0]",
    ),
    Bad(
        "shape",
        "validation-shape",
        lambda e: _fit(e.model, validation=(X[:, :2], Y)),
        ShapeError,
        r"validation\.x expects shape \[None, 4, 3\]\. Received: validation\.x\.shape=\(24, 2, 3\)",
        "validation.x",
    ),
    Bad(
        "shape",
        "fit-zero-length",
        lambda e: _fit(e.model, X[:0], Y[:0]),
        InvalidArgumentError,
        r"expects at least one example\. Received: dataset\[0\]\.shape=\(0, 4, 3\)",
        "dataset[0]",
    ),
    Bad(
        "shape",
        "predict-zero-length",
        lambda e: e.model.predict(X[:0]),
        InvalidArgumentError,
        r"x expects at least one example\. Received: x\.shape=\(0, 4, 3\)",
        "x",
    ),
    Bad(
        "shape",
        "inference-zero-length",
        lambda e: e.inference.predict(X[:0]),
        InvalidArgumentError,
        r"x expects at least one example\. Received: x\.shape=\(0, 4, 3\)",
        "x",
    ),
    Bad(
        "shape",
        "predict-softly-wrong-shape",
        lambda e: e.model.predict_softly(X[:, :2]),
        ShapeError,
        r"Received: x\.shape=\(24, 2, 3\)",
        "x",
    ),
    # --- x dtype: object, strings, complex, datetime, records, extended floats, not an array -------------------
    *[
        Bad(
            "dtype",
            f"predict-{name}",
            (lambda e, a=array: e.model.predict(a)),
            InvalidTypeError,
            rf"x expects a float or integer array\. Received: dtype {re.escape(str(array.dtype))}",
            "x",
        )
        for name, array in [
            ("object", X.astype(object)),
            ("str", X.astype(str)),
            ("complex", X.astype(np.complex64)),
            ("datetime", np.zeros((2, 4, 3), "datetime64[s]")),
            ("record", np.zeros((2, 4, 3), [("a", "f4")])),
            ("float128", X.astype(np.longdouble)),
        ]
    ],
    *[
        Bad(
            "dtype",
            f"inference-{name}",
            (lambda e, a=array: e.inference.predict(a)),
            InvalidTypeError,
            rf"x expects a float or integer array\. Received: dtype {re.escape(str(array.dtype))}",
            "x",
        )
        for name, array in [("object", X.astype(object)), ("bytes", X.astype(bytes)), ("complex", X.astype(complex))]
    ],
    *[
        Bad(
            "dtype",
            f"fit-{name}",
            (lambda e, a=array: _fit(e.model, a)),
            InvalidTypeError,
            rf"dataset\[0\] to be a numeric \(integer or float\) array\. Received: dataset\[0\] with dtype="
            rf"{re.escape(str(array.dtype))}",
            "dataset[0]",
        )
        for name, array in [("object", X.astype(object)), ("str", X.astype(str)), ("complex", X.astype(complex))]
    ],
    Bad(
        "dtype",
        "fit-bool",
        lambda e: _fit(e.model, X > 0.5),
        InvalidTypeError,
        r"Received: dataset\[0\] with dtype=bool\. Convert it first",
        "dataset[0]",
    ),
    Bad(
        "dtype",
        "predict-none",
        lambda e: e.model.predict(None),
        InvalidTypeError,
        r"x expects a numpy array of shape \[None, 4, 3\]\. Received: NoneType",
        "x",
    ),
    Bad(
        "dtype",
        "predict-string",
        lambda e: e.inference.predict("image.png"),
        InvalidTypeError,
        r"x expects a numpy array of shape \[None, 4, 3\]\. Received: str",
        "x",
    ),
    Bad(
        "dtype",
        "predict-ragged-list",
        lambda e: e.model.predict([[1.0, 2.0], [3.0]]),
        InvalidTypeError,
        r"x expects a numeric array\. Received: a ragged list",
        "x",
    ),
    Bad(
        "dtype",
        "fit-not-a-pair",
        lambda e: e.model.fit((X, Y, Y)),
        InvalidTypeError,
        r"dataset expects a Dataset or an \(x, y\) tuple of arrays\. Received: tuple of length 3",
        "dataset",
    ),
    # --- non-finite x: the first offending index -------------------------------------------------------------
    Bad(
        "finite",
        "fit-nan",
        lambda e: _fit(e.model, _with(X, (3, 1, 2), np.nan)),
        InvalidArgumentError,
        r"^dataset\[0\] expects finite values\. Received: dataset\[0\]\[3, 1, 2\]=nan$",
        "dataset[0]",
    ),
    Bad(
        "finite",
        "fit-x-y-nan",
        lambda e: e.model.fit(_with(X, (3, 1, 2), np.nan), Y, epochs=1, verbose=0),
        InvalidArgumentError,
        r"^x expects finite values\. Received: x\[3, 1, 2\]=nan$",
        "x",
    ),
    Bad(
        "shape",
        "fit-x-y-example-shape",
        lambda e: e.model.fit(X[:, :2], Y, epochs=1, verbose=0),
        ShapeError,
        r"^x expects shape \[None, 4, 3\]\. Received: x\.shape=\(\d+, 2, 3\)\.$",
        "x",
    ),
    Bad(
        "labels",
        "evaluate-x-y-nan-targets",
        lambda e: e.regression.evaluate(X, _with(np.zeros((N, 2), np.float32), (4, 1), np.nan), verbose=0),
        InvalidArgumentError,
        r"^y expects finite values\. Received: y\[4, 1\]=nan$",
        "y",
    ),
    Bad(
        "finite",
        "fit-inf",
        lambda e: _fit(e.model, _with(X, (0, 0, 1), np.inf)),
        InvalidArgumentError,
        r"Received: dataset\[0\]\[0, 0, 1\]=inf$",
        "dataset[0]",
    ),
    Bad(
        "finite",
        "fit-float64-overflows-float32",
        lambda e: _fit(e.model, _with(X.astype(np.float64), (5, 2, 0), 1e300)),
        InvalidArgumentError,
        r"^dataset\[0\] expects values within float32's range \(\|x\| <= 3.4e38\), which the model computes in\. "
        r"Received: dataset\[0\]\[5, 2, 0\]=1e\+300$",
        "dataset[0]",
    ),
    Bad(
        "finite",
        "evaluate-nan",
        lambda e: e.model.evaluate((_with(X, (7, 3, 2), np.nan), Y)),
        InvalidArgumentError,
        r"Received: dataset\[0\]\[7, 3, 2\]=nan$",
        "dataset[0]",
    ),
    Bad(
        "finite",
        "validation-nan",
        lambda e: _fit(e.model, validation=(_with(X, (1, 1, 1), np.nan), Y)),
        InvalidArgumentError,
        r"Received: validation\[0\]\[1, 1, 1\]=nan$",
        "validation[0]",
    ),
    Bad(
        "finite",
        "predict-nan",
        lambda e: e.model.predict(_with(X, (2, 3, 0), np.nan)),
        InvalidArgumentError,
        r"x expects finite values\. Received: x\[2, 3, 0\]=nan",
        "x",
    ),
    Bad(
        "finite",
        "predict-minus-inf-float64",
        lambda e: e.model.predict(_with(X.astype(np.float64), (0, 0, 0), -np.inf)),
        InvalidArgumentError,
        r"x expects finite values\. Received: x\[0, 0, 0\]=-inf",
        "x",
    ),
    Bad(
        "finite",
        "predict-float64-overflow",
        lambda e: e.model.predict(_with(X.astype(np.float64), (1, 0, 0), 1e39)),
        InvalidArgumentError,
        r"x expects values within float32's range \(\|x\| <= 3\.4e38\).*Received: x\[1, 0, 0\]=1e\+39",
        "x",
    ),
    Bad(
        "finite",
        "inference-nan",
        lambda e: e.inference.predict(_with(X, (4, 0, 2), np.nan)),
        InvalidArgumentError,
        r"x expects finite values\. Received: x\[4, 0, 2\]=nan",
        "x",
    ),
    Bad(
        "finite",
        "inference-one-example-inf",
        lambda e: e.inference.predict(_with(X[0], (1, 1), np.inf)),
        InvalidArgumentError,
        r"x expects finite values\. Received: x\[0, 1, 1\]=inf",
        "x",
    ),
    # --- labels ---------------------------------------------------------------------------------------------
    Bad(
        "labels",
        "fractional",
        lambda e: _fit(e.model, y=Y + 0.5),
        InvalidArgumentError,
        r"dataset\.y for loss 'softmax_cross_entropy_with_logits' expects integral class indices\. Received: "
        r"dataset\.y\[0\]=\d\.5",
        "dataset.y",
    ),
    Bad(
        "labels",
        "negative",
        lambda e: _fit(e.model, y=np.where(np.arange(N) == 5, -1, Y)),
        InvalidArgumentError,
        r"expects class indices in \[0, 2\] \(the last layer has 3 units\)\. Received: dataset\.y\[5\]=-1 "
        r"\(1 labels out of range\)",
        "dataset.y",
    ),
    Bad(
        "labels",
        "equal-to-classes",
        lambda e: _fit(e.model, y=np.where(np.arange(N) == 9, 3, Y)),
        InvalidArgumentError,
        r"expects class indices in \[0, 2\].*Received: dataset\.y\[9\]=3",
        "dataset.y",
    ),
    Bad(
        "labels",
        "way-out-of-range-evaluate",
        lambda e: e.model.evaluate((X, Y + 1000)),
        InvalidArgumentError,
        r"Received: dataset\.y\[0\]=100\d \(24 labels out of range\)",
        "dataset.y",
    ),
    Bad(
        "labels",
        "float-out-of-range",
        lambda e: _fit(e.model, y=Y.astype(np.float32) + 3),
        InvalidArgumentError,
        r"expects class indices in \[0, 2\].*Received: dataset\.y\[0\]=\d\.0",
        "dataset.y",
    ),
    Bad(
        "labels",
        "one-too-many",
        lambda e: _fit(e.model, y=np.append(Y, 0)),
        ShapeError,
        r"dataset\[0\] and dataset\[1\] to have the same length\. Received: dataset\[0\]\.shape=\(24, 4, 3\), "
        r"dataset\[1\]\.shape=\(25,\)",
        "dataset[1]",
    ),
    Bad(
        "labels",
        "one-too-few",
        lambda e: e.model.evaluate((X, Y[:-1])),
        ShapeError,
        r"dataset\[1\]\.shape=\(23,\)",
        "dataset[1]",
    ),
    Bad(
        "labels",
        "one-hot",
        lambda e: _fit(e.model, y=np.eye(3)[Y]),
        InvalidArgumentError,
        r"expects class indices of shape \(N,\)\. Received: dataset\.y\.shape=\(24, 3\) \(one-hot labels\? "
        r"pass y\.argmax\(axis=1\)\)",
        "dataset.y",
    ),
    Bad(
        "labels",
        "rank-3",
        lambda e: _fit(e.model, y=Y.reshape(N, 1, 1)),
        InvalidArgumentError,
        r"Received: dataset\.y\.shape=\(24, 1, 1\)",
        "dataset.y",
    ),
    Bad(
        "labels",
        "scalar",
        lambda e: _fit(e.model, y=np.int64(1)),
        ShapeError,
        r"dataset\[1\] to have a first \(example\) axis\. Received: a scalar dataset\[1\]",
        "dataset[1]",
    ),
    Bad(
        "labels",
        "strings",
        lambda e: _fit(e.model, y=Y.astype(str)),
        InvalidTypeError,
        r"dataset\[1\] to be a numeric \(integer or float\) array\. Received: dataset\[1\] with dtype=<U",
        "dataset[1]",
    ),
    Bad(
        "labels",
        "nan",
        lambda e: _fit(e.model, y=np.where(np.arange(N) == 4, np.nan, Y)),
        InvalidArgumentError,
        r"^dataset\[1\] expects finite values\. Received: dataset\[1\]\[4\]=nan$",
        "dataset[1]",
    ),
    Bad(
        "labels",
        "uint64-beyond-int64",
        lambda e: _fit(e.model, y=np.full(N, 2**63, np.uint64)),
        InvalidArgumentError,
        r"dataset\[1\] to fit in int64\. Received: a label of 9223372036854775808",
        "dataset[1]",
    ),
    Bad(
        "labels",
        "validation-out-of-range",
        lambda e: _fit(e.model, validation=(X, Y + 3)),
        InvalidArgumentError,
        r"validation\.y for loss .* Received: validation\.y\[0\]=\d",
        "validation.y",
    ),
    Bad(
        "labels",
        "regression-shape",
        lambda e: _fit(e.regression, y=np.zeros((N, 3), np.float32)),
        InvalidArgumentError,
        r"dataset\.y for loss 'mse' expects float targets of shape \(N, 2\) like the model output\. "
        r"Received: dataset\.y\.shape=\(24, 3\)",
        "dataset.y",
    ),
    Bad(
        "labels",
        "binary-outside-0-1",
        lambda e: _fit(e.binary, y=np.where(np.arange(N) == 2, 2.0, 0.0)),
        InvalidArgumentError,
        r"dataset\.y for loss 'binary_crossentropy' expects targets in \[0, 1\]\. Received: "
        r"dataset\.y\.flat\[2\]=2\.0",
        "dataset.y",
    ),
    # --- hyper-parameters -----------------------------------------------------------------------------------
    *[
        Bad(
            "hyper",
            f"epochs-{value!r}",
            (lambda e, v=value: _fit(e.model, epochs=v)),
            InvalidArgumentError,
            rf"epochs expects a positive int\. Received: epochs={re.escape(repr(value))}",
            "epochs",
        )
        for value in [0, -1, 1.5, True, "3", None]
    ],
    *[
        Bad(
            "hyper",
            f"batch-size-{value!r}",
            (lambda e, v=value: _fit(e.model, batch_size=v)),
            InvalidArgumentError,
            rf"batch_size expects a positive int\. Received: batch_size={re.escape(repr(value))}",
            "batch_size",
        )
        for value in [0, -8, 2.5, "8"]
    ],
    Bad(
        "hyper",
        "evaluate-batch-size-0",
        lambda e: e.model.evaluate((X, Y), batch_size=0),
        InvalidArgumentError,
        r"batch_size expects a positive int\. Received: batch_size=0",
        "batch_size",
    ),
    Bad(
        "hyper",
        "predict-batch-size-negative",
        lambda e: e.model.predict(X, batch_size=-1),
        InvalidArgumentError,
        r"batch_size expects a positive int\. Received: batch_size=-1",
        "batch_size",
    ),
    Bad(
        "hyper",
        "inference-batch-size-float",
        lambda e: e.inference.predict(X, batch_size=2.0),
        InvalidArgumentError,
        r"batch_size expects a positive int\. Received: batch_size=2\.0",
        "batch_size",
    ),
    Bad(
        "hyper",
        "validation-batch-size",
        lambda e: _fit(e.model, validation=(X, Y), validation_batch_size=-2),
        InvalidArgumentError,
        r"validation_batch_size expects a positive int\. Received: validation_batch_size=-2",
        "validation_batch_size",
    ),
    *[
        Bad(
            "hyper",
            f"validation-split-{value!r}",
            (lambda e, v=value: _fit(e.model, validation_split=v)),
            InvalidArgumentError,
            rf"validation_split expects a float in \[0, 1\)\. Received: {re.escape(repr(value))}",
            "validation_split",
        )
        for value in [1.0, -0.1, math.nan, "0.2"]
    ],
    *[
        Bad(
            "hyper",
            f"seed-{value!r}",
            (lambda e, v=value: _fit(e.model, seed=v)),
            InvalidArgumentError,
            rf"seed expects a non-negative int or None\. Received: seed={re.escape(repr(value))}",
            "seed",
        )
        for value in [-1, "a", 1.5]
    ],
    *[
        Bad(
            "hyper",
            f"{cls.__name__}-learning-rate-{value!r}",
            (lambda e, c=cls, v=value: c(learning_rate=v)),
            InvalidArgumentError,
            rf"{cls.__name__}\(learning_rate=\.\.\.\) expects a finite number in \[0, 3\.40282e\+38\]"
            rf"( \(float32's range\) or a learning-rate schedule \(.*\))?\. Received: "
            rf"learning_rate={re.escape(repr(value))}",
            "learning_rate",
        )
        for cls, value in [(Adam, -1e-3), (Adam, math.nan), (SGD, math.inf), (SGD, "0.1"), (Adam, 1e39)]
    ],
    *[
        Bad(
            "hyper",
            f"set-learning-rate-{value!r}",
            (lambda e, v=value: setattr(e.model, "learning_rate", v)),
            InvalidArgumentError,
            rf"learning_rate expects a finite number >= 0 within float32's range \(<= 3\.4e38\), which the "
            rf"engines compute in\. Received: {re.escape(repr(value))}",
            "learning_rate",
        )
        for value in [-0.1, math.nan, math.inf, "0.1", 1e40]
    ],
    Bad(
        "hyper",
        "unknown-optimizer",
        lambda e: _model().compile(optimizer="adamw2"),
        UnknownIdentifierError,
        r"Could not interpret optimizer 'adamw2'\. Valid names: \['adadelta', 'adagrad',",
        "optimizer",
    ),
    Bad(
        "hyper",
        "unknown-loss",
        lambda e: _model().compile(loss="focal"),
        UnknownIdentifierError,
        r"Could not interpret loss 'focal'\. Valid names: \['binary_crossentropy', ",
        "loss",
    ),
    Bad(
        "hyper",
        "unknown-metric",
        lambda e: _model().compile(metric="f1"),
        UnknownIdentifierError,
        r"Could not interpret metric 'f1'\. Valid names: \['accuracy', 'mae', 'mse', 'root_mean_squared_error', "
        r"'binary_accuracy', ",
        "metric",
    ),
    Bad(
        "hyper",
        "optimizer-of-wrong-type",
        lambda e: _model().compile(optimizer=3),
        UnknownIdentifierError,
        r"Could not interpret optimizer 3 \(int\)\. Expected one of \['adadelta'",
        "optimizer",
    ),
    Bad(
        "hyper",
        "callbacks-not-callbacks",
        lambda e: _fit(e.model, callbacks=[TerminateOnNaN, 1]),
        InvalidTypeError,
        r"callbacks expects Callback instances\. Received: callbacks\[0\]=<class",
        "callbacks",
    ),
    Bad(
        "hyper",
        "callbacks-not-a-list",
        lambda e: _fit(e.model, callbacks=5),
        InvalidTypeError,
        r"callbacks expects a list of Callback instances\. Received: callbacks=5",
        "callbacks",
    ),
    Bad(
        "hyper",
        "callbacks-a-string",
        lambda e: _fit(e.model, callbacks="es"),
        InvalidTypeError,
        r"^callbacks expects a list of Callback instances\. Received: callbacks='es'$",
        "callbacks",
    ),
    Bad(
        "hyper",
        "csv-logger-a-directory",
        lambda e: CSVLogger(Path(__file__).parent),
        InvalidArgumentError,
        r"CSVLogger\(path=\.\.\.\) expects a file path\. Received: '.*tests', which is a directory: name a file",
        "path",
    ),
    Bad(
        "hyper",
        "summary-print-fn",
        lambda e: e.model.summary(print_fn=5),
        InvalidTypeError,
        r"^summary\(print_fn=\.\.\.\) expects a callable .* Received: 5$",
        "print_fn",
    ),
    Bad(
        "hyper",
        "verbose",
        lambda e: _fit(e.model, verbose="loud"),
        InvalidArgumentError,
        r"verbose expects 0 \(silent\), 1 .* Received: verbose='loud'",
        "verbose",
    ),
    # --- state: before compile, after close, loaded without training settings ----------------------------------
    *[
        Bad(
            "state",
            f"{action}-before-compile",
            (lambda e, c=call: c(e.uncompiled)),
            ModelStateError,
            rf"{action}\(\) needs a compiled model: call model\.compile\(optimizer=\.\.\., loss=\.\.\.\) first",
            action,
        )
        for action, call in [
            ("fit", lambda m: _fit(m)),
            ("evaluate", lambda m: m.evaluate((X, Y))),
            ("predict_softly", lambda m: m.predict_softly(X)),
            ("learning_rate", lambda m: m.learning_rate),
        ]
    ],
    *[
        Bad(
            "state",
            f"{action}-after-close",
            (lambda e, c=call: c(e.closed)),
            ModelStateError,
            rf"{action}\(\) was called on a closed model; create or load the model again",
            action,
        )
        for action, call in [
            ("fit", lambda m: _fit(m)),
            ("evaluate", lambda m: m.evaluate((X, Y))),
            ("predict", lambda m: m.predict(X)),
            ("compile", lambda m: m.compile()),
            ("save", lambda m: m.save("never-written")),
            ("export", lambda m: m.export("never-written.onnx")),
        ]
    ],
    Bad(
        "state",
        "inference-predict-after-close",
        lambda e: e.closed_inference.predict(X),
        ModelStateError,
        r"predict\(\) was called on a closed InferenceModel; load the model again",
        "predict",
    ),
    Bad(
        "state",
        "inference-predict-softly-after-close",
        lambda e: e.closed_inference.predict_softly(X),
        ModelStateError,
        r"predict\(\) was called on a closed InferenceModel",
        "predict",
    ),
    Bad(
        "state",
        "fit-loaded-without-training-settings",
        lambda e: _fit(e.loaded_uncompiled),
        ModelStateError,
        r"fit\(\) needs a compiled model",
        "fit",
    ),
    Bad(
        "state",
        "predict-softly-regression",
        lambda e: e.regression.predict_softly(X),
        InvalidArgumentError,
        r"predict_softly needs a classification loss .*Received: loss 'mse'",
        "predict_softly",
    ),
    Bad(
        "state",
        "save-optimizer-state-uncompiled",
        lambda e: e.uncompiled.save("never", save_optimizer_state=True),
        ModelStateError,
        r"save\(save_optimizer_state=True\) needs a compiled model",
        "save_optimizer_state",
    ),
]


@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_a_bad_input_is_refused_with_one_clear_onnxtrain_error(env, bad):
    with pytest.raises(bad.error, match=bad.match) as caught:
        bad.call(env)
    message = str(caught.value)
    assert isinstance(caught.value, OnnxtrainError)
    assert bad.argument in message, f"the message does not name {bad.argument!r}: {message}"
    if bad.category == "state":
        assert STATE.search(message) and FIX.search(message), f"no state or no fix: {message}"
    else:
        assert RECEIVED.search(message), f"nothing received is named: {message}"
        assert EXPECTED.search(message), f"nothing expected is named: {message}"
    assert "ONNXRuntimeError" not in message and "onnxruntime_src" not in message


def test_a_refused_call_leaves_the_model_trainable(env):
    before = env.model.get_weights()
    with pytest.raises(InvalidArgumentError):
        _fit(env.model, y=Y + 3)
    after = env.model.get_weights()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert math.isfinite(_fit(env.model).history["loss"][0])


# --- valid edge cases: handled, and equal to the canonical float32 C-contiguous input ---------------------


def _memmap(tmp_path: Path) -> np.ndarray:
    array = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=X.shape)
    array[:] = X
    array.flush()
    return np.load(tmp_path / "x.npy", mmap_mode="r")


def _read_only() -> np.ndarray:
    array = X.copy()
    array.flags.writeable = False
    return array


EQUIVALENT_X: dict[str, Callable[[Path], Any]] = {
    "non-contiguous": lambda _: np.repeat(X, 2, axis=0)[::2],
    "fortran-order": lambda _: np.asfortranarray(X),
    "read-only": lambda _: _read_only(),
    "memmap": _memmap,
    "big-endian": lambda _: X.astype(">f4"),
    "float64": lambda _: X.astype(np.float64),
    "nested-lists": lambda _: X.tolist(),
}
EQUIVALENT_Y: dict[str, Any] = {
    "labels-as-list": Y.tolist(),
    "integral-float-labels": Y.astype(np.float64),
    "uint8-labels": Y.astype(np.uint8),
    "column-labels": Y.reshape(N, 1),
}


def _trained_weights(x: Any = X, y: Any = Y, **kwargs: Any) -> dict[str, np.ndarray]:
    with _compiled(seed=21) as model:
        _fit(model, x, y, **{"epochs": 2, **kwargs})
        return model.get_weights()


@pytest.fixture(scope="module")
def canonical() -> dict[str, Any]:
    with _compiled(seed=21) as model:
        _fit(model, epochs=2)
        return {"weights": model.get_weights(), "predictions": model.predict_softly(X)}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", list(EQUIVALENT_X))
def test_an_equivalent_x_layout_trains_and_predicts_exactly_like_float32(tmp_path, canonical, name):
    x = EQUIVALENT_X[name](tmp_path)
    assert _same(_trained_weights(x), canonical["weights"])
    with _compiled(seed=21) as model:
        _fit(model, epochs=2)
        assert np.array_equal(model.predict_softly(x), canonical["predictions"])


@pytest.mark.parametrize("name", list(EQUIVALENT_Y))
def test_an_equivalent_label_form_trains_exactly_like_int64(canonical, name):
    assert _same(_trained_weights(y=EQUIVALENT_Y[name]), canonical["weights"])


def test_batch_sizes_of_one_and_beyond_the_data_are_handled(env):
    for batch_size in (1, N + 1, 10**9):
        assert math.isfinite(_fit(env.model, batch_size=batch_size).history["loss"][0])
        assert math.isfinite(env.model.evaluate((X, Y), batch_size=batch_size).loss)
        assert np.array_equal(env.model.predict(X, batch_size=batch_size), env.model.predict(X))
        assert np.array_equal(env.inference.predict(X, batch_size=batch_size), env.inference.predict(X))


def test_one_example_and_float16_are_accepted():
    with _compiled(seed=5) as model:
        assert isinstance(model.predict(X[0]), int)
        assert model.predict_softly(X[0]).shape == (3,)
        assert np.array_equal(
            model.predict(X.astype(np.float16)), model.predict(X.astype(np.float16).astype(np.float32))
        )
        assert math.isfinite(_fit(model, X.astype(np.float16)).history["loss"][0])
        assert math.isfinite(_fit(model, X[:1], Y[:1]).history["loss"][0])  # a dataset of one example


# --- the conversion rule: integer inputs are scaled by the model's input_scale everywhere -------------------


def test_integer_pixels_are_scaled_alike_by_predict_evaluate_fit_and_inference(tmp_path):
    pixels = np.random.default_rng(3).integers(0, 256, (N, 4, 3)).astype(np.uint8)
    scale = 1 / 255
    scaled = pixels / np.float32(255)  # as the dataset loaders (and the usual `x / 255.0`) scale pixels
    with _compiled(seed=8) as model:
        model.fit(Dataset(scaled, Y, input_scale=scale), epochs=1, verbose=0)  # the model records the scale
        assert model.input_scale == pytest.approx(scale)
        assert np.array_equal(model.predict(pixels), model.predict(scaled))
        assert model.evaluate((pixels, Y)).loss == model.evaluate((scaled, Y)).loss
        inference = InferenceModel.load(model.save(tmp_path / "m"))
        assert np.array_equal(inference.predict(pixels), inference.predict(scaled))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no precision or overflow warnings on the way
            for dtype in (np.int8, np.int16, np.int32, np.int64, np.uint16):
                # pixels in int8's range: 128-255 would wrap to negatives, which a 1/255 model refuses
                as_dtype = (pixels // 2 if dtype == np.int8 else pixels).astype(dtype)
                assert np.array_equal(model.predict(as_dtype), model.predict(as_dtype / np.float32(255)))
        with _compiled(seed=8) as twin:  # fit on pixels continues exactly like fit on the scaled floats
            twin.fit(Dataset(scaled, Y, input_scale=scale), epochs=1, verbose=0)
            _fit(model, pixels)
            _fit(twin, scaled)
            assert _same(model.get_weights(), twin.get_weights())


def test_without_a_scale_integers_are_plain_values():
    pixels = np.arange(N * 12).reshape(N, 4, 3) % 7
    with _compiled(seed=9) as model:
        assert model.input_scale == 1.0
        assert np.array_equal(model.predict(pixels), model.predict(pixels.astype(np.float32)))
        assert _same(_trained_weights(pixels), _trained_weights(pixels.astype(np.float32)))
