"""`onnxtrain evaluate` and `onnxtrain predict`: a saved model's loss and metrics on a dataset, and its outputs on an
input (each example's class and probability where the model gives probabilities), one line per example: its number
in a .npy batch, or its file name for a folder of images."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from onnxtrain.cli._advice import warnings_as_lines
from onnxtrain.cli._data import (
    SAVED_MODEL,
    DatasetLoader,
    load_compiled,
    naming_the_option,
    read_inputs,
    refuse_several_outputs,
    saved_model_dir,
)
from onnxtrain.cli._image_folders import saved_target
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.model_files import CONFIG_FILE
from onnxtrain.model_files import read_config as read_saved_config

if TYPE_CHECKING:
    from onnxtrain.inference import InferenceModel


def cmd_evaluate(args: argparse.Namespace) -> int:
    with warnings_as_lines("evaluate"):
        return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    directory = saved_model_dir(args.model, SAVED_MODEL)
    saved = read_saved_config(directory / CONFIG_FILE)
    refuse_several_outputs(saved, args.model, "evaluate", "evaluate")
    # Integer pixels as stored: the model scales them by its own input_scale, as predict does. A folder of images
    # is read at the model's input size, labelled by its classes.
    data = DatasetLoader(Path.cwd(), saved_target(saved)).load(args.data, "--data", "test", scale_pixels=False)
    with load_compiled(directory, args.engine, "evaluate") as model:
        try:
            result = model.evaluate(data, batch_size=args.batch_size, verbose=args.verbose)
        except (InvalidArgumentError, InvalidTypeError) as e:
            raise naming_the_option(e, "--data", args.data) from e
    print(f"{result}  ({len(data)} examples)")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    with warnings_as_lines("predict"):
        return _predict(args)


def _predict(args: argparse.Namespace) -> int:
    from onnxtrain.inference import InferenceModel

    # A run's folder stands for the model/ in it, as it does for summary, evaluate, export, artifacts and bundle.
    with InferenceModel.load(args.model) as model:
        x, names = read_inputs(Path(args.input), model.input_shape, model.input_names)
        if len(_predicted_outputs(model.output_names)) > 1:
            return _predict_several(model, x, args, names)
        try:
            try:
                probabilities = model.predict_softly(x)
            except InvalidArgumentError:  # a regression model (or bad data, which predict refuses again)
                outputs = np.atleast_2d(model.predict(x))
                for i, row in enumerate(outputs.reshape(len(outputs), -1)):
                    print(f"{_row_name(names, i)}: {np.array2string(row, precision=4)}")
                return 0
        except (InvalidArgumentError, InvalidTypeError) as e:
            raise naming_the_option(e, "--input", args.input) from e
    classes = model.class_names
    rows = np.atleast_2d(probabilities)
    if rows.ndim > 2:  # a class per step (a tagger: (N, steps, classes)): each example's classes, in order
        binary = model.loss is not None and model.loss.binary and rows.shape[-1] == 1
        for i, row in enumerate(rows):
            steps = row.reshape(-1, row.shape[-1])
            best = (steps[:, 0] > 0.5).astype(int) if binary else steps.argmax(axis=-1)
            shown = " ".join(classes[b] if classes and b < len(classes) else str(b) for b in best)
            print(f"{_row_name(names, i)}: {shown}")
        return 0
    if model.loss is not None and model.loss.binary:  # each unit a probability of its own (binary cross-entropy)
        for i, row in enumerate(rows):
            if row.size == 1:  # one unit: class 1 where its probability is above one half
                best = int(row[0] > 0.5)
                label = classes[best] if classes and best < len(classes) else f"class {best}"
                print(f"{_row_name(names, i)}: {label} ({best}) p={row[0] if best else 1 - row[0]:.4f}")
            else:  # several labels at once: each unit's decision and probability
                print(f"{_row_name(names, i)}: {(row > 0.5).astype(int)} p={np.array2string(row, precision=4)}")
        return 0
    for i, row in enumerate(rows):
        best = int(row.argmax())
        label = classes[best] if classes and best < len(classes) else f"class {best}"
        print(f"{_row_name(names, i)}: {label} ({best}) p={row[best]:.4f}")
    return 0


def _row_name(names: tuple[str, ...] | None, row: int) -> str:
    """How predict's line for example `row` starts: its file name where it read a folder, its number otherwise."""
    return names[row] if names is not None else str(row)


PROBABILITIES_SUFFIX = "_probabilities"  # the companion output of a softmax cross-entropy output, in an export


def _predicted_outputs(names: tuple[str, ...]) -> list[str]:
    """The model's own outputs among the graph's `names`: not `probabilities` (of `logits`) nor the
    `<output>_probabilities` companion of an output of a model of several outputs."""
    companions = {f"{name}{PROBABILITIES_SUFFIX}" for name in names} | {"probabilities"}
    return [name for name in names if name not in companions]


def _predict_several(
    model: InferenceModel,
    x: np.ndarray | dict[str, np.ndarray],
    args: argparse.Namespace,
    names: tuple[str, ...] | None,
) -> int:
    """One line per example naming every output: its class and probability where the model gives its
    probabilities (an output trained with softmax cross-entropy), its values otherwise."""
    try:
        outputs = model.predict_outputs(x)
    except (InvalidArgumentError, InvalidTypeError) as e:
        raise naming_the_option(e, "--input", args.input) from e
    predicted = _predicted_outputs(model.output_names)
    for i in range(len(outputs[predicted[0]])):
        parts = []
        for name in predicted:
            probabilities = outputs.get(f"{name}{PROBABILITIES_SUFFIX}")
            if probabilities is not None:
                row = probabilities[i].reshape(-1)
                best = int(row.argmax())
                parts.append(f"{name}: class {best} p={row[best]:.4f}")
            else:
                parts.append(f"{name}: {np.array2string(outputs[name][i].reshape(-1), precision=4)}")
        print(f"{_row_name(names, i)}: {'; '.join(parts)}")
    return 0
