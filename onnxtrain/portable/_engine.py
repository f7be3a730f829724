"""PortableEngine: runs the train-step graph with a stock ONNX Runtime, keeping weights and optimizer state on the
device between steps.

Parameters, optimizer state and the step counter live in OrtValues bound once. The graph's update is an `If` on a
finite loss, so a NaN or infinite loss leaves every value as it was. A value whose update the graph
provably writes only after every read of it (`_in_place.py`: all of them for most optimizers) is updated in its own
buffer. Every other value is double-buffered: step k reads set A and writes set B through one IOBinding, step k+1
reads B and writes A through a second one, because ONNX Runtime must not write an output into a buffer it is still
reading. Per step only the batch goes in and the loss and logits come out.

With a fused update (`_fused.py`: the CPU, numba installed, an optimizer with a kernel), ONNX Runtime runs the
step without its update (`gradient_model`) and writes the gradients into one flat buffer; the kernel then updates
the flat weight and state buffers that the session reads, in one pass, when the loss is finite. The values and
checkpoints are the same as the graph's, to float32 rounding.

In a data-parallel fit (a `communicator`, `_data_parallel.py`), the engine runs the gradient model, unclipped, and
all-reduces the gradients and the new layer state before the update, so every process holds the same weights and
layer state after each step.

A convolution network on two or more CPU cores trains with the split step (`_split_step.py`): each batch is cut
into one share of rows per core, one-thread copies of the gradient session run the shares at once, and the shares'
gradients are combined and clipped before the fused update.

A step or evaluation given sample weights (Keras' `sample_weight`, `class_weight`) runs the weighted graphs through
the same path, in sessions made at the first weighted batch (`_weighted_sessions.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from onnxtrain import emit
from onnxtrain._artifacts_folder import EVAL_GRAPH, TRAIN_STEP_GRAPH
from onnxtrain._float_env import FlushToZero
from onnxtrain._runtime import Device, create_session, session_options
from onnxtrain.distributed._communicator import Communicator
from onnxtrain.emit import ModelGraph
from onnxtrain.engine import Batch
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.functional import as_graph
from onnxtrain.graph import DEFAULT_IR_VERSION, DEFAULT_OPSET
from onnxtrain.losses import Loss
from onnxtrain.optimizers import Optimizer
from onnxtrain.portable import _fused
from onnxtrain.portable._batch_binding import BatchBinding, batch_arrays, bind_session
from onnxtrain.portable._checkpoint import Checkpoint, write_checkpoint
from onnxtrain.portable._data_parallel import DataParallel
from onnxtrain.portable._graphs import LEARNING_RATE, STEP, TrainStepGraph, eval_model, gradient, train_step_model
from onnxtrain.portable._onnxruntime_setup import check_provider, import_onnxruntime
from onnxtrain.portable._split_step import SplitStep, share_count
from onnxtrain.portable._starting_values import check_names_and_shapes, starting_values
from onnxtrain.portable._step_models import StepModels
from onnxtrain.portable._update_model import update_model
from onnxtrain.portable._value_sets import BindingValues, double_buffered, fused_buffers, reduced_graph_sets
from onnxtrain.portable._weighted_sessions import WeightedSessions, open_weighted_sessions

CPU = Device("cpu")


class PortableEngine:
    """Train and eval steps over the portable graphs; the same interface as `OrtTrainingEngine`.

    Args:
        layers: the model's graph (or a Sequential's built layers, Input first); their current parameters are
            the starting weights.
        loss / optimizer: as compiled.
        device: where the sessions run and the weights live.
        threads: intra-op threads (None: ONNX Runtime's default).
        resume: checkpoint bytes from `checkpoint_bytes` to continue from (weights, and state and step if
        saved).
        opset / ir_version: of the emitted graphs.
        update: "graph" runs the optimizer update inside the train-step graph; "fused" runs forward and backward
        in ONNX Runtime and the update as one compiled pass (`_fused.py`: CPU only, needs numba, and a kernel for
        the optimizer's class: the nine built-in ones have one); "auto" takes "fused" where it can run.
        communicator: the world of a data-parallel fit (None: this process trains alone); CPU only. The gradients
        and the new layer state are all-reduced between ONNX Runtime's run and the update: the fused kernel, or
        else an update session (`update_model`).
    """

    def __init__(
        self,
        layers: ModelGraph,
        loss: Loss,
        optimizer: Optimizer,
        device: Device = CPU,
        threads: int | None = None,
        resume: bytes | None = None,
        opset: int = DEFAULT_OPSET,
        ir_version: int = DEFAULT_IR_VERSION,
        update: str = "auto",
        communicator: Communicator | None = None,
    ):
        ort = import_onnxruntime()
        self.device = device
        self.optimizer = optimizer
        graph = as_graph(layers)  # once: a layer list would be turned into a new Functional by every graph below
        self.graph: TrainStepGraph = train_step_model(graph, loss, optimizer, opset, ir_version)
        self.fused = _fused.use_fused(update, optimizer, device, self.graph.layer_state, communicator is not None)
        self.eval_graph = eval_model(graph, loss, opset, ir_version)
        self._output_shape = emit.output_shape(graph)
        self._input_names = tuple(emit.input_names(graph))
        self._input_dtypes = tuple(x.dtype for x in graph.inputs)  # integer inputs run as integers
        self._label_dtype = loss.label_spec(self._output_shape)[0]
        self._ort = ort

        options = session_options(ort, threads)
        self._flush = FlushToZero()
        check_provider(ort, device)
        # A split or data-parallel step weighs each part's loss by its rows: not a masked mean over the batch.
        masked = emit.has_masked_loss(self.graph.model, distributed=communicator is not None)
        split = self.fused and communicator is None and not self.graph.layer_state and not masked
        self._shares = share_count(self.graph.model, device, threads, split)
        # The fused path's session computes gradients only; `graph` keeps the whole step, for save_graphs.
        # Distributed or split, the gradients are clipped once combined (GradientReduction, SplitStep).
        gradients_only, combined = self.fused or communicator is not None, communicator is not None or self._shares > 1
        self._models = StepModels.of(graph, loss, optimizer, opset, ir_version, gradients_only, combined)
        step_model = self._models.gradients() if gradients_only else self.graph.model
        self._step_inputs = {i.name for i in step_model.graph.input}
        step_bytes = step_model.SerializeToString()
        self._weighted: WeightedSessions | None = None  # made at the first weighted batch (`_weighted_sessions`)
        self._options = options
        # What each train binding reads and writes (by value set), and the split step's arguments: the weighted
        # sessions bind the same.
        self._train_binding_values: BindingValues = []
        self._split_step: Callable[[bytes, Sequence[str]], SplitStep] | None = None
        self._split: SplitStep | None = None
        with self._flush.creating():
            self._train_session = create_session(ort, step_bytes, options, device) if self._shares == 1 else None
            self._eval_session = create_session(ort, self.eval_graph.SerializeToString(), options, device)

        values = starting_values(self.graph, graph, optimizer, resume, communicator)
        self._communicator = communicator
        self._parallel: DataParallel | None = None
        self._learning_rate = float(optimizer.learning_rate)
        self._fixed = {name: self._ortvalue(values[name]) for name in self.graph.frozen}
        self._fixed[LEARNING_RATE] = self._ortvalue(np.array(self._learning_rate, np.float32))
        # On CUDA too: ONNX Runtime runs the nodes in the same order, on one stream (checked on an H100, see
        # tools/cuda_check.sh).
        self.in_place = self.graph.in_place
        self._current = 0  # index of the set holding the current values
        self._loss = np.zeros((), np.float32)  # loss output, written in place by every run
        if self.fused:
            self._set_up_fused(values, step_bytes if self._shares > 1 else None, threads)
        elif communicator is not None:
            self._set_up_reduced_graph(values, update_model(self.graph, graph, optimizer, opset, ir_version), options)
        else:  # the sets share the OrtValues of `in_place`
            self._sets, self._train_binding_values = double_buffered(
                self.graph.carried, self.in_place, values, self._fixed, self._ortvalue
            )
            self._train_bindings = self._bindings_of(self._train_session, self._step_inputs, self._input_names)
        eval_inputs = {i.name for i in self.eval_graph.graph.input}
        self._eval_bindings = self._eval_bindings_of(self._eval_session, eval_inputs, self._input_names)

    # --- set-up -------------------------------------------------------------------------------------------

    def _ortvalue(self, value: np.ndarray) -> Any:
        # A private copy: on CPU the OrtValue wraps this array's memory, which steps then overwrite.
        value = np.array(value, copy=True, order="C")
        return self._ort.OrtValue.ortvalue_from_numpy(value, self.device.kind, self.device.index)

    def _set_up_fused(self, values: dict[str, np.ndarray], split: bytes | None, threads: int | None) -> None:
        """The flat buffers of the fused update (`fused_buffers`), bound to the gradient session, and one set of
        values that every step updates. With `split` (the gradient model, serialized), copies of it on `threads`
        split each batch (`SplitStep`).

        Raises:
            InvalidArgumentError: the buffers do not fit in memory (`_fused.out_of_memory`).
        """
        parallel = self._data_parallel if self._communicator is not None else None  # made once state is copied
        buffers = fused_buffers(self._ort, self.graph, self.optimizer, values, parallel)
        self._flat_weights, self._flat_state, self._update = buffers.weights, buffers.state, buffers.update
        self._flat_grads, self._gradients = buffers.grads, buffers.gradients
        self._step_value = buffers.step  # read by `step`, advanced by train_step
        carried, shapes, step_inputs = buffers.carried, buffers.shapes, buffers.step_inputs
        self._sets = [carried, carried]

        inputs = {**carried, **self._fixed, **step_inputs}
        if split is not None:
            named = {gradient(name): shape for name, shape in zip(self.graph.trainable, shapes, strict=True)}
            clip_value, clip_norm = self.optimizer.clip_value, self.optimizer.clip_norm
            self._split_step = lambda model, names: SplitStep(
                self._ort, model, self.device, self._shares, threads, inputs, named, self._flat_grads, clip_value,
                clip_norm, self._output_shape, names
            )  # fmt: skip
            self._split = self._split_step(split, self._input_names)
            self._train_bindings = []
            return
        self._train_binding_values = [(inputs, self._gradients)]
        self._train_bindings = self._bindings_of(self._train_session, self._step_inputs, self._input_names) * 2

    def _set_up_reduced_graph(self, values: Mapping[str, np.ndarray], update: onnx.ModelProto, options: Any) -> None:
        """Data-parallel without the fused kernel: the gradient session writes into the reduction's buffer, and an
        update session (`update_model`) reads the reduced gradients and set k, and writes set 1 - k."""
        parallel = self._data_parallel(values)
        updates, self._sets, self._train_binding_values = reduced_graph_sets(
            self.graph, values, self._fixed, parallel, self._ortvalue
        )
        with self._flush.creating():
            self._update_session = create_session(self._ort, update.SerializeToString(), options, self.device)
        self._update_bindings = parallel.update_bindings(self._update_session, updates, self._fixed[LEARNING_RATE])
        self._train_bindings = self._bindings_of(self._train_session, self._step_inputs, self._input_names)

    def _data_parallel(self, values: Mapping[str, np.ndarray]) -> DataParallel:
        assert self._communicator is not None
        self._parallel = DataParallel(
            self._ort, self._communicator, self.optimizer, self.graph, values, self._step_inputs
        )
        return self._parallel

    def _bindings_of(
        self, session: Any, accepted: Collection[str], input_names: Sequence[str], values: BindingValues | None = None
    ) -> list[BatchBinding]:
        """Bindings of `session`, one per entry of `values` (by default `_train_binding_values`), reading the inputs
        it `accepted`; `input_names`: the model's inputs (a weighted graph's add `sample_weight`)."""
        return [
            bind_session(session, inputs, accepted, outputs, self._loss, self._output_shape, self.device, input_names)
            for inputs, outputs in (self._train_binding_values if values is None else values)
        ]

    def _eval_bindings_of(
        self, session: Any, accepted: Collection[str], input_names: Sequence[str]
    ) -> list[BatchBinding]:
        """An eval session's bindings, one per value set."""
        values: BindingValues = [({**current, **self._fixed}, {}) for current in self._sets]
        return self._bindings_of(session, accepted, input_names, values)

    def _weighted_sessions(self) -> WeightedSessions:
        """The sessions of the weighted graphs (`open_weighted_sessions`), made at the first weighted batch."""
        if self._weighted is None:
            self._weighted = open_weighted_sessions(
                self._models,
                self.in_place,
                self._input_names,
                lambda model: create_session(self._ort, model, self._options, self.device),
                self._flush,
                self._split_step,
                self._bindings_of,
                self._eval_bindings_of,
            )
        return self._weighted

    # --- steps --------------------------------------------------------------------------------------------
    def _batch(
        self, x: Batch, labels: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[list[np.ndarray], np.ndarray]:
        return batch_arrays(x, labels, sample_weight, self._input_dtypes, self._label_dtype)

    def _run(
        self,
        session: Any,
        binding: BatchBinding,
        x: Batch,
        labels: np.ndarray,
        sample_weight: np.ndarray | None = None,
    ) -> tuple[float, np.ndarray]:
        xs, labels = self._batch(x, labels, sample_weight)
        logits = binding.bind_batch(xs, labels)
        with self._flush.active():
            session.run_with_iobinding(binding.binding)
        return float(self._loss), logits.copy()

    takes_sample_weights = True  # train_step and eval_step take `sample_weight` (`_sample_weights.py`)

    def train_step(
        self, x: Batch, labels: np.ndarray, first_row: int = 0, sample_weight: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """Forward, backward and, when the loss is finite, one optimizer update.

        Returns (loss, outputs) of the batch before the update. A non-finite loss drops the update (the graph
        passes every value through), so the weights stay those of the last good step. `first_row`: where `x`
        starts in the global batch of a data-parallel step (`Engine.train_step`). `sample_weight`: each example's
        weight (float32 [batch], or [batch, outputs]); the loss is then sum(w_i l_i) / batch, as Keras'.
        """
        session, bindings, split = self._train_session, self._train_bindings, self._split
        if sample_weight is not None:
            weighted = self._weighted_sessions()
            session, bindings, split = weighted.train, weighted.train_bindings, weighted.split
        if self._parallel is not None:
            run = lambda: self._run(session, bindings[self._current], x, labels, sample_weight)  # noqa: E731
            return self._reduced_train_step(x, run, self._parallel, first_row)
        if split is not None:
            loss, logits = split.run(*self._batch(x, labels, sample_weight))
            if math.isfinite(loss):
                self._run_kernel()
            return loss, logits
        loss, logits = self._run(session, bindings[self._current], x, labels, sample_weight)
        if not self.fused:
            self._current = 1 - self._current
        elif math.isfinite(loss):  # the graph's condition: loss - loss == 0
            self._run_kernel()
        return loss, logits

    def _run_kernel(self) -> None:
        t = int(self._step_value) + 1
        with self._flush.active():  # the float mode ORT ran in, whoever calls (fit already holds it)
            self._update(self._flat_weights, self._flat_grads, self._flat_state, t, self._learning_rate)
        self._step_value[...] = t

    def _reduced_train_step(
        self, x: Batch, run: Callable[[], tuple[float, np.ndarray]], parallel: DataParallel, first_row: int
    ) -> tuple[float, np.ndarray]:
        """A data-parallel step: this process's gradients (`run`), the all-reduce, then the update when the mean
        loss of all processes is finite. Returns that mean loss and this process's outputs."""
        examples = len(x if isinstance(x, np.ndarray) else x[0])
        loss, logits = parallel.train_step(run, examples, first_row, self._output_shape)
        if math.isfinite(loss) and not self.fused:  # the update session writes the other set
            with self._flush.active():
                self._update_session.run_with_iobinding(self._update_bindings[self._current])
            self._current = 1 - self._current
        elif math.isfinite(loss):
            self._run_kernel()
        return loss, logits

    def eval_step(
        self, x: Batch, labels: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        if sample_weight is None:
            return self._run(self._eval_session, self._eval_bindings[self._current], x, labels)
        weighted = self._weighted_sessions()
        return self._run(weighted.eval, weighted.eval_bindings[self._current], x, labels, sample_weight)

    def reset_gradients(self) -> None:
        """Nothing to do: gradients never outlive the run that computes them."""

    # --- state --------------------------------------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float | np.floating)
            or not math.isfinite(value)
            or value < 0
        ):
            raise InvalidArgumentError(f"learning_rate expects a finite number >= 0. Received: {value!r}")
        self._fixed[LEARNING_RATE].update_inplace(np.array(value, np.float32))
        self._learning_rate = float(value)

    @property
    def step(self) -> int:
        """Updates made so far."""
        return int(self._sets[self._current][STEP].numpy())

    def _values(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        current = {**self._sets[self._current], **self._fixed}
        return {name: np.array(current[name].numpy(), copy=True) for name in names}

    def get_weights(self) -> dict[str, np.ndarray]:
        return self._values(self.graph.parameters)

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        weights = {name: np.asarray(v, np.float32) for name, v in weights.items()}
        check_names_and_shapes("set_weights", weights, self.get_weights(), require_all=False)
        current = {**self._sets[self._current], **self._fixed}
        for name, value in weights.items():
            current[name].update_inplace(np.asarray(value, order="C"))

    def optimizer_state(self) -> dict[str, np.ndarray]:
        """The optimizer's state tensors by graph input name (`optimizer.m.dense_1.kernel`), unscaled: the values
        KotlinDL's and TensorFlow's formulas define (the graph may carry them rescaled, see `Slot`).
        """
        carried = self.carried_state()
        return {t.name: carried[t.name] / np.float32(t.scale) for t in self.graph.state}

    def carried_state(self) -> dict[str, np.ndarray]:
        """The optimizer state as the train-step graph carries it (times each slot's `scale`): what a saved
        `train_step.onnx` is fed, and what checkpoints store so that a resumed run continues exactly.
        """
        return self._values([t.name for t in self.graph.state])

    def checkpoint_bytes(self, include_optimizer_state: bool = False) -> bytes:
        checkpoint = Checkpoint(weights=self.get_weights())
        if include_optimizer_state:
            checkpoint.state, checkpoint.step = self.carried_state(), self.step
            checkpoint.optimizer = self.optimizer.name
        return write_checkpoint(checkpoint)

    def save_graphs(self, directory: str | Path) -> tuple[Path, Path]:
        """Write train_step.onnx and eval.onnx (weights not included: they are inputs) for inspection or reuse
        from another ONNX Runtime language binding.

        `directory` and its missing parents are created; a failure removes those again while they are empty.
        """
        from onnxtrain.saving import created_directories

        directory = Path(directory)
        paths = directory / TRAIN_STEP_GRAPH, directory / EVAL_GRAPH
        with created_directories(directory):
            onnx.save(self.graph.model, paths[0])
            onnx.save(self.eval_graph, paths[1])
        return paths

    def close(self) -> None:
        # Dropping the references releases the sessions and the device buffers.
        self._train_bindings = self._eval_bindings = []
        self._sets, self._fixed = [], {}
        if self.fused:
            self._flat_weights = self._flat_grads = np.empty(0, np.float32)
            self._flat_state, self._gradients = (), {}
        if self._split is not None:
            self._split.close()
        if self._weighted is not None and self._weighted.split is not None:
            self._weighted.split.close()
        self._train_session = self._eval_session = self._split = self._weighted = None
        self._update_bindings, self._update_session, self._parallel = [], None, None
