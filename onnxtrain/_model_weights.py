"""Keras' weights API of a model: `get_weights` (a `WeightsByName` dict) / `set_weights` (by graph name, or a list
in their order), `save_weights` / `load_weights` (one .npz file), `weights` / `trainable_weights` /
`non_trainable_weights` (each layer's `LayerWeight`s), and keeping a compiled engine's weights and the layers' in
step (`sync_weights`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain import _weights_file
from onnxtrain._checks import check_bool
from onnxtrain._finite_weights import check_finite_weights, trained_weights
from onnxtrain._layer_claims import models_sharing_layers, pull_weights
from onnxtrain._weight_arrays import weight_arrays
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.layers import Layer
from onnxtrain.layers._layer_weights import LayerWeight, WeightLists
from onnxtrain.layers._preprocessing import without_keras_counts

if TYPE_CHECKING:
    from onnxtrain.functional import Functional
    from onnxtrain.training import Trainer


class WeightsByName(dict[str, np.ndarray]):
    """What `Model.get_weights()` returns: a dict of each parameter by graph name (`dense_1.kernel`), in layer order,
    where Keras' returns a list. An index or slice (`weights[0]`, Keras' habit) is refused naming the keys and
    Keras' list, `list(weights.values())`; a name it lacks, naming the names it holds. Pickled or copied it is a
    plain dict, and `np.savez(path, **weights)` writes it as it is."""

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):  # (unhashable before Python 3.12: it never reaches __missing__)
            raise _index_refused(self, key)
        return super().__getitem__(key)

    def __missing__(self, key: object) -> np.ndarray:
        if isinstance(key, int | np.integer):  # (a bool is an int too: refused alike)
            raise _index_refused(self, key)
        raise KeyError(f"{key!r}: no parameter of that name. get_weights() holds {list(self)}")

    def __reduce__(self) -> tuple[type, tuple[dict[str, np.ndarray]]]:
        return dict, (dict(self),)  # a plain dict: unpickling it needs no onnxtrain


def _index_refused(weights: WeightsByName, key: object) -> InvalidTypeError:
    names = list(weights)
    shown = ", ".join(map(repr, names[:3])) + (", ..." if len(names) > 3 else "") if names else "none here"
    first = names[0] if names else "dense_1.kernel"
    return InvalidTypeError(
        f"get_weights() returns a dict keyed by each parameter's graph name ({shown}), not a list as Keras' does. "
        f"Received: the index {key!r}. Index it by name (weights[{first!r}]), or take Keras' list, in the same "
        "order: list(model.get_weights().values())."
    )


# the names a training bundle's state gives the optimizer's slots and the step (onnxtrain/portable/_graphs.py)
_OPTIMIZER_STATE_PREFIX = "optimizer."
_STEP = "step"


def _refuse_optimizer_state(weights: object, parameters: Mapping[str, np.ndarray]) -> None:
    """Refuse a mapping that holds a training bundle's optimizer state or step (what `onnxtrain.bundle.unpack_state`
    and `read_state` return), naming `load_state`, which sets them.

    Raises:
        InvalidArgumentError: naming the state's names and the fix.
    """
    if not isinstance(weights, Mapping):
        return
    state = [
        name
        for name in weights
        if name not in parameters
        and isinstance(name, str)
        and (name == _STEP or name.startswith(_OPTIMIZER_STATE_PREFIX))
    ]
    if state:
        raise InvalidArgumentError(
            f"set_weights expects parameters by name ({_first(list(parameters))}). Received: a training bundle's "
            f"optimizer state and step ({_first(state)}), as onnxtrain.bundle.unpack_state or read_state returns "
            "them. To continue a run from a bundle or JavaScript stateBytes() (weights, optimizer state and step), "
            "call onnxtrain.bundle.load_state(model, bundle, state); for the weights alone, pass "
            "{name: value for name, value in tensors.items() if name in model.get_weights()}."
        )


def _first(names: list[str], most: int = 3) -> str:
    """The first `most` names, quoted, and how many more."""
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(map(repr, names[:most])) + more


class ModelWeights(WeightLists):
    """The weights half of `ModelBase` (see the module docstring); a model is one, through `ModelBase`."""

    if TYPE_CHECKING:  # what the model holds (`ModelBase._setup`)
        graph: Functional
        layers: list[Layer]
        _trainer: Trainer | None
        _closed: bool

        def _check_built(self, action: str) -> None: ...

    @property
    def weights(self) -> list[LayerWeight]:
        """Keras' `model.weights`: every layer's `layer.weights` (trainable ones and statistics), layer by layer, in
        `get_weights()` order; each a `LayerWeight` (`path` is its graph name, `numpy()` its current value)."""
        self._check_built("weights")
        return [weight for layer in self.layers for weight in layer.weights]

    def get_weights(self) -> WeightsByName:
        """Current parameters by graph name (`dense_1.kernel`), in layer order, copied from the training engine when
        compiled (or from that of the compiled model that shares the layers): a dict (`WeightsByName`), where
        Keras' returns a list; Keras' list, in the same order, is `list(model.get_weights().values())`."""
        self._check_built("get_weights")
        own = self.graph.params_by_name()
        if self._trainer is not None:
            engine = self._trainer.engine.get_weights()
            return WeightsByName((name, engine[name]) for name in own)
        pull_weights(self)
        return WeightsByName((name, value.copy()) for name, value in self.graph.params_by_name().items())

    def set_weights(self, weights: Mapping[str, Any] | Sequence[Any]) -> None:
        """Replace parameters: a mapping by graph name (`dense_1.kernel`; any subset), or, as in Keras, a list of
        every parameter in `get_weights()` order (Keras' own, whose Normalization layers add a count after their
        variance, too: dropped). Each value must match its parameter's shape, and be finite where
        training changes it (a frozen one may hold what an exporter wrote: a causal mask of -inf).
        """
        self._check_built("set_weights")
        every = self.graph.params_by_name()
        weights = without_keras_counts(list(self.graph._named_params("", set())), weights)  # Normalization's
        _refuse_optimizer_state(weights, every)
        constants = set(every) - set(self.graph.trainable_params_by_name())
        arrays = weight_arrays(weights, every, constants)
        self.graph.set_params_by_name({name: value.copy() for name, value in arrays.items()})
        if self._trainer is not None:
            self._trainer.engine.set_weights(arrays)
            self._trainer.weights_changed()
        else:  # the compiled model sharing these layers (a nested model's outer one) takes them into its engine
            changed = {id(owner): owner for name, owner, _ in self.graph._named_params("", set()) if name in arrays}
            for layer in changed.values():
                self.layer_params_changed(layer)

    def save_weights(self, path: str | Path, overwrite: bool = True) -> Path:
        """Keras' `save_weights`: write every parameter (the engine's current ones once compiled) to one .npz file
        by its name (`dense_1.kernel`), crash-safely; `np.load(path)` reads it too. Keras' `.weights.h5` is refused
        (HDF5 needs h5py, which onnxtrain does not use).

        Returns:
            The path written.

        Raises:
            InvalidArgumentError: a path not ending in .npz, or a folder.
            ModelExistsError: the file exists and `overwrite` is False.
            ModelStateError: a weight holds NaN or inf (training diverged).
        """
        self._check_built("save_weights")
        target = _weights_file.weights_path("save_weights", path)
        weights = self.get_weights()
        check_finite_weights(trained_weights(self), "save_weights")
        return _weights_file.write_weights(target, weights, check_bool("save_weights", "overwrite", overwrite))

    def load_weights(self, path: str | Path, skip_mismatch: bool = False) -> None:
        """Keras' `load_weights`: set the parameters from a `save_weights` file (any .npz of arrays by parameter
        name), matched by name, into the layers and, once compiled, the engine (as `set_weights`; the optimizer
        state is kept). A file that lacks a parameter, holds one the model does not have or another shape is
        refused naming them; with `skip_mismatch=True` (KotlinDL's transfer learning: a new head on a trained base)
        the parameters that fit are loaded and the rest left as they are, with a warning naming them.

        Raises:
            InvalidArgumentError: a path not ending in .npz; a mismatch without `skip_mismatch`; non-finite values.
            ModelFileError: the file is missing, unreadable or damaged.
        """
        self._check_built("load_weights")
        skip = check_bool("load_weights", "skip_mismatch", skip_mismatch)
        target = _weights_file.weights_path("load_weights", path)
        found = _weights_file.read_weights(target)
        self.set_weights(_weights_file.matching_weights(found, self.graph.params_by_name(), target, skip))

    def layer_params_changed(self, layer: Layer) -> None:
        """Give every compiled, open model that trains `layer` (this one, or one it is nested in) the parameters the
        layer now holds, changed outside the engine (`Normalization.adapt`), as `set_weights` would."""
        for model in models_sharing_layers(self):
            if model._trainer is None or model._closed:
                continue
            named = model.graph._named_params("", set())
            model.set_weights({name: layer.params[local] for name, owner, local in named if owner is layer})

    def sync_weights(self) -> None:
        """Copy the engine's current weights into the layers (before export or save); not compiled, those of the
        compiled model that shares its layers and trained them since."""
        if self._trainer is not None:
            weights = self._trainer.engine.get_weights()
            self.graph.set_params_by_name({name: weights[name] for name in self.graph.params_by_name()})
        else:
            pull_weights(self)
