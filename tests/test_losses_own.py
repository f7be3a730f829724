"""Losses of one's own (`Loss` subclasses): recorded as their classes are defined, as layers of one's own are, so a
save names each so that `load_model` finds it again (its class's name, else "module.ClassName"); a process that has
not defined it is told how to give it (custom_objects); and what a save could not load back is refused first
(`losses.check_loadable`). Doubles as the guide to writing one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from onnxtrain import Sequential, _own_losses, losses
from onnxtrain.errors import InvalidArgumentError, ModelFileError, UnknownIdentifierError
from onnxtrain.layers import Dense, Input
from onnxtrain.loading import load_model
from onnxtrain.losses import Loss, MeanSquaredError, check_loadable

X = np.random.default_rng(3).random((24, 4)).astype(np.float32)
Y = np.eye(3, dtype=np.float32)[np.arange(24) % 3]

# Keras 3.15: the name of an instance of a keras.losses.Loss subclass `SoftmaxMSE` that gives none (its class name in
# snake case); Keras' save names the class, {"class_name": "SoftmaxMSE", ...}.
KERAS_DEFAULT_NAME = "softmax_mse"


class SoftmaxMSE(Loss):
    """No name of its own: its instances take Keras' name, and a save names the class by module and name."""

    def elements(self, builder, output, labels):
        difference = builder.node("Sub", [builder.node("Softmax", [output], axis=-1), labels])
        return builder.node("Mul", [difference, difference])


@dataclass(frozen=True)
class NamedSoftmaxMSE(SoftmaxMSE):
    """A name of its own: a save gives that name, which finds the class while no other class takes it."""

    name: str = field(default="named_softmax_mse", init=False)


@dataclass(frozen=True)
class ScaledError(Loss):
    """Arguments as dataclass fields: the config holds them, so a load rebuilds the loss with them."""

    scale: float = 1.0

    def elements(self, builder, output, labels):
        difference = builder.node("Sub", [output, labels])
        return builder.node("Mul", [builder.node("Abs", [difference]), builder.constant(np.float32(self.scale))])


@pytest.fixture(autouse=True)
def _defined_as_it_was():
    """Classes a test defines are recorded process-wide (as layer classes are): each test leaves them as found."""
    before = dict(_own_losses.DEFINED)
    yield
    _own_losses.DEFINED.clear()
    _own_losses.DEFINED.update(before)


def test_a_loss_class_without_a_name_takes_keras_name_and_saves_under_its_module_and_class():
    loss = SoftmaxMSE()
    assert loss.name == KERAS_DEFAULT_NAME
    assert loss.get_config() == {"name": f"{__name__}.SoftmaxMSE"}
    assert losses.get(loss.get_config()) == loss and type(losses.get(loss.get_config())) is SoftmaxMSE
    assert type(losses.get("SoftmaxMSE")) is SoftmaxMSE  # compile(loss="SoftmaxMSE") finds it too


def test_a_named_loss_class_saves_its_name_and_its_arguments():
    assert NamedSoftmaxMSE().get_config() == {"name": "named_softmax_mse"}
    assert type(losses.get("named_softmax_mse")) is NamedSoftmaxMSE
    scaled = ScaledError(scale=2.5)
    assert scaled.get_config() == {"name": f"{__name__}.ScaledError", "scale": 2.5}
    assert losses.get(json.loads(json.dumps(scaled.get_config()))) == scaled
    check_loadable(scaled)


def _trained(loss: Loss) -> Sequential:
    model = Sequential([Input(4), Dense(3, activation="linear")], seed=1)
    model.compile(optimizer="adam", loss=loss, engine="portable")
    model.fit(X, Y, epochs=1, verbose=0)
    return model


@pytest.mark.slow
@pytest.mark.parametrize(
    "loss", [SoftmaxMSE(), NamedSoftmaxMSE(), ScaledError(scale=3.0)], ids=lambda loss: type(loss).__name__
)
def test_a_model_trained_with_a_loss_of_ones_own_loads_with_it_where_its_class_is_defined(tmp_path, loss):
    with _trained(loss) as model:
        expected = model.evaluate(X, Y, return_dict=True)
        model.save(tmp_path / "saved")
    with load_model(tmp_path / "saved") as loaded:
        assert loaded.loss == loss and type(loaded.loss) is type(loss)
        assert loaded.evaluate(X, Y, return_dict=True) == pytest.approx(expected)


@pytest.mark.slow
def test_a_process_that_has_not_defined_the_class_is_told_to_define_it_or_pass_custom_objects(tmp_path, monkeypatch):
    with _trained(SoftmaxMSE()) as model:
        model.save(tmp_path / "saved")
    monkeypatch.delitem(_own_losses.DEFINED, f"{__name__}.SoftmaxMSE")
    message = r"names a loss class of one's own, SoftmaxMSE of module .*custom_objects=\{'SoftmaxMSE': SoftmaxMSE\}"
    with pytest.raises(ModelFileError, match=message):
        load_model(tmp_path / "saved")
    with load_model(tmp_path / "saved", custom_objects={"SoftmaxMSE": SoftmaxMSE}) as loaded:
        assert type(loaded.loss) is SoftmaxMSE
    with pytest.raises(ModelFileError, match="custom_objects"):  # for that load only
        load_model(tmp_path / "saved")


def test_a_loss_whose_config_lacks_an_argument_is_refused_before_a_save_naming_the_fix():
    class Weighted(Loss):
        def __init__(self, weight):
            object.__setattr__(self, "weight", weight)
            super().__init__()

        def elements(self, builder, output, labels):
            return builder.node("Abs", [builder.node("Sub", [output, labels])])

    class WeightedSaved(Weighted):
        def get_config(self):
            return {**super().get_config(), "weight": self.weight}

    with pytest.raises(InvalidArgumentError, match=r"loss Weighted .*could not be loaded back.*'weight'") as error:
        check_loadable(Weighted(2.0))
    assert "Override get_config() to return every argument __init__ needs" in str(error.value)
    check_loadable(WeightedSaved(2.0))
    assert losses.get(WeightedSaved(2.0).get_config()).weight == 2.0


def test_a_name_onnxtrain_takes_or_two_classes_share_is_saved_as_module_and_class_instead():
    @dataclass(frozen=True)
    class MyMSE(SoftmaxMSE):
        name: str = field(default="mse", init=False)

    @dataclass(frozen=True)
    class First(SoftmaxMSE):
        name: str = field(default="shared", init=False)

    @dataclass(frozen=True)
    class Second(SoftmaxMSE):
        name: str = field(default="shared", init=False)

    assert losses.get("mse") == MeanSquaredError()  # onnxtrain's names stay onnxtrain's
    assert MyMSE().get_config() == {"name": _own_losses.class_key(MyMSE)}
    assert First().get_config() == {"name": _own_losses.class_key(First)}
    for loss in (MyMSE(), First(), Second()):
        check_loadable(loss)
    with pytest.raises(UnknownIdentifierError, match=r"'shared': it names several loss classes of one's own"):
        losses.get("shared")


def _module_class(module: str, exponent: int) -> type[Loss]:
    """A loss class `MyLoss` as module `module` would define it: |d| ** exponent."""

    def elements(self, builder, output, labels):
        difference = builder.node("Abs", [builder.node("Sub", [output, labels])])
        return difference if exponent == 1 else builder.node("Mul", [difference, difference])

    return type("MyLoss", (Loss,), {"__module__": module, "__qualname__": "MyLoss", "elements": elements})


def test_a_key_of_a_named_module_never_finds_the_class_of_that_name_of_another_module():
    squared = _module_class("losses_of_mod1", 2)
    with pytest.raises(UnknownIdentifierError) as refused:
        losses.get("losses_of_mod2.MyLoss")
    message = str(refused.value)
    assert "MyLoss of module 'losses_of_mod2'" in message and "Import losses_of_mod2 before loading" in message
    assert "The class of that name this process has, losses_of_mod1.MyLoss, is another class" in message
    assert type(losses.get("losses_of_mod1.MyLoss")) is squared
    absolute = _module_class("losses_of_mod2", 1)
    assert type(losses.get("losses_of_mod2.MyLoss")) is absolute


def test_a_key_of_a_script_finds_the_class_of_that_name_where_a_module_defines_it():
    imported = _module_class("losses_of_mod1", 2)
    assert type(losses.get("__main__.MyLoss")) is imported  # the script's class, imported from its module
    _module_class("losses_of_mod2", 1)
    with pytest.raises(UnknownIdentifierError, match=r"'__main__.MyLoss': it names several loss classes"):
        losses.get("__main__.MyLoss")


@dataclass(frozen=True)
class PerOutputWeights(Loss):
    """A tuple field (a frozen dataclass takes no list default), which a save writes as a JSON list."""

    weights: tuple = (1.0, 2.0)

    def elements(self, builder, output, labels):
        return builder.node("Abs", [builder.node("Sub", [output, labels])])


def test_settings_a_save_writes_differently_but_equal_are_loadable():
    check_loadable(PerOutputWeights())  # (1.0, 2.0) loads as [1.0, 2.0]: the same numbers
    assert losses.get(json.loads(json.dumps(PerOutputWeights().get_config()))).weights == [1.0, 2.0]
    for scale in (np.float32(2.0), np.float64(0.1), np.int64(3)):
        config = ScaledError(scale=scale).get_config()  # numpy numbers as Python's, as Keras serializes them
        assert config["scale"] == scale.item() and type(config["scale"]) is type(scale.item())
        check_loadable(ScaledError(scale=scale))
    assert PerOutputWeights(weights=(np.float32(0.5), 1)).get_config()["weights"] == (0.5, 1)


def test_a_refused_loss_names_the_settings_its_config_loses():
    class Plain(Loss):
        def __init__(self, scale=1.0):
            super().__init__()
            object.__setattr__(self, "scale", scale)

        def elements(self, builder, output, labels):
            return builder.node("Abs", [builder.node("Sub", [output, labels])])

    with pytest.raises(InvalidArgumentError) as refused:
        check_loadable(Plain(2.0))
    message = str(refused.value)
    assert "load_model rebuilds it from its get_config(), {'name': " in message, message
    assert "with scale=1.0 where the loss has scale=2.0 (scale: not in get_config())." in message, message
    check_loadable(Plain())  # its config rebuilds the loss as it is


@pytest.mark.parametrize(
    ("identifier", "message"),
    [
        ("no_such_loss", r"Could not interpret loss 'no_such_loss'.*custom_objects=\{'MyLoss': MyLoss\}"),
        ({"name": ""}, r"an earlier onnxtrain saved a loss of one's own under no name.*load_model\(dir, loss="),
        ("__main__.Gone", r"Gone of module '__main__'.*Define Gone before loading.*custom_objects=\{'Gone': Gone\}"),
    ],
)
def test_a_name_nothing_finds_says_how_to_give_a_loss_of_ones_own(identifier, message):
    with pytest.raises(UnknownIdentifierError, match=message):
        losses.get(identifier)
