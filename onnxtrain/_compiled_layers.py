"""The layers as `compile` saw them (each one's trainable flag and the settings assigned so far), and the refusal to
train, evaluate or predict once they changed since (`CompiledLayers.check`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from onnxtrain.errors import ModelStateError
from onnxtrain.functional import every_layer


class CompiledLayers:
    """What a compiled model's engine and predictions compute: every layer of `layers` (nested models' included)
    with its trainable flag and the count of its settings assigned, taken at compile."""

    def __init__(self, layers: Sequence[Any]):
        self.layers = every_layer(layers)  # fixed once compiled: add() is refused then (nested: theirs)
        self.trainable = tuple(layer.trainable for layer in self.layers)  # what the engine was built to train
        self.assigned = [len(layer.settings_assigned()) for layer in self.layers]

    def check(self, action: str) -> None:
        """Refuse to run `action` on layers whose settings changed after compile (`layer.trainable = False`,
        `dropout.rate = 0.3`, `dense.activation = "tanh"`): the compiled engine and the predictions' session still
        compute the old ones, while save and export would write the new.

        Raises:
            ModelStateError: naming the layers and what changed, and that compile() applies it.
        """
        layers = self.layers
        trainable = [layer.name for layer, was in zip(layers, self.trainable, strict=True) if layer.trainable != was]
        if trainable:  # Keras would train on as compiled, which param_counts() already contradicts
            raise ModelStateError(
                f"The trainable flag of layer(s) {trainable} changed after compile() (layer.trainable, or "
                "model.trainable of this model or of one nested in it); the compiled engine still trains as before. "
                "Call compile() again to apply it (the weights are kept, the optimizer state starts anew)."
            )
        changed = []
        for layer, assigned in zip(self.layers, self.assigned, strict=True):
            since = [a for a in layer.settings_assigned()[assigned:] if a != "trainable"]
            if since:  # (trainable: by its value, above)
                changed.append(f"{layer.name} ({', '.join(dict.fromkeys(since))})")
        if changed:
            raise ModelStateError(
                f"{action}: the settings of layer(s) {', '.join(changed)} were assigned after compile(); the compiled "
                "model still computes the old ones. Call compile() again to apply them (the weights are kept, the "
                "optimizer state starts anew)."
            )
