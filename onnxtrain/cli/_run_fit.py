"""What a new and a resumed `onnxtrain train` run share: each process's threads, the note and headline of the run,
how errors name its data, and the fit that ends in the run's files (`_fit_and_save`; the files: `_run_save`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onnxtrain.cli._data import RunData
from onnxtrain.cli._run_output import RunOutput, check_free_space, model_files_now
from onnxtrain.cli._run_save import _capitalized, _print_written, _save_interrupted, _save_run
from onnxtrain.cli._stopping import stop_name, stop_status
from onnxtrain.distributed._launch import threads_per_worker, worker_count
from onnxtrain.distributed._world import rank as world_rank
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, OnnxtrainError
from onnxtrain.history import History

if TYPE_CHECKING:
    from onnxtrain.sequential import Sequential


def _data_sources(data: dict[str, Any]) -> dict[str, str]:
    """How errors name the entries of a run config's [data] table."""
    return {key: f"[data] {key} = {spec!r}" for key, spec in data.items()}


def _naming_the_data(error: OnnxtrainError, sources: dict[str, str]) -> OnnxtrainError:
    """`error` of fit, naming where the run's train or validation data came from (`sources`, by [data] key)
    rather than fit's `dataset`/`validation` argument."""
    text = str(error)
    key = "train" if text.startswith("dataset") else "validation" if text.startswith("validation.") else None
    if key is None or key not in sources:
        return error
    return type(error)(f"{sources[key]} does not fit the model: {text}")


def _threads(args: argparse.Namespace, configured: int | None) -> int | None:
    """Each process's intra-op threads: --threads, else the run config's `threads`, else cores // N in each of
    the N processes of `--workers N`, else ONNX Runtime's default (None: a thread per core)."""
    if getattr(args, "threads", None) is not None:
        return int(args.threads)
    if configured is not None:
        return configured
    workers = worker_count()
    return threads_per_worker(workers) if workers is not None else None


def _workers_note(threads: int | None) -> dict[str, Any]:
    """What run.json notes about the processes that trained the run (training from it ignores the note)."""
    return {"count": worker_count() or 1, "threads": threads}


def _examples(datasets: RunData, validation_split: float) -> str:
    """The examples fit trains on once `validation_split` is held out (fit's rule: the last round(n * split)),
    as the headline says it: "160 examples (40 held out for validation)"."""
    total = len(datasets.train)
    held_out = round(total * validation_split) if validation_split else 0
    if not held_out or held_out >= total:  # fit refuses such a split before the headline is printed
        return f"{total} examples"
    return f"{total - held_out} examples ({held_out} held out for validation)"


def _fit_and_save(
    args: argparse.Namespace,
    model: Sequential,
    datasets: RunData,
    headline: str,
    *,
    epochs: int,
    batch_size: int,
    validation_split: float,
    sources: dict[str, str],
    record: dict[str, Any] | None,
    history: History | None,
) -> int:
    """Fit, evaluate on the test data, and write model/ (with the optimizer state, so that --resume continues
    exactly), history.csv (`history`, the resumed run's, then this run's epochs), run.json (`record`) and curves.png
    into the output folder; at --checkpoint-every N epochs, and after Ctrl-C or SIGTERM, the state of the last
    finished epoch. In a data-parallel run, processes other than the first only train."""
    if world_rank() != 0:
        try:
            model.fit(
                datasets.train,
                epochs=epochs,
                batch_size=batch_size,
                verbose=0,
                validation=datasets.validation,
                validation_split=validation_split,
            )
        except (InvalidArgumentError, InvalidTypeError) as e:  # in process 0's words: the launcher prints one
            raise _naming_the_data(e, sources) from e
        return 0
    check_free_space(Path(args.output or "runs"), model_files_now(model))
    run = RunOutput(
        args.output,
        model.name,
        headline,
        history,
        record=record,
        overwrite=args.overwrite,
        checkpoint_every=getattr(args, "checkpoint_every", None),
    )
    try:
        model.fit(
            datasets.train,
            epochs=epochs,
            batch_size=batch_size,
            verbose=args.verbose,
            validation=datasets.validation,
            validation_split=validation_split,
            callbacks=[run],
        )
    except (InvalidArgumentError, InvalidTypeError) as e:
        if run.folder is not None:
            raise
        raise _naming_the_data(e, sources) from e
    except KeyboardInterrupt:
        if run.folder is None:  # before training began (main says "interrupted")
            raise
        if run.boundary is None:  # (an epoch whose training ended but not its on_epoch_end counts as unfinished)
            print(
                f"onnxtrain {args.command}: {stop_name()} in epoch {run.first_epoch} before it finished: nothing was "
                "saved",
                file=sys.stderr,
            )
            return stop_status()
        return _save_interrupted(args, run)
    assert run.folder is not None, "fit calls on_train_begin"
    if datasets.test is not None:
        try:
            result = model.evaluate(datasets.test, batch_size=batch_size)
            print(f"Test ({len(datasets.test)} examples): {result}")
        except KeyboardInterrupt:  # training has ended: save it
            print(f"{_capitalized(stop_name())} in the test evaluation; saving the trained model", flush=True)
    written: list[tuple[str, str]] = []
    _save_run(run, model_files_now(model), {}, written)
    _print_written(written)
    return 0
