"""Model: Keras' functional model, a `Functional` graph of layer calls that compiles for a training engine, fits,
evaluates, predicts, saves and exports (`onnxtrain.sequential.Sequential` is the Model of a layer list).
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from onnxtrain import adapters, emit, model_files
from onnxtrain._checks import check_bool, check_positive_int
from onnxtrain._compile_settings import compile_settings
from onnxtrain._weight_arrays import weight_arrays
from onnxtrain.errors import InvalidArgumentError, ModelStateError, UnsupportedError
from onnxtrain.functional import Functional
from onnxtrain.history import EvaluationResult, History
from onnxtrain.layers import BatchNormalization, Input, Layer, Shape
from onnxtrain.layers._layer import SymbolicTensor
from onnxtrain.losses import Loss, Losses
from onnxtrain.metrics import Metrics
from onnxtrain.optimizers import Optimizer
from onnxtrain.summary import connected_summary_table
from onnxtrain.training import Compiled, Trainer


class Model:
    """Keras' functional Model: the layers between `inputs` and `outputs`, called as the graph records
    (`onnxtrain.functional`), trained, saved and exported as a Sequential is (a Sequential is a Model).

    Example:
        >>> a, b = Input(8, name="a"), Input(4, name="b")
        >>> h = Add()([Dense(8)(a), a])  # a skip connection
        >>> model = Model(inputs=[a, b], outputs=Dense(3)(Concatenate()([h, b])))
        >>> model.fit([xa, xb], y)  # or {"a": xa, "b": xb}  # doctest: +SKIP

    Layers are named (`dense_1`, `conv2d_1`, ...) and given weights from `seed` when the model is made. A model of
    one input reads graph input `input`; a model of several reads one per Input, named as the Input layer is, in
    its training graphs and its export alike. A Model can be called on tensors as a layer of another model.

    Args:
        inputs: the Input tensor, or a list of them (the order in which fit, evaluate and predict take arrays).
        outputs: the output tensor, or a list of them (Keras' several outputs: compile takes a loss per output or
            one for all, fit and evaluate a label array per output, predict returns one array per output), or a
            dict {name: tensor}: each output's layer takes that name (a layer already named otherwise is refused).
        name: the model's name (config, summary, exported metadata; as a layer of another model, the prefix of
            its parameters' names).
        seed: seeds weight initialization and the default per-epoch shuffling.

    Raises:
        UnsupportedError: a BatchNormalization called more than once (shared).
        InvalidArgumentError: what `Functional` refuses; an Input named like a graph input or output onnxtrain
            reserves (`labels`, `logits`, ...) in a model of several inputs; several outputs of one layer.
    """

    def __init__(
        self,
        inputs: Input | Sequence[Input],
        outputs: SymbolicTensor | Sequence[SymbolicTensor] | Mapping[str, SymbolicTensor],
        name: str = "functional",
        seed: int | None = None,
    ):
        if isinstance(outputs, Mapping):
            outputs = _named_outputs(outputs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
            raise InvalidArgumentError(f"Model(seed=...) expects a non-negative int or None. Received: {seed!r}")
        graph = Functional(inputs, outputs, name=name, seed=seed)
        self._setup(graph, name, graph.seed)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Model:
        """The model `get_config()` describes, with weights drawn again from its seed."""
        graph = Functional.from_layer_config(config)
        return cls(graph.inputs, graph.outputs, name=str(config.get("name", "functional")), seed=graph.seed)

    def _setup(self, graph: Functional, name: str, seed: int) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(
                f"{type(self).__name__}(name=...) expects a non-empty string. Received: name={name!r}"
            )
        _check_graph(graph)
        self.graph = graph
        self.name = name
        self.seed: int = seed
        self.layers: list[Layer] = list(graph.layers)
        self.class_names: tuple[str, ...] | None = None
        self.input_scale: float = 1.0
        # The loss a loaded model was trained with, known from its save even before compile: the export emits the
        # graph training used (a last Dense left at its default activation gives logits to that loss).
        self.trained_loss: Loss | None = None
        self.stop_training = False  # callbacks set it to end fit early
        self._trainer: Trainer | None = None
        self._closed = False
        self._fitting = False  # compile and close wait for fit to return (a callback may call them)

    def __call__(self, inputs: SymbolicTensor | Sequence[SymbolicTensor]) -> SymbolicTensor:
        """Call the model as a layer of another (Keras' nested models): its weights are shared with it."""
        return self.graph(inputs)

    @property
    def input_shape(self) -> Shape:
        """The per-example input shape; a list of them for a model of several inputs."""
        shapes = [x.shape for x in self.graph.inputs]
        return shapes[0] if len(shapes) == 1 else shapes  # type: ignore[return-value]

    @property
    def output_shape(self) -> Shape:
        """The per-example output shape; a list of them for a model of several outputs."""
        shapes = [y.shape for y in self.graph.outputs]
        return shapes[0] if len(shapes) == 1 else shapes  # type: ignore[return-value]

    @property
    def output_names(self) -> list[str]:
        """The outputs' names, as Keras names them: their layers' (the keys of per-output losses and metrics)."""
        return [str(y.layer.name) for y in self.graph.outputs]

    def count_params(self) -> tuple[int, int]:
        """(trainable, frozen) parameter counts."""
        trainable = sum(value.size for value in self.graph.trainable_params_by_name().values())
        total = sum(value.size for value in self.graph.params_by_name().values())
        return int(trainable), int(total - trainable)

    def summary(self, print_fn: Any = print) -> str | None:
        """KotlinDL's summary table: printed, or returned as a string. Once compiled, a last Dense left at its
        default activation under softmax cross-entropy shows "[linear (logits)]": that is what it emits.

        Args:
            print_fn: called with the table (default `print`); None prints nothing and returns the table instead.

        Returns:
            None after printing (as in Keras, so a REPL or notebook does not echo the table a second time), or
            the table when `print_fn` is None.

        Example:
            >>> model.summary()  # doctest: +SKIP
            >>> text = model.summary(print_fn=None)  # doctest: +SKIP
        """
        return _print(self._summary_table(), print_fn)

    print_summary = summary

    def _summary_table(self) -> str:
        """Keras' summary table with "Connected to" (a Sequential's is KotlinDL's: `Sequential._summary_table`)."""
        loss = self._compiled.loss if self._compiled is not None else None
        rows = self.graph.summary_rows()
        return connected_summary_table(f"Functional ({self.name})", rows, self.count_params(), loss, self.graph)

    def get_weights(self) -> dict[str, np.ndarray]:
        """Current parameters by graph name (`dense_1.kernel`), in layer order, copied from the training engine when
        compiled."""
        own = self.graph.params_by_name()
        if self._trainer is not None:
            engine = self._trainer.engine.get_weights()
            return {name: engine[name] for name in own}
        return {name: value.copy() for name, value in own.items()}

    def set_weights(self, weights: Mapping[str, Any] | Sequence[Any]) -> None:
        """Replace parameters: a mapping by graph name (`dense_1.kernel`; any subset), or, as in Keras, a list of
        every parameter in `get_weights()` order. Each value must match its parameter's shape and be finite.
        """
        arrays = weight_arrays(weights, self.graph.params_by_name())
        self.graph.set_params_by_name({name: value.copy() for name, value in arrays.items()})
        if self._trainer is not None:
            self._trainer.engine.set_weights(arrays)
            self._trainer.weights_changed()

    def sync_weights(self) -> None:
        """Copy the engine's current weights into the layers (before export or save)."""
        if self._trainer is not None:
            weights = self._trainer.engine.get_weights()
            self.graph.set_params_by_name({name: weights[name] for name in self.graph.params_by_name()})

    # --- compile / train ----------------------------------------------------------------------------------
    def compile(
        self,
        optimizer: str | Optimizer | dict[str, Any] = "adam",
        loss: str | Losses | Loss | dict[str, Any] = Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS,
        metric: str | Metrics | None = None,
        metrics: Iterable[str | Metrics] | None = None,
        device: str = "cpu",
        engine: str = "auto",
        artifacts_dir: str | Path | None = None,
        threads: int | None = None,
        opset: int | None = None,
        ir_version: int | None = None,
        loss_weights: Sequence[float] | Mapping[str, float] | None = None,
    ) -> None:
        """Choose optimizer, loss and metrics, generate the training artifacts and open the training session.

        Args:
            optimizer: an Optimizer instance (`Adam()`, `RMSProp(...)`, ...), a name ("adam", "sgd", "rmsprop",
                "adagrad_da", ...) or a config dict: any of the nine in `onnxtrain.optimizers`. The ort-training
                engine runs only Adam and SGD.
            loss: a `Losses` member, a name ("mse") or a Loss instance. A model of several outputs takes one for
                every output, a list (one per output) or a dict keyed by output name (`output_names`); it trains
                their weighted sum.
            metric / metrics: one metric or several (`Metrics.ACCURACY`, "accuracy", "mae", "mse"). Several
                outputs: these for every output, or a list (one list per output) or a dict keyed by output name;
                History and evaluate name them "<output>_<metric>", next to "loss" and each "<output>_loss".
            device: "cpu", "cuda", "cuda:N" or "auto" (CUDA when the installed build has it).
            engine: "portable" (the whole train step as one standard ONNX graph, differentiated op by op by
                `onnxtrain.autodiff`: runs on any ONNX Runtime, including plain onnxruntime/onnxruntime-gpu, with
                every optimizer), "ort-training" (ONNX Runtime's training build: onnxblock gradients, its Adam/SGD
                kernels) or "auto" (the default): portable.
            artifacts_dir: keep the generated training artifacts there (e.g. "artifacts"): ort-training's four files
                (by default they go to a temporary folder that `close()` removes), or the portable engine's
                `train_step.onnx` and `eval.onnx` (by default not written).
            threads: ONNX Runtime intra-op threads (None: one per physical core).
            opset / ir_version: of the training artifacts (default opset 17, or an imported graph's newer one; IR
                the oldest that holds the opset, at least 8; ORT 1.19 loads IR <= 10).
            loss_weights: several outputs only: each output's loss weight, a list or a dict keyed by output name
                (default 1 each).

        Raises:
            UnknownIdentifierError, UnsupportedError, RuntimeSetupError: see the messages.
        """
        self._compile(
            optimizer, loss, metric, metrics, device, engine, artifacts_dir, threads, opset, ir_version, loss_weights
        )

    def _compile(
        self,
        optimizer: str | Optimizer | dict[str, Any],
        loss: str | Losses | Loss | dict[str, Any],
        metric: str | Metrics | None,
        metrics: Iterable[str | Metrics] | None,
        device: str,
        engine: str,
        artifacts_dir: str | Path | None,
        threads: int | None,
        opset: int | None,
        ir_version: int | None,
        loss_weights: Sequence[float] | Mapping[str, float] | None = None,
        resume: bytes | None = None,
    ) -> None:
        """`compile`, continuing from `resume` when given: checkpoint bytes of the engine's own format, with the
        weights, optimizer state and step (what `load_model` passes for a save with the optimizer state)."""
        self._check_open("compile")
        self._check_not_fitting("compile")
        compiled = compile_settings(
            self.graph,
            optimizer,
            loss,
            metric,
            metrics,
            device,
            engine,
            artifacts_dir,
            threads,
            opset,
            ir_version,
            loss_weights,
        )
        self.sync_weights()
        # The new trainer first: a compile that fails (an optimizer the engine lacks, no CUDA, ...) leaves the
        # model compiled as it was, optimizer state included.
        previous = self._trainer
        trainer = Trainer.create(self, compiled, artifacts_dir=artifacts_dir, threads=threads, resume=resume)
        if previous is not None:
            trainer.epochs_trained = previous.epochs_trained
            previous.close()
        self._trainer = trainer

    @property
    def is_compiled(self) -> bool:
        return self._trainer is not None

    @property
    def _compiled(self) -> Compiled | None:
        """The settings of the last compile, or None."""
        return self._trainer.compiled if self._trainer is not None else None

    @property
    def learning_rate(self) -> float:
        """The optimizer's current learning rate; may be set between steps (as schedulers do)."""
        return float(self._compiled_trainer("learning_rate").engine.learning_rate)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        trainer = self._compiled_trainer("learning_rate")
        valid = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        if not valid or value <= 0:
            raise InvalidArgumentError(f"learning_rate expects a positive finite number. Received: {value!r}")
        trainer.engine.learning_rate = float(value)

    def _compiled_trainer(self, action: str) -> Trainer:
        self._check_open(action)
        if self._trainer is None:
            raise ModelStateError(
                f"{action}() needs a compiled model: call model.compile(optimizer=..., loss=...) first."
            )
        return self._trainer

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise ModelStateError(f"{action}() was called on a closed model; create or load the model again.")

    def _check_not_fitting(self, action: str) -> None:
        if self._fitting:
            raise ModelStateError(
                f"{action}() was called while fit() is running (from a callback); it would pull the training "
                f"session from under fit. Set model.stop_training = True to end fit, and call {action}() after."
            )

    def fit(
        self,
        dataset: Any = None,
        y: Any = None,
        *,
        epochs: int = 1,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        verbose: int = 1,
        validation: Any = None,
        validation_split: float = 0.0,
        validation_batch_size: int | None = None,
        callbacks: Sequence[Any] = (),
        x: Any = None,
        validation_data: Any = None,
    ) -> History:
        """Train for `epochs` over `dataset` (a Dataset, an (x, y) tuple, or x with y=...).

        Each epoch is shuffled from (`seed` or the model's seed, epoch number), so equal seeds give identical runs;
        the last partial batch is included. `validation_split` holds out the *last* fraction of the data (before
        shuffling, as in Keras). Returns a History with per-epoch `loss`, the metrics, and `val_*` when validating.
        Keras' spellings work too: `fit(x=..., y=..., validation_data=(x_val, y_val))`.
        """
        trainer = self._compiled_trainer("fit")
        self._check_not_fitting("fit")
        dataset = _alias("dataset", dataset, "x", x)
        validation = _alias("validation", validation, "validation_data", validation_data)
        self._fitting = True
        try:
            return trainer.fit(
                _dataset_arg(dataset, y, "dataset"),
                epochs=check_positive_int("epochs", epochs),
                batch_size=check_positive_int("batch_size", batch_size),
                shuffle=shuffle,
                seed=seed,
                verbose=verbose,
                validation=validation,
                validation_split=validation_split,
                validation_batch_size=validation_batch_size,
                callbacks=callbacks,
            )
        finally:
            self._fitting = False

    def evaluate(
        self, dataset: Any = None, y: Any = None, *, batch_size: int = 32, verbose: int = 0, x: Any = None
    ) -> EvaluationResult:
        """Mean loss and metrics over `dataset` (or Keras' `x=..., y=...`), in batches of `batch_size`."""
        trainer = self._compiled_trainer("evaluate")
        dataset = _alias("dataset", dataset, "x", x)
        return trainer.evaluate(
            _dataset_arg(dataset, y, "dataset"),
            batch_size=check_positive_int("batch_size", batch_size),
            verbose=verbose,
        )

    def predict(self, x: Any, batch_size: int = 1024) -> Any:
        """Class index per example (an int for one example) for classification losses; raw outputs otherwise. A
        model of several outputs returns a list: one such array per output, each by its own loss."""
        trainer = self._compiled_trainer("predict")
        outputs, single = trainer.predict_all_outputs(x, check_positive_int("batch_size", batch_size))
        results = []
        for output, own in zip(outputs, emit.output_losses(self.graph, trainer.compiled.loss), strict=True):
            assert own is not None  # compiled
            result = own.decide(output)
            results.append(result[0].item() if single and result.ndim == 1 else (result[0] if single else result))
        return results[0] if len(results) == 1 else results

    def predict_softly(self, x: Any, batch_size: int = 1024) -> Any:
        """Class probabilities per example (softmax for softmax cross-entropy, the sigmoid output for BCE). A model
        of several outputs returns a list, one array per output; each output's loss must be a classification's."""
        trainer = self._compiled_trainer("predict_softly")
        outputs, single = trainer.predict_all_outputs(x, check_positive_int("batch_size", batch_size))
        results = []
        for output, own in zip(outputs, emit.output_losses(self.graph, trainer.compiled.loss), strict=True):
            assert own is not None  # compiled
            probabilities = own.probabilities(output)
            results.append(probabilities[0] if single else probabilities)
        return results[0] if len(results) == 1 else results

    # --- saving -------------------------------------------------------------------------------------------
    def inference_model(self, opset: int | None = None, ir_version: int | None = None) -> Any:
        """The clean, portable inference ModelProto with the current weights (what `export` writes)."""
        self._check_open("inference_model")
        return model_files.exported_model(self, self._compiled, opset=opset, ir_version=ir_version)

    def save(
        self, directory: str | Path, writing_mode: Any = "fail_if_exists", save_optimizer_state: bool = False
    ) -> Path:
        """Write model.onnx, config.json and checkpoint into `directory` crash-safely (see `WritingMode`)."""
        self._check_open("save")
        return model_files.save_model(self, self._trainer, directory, writing_mode, save_optimizer_state)

    def export(
        self,
        path: str | Path,
        opset: int | None = None,
        writing_mode: Any = "fail_if_exists",
        ir_version: int | None = None,
        merge_adapters: bool = False,
    ) -> Path:
        """Write the inference model alone as one .onnx file.

        Args:
            merge_adapters: fold LoRA adapters (`onnxtrain.lora`) into their weights first
                (`onnxtrain.adapters.merge_adapters`): a plain model of the original's size.
        """
        self._check_open("export")
        transform = adapters.merge_adapters if check_bool("export", "merge_adapters", merge_adapters) else None
        return model_files.export_model(self, self._compiled, path, opset, ir_version, writing_mode, transform)

    def export_training_bundle(self, directory: str | Path, writing_mode: Any = "fail_if_exists") -> Path:
        """Write the folder onnxtrain-js trains from in a browser or Node.js (`onnxtrain.bundle`): the portable
        train step, eval and inference graphs, the weights and optimizer state, and their metadata."""
        from onnxtrain.bundle import write_training_bundle

        trainer = self._compiled_trainer("export_training_bundle")
        if len(self.graph.outputs) > 1:  # onnxtrain-js reads one loss and one output
            raise UnsupportedError(
                f"export_training_bundle writes models of one output; this one has {len(self.graph.outputs)} "
                f"({self.output_names}). Export the inference model with export() instead."
            )
        return write_training_bundle(self, trainer, directory, writing_mode)

    def get_config(self) -> dict[str, Any]:
        """Keras' Functional config (`Functional.get_config`) under the model's name and seed."""
        return {"class_name": "Functional", **self.graph.get_config(), "name": self.name, "seed": self.seed}

    # --- lifetime -----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Release ONNX Runtime sessions and temporary artifacts. Idempotent."""
        self._check_not_fitting("close")
        if self._trainer is not None:
            self.sync_weights()
            self._trainer.close()
            self._trainer = None
        self._closed = True

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, layers={[layer.name for layer in self.layers]})"


def _check_graph(graph: Functional) -> None:
    """Refuse at construction what the graphs cannot emit: see `Model`'s Raises."""
    if len(graph.outputs) > 1:
        names = [str(y.layer.name) for y in graph.outputs]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise InvalidArgumentError(
                f"A model of several outputs names each output after its layer, so each must come from its own "
                f"layer. Received: outputs {names}, {repeated} more than once. Add an Identity-like layer (e.g. "
                "Activation('linear')) to one of them."
            )
        clashing = sorted(set(names) & (emit.RESERVED_NAMES | set(emit.input_names(graph))))
        if clashing:
            raise InvalidArgumentError(
                f"A model of several outputs names its exported outputs after their layers, and {clashing} is the "
                "name of a graph input or of an output onnxtrain reserves. Name the layer otherwise."
            )
    if len(graph.inputs) > 1:
        reserved = sorted({str(x.name) for x in graph.inputs} & emit.RESERVED_NAMES)
        if reserved:
            raise InvalidArgumentError(
                f"A model of several inputs names its graph inputs after its Input layers, and {reserved} is a name "
                f"onnxtrain's graphs use already. Name the Input otherwise, e.g. Input(..., name='x_{reserved[0]}')."
            )
    calls = Counter(id(node.layer) for node in graph._nodes)
    shared = [layer.name for layer in graph.layers if isinstance(layer, BatchNormalization) and calls[id(layer)] > 1]
    if shared:
        raise UnsupportedError(
            f"BatchNormalization layer(s) {shared} are called more than once: a shared BatchNormalization would "
            "update its moving statistics twice in one training step, which onnxtrain does not support yet. Use "
            "one BatchNormalization per call."
        )


def _named_outputs(outputs: Mapping[str, SymbolicTensor]) -> list[SymbolicTensor]:
    """The tensors of Keras' dict of outputs, their layers named by the keys (the names outputs go by)."""
    for key, tensor in outputs.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgumentError(f"Model(outputs={{...}}) expects non-empty string keys. Received: {key!r}")
        layer = getattr(tensor, "layer", None)
        if layer is None:
            continue  # Functional names what is not a tensor
        if layer.name is None:
            layer.name = key
        elif layer.name != key:
            raise InvalidArgumentError(
                f"Model(outputs={{...}}) names each output's layer by its key, but output {key!r} comes from a layer "
                f"already named {layer.name!r}. Use the key {layer.name!r}, or leave the layer unnamed."
            )
    return list(outputs.values())


def _print(text: str, print_fn: Any) -> str | None:
    if print_fn is None:
        return text
    print_fn(text)
    return None


def _alias(name: str, value: Any, alias: str, aliased: Any) -> Any:
    """The argument given as `name` or as its Keras spelling `alias`, refusing both."""
    if aliased is None:
        return value
    if value is not None:
        raise InvalidArgumentError(f"Pass {name}=... or {alias}=..., not both (they are the same argument).")
    return aliased


def _dataset_arg(dataset: Any, y: Any, argument: str) -> Any:
    if dataset is None:
        raise InvalidArgumentError(f"{argument} is required: pass a Dataset, an (x, y) tuple, or x and y.")
    return (dataset, y) if y is not None else dataset
