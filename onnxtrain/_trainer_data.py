"""The data a `Trainer` reads: fit's and evaluate's arguments as the model reads them (`prepare`,
`prepare_data`), the engine that takes their sample weights, and what fit adopts of its training data (class
names, input scale)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from onnxtrain._batch_stream import BatchStream
from onnxtrain._batches import Batches, SeparateArrays, read_batches, read_data
from onnxtrain._input_scale import refuse_raw_value_ranges, refuse_raw_value_ranges_of_model, rescales_pixels_again
from onnxtrain._sample_weights import WeightedEngine, weighted_engine
from onnxtrain.errors import InvalidArgumentError

if TYPE_CHECKING:
    from onnxtrain._compiled import Compiled
    from onnxtrain._trained_model import TrainedModel
    from onnxtrain.arrays import InputSpec
    from onnxtrain.engine import Engine
    from onnxtrain.multi_output import OutputLosses


class TrainerData:
    """How a `Trainer` reads its data (see the module docstring); a `Trainer` is one."""

    if TYPE_CHECKING:  # what `Trainer` holds
        model: TrainedModel
        compiled: Compiled
        engine: Engine
        epochs_trained: int
        _inputs: list[InputSpec]
        _outputs: OutputLosses | None

    def prepare(self, data: Any, argument: str, input_scale: float | None = None, sample_weight: Any = None) -> Batches:
        """`data` as the model reads it (`read_batches`), with its weights (per example, or per position of an
        output with steps) where `sample_weight` or (validation data) an (x, y, sample_weight) tuple gives them.
        Integers without a scale of their own take `input_scale` (default: the model's), for a Dataset as for an
        (x, y) pair, so both give the same numbers."""
        scale = self.model.input_scale if input_scale is None else input_scale
        several_outputs = self._outputs is not None
        loss, output_shape = self.compiled.loss, self.model.output_shape
        triples = argument == "validation"  # Keras' validation_data=(x, y, sample_weight)
        data, sample_weight = self._by_output_name(data, sample_weight)
        return read_batches(
            data,
            argument,
            self._inputs,
            several_outputs,
            loss,
            output_shape,
            scale,
            sample_weight,
            triples,
            bool(self.compiled.weighted_metrics),
        )

    def prepare_data(
        self, data: Any, argument: str, input_scale: float | None = None, sample_weight: Any = None
    ) -> Batches | BatchStream:
        """`prepare` for fit and evaluate, which take a generator or a PyDataset too: for one, the BatchStream that
        reads each of its batches as `prepare` reads arrays (`read_data`)."""
        scale = self.model.input_scale if input_scale is None else input_scale
        loss, output_shape = self.compiled.loss, self.model.output_shape
        triples = argument == "validation"  # Keras' validation_data=(x, y, sample_weight)
        data, sample_weight = self._by_output_name(data, sample_weight)
        return read_data(
            data,
            argument,
            self._inputs,
            self._outputs is not None,
            loss,
            output_shape,
            scale,
            sample_weight,
            triples,
            bool(self.compiled.weighted_metrics),
            None if self._outputs is not None else self._sole_output,  # a stream's batches, keyed so too
        )

    def _by_output_name(self, data: Any, sample_weight: Any) -> tuple[Any, Any]:
        """For a model of one output, y and sample weights as Keras also takes them, {output name: array} (a model of
        a one-key dict of outputs, `compile(loss={name: ...})`): the arrays. Other data as given (a generator's or
        PyDataset's batches are unwrapped as they come, by `_sole_output`)."""
        if self._outputs is not None:
            return data, sample_weight
        if isinstance(data, SeparateArrays):
            data = SeparateArrays(data.x, self._sole_output(data.y, "y"))
        elif isinstance(data, tuple) and len(data) in (2, 3):
            named = ("y", "sample_weight")
            data = (data[0], *(self._sole_output(v, n) for v, n in zip(data[1:], named, strict=False)))
        return data, self._sole_output(sample_weight, "sample_weight")

    def _sole_output(self, value: Any, argument: str) -> Any:
        if not isinstance(value, dict):
            return value
        name = self.model.graph.output_names()[0]
        if list(value) != [name]:
            raise InvalidArgumentError(
                f"{argument} for a model of one output expects an array, or a dict {{{name!r}: array}} keyed by its "
                f"output's name. Received keys: {list(value)}"
            )
        return value[name]

    def _weighted(self, *data: Batches | BatchStream | None) -> WeightedEngine | None:
        """The engine as one that takes sample weights where any of `data` has them (else None), laid out as its
        weighted graphs read them (`weighted_engine`); refused, before any step, by an engine that does not take
        them."""
        if all(batches is None or batches.w is None for batches in data):
            return None
        return weighted_engine(self.engine, self.compiled.engine, self.model.output_shape, self._outputs is not None)

    def _scale_after(self, train: Batches | BatchStream) -> float:
        """The input scale the model will read inputs with once `fit` adopts `train` (see `_adopt`)."""
        if train.input_scale is not None and self.epochs_trained == 0:
            return train.input_scale
        return self.model.input_scale

    def refuse_augmenting_scaled_pixels(self, action: str) -> None:
        """Refuse to train (`action`: "fit", "train_on_batch") a model whose own input_scale takes pixels to a unit
        range (`model.input_scale = 1 / 255` on uint8 pixels, docs/images.md's route) while its augmentation layers
        at its start keep Keras' value_range=(0, 255) (`refuse_raw_value_ranges_of_model`): the model divides the
        pixels first, and the augmentation shifts them by up to 127. Training only: evaluate and predict do not
        augment."""
        refuse_raw_value_ranges_of_model(self.model.layers, self.model.input_scale, action)

    def _adopt(self, train: Batches | BatchStream) -> None:
        """Keep what the training data says about itself, for predict and save: its class names where the model
        has none, and its input scale before the first epoch. Only fit's training data, once every argument of
        the call has passed its checks: validation or evaluation data must not change how a model reads inputs.
        """
        scale = train.input_scale
        twice = None if scale is None else rescales_pixels_again(self.model.layers, scale)
        if scale is not None and twice is not None:
            raise InvalidArgumentError(
                f"fit's training data holds pixels already divided by {1 / scale:.6g} (a Dataset of input_scale "
                f"{scale:.6g}, as fashion_mnist() and image_dataset_from_directory() give), and the model's layer "
                f"{twice[0]!r}, before any layer that changes values, Rescaling(scale={twice[1]:.6g}), divides them "
                "again: the model would train on pixels / 65025. Remove that Rescaling layer (the model takes the "
                "data's input_scale and scales raw pixels itself when it predicts), or pass unscaled pixels "
                "(image_dataset_from_directory(..., scale_pixels=False))."
            )
        if scale is not None:
            refuse_raw_value_ranges(self.model.layers, scale, "fit's training data")
        if scale is None or self.epochs_trained > 0:  # the model's own input_scale scales them (`_scale_after`)
            self.refuse_augmenting_scaled_pixels("fit")
        if self.model.class_names is None and train.class_names:
            self.model.class_names = train.class_names
        self.model.input_scale = self._scale_after(train)
