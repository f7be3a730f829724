"""Loss classes of one's own (`Loss` subclasses outside onnxtrain), recorded as their classes are defined, as layers
of one's own are: the name a save gives each (`saved_name`) and the classes a saved name finds (`defined_classes`),
which `onnxtrain.losses.get` reads after onnxtrain's own names."""

from __future__ import annotations

import re
from typing import Any

from onnxtrain._layer_names import to_snake_case

# (Loss classes are typed as `type` here: `_loss_base` imports this module, and no cycle may run back to it.)

# "module.QualifiedName" -> the class, as each is defined: a class defined again (a notebook cell run twice) replaces
# the one before under its key.
DEFINED: dict[str, type] = {}
# The names (normalized) of onnxtrain's losses and their aliases, which `onnxtrain.losses.get` reads first: a class
# of one's own never takes one over (`onnxtrain.losses` fills this at import).
BUILT_IN: set[str] = set()


def normalized(name: str) -> str:
    """A loss name as the registry keys it: Keras' class names snake-cased ("SparseCategoricalCrossentropy",
    "KLDivergence"), each part between - or _, lower case."""
    return "_".join(to_snake_case(part) for part in re.split(r"[-_]", name.strip())).lower()


def is_own(cls: type) -> bool:
    """Whether `cls` is a class of one's own rather than onnxtrain's."""
    return not (cls.__module__ == "onnxtrain" or cls.__module__.startswith("onnxtrain."))


def class_key(cls: type) -> str:
    """The name a save gives a loss class of one's own that its name does not find: "module.QualifiedName", as a
    layer of one's own is saved ("__main__.SoftmaxMSE")."""
    return f"{cls.__module__}.{cls.__qualname__}"


def default_name(cls: type) -> str:
    """Keras' name of a loss whose class gives none: its class name in snake case ("SoftmaxMSE" -> "softmax_mse")."""
    return to_snake_case(cls.__name__)


def record(cls: type) -> None:
    """Record a Loss subclass of one's own as it is defined (`Loss.__init_subclass__`)."""
    if is_own(cls):
        DEFINED[class_key(cls)] = cls


def class_name(cls: type) -> str:
    """The name a class gives its instances (a dataclass field's default, on the class), or ""."""
    given = getattr(cls, "name", "")
    return given.strip() if isinstance(given, str) else ""


def defined_classes(name: str) -> list[type]:
    """The loss classes of one's own defined in this process that a saved `name` finds, several where it is
    ambiguous: by key ("mod.SoftmaxMSE"), or by the name its class gives its instances or its class name
    ("softmax_mse", "SoftmaxMSE"), compared normalized. None for a name of onnxtrain's.

    A key of a script's class ("__main__.SoftmaxMSE") that no class has finds the classes of that name in any
    module, as a save from a script is loaded where the class is imported. A key of a named module finds that
    module's class alone: a class of the same name from another module may compute something else.
    """
    name = name.strip()
    if name in DEFINED:
        return [DEFINED[name]]
    if "." in name.strip("."):
        module, _, qualname = name.partition(".") if name.startswith("__main__.") else ("", "", "")
        return [cls for cls in DEFINED.values() if module and cls.__qualname__ == qualname]
    wanted = normalized(name)
    if not wanted or wanted in BUILT_IN:
        return []
    return [
        cls
        for cls in DEFINED.values()
        if wanted in {normalized(cls.__name__), normalized(class_name(cls) or cls.__name__)}
    ]


def saved_name(loss: Any) -> str:
    """The name a save gives a loss of one's own: the name its class gives it ("softmax_mse"), where that name
    finds this class alone; else its class's key, which does ("__main__.SoftmaxMSE")."""
    cls = type(loss)
    name = class_name(cls)
    if name and defined_classes(name) == [cls]:
        return name
    return class_key(cls)
