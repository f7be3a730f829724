"""Reverse-mode differentiation of ONNX graphs into standard ONNX: one gradient rule per op, in one table.

- `gradients(model, wrt, loss)`: a ModelProto with `<name>_grad` outputs added.
- `backward(builder, loss, wrt)`: the same inside a GraphBuilder (the portable engine's train step).
- `rule("OpType")` and `GradientContext`: how a rule is written (docs/autodiff.md).
- `fold_constants(model, keep)`: an exported graph's shape arithmetic folded by ONNX Runtime, where shape inference
  cannot give the ranks a rule needs.
"""

from __future__ import annotations

from onnxtrain.autodiff._backward import backward, gradients
from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._fold import fold_constants
from onnxtrain.autodiff._rules import RULES, Rule, load_rule_modules, rule

load_rule_modules()  # RULES is the whole table from the import on, not only after a first lookup (19 ms)

__all__ = ["RULES", "GradientContext", "Rule", "backward", "fold_constants", "gradients", "rule"]
