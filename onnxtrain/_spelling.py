"""Python's spelling of KotlinDL's names, for every refusal of an unknown keyword (a model's methods', a layer's, an
optimizer's, an initializer's, a loader's): the snake_case of a camelCase keyword (`spelling_hint`), what stands here
for KotlinDL's argument names that are more than a case change (`KOTLINDL_ARGUMENTS`), where a setting that is no
argument is set instead (`setting_hint`), and what stands for PyTorch's optimizer arguments
(`TORCH_OPTIMIZER_ARGUMENTS`, `torch_optimizer_hint`); and, for KotlinDL's positional arguments after a Dataset
(`fit(train, val)`, `evaluate(test, 100)`), the keyword that takes them (`labels_beside_dataset`). KotlinDL's names
of attributes are `_kotlindl_attributes.py`'s. No imports of the package's data modules: layers and optimizers use
it.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from onnxtrain._registry import snake_case

# KotlinDL's names (snake-cased) of a model method's arguments that are more than a case change, with what stands
# for each here; a method's refusal of an unknown keyword names the one given (`refuse_unknown`).
KOTLINDL_ARGUMENTS = {
    "train_batch_size": "is batch_size in onnxtrain",
    "training_dataset": "is dataset in onnxtrain",
    "validation_dataset": "is validation (or Keras' validation_data) in onnxtrain",
    "validation_rate": "is validation_split in onnxtrain",
    "callback": (
        "(compile's, up to KotlinDL 0.3) is fit's callbacks in onnxtrain: model.fit(..., callbacks=[callback])"
    ),
    "model_directory": "is directory in onnxtrain",
    "saving_format": (
        "has no counterpart in onnxtrain: save always writes model.onnx (the graph), config.json and checkpoint "
        "(the weights), and load_model reads them back; leave it out"
    ),
    "writing_mode": "is an argument of save() and export() only (writing_mode in onnxtrain); leave it out here",
    "load_optimizer_state": (
        "has no counterpart in onnxtrain: load_model resumes the optimizer state whenever the save holds one "
        "(save(..., save_optimizer_state=True)); pass optimizer=... to start a fresh one instead"
    ),
}


LOADED_MODEL_SETTINGS = {
    "input_scale": (
        "is no argument of a loader: the save holds the model's input_scale; set model.input_scale = ... on the "
        "loaded model to change it"
    ),
    "class_names": (
        "is no argument of a loader: the save holds the model's class_names; set model.class_names = [...] on the "
        "loaded model to change them"
    ),
}
"""Settings a loaded model holds rather than its loader takes (`load_model`, `InferenceModel.load`), with where each
is set instead (`setting_hint`)."""


def spelling_hint(unknown: Iterable[str], takes: Collection[str], renamed: Mapping[str, str] | None = None) -> str:
    """The sentences that tell a KotlinDL user how Python spells each of the `unknown` keywords: the snake_case of
    a camelCase one whose snake_case is in `takes` (`kernelSize` is `kernel_size`), and, for one whose snake_case is
    in `renamed` ({KotlinDL's name, snake-cased: what stands for it here, said after the name}), that, naming
    KotlinDL's camelCase beside a snake_case one given. Each starts with a space; "" where no keyword is either.

    Example:
        >>> spelling_hint(["batchSize"], ["batch_size"])
        " Python's spelling of KotlinDL's camelCase names is snake_case: 'batchSize' (in Python: batch_size)."
    """
    renamed = renamed or {}
    names = list(unknown)
    spelled = [f"{name!r} (in Python: {snake_case(name)})" for name in names if _camel_of_taken(name, takes)]
    hint = f" Python's spelling of KotlinDL's camelCase names is snake_case: {', '.join(spelled)}." if spelled else ""
    for name in names:
        snake = snake_case(name)
        if snake in renamed and snake not in takes:
            hint += f" {_as_kotlindls(name)} {renamed[snake]}."
    return hint


def _camel_of_taken(name: str, takes: Collection[str]) -> bool:
    """Whether `name` is the camelCase of a name in `takes` (`kernelSize`)."""
    return snake_case(name) != name and snake_case(name) in takes


def _as_kotlindls(name: str) -> str:
    """`name`, a KotlinDL argument's name as given, said as KotlinDL's: "KotlinDL's 'trainBatchSize'", or, where it
    is the snake-cased one (which is ours, not KotlinDL's), "'train_batch_size' (KotlinDL's 'trainBatchSize')"."""
    first, *rest = snake_case(name).split("_")
    camel = first + "".join(word.capitalize() for word in rest)
    return f"{name!r} (KotlinDL's {camel!r})" if name != camel else f"KotlinDL's {name!r}"


def setting_hint(unknown: Iterable[str], settings: Mapping[str, str]) -> str:
    """The sentences that tell where each of the `unknown` keywords whose snake_case is in `settings` ({name: where
    it is set, said after the name}) is set instead: a setting that is no argument of the call refused (an
    `input_scale` that a loaded model's metadata holds). Each starts with a space; "" where none is.

    Example:
        >>> setting_hint(["inputScale"], {"input_scale": "is the model's: set model.input_scale"})
        " 'inputScale' (in Python: input_scale) is the model's: set model.input_scale."
    """
    hint = ""
    for name in unknown:
        snake = snake_case(name)
        if snake in settings:
            spelled = f"{name!r}" if snake == name else f"{name!r} (in Python: {snake})"
            hint += f" {spelled} {settings[snake]}."
    return hint


def labels_beside_dataset(method: str, y: Any) -> str:
    """The message of `method(dataset, y)` where `dataset` is a Dataset, which carries its labels: KotlinDL's
    positional arguments after the dataset named as Python's keywords (`fit(trainingDataset, validationDataset)`,
    `fit(dataset, epochs, batchSize)`, `fit(dataset, validationRate)`, `evaluate(dataset, batchSize)`).

    Example:
        >>> labels_beside_dataset("evaluate", 100).split("; ")[-1]
        'here batch_size is keyword-only: evaluate(dataset, batch_size=100).'
    """
    start = f"{method}() got a Dataset and, as y, {_described(y)}: a Dataset carries its labels, so y must be None."
    if _is_data(y):
        if method == "fit":
            return (
                f"{start} To validate on it, pass it by keyword: fit(dataset, validation_data=...) (or validation=..., "
                "KotlinDL's validationDataset): KotlinDL's fit(trainingDataset, validationDataset, ...) takes the "
                "validation data second, where onnxtrain's fit, as Keras', takes the labels there."
            )
    elif isinstance(y, numbers.Integral) and not isinstance(y, bool):
        if method == "fit":
            return (
                f"{start} KotlinDL's fit(dataset, epochs, batchSize) takes the epochs second; here epochs and "
                f"batch_size are keyword-only: fit(dataset, epochs={y}, batch_size=...)."
            )
        if method in ("evaluate", "predict"):
            return (
                f"{start} KotlinDL's {method}(dataset, batchSize) takes the batch size second; here batch_size is "
                f"keyword-only: {method}(dataset, batch_size={y})."
            )
    elif isinstance(y, numbers.Real) and not isinstance(y, bool) and 0 < float(y) < 1 and method == "fit":
        return (
            f"{start} KotlinDL's fit(dataset, validationRate, ...) takes the validation rate second; here it is "
            f"validation_split, keyword-only: fit(dataset, validation_split={y}, ...)."
        )
    return f"{start} Pass the Dataset alone: {method}(dataset)."


def _is_data(value: Any) -> bool:
    """Whether `value` is data a call could validate on: a Dataset (by its `x` and `y`), or (x, y[, weights])."""
    if hasattr(value, "x") and hasattr(value, "y"):
        return True
    return isinstance(value, tuple | list) and len(value) in (2, 3)


def _described(value: Any) -> str:
    """`value` as `labels_beside_dataset` names it: a Dataset, an array by its shape, a number by its value."""
    if hasattr(value, "x") and hasattr(value, "y"):
        return f"a {type(value).__name__}"
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return f"an array of shape {shape}"
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)}"
    if isinstance(value, numbers.Number):
        return f"{value!r}"
    return f"a {type(value).__name__}"


_LEAVE_OUT = "chooses PyTorch's implementation of the update, which has no counterpart here; leave it out"

TORCH_OPTIMIZER_ARGUMENTS: dict[str, tuple[str | None, str]] = {
    "lr": ("learning_rate", "is learning_rate in onnxtrain"),
    "betas": ("beta1", "(b1, b2) is beta1=b1, beta2=b2 in onnxtrain (Keras' beta_1, beta_2)"),
    "eps": (
        "epsilon",
        "is epsilon in onnxtrain (Adam and RMSprop add it in another place than PyTorch: docs/pytorch.md)",
    ),
    "alpha": ("rho", "(RMSprop's) is rho in onnxtrain (Keras' name; KotlinDL's decay)"),
    "dampening": (None, "has no counterpart: onnxtrain's momentum is PyTorch's with dampening=0; leave it out"),
    "lr_decay": (
        None,
        "(Adagrad's) is a schedule in onnxtrain: learning_rate=schedules.InverseTimeDecay(lr, decay_steps=1, "
        "decay_rate=lr_decay)",
    ),
    "momentum_decay": (
        None,
        "(NAdam's) has no counterpart: onnxtrain's Nadam is Keras', whose momentum schedule is PyTorch's with "
        "momentum_decay=1.0 (0.96^t, where PyTorch's default 0.004 gives 0.96^(0.004 t)); leave it out",
    ),
    "decoupled_weight_decay": (
        None,
        "has no counterpart: onnxtrain's weight_decay (Adam, AdamW, Nadam) is always decoupled, as PyTorch's "
        "decoupled_weight_decay=True and AdamW; PyTorch's default, weight decay added to the gradient, is an L2 "
        "regularizer of weight_decay / 2 on every weight (docs/pytorch.md); leave it out",
    ),
    "maximize": (None, "has no counterpart: train on the negated objective (a loss of your own) instead"),
    "foreach": (None, _LEAVE_OUT),
    "fused": (None, _LEAVE_OUT),
    "capturable": (None, _LEAVE_OUT),
    "differentiable": (None, _LEAVE_OUT),
}
"""PyTorch's optimizer arguments (`torch.optim`) under other names or with no counterpart here: {name: (the argument
of ours that stands for it, or None for none; what to do, said after the name)}."""


def torch_optimizer_hint(owner: str, unknown: Iterable[str], takes: Collection[str]) -> str:
    """The sentences that tell a PyTorch user what stands for each of the `unknown` keywords of optimizer `owner`
    (which takes `takes`) that is PyTorch's (`TORCH_OPTIMIZER_ARGUMENTS`); one whose counterpart `owner` lacks (eps
    for Adagrad) is said to have none there. Each starts with a space; "" where no keyword is PyTorch's.

    Example:
        >>> torch_optimizer_hint("Adam", ["lr"], ["learning_rate"])
        " PyTorch's 'lr' is learning_rate in onnxtrain."
    """
    hint = ""
    for name in unknown:
        if name not in TORCH_OPTIMIZER_ARGUMENTS:
            continue
        ours, what = TORCH_OPTIMIZER_ARGUMENTS[name]
        if ours is not None and ours not in takes:
            what = f"has no counterpart in onnxtrain's {owner}; leave it out"
        hint += f" PyTorch's {name!r} {what}."
    return hint
