"""`load_model`: a saved model directory back as a compiled `Sequential`, ready to continue training.

It sits above `onnxtrain.model` (which never imports it): the files' formats and checks are `onnxtrain.model_files`.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from onnxtrain import _ort_training, engines, initializers, losses, metrics, model_files, optimizers
from onnxtrain._checkpoint_check import check_checkpoint, checkpoint_limit
from onnxtrain._metric_base import Metric
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelFileError,
    OnnxtrainError,
    RuntimeSetupError,
    UnknownIdentifierError,
)
from onnxtrain.graph import DEFAULT_IR_VERSION, DEFAULT_OPSET, check_opset_and_ir
from onnxtrain.layers import Layer
from onnxtrain.layers._lambda import _FUNCTIONS as LAMBDA_FUNCTIONS
from onnxtrain.losses import Loss
from onnxtrain.model import Model
from onnxtrain.model_files import CHECKPOINT_FILE, CONFIG_FILE, MODEL_FILE
from onnxtrain.multi_output import OutputLosses
from onnxtrain.saving import reading_model
from onnxtrain.sequential import Sequential

# What rebuilding a layer, loss, optimizer or metric from a damaged config.json raises.
_REBUILD_ERRORS = (OnnxtrainError, AttributeError, KeyError, TypeError, ValueError, OverflowError, MemoryError)


# Returns a Model (a Sequential for a Sequential's save); typed Any until the CLI's annotations say Model.
def load_model(
    directory: str | Path,
    compile: bool = True,
    device: str = "cpu",
    custom_objects: Mapping[str, Any] | None = None,
    **compile_options: Any,
) -> Any:
    """Rebuild a saved model; with `compile=True` (default) it is compiled with its saved settings.

    When the model was saved with `save_optimizer_state=True`, training resumes exactly where it stopped: the
    optimizer's moments, step and learning rate and the epoch count are restored, so fit(2) + save + load +
    fit(1) equals fit(3). Passing `optimizer=...` starts a fresh optimizer instead; other `compile_options`
    (threads, artifacts_dir, metrics...) are passed to `compile`. With `compile=False` the weights, class
    names and input scale are restored; compile() later starts a fresh optimizer at epoch 1.

    A metric of one's own (a `Metric` subclass, a metric function) is saved by name, not with its code: register it
    with `@onnxtrain.metrics.register` before loading, or pass it again (`load_model(d, metrics=[R2()])`, also for
    each output of a model of several, as compile takes them); otherwise load_model says so, naming the metric.

    A layer of one's own is saved by its class name ("module.ClassName", "__main__.Twice" for one defined in a
    script), not with its code: the process that loads it defines or imports the class first, or passes it as
    Keras does, `custom_objects={"Twice": Twice}`, keyed by the name the save uses or by the class name alone. A
    loss (`Loss` subclass, by the name it saved or its class name) or metric (a `Metric` subclass or a function)
    of one's own may be passed there too. They resolve the names of this load only; nothing is registered for
    later loads.

    A model trained with the ort-training engine is compiled with the portable engine, which computes the same
    steps, where the installed onnxruntime has no training API (an inference-only install), with a UserWarning.

    Raises:
        InvalidTypeError / InvalidArgumentError: a keyword `compile` does not take, an unknown engine, or a
            `custom_objects` entry that is no layer, loss or metric class (checked before anything is read).
        ModelFileError: the directory or one of its files is missing, unreadable or not an onnxtrain model.
        RuntimeSetupError: the saved optimizer state is ONNX Runtime training's, which only its training build
            reads, and this install has none: pass `optimizer=...` to start a fresh optimizer instead.
    """
    _check_compile_options(compile_options)
    own = _custom_objects(custom_objects)
    return _load(directory, compile, device, compile_options, own)


def _load(
    directory: str | Path, compile: bool, device: str, compile_options: dict[str, Any], own: dict[str, Any]
) -> Model:
    """`load_model`, with the classes of one's own that `custom_objects` gave (`_custom_objects`)."""
    if isinstance(directory, str | Path) and Path(directory).suffix.lower() == ".onnx" and Path(directory).is_file():
        raise ModelFileError(
            f"'{directory}' is an ONNX file, not a saved model directory: load_model reads the folder save() wrote "
            f"(for a saved model's model.onnx, pass its folder). To train or fine-tune any ONNX model: "
            f"onnxtrain.from_onnx('{directory}')"
        )
    with reading_model(directory) as files:
        for required in (CONFIG_FILE, MODEL_FILE):
            if required not in files:
                raise ModelFileError(
                    f"'{Path(directory)}' is not a saved onnxtrain model: {required} is missing "
                    f"(found: {sorted(files) or 'nothing'})."
                )
        config = model_files.read_config(files[CONFIG_FILE])
        model_files.check_saved_values(config, files[CONFIG_FILE])
        model_bytes = model_files.read_file(files[MODEL_FILE])
        weights = model_files.onnx_weights(model_bytes, files[MODEL_FILE], config)
        limit = checkpoint_limit(weights)
        checkpoint = model_files.read_file(files[CHECKPOINT_FILE], limit) if CHECKPOINT_FILE in files else None
        checkpoint_path = files.get(CHECKPOINT_FILE, Path(directory) / CHECKPOINT_FILE)
    config_path = files[CONFIG_FILE]
    with _resolving(own, config, config_path):
        unbuildable = f"{config_path} describes a model that cannot be rebuilt"
        model: Model
        # model.onnx passed the gate: a layer config.json sizes otherwise is refused before its weights are allocated.
        with initializers.weights_declared_by({name: w.shape for name, w in weights.items()}, files[MODEL_FILE]):
            if config.get("class_name") == "Functional":  # a Model's: Keras' layout of layers and their calls
                with _config_entry(unbuildable):
                    model = Model.from_config(config)
            else:
                layers = []
                for index, entry in enumerate(config["layers"]):
                    with _config_entry(unbuildable, f"layers[{index}]", entry):
                        layers.append(Layer.from_config(entry))
                with _config_entry(unbuildable):
                    model = Sequential(layers, name=str(config.get("name", "sequential")), seed=config["seed"])
        model.class_names = tuple(config["class_names"]) if config.get("class_names") else None
        model.input_scale = float(config.get("input_scale", 1.0))
        model.trained_loss = _trained_loss(config)
        model_files.check_weights(
            model.get_weights(), weights, files[MODEL_FILE], model.graph.trainable_params_by_name()
        )
        # Last for a file that parses: one holding another model already got a more precise message above.
        model_files.check_model_bytes(model_bytes, config, files[MODEL_FILE])
        model.set_weights({name: weights[name] for name in model.get_weights()})
        settings = config.get("compile")
        if compile and settings:
            _compile_loaded(model, config, config_path, checkpoint, checkpoint_path, device, compile_options)
        return model


def _custom_objects(given: Any) -> dict[str, Any]:
    """load_model's `custom_objects`, checked: {name: a Layer, Loss or Metric subclass, or a metric function}.

    Raises:
        InvalidTypeError: not a dict of such, naming the entry.
    """
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise InvalidTypeError(
            'load_model(custom_objects=...) expects a dict {name: class}, e.g. {"Twice": Twice}. Received: '
            f"{type(given).__name__}"
        )
    for name, value in given.items():
        usable = isinstance(value, type) and issubclass(value, Layer | Loss | Metric)
        if not isinstance(name, str) or not (usable or inspect.isfunction(value)):
            raise InvalidTypeError(
                "load_model(custom_objects=...) expects names (str) of layer, loss or metric classes of one's own "
                f"(Layer, Loss or Metric subclasses) or functions (metrics, Lambda layers'). Received: {name!r}: "
                f"{value!r}"
            )
    return dict(given)


@contextlib.contextmanager
def _resolving(own: dict[str, Any], config: dict[str, Any], config_path: Path) -> Iterator[None]:
    """While a model is rebuilt and compiled from `config`, the classes of one's own in `own` resolve the names the
    save gives them, and only then: a layer class under the name it was saved with ("__main__.Twice", found by
    that name or its last part, "Twice"), a loss by the name it saved or its class name, a metric by its key or
    name. A layer class of one's own that nothing resolves is refused here, saying how to pass it.

    Raises:
        ModelFileError: the save names a layer class of one's own that is neither defined nor given.
    """
    layers = {name: cls for name, cls in own.items() if isinstance(cls, type) and issubclass(cls, Layer)}
    added: dict[str, type[Layer]] = {}
    for saved in _saved_class_names(config.get("layers")):
        if saved in Layer.registry:
            continue
        short = saved.rpartition(".")[2]
        cls = layers.get(saved, layers.get(short))
        if cls is not None:
            added[saved] = cls
        elif "." in saved.strip("."):  # a layer of one's own: "module.ClassName"
            module = saved.rpartition(".")[0]
            define = f"Define {short}" if module == "__main__" else f"Import {module} (or define {short})"
            raise ModelFileError(
                f"{config_path} names the layer class {saved!r}, a layer of one's own ({short} of module {module!r}) "
                f"that this process has not defined: a save holds a layer's config, not its code. {define} before "
                f"loading, or pass the class: load_model({str(config_path.parent)!r}, "
                f"custom_objects={{{short!r}: {short}}})."
            )
    # (what @metrics.register records: the table it reads names from; entries added here are removed after the load)
    metric_objects = metrics._REGISTERED.objects
    own_metrics = {
        name: value
        for name, value in own.items()
        if inspect.isfunction(value) or (isinstance(value, type) and issubclass(value, Metric))
    }
    added_metrics = {name: value for name, value in own_metrics.items() if name not in metric_objects}
    added_metrics |= {value.__name__: value for value in own_metrics.values() if value.__name__ not in metric_objects}
    own_losses = {name: cls for name, cls in own.items() if isinstance(cls, type) and issubclass(cls, Loss)}
    # A function may also be a Lambda layer's (found by the name the save keeps: its __name__, or the key given).
    lambda_objects = LAMBDA_FUNCTIONS.objects
    functions = {name: value for name, value in own.items() if inspect.isfunction(value)}
    added_lambdas = {name: value for name, value in functions.items() if name not in lambda_objects}
    added_lambdas |= {value.__name__: value for value in functions.values() if value.__name__ not in lambda_objects}
    Layer.registry.update(added)
    metric_objects.update(added_metrics)
    lambda_objects.update(added_lambdas)
    try:
        with losses.resolving(own_losses):
            yield
    finally:
        for name in added:
            Layer.registry.pop(name, None)
        for name in added_metrics:
            metric_objects.pop(name, None)
        for name in added_lambdas:
            lambda_objects.pop(name, None)


def _saved_class_names(value: Any) -> Iterator[str]:
    """Every class name in a save's layer configs, nested models' and wrapped layers' included."""
    if isinstance(value, list):
        for each in value:
            yield from _saved_class_names(each)
    elif isinstance(value, dict):
        if isinstance(value.get("class_name"), str):
            yield value["class_name"]
        for each in value.values():
            yield from _saved_class_names(each)


def _check_compile_options(options: dict[str, Any]) -> None:
    """Refuse, before anything is read, a keyword that `compile` does not take (a typo such as `optimiser=`) and an
    engine that does not exist: either would otherwise surface deep in the load, blamed on the checkpoint."""
    known = [
        name
        for name, parameter in inspect.signature(Model.compile).parameters.items()
        if name not in ("self", "device") and parameter.kind is not parameter.VAR_KEYWORD
    ]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InvalidTypeError(
            f"load_model() got unexpected keyword argument{'s' if len(unknown) > 1 else ''} {unknown}. It takes "
            f"directory, compile and device, and compile()'s options: {known}."
        )
    engine = options.get("engine")
    if engine is not None and engine not in engines.names():
        raise InvalidArgumentError(
            f"load_model(engine=...) expects one of {list(engines.names())}. Received: engine={engine!r}"
        )


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


def _trained_loss(config: dict[str, Any]) -> Loss | None:
    """The loss the save was compiled with, or None (never compiled, or an entry compile=True would refuse)."""
    settings = config.get("compile")
    try:
        return _saved_loss(settings["loss"]) if isinstance(settings, dict) and "loss" in settings else None
    except (OnnxtrainError, TypeError, ValueError):
        return None


@contextlib.contextmanager
def _config_entry(problem: str, entry: str | None = None, value: Any = None) -> Iterator[None]:
    """Re-raise what rebuilding `entry` of config.json raises as a ModelFileError that names the entry."""
    try:
        yield
    except ModelFileError:
        raise
    except _REBUILD_ERRORS as e:
        cause = str(e) if isinstance(e, OnnxtrainError) else f"{type(e).__name__}: {e}"
        if entry is None:
            raise ModelFileError(f"{problem}: {cause}") from e
        text = json.dumps(value, default=repr)
        text = text if len(text) <= 200 else text[:199] + "…"
        raise ModelFileError(f"{problem}: {entry} = {text}: {cause}") from e


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
    text = json.dumps(given, default=repr)
    text = text if len(text) <= 200 else text[:199] + "…"
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
        "registered: a metric of your own (a Metric subclass or a metric function) is saved by its name, not with "
        f"its code. Load the model with load_model({directory!r}, {argument}=[...]), passing your metrics again as "
        f"compile took them (e.g. {argument}=[R2()]); or register the class or function with "
        "@onnxtrain.metrics.register before loading, which rebuilds it from the save; or load_model("
        f"{directory!r}, compile=False) for the model alone, then compile() it."
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
        stacklevel=4,
    )
    return "portable"


def _compile_loaded(
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
        with _config_entry(unusable, "compile.optimizer", settings.get("optimizer")):
            saved["optimizer"] = optimizers.get(settings["optimizer"])
    given_metrics: list[str] = [name for name in ("metric", "metrics", "weighted_metrics") if name in compile_options]
    if "loss" not in compile_options:
        with _config_entry(unusable, "compile.loss", settings.get("loss")):
            if _is_output_losses(settings["loss"]):
                saved.update(_saved_output_losses(settings["loss"], config_path, given_metrics, compile_options))
            else:
                saved["loss"] = _saved_loss(settings["loss"])
    if "metric" not in compile_options and "metrics" not in compile_options and "metrics" not in saved:
        saved_metrics = settings.get("metrics", [])
        with _config_entry(unusable, "compile.metrics", saved_metrics):
            if not isinstance(saved_metrics, list):
                raise InvalidTypeError(f"metrics must be a list. Found: {type(saved_metrics).__name__}")
            # Each by the name it was compiled with, its key in the logs ("acc"; a save from before kept the
            # Metrics value, "accuracy", which reads back the same way), or by Keras' {"class_name", "config"}
            # where it has arguments (Precision(top_k=2), AUC(curve="PR")).
            saved["metrics"] = _rebuilt_metrics(saved_metrics, config_path, "compile.metrics", "metrics")
    if "weighted_metrics" not in compile_options and "weighted_metrics" in settings and "weighted_metrics" not in saved:
        saved_weighted = settings["weighted_metrics"]
        with _config_entry(unusable, "compile.weighted_metrics", saved_weighted):
            if not isinstance(saved_weighted, list):
                raise InvalidTypeError(f"weighted_metrics must be a list. Found: {type(saved_weighted).__name__}")
            saved["weighted_metrics"] = _rebuilt_metrics(
                saved_weighted, config_path, "compile.weighted_metrics", "weighted_metrics"
            )
    with _config_entry(unusable):
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
