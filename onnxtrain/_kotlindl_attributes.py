"""KotlinDL's names of attributes, as a missing one is refused (`missing_attribute`): Python's spelling of a camelCase
name the object has in snake_case (`model.predictSoftly` is `model.predict_softly`), or what stands for a KotlinDL
name that is more than a case change (`model.use` is `with model:`), one table per kind of object: a model's
(`KOTLINDL_MODEL_ATTRIBUTES`), a model class's (`KOTLINDL_MODEL_CLASS_ATTRIBUTES`, through the metaclass
`HintingClassAttributes`: `Model.of`, `Sequential.loadDefaultModelConfiguration`), a History's, a Dataset's, and the
package's own names (`missing_module_attribute`: `onnxtrain.Functional`). A layer's are `layers/_attribute_hints.py`'s.
No imports of the package's data modules: the models, datasets and the package use it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from onnxtrain._registry import snake_case

_FUNCTIONAL_API = 'docs/kotlindl.md, "The Functional API"'

KOTLINDL_MODEL_ATTRIBUTES = {
    "layers_by_name": "model.get_layer(name), or {layer.name: layer for layer in model.layers}",
    "is_model_compiled": "model.is_compiled",
    "input_dimensions": "model.input_shape",
    "use": "`with model: ...` (the model is closed at the block's end), or model.close() when done with it",
    "init": (
        "nothing: a model's weights are drawn when it is made (from its seed) and compile() opens its engine; "
        "leave it out (for fresh weights, make the model again)"
    ),
    "predict_and_get_activations": (
        "model.predict(x) for the prediction, and for the activations a model of the same layers that outputs "
        "them: Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers[1:]]).predict(x)"
    ),
    "load_weights_for_frozen_layers": "model.load_weights(path, skip_mismatch=True), path a file of save_weights",
}
"""KotlinDL's names of a model's attributes that are more than a case change (snake-cased), with what stands for
each (`missing_attribute` below)."""

KOTLINDL_MODEL_CLASS_ATTRIBUTES = {
    "of": (
        "Model(inputs=..., outputs=...) of the tensors that calling the layers returns: x = Input(4); "
        f"y = Dense(3)(x); Model(inputs=x, outputs=y) ({_FUNCTIONAL_API})"
    ),
    "from_output": (
        f"Model(inputs=x, outputs=y), y the tensor that the last layer's call returned ({_FUNCTIONAL_API})"
    ),
    "load_default_model_configuration": (
        "onnxtrain.load_model(directory, compile=False): the configuration and the weights in one call, then "
        "compile(...)"
    ),
    "load_model_configuration": (
        "onnxtrain.load_model(directory, compile=False): the configuration and the weights in one call, then "
        "compile(...)"
    ),
}
"""KotlinDL's names of a model class's attributes (`Functional.of`, `Sequential.loadDefaultModelConfiguration`),
snake-cased, with what stands for each."""

KOTLINDL_HISTORY_ATTRIBUTES = {
    "last_epoch_event": 'history.last(): the last epoch\'s figures, {"loss": ..., "val_loss": ..., ...}',
    "epoch_history": "history.history ({key: one value per epoch}), with history.epochs (the epochs' numbers)",
    "batch_history": (
        "a Callback's on_train_batch_end(batch, logs), which sees each batch's figures: a History keeps epochs"
    ),
}
"""KotlinDL's names of a `TrainingHistory`'s attributes, snake-cased, with what stands for each on a `History`."""

KOTLINDL_DATASET_ATTRIBUTES = {
    "x_size": "len(dataset), the number of examples",
}
"""KotlinDL's names of a dataset's attributes, snake-cased, with what stands for each on a `Dataset`."""

KOTLINDL_MODULE_ATTRIBUTES = {
    "Functional": (
        "onnxtrain.Model: KotlinDL's Functional.of(...) and Functional.fromOutput(...) are Model(inputs=..., "
        f"outputs=...) of the tensors that calling the layers returns ({_FUNCTIONAL_API})"
    ),
    "OnHeapDataset": "onnxtrain.Dataset: Dataset(x, y), or Dataset.create(features=..., labels=...)",
    "OnnxInferenceModel": "onnxtrain.InferenceModel: InferenceModel.load(path)",
    "TrainingHistory": "onnxtrain.History, what fit returns",
}
"""KotlinDL's class names that onnxtrain has under another (`onnxtrain.Functional`), with what stands for each."""

_MISSING = object()
_KOTLINDL_CLASS_NAMES = {"Model": "Functional"}  # KotlinDL's name of a class whose attributes are hinted


def missing_attribute(owner: object, attribute: str, kotlindl: Mapping[str, str], spelled: str) -> str:
    """Python's message of `owner.<attribute>` where `owner` (an object, or a class) has no such attribute, and how
    Python spells it: `spelled.<snake_case>` where `owner` has the snake_case of a camelCase `attribute`, else what
    `kotlindl` ({KotlinDL's name, snake-cased: what stands for it}) says, naming a class's attribute as KotlinDL's
    class has it (`Functional.of` for `Model.of`). Cheap for the misses that code probes (`getattr(x, "_private",
    None)`): it never calls `owner`'s own `__getattr__`.

    Example:
        >>> missing_attribute(object(), "xSize", KOTLINDL_DATASET_ATTRIBUTES, "dataset")
        "'object' object has no attribute 'xSize'. For KotlinDL's xSize, use len(dataset), the number of examples"
    """
    if isinstance(owner, type):
        message = f"type object {owner.__name__!r} has no attribute {attribute!r}"
        kotlindls = f"{_KOTLINDL_CLASS_NAMES.get(owner.__name__, owner.__name__)}.{attribute}"
    else:
        message = f"{type(owner).__name__!r} object has no attribute {attribute!r}"
        kotlindls = attribute
    if attribute.startswith("_"):
        return message
    snake = snake_case(attribute)
    if snake != attribute and inspect.getattr_static(owner, snake, _MISSING) is not _MISSING:
        return f"{message}. Python's spelling of KotlinDL's camelCase names is snake_case: {spelled}.{snake}"
    if snake in kotlindl:
        return f"{message}. For KotlinDL's {kotlindls}, use {kotlindl[snake]}"
    return message


def missing_module_attribute(module: str, attribute: str) -> str:
    """Python's message of `module.<attribute>` (`onnxtrain.Functional`) where the package lacks it, and what
    stands for it where it is KotlinDL's name of a class onnxtrain has under another (`KOTLINDL_MODULE_ATTRIBUTES`:
    by its exact name, as `onnxtrain.functional`, a module, is no spelling of `Functional`)."""
    message = f"module {module!r} has no attribute {attribute!r}"
    if attribute in KOTLINDL_MODULE_ATTRIBUTES:
        return f"{message}. For KotlinDL's {attribute}, use {KOTLINDL_MODULE_ATTRIBUTES[attribute]}"
    return message


class HintingClassAttributes(type):
    """The metaclass of `Model` (and so `Sequential`): a class attribute it lacks is refused naming what stands for
    KotlinDL's (`Model.of` is `Model(inputs=..., outputs=...)`, `Sequential.loadDefaultModelConfiguration` is
    `load_model(directory, compile=False)`: `KOTLINDL_MODEL_CLASS_ATTRIBUTES`), or Python's spelling of a camelCase
    one (`Sequential.fromConfig` is `Sequential.from_config`). Only reached for a name the class lacks."""

    if not TYPE_CHECKING:  # mypy would take the class to have every attribute

        def __getattr__(cls, attribute: str) -> Any:
            message = missing_attribute(cls, attribute, KOTLINDL_MODEL_CLASS_ATTRIBUTES, cls.__name__)
            raise AttributeError(message, name=attribute, obj=cls)
