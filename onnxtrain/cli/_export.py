"""`onnxtrain export` and `onnxtrain artifacts`: a saved model as one inference .onnx file, and ONNX Runtime's training
artifacts of a model config or a saved model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from onnxtrain._artifacts_folder import ORT_TRAINING_FILES, check_artifacts_folder
from onnxtrain.cli._config_model import build_model, compile_settings, refuse_training_nothing
from onnxtrain.cli._data import SAVED_MODEL, load_compiled, saved_model_dir
from onnxtrain.cli._output_folder import check_writable_place
from onnxtrain.cli._run_config import read_config
from onnxtrain.cli._summary import _size
from onnxtrain.cli._train import writing_mode
from onnxtrain.errors import InvalidArgumentError, OpsetTooOldError
from onnxtrain.model_files import inference_opset_and_ir

if TYPE_CHECKING:
    from onnxtrain.sequential import Sequential


def cmd_export(args: argparse.Namespace) -> int:
    directory = saved_model_dir(args.model, SAVED_MODEL)
    if Path(args.out).is_dir():  # before export's own refusal, which speaks of the Python API (save())
        raise InvalidArgumentError(
            f"export expects OUT.onnx, a file path such as 'model.onnx'. Received: '{args.out}', which is a folder"
        )
    if Path(args.out).exists() and not args.overwrite:
        raise InvalidArgumentError(f"'{args.out}' already exists. Pass --overwrite to replace it.")
    check_writable_place(Path(args.out), "OUT.onnx", "exported")  # before the model loads: one refusal, said once
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
        # Nothing to train: ONNX Runtime has no artifacts to build. Refused here in the command's words (the config
        # or saved model, TOML's `trainable = false`) before generate_artifacts' own refusal, which speaks Python.
        refuse_training_nothing(model, args.source, from_config=source.suffix.lower() in (".toml", ".json"))
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
