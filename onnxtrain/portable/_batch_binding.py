"""Host memory bound to the portable engine's sessions: OrtValue views of flat buffers (`ortvalue_views`), a batch's
arrays as the sessions read them (`batch_arrays`), and the IOBinding of a session with its weights bound, with the
host arrays bound to its batch, labels and outputs (`BatchBinding`, made by `bind_session`): what a step rebinds,
and when it need not."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from onnxtrain import emit
from onnxtrain._runtime import Device, check_not_empty
from onnxtrain.engine import Batch


class BatchBinding:
    """An IOBinding whose weights are bound, and the host arrays bound to its batch, labels and logits.

    A CPU session reads and writes bound host arrays in place. So there a batch in the memory of the last one (the
    trainer gathers every shuffled batch into one reused buffer) needs no new binding, and one logits buffer serves
    every batch of a size (rebinding both was a measurable part of a step, docs/measurements.md). A CUDA session
    copies a host input to the GPU when it is bound, not when it runs (`IOBinding::BindInput`), so there every
    batch is bound anew. The bound arrays are held here, which keeps their memory alive while ORT may read it.
    """

    def __init__(
        self,
        binding: Any,
        output_shape: tuple[int, ...],
        device: Device,
        input_names: Sequence[str] = (emit.INPUT_NAME,),
    ):
        self.binding = binding
        self._input_names = tuple(input_names)
        self._output_shape = output_shape
        self._copied_when_bound = device.kind != "cpu"
        # name -> (the bound array, and its address, shape and dtype when bound: `.shape` can be assigned in place)
        self._inputs: dict[str, tuple[np.ndarray, int, tuple[int, ...], np.dtype]] = {}
        self._logits = np.empty((0, *output_shape), np.float32)

    def bind_batch(self, xs: Batch, labels: np.ndarray) -> np.ndarray:
        """Bind C-contiguous `xs` (one array per model input) and `labels`; returns the logits buffer the next run
        writes."""
        if isinstance(xs, np.ndarray):
            xs = [xs]
        for name, value in (*zip(self._input_names, xs, strict=True), (emit.LABELS_NAME, labels)):
            if self._copied_when_bound:  # the copy to the device happens now, whatever memory the batch is in
                self.binding.bind_cpu_input(name, value)
                continue
            bound = self._inputs.get(name)
            if bound is not None and value is bound[0] and value.shape == bound[2]:
                continue
            memory = (value.ctypes.data, value.shape, value.dtype)
            if bound is None or memory != bound[1:]:
                self.binding.bind_cpu_input(name, value)
            self._inputs[name] = (value, *memory)
        if len(self._logits) != len(xs[0]):
            self._logits = np.empty((len(xs[0]), *self._output_shape), np.float32)
            shape = list(self._logits.shape)
            self.binding.bind_output(emit.LOGITS_NAME, "cpu", 0, np.float32, shape, self._logits.ctypes.data)
        return self._logits


def batch_arrays(
    x: Batch,
    labels: np.ndarray,
    sample_weight: np.ndarray | None,
    input_dtypes: Sequence[DTypeLike],
    label_dtype: DTypeLike,
) -> tuple[list[np.ndarray], np.ndarray]:
    """The batch's arrays as the sessions read them: one per model input (as `input_dtypes`), then the sample
    weights where given (a weighted graph's last input), and the labels (as `label_dtype`)."""
    xs = [x] if isinstance(x, np.ndarray) else list(x)  # one array per model input
    check_not_empty(xs[0])
    xs = [np.ascontiguousarray(a, dtype=dtype) for a, dtype in zip(xs, input_dtypes, strict=True)]
    if sample_weight is not None:
        xs.append(np.ascontiguousarray(sample_weight, dtype=np.float32))
    return xs, np.ascontiguousarray(labels, dtype=label_dtype)


def bind_session(
    session: Any,
    inputs: Mapping[str, Any],
    accepted: Collection[str],
    outputs: Mapping[str, Any],
    loss: np.ndarray,
    output_shape: tuple[int, ...],
    device: Device,
    input_names: Sequence[str],
) -> BatchBinding:
    """An IOBinding of `session` that reads the `inputs` whose names it `accepted` and writes `outputs` and the
    loss (into the float32 scalar `loss`), for the batches of a BatchBinding of `input_names` (the model's inputs;
    a weighted graph's add `sample_weight`)."""
    binding = session.io_binding()
    for name, value in inputs.items():
        if name in accepted:
            binding.bind_ortvalue_input(name, value)
    for name, value in outputs.items():
        binding.bind_ortvalue_output(name, value)
    binding.bind_output(emit.LOSS_NAME, "cpu", 0, np.float32, [], loss.ctypes.data)
    return BatchBinding(binding, output_shape, device, input_names)


def ortvalue_views(ort: Any, buffer: np.ndarray, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """An OrtValue per name over consecutive slices of `buffer`, in the mapping's order, sharing its memory."""
    views, start = {}, 0
    for name, shape in shapes.items():
        stop = start + int(np.prod(shape, dtype=np.int64))
        views[name] = ort.OrtValue.ortvalue_from_numpy(buffer[start:stop].reshape(shape))
        start = stop
    return views
