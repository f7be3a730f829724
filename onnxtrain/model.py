"""Model: Keras' functional model, a `Functional` graph of layer calls that compiles for a training engine, fits,
evaluates, predicts, saves and exports (`onnxtrain.sequential.Sequential` is the Model of a layer list).

Here: compile and the model's lifetime. Its other parts, as Keras splits its Model into Layer and Trainer parts:
what needs no compile (`_model_base`, its weights `_model_weights`), fit and evaluate (`_model_fit`), predictions
(`_model_prediction`), Keras' attributes of a compiled model (`_compiled_attributes`: optimizer, loss,
metrics_names, learning_rate) and the one-batch methods (`_batch_steps`).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from onnxtrain._batch_steps import BatchSteps
from onnxtrain._call_arguments import refuse_unknown
from onnxtrain._compile_settings import compile_settings
from onnxtrain._compiled_attributes import CompiledAttributes, CompiledOptimizer
from onnxtrain._deferred_build import check_compile_options
from onnxtrain._kotlindl_attributes import HintingClassAttributes
from onnxtrain._layer_claims import check_sole_trainer, release_layers
from onnxtrain._model_base import ModelBase
from onnxtrain._model_checks import check_model_arguments, check_probability_outputs, named_outputs
from onnxtrain._model_fit import ModelFit
from onnxtrain._model_names import AUTO_NAMED, auto_model_name
from onnxtrain._model_prediction import ModelPrediction
from onnxtrain.errors import InvalidArgumentError, ModelStateError, UnsupportedError
from onnxtrain.functional import Functional
from onnxtrain.layers import Input
from onnxtrain.layers._layer import SymbolicTensor
from onnxtrain.losses import Loss, Losses
from onnxtrain.metrics import Metric, Metrics
from onnxtrain.optimizers import Optimizer
from onnxtrain.training import Trainer


class Model(ModelBase, ModelFit, ModelPrediction, CompiledAttributes, BatchSteps, metaclass=HintingClassAttributes):
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
            its parameters' names). Without one, Keras' default: "functional", then "functional_1", ..., numbered
            per process; nested in another model, such a model takes that model's numbering instead ("functional",
            "functional_1", ... in it), so that its weights' names there are the same each time it is built.
        seed: seeds weight initialization and the default per-epoch shuffling.

    Raises:
        UnsupportedError: a BatchNormalization called more than once (shared).
        InvalidArgumentError: what `Functional` refuses; an Input named like a graph input or output onnxtrain
            reserves (`labels`, `logits`, ...) in a model of several inputs; outputs that would share a name (one
            tensor twice, several outputs of one layer or of one nested model: `_model_checks.check_model_base`).
    """

    _pending_compile: dict[str, Any] | None  # compile's options, on a Sequential not built yet (see Sequential)

    def __init__(
        self,
        inputs: Input | Sequence[Input] | None = None,
        outputs: SymbolicTensor | Sequence[SymbolicTensor] | Mapping[str, SymbolicTensor] | None = None,
        name: str | None = None,
        seed: int | None = None,
    ):
        check_model_arguments(type(self), inputs, outputs)  # Keras' model subclassing; Model() with nothing
        assert inputs is not None and outputs is not None
        if isinstance(outputs, Mapping):
            outputs = named_outputs(outputs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
            raise InvalidArgumentError(f"Model(seed=...) expects a non-negative int or None. Received: {seed!r}")
        if name is None:  # Keras' default: "functional", "functional_1", ... (`_model_names.py`)
            name = auto_model_name("functional")
            self.__dict__[AUTO_NAMED] = "functional"
        graph = Functional(inputs, outputs, name=name, seed=seed)
        self._setup(graph, name, graph.seed)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Model:
        """The model `get_config()` describes, with weights drawn again from its seed.

        Raises:
            InvalidArgumentError: `config` is a Sequential's (layers without "inbound_nodes": use
                `Sequential.from_config`), or not a model's config.
        """
        layers = config.get("layers") if isinstance(config, dict) else None
        if isinstance(layers, list) and layers and "input_layers" not in config:
            if all(isinstance(entry, dict) and "inbound_nodes" not in entry for entry in layers):
                raise InvalidArgumentError(
                    f"{cls.__name__}.from_config expects a Functional model's config (layers with "
                    "'inbound_nodes', 'input_layers', 'output_layers'). Received: a Sequential's config (its "
                    "layers in order): rebuild it with Sequential.from_config(config)."
                )
        graph = Functional.from_layer_config(config)
        name = config.get("name")
        return cls(graph.inputs, graph.given_outputs, name=None if name is None else str(name), seed=graph.seed)

    def _setup(self, graph: Functional, name: str, seed: int) -> None:
        super()._setup(graph, name, seed)
        self.stop_training = False  # callbacks set it to end fit early
        self._fitting = False  # compile and close wait for fit to return (a callback may call them)
        graph._own_model = weakref.ref(self)  # a model nested in another is found again by `get_layer`

    def _nested_model(self, graph: Functional) -> Any:
        """The Model that `graph`, a model nested in this one, is the graph of (`layers`, `get_layer`): the one it
        was made as while that is open, else one made around its layers (a loaded model's, or a closed one's),
        kept with this model so that `model.layers[i] is model.layers[i]`, sharing the layers and their weights."""
        if graph is self.graph:
            return graph
        reference = graph.__dict__.get("_own_model")
        nested = reference() if reference is not None else None
        if nested is None or nested._closed:
            made: dict[int, Model] = self.__dict__.setdefault("_nested_models", {})
            nested = made.get(id(graph))
            if nested is None or nested._closed or nested.graph is not graph:
                nested = Model.__new__(Model)
                nested._setup(graph, graph.name or "functional", graph.seed)
                made[id(graph)] = nested
        return nested

    # --- compile ------------------------------------------------------------------------------------------
    def compile(
        self,
        optimizer: str | Optimizer | CompiledOptimizer | dict[str, Any] = "adam",
        loss: str | Losses | Loss | dict[str, Any] = Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS,
        metric: str | Metrics | Metric | None = None,
        metrics: Iterable[str | Metrics | Metric] | None = None,
        device: str = "cpu",
        engine: str = "auto",
        artifacts_dir: str | Path | None = None,
        threads: int | None = None,
        opset: int | None = None,
        ir_version: int | None = None,
        loss_weights: Sequence[float] | Mapping[str, float] | None = None,
        weighted_metrics: Iterable[str | Metrics | Metric] | None = None,
        **unknown: Any,
    ) -> None:
        """Choose optimizer, loss and metrics, generate the training artifacts and open the training session.

        Args:
            optimizer: an Optimizer instance (`Adam()`, `RMSProp(...)`, ...), a name ("adam", "sgd", "rmsprop",
                "adagrad_da", ...) or a config dict: any of the nine in `onnxtrain.optimizers`. The ort-training
                engine runs only Adam and SGD.
            loss: a `Losses` member, a name ("mse") or a Loss instance. A model of several outputs takes one for
                every output, a list (one per output) or a dict keyed by output name (`output_names`); it trains
                their weighted sum.
            metric / metrics: one metric or several (`Metrics.ACCURACY`, "accuracy", "mae", "mse", "precision",
                "auc", or objects of `onnxtrain.metrics`: `Precision(top_k=2)`, `AUC(curve="PR", name="pr_auc")`).
                Logged under the name given (an object's `name`). Several outputs: these for every output, or a list
                (one list per output) or a dict keyed by output name; History and evaluate name them
                "<output>_<metric>", next to "loss" and each "<output>_loss".
            device: "cpu", "cuda", "cuda:N" or "auto" (CUDA when the installed build has it).
            engine: "portable" (the whole train step as one standard ONNX graph, differentiated op by op by
                `onnxtrain.autodiff`: runs on any ONNX Runtime, including plain onnxruntime/onnxruntime-gpu, with
                every optimizer), "ort-training" (ONNX Runtime's training build: onnxblock gradients, its Adam/SGD
                kernels) or "auto" (the default): portable.
            artifacts_dir: keep the generated training artifacts there (e.g. "artifacts"): ort-training's four files
                (by default they go to a temporary folder that `close()` removes), or the portable engine's
                `train_step.onnx` and `eval.onnx` (by default not written). The folder may be new, empty, or hold
                nothing but artifacts onnxtrain wrote, which are replaced; anything else there (a saved model) is
                refused before anything is written.
            threads: ONNX Runtime intra-op threads (None: one per physical core).
            opset / ir_version: of the training artifacts (default opset 17, or an imported graph's newer one; IR
                the oldest that holds the opset, at least 8; ORT 1.19 loads IR <= 10).
            loss_weights: several outputs only: each output's loss weight, a list or a dict keyed by output name
                (default 1 each).
            weighted_metrics: metrics, given as `metrics`, that weigh each example by its sample weight (fit's
                `sample_weight` or `class_weight`, evaluate's `sample_weight`), as Keras'; logged by name, or as
                "weighted_<name>" where `metrics` logs that name.

        Raises:
            UnknownIdentifierError, UnsupportedError, RuntimeSetupError: see the messages.
            ModelExistsError: `artifacts_dir` holds other files than training artifacts.
            InvalidTypeError: a keyword compile does not take (KotlinDL 0.3's `callback` is fit's `callbacks`).
        """
        refuse_unknown("compile", unknown, Model.compile)
        self._compile(
            optimizer=optimizer,
            loss=loss,
            metric=metric,
            metrics=metrics,
            device=device,
            engine=engine,
            artifacts_dir=artifacts_dir,
            threads=threads,
            opset=opset,
            ir_version=ir_version,
            loss_weights=loss_weights,
            weighted_metrics=weighted_metrics,
        )

    def _compile(self, resume: bytes | None = None, **options: Any) -> None:
        """`compile` with its `options` by name, continuing from `resume` when given: checkpoint bytes of the
        engine's own format, with the weights, optimizer state and step (what `load_model` passes for a save with
        the optimizer state)."""
        self._check_open("compile")
        self._check_not_fitting("compile")
        if "graph" not in self.__dict__:  # a Sequential given no input shape yet: compiled once it is built
            check_compile_options(options)
            self._pending_compile = options
            return
        check_sole_trainer(self, "compile")
        compiled = compile_settings(self.graph, **options)
        check_probability_outputs(self.graph, compiled.loss)
        artifacts_dir, threads = options["artifacts_dir"], options["threads"]
        self.sync_weights()
        # The new trainer first: a compile that fails (an optimizer the engine lacks, no CUDA, ...) leaves the
        # model compiled as it was, optimizer state included.
        previous = self._trainer
        trainer = Trainer.create(self, compiled, artifacts_dir=artifacts_dir, threads=threads, resume=resume)
        if previous is not None:
            trainer.epochs_trained = previous.epochs_trained
            previous.close()
        self._trainer = trainer
        self._drop_uncompiled_predictor()

    @property
    def is_compiled(self) -> bool:
        """Whether compile() was called (on a Sequential not built yet: its engine opens once it is built)."""
        return self._trainer is not None or self.__dict__.get("_pending_compile") is not None

    def _compiled_trainer(self, action: str) -> Trainer:
        self._check_open(action)
        if self._trainer is None and self.__dict__.get("_pending_compile") is not None:
            self._check_built(action)
        if self._trainer is None:
            raise ModelStateError(
                f"{action}() needs a compiled model: call model.compile(optimizer=..., loss=...) first."
            )
        return self._trainer

    def _check_not_fitting(self, action: str) -> None:
        if self._fitting:
            raise ModelStateError(
                f"{action}() was called while fit() is running (from a callback); it would pull the training "
                f"session from under fit. Set model.stop_training = True to end fit, and call {action}() after."
            )

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

    # --- lifetime -----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Release ONNX Runtime sessions and temporary artifacts, and the model's claim on its layers: they keep
        the trained weights, and a new model may be made of them (a pretrained base, a nested model, under a new
        head). Idempotent."""
        self._check_not_fitting("close")
        if self._trainer is not None:
            self.sync_weights()
            self._trainer.close()
            self._trainer = None
        self._drop_uncompiled_predictor()
        self._closed = True
        if "graph" in self.__dict__:  # (a Sequential not built yet has none)
            release_layers(self)

    def _build_for(self, action: str, x: Any) -> None:
        """Before `action` on inputs `x`: a Sequential given no input shape is built from theirs here
        (`Sequential._build_for`); a Model is built already."""

    def __enter__(self) -> Model:
        """`with model:` closes the model when the block ends (`close`).

        Raises:
            ModelStateError: the model is closed already: every call in the block would fail.
        """
        if self.__dict__.get("_closed", False):
            raise ModelStateError(
                f"`with` on {type(self).__name__} {self.name!r}, which was closed when its `with` block ended (or by "
                "close()); create or load it again (its layers keep the trained weights: a new model may be made "
                "of them)."
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, layers={[layer.name for layer in self.layers]})"
