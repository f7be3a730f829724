"""`load_model`: a saved model directory (or the output folder of a training run, holding it as model/) back as a
compiled `Sequential`, ready to continue training.

It sits above `onnxtrain.model` (which never imports it): the files' formats and checks are `onnxtrain.model_files`;
load_model's `custom_objects` are `_custom_objects`, compiling with the saved settings `_saved_compile`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from onnxtrain import engines, initializers, model_files
from onnxtrain._checkpoint_check import checkpoint_limit
from onnxtrain._config_entries import config_entry
from onnxtrain._custom_objects import checked_custom_objects, resolving
from onnxtrain._keyword_arguments import shown_value
from onnxtrain._saved_compile import compile_loaded, trained_loss
from onnxtrain._saved_model_folder import saved_model_folder
from onnxtrain._spelling import KOTLINDL_ARGUMENTS, LOADED_MODEL_SETTINGS, setting_hint, spelling_hint
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelFileError
from onnxtrain.layers import Layer
from onnxtrain.model import Model
from onnxtrain.model_files import CHECKPOINT_FILE, CONFIG_FILE, MODEL_FILE
from onnxtrain.multi_output import OutputLosses
from onnxtrain.saving import reading_model
from onnxtrain.sequential import Sequential


# Returns a Model (a Sequential for a Sequential's save); typed Any until the CLI's annotations say Model.
def load_model(
    directory: str | Path,
    compile: bool = True,
    device: str = "cpu",
    custom_objects: Mapping[str, Any] | None = None,
    **compile_options: Any,
) -> Any:
    """Rebuild a saved model; with `compile=True` (default) it is compiled with its saved settings.

    `directory` is the folder `model.save` wrote, or the output folder of `onnxtrain train` (runs/x, whose model/
    holds the saved model), as the CLI's commands take either.

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
        InvalidTypeError / InvalidArgumentError: a keyword `compile` does not take (KotlinDL's camelCase named in
            Python's spelling), an unknown engine, or a `custom_objects` entry that is no layer, loss or metric
            class (checked before anything is read).
        ModelFileError: the directory or one of its files is missing, unreadable or not an onnxtrain model.
        RuntimeSetupError: the saved optimizer state is ONNX Runtime training's, which only its training build
            reads, and this install has none: pass `optimizer=...` to start a fresh optimizer instead.
    """
    _check_compile_options(compile_options)
    own = checked_custom_objects(custom_objects)
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
    if isinstance(directory, str | Path) and str(directory):
        directory = saved_model_folder(Path(directory))
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
    with resolving(own, config, config_path):
        unbuildable = f"{config_path} describes a model that cannot be rebuilt"
        model: Model
        # model.onnx passed the gate: a layer config.json sizes otherwise is refused before its weights are allocated.
        with initializers.weights_declared_by({name: w.shape for name, w in weights.items()}, files[MODEL_FILE]):
            if config.get("class_name") == "Functional":  # a Model's: Keras' layout of layers and their calls
                with config_entry(unbuildable):
                    model = Model.from_config(config)
            else:
                layers = []
                for index, entry in enumerate(config["layers"]):
                    with config_entry(unbuildable, f"layers[{index}]", entry):
                        layers.append(Layer.from_config(entry))
                with config_entry(unbuildable):
                    model = Sequential(layers, name=str(config.get("name", "sequential")), seed=config["seed"])
        model.class_names = tuple(config["class_names"]) if config.get("class_names") else None
        model.input_scale = float(config.get("input_scale", 1.0))
        loss = trained_loss(config)
        if isinstance(loss, OutputLosses):  # a save of a dict of outputs from before they were sorted lists its order
            loss = loss.ordered_as(model.output_names)
        model.trained_loss = loss
        model_files.check_weights(
            model.get_weights(), weights, files[MODEL_FILE], model.graph.trainable_params_by_name()
        )
        # Last for a file that parses: one holding another model already got a more precise message above.
        model_files.check_model_bytes(model_bytes, config, files[MODEL_FILE])
        model.set_weights({name: weights[name] for name in model.get_weights()})
        settings = config.get("compile")
        if compile and settings:
            compile_loaded(model, config, config_path, checkpoint, checkpoint_path, device, compile_options)
        return model


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
        own = [name for name in inspect.signature(load_model).parameters if name != "compile_options"]
        hint = spelling_hint(unknown, [*own, *known], KOTLINDL_ARGUMENTS) + setting_hint(unknown, LOADED_MODEL_SETTINGS)
        received = ", ".join(f"{name}={shown_value(options[name])}" for name in unknown)
        raise InvalidTypeError(
            f"load_model() got unexpected keyword argument{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}.{hint} It takes "
            f"{', '.join(own[:-1])} and {own[-1]}, and compile()'s options: {known}. Received: {received}"
        )
    engine = options.get("engine")
    if engine is not None and engine not in engines.names():
        raise InvalidArgumentError(
            f"load_model(engine=...) expects one of {list(engines.names())}. Received: engine={engine!r}"
        )
