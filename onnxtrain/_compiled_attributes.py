"""What `compile` fixed, as Keras' model attributes: `learning_rate` (the engine's rate, settable between steps),
`optimizer` (the compiled optimizer, whose `learning_rate` is that rate: `CompiledOptimizer`, which `compile` takes
back as the optimizer with its current rate), `loss` and `metrics_names` (the names `evaluate` and `test_on_batch`
give their figures by).
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain._checks import FLOAT32_MAX
from onnxtrain._evaluation import log_key
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.losses import Loss
from onnxtrain.optimizers import LearningRateSchedule, Optimizer
from onnxtrain.optimizers.schedules import rate_at

if TYPE_CHECKING:
    from onnxtrain.training import Trainer


class CompiledAttributes:
    """Keras' attributes of a compiled model (see the module docstring); a `Model` is one."""

    if TYPE_CHECKING:  # what `Model` holds and does
        _trainer: Trainer | None

        def _compiled_trainer(self, action: str) -> Trainer: ...

    @property
    def learning_rate(self) -> float:
        """The optimizer's current learning rate; may be set between steps (as schedulers do). Under a schedule it is
        the rate of the next update, `schedule(iterations)` (Keras' `optimizer.learning_rate`): `schedule(0)` before
        the first step, `schedule(n)` after n updates.

        Setting it sets the compiled Optimizer object's `learning_rate` too (Keras' optimizer holds its rate as a
        variable that the model's and the callbacks' writes change), so a compile with that object, or with
        `model.optimizer`, trains on at the rate set."""
        trainer = self._compiled_trainer("learning_rate")
        schedule = trainer.compiled.optimizer.learning_rate
        if isinstance(schedule, LearningRateSchedule):  # the engine holds the last update's rate, schedule(n - 1)
            return rate_at(schedule, trainer.steps_trained)
        return float(trainer.engine.learning_rate)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        trainer = self._compiled_trainer("learning_rate")
        schedule = trainer.compiled.optimizer.learning_rate
        if isinstance(schedule, LearningRateSchedule):  # Keras: "its learning rate is not settable"
            raise InvalidArgumentError(
                "learning_rate cannot be set: the optimizer's learning_rate is the schedule "
                f"{type(schedule).__name__}, which sets the rate before each step. Received: {value!r}. Compile "
                "with a number, or another schedule."
            )
        if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "fiu":
            value = value.item()  # a 0-d array, as Keras' variables take
        valid = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        if not valid or value < 0 or value > FLOAT32_MAX:  # (the engines compute in float32: 1e40 is inf there)
            raise InvalidArgumentError(
                f"learning_rate expects a finite number >= 0 within float32's range (<= 3.4e38), which the "
                f"engines compute in. Received: {value!r}"
            )
        optimizer = trainer.compiled.optimizer
        optimizer.check_setting("learning_rate", value)  # (0, where the update divides by it)
        trainer.engine.learning_rate = float(value)
        optimizer.learning_rate = float(value)

    @property
    def optimizer(self) -> CompiledOptimizer | None:
        """Keras' `model.optimizer`: the compiled optimizer (None before compile), whose `learning_rate` reads and
        sets the rate the engine trains with (`model.learning_rate`: a Keras callback's
        `self.model.optimizer.learning_rate = 0.01` acts), `iterations` counts its updates, and other settings
        read as the optimizer object's (`compiled_optimizer` is that object)."""
        return CompiledOptimizer(self) if self._trainer is not None else None

    @property
    def loss(self) -> Loss | None:
        """Keras' `model.loss`: the compiled Loss object (a model of several outputs: its `OutputLosses`, one loss
        per output), None before compile."""
        return self._trainer.compiled.loss if self._trainer is not None else None

    @property
    def metrics_names(self) -> list[str]:
        """tf.keras' `model.metrics_names`: "loss" and then the name of every figure `evaluate` and
        `test_on_batch` give, in their order (["loss", "accuracy"]; a model of several outputs adds each
        "<output>_loss" and "<output>_<metric>"); empty before compile, as Keras'."""
        if self._trainer is None:
            return []
        return ["loss", *(log_key(key) for key in self._trainer.figure_keys())]


class CompiledOptimizer:
    """`model.optimizer`: the optimizer a model compiled, read through the model. Its `learning_rate` is the rate
    the engine trains with (set between steps, as `model.learning_rate`, which sets the Optimizer object's too;
    refused under a schedule, as Keras refuses it), `iterations` the updates made so far (Keras'
    `optimizer.iterations`); every other attribute reads as the compiled optimizer's (`compiled_optimizer`). Its
    other settings are fixed by compile: assigning one is refused, naming how to change it.

    `compile(optimizer=model.optimizer)` (Keras' idiom after freezing a layer) compiles that Optimizer object at its
    current rate (`current_optimizer`). As every compile, it starts the optimizer state anew (moments and
    `iterations` at 0, a schedule from its step 0), where Keras 3 keeps the state of an optimizer object compiled
    again."""

    __slots__ = ("_model",)

    def __init__(self, model: CompiledAttributes):
        object.__setattr__(self, "_model", model)

    @property
    def compiled_optimizer(self) -> Optimizer:
        """The Optimizer object compile was given (or made from a name)."""
        return self._trainer().compiled.optimizer

    def current_optimizer(self) -> Optimizer:
        """The compiled Optimizer object with the rate the engine trains with now as its `learning_rate` (a schedule
        stays the schedule): what `compile(optimizer=model.optimizer)` compiles. (This also brings the object up to
        a rate the engine took from a save or checkpoint, which only the engine holds until then.)"""
        optimizer = self.compiled_optimizer
        if not isinstance(optimizer.learning_rate, LearningRateSchedule):
            optimizer.learning_rate = self.learning_rate
        return optimizer

    @property
    def learning_rate(self) -> float:
        """The engine's current learning rate (`model.learning_rate`)."""
        return float(self._model.learning_rate)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._model.learning_rate = value

    @property
    def iterations(self) -> int:
        """The optimizer's updates so far, counted across fit calls (Keras' `optimizer.iterations`)."""
        return int(self._trainer().steps_trained)

    def _trainer(self) -> Trainer:
        return self._model._compiled_trainer("optimizer")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.compiled_optimizer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "learning_rate":
            object.__setattr__(self, name, value)
            return
        optimizer = self.compiled_optimizer
        raise InvalidArgumentError(
            f"model.optimizer.{name} cannot be set: compile fixed the optimizer's settings in the training graphs "
            f"(only learning_rate changes between steps). Received: {name}={value!r}. Compile again with "
            f"{type(optimizer).__name__}({name}=...) (the weights are kept, the optimizer state starts anew)."
        )

    def __repr__(self) -> str:
        return f"<compiled {self.compiled_optimizer!r}, learning_rate={self.learning_rate}>"
