"""A Functional's parameters under their ONNX names (`encoder.dense_1.kernel`), and Keras' weights API on them."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from onnxtrain._functional_calls import every_layer
from onnxtrain._weight_arrays import transpose_hint
from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.layers import Input, Layer


class GraphParams:
    """`Functional`'s parameter methods, mixed in before `Layer`, whose one-layer ones they replace: a graph's
    parameters are its layers', each layer once, named under the layer's name (a nested model's, under its own)."""

    name: str | None
    layers: list[Layer]

    def _named_params(self, prefix: str, seen: set[int]) -> Iterator[tuple[str, Layer, str]]:
        """(graph name, layer, local name) of every parameter, each layer once, in the order `emit` adds them."""
        for layer in self.layers:
            if id(layer) in seen or isinstance(layer, Input):
                continue
            seen.add(id(layer))
            if isinstance(layer, GraphParams):  # a nested model
                yield from layer._named_params(f"{prefix}{layer.name}.", seen)
            else:
                scope = f"{layer.name}." if getattr(layer, "prefix_names", True) else ""  # see emit_layer_call
                yield from ((f"{prefix}{scope}{local}", layer, local) for local in layer.params)

    def params_by_name(self) -> dict[str, np.ndarray]:
        """Every parameter under its name in this graph's ONNX (`dense_1.kernel`, `encoder.dense_1.kernel`)."""
        return {name: layer.params[local] for name, layer, local in self._named_params("", set())}

    def trainable_params_by_name(self) -> dict[str, np.ndarray]:
        """The parameters an optimizer updates: not those of frozen layers, nor non-trainable ones (statistics)."""
        return {
            name: layer.params[local]
            for name, layer, local in self._named_params("", set())
            if layer.trainable and local not in layer.non_trainable
        }

    def set_params_by_name(self, weights: dict[str, np.ndarray]) -> None:
        """Replace parameters by their `params_by_name` names (any subset); shapes must match."""
        owners = {name: (layer, local) for name, layer, local in self._named_params("", set())}
        unknown = sorted(set(weights) - set(owners))
        if unknown:
            raise InvalidArgumentError(f"Unknown parameter names {unknown}. Expected some of: {sorted(owners)}")
        for name, value in weights.items():
            layer, local = owners[name]
            array = np.asarray(value, dtype=np.float32)
            if array.shape != layer.params[local].shape:
                expected = layer.params[local].shape
                raise ShapeError(
                    f"Parameter {name} has shape {expected}. Received: {array.shape}"
                    f"{transpose_hint(expected, array.shape)}"
                )
            layer.params[local] = np.asarray(array, order="C")

    def qualified_params(self) -> dict[str, np.ndarray]:
        return {f"{self.name}.{name}": value for name, value in self.params_by_name().items()}

    # Keras' layer weights API (`layers/_layer_weights.py`): a graph's weights are its layers', by their names here.
    def _own_weights(self) -> dict[str, np.ndarray]:
        return self.params_by_name()

    def _trainable_names(self) -> set[str]:
        return set(self.trainable_params_by_name())

    def _write_weights(self, arrays: dict[str, np.ndarray]) -> None:
        self.set_params_by_name(arrays)

    def _weights_made(self) -> bool:
        return True

    def _read_engine(self) -> None:
        owners = (layer._owning_model() for layer in every_layer([self]))  # self, then its layers, nested
        for model in {id(model): model for model in owners if model is not None}.values():
            model.sync_weights()

    def _weights_changed(self) -> None:
        for layer in every_layer(self.layers):
            if layer.params and not isinstance(layer, GraphParams):
                layer._weights_changed()

    def trainable_params(self) -> dict[str, np.ndarray]:
        return {f"{self.name}.{name}": value for name, value in self.trainable_params_by_name().items()}

    @property
    def param_count(self) -> int:
        return int(sum(value.size for value in self.params_by_name().values()))

    @property
    def trainable_param_count(self) -> int:
        return int(sum(value.size for value in self.trainable_params_by_name().values()))
