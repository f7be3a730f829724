"""Keras' masking as a layer sees it: what a layer class does with the mask beside its input (`LayerMasks`, a base
of `Layer`).

A mask is an optional bool value beside a layer's output, [batch, *its shape but the last axis] (True: a step to
use), made by `Embedding(mask_zero=True)` or `Masking`; `Functional.emit` carries it from call to call, in every
graph (training, evaluation, the export).
"""

from __future__ import annotations

from typing import Any, ClassVar

from onnxtrain.graph import GraphBuilder

Mask = str | None
"""A mask beside a value in a graph: the name of a bool value [batch, *the value's shape but its last axis] (True:
a step to use), or None (no mask)."""


class LayerMasks:
    """What a layer class does with a mask, as Keras 3's says (the default: nothing, no mask out):
      * `supports_masking = True`: the input's mask passes to the output unchanged (Dense, Dropout, ...);
      * `compute_mask(builder, x, mask)`: emits the output's mask (or returns None) where it makes or changes one
        (Embedding, Masking, merges, a recurrent layer that drops it);
      * `reads_mask = True` and `emit_masked(builder, x, mask)`: emitted instead of `emit` where a mask reaches the
        layer (the recurrent layers, GlobalAveragePooling1D, MultiHeadAttention); `emit` stays mask-free.
    A layer whose class does neither drops the mask, as Keras 3 does (with a warning there).
    """

    supports_masking: ClassVar[bool] = False
    """Whether the mask of the input passes to the output unchanged (Keras' `supports_masking`; `compute_mask`)."""
    reads_mask: ClassVar[bool] = False
    """Whether `emit_masked` computes the layer where a mask reaches it (see the class docstring)."""

    def compute_mask(self, builder: GraphBuilder, x: Any, mask: Mask | list[Mask]) -> Mask:
        """Emit the mask of the output of this layer's call on `x` (what `emit` read), given the input's `mask` (a
        list of one per input for a multi-input layer); None: no mask. Keras' default: the (first) input's mask
        where `supports_masking`, else none."""
        if not self.supports_masking:
            return None
        return mask[0] if isinstance(mask, list) else mask

    def emit_masked(self, builder: GraphBuilder, x: Any, mask: Mask | list[Mask]) -> str:
        """`emit`, reading `mask` ([batch, ...] bool, True: use the step; a list of one per input, some None, for a
        multi-input layer): called instead of `emit` where a mask reaches a layer whose class sets `reads_mask`."""
        raise NotImplementedError(f"{type(self).__name__} sets reads_mask and defines no emit_masked")
