"""`onnxtrain train --resume DIR --epochs N`: N more epochs of a saved model, exactly where it stopped (its optimizer
state, epoch count and shuffling seed), on the data its run.json names or on --data."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onnxtrain import engines
from onnxtrain.cli._config_keys import DEFAULT_BATCH_SIZE, RECORD_KEYS, setting
from onnxtrain.cli._config_model import refuse_training_nothing
from onnxtrain.cli._data import (
    DatasetLoader,
    load_run_data,
    refuse_scaling_twice,
    refuse_several_outputs,
    saved_optimizer,
)
from onnxtrain.cli._image_folders import saved_target
from onnxtrain.cli._output_folder import RUN_FILE, check_output, find_saved_run
from onnxtrain.cli._run_fit import _data_sources, _examples, _fit_and_save, _threads, _workers_note
from onnxtrain.cli._run_output import resumed_history
from onnxtrain.distributed._world import rank as world_rank
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.model_files import CONFIG_FILE
from onnxtrain.model_files import read_config as read_saved_config
from onnxtrain.progress import print_once

if TYPE_CHECKING:
    from onnxtrain.sequential import Sequential


def _resume(args: argparse.Namespace, check_only: bool = False) -> int:
    """`train --resume DIR --epochs N`: N more epochs of a saved model, on the data of its run.json or --data
    (`check_only`: as `_train`'s)."""
    run = find_saved_run(args.resume)
    saved = read_saved_config(run.directory / CONFIG_FILE)
    trained = saved.get("epochs_trained", 0)
    if args.epochs is None:
        raise InvalidArgumentError(
            f"--resume needs --epochs N: how many epochs to train on top of the {trained} that '{args.resume}' "
            "has trained"
        )
    if args.seed is not None:
        raise InvalidArgumentError(
            "--seed cannot change a resumed model: its shuffling continues from the seed it was trained with "
            f"({saved['seed']})"
        )
    if not saved.get("compile"):
        raise InvalidArgumentError(
            f"'{args.resume}' holds a model saved before compile(): --resume needs its optimizer and loss. Train "
            "it from a run config instead."
        )
    refuse_several_outputs(saved, args.resume, "train --resume", "fit")
    record = run.record or {}
    run_json = run.directory.parent / RUN_FILE
    data = dict(record.get("data") or {})
    sources = _data_sources(data)
    if args.data is not None:  # replaces the training data only: the run's test and validation data stay
        data["train"], sources["train"] = DatasetLoader(Path.cwd()).absolute(args.data), f"--data {args.data!r}"
        data_note = f"--data {args.data}"
    elif "train" not in data:
        raise InvalidArgumentError(
            f"--resume: no run config ({RUN_FILE}, which onnxtrain train writes beside model/) says what "
            f"'{args.resume}' was trained on; pass --data 'fashion-mnist[:train]', a .npz file or a folder of images"
        )
    else:
        data_note = f"{data['train']} (from {run_json})"
    if args.output and world_rank() == 0:
        check_output(Path(args.output), args.overwrite)
    names = {"train": "--data"} if args.data is not None else None
    # where run.json is (its paths are absolute anyway); integer pixels as stored: the model's input_scale reads them
    # (a folder of images: read at the saved model's input size, labelled by its classes)
    datasets = load_run_data(data, run.directory.parent, names, scale_train_pixels=False, images=saved_target(saved))
    if check_only:
        return 0
    batch_size, batch_note = _resumed_batch_size(args, record, run_json)
    validation_split = setting(record, "validation_split")
    threads = _threads(args, setting(record, "threads"))
    args.checkpoint_every = args.checkpoint_every or setting(record, "checkpoint_every")
    fresh = bool(getattr(args, "fresh_optimizer", False))
    model = _load_to_resume(run.directory, threads, getattr(args, "engine", None), fresh)
    history = resumed_history(run.history, trained)
    lacking = _history_gap_note(run.history, history.epochs, run.directory, trained)
    if lacking is not None:
        print_once(f"onnxtrain train: note: {lacking}", file=sys.stderr)
    with model:
        refuse_training_nothing(model, args.resume, from_config=False)
        refuse_scaling_twice(model, datasets, sources["train"])
        if fresh:
            print_once(
                f"onnxtrain train: note: --fresh-optimizer: training goes on with a fresh "
                f"{saved['compile']['optimizer'].get('name')} optimizer, not exactly where it stopped.",
                file=sys.stderr,
            )
        elif not saved.get("optimizer_state_saved"):
            print_once(
                f"onnxtrain train: note: '{args.resume}' was saved without its optimizer state: training goes on "
                f"with a fresh {saved['compile']['optimizer'].get('name')} optimizer, not exactly where it stopped.",
                file=sys.stderr,
            )
        engine = model._compiled.engine if model._compiled is not None else None
        return _fit_and_save(
            args,
            model,
            datasets,
            f"Resuming {model.name} (seed {model.seed}) after {trained} epoch{'' if trained == 1 else 's'}: "
            f"{args.epochs} more on {_examples(datasets, validation_split)} of {data_note}, {batch_note}",
            epochs=args.epochs,
            batch_size=batch_size,
            validation_split=validation_split,
            sources=sources,
            # A config that trains this model from scratch: the same epochs in all. A model that no run.json
            # describes (model.save(), finetune) records where it came from instead of its layers.
            record={
                **(
                    {k: v for k, v in record.items() if k not in RECORD_KEYS}  # the notes of the run it resumes
                    if run.record is not None
                    else {"name": model.name, "resumed_from": str(run.directory.resolve())}
                ),
                **({"threads": args.threads} if getattr(args, "threads", None) is not None else {}),
                **({"checkpoint_every": args.checkpoint_every} if args.checkpoint_every else {}),
                "data": data,
                "epochs": trained + args.epochs,
                "batch_size": batch_size,
                "seed": model.seed,
                **({"engine": engines.resolve(str(engine))} if engine is not None else {}),
                "workers": _workers_note(threads),
            },
            history=history,
        )


def _history_gap_note(path: Path | None, listed: list[int], directory: Path, trained: int) -> str | None:
    """What to say of a history.csv at `path` whose epochs (`listed`, cut to the model's) miss some that the model
    in `directory` has trained (`trained`) after the first it lists, or None where it lists them all. An older
    onnxtrain, killed between a checkpoint's model/ and its history.csv, could leave one behind its model: their
    metrics are lost, and the resumed history.csv goes on without them rather than filling anything in."""
    if path is None or not listed:  # a model saved without a run's history: its epochs were never listed
        return None
    missing = sorted(set(range(listed[0], trained + 1)) - set(listed))
    if not missing:
        return None
    return (
        f"{path} lists {_epoch_ranges(listed)}, and {directory} has trained {trained}: it lacks "
        f"{_epoch_ranges(missing)} (model/ was saved and the run killed before history.csv was), so the resumed "
        f"history.csv goes on without {'it' if len(missing) == 1 else 'them'}."
    )


def _epoch_ranges(epochs: list[int]) -> str:
    """Sorted epoch numbers as "epoch 3", "epochs 1-2" or "epochs 1-30, 34"."""
    runs: list[list[int]] = []
    for epoch in epochs:
        if runs and epoch == runs[-1][1] + 1:
            runs[-1][1] = epoch
        else:
            runs.append([epoch, epoch])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
    return f"epoch{'s' if len(epochs) > 1 else ''} {text}"


def _resumed_batch_size(args: argparse.Namespace, record: dict[str, Any], run_json: Path) -> tuple[int, str]:
    """The batch size a resumed run trains with, and how its headline says where it came from."""
    if args.batch_size is not None:
        return args.batch_size, f"batch size {args.batch_size} (--batch-size)"
    if "batch_size" in record:
        return int(record["batch_size"]), f"batch size {record['batch_size']} (from {run_json})"
    # A model saved by model.save() records no batch size (fit's argument).
    return DEFAULT_BATCH_SIZE, (
        f"batch size {DEFAULT_BATCH_SIZE} (the default: no {RUN_FILE} records the one it was trained with; pass "
        "--batch-size N to choose)"
    )


def _load_to_resume(
    directory: Path, threads: int | None, engine: str | None = None, fresh_optimizer: bool = False
) -> Sequential:
    """The saved model in `directory`, compiled with its optimizer and state (`fresh_optimizer`: a fresh optimizer
    of its settings), `threads` and `engine` (None: the saved one); the warnings of the load (the portable engine
    standing in for ort-training...) become one-line notes on stderr, from process 0."""
    from onnxtrain.loading import load_model

    options: dict[str, Any] = saved_optimizer(directory) if fresh_optimizer else {}
    if engine is not None:
        options["engine"] = engine
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model: Sequential = load_model(directory, threads=threads, **options)
    for warning in caught:
        print_once(f"onnxtrain train: note: {' '.join(str(warning.message).split())}", file=sys.stderr)
    return model
