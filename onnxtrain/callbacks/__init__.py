"""Callbacks: hooks into `fit` (Keras' contract), the list that dispatches to them, and the stock callbacks.

Epochs are numbered from 1 and keep counting across `fit` calls (as in the History); batches from 1 per epoch.
"""

from onnxtrain.callbacks._callback import (
    Callback,
    CallbackList,
    CallbackModel,
    CSVLogger,
    TerminateOnNaN,
    TimeStopping,
)
from onnxtrain.callbacks._callback import Logs as Logs  # the type of `logs`, for custom callbacks
from onnxtrain.callbacks._lambda import LambdaCallback
from onnxtrain.callbacks._learning_rate import LearningRateScheduler, ReduceLROnPlateau
from onnxtrain.callbacks._model_checkpoint import ModelCheckpoint
from onnxtrain.callbacks._monitored import EarlyStopping, EarlyStoppingMode

__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackList",
    "CallbackModel",
    "EarlyStopping",
    "EarlyStoppingMode",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
    "TimeStopping",
]
