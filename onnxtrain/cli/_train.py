"""`onnxtrain train`: a run from a config or a built-in example, or `--resume` of a saved model, which trains
more epochs exactly where the saved model stopped (its optimizer state, epoch count and shuffling seed), on the
data its run recorded in run.json or on --data. With `--workers N`, the same command in N MPI processes that train
data-parallel (each with cores // N threads unless --threads says otherwise), of which the first prints and writes
the run's files; the launcher checks the arguments, the config and the data first, so that a mistake is one line.
`_resume` reads a saved run to resume; `_run_fit` holds the fit that a new and a resumed run both end in."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from onnxtrain import engines
from onnxtrain.cli._advice import warnings_as_lines
from onnxtrain.cli._config_keys import setting
from onnxtrain.cli._config_model import build_model, compile_settings, refuse_training_nothing
from onnxtrain.cli._data import load_run_data, refuse_scaling_twice
from onnxtrain.cli._examples import example_config
from onnxtrain.cli._image_folders import model_target
from onnxtrain.cli._output_folder import check_output, run_record
from onnxtrain.cli._resume import _resume
from onnxtrain.cli._run_config import read_config
from onnxtrain.cli._run_fit import _data_sources, _examples, _fit_and_save, _threads, _workers_note
from onnxtrain.cli._stopping import (
    STOP_STATUSES,
    ignoring_stopping_signals,
    stop_name,
    stop_status,
    stopping_on_signals,
    surviving_stdout,
)
from onnxtrain.distributed._launch import announce_process_zero, launch, report_error, worker_count
from onnxtrain.distributed._world import init as init_world
from onnxtrain.distributed._world import rank as world_rank
from onnxtrain.errors import DataParallelError, InvalidArgumentError


def writing_mode(args: argparse.Namespace) -> str:
    """The `writing_mode` of save/export that --overwrite asks for."""
    return "override" if args.overwrite else "fail_if_exists"


def cmd_train(args: argparse.Namespace) -> int:
    with warnings_as_lines("train"):  # onnxtrain's warnings as `onnxtrain train: warning:` lines, not source lines
        return _cmd_train(args)


def _cmd_train(args: argparse.Namespace) -> int:
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
    args.checkpoint_every = setting(config, "checkpoint_every")
    if args.output and world_rank() == 0:
        check_output(Path(args.output), args.overwrite)

    data = dict(config.get("data") or {})
    model = build_model(config)  # before the data: a folder of images is read at its input size, for its loss
    try:
        datasets = load_run_data(data, base, images=model_target(model, setting(config, "loss"), model.seed))
        refuse_training_nothing(model, f"--example {args.example}" if args.example is not None else args.config)
        refuse_scaling_twice(model, datasets, _data_sources(data)["train"])
    except BaseException:
        model.close()
        raise
    if check_only:
        model.close()
        return 0
    validation_split = setting(config, "validation_split")
    threads = _threads(args, setting(config, "threads"))
    engine = engines.resolve(setting(config, "engine"))
    with model:
        model.compile(**compile_settings(config), threads=threads)
        return _fit_and_save(
            args,
            model,
            datasets,
            f"Training {model.name} (seed {model.seed}) on {_examples(datasets, validation_split)}",
            epochs=setting(config, "epochs"),
            batch_size=setting(config, "batch_size"),
            validation_split=validation_split,
            sources=_data_sources(data),
            # The seed drawn for a config without one, so that training from run.json again is the same run.
            record={
                **run_record({**config, "seed": model.seed, "engine": engine}, base),
                "workers": _workers_note(threads),
            },
            history=None,
        )
