"""ModelBase: what a model is and does without compiling (`Model` adds compile and what needs it): its
`Functional` graph (checked by `_model_checks.py`), its layers (a nested model listed as that Model, as Keras lists
it), inputs, outputs and shapes, summary, config, and the files `save` and `export` write. Its weights API is
`ModelWeights` (`_model_weights.py`), which layers it may hold `_layer_claims.py`, its default name
`_model_names.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain import adapters, model_files
from onnxtrain._call_arguments import refuse_unknown
from onnxtrain._checks import check_bool
from onnxtrain._compiled import Compiled
from onnxtrain._deferred_build import not_built_message
from onnxtrain._kotlindl_attributes import KOTLINDL_MODEL_ATTRIBUTES, missing_attribute
from onnxtrain._layer_claims import claim_layers, rename_claims
from onnxtrain._model_checks import check_model_base
from onnxtrain._model_names import AUTO_NAMED
from onnxtrain._model_prediction import call_on_data
from onnxtrain._model_weights import ModelWeights
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelStateError
from onnxtrain.functional import Functional, every_layer
from onnxtrain.layers import Input, Lambda, Layer, Shape
from onnxtrain.layers._assignments import misspelled, misspelled_setting
from onnxtrain.layers._eager import is_eager_input
from onnxtrain.layers._layer import SymbolicTensor
from onnxtrain.layers._layer_checks import positional_inputs
from onnxtrain.losses import Loss
from onnxtrain.summary import KERAS_SUMMARY_SETTINGS, check_print_fn, connected_summary_table
from onnxtrain.training import Trainer


class ModelBase(ModelWeights):
    """The half of a `Model` that needs no compile (Keras keeps it in `Layer`, and the training half in `Trainer`).
    A Model (and a Sequential) is one: make a model with `Model(...)` or `Sequential(...)`, not with this class.
    """

    def _setup(self, graph: Functional, name: str, seed: int) -> None:
        """Hold `graph` (checked: see `Model`'s Raises) under `name`; `seed` is the one its weights came from."""
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(
                f"{type(self).__name__}(name=...) expects a non-empty string. Received: name={name!r}"
            )
        check_model_base(graph)
        claim_layers(self, graph.layers, name)
        if self.__dict__.get(AUTO_NAMED):  # a default name, which a model it is nested in replaces
            graph.__dict__[AUTO_NAMED] = self.__dict__[AUTO_NAMED]
        if not self.__dict__.get("_trainable", True):  # model.trainable = False before Sequential.add
            graph.trainable = False
        self.graph = graph
        self.name = name
        self.seed: int = seed
        self._layers: list[Layer] = list(graph.layers)
        self.class_names: tuple[str, ...] | None = None
        self.input_scale: float = 1.0
        # The loss a loaded model was trained with, known from its save even before compile: the export emits the
        # graph training used (a last Dense left at its default activation gives logits to that loss).
        self.trained_loss: Loss | None = None
        self._trainer: Trainer | None = None  # Model.compile opens it, Model.close closes it
        self._pulled_weights: tuple[Any, int] | None = None  # (the trainer, its step) of the last `pull_weights`
        self._closed = False

    def _take_name(self, name: str) -> None:
        """Take `name` in place of a default one (`_model_names.py`): the model this one is nested in names it."""
        self.name = name
        self.__dict__.pop(AUTO_NAMED, None)
        rename_claims(self, name)

    def __setattr__(self, attribute: str, value: Any) -> None:
        # KotlinDL's `model.stopTraining = true` would set a new attribute that changes nothing: refused, naming ours
        setting = misspelled_setting(self, attribute)
        if setting is not None:
            owner = f"{type(self).__name__} {self.__dict__.get('name')!r}"
            raise InvalidArgumentError(misspelled(owner, attribute, setting, value))
        object.__setattr__(self, attribute, value)

    if not TYPE_CHECKING:  # mypy would take a model to have every attribute

        def __getattr__(self, attribute: str) -> Any:
            # Only reached for an attribute neither set nor defined (a subclass' own `__getattr__` ends here):
            # KotlinDL's name of one (`model.predictSoftly`) is refused naming Python's.
            message = missing_attribute(self, attribute, KOTLINDL_MODEL_ATTRIBUTES, "model")
            raise AttributeError(message, name=attribute, obj=self)

    def __call__(
        self,
        inputs: SymbolicTensor | Sequence[SymbolicTensor],
        *more_inputs: SymbolicTensor,
        training: bool | None = None,
    ) -> SymbolicTensor:
        """Call the model as a layer of another (Keras' nested models): its weights are shared with it. A model of
        several inputs takes a list of tensors or them as separate arguments (`model(a, b)`); on numpy arrays it
        runs at once, as a layer does (`layers._eager`), and returns one array per output as Keras 3's call does:
        one array (also for a list or tuple of one output), a list or tuple of them as the model was given its
        outputs, or a dict keyed by output name in the dict's order. On data, a compiled model (or one loaded from
        a save) computes what its graphs do: an output's last Dense left at its default activation gives the logits
        under a loss on logits, as the export's `logits` (`emit.graph_layers`). `training` is Keras' call
        argument."""
        if "graph" in self.__dict__:
            given = positional_inputs(self.graph, inputs, more_inputs)
            if is_eager_input(given):
                outputs = call_on_data(self.graph, self._emitted_loss(), given, training)
                if outputs is None:
                    outputs = self.graph(inputs, *more_inputs, training=training)
                return outputs  # type: ignore[return-value]
        return self.graph(inputs, *more_inputs, training=training)

    @property
    def trainable(self) -> bool:
        """Keras' `model.trainable`: False freezes every layer of the model (a nested model's layers too, and a
        BatchNormalization runs in inference mode), True makes them all trainable again, as Keras sets the flag
        on each layer. Its usual use is Keras' transfer learning: `base_model.trainable = False` on a model called
        as a layer of another, before compiling that one. A compiled model (this one, or one it is nested in)
        applies it at its next compile(): until then fit, evaluate and predict refuse to run the old one
        (`ModelStateError`)."""
        graph = self.__dict__.get("graph")
        return bool(graph.trainable) if graph is not None else bool(self.__dict__.get("_trainable", True))

    @trainable.setter
    def trainable(self, value: bool) -> None:
        if not isinstance(value, bool | np.bool_):
            raise InvalidArgumentError(
                f"{type(self).__name__}.trainable expects a bool (False freezes every layer of the model). Received: "
                f"trainable={value!r}"
            )
        object.__setattr__(self, "_trainable", bool(value))
        graph = self.__dict__.get("graph")
        if graph is not None:
            graph.trainable = bool(value)

    def freeze(self) -> None:
        """KotlinDL's `model.freeze()`: `model.trainable = False`, every layer of the model frozen (see
        `trainable`); a compiled model applies it at its next compile(), as it applies the flag."""
        self.trainable = False

    def unfreeze(self) -> None:
        """`model.trainable = True` (as a layer's `unfreeze()`, KotlinDL's): every layer of the model trainable
        again, applied at the next compile() as `freeze`."""
        self.trainable = True

    @property
    def layers(self) -> list[Any]:
        """Keras' `model.layers`: every layer once, Inputs first, in the order of their first call; a model nested
        in this one is listed as that Model itself, as Keras lists it (`model.layers[1].trainable = False`,
        `model.layers[1].summary()`), made anew around its layers for a loaded model (`Model._nested_model`)."""
        return [self._nested_model(layer) if isinstance(layer, Functional) else layer for layer in self._layers]

    @layers.setter
    def layers(self, layers: Sequence[Layer]) -> None:
        self._layers = list(layers)

    def _nested_model(self, graph: Functional) -> Any:
        """The Model that `graph`, a layer of this model, is the graph of (`Model` finds or makes it)."""
        return graph

    @property
    def weights(self) -> list[Any]:
        """Keras' `model.weights`: every layer's `layer.weights` (trainable ones and statistics), layer by layer, in
        `get_weights()` order, each under its name in this model's graph (`sub.dense_1.kernel` for a nested
        model's); each a `LayerWeight` (`path` is its graph name, `numpy()` its current value)."""
        self._check_built("weights")
        return [weight for layer in self._layers for weight in layer.weights]

    @property
    def input_shape(self) -> Shape:
        """The per-example input shape; a list of them for a model of several inputs."""
        self._check_built("input_shape")
        shapes = [x.shape for x in self.graph.inputs]
        return shapes[0] if len(shapes) == 1 else shapes  # type: ignore[return-value]

    @property
    def output_shape(self) -> Shape:
        """The per-example output shape; a list of them for a model of several outputs."""
        self._check_built("output_shape")
        shapes = [y.shape for y in self.graph.outputs]
        return shapes[0] if len(shapes) == 1 else shapes  # type: ignore[return-value]

    @property
    def inputs(self) -> list[Input]:
        """Keras' `model.inputs`: the model's Input tensors, in the order it takes arrays (a list, also of one)."""
        self._check_built("inputs")
        return list(self.graph.inputs)

    @property
    def outputs(self) -> list[SymbolicTensor]:
        """Keras' `model.outputs`: the symbolic tensors of its outputs, in order (a list, also of one): with
        `inputs`, what a new `Model(inputs=model.inputs, outputs=...)` is made of (a feature extractor sharing its
        layers)."""
        self._check_built("outputs")
        return list(self.graph.outputs)

    @property
    def input(self) -> Any:
        """Keras' `model.input`: its Input tensor (a list for several); for a model called as a layer of another,
        what that call read (`Functional.input`)."""
        self._check_built("input")
        return self.graph.input

    @property
    def output(self) -> Any:
        """Keras' `model.output`: its outputs in the structure the model was given them: one tensor, a list (also
        of one) or a tuple of them, or a dict keyed by output name in the dict's order; for a model called as a
        layer of another, that call's tensor(s) there, in that structure too (`Functional.output`)."""
        self._check_built("output")
        return self.graph.output

    @property
    def output_names(self) -> list[str]:
        """The outputs' names, as Keras names them: their layers' (the keys of per-output losses and metrics;
        `Functional.output_names`)."""
        return self.graph.output_names()

    def get_layer(self, name: str | None = None, index: int | None = None) -> Any:
        """Keras' `get_layer`: the layer named `name`, or the one at `index` of `model.layers` (Input first); for a
        model nested in this one, that Model itself, as `layers` lists it (it predicts, summarizes and saves with
        the weights this one trains).

        Raises:
            InvalidArgumentError: neither or both given, no such name (the names are listed), or an index out of
                range.
        """
        if (name is None) == (index is None):
            raise InvalidArgumentError(
                f"get_layer expects a name or an index, one of them. Received: name={name!r}, index={index!r}"
            )
        layers = self.layers
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int) or not -len(layers) <= index < len(layers):
                raise InvalidArgumentError(
                    f"get_layer(index=...) expects an int in [{-len(layers)}, {len(layers) - 1}] (the model has "
                    f"{len(layers)} layers). Received: index={index!r}"
                )
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise InvalidArgumentError(
            f"get_layer found no layer named {name!r}. The model's layers: {[layer.name for layer in layers]}"
        )

    def count_params(self) -> int:
        """Keras' `count_params()`: the number of values in every weight, trainable or not (a BatchNormalization's
        moving statistics and a frozen layer's weights included). `param_counts()` splits it."""
        self._check_built("count_params")
        return sum(self.param_counts())

    def param_counts(self) -> tuple[int, int]:
        """(trainable, frozen) parameter counts, as the summary's "Total trainable params" and "Total frozen
        params": the weights an optimizer updates, and the rest (frozen layers', statistics)."""
        self._check_built("param_counts")
        trainable = sum(value.size for value in self.graph.trainable_params_by_name().values())
        total = sum(value.size for value in self.graph.params_by_name().values())
        return int(trainable), int(total - trainable)

    def summary(
        self,
        print_fn: Any = print,
        show_trainable: bool = False,
        expand_nested: bool = False,
        line_length: int | None = None,
        positions: Sequence[float] | None = None,
        **unknown: Any,
    ) -> str | None:
        """KotlinDL's summary table: printed, or returned as a string. Once compiled (or loaded from a save of a
        compiled model), a last Dense left at its default activation under a loss on logits shows
        "[linear (logits)]": that is what it emits.

        Args:
            print_fn: called with the table (default `print`); None prints nothing and returns the table instead.
            show_trainable: Keras' "Trainable" column: Y for a layer whose weights train, N for a frozen one, -
                for one without weights.
            expand_nested: Keras' argument: under a nested model's row, a row for each of its layers (`└ name`),
                recursively.
            line_length: Keras' argument: the table's width in characters, its columns scaled to it (None: the
                default widths).
            positions: Keras' argument: where each column ends, as fractions of the line ([0.4, 0.7, 1.0]) or,
                where the last is over 1, in characters (Keras 2's); one per column, "Trainable" aside.

        Returns:
            None after printing (as in Keras, so a REPL or notebook does not echo the table a second time), or
            the table when `print_fn` is None.

        Raises:
            InvalidTypeError: a keyword summary does not take (Keras' `layer_range`), or a `print_fn` that is not
                callable.
            InvalidArgumentError: `line_length` or `positions` that leave a column too narrow
                (`summary.column_widths`).

        Example:
            >>> model.summary()  # doctest: +SKIP
            >>> text = model.summary(print_fn=None, line_length=100)  # doctest: +SKIP
        """
        refuse_unknown("summary", unknown, ModelBase.summary, settings=KERAS_SUMMARY_SETTINGS)
        self._check_built("summary")
        check_print_fn(print_fn)
        trainable = check_bool("summary", "show_trainable", show_trainable)
        nested = check_bool("summary", "expand_nested", expand_nested)
        table = self._summary_table(trainable, nested, line_length, positions)
        if print_fn is None:
            return table
        print_fn(table)
        return None

    print_summary = summary

    def _summary_table(
        self,
        show_trainable: bool = False,
        expand_nested: bool = False,
        line_length: int | None = None,
        positions: Sequence[float] | None = None,
    ) -> str:
        """Keras' summary table with "Connected to" (a Sequential's is KotlinDL's: `Sequential._summary_table`)."""
        rows = self.graph.summary_rows()
        loss = self._emitted_loss()
        kind = f"Functional ({self.name})"
        counts = self.param_counts()
        return connected_summary_table(
            kind, rows, counts, loss, self.graph, show_trainable, expand_nested, line_length, positions
        )

    def _emitted_loss(self) -> Loss | None:
        """The loss the model's graphs and export are emitted for: the compiled one, else the one it was trained
        with (a loaded save's), else None."""
        return self._compiled.loss if self._compiled is not None else self.trained_loss

    @property
    def _compiled(self) -> Compiled | None:
        """The settings of the last compile, or None."""
        return self._trainer.compiled if self._trainer is not None else None

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise ModelStateError(f"{action}() was called on a closed model; create or load the model again.")

    def _check_built(self, action: str) -> None:
        """Refuse `action` on a Sequential that has no input shape yet (Keras' "not yet been built")."""
        if "graph" not in self.__dict__:
            raise ModelStateError(not_built_message(action, bool(self.__dict__.get("_layers"))))

    def inference_model(self, opset: int | None = None, ir_version: int | None = None) -> Any:
        """The clean, portable inference ModelProto with the current weights (what `export` writes)."""
        self._check_open("inference_model")
        self._check_built("inference_model")
        return model_files.exported_model(self, self._compiled, opset=opset, ir_version=ir_version)

    def save(
        self,
        directory: str | Path | None = None,
        writing_mode: Any = "fail_if_exists",
        save_optimizer_state: bool = False,
        **unknown: Any,
    ) -> Path:
        """Write model.onnx, config.json and checkpoint into `directory` crash-safely (see `WritingMode`).

        Raises:
            InvalidTypeError: a keyword save does not take (KotlinDL's `writingMode` is `writing_mode`, its
                `modelDirectory` is `directory`); no directory.
            UnsupportedError: a Lambda layer computes with a lambda, which a load could not find by name
                (`Lambda.check_savable`).
        """
        refuse_unknown("save", unknown, ModelBase.save)
        if directory is None:  # a default only so that KotlinDL's modelDirectory=... gets its hint above
            raise InvalidTypeError("save() expects the directory to write the model into. Received: directory=None")
        self._check_open("save")
        self._check_built("save")
        for layer in every_layer(self.graph.layers):
            for each in (layer, getattr(layer, "layer", None)):  # a wrapper's (TimeDistributed's) layer too
                if isinstance(each, Lambda):
                    each.check_savable()
        return model_files.save_model(self, self._trainer, directory, writing_mode, save_optimizer_state)

    def export(
        self,
        path: str | Path,
        opset: int | None = None,
        writing_mode: Any = "fail_if_exists",
        ir_version: int | None = None,
        merge_adapters: bool = False,
        **unknown: Any,
    ) -> Path:
        """Write the inference model alone as one .onnx file.

        Args:
            merge_adapters: fold LoRA adapters (`onnxtrain.lora`) into their weights first
                (`onnxtrain.adapters.merge_adapters`): a plain model of the original's size.

        Raises:
            InvalidTypeError: a keyword export does not take (KotlinDL's `writingMode` is `writing_mode`).
        """
        refuse_unknown("export", unknown, ModelBase.export)
        self._check_open("export")
        self._check_built("export")
        transform = adapters.merge_adapters if check_bool("export", "merge_adapters", merge_adapters) else None
        return model_files.export_model(self, self._compiled, path, opset, ir_version, writing_mode, transform)

    def get_config(self) -> dict[str, Any]:
        """Keras' Functional config (`Functional.get_config`) under the model's name and seed."""
        return {"class_name": "Functional", **self.graph.get_config(), "name": self.name, "seed": self.seed}
