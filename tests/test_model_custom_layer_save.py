"""A layer of one's own is saved only when load_model can rebuild it: its `get_config()` must bind to its class's
`__init__` (load_model calls `cls(**config)`). Doubles as the guide: override get_config to return every argument."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from onnxtrain import Model, Sequential, load_model
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Dense, Input, Layer


class NoGetConfig(Layer):
    """Takes `k`, which Layer's get_config does not return: saved, it could never load."""

    def __init__(self, k: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.k = k

    def compute_output_shape(self, input_shape):
        return input_shape

    def emit(self, builder, x):
        return x


class WithGetConfig(NoGetConfig):
    """The fix: get_config returns what __init__ needs."""

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


class ExtraKey(Layer):
    """get_config returns a key __init__ (without **kwargs) does not take."""

    def __init__(self, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)

    def compute_output_shape(self, input_shape):
        return input_shape

    def emit(self, builder, x):
        return x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": 2.0}


def nested(layer: Layer) -> Model:
    inner_input = Input(4)
    inner = Model(inner_input, layer(inner_input), name="inner", seed=0)
    outer_input = Input(4)
    return Model(outer_input, Dense(2)(inner(outer_input)), seed=0)


UNLOADABLE = [
    (
        lambda: Sequential.of(Input(4), NoGetConfig(3), Dense(2), seed=0),
        r"^save: NoGetConfig layer 'no_get_config_1' could not be loaded back: load_model rebuilds it as "
        r"NoGetConfig\(\*\*layer\.get_config\(\)\), and NoGetConfig\.__init__ needs \['k'\], which get_config\(\) does "
        r"not return \(it returns \['name', 'trainable'\]\)\. Override get_config\(\) to return every argument "
        r"__init__ needs: def get_config\(self\): return \{\*\*super\(\)\.get_config\(\), 'k': self\.k\}\. Nothing was "
        r"written\.$",
    ),
    (
        lambda: Sequential.of(Input(4), ExtraKey(), seed=0),
        r"get_config\(\) returns \['scale'\], which ExtraKey\.__init__ does not take",
    ),
    (lambda: nested(NoGetConfig(3)), r"NoGetConfig layer 'no_get_config_\d+' could not be loaded back"),  # nested too
]


@pytest.mark.parametrize(("make", "match"), UNLOADABLE, ids=["missing argument", "extra key", "nested"])
def test_a_layer_its_config_cannot_rebuild_is_refused_before_save_writes(tmp_path, make, match):
    model = make()
    with pytest.raises(InvalidArgumentError, match=match):
        model.save(tmp_path / "saved")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("make", [lambda: Sequential.of(Input(4), WithGetConfig(3), Dense(2), seed=0)])
def test_a_layer_whose_get_config_returns_its_arguments_saves_and_loads(tmp_path, make):
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    with make() as model:
        model.compile(optimizer="adam", loss="mse")
        expected = model.predict(x)
        model.save(tmp_path / "saved")
    with load_model(tmp_path / "saved") as loaded:
        assert loaded.get_layer("with_get_config_1").k == 3
        np.testing.assert_array_equal(loaded.predict(x), expected)
