"""A loaded model compiled with the settings its save holds (`compile_loaded`): its optimizer, resumed from the
saved optimizer state where there is one, its loss (each output's, for a model of several), its metrics and its
engine, each replaced by what the caller passes instead; and the loss the save was trained with (`trained_loss`)."""

from __future__ import annotations

import hashlib
import inspect
import warnings
from pathlib import Path
from typing import Any

from onnxtrain import _ort_training, engines, losses, metrics, model_files, optimizers
from onnxtrain._checkpoint_check import check_checkpoint
from onnxtrain._config_entries import config_entry, shown_entry
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelFileError,
    OnnxtrainError,
    RuntimeSetupError,
    UnknownIdentifierError,
)
from onnxtrain.graph import DEFAULT_IR_VERSION, DEFAULT_OPSET, check_opset_and_ir
from onnxtrain.losses import Loss
from onnxtrain.model import Model
from onnxtrain.multi_output import OutputLosses


def _saved_loss(config: Any) -> Loss:
    """The loss a save's compile settings hold: one loss, or a model of several outputs' `OutputLosses`."""
    if isinstance(config, dict) and config.get("name") == OutputLosses.name:
        return OutputLosses.from_config(config)
    return losses.get(config)


def _is_output_losses(config: Any) -> bool:
    """Whether a saved loss is a model of several outputs' (`OutputLosses`, each output's metrics inside it)."""
    return isinstance(config, dict) and config.get("name") == OutputLosses.name


def _saved_output_losses(
    config: dict[str, Any], config_path: Path, given_metrics: list[str], compile_options: dict[str, Any]
) -> dict[str, Any]:
    """compile's arguments from the saved losses of a model of several outputs: the `OutputLosses` itself; or, where
    the caller passes metrics (metrics=, weighted_metrics=), each output's loss, loss weight and the metrics not
    given (keyed by output name), so the given ones replace the saved, unread, as for a model of one output."""
    outputs = config.get("outputs")
    if not given_metrics:
        if isinstance(outputs, list):
            for index, output in enumerate(outputs):
                for kind in ("metrics", "weighted_metrics"):
                    listed = output.get(kind, []) if isinstance(output, dict) else []
                    if isinstance(listed, list):  # (what is not a list, OutputLosses refuses)
                        _rebuilt_metrics(listed, config_path, f"compile.loss.outputs[{index}].{kind}", kind)
        return {"loss": OutputLosses.from_config(config)}
    without = {**config, "outputs": [{**o, "metrics": [], "weighted_metrics": []} for o in outputs or []]}
    own = OutputLosses.from_config(without)
    arguments: dict[str, Any] = {"loss": {spec.name: spec.loss for spec in own.outputs}}
    if "loss_weights" not in compile_options:
        arguments["loss_weights"] = {spec.name: spec.weight for spec in own.outputs}
    for kind in ("metrics", "weighted_metrics"):
        if kind not in given_metrics and not (kind == "metrics" and "metric" in given_metrics):
            arguments[kind] = {str(o["name"]): o.get(kind, []) for o in outputs or []}
    return arguments


def trained_loss(config: dict[str, Any]) -> Loss | None:
    """The loss the save was compiled with, or None (never compiled, or an entry compile=True would refuse)."""
    settings = config.get("compile")
    try:
        return _saved_loss(settings["loss"]) if isinstance(settings, dict) and "loss" in settings else None
    except (OnnxtrainError, TypeError, ValueError):
        return None


def _rebuilt_metrics(listed: list[Any], config_path: Path, entry: str, argument: str) -> list[Any]:
    """The metrics a save lists (`metrics.named` of each entry).

    Raises:
        ModelFileError: for an entry that names a metric onnxtrain does not know (a metric of one's own: a save names
            a Metric subclass or a function but does not hold its code), saying how to load the model.
    """
    rebuilt = []
    for index, given in enumerate(listed):
        try:
            rebuilt.append(metrics.named(given))
        except UnknownIdentifierError as e:
            raise ModelFileError(_own_metric_message(config_path, f"{entry}[{index}]", given, argument)) from e
    return rebuilt


def _own_metric_message(config_path: Path, entry: str, given: Any, argument: str) -> str:
    text = shown_entry(given)
    config = given.get("config") if isinstance(given, dict) else None
    if isinstance(config, dict) and given.get("class_name") == "MeanMetricWrapper":
        what = f"the metric function {config.get('fn')!r}"
    elif isinstance(given, dict):
        what = f"the metric class {given.get('class_name')!r}"
    else:
        what = f"the metric {given!r}"
    directory = str(config_path.parent)
    return (
        f"{directory} was compiled with {what} ({entry} = {text}), which is neither one of onnxtrain's metrics nor "
        "defined here: a metric of your own (a Metric subclass or a metric function) is saved by its name, not with "
        "its code. Define or import the Metric subclass before loading (it is found by its name then), register a "
        "metric function with @onnxtrain.metrics.register, or pass them: load_model("
        f"{directory!r}, custom_objects={{...}}), or load_model({directory!r}, {argument}=[...]) with your metrics "
        f"as compile took them (e.g. {argument}=[R2()]); or load_model({directory!r}, compile=False) for the model "
        "alone, then compile() it."
    )


def _check_state_engine(saved: str, wanted: str) -> None:
    """Refuse to resume one engine's optimizer state with another: each engine writes its own checkpoint format."""
    if saved == engines.AUTO or engines.resolve(wanted) == engines.resolve(saved):
        return
    raise InvalidArgumentError(
        f"The save holds the {engines.resolve(saved)} engine's optimizer state, which the "
        f"{engines.resolve(wanted)} engine cannot read. Load with engine={engines.resolve(saved)!r} to resume "
        f"exactly, or pass optimizer=... as well to continue with engine={wanted!r} and a fresh optimizer."
    )


def _engine_here(saved_engine: str, resume: bool, directory: Path) -> str:
    """The engine to compile a loaded model with: the saved one, or the portable engine where the saved one is
    ort-training and this onnxruntime has no training API. Both compute the same steps; only ORT's own optimizer
    state cannot move, so resuming it needs the training build or an explicit fresh optimizer.
    """
    if saved_engine != "ort-training" or _ort_training.training_available():
        return saved_engine
    if resume:
        raise RuntimeSetupError(
            f"{directory} was trained with the ort-training engine and saved with its optimizer state, which only an "
            "ONNX Runtime training build reads; the installed onnxruntime is inference-only. Load it with "
            'load_model(..., engine="portable", optimizer=...) to continue with a fresh optimizer, or install '
            "`onnxtrain[cpu]` to resume exactly."
        )
    warnings.warn(
        f"{directory} was trained with the ort-training engine, which the installed (inference-only) onnxruntime "
        "cannot run: it is compiled with the portable engine, which computes the same steps.",
        UserWarning,
        stacklevel=5,  # the caller of load_model (<- _load <- compile_loaded <- _engine_here)
    )
    return "portable"


def compile_loaded(
    model: Model,
    config: dict[str, Any],
    config_path: Path,
    checkpoint: bytes | None,
    checkpoint_path: Path,
    device: str,
    compile_options: dict[str, Any],
) -> None:
    resume = bool(config.get("optimizer_state_saved")) and "optimizer" not in compile_options
    if resume and checkpoint is None:
        raise ModelFileError(
            f"{checkpoint_path} is missing although config.json says the optimizer state was saved. "
            "Load with load_model(..., optimizer=...) to start a fresh optimizer, or save the model again."
        )
    expected_sha256 = config.get("checkpoint_sha256")
    if (
        resume
        and checkpoint is not None
        and expected_sha256 is not None
        and hashlib.sha256(checkpoint).hexdigest() != expected_sha256
    ):
        raise ModelFileError(
            f"Resuming from the optimizer state of {checkpoint_path} failed: its SHA-256 differs from the one "
            "config.json recorded at save time, so the checkpoint is damaged. Load with load_model(..., "
            "optimizer=...) to start a fresh optimizer from the weights in model.onnx, or save the model again."
        )
    if resume and checkpoint is not None:  # from the arrays' headers, before the engine allocates any
        check_checkpoint(checkpoint, model.get_weights(), checkpoint_path)
    settings = config["compile"]
    unusable = f"{config_path} has compile settings that cannot be used"
    # An optimizer, loss, metric(s) or engine the caller passes replaces the saved one, which is then not read:
    # load_model(..., optimizer=...) is the way round a damaged saved optimizer, and metric= (or metrics=) alone
    # must not meet the saved metrics= in compile().
    saved: dict[str, Any] = {}
    if "optimizer" not in compile_options:
        with config_entry(unusable, "compile.optimizer", settings.get("optimizer")):
            saved["optimizer"] = optimizers.get(settings["optimizer"])
    given_metrics: list[str] = [name for name in ("metric", "metrics", "weighted_metrics") if name in compile_options]
    if "loss" not in compile_options:
        with config_entry(unusable, "compile.loss", settings.get("loss")):
            if _is_output_losses(settings["loss"]):
                saved.update(_saved_output_losses(settings["loss"], config_path, given_metrics, compile_options))
            else:
                saved["loss"] = _saved_loss(settings["loss"])
    if "metric" not in compile_options and "metrics" not in compile_options and "metrics" not in saved:
        saved_metrics = settings.get("metrics", [])
        with config_entry(unusable, "compile.metrics", saved_metrics):
            if not isinstance(saved_metrics, list):
                raise InvalidTypeError(f"metrics must be a list. Found: {type(saved_metrics).__name__}")
            # Each by the name it was compiled with, its key in the logs ("acc"; a save from before kept the
            # Metrics value, "accuracy", which reads back the same way), or by Keras' {"class_name", "config"}
            # where it has arguments (Precision(top_k=2), AUC(curve="PR")).
            saved["metrics"] = _rebuilt_metrics(saved_metrics, config_path, "compile.metrics", "metrics")
    if "weighted_metrics" not in compile_options and "weighted_metrics" in settings and "weighted_metrics" not in saved:
        saved_weighted = settings["weighted_metrics"]
        with config_entry(unusable, "compile.weighted_metrics", saved_weighted):
            if not isinstance(saved_weighted, list):
                raise InvalidTypeError(f"weighted_metrics must be a list. Found: {type(saved_weighted).__name__}")
            saved["weighted_metrics"] = _rebuilt_metrics(
                saved_weighted, config_path, "compile.weighted_metrics", "weighted_metrics"
            )
    with config_entry(unusable):
        if "engine" not in compile_options:
            saved["engine"] = str(settings.get("engine", engines.AUTO))
            if saved["engine"] not in engines.names():
                raise InvalidArgumentError(f"engine must be one of {list(engines.names())}. Found: {saved['engine']!r}")
        check_opset_and_ir(settings.get("opset", DEFAULT_OPSET), settings.get("ir_version", DEFAULT_IR_VERSION))
        learning_rate = config.get("current_learning_rate")
        # (0 too: where a learning-rate schedule, such as Keras' CosineDecay with alpha=0, has come down to it)
        zero = type(learning_rate) in (int, float) and learning_rate == 0
        if learning_rate is not None and not zero and not model_files.is_finite_positive(learning_rate):
            raise InvalidArgumentError(f"current_learning_rate must be a positive number. Found: {learning_rate!r}")
    if "engine" in saved:
        saved["engine"] = _engine_here(saved["engine"], resume, config_path.parent)
    epochs_trained: int = config.get("epochs_trained", 0)  # checked by _check_saved_values
    options = {
        **saved,
        "opset": settings.get("opset", DEFAULT_OPSET),
        "ir_version": settings.get("ir_version", DEFAULT_IR_VERSION),
        "device": device,
        **compile_options,
    }
    if resume:
        _check_state_engine(str(settings.get("engine", engines.AUTO)), str(options.get("engine", engines.AUTO)))
    try:
        # compile's defaults for what is not given; an option compile does not take raises compile's TypeError.
        signature = inspect.signature(model.compile)
        arguments = signature.bind(**options)
        arguments.apply_defaults()
        named = {  # (compile's **keywords, which refuse what it does not take, are empty: `_check_compile_options`)
            name: value
            for name, value in arguments.arguments.items()
            if signature.parameters[name].kind is not inspect.Parameter.VAR_KEYWORD
        }
        model._compile(**named, resume=checkpoint if resume else None)
    except OnnxtrainError:
        raise
    except Exception as e:  # ORT's own exception types: a damaged checkpoint is the likely cause
        if not resume:
            raise
        raise ModelFileError(
            f"Compiling the loaded model with the optimizer state of {checkpoint_path} failed "
            f"({type(e).__name__}: {str(e).strip()[:300]}). The checkpoint may be damaged: load with "
            "load_model(..., optimizer=...) to start a fresh optimizer, or save the model again."
        ) from e
    trainer = model._trainer
    assert trainer is not None
    trainer.epochs_trained = epochs_trained
    if resume and learning_rate is not None:
        trainer.engine.learning_rate = float(learning_rate)
