"""Keras' layer-level weights API, which every `Layer` has: `get_weights()`, `set_weights([...])`, `weights`,
`trainable_weights` and `non_trainable_weights`.

The order is the order in which the layer makes its weights (`add_weight`), which is Keras' for every layer that
Keras has (kernel then bias; BatchNormalization's gamma, beta, moving mean, moving variance; ...); the shapes are
onnxtrain's, which differ from Keras' for the convolution kernels and the recurrent layers (docs/layers.md, "Weights:
order and layout"). A layer of a compiled model reads and writes its model's training engine, as `model.get_weights`
and `model.set_weights` do.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxtrain._weight_arrays import weight_array
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError


@dataclass(frozen=True)
class LayerWeight:
    """One weight of a layer, as Keras' `layer.weights` lists its variables (read-only here: change weights with
    `set_weights`).

    Attributes:
        name: the layer's own name of it (`kernel`).
        path: its name in the model's graphs, checkpoint and export (`dense_1.kernel`).
        shape: its shape (onnxtrain's layout).
        trainable: whether an optimizer updates it.
    """

    layer: Any
    name: str
    path: str
    shape: tuple[int, ...]
    trainable: bool
    dtype: str = "float32"

    def numpy(self) -> np.ndarray:
        """A copy of its current value (the training engine's, for a layer of a compiled model)."""
        return self.layer.current_weights()[self.name]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        value = self.numpy()
        return value if dtype is None else value.astype(dtype)

    def __repr__(self) -> str:
        return f"<LayerWeight path={self.path} shape={self.shape} trainable={self.trainable}>"


class WeightLists:
    """Keras' `trainable_weights` and `non_trainable_weights` of whatever lists its `weights` (a layer, a model)."""

    @property
    def weights(self) -> list[LayerWeight]:
        raise NotImplementedError

    @property
    def trainable_weights(self) -> list[LayerWeight]:
        """Keras' `trainable_weights`: the weights an optimizer updates (none of a frozen layer's)."""
        return [weight for weight in self.weights if weight.trainable]

    @property
    def non_trainable_weights(self) -> list[LayerWeight]:
        """Keras' `non_trainable_weights`: the others (statistics, a frozen layer's weights)."""
        return [weight for weight in self.weights if not weight.trainable]


class LayerWeights(WeightLists):
    """The weights API of `Layer` (see the module docstring); a layer whose weights live elsewhere (a Functional:
    its layers') overrides `current_weights`, `_trainable_names` and `_write_weights`, and one that holds its
    values before a model builds it (Normalization after `adapt`, as Keras' does) overrides `_own_weights`,
    `_write_weights` and `_weights_made`."""

    name: str | None
    trainable: bool
    params: MutableMapping[str, np.ndarray]
    non_trainable: set[str]
    _model: Any

    def get_weights(self) -> list[np.ndarray]:
        """Keras' `layer.get_weights()`: a copy of each weight, in the order the layer makes them (Keras' order;
        shapes in onnxtrain's layout: docs/layers.md, "Weights: order and layout"). A layer of a compiled model gives
        its training engine's current values."""
        return list(self.current_weights().values())

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Keras' `layer.set_weights([...])`: replace every weight of the layer, in `get_weights()` order; each value
        must have its weight's shape and be finite. A layer of a compiled model updates its training engine too (the
        optimizer state is kept), as `model.set_weights` does.

        Raises:
            InvalidTypeError: not a list of arrays (a dict: use `model.set_weights`).
            InvalidArgumentError: another count of arrays, another shape (with the transpose that maps a permuted
                one), non-finite values; a layer with no weights yet (not in a model).
        """
        current = self.current_weights()
        owner = self._weights_owner()
        if not isinstance(weights, list | tuple):
            by_name = " (model.set_weights takes a dict by name)" if isinstance(weights, Mapping) else ""
            raise InvalidTypeError(
                f"{owner}.set_weights expects a list of arrays in get_weights() order. Received: "
                f"{type(weights).__name__}{by_name}"
            )
        if len(weights) != len(current):
            if not current and not self._weights_made():
                raise InvalidArgumentError(
                    f"{owner} has no weights yet: a layer makes them when a model of it is made (Sequential(...) or "
                    f"Model(...)). Call set_weights after that. Received: {len(weights)} arrays"
                )
            expected = ", ".join(f"{name} {tuple(value.shape)}" for name, value in current.items()) or "none"
            raise InvalidArgumentError(
                f"{owner}.set_weights expects {len(current)} arrays, in get_weights() order ({expected}). "
                f"Received: {len(weights)} arrays"
            )
        arrays = {
            name: weight_array(self._path(name), value, tuple(current[name].shape), f"{owner}.set_weights")
            for name, value in zip(current, weights, strict=True)
        }
        self._write_weights(arrays)
        self._weights_changed()

    @property
    def weights(self) -> list[LayerWeight]:
        """Keras' `layer.weights`: every weight (trainable ones and statistics), in `get_weights()` order."""
        trainable = self._trainable_names()
        return [
            LayerWeight(self, name, self._path(name), tuple(value.shape), name in trainable)
            for name, value in self._own_weights().items()
        ]

    # --- where the weights live (a Functional overrides these) -------------------------------------------------
    def current_weights(self) -> dict[str, np.ndarray]:
        """{name: a copy of its current value}, the training engine's for a layer of a compiled model."""
        self._read_engine()
        return {name: np.array(value, copy=True) for name, value in self._own_weights().items()}

    def _own_weights(self) -> Mapping[str, np.ndarray]:
        return self.params

    def _trainable_names(self) -> set[str]:
        return {name for name in self.params if self.trainable and name not in self.non_trainable}

    def _write_weights(self, arrays: dict[str, np.ndarray]) -> None:
        for name, value in arrays.items():
            self.params[name] = value

    def _weights_made(self) -> bool:
        return bool(getattr(self, "built", False))

    # --- the model that trains the layer ----------------------------------------------------------------------
    def _owning_model(self) -> Any:
        reference = getattr(self, "_model", None)
        return reference() if reference is not None else None

    def _read_engine(self) -> None:
        """Copy the training engine's current weights into the layers of the model that holds this one."""
        model = self._owning_model()
        if model is not None:
            model.sync_weights()

    def _weights_changed(self) -> None:
        """Give the compiled models that train this layer its new weights (`ModelBase.layer_params_changed`)."""
        model = self._owning_model()
        if model is not None:
            model.layer_params_changed(self)

    def _path(self, name: str) -> str:
        """`name`'s graph name: under the layer's name (`dense_1.kernel`), but where the layer keeps its weights'
        own names (`OnnxLayer(prefix_names=False)`)."""
        return f"{self.name}.{name}" if self.name and getattr(self, "prefix_names", True) else name

    def _weights_owner(self) -> str:
        return f"{type(self).__name__} layer" + (f" {self.name!r}" if self.name else "")
