"""InferenceModel: run an exported or saved model with plain ONNX Runtime, no training build needed.

Works with any onnxruntime flavour (`pip install onnxtrain[infer]` or `[infer-gpu]`): this module imports
onnxruntime's inference API only, never `onnxruntime.training`.

Example:
    >>> model = InferenceModel.load("fashion_model/")  # doctest: +SKIP
    >>> model.predict(test.x[0]), model.class_names[model.predict(test.x[0])]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain._batches import batch_arrays
from onnxtrain._checks import check_positive_int, check_threads
from onnxtrain._inference_metadata import (
    LOGITS,
    PROBABILITIES,
    float_metadata,
    metadata_class_names,
    metadata_loss,
    output_losses,
    predicted_outputs,
)
from onnxtrain._inference_source import read_model
from onnxtrain._keyword_arguments import refuse_unknown
from onnxtrain._kotlindl_attributes import missing_attribute
from onnxtrain._onnx_file import parse_onnx_model
from onnxtrain._runtime import create_session, default_opset, resolve_device, runtime_refusal, runtime_tail
from onnxtrain._spelling import LOADED_MODEL_SETTINGS
from onnxtrain._token_ids import exported_token_ids
from onnxtrain.arrays import InputArrays, InputSpec, prepare_inputs
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelFileError,
    ModelStateError,
    RuntimeSetupError,
    ShapeError,
)
from onnxtrain.layers import Shape
from onnxtrain.model_files import META_INPUT_SCALE
from onnxtrain.progress import check_verbose

_INPUT_TYPES = {
    f"tensor({name})": np.dtype(dtype) for name, dtype in (("float", "float32"), ("int64",) * 2, ("int32",) * 2)
}
"""The input types an export has (ONNX Runtime's names): an Input's dtypes (`layers.INPUT_DTYPES`)."""


class InferenceModel:
    """A model loaded for prediction only: `predict` (class indices), `predict_softly` (probabilities).

    A model of several outputs (onnxtrain's export of `Model(x, [kind, size])`) gives a list from both, one result
    per output as `Model.predict` does; `predict_outputs` gives every graph output raw, by name. A model of several
    inputs takes a list of arrays in its inputs' order, or a dict {input name: array}, as `Model.predict` does.

    Input checks and conversions are `Model.predict`'s: the per-example shape and type come from the graph's
    inputs. For a float input, integer arrays (e.g. uint8 pixels) are scaled by the `input_scale` in the model's
    metadata: divided by n when it is 1/n for a whole number n (255 for 1/255), multiplied by it otherwise. An
    int64 or int32 input (token ids) takes integers, or floats holding whole numbers, cast to its type and never
    scaled. An input that an exported Embedding reads (a Gather of a table) takes whole token ids in
    [0, input_dim) only, never scaled.

    Args:
        model: the bytes of an ONNX model (what `load` reads from a file or a saved directory).
        device: "cpu", "cuda", "cuda:N" or "auto".
        threads: ONNX Runtime intra-op threads (None: ORT's default).
        source: where the bytes came from, for messages.
    """

    def __init__(self, model: bytes, device: str = "cpu", threads: int | None = None, source: str = "<bytes>"):
        import onnxruntime

        if not isinstance(model, bytes | bytearray | memoryview):
            raise InvalidTypeError(
                "InferenceModel expects the model's bytes; use InferenceModel.load(path) for a file or "
                f"directory. "
                f"Received: {type(model).__name__}"
            )
        resolved = resolve_device(device)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: an imported graph's unused initializers are not the user's
        if threads is not None:
            options.intra_op_num_threads = check_threads(threads)
        data = bytes(model)
        # The gate before ORT: what ORT calls "INVALID_PROTOBUF" said in words; bytes given in memory may not
        # refer to external files; every tensor's data matches its dtype x shape.
        proto = parse_onnx_model(data, source, None, "ONNX Runtime cannot load it: export or save the model again.")
        try:
            self._session = create_session(onnxruntime, data, options, resolved)
        except RuntimeSetupError:
            raise
        except Exception as e:  # ORT raises Fail, InvalidGraph, ... from its C++ layer
            refusal = runtime_refusal(default_opset(proto), proto.ir_version)
            if refusal:
                raise ModelFileError(
                    f"{source} has opset {default_opset(proto)} and IR version {proto.ir_version}, which the installed "
                    f"ONNX Runtime cannot load ({refusal}). Export it again with an older opset / ir_version (the "
                    "defaults, 17 and 8, load everywhere), or install a newer onnxruntime."
                ) from e
            raise ModelFileError(
                f"{source} could not be loaded by ONNX Runtime {onnxruntime.__version__} "
                f"({type(e).__name__}: {runtime_tail(str(e))})."
            ) from e
        self.source = source
        self.device = str(resolved)
        try:
            self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        except UnicodeDecodeError as e:
            raise ModelFileError(f"{source} has metadata that is not valid UTF-8 ({e}).") from e
        # Each input's name, shape and dtype, and the ids it takes where it feeds an exported Embedding (checked as
        # the trained model checks them).
        self.inputs: tuple[InputSpec, ...] = tuple(
            InputSpec(name, shape, dtype, exported_token_ids(proto.graph, name))
            for name, shape, dtype in self._check_inputs(source)
        )
        self.input_names: tuple[str, ...] = tuple(spec.name for spec in self.inputs)
        # The first (for a model of one input, the) input's; `input_shape` lists every input's shape for several,
        # as Model.input_shape does.
        self.input_name, self.input_dtype = self.inputs[0].name, self.inputs[0].dtype
        shapes = [spec.shape for spec in self.inputs]
        self.input_shape: Shape = shapes[0] if len(shapes) == 1 else shapes  # type: ignore[assignment]
        batch = self._session.get_inputs()[0].shape[0]
        # A foreign model may fix its batch size; ORT refuses any other with an opaque INVALID_ARGUMENT.
        self._fixed_batch: int | None = batch if isinstance(batch, int) and batch > 0 else None
        self.output_names: tuple[str, ...] = tuple(o.name for o in self._session.get_outputs())
        if not self.output_names:
            raise ModelFileError(f"{source} has no outputs.")
        # The model's output: `logits`, or the first (a sigmoid classifier's `probabilities`, a foreign model's)
        self._logits = LOGITS if LOGITS in self.output_names else self.output_names[0]
        self.input_scale = float_metadata(self.metadata, META_INPUT_SCALE, source)
        self.class_names = metadata_class_names(self.metadata, source)
        self.loss = metadata_loss(self.metadata)
        # The model's own outputs: the graph's, less the probabilities that follow a classifier's output
        # (`probabilities` after `logits`, `<name>_probabilities` after each output of a model of several).
        self.predicted_outputs: tuple[str, ...] = predicted_outputs(self.output_names)
        self._output_losses = output_losses(self.metadata)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], device: str = "cpu", threads: int | None = None, **unknown: Any
    ) -> InferenceModel:
        """Load a directory written by `Sequential.save`, the output folder of `onnxtrain train` (runs/x, whose
        model/ holds the saved model, as `onnxtrain predict` takes it) or a file written by `Sequential.export`.

        Raises:
            InvalidTypeError: `path` is no path, or a keyword load does not take (KotlinDL's camelCase named in
                Python's spelling; a setting such as input_scale, which the model holds, named where it is set).
            ModelFileError: nothing there, no model.onnx in the directory, or not a loadable ONNX model.
        """
        refuse_unknown("InferenceModel.load", unknown, InferenceModel.load, settings=LOADED_MODEL_SETTINGS)
        data, source = read_model(path)
        return cls(data, device=device, threads=threads, source=str(source))

    if not TYPE_CHECKING:  # mypy would take an inference model to have every attribute

        def __getattr__(self, attribute: str) -> Any:
            # Only reached for an attribute neither set nor defined: KotlinDL's camelCase name of one
            # (`predictSoftly`) is refused naming Python's.
            raise AttributeError(missing_attribute(self, attribute, {}, "inference_model"), name=attribute, obj=self)

    # --- prediction ---------------------------------------------------------------------------------------
    def predict(self, x: Any, batch_size: int = 1024, verbose: int | str = "auto") -> Any:
        """Class index per example (an int for one example) for classifiers; raw outputs otherwise. A model of
        several outputs gives a list, one such result per output (decided by that output's loss, as
        `Model.predict`). `verbose` is Keras' argument (0, 1, 2 or "auto"), checked and otherwise ignored: predict
        shows no progress bar."""
        check_verbose(verbose)
        if len(self.predicted_outputs) > 1:
            return self._predict_each(x, batch_size, soft=False)
        outputs, single = self._run(x, self._logits, batch_size)
        if self.loss is not None:
            result = self.loss.decide(outputs)
        elif LOGITS in self.output_names and PROBABILITIES in self.output_names:  # a softmax's logits, no loss known
            result = outputs.argmax(axis=-1)
        else:
            result = outputs
        return result[0].item() if single and result.ndim == 1 else (result[0] if single else result)

    def predict_softly(self, x: Any, batch_size: int = 1024, verbose: int | str = "auto") -> Any:
        """Class probabilities per example: the `probabilities` output, or a BCE model's sigmoid output; a model of
        one output needs a classification loss. A model of several outputs gives a list, one per output, as
        `Model.predict_softly` does: an output trained with a classification loss gives its probabilities
        (`<output>_probabilities`, or its loss's), any other its raw values (a regression head's, as `predict` gives
        them). `verbose` as predict's: checked, no progress bar.

        Raises:
            InvalidArgumentError: a model of one output without a classification loss (use `predict`), or an output
                whose loss the metadata does not name (the export of an uncompiled model: use `predict_outputs`).
        """
        check_verbose(verbose)
        if len(self.predicted_outputs) > 1:
            return self._predict_each(x, batch_size, soft=True)
        if PROBABILITIES in self.output_names:
            probabilities, single = self._run(x, PROBABILITIES, batch_size)
        elif self.loss is not None:
            outputs, single = self._run(x, self._logits, batch_size)
            probabilities = self.loss.probabilities(outputs)
        else:
            raise InvalidArgumentError(
                f"predict_softly needs a classification model. {self.source} has no '{PROBABILITIES}' "
                f"output and no loss in its metadata (outputs: {list(self.output_names)}); use predict() for "
                "raw outputs."
            )
        return probabilities[0] if single else probabilities

    def predict_outputs(self, x: Any, batch_size: int = 1024) -> dict[str, np.ndarray]:
        """Every output of the graph for `x`, raw, by output name in the graph's order: a model of several outputs
        exports each one (`kind`, `size`) and, for one trained with softmax cross-entropy, its probabilities
        (`kind_probabilities`). Arrays keep the batch axis, also for one example."""
        outputs, _ = self._run_outputs(x, self.output_names, batch_size)
        return dict(zip(self.output_names, outputs, strict=True))

    def _predict_each(self, x: Any, batch_size: int, soft: bool) -> list[Any]:
        """`predict` (or, `soft`, `predict_softly`) of a model of several outputs: one result per own output, as
        `Model.predict` (`Model.predict_softly`) gives it."""
        outputs, single = self._run_outputs(x, self.output_names, batch_size)
        by_name = dict(zip(self.output_names, outputs, strict=True))
        results = []
        for name in self.predicted_outputs:
            own, probabilities = self._output_losses.get(name), by_name.get(f"{name}_{PROBABILITIES}")
            if soft:
                result = probabilities if probabilities is not None else self._probabilities_of(name, by_name[name])
                results.append(result[0] if single else result)
                continue
            if own is not None:
                result = own.decide(by_name[name])
            else:  # no loss known: the class of a classifier's output, the values of any other
                result = by_name[name] if probabilities is None else probabilities.argmax(axis=-1)
            results.append(result[0].item() if single and result.ndim == 1 else (result[0] if single else result))
        return results

    def _probabilities_of(self, name: str, output: np.ndarray) -> np.ndarray:
        """The class probabilities of output `name` of a model of several, which exports none of its own: its
        loss's (binary cross-entropy's sigmoid, ...); a regression loss's output as it is, as `Model.predict_softly`
        gives the other heads of a model of several.

        Raises:
            InvalidArgumentError: the output has no loss in the metadata (an export of an uncompiled model).
        """
        own = self._output_losses.get(name)
        if own is None:
            raise InvalidArgumentError(
                f"predict_softly gives each output's class probabilities, and output {name!r} of {self.source} has "
                f"no '{name}_{PROBABILITIES}' output and no loss in the metadata to say what it holds. Outputs: "
                f"{list(self.output_names)}. Use predict() or predict_outputs() for its values."
            )
        try:
            return own.probabilities(output)
        except InvalidArgumentError:  # a regression loss: its values, as Model.predict_softly gives them
            return output

    def _run(self, x: Any, output: str, batch_size: int) -> tuple[np.ndarray, bool]:
        outputs, single = self._run_outputs(x, (output,), batch_size)
        return outputs[0], single

    def _run_outputs(self, x: Any, names: tuple[str, ...], batch_size: int) -> tuple[list[np.ndarray], bool]:
        if self._session is None:
            raise ModelStateError("predict() was called on a closed InferenceModel; load the model again.")
        batch_size = check_positive_int("batch_size", batch_size)
        batch, single = prepare_inputs(x, self.inputs, self.input_scale, "x", allow_single=True)
        if self._fixed_batch is not None:
            if len(batch) % self._fixed_batch:
                raise ShapeError(
                    f"x expects a multiple of {self._fixed_batch} examples: {self.source} fixes the batch size "
                    f"of its input {self.input_name!r} to {self._fixed_batch}. Received: x.shape={_shapes(batch)}"
                )
            batch_size = self._fixed_batch
        try:
            parts = [
                self._session.run(
                    list(names),
                    dict(zip(self.input_names, batch_arrays(batch[start : start + batch_size]), strict=True)),
                )
                for start in range(0, len(batch), batch_size)
            ]
        except Exception as e:  # ORT's own types: the graph itself fails (a damaged or foreign model)
            raise ModelFileError(
                f"{self.source} failed in ONNX Runtime on x of shape {_shapes(batch)} ({type(e).__name__}: "
                f"{str(e).strip()[:300]}). The model is damaged or is not one that onnxtrain exports."
            ) from e
        return [np.concatenate([part[i] for part in parts]) for i in range(len(names))], single

    def _check_inputs(self, source: str) -> list[tuple[str, Shape, np.dtype]]:
        """(name, per-example shape, dtype) of each graph input, which must be as onnxtrain exports them."""
        inputs = self._session.get_inputs()
        if not inputs:
            raise ModelFileError(f"{source} has no inputs.")
        found = []
        for graph_input in inputs:
            if graph_input.type not in _INPUT_TYPES:
                raise ModelFileError(
                    f"{source}: input {graph_input.name!r} is of type {graph_input.type}; onnxtrain's models read "
                    f"inputs of type {sorted(_INPUT_TYPES)}. Inputs: {[(i.name, i.type) for i in inputs]}"
                )
            dims = graph_input.shape[1:]
            if not dims or not all(isinstance(d, int) and d > 0 for d in dims):
                raise ModelFileError(
                    f"{source}: input {graph_input.name!r} must have a batch dimension and fixed example "
                    f"dimensions. Found: {graph_input.shape}"
                )
            found.append((graph_input.name, tuple(dims), _INPUT_TYPES[graph_input.type]))
        return found

    # --- lifetime -----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the ONNX Runtime session. Idempotent."""
        self._session = None

    def __enter__(self) -> InferenceModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"InferenceModel(source={self.source!r}, input_shape={self.input_shape}, "
            f"outputs={list(self.output_names)}, device={self.device!r})"
        )


def _shapes(batch: np.ndarray | InputArrays) -> Any:
    """A batch's shape, or each input's for a model of several inputs (for messages)."""
    return [a.shape for a in batch.arrays] if isinstance(batch, InputArrays) else batch.shape
