"""Gradient rules of the loss ops: SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss (reduction mean, sum or
none; ignore_index; class weights). The usual case, mean over [batch, classes] logits, is (softmax - one_hot) /
batch, as the portable engine's hand-written rule emits it."""

from __future__ import annotations

import numpy as np

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]


def _one_hot(ctx: GradientContext, scores: str, labels: str) -> str:
    """one_hot(labels) along axis 1, in `scores`' dtype and shape."""
    shape = ctx.shape(scores)
    # A scalar depth where it is known: the ONNX reference evaluator's OneHot takes no [1]-shaped depth.
    if shape is not None and isinstance(shape[1], int):
        depth = ctx.builder.constant(np.int64(shape[1]), "depth", np.int64)
    else:
        depth = ctx.dim(scores, 1)
    dtype = ctx.dtype(scores)
    off_on = ctx.builder.shared(
        f"autodiff.off_on.{dtype.name}", lambda: ctx.constant(np.array([0, 1], dtype), "off_on")
    )
    return ctx.emit("OneHot", [labels, depth, off_on], hint=f"{labels}_one_hot", axis=1)


def _example_weights(ctx: GradientContext, scores: str, labels: str, weights: str) -> str | None:
    """Each example's weight, shaped like `labels`: weights[label], 0 where label == ignore_index; None when 1."""
    ignore = ctx.attr("ignore_index")
    if ignore is None:
        return ctx.emit("Gather", [weights, labels], axis=0) if weights else None
    ignored = ctx.constant(np.array(ignore, ctx.dtype(labels)), "ignore_index")
    keep = ctx.emit("Not", [ctx.emit("Equal", [labels, ignored])])
    if not weights:
        return ctx.cast_like(keep, scores)
    safe = ctx.emit("Where", [keep, labels, ctx.constant(np.array(0, ctx.dtype(labels)), "class_0")])
    return ctx.emit("Mul", [ctx.emit("Gather", [weights, safe], axis=0), ctx.cast_like(keep, scores)])


def _weighted(ctx: GradientContext, per_class: str, scores: str, labels: str, weights: str) -> str:
    """`per_class` (d loss_i / d scores for an unweighted mean-free loss) weighted and reduced as the node's
    `reduction` says, times the incoming gradient."""
    g = ctx.grad(0)
    assert g is not None
    w = _example_weights(ctx, scores, labels, weights)
    if w is not None:
        per_class = ctx.emit("Mul", [per_class, ctx.emit("Unsqueeze", [w, ctx.ints([1])])])
    reduction = ctx.attr("reduction")
    if reduction == "none":
        return ctx.emit("Mul", [per_class, ctx.emit("Unsqueeze", [g, ctx.ints([1])])])
    if reduction == "mean":
        total = ctx.reduce("ReduceSum", w, None, keepdims=False) if w is not None else ctx.count(labels, scores)
        per_class = ctx.emit("Div", [per_class, total], hint=f"{scores}_grad")
    elif reduction != "sum":
        raise ctx.unsupported("reduction", reduction, "expected 'mean', 'sum' or 'none'")
    return ctx.times(per_class, g)


@rule("SoftmaxCrossEntropyLoss")
def _softmax_cross_entropy(ctx: GradientContext) -> Grads:
    scores, labels, weights = ctx.input(0), ctx.input(1), ctx.input(2)
    probabilities = ctx.emit("Softmax", [scores], hint=f"{scores}_probabilities", axis=1)
    parts = []
    if ctx.grad(0) is not None:
        diff = ctx.emit("Sub", [probabilities, _one_hot(ctx, scores, labels)])
        parts.append(_weighted(ctx, diff, scores, labels, weights))
    g_log = ctx.grad(1)
    if g_log is not None:  # log_prob = scores - logsumexp(scores): g - softmax * sum(g) over the classes
        total = ctx.reduce("ReduceSum", g_log, [1], keepdims=True)
        parts.append(ctx.emit("Sub", [g_log, ctx.emit("Mul", [probabilities, total])]))
    return [parts[0] if len(parts) == 1 else ctx.emit("Add", parts)]


@rule("NegativeLogLikelihoodLoss")
def _negative_log_likelihood(ctx: GradientContext) -> Grads:
    scores, labels, weights = ctx.input(0), ctx.input(1), ctx.input(2)
    return [_weighted(ctx, ctx.emit("Neg", [_one_hot(ctx, scores, labels)]), scores, labels, weights)]
