"""Continuing in Python a run onnxtrain-js trained from a training bundle (`load_state`, re-exported by
`onnxtrain.bundle`): the JavaScript state bytes given to the compiled model the bundle was written from, once they
are found to be that model's, compiled as the bundle's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain._bounded_read import read_bounded
from onnxtrain._bundle_state import MAX_STATE_BYTES, STATE_FILE, read_metadata, state_bytes_rate, unpack_state
from onnxtrain._recompile import ResumableModel, recompile_resuming
from onnxtrain.errors import InvalidArgumentError, ModelFileError, ModelStateError
from onnxtrain.optimizers.schedules import LearningRateSchedule
from onnxtrain.portable import PortableEngine
from onnxtrain.portable._checkpoint import Checkpoint, write_checkpoint
from onnxtrain.portable._graphs import STEP

if TYPE_CHECKING:
    from onnxtrain.training import Trainer


def load_state(
    model: ResumableModel, directory: str | os.PathLike[str], state: bytes | str | os.PathLike[str] | None = None
) -> None:
    """Continue in Python a run that onnxtrain-js trained from the bundle at `directory`: give the compiled `model`
    (the model the bundle was written from, compiled with the same optimizer and the portable engine) the weights,
    optimizer state and step of `state`, so that Adam's moments, the bias correction, a schedule's position and
    Dropout's masks (drawn from the step) go on exactly where JavaScript stopped.

    Args:
        state: the bytes of JavaScript `trainer.stateBytes()`, or the path of a file holding them; None: the
            bundle's own state.bin. The trailer's learning rate becomes the model's, unless a schedule sets it.

    Example:
        >>> Path("js-state.bin").write_bytes(...)  # doctest: +SKIP   (fs.writeFileSync(path, trainer.stateBytes()))
        >>> onnxtrain.bundle.load_state(model, "bundle", "js-state.bin")  # doctest: +SKIP
        >>> model.fit(x, y)  # doctest: +SKIP

    Raises:
        ModelStateError: the model is not compiled, or compiled with the ort-training engine.
        ModelFileError: the bundle or state is not this model's (the names and shapes differ), or damaged.
        InvalidArgumentError: the model is compiled with another optimizer or other settings than the bundle's.
    """
    trainer = model._compiled_trainer("load_state")
    engine = trainer.engine
    if not isinstance(engine, PortableEngine):
        raise ModelStateError(
            "load_state needs a model compiled with the portable engine (the bundle's train step); the ort-training "
            "engine keeps its optimizer state in its own format. Compile with engine='portable'."
        )
    folder = Path(directory)
    metadata = read_metadata(folder)
    if state is None:
        data = read_bounded(folder / STATE_FILE, MAX_STATE_BYTES, ModelFileError, "a bundle's state")
    elif isinstance(state, bytes | bytearray | memoryview):
        data = bytes(state)
    else:
        data = read_bounded(Path(state), MAX_STATE_BYTES, ModelFileError, "state bytes")
    tensors = unpack_state(data, metadata["tensors"])
    rate = state_bytes_rate(data, metadata["tensors"])
    _check_same_model(trainer, engine, metadata, tensors, folder)
    carried = {t.name for t in engine.graph.state}
    checkpoint = Checkpoint(
        weights={name: value for name, value in tensors.items() if name not in carried and name != STEP},
        state={name: tensors[name] for name in carried},
        step=int(tensors[STEP]),
        optimizer=trainer.compiled.optimizer.name,
    )
    recompile_resuming(model, write_checkpoint(checkpoint))
    if not isinstance(trainer.compiled.optimizer.learning_rate, LearningRateSchedule):  # the optimizer compiled again
        model.learning_rate = float(metadata["learning_rate"] if rate is None else rate)


def _check_same_model(
    trainer: Trainer, engine: PortableEngine, metadata: dict[str, Any], tensors: dict[str, np.ndarray], folder: Path
) -> None:
    """Refuse a bundle of another model, or one the model is compiled otherwise for (optimizer, loss).

    Raises:
        ModelFileError: names or shapes differ.
        InvalidArgumentError: the optimizer's settings (but its rate) or the loss differ.
    """
    own = {**engine.get_weights(), **engine.carried_state(), STEP: np.array(engine.step, np.int64)}
    lacking, unknown = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    reshaped = sorted(n for n in set(own) & set(tensors) if own[n].shape != tensors[n].shape)
    if lacking or unknown or reshaped:
        found = [
            f"{what}: {_listed(names)}"
            for what, names in (
                ("lacks", lacking),
                ("holds tensors the model does not have", unknown),
                ("shapes differ", reshaped),
            )
            if names
        ]
        raise ModelFileError(
            f"load_state expects the bundle of this model, compiled as it is. Received: '{folder}' (model "
            f"'{metadata.get('name')}'), which {'; '.join(found)}."
        )
    settings = {k: v for k, v in trainer.compiled.optimizer.get_config().items() if k != "learning_rate"}
    bundled = {k: v for k, v in metadata["optimizer"].items() if k != "learning_rate"}
    differing = sorted(k for k in {*settings, *bundled} if settings.get(k) != bundled.get(k))
    loss = trainer.compiled.loss.name
    if differing or loss != metadata["loss"]:
        raise InvalidArgumentError(
            f"load_state expects the model compiled as the bundle's: optimizer {bundled} and loss "
            f"{metadata['loss']!r}. Received: optimizer settings {settings} (differing: {differing}), loss "
            f"{loss!r}. Compile the model with the bundle's optimizer and loss first."
        )


def _listed(names: list[str], most: int = 4) -> str:
    """The first `most` names, and how many more."""
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more
