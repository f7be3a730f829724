"""KotlinDL's gradient clipping objects (`Adam(clip_gradient=ClipGradientByValue(0.1))`, KotlinDL's `clipGradient`),
each the optimizer settings it stands for: every optimizer takes them (`_keras_arguments.ours`), and its config
keeps those settings, `clip_value` or `clip_norm`."""

from __future__ import annotations

from dataclasses import dataclass

from onnxtrain.optimizers._base import POSITIVE


@dataclass(frozen=True)
class ClipGradientAction:
    """Base class of KotlinDL's clipping objects."""

    def settings(self) -> dict[str, float]:
        """The optimizer arguments this object stands for."""
        return {}


@dataclass(frozen=True)
class NoClipGradient(ClipGradientAction):
    """No clipping (KotlinDL's default)."""


@dataclass(frozen=True)
class ClipGradientByValue(ClipGradientAction):
    """Clamp each gradient element to [-value, value]: the optimizer's `clip_value`, as KotlinDL clips."""

    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", POSITIVE("ClipGradientByValue", "value", self.value))

    def settings(self) -> dict[str, float]:
        return {"clip_value": self.value}


@dataclass(frozen=True)
class ClipGradientByNorm(ClipGradientAction):
    """Rescale the gradients so that their norm is at most `norm`: the optimizer's `clip_norm`, the global L2 norm
    of all gradients together (Keras' `global_clipnorm`). KotlinDL declares ClipGradientByNorm but never
    implemented it (it throws UnsupportedOperationException), so there is no KotlinDL behaviour to follow; its name
    suggests TensorFlow's clip_by_norm, which rescales each gradient by its own norm (Keras' `clipnorm`, which
    onnxtrain does not have)."""

    norm: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "norm", POSITIVE("ClipGradientByNorm", "norm", self.norm))

    def settings(self) -> dict[str, float]:
        return {"clip_norm": self.norm}
