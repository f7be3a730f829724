"""Gradient rules of the layers: each emits the layer's forward (saving what its backward reads) and its backward.

A rule is a `LayerGradient`. Custom layers register one with `register_layer_gradient`; the test of the custom layer in
tests/test_portable_gradients.py is the worked example.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import Dense, Flatten, Layer
from onnxtrain.portable._activation_gradients import activation_gradient
from onnxtrain.portable._ops import sum_over_batch
from onnxtrain.portable._registry import RuleRegistry


@dataclass
class Saved:
    """What a layer's forward left for its backward: its input, its output and any intermediate values."""

    x: str
    y: str
    values: dict[str, str] = field(default_factory=dict)


class LayerGradient:
    """How one layer class trains. Subclasses implement `backward`; `forward` defaults to `layer.emit`."""

    def forward(self, builder: GraphBuilder, layer: Layer, x: str) -> Saved:
        """Emit the forward of `layer` reading `x` (parameters resolve to graph inputs)."""
        return Saved(x, layer.emit(builder, x))

    def backward(
        self,
        builder: GraphBuilder,
        layer: Layer,
        saved: Saved,
        grad_y: str,
        params: Mapping[str, str],
        need_input_grad: bool,
    ) -> tuple[str | None, dict[str, str]]:
        """Emit the backward.

        Args:
            saved: what `forward` returned.
            grad_y: dL/dy.
            params: local parameter name ("kernel") -> graph value.
            need_input_grad: False for the first layer that trains: dL/dx would be computed for nothing.

        Returns:
            (dL/dx or None, {local parameter name: dL/dparameter}); parameter gradients are only needed when
            `layer.trainable`.
        """
        raise NotImplementedError


_RULES: RuleRegistry[LayerGradient] = RuleRegistry("layer", Layer, ("emit", "emit_linear"), "register_layer_gradient")


def register_layer_gradient(cls: type[Layer], rule: LayerGradient) -> None:
    """Teach the portable engine to train layer class `cls` (subclasses that keep its forward inherit it)."""
    _RULES.register(cls, rule)


def layer_gradient(layer: Layer) -> LayerGradient:
    """The rule for `layer`; UnsupportedError when there is none."""
    return _RULES.lookup(layer)


class DenseGradient(LayerGradient):
    """y = act(z), z = x @ kernel + bias: dz = act'(dy); dkernel = x^T dz; dbias = sum over batch of dz;
    dx = dz kernel^T.
    """

    def forward(self, builder: GraphBuilder, layer: Layer, x: str) -> Saved:
        assert isinstance(layer, Dense)
        z = layer.emit_linear(builder, x)
        return Saved(x, layer.activation.emit(builder, z), {"z": z})

    def backward(
        self,
        builder: GraphBuilder,
        layer: Layer,
        saved: Saved,
        grad_y: str,
        params: Mapping[str, str],
        need_input_grad: bool,
    ) -> tuple[str | None, dict[str, str]]:
        assert isinstance(layer, Dense)
        rule = activation_gradient(layer.activation)
        grad_z = rule(builder, layer.activation, saved.values["z"], saved.y, grad_y)
        grads: dict[str, str] = {}
        if layer.trainable:
            # Gemm's transpose flags avoid materializing x^T and kernel^T.
            grads["kernel"] = builder.node("Gemm", [saved.x, grad_z], hint="grad_kernel", transA=1)
            if layer.use_bias:
                grads["bias"] = sum_over_batch(builder, grad_z, hint="grad_bias")
        grad_x = None
        if need_input_grad:
            grad_x = builder.node("Gemm", [grad_z, params["kernel"]], hint="grad_input", transB=1)
        return grad_x, grads


class FlattenGradient(LayerGradient):
    """dx = dy reshaped to x's shape."""

    def backward(
        self,
        builder: GraphBuilder,
        layer: Layer,
        saved: Saved,
        grad_y: str,
        params: Mapping[str, str],
        need_input_grad: bool,
    ) -> tuple[str | None, dict[str, str]]:
        if not need_input_grad:
            return None, {}
        return builder.node("Reshape", [grad_y, builder.node("Shape", [saved.x])], hint="grad_input"), {}


register_layer_gradient(Dense, DenseGradient())
register_layer_gradient(Flatten, FlattenGradient())
