"""PyTorch's optimizer arguments (`torch.optim`), refused as unknown keywords with what stands for each here
(`_spelling.TORCH_OPTIMIZER_ARGUMENTS`, said by `optimizers/_keras_arguments.py`); the weight decay PyTorch adds to
the gradient, refused by optimizers without a decoupled one, names its L2 regularizer. docs/pytorch.md has the
table and the runs against PyTorch behind it."""

from __future__ import annotations

import pytest

from onnxtrain import optimizers as opt
from onnxtrain._spelling import TORCH_OPTIMIZER_ARGUMENTS, torch_optimizer_hint
from onnxtrain.errors import InvalidTypeError, UnsupportedError

REFUSED = [
    (lambda: opt.Adam(lr=0.01), r"Adam\(\) got an unexpected keyword argument 'lr'\. PyTorch's 'lr' is learning_rate"),
    (
        lambda: opt.AdamW(0.01, betas=(0.9, 0.99)),
        r"'betas'\. PyTorch's 'betas' \(b1, b2\) is beta1=b1, beta2=b2 in onnxtrain \(Keras' beta_1, beta_2\)\. "
        r"AdamW takes:",
    ),
    (lambda: opt.Adam(0.01, eps=1e-8), r"PyTorch's 'eps' is epsilon in onnxtrain \(Adam and RMSprop add it in"),
    (lambda: opt.Adagrad(0.01, eps=1e-10), r"PyTorch's 'eps' has no counterpart in onnxtrain's Adagrad; leave it"),
    (lambda: opt.RMSprop(0.01, alpha=0.99), r"PyTorch's 'alpha' \(RMSprop's\) is rho in onnxtrain"),
    (lambda: opt.SGD(0.1, momentum=0.9, dampening=0.1), r"onnxtrain's momentum is PyTorch's with dampening=0"),
    (
        lambda: opt.Adagrad(0.1, lr_decay=0.01),
        r"learning_rate=schedules\.InverseTimeDecay\(lr, decay_steps=1, decay_rate=lr_decay\)",
    ),
    (lambda: opt.Nadam(0.01, momentum_decay=0.004), r"PyTorch's with momentum_decay=1\.0 \(0\.96\^t"),
    (
        lambda: opt.Adam(0.01, weight_decay=0.01, decoupled_weight_decay=True),
        r"onnxtrain's weight_decay \(Adam, AdamW, Nadam\) is always decoupled",
    ),
    (lambda: opt.Adam(0.01, maximize=True), r"PyTorch's 'maximize' has no counterpart"),
    (
        lambda: opt.SGD(0.1, foreach=True, fused=False),
        r"PyTorch's 'foreach' chooses PyTorch's implementation .* PyTorch's 'fused' chooses",
    ),
]


@pytest.mark.parametrize(("make", "message"), REFUSED)
def test_pytorch_argument_names_are_refused_with_what_stands_for_them(make, message):
    with pytest.raises(InvalidTypeError, match=message):
        make()


def test_pytorchs_coupled_weight_decay_names_the_l2_regularizers_that_stand_for_it():
    with pytest.raises(
        UnsupportedError,
        match=r"SGD does not support Keras' weight_decay=0\.0001 .*PyTorch's weight_decay=wd, added to the "
        r"gradient, is kernel_regularizer=L2\(wd / 2\) and bias_regularizer=L2\(wd / 2\)",
    ):
        opt.SGD(0.1, momentum=0.9, weight_decay=1e-4)


def test_each_counterpart_named_is_an_argument_of_some_optimizer():
    taken = {name for cls in (opt.Adam, opt.RMSprop, opt.SGD) for name in (*opt.get(cls()).get_config(), "rho")}
    named = {ours for ours, _ in TORCH_OPTIMIZER_ARGUMENTS.values() if ours is not None}
    assert named <= taken
    assert torch_optimizer_hint("Adam", ["learning_rate", "beta_3"], ["learning_rate"]) == ""
