"""The `onnxtrain` command line: train, evaluate, predict, export, artifacts, summary, bundle and finetune.

Every sub-command has --help; bad input ends with one line on stderr, `onnxtrain <command>: error: ...`, and a
non-zero exit status (2 for bad arguments, 1 for anything else, 130 when interrupted, 143 when `train` is ended
by SIGTERM). This module holds the parser and `main`; the commands live in `_train`, `_predict` (evaluate,
predict), `_export` (export, artifacts), `_summary`, `_bundle` and `_finetune`; a run's config in `_config_keys`
(its keys and defaults), `_run_config` (reading it) and `_config_check`, its output folder in `_output_folder`; what
the commands read (datasets, inputs, saved models) in `_data`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from onnxtrain import engines
from onnxtrain.cli._advice import error_text, in_cli_words
from onnxtrain.cli._arguments import positive_int
from onnxtrain.cli._bundle import add_bundle_command
from onnxtrain.cli._config_keys import defaults_help
from onnxtrain.cli._data import IMAGE_SUFFIXES
from onnxtrain.cli._examples import EXAMPLE_HELP, EXAMPLES
from onnxtrain.cli._export import cmd_artifacts, cmd_export
from onnxtrain.cli._finetune import add_finetune_command
from onnxtrain.cli._predict import cmd_evaluate, cmd_predict
from onnxtrain.cli._stopping import SIGINT_STATUS, stop_name, stop_status
from onnxtrain.cli._summary import cmd_summary
from onnxtrain.cli._train import cmd_train
from onnxtrain.errors import OnnxtrainError


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `onnxtrain train: error: ... (see onnxtrain train --help)`."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --- parser -----------------------------------------------------------------------------------------------
RUN_FOLDER = "the output folder of a run, for the model/ in it"


def _add_verbose_argument(parser: argparse.ArgumentParser, default: int, two: str) -> None:
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=default,
        help=f"0 silent, 1 progress bar (plain lines when not a terminal), 2 {two}",
    )


def _add_engine_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=engines.names(),
        help="training engine to load the model with (default: the one it was trained with; portable when "
        "that is ort-training and the installed onnxruntime cannot train)",
    )


def _add_ir_version_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ir-version",
        type=positive_int,
        help="ONNX IR version (default: the model's, raised to the oldest one that can hold --opset)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The `onnxtrain` command's argparse parser with every sub-command registered (train, evaluate, predict,
    export, artifacts, bundle, finetune, summary): `build_parser().parse_args(["export", "runs/demo", "out.onnx"])`
    gives a Namespace whose `func` runs the command. `main(argv)` parses and runs it, printing onnxtrain's errors
    as one line and returning the exit status."""
    parser = _Parser(prog="onnxtrain", description="Train Keras-style models with ONNX Runtime; export portable ONNX.")
    from onnxtrain._version import __version__

    parser.add_argument("--version", action="version", version=f"onnxtrain {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser(
        "train",
        help="train from a config (TOML/JSON) or a built-in example, or resume a saved model",
        description="Train a model; write model/ (with its optimizer state), run.json (the run config, data paths "
        "absolute), history.csv and curves.png into --output. --resume DIR --epochs N continues a saved model "
        "exactly where it stopped and trains N more epochs (on top of those it has trained: Keras' "
        "fit(initial_epoch=k, epochs=k+N)), so resuming a 1-epoch run by 1 epoch gives the model of a 2-epoch run.",
        epilog=defaults_help(),
    )
    train.add_argument(
        "config",
        nargs="?",
        help="model config, .toml or .json (see examples/fashion_mlp.toml; the defaults of the keys it leaves out "
        "are listed below)",
    )
    train.add_argument(
        "--example",
        choices=sorted(EXAMPLES),
        help="a built-in config: " + ", ".join(f"{name} ({EXAMPLE_HELP[name]})" for name in sorted(EXAMPLES)),
    )
    train.add_argument(
        "--resume",
        metavar="DIR",
        help="continue training the saved model in DIR (a run's model/ folder, or the run's folder) with its "
        "optimizer state, on the data its run.json names (or --data); writes a new run like train does",
    )
    train.add_argument(
        "--data",
        help="with --resume: the training data, 'fashion-mnist[:train]', a .npz with x and y or a folder of class "
        "sub-folders of images (default: the [data] of the run.json beside DIR)",
    )
    train.add_argument(
        "--epochs",
        type=positive_int,
        help="override the config's epochs; with --resume (required), how many more epochs to train",
    )
    train.add_argument(
        "--fresh-optimizer",
        action="store_true",
        help="with --resume: continue with a fresh optimizer of the saved kind and settings instead of the saved "
        "optimizer state (a damaged checkpoint, or one that another engine or an ONNX Runtime training build wrote)",
    )
    train.add_argument("--batch-size", type=positive_int, help="override the config's batch size")
    train.add_argument("--seed", type=int, help="override the config's seed")
    train.add_argument("--output", metavar="DIR", help="output folder (default: a new runs/NAME-TIME folder)")
    train.add_argument(
        "--overwrite", action="store_true", help="replace DIR/model if it holds a saved model (and nothing else)"
    )
    train.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="train data-parallel in N processes on this machine (mpiexec -n N; needs onnxtrain[distributed]); "
        "the weights are those of one process, to float32 rounding (docs/scaling.md)",
    )
    train.add_argument(
        "--threads",
        type=positive_int,
        metavar="T",
        help="intra-op threads of each process (overrides the config's `threads`; default: ONNX Runtime's, a "
        "thread per core, alone; cores // N in each of --workers N)",
    )
    train.add_argument(
        "--checkpoint-every",
        type=positive_int,
        metavar="N",
        help="also save model/ (with history.csv and run.json) crash-safely every N epochs, so that a kill or a "
        "crash loses at most N epochs (overrides the config's `checkpoint_every`; default: only at the end and on "
        "Ctrl-C or SIGTERM)",
    )
    train.add_argument(
        "--engine",
        choices=engines.names(),
        help="training engine (overrides the config's `engine`; default auto, the portable engine; with --resume, "
        "default: the one the model was trained with)",
    )
    _add_verbose_argument(train, default=1, two="one line per epoch")
    train.set_defaults(func=cmd_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="loss and metrics of a saved model on a dataset",
        description="Evaluate a saved model directory on a dataset.",
    )
    evaluate.add_argument("model", metavar="MODEL", help=f"saved model directory, or {RUN_FOLDER}")
    evaluate.add_argument(
        "--data",
        required=True,
        help="'fashion-mnist[:test|:train]', a .npz with x and y, or a folder of class sub-folders of images (read "
        "at the model's input size, labelled by its classes)",
    )
    evaluate.add_argument(
        "--batch-size",
        type=positive_int,
        default=100,
        help="examples evaluated at a time (default: 100)",
    )
    _add_verbose_argument(evaluate, default=0, two="one line with the figures")
    _add_engine_argument(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    predict = commands.add_parser(
        "predict",
        help="classify a .npy batch, an image or a folder of images",
        description="Run a saved model directory or .onnx file on an input.",
    )
    predict.add_argument("model", metavar="MODEL", help=f"saved model directory ({RUN_FOLDER}) or .onnx file")
    predict.add_argument(
        "--input",
        required=True,
        help=f"a .npy array (one example or a batch), a .npz of one array per model input named after it (a model "
        f"of several inputs), an image ({', '.join(IMAGE_SUFFIXES)}), grey, RGB or RGBA as the model's input takes "
        "and of its size, or a folder: every image in it, at any depth, in sorted order (resized to the model's "
        "size as image_dataset_from_directory does), one line each, named by its path in the folder",
    )
    predict.set_defaults(func=cmd_predict)

    export = commands.add_parser(
        "export",
        help="write a saved model as one inference .onnx file",
        description="Export a saved model directory to a single .onnx file.",
    )
    export.add_argument("model", metavar="MODEL", help=f"saved model directory, or {RUN_FOLDER}")
    export.add_argument("out", metavar="OUT.onnx", help="the .onnx file to write")
    export.add_argument("--opset", type=positive_int, help="ONNX opset of the file (default: the model's)")
    _add_ir_version_argument(export)
    _add_engine_argument(export)
    export.add_argument(
        "--merge-adapters",
        action="store_true",
        help="fold LoRA adapters (onnxtrain.lora, finetune --lora) into their weights: a model of the original's size",
    )
    export.add_argument("--overwrite", action="store_true", help="replace OUT.onnx if it exists")
    export.set_defaults(func=cmd_export)

    artifacts = commands.add_parser(
        "artifacts",
        help="ONNX Runtime training artifacts for other languages",
        description="Write training_model.onnx, eval_model.onnx, optimizer_model.onnx "
        "and checkpoint for ORT training in C, C++, C#, Java or Python.",
    )
    artifacts.add_argument(
        "source", metavar="CONFIG|MODEL", help=f"model config (.toml/.json) or saved model directory (or {RUN_FOLDER})"
    )
    artifacts.add_argument(
        "outdir",
        metavar="OUTDIR",
        help="folder to write them into: new, empty, or holding nothing but artifacts onnxtrain wrote",
    )
    artifacts.add_argument("--opset", type=positive_int, help="ONNX opset (default: the model's, or 17)")
    _add_ir_version_argument(artifacts)
    artifacts.add_argument("--overwrite", action="store_true", help="replace artifacts already in OUTDIR")
    artifacts.set_defaults(func=cmd_artifacts)

    summary = commands.add_parser(
        "summary",
        help="layers, inputs/outputs, opsets, parameters, file size",
        description="Describe a saved model directory or any .onnx file.",
    )
    summary.add_argument(
        "model", metavar="MODEL|file.onnx", help=f"saved model directory ({RUN_FOLDER}) or any .onnx file"
    )
    summary.set_defaults(func=cmd_summary)
    add_bundle_command(commands)
    add_finetune_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what `train --workers N` runs in each process
    try:
        return int(args.func(args))
    except KeyboardInterrupt:  # (train saves what was trained first; SIGTERM ends it as Ctrl-C does)
        status = stop_status() if args.command == "train" else SIGINT_STATUS
        print(f"onnxtrain {args.command}: {stop_name() if args.command == 'train' else 'interrupted'}", file=sys.stderr)
        return status
    except BrokenPipeError:  # `onnxtrain summary m | head`: the reader left; exit quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (OnnxtrainError, OSError, ValueError) as e:
        if args.traceback:
            raise
        message = in_cli_words(" ".join(error_text(e).split()) or type(e).__name__, getattr(args, "resume", None))
        print(f"onnxtrain {args.command}: error: {message}", file=sys.stderr)
        return 1
