"""The Layer base class: the lifecycle every layer follows, and the registry used to rebuild layers from config."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnknownIdentifierError
from onnxtrain.graph import GraphBuilder

Shape = tuple[int, ...]  # per-example shape: the batch dimension is never included


def format_shape(shape: Shape) -> str:
    """KotlinDL's way of printing a batched shape: [None, 28, 28, 1]."""
    return "[" + ", ".join(["None", *map(str, shape)]) + "]"


class Layer:
    """A layer validates its arguments in `__init__`, makes named numpy parameters in `build`, and emits ONNX.

    Subclasses implement `compute_output_shape` and `emit`, and `build` when they own parameters. Every subclass
    is registered, so `Layer.from_config(layer.serialize())` rebuilds any of them: onnxtrain's own layers under
    their class name ("Dense"), custom layers under "module.ClassName" (so two custom `Scale` classes in different
    modules never collide), as long as their module has been imported.

    Attributes:
        name: unique within a model; assigned by the model (`dense_1`) when not given.
        trainable: False freezes every parameter of the layer.
        params: local parameter name ("kernel") -> float32 array, filled by `build`.
        non_trainable: the local names of parameters no optimizer updates even when the layer trains (Keras'
            non-trainable weights: BatchNormalization's moving statistics, which the layer itself updates in the
            training graph with `builder.update_state`).
    """

    registry: ClassVar[dict[str, type[Layer]]] = {}

    def __init__(self, name: str | None = None, trainable: bool = True):
        if name is not None and (not isinstance(name, str) or not name or any(c in name for c in " ./:")):
            raise InvalidArgumentError(
                f"{type(self).__name__}(name=...) expects a non-empty string without spaces, dots, slashes or "
                f"colons. Received: name={name!r}"
            )
        if not isinstance(trainable, bool):
            raise InvalidTypeError(f"{type(self).__name__}(trainable=...) expects a bool. Received: {trainable!r}")
        self.name = name
        self.trainable = trainable
        self.params: dict[str, np.ndarray] = {}
        self.non_trainable: set[str] = set()
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Layer.registry[cls.registry_key()] = cls

    @classmethod
    def registry_key(cls) -> str:
        own = cls.__module__.startswith("onnxtrain.")
        return cls.__name__ if own else f"{cls.__module__}.{cls.__qualname__}"

    # --- lifecycle ----------------------------------------------------------------------------------------
    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        """Create parameters for `input_shape`; layers without parameters keep the default."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        raise NotImplementedError

    def emit(self, builder: GraphBuilder, x: str) -> str:
        """Emit this layer's nodes reading value `x`; return the output value name."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "trainable": self.trainable}

    # --- helpers shared by all layers ---------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuild a layer from `{"class_name": ..., "config": {...}}` as written by `serialize`."""
        class_name = config.get("class_name")
        if class_name not in Layer.registry:
            raise UnknownIdentifierError(
                f"Could not interpret layer class {class_name!r}. Known layers: {sorted(Layer.registry)}"
            )
        return Layer.registry[class_name](**config.get("config", {}))

    def serialize(self) -> dict[str, Any]:
        return {"class_name": type(self).registry_key(), "config": self.get_config()}

    def add_weight(self, local_name: str, value: np.ndarray, trainable: bool = True) -> None:
        """Add parameter `local_name`; `trainable=False` keeps it out of the optimizer's reach (see `non_trainable`)."""
        self.params[local_name] = np.ascontiguousarray(value, dtype=np.float32)
        if not trainable:
            self.non_trainable.add(local_name)

    def emit_params(self, builder: GraphBuilder) -> dict[str, str]:
        """Add this layer's parameters as initializers (inside the layer's scope); returns local -> graph name."""
        return {local: builder.add_initializer(local, value) for local, value in self.params.items()}

    @property
    def param_count(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    @property
    def trainable_param_count(self) -> int:
        """The parameters an optimizer updates: none for a frozen layer, never its non-trainable ones."""
        if not self.trainable:
            return 0
        return int(sum(p.size for local, p in self.params.items() if local not in self.non_trainable))

    @property
    def built(self) -> bool:
        return self.output_shape is not None

    def qualified_params(self) -> dict[str, np.ndarray]:
        """Parameters under their graph names (`dense_1.kernel`)."""
        return {f"{self.name}.{local}": value for local, value in self.params.items()}

    def trainable_params(self) -> dict[str, np.ndarray]:
        """The parameters an optimizer updates, under their graph names: none for a frozen layer."""
        if not self.trainable:
            return {}
        return {f"{self.name}.{local}": v for local, v in self.params.items() if local not in self.non_trainable}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if v is not None)
        return f"{type(self).__name__}({args})"
