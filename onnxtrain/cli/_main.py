"""The `onnxtrain` command line: train, evaluate, predict, export, artifacts, summary, bundle and finetune.

Every sub-command has --help; bad input ends with one line on stderr, `onnxtrain <command>: error: ...`, and a
non-zero exit status (2 for bad arguments, 1 for anything else, 130 when interrupted, 143 when `train` is ended
by SIGTERM). The train command lives in
`_train`, a run's config and output folder in `_run_config`; what the commands read (datasets, inputs, saved
models) in `_data`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from onnxtrain import engines
from onnxtrain._artifacts_folder import ORT_TRAINING_FILES, check_artifacts_folder
from onnxtrain.cli._advice import in_cli_words
from onnxtrain.cli._bundle import add_bundle_command
from onnxtrain.cli._config_model import build_model, compile_settings
from onnxtrain.cli._data import (
    IMAGE_SUFFIXES,
    LISTED_ENTRIES,
    SAVED_MODEL,
    DatasetLoader,
    check_saved_model,
    load_compiled,
    naming_the_option,
    read_input,
    refuse_several_outputs,
    run_model_folder,
    saved_model_dir,
)
from onnxtrain.cli._finetune import add_finetune_command
from onnxtrain.cli._run_config import (
    EXAMPLE_HELP,
    EXAMPLES,
    positive_int,
    read_config,
)
from onnxtrain.cli._stopping import SIGINT_STATUS, stop_name, stop_status
from onnxtrain.cli._train import cmd_train, writing_mode
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, OnnxtrainError, OpsetTooOldError, listing
from onnxtrain.model_files import CONFIG_FILE, MODEL_FILE, inference_opset_and_ir
from onnxtrain.model_files import read_config as read_saved_config

if TYPE_CHECKING:
    from onnxtrain.inference import InferenceModel
    from onnxtrain.sequential import Sequential


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `onnxtrain train: error: ... (see onnxtrain train --help)`."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --- evaluate / predict -----------------------------------------------------------------------------------
def cmd_evaluate(args: argparse.Namespace) -> int:
    directory = saved_model_dir(args.model, SAVED_MODEL)
    refuse_several_outputs(read_saved_config(directory / CONFIG_FILE), args.model, "evaluate", "evaluate")
    data = DatasetLoader(Path.cwd()).load(args.data, "--data", "test")
    with load_compiled(directory, args.engine, "evaluate") as model:
        try:
            result = model.evaluate(data, batch_size=args.batch_size, verbose=args.verbose)
        except (InvalidArgumentError, InvalidTypeError) as e:
            raise naming_the_option(e, "--data", args.data) from e
    print(f"{result}  ({len(data)} examples)")
    return 0


def _onnx_file(path: str) -> Path:
    target = Path(path)
    if target.is_dir():
        target = target / MODEL_FILE
    if not target.is_file():
        raise InvalidArgumentError(f"'{path}' is neither an .onnx file nor a saved model directory")
    return target


def cmd_predict(args: argparse.Namespace) -> int:
    from onnxtrain.inference import InferenceModel

    with InferenceModel.load(args.model) as model:
        x = read_input(Path(args.input), model.input_shape)
        if len(_predicted_outputs(model.output_names)) > 1:
            return _predict_several(model, x, args)
        try:
            try:
                probabilities = model.predict_softly(x)
            except InvalidArgumentError:  # a regression model (or bad data, which predict refuses again)
                outputs = np.atleast_2d(model.predict(x))
                for i, row in enumerate(outputs.reshape(len(outputs), -1)):
                    print(f"{i}: {np.array2string(row, precision=4)}")
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
            print(f"{i}: {' '.join(classes[b] if classes and b < len(classes) else str(b) for b in best)}")
        return 0
    if model.loss is not None and model.loss.binary:  # each unit a probability of its own (binary cross-entropy)
        for i, row in enumerate(rows):
            if row.size == 1:  # one unit: class 1 where its probability is above one half
                best = int(row[0] > 0.5)
                label = classes[best] if classes and best < len(classes) else f"class {best}"
                print(f"{i}: {label} ({best}) p={row[0] if best else 1 - row[0]:.4f}")
            else:  # several labels at once: each unit's decision and probability
                print(f"{i}: {(row > 0.5).astype(int)} p={np.array2string(row, precision=4)}")
        return 0
    for i, row in enumerate(rows):
        best = int(row.argmax())
        label = classes[best] if classes and best < len(classes) else f"class {best}"
        print(f"{i}: {label} ({best}) p={row[best]:.4f}")
    return 0


PROBABILITIES_SUFFIX = "_probabilities"  # the companion output of a softmax cross-entropy output, in an export


def _predicted_outputs(names: tuple[str, ...]) -> list[str]:
    """The model's own outputs among the graph's `names`: not `probabilities` (of `logits`) nor the
    `<output>_probabilities` companion of an output of a model of several outputs."""
    companions = {f"{name}{PROBABILITIES_SUFFIX}" for name in names} | {"probabilities"}
    return [name for name in names if name not in companions]


def _predict_several(model: InferenceModel, x: np.ndarray, args: argparse.Namespace) -> int:
    """One line per example naming every output: its class and probability where the model gives its
    probabilities (an output trained with softmax cross-entropy), its values otherwise."""
    try:
        outputs = model.predict_outputs(x)
    except (InvalidArgumentError, InvalidTypeError) as e:
        raise naming_the_option(e, "--input", args.input) from e
    names = _predicted_outputs(model.output_names)
    for i in range(len(outputs[names[0]])):
        parts = []
        for name in names:
            probabilities = outputs.get(f"{name}{PROBABILITIES_SUFFIX}")
            if probabilities is not None:
                row = probabilities[i].reshape(-1)
                best = int(row.argmax())
                parts.append(f"{name}: class {best} p={row[best]:.4f}")
            else:
                parts.append(f"{name}: {np.array2string(outputs[name][i].reshape(-1), precision=4)}")
        print(f"{i}: {'; '.join(parts)}")
    return 0


# --- export / artifacts / summary -------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    directory = saved_model_dir(args.model, SAVED_MODEL)
    if Path(args.out).is_dir():  # before export's own refusal, which speaks of the Python API (save())
        raise InvalidArgumentError(
            f"export expects OUT.onnx, a file path such as 'model.onnx'. Received: '{args.out}', which is a folder"
        )
    if Path(args.out).exists() and not args.overwrite:
        raise InvalidArgumentError(f"'{args.out}' already exists. Pass --overwrite to replace it.")
    # Compiled, not just the weights: the loss decides the `probabilities` output and the loss metadata.
    with load_compiled(directory, args.engine, "export") as model:
        try:
            path = model.export(
                args.out,
                opset=args.opset,
                ir_version=args.ir_version,
                writing_mode=writing_mode(args),
                merge_adapters=args.merge_adapters,
            )
        except OpsetTooOldError as e:
            raise _naming_opset(e, args.opset) from e
        except InvalidArgumentError as e:
            raise _naming_versions(e) from e
    print(f"Wrote {path} ({_size(path)})")
    return 0


def _naming_versions(error: InvalidArgumentError) -> InvalidArgumentError:
    """`error` about export's `opset=` or `ir_version=` (`graph.check_opset_and_ir`) in the command's option names;
    any other error as it is."""
    text = str(error)
    for argument, option in (("opset", "--opset"), ("ir_version", "--ir-version")):
        if text.startswith(f"{argument} expects"):
            return InvalidArgumentError(
                option + text[len(argument) :].replace(f"Received: {argument}=", f"Received: {option} ")
            )
    return error


def _naming_opset(error: OpsetTooOldError, opset: int | None) -> InvalidArgumentError:
    """`error`, whose advice names the Python argument (`opset=21`), as the command's option `--opset`."""
    return InvalidArgumentError(
        f"--opset {opset} is older than the model's imported graph (opset {error.required}), which is never "
        f"downgraded. Pass --opset {error.required} or newer, or leave --opset out: the model's opset is the default."
    )


def cmd_artifacts(args: argparse.Namespace) -> int:
    from onnxtrain._ort_training import require_training_api
    from onnxtrain.artifacts import generate_artifacts

    source = Path(args.source)
    # A file, or a folder of other files (a saved model), is refused with or without --overwrite.
    check_artifacts_folder(args.outdir, "artifacts OUTDIR")
    existing = [name for name in ORT_TRAINING_FILES if (Path(args.outdir) / name).exists()]
    if existing and not args.overwrite:
        raise InvalidArgumentError(f"'{args.outdir}' already holds {existing}. Pass --overwrite to replace them.")
    require_training_api()  # an inference-only onnxruntime cannot write them: say so before building anything
    model: Sequential
    if source.suffix.lower() in (".toml", ".json"):
        config = read_config(source)
        model, settings = build_model(config), compile_settings(config)
        loss, optimizer = settings["loss"], settings["optimizer"]
    else:
        directory = saved_model_dir(args.source, f"a model config (.toml/.json) or {SAVED_MODEL}")
        model, loss, optimizer = load_compiled(directory, None, "artifacts"), None, None
    with model:
        # An --opset alone gets the oldest IR version that can hold it, as export does.
        opset, ir_version = inference_opset_and_ir(model.graph.layers, model._compiled, args.opset, args.ir_version)
        # A failure leaves no folder behind, and ORT's refusals are explained (an opset newer than it knows...).
        try:
            artifacts = generate_artifacts(model, loss, optimizer, args.outdir, opset=opset, ir_version=ir_version)
        except OpsetTooOldError as e:
            raise _naming_opset(e, args.opset) from e
    print(f"Wrote training artifacts to {artifacts.directory}/:")
    for path in (
        artifacts.training_model,
        artifacts.eval_model,
        artifacts.optimizer_model,
        artifacts.checkpoint,
    ):
        print(f"  {path.name:<22} {_size(path)}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from onnxtrain.loading import load_model

    target = Path(args.model)
    if not os.path.lexists(target):
        raise InvalidArgumentError(
            f"'{args.model}' does not exist: summary takes a saved model directory or an .onnx file"
        )
    target = run_model_folder(target) if target.is_dir() else target
    if target.is_dir():
        check_saved_model(target, "a saved model directory or an .onnx file")
        with load_model(target, compile=False) as model:
            model.summary()
        config = read_saved_config(target / CONFIG_FILE)
        settings = config.get("compile") or {}
        if settings:
            optimizer = settings["optimizer"]
            print(
                f"Compiled with: {optimizer.get('name')} (learning rate {optimizer.get('learning_rate')}), "
                f"loss {settings['loss'].get('name')}, metrics {settings.get('metrics')}"
            )
        print(f"Epochs trained: {config.get('epochs_trained', 0)}")
        files = [f"{p.name} {_size(p)}" for p in sorted(target.iterdir()) if p.is_file()]
        print(f"Files: {listing(files, LISTED_ENTRIES, quote=False)}")
    _print_onnx_summary(_onnx_file(str(target)))
    return 0


def _print_onnx_summary(path: Path) -> None:
    import onnx

    from onnxtrain._onnx_file import read_onnx_model

    proto = read_onnx_model(path, f"'{path}'")  # the gate: external data only from inside its folder, sizes checked
    graph = proto.graph
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in proto.opset_import)
    params = sum(int(np.prod(t.dims)) for t in graph.initializer)
    print(f"ONNX file: {path} ({_size(path)})")
    print(f"IR version {proto.ir_version}; opsets: {opsets}; producer: {proto.producer_name} {proto.producer_version}")
    for title, values in (("Inputs", graph.input), ("Outputs", graph.output)):
        print(f"{title}:")
        for value in values:
            tensor = value.type.tensor_type
            dims = [d.dim_param or (d.dim_value if d.HasField("dim_value") else "?") for d in tensor.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else "?"
            print(f"  {value.name:<16} {dtype} [{', '.join(map(str, dims))}]")
    counts: dict[str, int] = {}
    for node in graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    print(f"Parameters: {params:,} in {len(graph.initializer)} initializers")
    print(f"Nodes: {len(graph.node)} ({', '.join(f'{op} {n}' for op, n in sorted(counts.items()))})")
    for prop in proto.metadata_props:
        print(f"  metadata {prop.key}: {prop.value}")
    if not any(prop.key == "onnxtrain.version" for prop in proto.metadata_props):  # not one onnxtrain wrote
        from onnxtrain.foreign._summary import print_imported

        print_imported(proto)


def _size(path: Path) -> str:
    size = float(path.stat().st_size)
    for unit in ("B", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""  # unreachable


# --- parser -----------------------------------------------------------------------------------------------
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
    )
    train.add_argument("config", nargs="?", help="model config, .toml or .json (see examples/fashion_mlp.toml)")
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
        help="with --resume: the training data, 'fashion-mnist[:train]' or a .npz with x and y (default: the "
        "[data] of the run.json beside DIR)",
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
    evaluate.add_argument("model", metavar="MODEL", help="saved model directory")
    evaluate.add_argument("--data", required=True, help="'fashion-mnist[:test|:train]' or a .npz with x and y")
    evaluate.add_argument("--batch-size", type=positive_int, default=100)
    _add_verbose_argument(evaluate, default=0, two="one line with the figures")
    _add_engine_argument(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    predict = commands.add_parser(
        "predict",
        help="classify a .npy batch or an image",
        description="Run a saved model directory or .onnx file on an input.",
    )
    predict.add_argument("model", metavar="MODEL", help="saved model directory or .onnx file")
    predict.add_argument(
        "--input",
        required=True,
        help=f"a .npy array (one example or a batch) or an image ({', '.join(IMAGE_SUFFIXES)}), grey or RGB as the "
        "model's input takes",
    )
    predict.set_defaults(func=cmd_predict)

    export = commands.add_parser(
        "export",
        help="write a saved model as one inference .onnx file",
        description="Export a saved model directory to a single .onnx file.",
    )
    export.add_argument("model", metavar="MODEL", help="saved model directory")
    export.add_argument("out", metavar="OUT.onnx")
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
    artifacts.add_argument("source", metavar="CONFIG|MODEL", help="model config (.toml/.json) or saved model directory")
    artifacts.add_argument("outdir", metavar="OUTDIR")
    artifacts.add_argument("--opset", type=positive_int, help="ONNX opset (default: the model's, or 17)")
    _add_ir_version_argument(artifacts)
    artifacts.add_argument("--overwrite", action="store_true", help="replace artifacts already in OUTDIR")
    artifacts.set_defaults(func=cmd_artifacts)

    summary = commands.add_parser(
        "summary",
        help="layers, inputs/outputs, opsets, parameters, file size",
        description="Describe a saved model directory or any .onnx file.",
    )
    summary.add_argument("model", metavar="MODEL|file.onnx")
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
        message = in_cli_words(" ".join(str(e).split()) or type(e).__name__, getattr(args, "resume", None))
        print(f"onnxtrain {args.command}: error: {message}", file=sys.stderr)
        return 1
