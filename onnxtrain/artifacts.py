"""`generate_artifacts`: the four files ONNX Runtime's training API needs, for any language that has it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onnxtrain import losses, optimizers
from onnxtrain._artifacts_folder import check_artifacts_folder
from onnxtrain._ort_training import TrainingArtifacts, refuse_nothing_to_train, write_artifacts
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError

if TYPE_CHECKING:
    from onnxtrain.sequential import Sequential


def generate_artifacts(
    model: Sequential,
    loss: Any = None,
    optimizer: Any = None,
    directory: str | Path = "artifacts",
    opset: int | None = None,
    ir_version: int | None = None,
) -> TrainingArtifacts:
    """Write training_model.onnx, eval_model.onnx, optimizer_model.onnx and checkpoint into `directory`.

    `loss` and `optimizer` default to the model's compiled ones. The files load in ONNX Runtime 1.19 training
    (IR <= 10) from Python, C, C++, C#, Java or Objective-C. The training model takes `input` (float32
    [batch, ...]) and `labels` (int64 [batch] for softmax cross-entropy, float32 shaped like the output otherwise)
    and returns `loss` and `logits`; the weights start as the model's current weights.

    `directory` may be new (it is created), empty, or hold nothing but training artifacts onnxtrain wrote (these
    four files, `compile(artifacts_dir=...)`'s resume_checkpoint, and the portable engine's train_step.onnx and
    eval.onnx); the four are replaced. Anything else there, e.g. a saved model, whose checkpoint would be
    overwritten, is refused before anything is written.

    Raises:
        InvalidTypeError / InvalidArgumentError: `directory` is not a str or os.PathLike, is empty ("." is
            the current folder), or is an existing file; nothing is written.
        ModelExistsError: `directory` holds other entries than training artifacts (naming them); nothing is
            written.
        UnsupportedError: the model has no trainable parameter (every layer frozen, or none with weights), the
            optimizer or an operator ONNX Runtime training cannot build (see `write_artifacts`); nothing is written.

    Example:
        >>> generate_artifacts(model, Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, Adam(), "artifacts")  # doctest: +SKIP
    """
    _check_directory(directory)
    check_artifacts_folder(directory, "generate_artifacts(directory=...)")
    refuse_nothing_to_train(
        model.graph,
        "generate_artifacts",
        "Set trainable=True on a layer with weights, or add one; a model with nothing to train needs no training "
        "artifacts (save or export it to run it).",
    )
    compiled = model._compiled
    if compiled is None and (loss is None or optimizer is None):
        raise InvalidArgumentError(
            "generate_artifacts needs loss=... and optimizer=... for a model that is not compiled. "
            f"Received: loss={loss!r}, optimizer={optimizer!r}"
        )
    model.sync_weights()
    return write_artifacts(
        model.graph,
        losses.get(loss) if loss is not None else compiled.loss,  # type: ignore[union-attr]
        optimizers.get(optimizer) if optimizer is not None else compiled.optimizer,  # type: ignore[union-attr]
        directory,
        opset if opset is not None else (compiled.opset if compiled else 17),
        ir_version if ir_version is not None else (compiled.ir_version if compiled else 8),
    )


def _check_directory(directory: object) -> None:
    """Refuse what is not a folder path; "" would write into the current folder, which "." says on purpose."""
    expected = 'generate_artifacts(directory=...) expects a folder path (e.g. "artifacts").'
    if not isinstance(directory, str | os.PathLike) or not isinstance(os.fspath(directory), str):
        raise InvalidTypeError(f"{expected} Received: directory={directory!r} ({type(directory).__name__})")
    if not os.fspath(directory):
        raise InvalidArgumentError(f'{expected} Received: directory={directory!r}; pass "." for the current folder.')
