"""Registry: config dicts become objects of their kind, or fail naming the unknown keys and the accepted ones."""

from __future__ import annotations

import pytest

from onnxtrain import activations, initializers, losses, optimizers
from onnxtrain._registry import Registry
from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError

UNKNOWN_KEYS = [
    (
        optimizers.get,
        {"name": "adam", "lr": 0.1},
        r"Could not interpret optimizer config \{'name': 'adam', 'lr': 0.1\}: unknown key\(s\) \['lr'\] for Adam. "
        r"Accepted keys: \['name', 'learning_rate', 'beta1', 'beta2', 'epsilon', 'clip_norm', 'clip_value', "
        r"'amsgrad', 'weight_decay'\]",
    ),
    (
        activations.get,
        {"name": "relu", "foo": 1},
        r"Could not interpret activation config .*: unknown key\(s\) \['foo'\] for Relu. Accepted keys: \['name'\]",
    ),
    (
        losses.get,
        {"name": "huber", "delta": 2.0, "reduction": "sum"},
        r"loss config .*: unknown key\(s\) \['reduction'\] for Huber. Accepted keys: \['name', 'delta'\]",
    ),
    (
        initializers.get,
        {"name": "he_normal", "scale": 3.0, 7: 1},
        r"initializer config .*: unknown key\(s\) \['scale', 7\] for HeNormal. Accepted keys: \['name', 'seed'\]",
    ),
]


@pytest.mark.parametrize(("get", "config", "message"), UNKNOWN_KEYS, ids=["optimizer", "activation", "loss", "init"])
def test_config_with_unknown_keys_names_them_and_the_accepted_keys(get, config, message):
    with pytest.raises(InvalidArgumentError, match=message):
        get(config)


def test_config_without_a_name_says_so_and_lists_the_names():
    with pytest.raises(InvalidArgumentError, match=r"optimizer config \{'lr': 0.1\}: it has no 'name' key.*'adam'"):
        optimizers.get({"lr": 0.1})


def test_config_with_an_unknown_name_is_an_unknown_identifier():
    with pytest.raises(UnknownIdentifierError, match=r"Could not interpret loss 'focal'"):
        losses.get({"name": "focal"})


def test_known_keys_still_build_the_object():
    assert optimizers.get({"name": "sgd", "learning_rate": 0.5}) == optimizers.SGD(0.5)
    assert initializers.get({"name": "variance_scaling", "scale": 2.0, "mode": "fan_out"}).mode == "fan_out"


class _Anything:
    def __init__(self, **options: object) -> None:
        self.options = options


def test_a_class_taking_any_keyword_gets_every_key():
    registry = Registry("widget", _Anything, {"anything": _Anything})
    assert registry.get({"name": "anything", "size": 3}).options == {"size": 3}


def test_an_unknown_name_lists_the_aliases_with_what_they_stand_for():
    with pytest.raises(UnknownIdentifierError) as raised:
        losses.get("focal")
    message = str(raised.value)
    assert message.startswith("Could not interpret loss 'focal'. Valid names: ['binary_crossentropy', ")
    assert "'softmax_cross_entropy_with_logits', 'sparse_categorical_crossentropy'," in message  # Keras' own name
    assert "'soft_max_cross_entropy_with_logits' (= 'softmax_cross_entropy_with_logits')" in message
    assert "'mean_squared_error' (= 'mse')" in message and "'mean_absolute_error' (= 'mae')" in message


def test_a_hinted_name_gets_its_hint_and_the_listing():
    registry = Registry("widget", _Anything, {"anything": _Anything}, {"any": "anything"}, hints={"other": "Do X."})
    with pytest.raises(UnknownIdentifierError) as raised:
        registry.get("Other")
    assert str(raised.value) == (
        "Could not interpret widget 'Other'. Valid names: ['anything'], and the aliases 'any' (= 'anything'). Do X."
    )
    with pytest.raises(UnknownIdentifierError, match=r"\['anything'\], and the aliases 'any' \(= 'anything'\)\.$"):
        registry.get("thing")
