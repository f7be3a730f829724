"""The portable engine's split step on the CPU: each batch cut into row shares that copies of the gradient session
run at the same time, one per core, and their gradients combined into the whole batch's mean (`SplitStep`); and
when an engine splits (`share_count`).

Why: a convolution network's step is many mid-sized operators. ONNX Runtime spreads each over the cores, and the
ones it runs on one core (the strided Slices of a convolution's weight gradient, ...) then read what the other
core's cache holds. On the 2-core development machine the fashion-cnn's gradients took 29-35 ms a step in one
two-thread session, and 55-63 ms for minutes at a time, where two one-thread sessions on half batches took 27-28 ms
throughout (docs/measurements.md). The tutorial MLP's step is two large matrix products, which ONNX Runtime
already splits well: it runs unsplit.

The shares' gradients are means over their rows; weighted by rows and summed, they are the batch's mean gradient
(to float32 rounding), then clipped as the optimizer clips. That holds for a loss that is a mean of per-example
values, as onnxtrain's losses are; a loss of the whole batch (a class of one's own overriding `emit`, an RMSE say:
`_own_losses.WHOLE_BATCH_LOSS`) runs unsplit. Dropout draws each row's mask from the row's index in
the whole batch (the `first_row` input), so a split step drops the same units as an unsplit one.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import numpy as np
import onnx

from onnxtrain import emit
from onnxtrain._float_env import FlushToZero
from onnxtrain._own_losses import whole_batch_loss
from onnxtrain._runtime import Device, create_session, session_options
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.optimizers._base import clip_flat_gradients
from onnxtrain.portable._batch_binding import BatchBinding, ortvalue_views
from onnxtrain.portable._graphs import FIRST_ROW

SETTINGS = ("auto", "0", "1")  # ONNXTRAIN_SPLIT_STEP: as measured, never, wherever it can run
MAX_SHARES = 8  # beyond, each share's matrix products get too thin (not measured: the machine here has 2 cores)
_CONVOLUTIONS = frozenset({"Conv", "ConvTranspose"})


def share_count(model: onnx.ModelProto, device: Device, threads: int | None, eligible: bool) -> int:
    """Into how many shares the engine cuts each batch: 1 (it does not split) or one per core used.

    `eligible`: the engine's step can run split (the fused update on the CPU, in one process, with no layer state
    that each step updates). ONNXTRAIN_SPLIT_STEP=0 never splits, =1 splits wherever it can run, and the default
    ("auto") splits models with convolutions, where it measured faster. A model whose loss is not a mean of
    per-example values (`whole_batch_loss`) never splits: its shares' losses would not make the batch's.

    Raises:
        InvalidArgumentError: ONNXTRAIN_SPLIT_STEP is not one of "auto", "0" or "1".
    """
    setting = os.environ.get("ONNXTRAIN_SPLIT_STEP", "auto")
    if setting not in SETTINGS:
        raise InvalidArgumentError(f"ONNXTRAIN_SPLIT_STEP expects one of {list(SETTINGS)}. Received: {setting!r}")
    cores = threads if threads is not None else _cores()
    if setting == "0" or not eligible or device.kind != "cpu" or cores < 2 or whole_batch_loss(model):
        return 1
    if setting == "auto" and not any(node.op_type in _CONVOLUTIONS for node in model.graph.node):
        return 1
    return min(cores, MAX_SHARES)


def _cores() -> int:
    """The cores this process may run on: ONNX Runtime's default thread count (one per core) where it is not set."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class SplitStep:
    """`shares` copies of the gradient session, each on `threads // shares` threads (None: one thread per core, as
    ONNX Runtime's default), and what they read and write.

    Args:
        ort: the onnxruntime module.
        model: the gradient model (`gradient_model(..., shares=True)`), unclipped.
        inputs: the OrtValues every copy reads (weights, step, ...), by name; a copy binds those it takes.
        gradients: the shape of each `gradient.<name>` output, in the order of `combined`.
        combined: the flat buffer that `run` writes the batch's clipped mean gradient into.
        clip_value / clip_norm: the optimizer's clipping (None: none).
        output_shape / input_names: the shape of the model's outputs per example, and its input names.
    """

    def __init__(
        self,
        ort: Any,
        model: bytes,
        device: Device,
        shares: int,
        threads: int | None,
        inputs: Mapping[str, Any],
        gradients: Mapping[str, tuple[int, ...]],
        combined: np.ndarray,
        clip_value: float | None,
        clip_norm: float | None,
        output_shape: tuple[int, ...],
        input_names: Sequence[str],
    ):
        self._flush = FlushToZero()
        options = session_options(ort, max(1, (threads or _cores()) // shares))
        options.log_severity_level = 3
        with self._flush.creating():
            self._sessions = [create_session(ort, model, options, device) for _ in range(shares)]
        accepted = {i.name for i in self._sessions[0].get_inputs()}
        self._combined, self._clip = combined, (clip_value, clip_norm)
        self._grads = [np.zeros(combined.size, np.float32) for _ in range(shares)]
        self._losses = [np.zeros((), np.float32) for _ in range(shares)]
        self._first_rows = [np.zeros((), np.int64) for _ in range(shares)]
        self._bindings = []
        for k, session in enumerate(self._sessions):
            binding = session.io_binding()
            own = {FIRST_ROW: ort.OrtValue.ortvalue_from_numpy(self._first_rows[k])} if FIRST_ROW in accepted else {}
            for name, value in {**inputs, **own}.items():
                if name in accepted:
                    binding.bind_ortvalue_input(name, value)
            for name, value in ortvalue_views(ort, self._grads[k], gradients).items():
                binding.bind_ortvalue_output(name, value)
            binding.bind_output(emit.LOSS_NAME, "cpu", 0, np.float32, [], self._losses[k].ctypes.data)
            self._bindings.append(BatchBinding(binding, output_shape, device, input_names))
        self._pool = ThreadPoolExecutor(shares - 1, thread_name_prefix="onnxtrain-share")

    def run(self, xs: Sequence[np.ndarray], labels: np.ndarray) -> tuple[float, np.ndarray]:
        """Gradients of the batch `xs` (C-contiguous, one array per input) and `labels`, combined and clipped
        into `combined` when the loss is finite. Returns (the batch's mean loss, its outputs)."""
        n = len(labels)
        bounds = np.linspace(0, n, min(n, len(self._sessions)) + 1).round().astype(int)
        runs = []
        for k, (start, stop) in enumerate(itertools.pairwise(bounds)):
            self._first_rows[k][...] = start
            logits = self._bindings[k].bind_batch([x[start:stop] for x in xs], labels[start:stop])
            runs.append((k, stop - start, logits))
        futures: list[Future[None]] = [self._pool.submit(self._run, k) for k, _, _ in runs[1:]]
        try:
            self._run(0)
        finally:
            wait(futures)  # no copy may still write into the buffers, whatever happened here
        for future in futures:
            future.result()  # a copy's error, raised here
        loss = sum(float(self._losses[k]) * rows for k, rows, _ in runs) / n
        outputs = np.concatenate([logits for _, _, logits in runs]) if len(runs) > 1 else runs[0][2].copy()
        if math.isfinite(loss):
            np.multiply(self._grads[0], np.float32(runs[0][1] / n), out=self._combined)
            for k, rows, _ in runs[1:]:
                share = np.multiply(self._grads[k], np.float32(rows / n), out=self._grads[k])
                np.add(self._combined, share, out=self._combined)
            clip_flat_gradients(self._combined, *self._clip)
        return loss, outputs

    def _run(self, k: int) -> None:
        with self._flush.active():  # each thread runs ORT in ORT's float mode
            self._sessions[k].run_with_iobinding(self._bindings[k].binding)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
