"""A model's predictions: `predict` (what each output's loss decides: class indices, or raw values),
`predict_softly` (class probabilities), `predict_outputs` (every output of the inference model by name), before
compile through an `UncompiledPredictor` of the layers' weights; and `model(x)` on data following the logits rule
of the loss the model's graphs are emitted for (`call_on_data`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain import emit
from onnxtrain._batch_stream import check_steps
from onnxtrain._call_arguments import refuse_unknown
from onnxtrain._checks import check_positive_int
from onnxtrain._functional_outputs import returned
from onnxtrain._prediction import UncompiledPredictor
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import Layer, Shape
from onnxtrain.layers._eager import eager_arrays, run_eagerly
from onnxtrain.layers._layer_checks import check_same_shapes, describe
from onnxtrain.losses import Loss
from onnxtrain.progress import check_verbose

if TYPE_CHECKING:
    from onnxtrain.functional import Functional
    from onnxtrain.training import Trainer


class ModelPrediction:
    """The prediction half of a `Model` (see the module docstring)."""

    if TYPE_CHECKING:  # what the model holds (`ModelBase._setup`) and does (`Model`)
        graph: Functional
        trained_loss: Loss | None
        _trainer: Trainer | None

        def _check_open(self, action: str) -> None: ...

        def _build_for(self, action: str, x: Any) -> None: ...

        def _compiled_trainer(self, action: str) -> Trainer: ...

    def predict(
        self,
        x: Any = None,
        batch_size: int = 1024,
        verbose: int | str = "auto",
        steps: int | None = None,
        *,
        dataset: Any = None,
        **unknown: Any,
    ) -> Any:
        """Class index per example (an int for one example) for classification losses; raw outputs otherwise. A
        model of several outputs returns one such array per output, each by its own loss, as Keras 3's predict: in a
        list (a tuple for a model given a tuple of outputs), or for a dict of outputs in a dict sorted by output
        name.

        Before compile (Keras allows it) predict runs the inference model of the layers' current weights (what
        `export` writes) in an ONNX Runtime session on the CPU, kept until the weights change: a new model gives
        its outputs as they are, as Keras' predict does (a last Dense left at its default activation gives its ReLU,
        which only a loss on logits turns into logits); a model loaded from a save of a compiled model knows the loss
        it was trained with (`trained_loss`) and returns what predict returns once compiled with that loss (class
        indices for classification). A Sequential not built yet is built from the shape of `x` first.

        `verbose` is Keras' argument (0, 1, 2 or "auto"), checked and otherwise ignored: predict shows no
        progress bar. `x` may be a generator or a PyDataset of batches, as Keras takes them: x alone, (x,), (x, y)
        or (x, y, sample_weight), of which predict reads x; `steps` (Keras') predicts that many batches at most
        (of arrays, the first `steps` of `batch_size`). KotlinDL's `dataset=` is `x`'s other name, as fit's `x=` is
        `dataset`'s.

        Raises:
            InvalidArgumentError: both x and dataset given.
        """
        refuse_unknown("predict", unknown, ModelPrediction.predict)
        x = examples("predict", x, dataset)
        check_verbose(verbose)
        size = check_positive_int("batch_size", batch_size)
        steps = check_steps(steps, "predict(steps=...)")
        self._check_open("predict")
        self._build_for("predict", x)
        if self._trainer is None:
            outputs, single = self._uncompiled_predictor().predict(x, size, steps)
            loss = self.trained_loss
        else:
            outputs, single = self._trainer.predict_all_outputs(x, size, steps)
            loss = self._trainer.compiled.loss
        results = []
        for output, own in zip(outputs, emit.output_losses(self.graph, loss), strict=True):
            result = own.decide(output) if own is not None else output
            results.append(result[0].item() if single and result.ndim == 1 else (result[0] if single else result))
        return by_output(self.graph, results)

    def predict_softly(
        self, x: Any = None, batch_size: int = 1024, verbose: int | str = "auto", *, dataset: Any = None, **unknown: Any
    ) -> Any:
        """Class probabilities per example (softmax for softmax cross-entropy, the sigmoid output for BCE). A model
        of several outputs returns one array per output, structured as predict's: the probabilities of each output
        trained with a classification loss, and the raw values of any other (a regression head's, as predict gives
        them); a model of one output needs a classification loss. `verbose` as predict's: checked, no progress
        bar; `dataset=` (KotlinDL's) as predict's.

        Raises:
            InvalidArgumentError: a model of one output whose loss is not a classification's (use predict); both x
                and dataset given.
        """
        refuse_unknown("predict_softly", unknown, ModelPrediction.predict_softly)
        x = examples("predict_softly", x, dataset)
        check_verbose(verbose)
        self._build_for("predict_softly", x)
        trainer = self._compiled_trainer("predict_softly")
        outputs, single = trainer.predict_all_outputs(x, check_positive_int("batch_size", batch_size))
        several = len(outputs) > 1
        results = []
        for output, own in zip(outputs, emit.output_losses(self.graph, trainer.compiled.loss), strict=True):
            assert own is not None  # compiled
            soft = own.probabilities(output) if not several or classifies(own) else output
            results.append(soft[0] if single else soft)
        return by_output(self.graph, results)

    def predict_outputs(self, x: Any, batch_size: int = 1024) -> dict[str, np.ndarray]:
        """Every output of the inference model for `x`, raw, by output name in the graph's order, as
        `InferenceModel.predict_outputs` gives them from the exported file: `logits` (or `probabilities`, for a
        loss that reads them) and, under a loss on logits, `probabilities`; for a model of several outputs each
        output by its layer's name and, for one trained with softmax cross-entropy, `<name>_probabilities`. Arrays
        keep the batch axis, also for one example. Before compile, the outputs of the layers' current weights
        (`predict`'s session).

        Example:
            >>> model.predict_outputs(x)["probabilities"]  # doctest: +SKIP
        """
        size = check_positive_int("batch_size", batch_size)
        self._check_open("predict_outputs")
        self._build_for("predict", x)
        if self._trainer is None:
            named, _ = self._uncompiled_predictor().predict_named(x, size)
        else:
            self._trainer.check_layers_as_compiled("predict_outputs")
            named, _ = self._trainer.predict_named_outputs(x, size)
        return named

    def _uncompiled_predictor(self) -> UncompiledPredictor:
        """The predictor of a model not compiled (`predict` before compile), made again where the loss its export is
        emitted for changed (a loaded model's `trained_loss`)."""
        predictor = self.__dict__.get("_predictor")
        if predictor is None or predictor.loss is not self.trained_loss:
            predictor = UncompiledPredictor(self, self.trained_loss)  # type: ignore[arg-type]
            self._predictor = predictor
        return predictor

    def _drop_uncompiled_predictor(self) -> None:
        """Forget the uncompiled predictor's session (compile opens the engine's own; close ends the model)."""
        self.__dict__.pop("_predictor", None)


def examples(method: str, x: Any, dataset: Any) -> Any:
    """What `method` predicts for: `x`, or KotlinDL's `dataset=`; None where neither is given, which reading x
    refuses ("x expects a numpy array ... Received: NoneType").

    Raises:
        InvalidArgumentError: both given.
    """
    if x is not None and dataset is not None:
        raise InvalidArgumentError(
            f"{method}() expects the examples to predict for as x or as KotlinDL's dataset=..., one of them (the same "
            f"argument). Received: x={type(x).__name__}, dataset={type(dataset).__name__}"
        )
    return x if x is not None else dataset


def by_output(graph: Functional, results: Sequence[Any], sort: bool = True) -> Any:
    """What predict and `model(arrays)` return from each output's `results` (in the outputs' order), as Keras 3's
    (`_functional_outputs.returned`): for a dict of outputs a dict keyed by output name, sorted by key for predict
    (`sort`; `model(x)` keeps the dict's own order, `given_keys`), also for one key; else the one output's result
    (of a list or tuple of one too, which Keras unpacks), or the results in the list or tuple the model was given
    its outputs in."""
    return returned(graph.output_structure, graph.output_keys, results, None if sort else graph.given_keys)


def classifies(loss: Loss) -> bool:
    """Whether `loss` is a classification's: it turns outputs into class probabilities (`Loss.probabilities`)."""
    return type(loss).probabilities is not Loss.probabilities


def default_logits(graph: Functional, loss: Loss | None) -> tuple[Functional, dict[int, Layer]] | None:
    """`graph` as the graphs emit it for `loss` where a layer left at its default activation is emitted linear
    (`emit.default_activation_emits_logits`), as `emit.inference_graph` emits it: the graph to emit
    (`emit.logits_graph`, which computes anew the outputs whose values such a layer's are, moved or pooled:
    `Conv2D(10, 1)` then `GlobalAveragePooling2D()`) and, by output position, the layers that compute its outputs
    so (`emit.logits_substitutes`: an output's own last Dense or convolution, also the one a last TimeDistributed
    or nested model ends in). None where no output is so. An explicit softmax stays: `model(x)` gives its
    probabilities, as Keras' does."""
    emitted = emit.logits_graph(graph, loss)
    substitutes = emit.logits_substitutes(emitted, loss)
    owns = enumerate(zip(graph.outputs, emit.output_losses(graph, loss), strict=True))
    chosen = {
        i: substitutes[i]
        for i, (y, own) in owns
        if i in substitutes and emit.default_activation_emits_logits(y.layer, own)
    }
    if not chosen and emitted is graph:
        return None
    return emitted, chosen


def call_on_data(
    graph: Functional, loss: Loss | None, given: object, training: object
) -> np.ndarray | list[np.ndarray] | tuple[np.ndarray, ...] | dict[str, np.ndarray] | None:
    """`model(arrays)` of a model whose graphs are emitted for `loss` (compiled, or loaded from a save): as every
    graph of the model computes it (`emit.graph_layers`), so that an output's last Dense or convolution left at its
    default activation gives the logits the export's `logits` holds, not their ReLU, also where the last layers
    move or pool them (`emit.logits_chains`); None where no output is emitted otherwise than it is called (the
    graph's own eager call then runs, `layers/_eager.py`).

    Raises:
        InvalidTypeError: `training` is not a bool or None; another number of arrays than the model takes.
        ShapeError: arrays of other per-example shapes than the model's inputs.
    """
    logits = default_logits(graph, loss)
    if logits is None:
        return None
    if training is not None and not isinstance(training, bool | np.bool_):
        raise InvalidTypeError(f"{describe(graph)}: training expects True, False or None. Received: {training!r}")
    arrays: list[np.ndarray] = list(given) if isinstance(given, list | tuple) else [given]  # type: ignore[list-item]
    if (graph.multi_input and not isinstance(given, list | tuple)) or (not graph.multi_input and len(arrays) != 1):
        takes = "a list of arrays, one per input" if graph.multi_input else "one array"
        raise InvalidTypeError(f"{describe(graph)} takes {takes}. Received: {len(arrays)} arrays")
    arrays = eager_arrays(describe(graph), arrays, [graph.reads_integers] * len(arrays))
    check_same_shapes(graph, [tuple(array.shape[1:]) for array in arrays])
    graph._read_engine()  # the compiled engine holds the current weights
    outputs = run_eagerly(
        _EmittedGraph(graph, *logits),  # type: ignore[arg-type]
        arrays,
        training=bool(training),
        state_owner=graph,  # a training call moves BatchNormalization's statistics, as Keras' does
    )
    return by_output(graph, outputs, sort=False)


class _EmittedGraph:
    """`graph` as an eager call emits it: `emitted` (`graph` or its `emit.logits_graph` copy), with `substitutes`
    for some outputs' layers; it shares the graph's attributes (`__dict__`), so that its count of eager training
    calls, which random layers draw by, is the graph's own."""

    __slots__ = ("_emitted", "_graph", "_substitutes")

    def __init__(self, graph: Functional, emitted: Functional, substitutes: Mapping[int, Layer]):
        self._graph = graph
        self._emitted = emitted
        self._substitutes = substitutes

    @property
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
        return self._graph.__dict__

    def eager_outputs(self, builder: GraphBuilder, xs: list[str]) -> list[tuple[str, Shape]]:
        values = self._emitted.emit(builder, xs, self._substitutes)
        return list(zip(values, [y.shape for y in self._graph.outputs], strict=True))
