"""`onnxtrain train`: a run from a config or a built-in example, or `--resume` of a saved model, which trains
more epochs exactly where the saved model stopped (its optimizer state, epoch count and shuffling seed), on the
data its run recorded in run.json or on --data. With `--workers N`, the same command in N MPI processes that train
data-parallel (each with cores // N threads unless --threads says otherwise), of which the first prints and writes
the run's files; the launcher checks the arguments, the config and the data first, so that a mistake is one line."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onnxtrain import engines
from onnxtrain.cli._config_model import build_model, compile_settings
from onnxtrain.cli._data import (
    DatasetLoader,
    RunData,
    load_run_data,
    refuse_scaling_twice,
    refuse_several_outputs,
    saved_optimizer,
)
from onnxtrain.cli._run_config import (
    DEFAULT_BATCH_SIZE,
    HISTORY_FILE,
    RECORD_KEYS,
    RUN_FILE,
    check_output,
    example_config,
    find_saved_run,
    read_config,
    run_record,
)
from onnxtrain.cli._run_output import RunOutput, check_free_space, model_files_now, resumed_history, save_elsewhere
from onnxtrain.cli._stopping import (
    STOP_STATUSES,
    finishing_the_save,
    ignoring_stopping_signals,
    stop_name,
    stop_status,
    stopping_on_signals,
    surviving_stdout,
)
from onnxtrain.distributed._launch import (
    announce_process_zero,
    launch,
    report_error,
    threads_per_worker,
    worker_count,
)
from onnxtrain.distributed._world import init as init_world
from onnxtrain.distributed._world import rank as world_rank
from onnxtrain.errors import DataParallelError, InvalidArgumentError, InvalidTypeError, OnnxtrainError
from onnxtrain.history import History
from onnxtrain.model_files import CONFIG_FILE
from onnxtrain.model_files import read_config as read_saved_config
from onnxtrain.progress import print_once

if TYPE_CHECKING:
    from onnxtrain.sequential import Sequential


def writing_mode(args: argparse.Namespace) -> str:
    """The `writing_mode` of save/export that --overwrite asks for."""
    return "override" if args.overwrite else "fail_if_exists"


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


def cmd_train(args: argparse.Namespace) -> int:
    workers = getattr(args, "workers", None)
    if workers is not None and workers > 1 and worker_count() is None:
        _train(args, check_only=True)  # a mistake in the arguments, config, data or output: one line, no processes
        return launch(workers, args.argv)
    # SIGTERM saves the run as Ctrl-C does; a stdout whose reader left (`| head`) does not end it.
    with surviving_stdout(args.command):
        if worker_count() is None:
            with stopping_on_signals():
                return _train(args)
        return _train_in_world(args)


def _train_in_world(args: argparse.Namespace) -> int:
    """`_train` in one of the processes that `launch` started."""
    world = init_world()
    if world.size != worker_count():
        raise InvalidArgumentError(
            f"--workers {worker_count()} started processes that see an MPI world of {world.size}: is mpi4py built "
            "against another MPI than the mpiexec that ran them? Reinstall onnxtrain[distributed]."
        )
    if world.rank == 0:
        announce_process_zero()  # the launcher sends Ctrl-C and SIGTERM here: process 0 saves the run
    try:
        # a Ctrl-C or SIGTERM that reaches the other processes too must not end them while process 0 saves (it ends
        # them after)
        with ignoring_stopping_signals(world.rank != 0), stopping_on_signals():
            status = _train(args)
    except KeyboardInterrupt:  # process 0, interrupted before training began or after it ended: nothing to save
        print(f"onnxtrain {args.command}: {stop_name()}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        world.abort(stop_status())  # the others may wait for it in a collective call
        raise
    except DataParallelError as e:  # every process raises it alike at the same call: none waits, one reports it
        if world.rank == 0:
            if getattr(args, "traceback", False):
                raise
            print(f"onnxtrain train: error: {' '.join(str(e).split())}", file=sys.stderr, flush=True)
        finalize = getattr(world, "finalize", None)
        if finalize is not None:  # every process ends MPI: `-m mpi4py` then exits with status 1 without an abort
            finalize()
        return 1
    except BaseException as e:  # alone: the others would wait for it in the next all-reduce
        report_error(world.rank, " ".join(str(e).split()) or type(e).__name__)
        world.abort(1)  # ends this process too (the error is reported: not a second time, by main)
        raise
    if status in STOP_STATUSES:  # process 0 has saved the stopped run: the others wait in a collective call
        sys.stdout.flush()
        world.abort(status)
    return status


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


def _train(args: argparse.Namespace, check_only: bool = False) -> int:
    """Train as `args` says; `check_only`: check the arguments, the config or saved run, the output folder and
    the data, and return 0 before building anything (the launcher of `--workers N`, before it starts them)."""
    if [args.config, args.example, args.resume].count(None) != 2:
        raise InvalidArgumentError("train takes a CONFIG file, --example NAME or --resume DIR (one of them)")
    if args.resume is not None:
        return _resume(args, check_only)
    if args.data is not None:
        raise InvalidArgumentError("--data goes with --resume DIR; a run config names its data in its [data] table")
    if getattr(args, "fresh_optimizer", False):
        raise InvalidArgumentError("--fresh-optimizer goes with --resume DIR; a new run starts with a fresh optimizer")
    if args.example is not None:
        config, base = example_config(args.example), Path.cwd()
    else:
        config, base = read_config(args.config), Path(args.config).resolve().parent
    if args.seed is not None and args.seed < 0:  # argparse's int takes -3; Sequential's message names no option
        raise InvalidArgumentError(f"--seed expects a non-negative integer. Received: --seed {args.seed}")
    for key in ("epochs", "batch_size", "seed", "threads", "engine", "checkpoint_every"):
        if getattr(args, key, None) is not None:
            config[key] = getattr(args, key)
    args.checkpoint_every = config.get("checkpoint_every")
    if args.output and world_rank() == 0:
        check_output(Path(args.output), args.overwrite)

    data = dict(config.get("data") or {})
    datasets = load_run_data(data, base)
    model = build_model(config)
    refuse_scaling_twice(model, datasets, _data_sources(data)["train"])
    if check_only:
        model.close()
        return 0
    validation_split = config.get("validation_split", 0.0)
    threads = _threads(args, config.get("threads"))
    engine = engines.resolve(config.get("engine", engines.AUTO))
    with model:
        model.compile(**compile_settings(config), threads=threads)
        return _fit_and_save(
            args,
            model,
            datasets,
            f"Training {model.name} (seed {model.seed}) on {_examples(datasets, validation_split)}",
            epochs=config.get("epochs", 1),
            batch_size=config.get("batch_size", 32),
            validation_split=validation_split,
            sources=_data_sources(data),
            # The seed drawn for a config without one, so that training from run.json again is the same run.
            record={
                **run_record({**config, "seed": model.seed, "engine": engine}, base),
                "workers": _workers_note(threads),
            },
            history=None,
        )


def _examples(datasets: RunData, validation_split: float) -> str:
    """The examples fit trains on once `validation_split` is held out (fit's rule: the last round(n * split)),
    as the headline says it: "160 examples (40 held out for validation)"."""
    total = len(datasets.train)
    held_out = round(total * validation_split) if validation_split else 0
    if not held_out or held_out >= total:  # fit refuses such a split before the headline is printed
        return f"{total} examples"
    return f"{total - held_out} examples ({held_out} held out for validation)"


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
            f"'{args.resume}' was trained on; pass --data 'fashion-mnist[:train]' or a .npz file"
        )
    else:
        data_note = f"{data['train']} (from {run_json})"
    if args.output and world_rank() == 0:
        check_output(Path(args.output), args.overwrite)
    names = {"train": "--data"} if args.data is not None else None
    datasets = load_run_data(data, run.directory.parent, names)  # where run.json is; its paths are absolute anyway
    if check_only:
        return 0
    batch_size, batch_note = _resumed_batch_size(args, record, run_json)
    validation_split = record.get("validation_split", 0.0)
    threads = _threads(args, record.get("threads"))
    args.checkpoint_every = args.checkpoint_every or record.get("checkpoint_every")
    fresh = bool(getattr(args, "fresh_optimizer", False))
    model = _load_to_resume(run.directory, threads, getattr(args, "engine", None), fresh)
    with model:
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
            history=resumed_history(run.history, trained),
        )


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


def _save_run(run: RunOutput, files: dict[str, bytes], note: dict[str, Any], written: list[tuple[str, str]]) -> None:
    """Write model/ (`files`), history.csv, run.json (updated by `note`) and curves.png into the output folder,
    adding to `written` as each is written; model/ where the output folder refuses it (a full disk): into a folder
    of the temporary directory.

    Raises:
        OSError: the output folder refused the model (saying where it went instead).
    """
    assert run.folder is not None, "fit calls on_train_begin"
    try:
        run.save(files, note=note)
    except OSError as e:
        raise save_elsewhere(run, files, note, e) from e
    written.append(("model", f"{run.folder / 'model'}/"))
    if run.record is not None:
        written.append(("config", str(run.folder / RUN_FILE)))
    csv_path, png_path = run.folder / HISTORY_FILE, run.folder / "curves.png"
    written.append(("history", str(csv_path)))
    if not run.history.epochs:
        return
    try:
        History.from_csv(csv_path).plot(png_path)
        written.append(("curves", str(png_path)))
    except ImportError as e:
        print(f"onnxtrain train: curves skipped: {e}", file=sys.stderr)


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _print_written(written: list[tuple[str, str]]) -> None:
    print("Wrote:")
    for label, path in written:
        print(f"  {label:<8} {path}")


def _save_interrupted(args: argparse.Namespace, run: RunOutput) -> int:
    """After Ctrl-C or SIGTERM in fit: save the model as it was when its last finished epoch ended (with the
    history and run.json up to it), so that `train --resume` continues it exactly as the run would have gone on.
    Returns 130 after Ctrl-C, 143 after SIGTERM."""
    assert run.folder is not None and run.boundary is not None, "an epoch has finished"
    output, target, status = run.folder, run.target, stop_status()
    done = int(json.loads(run.boundary[CONFIG_FILE])["epochs_trained"])
    how = stop_name()
    print(
        f"{_capitalized(how)} in epoch {done + 1} of {target}; saving the model as it was when epoch {done} ended",
        flush=True,
    )
    note = {"epochs": done, "interrupted": f"after epoch {done} of {target}" + (" (SIGTERM)" if status != 130 else "")}
    written: list[tuple[str, str]] = []
    try:
        with finishing_the_save(args.command):
            _save_run(run, run.boundary, note, written)
    except (KeyboardInterrupt, OnnxtrainError, OSError, ValueError) as e:
        cause = "again while saving" if isinstance(e, KeyboardInterrupt) else f"saving failed: {e}"
        kept = [path for label, path in written if label in ("model", "config")]
        saved = (
            f"only {' and '.join(kept)} {'was' if len(kept) == 1 else 'were'} saved" if kept else "nothing was saved"
        )
        print(
            f"onnxtrain {args.command}: {how} after epoch {done} of {target}, and {cause}: " + " ".join(saved.split()),
            file=sys.stderr,
        )
        return status
    _print_written(written)
    print(
        f"onnxtrain {args.command}: {how} after epoch {done} of {target}; saved the model as it was when epoch "
        f"{done} ended (the steps of epoch {done + 1} are not in it) to {output}/model: onnxtrain train --resume "
        f"{output} --epochs {max(target - done, 1)}{'' if run.record is not None else ' --data DATA'} continues it "
        "exactly as the run would have gone on",
        file=sys.stderr,
    )
    return status
