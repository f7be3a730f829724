"""Which `UpdateRule` the portable engine uses for each optimizer class, and how to register one of your own.

The rules themselves live with their optimizers (onnxtrain/optimizers/_adam.py, ...), as do `Slot`, `UpdateRule`
and gradient clipping (onnxtrain/optimizers/_base.py); this module re-exports what the train-step graph needs.
"""

from __future__ import annotations

from onnxtrain.optimizers import (
    SGD,
    AdaDelta,
    AdaGrad,
    AdaGradDA,
    Adam,
    Adamax,
    AdamW,
    Ftrl,
    Momentum,
    Nadam,
    Optimizer,
    RMSProp,
)
from onnxtrain.optimizers._adadelta import AdaDeltaRule
from onnxtrain.optimizers._adagrad import AdaGradRule
from onnxtrain.optimizers._adagrad_da import AdaGradDARule
from onnxtrain.optimizers._adam import AdamRule
from onnxtrain.optimizers._adamax import AdamaxRule
from onnxtrain.optimizers._base import Names, Slot, Update, UpdateRule, clip_gradients
from onnxtrain.optimizers._ftrl import FtrlRule
from onnxtrain.optimizers._momentum import MomentumRule
from onnxtrain.optimizers._nadam import NadamRule
from onnxtrain.optimizers._rmsprop import RMSPropRule
from onnxtrain.optimizers._sgd import SGDRule
from onnxtrain.portable._registry import RuleRegistry

__all__ = ["Names", "Slot", "Update", "UpdateRule", "clip_gradients", "register_update_rule", "update_rule"]

_RULES: RuleRegistry[UpdateRule] = RuleRegistry(
    "optimizer", Optimizer, (), "register_update_rule", rule_name="update rule"
)


def register_update_rule(cls: type[Optimizer], rule: UpdateRule) -> None:
    """Teach the portable engine a new optimizer class (its subclasses inherit the rule)."""
    _RULES.register(cls, rule)


def update_rule(optimizer: Optimizer) -> UpdateRule:
    return _RULES.lookup(optimizer)


for _cls, _rule in [
    (SGD, SGDRule()),
    (Momentum, MomentumRule()),
    (RMSProp, RMSPropRule()),
    (AdaDelta, AdaDeltaRule()),
    (AdaGrad, AdaGradRule()),
    (AdaGradDA, AdaGradDARule()),
    (Adam, AdamRule()),
    (AdamW, AdamRule()),
    (Adamax, AdamaxRule()),
    (Nadam, NadamRule()),
    (Ftrl, FtrlRule()),
]:
    register_update_rule(_cls, _rule)
