"""`load_model(path, custom_objects={...})`, Keras' way of giving a load the layers, losses and metrics of one's own
that a save names but does not hold: each resolves the name the save gives it for that load only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from onnxtrain import _own_losses, losses, metrics
from onnxtrain.errors import InvalidTypeError, ModelFileError, UnknownIdentifierError
from onnxtrain.layers import Dense, Input, Layer
from onnxtrain.loading import load_model
from onnxtrain.losses import Loss
from onnxtrain.model import Model

X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
Y = X[:, :1] * 2


class Twice(Layer):
    def compute_output_shape(self, input_shape):
        return input_shape

    def emit(self, builder, x):
        return builder.node("Add", [x, x])


@dataclass(frozen=True)
class AbsoluteError(Loss):
    name: str = field(default="absolute_error", init=False)

    def elements(self, builder, output, labels):
        return builder.node("Abs", [builder.node("Sub", [output, labels])])


def max_error(y_true, y_pred):
    return np.max(np.abs(y_true - y_pred), axis=-1)


def _saved(tmp_path, loss=None, metric_list=None):
    """A model with a Twice layer, saved; returns its folder and predictions."""
    x = Input(3)
    with Model(x, Dense(1, activation="linear", name="out")(Twice(name="twice")(x)), seed=0) as model:
        model.compile(optimizer="sgd", loss=loss or "mse", metrics=metric_list or [], engine="portable")
        model.fit(X, Y, epochs=1, verbose=0)
        model.save(tmp_path / "saved")
        return tmp_path / "saved", model.predict(X, verbose=0)


@pytest.fixture
def undefined_twice(monkeypatch):
    """A process that has not defined Twice: it is not registered under the name the save gives it."""
    monkeypatch.delitem(Layer.registry, Twice.registry_key())


def _rename_layer_class(directory, old, new):
    """The save as a script's would be, its layer class named `new` ("__main__.Twice")."""
    path = directory / "config.json"
    path.write_text(path.read_text().replace(json.dumps(old), json.dumps(new)))


def test_a_layer_of_ones_own_the_process_lacks_is_refused_naming_custom_objects(tmp_path, undefined_twice):
    directory, _ = _saved(tmp_path)
    with pytest.raises(ModelFileError, match=r"custom_objects=\{'Twice': Twice\}"):
        load_model(directory)


@pytest.mark.parametrize("key", ["Twice", "full name"])
def test_custom_objects_resolve_a_layer_for_that_load_only(tmp_path, undefined_twice, key):
    directory, predicted = _saved(tmp_path)
    key = Twice.registry_key() if key == "full name" else key
    with load_model(directory, custom_objects={key: Twice}) as loaded:
        np.testing.assert_allclose(loaded.predict(X, verbose=0), predicted, atol=1e-6)
        assert isinstance(loaded.get_layer("twice"), Twice)
        loaded.fit(X, Y, epochs=1, verbose=0)
    assert Twice.registry_key() not in Layer.registry  # not registered for later loads
    with pytest.raises(ModelFileError, match="custom_objects"):
        load_model(directory)


def test_custom_objects_resolve_a_layer_saved_from_a_script(tmp_path):
    directory, predicted = _saved(tmp_path)
    _rename_layer_class(directory, Twice.registry_key(), "__main__.Twice")
    with pytest.raises(ModelFileError, match=r"'__main__.Twice'.*Define Twice.*custom_objects=\{'Twice': Twice\}"):
        load_model(directory)
    for key in ("Twice", "__main__.Twice"):
        with load_model(directory, custom_objects={key: Twice}) as loaded:
            np.testing.assert_allclose(loaded.predict(X, verbose=0), predicted, atol=1e-6)
    assert "__main__.Twice" not in Layer.registry


def test_custom_objects_resolve_a_loss_and_a_metric_function(tmp_path, monkeypatch):
    directory, _ = _saved(tmp_path, loss=AbsoluteError(), metric_list=[max_error])
    # a process that has not defined AbsoluteError (a loss class of one's own is recorded as it is defined)
    monkeypatch.delitem(_own_losses.DEFINED, _own_losses.class_key(AbsoluteError))
    with pytest.raises(ModelFileError, match="absolute_error"):
        load_model(directory)
    own = {"AbsoluteError": AbsoluteError, "max_error": max_error}
    with load_model(directory, custom_objects=own) as loaded:
        assert isinstance(loaded.loss, AbsoluteError)
        result = loaded.evaluate(X, Y, return_dict=True, verbose=0)
    assert set(result) == {"loss", "max_error"}
    assert result["max_error"] >= result["loss"]  # the largest error is at least the mean one (one unit)
    with pytest.raises(ModelFileError):  # neither stays registered
        load_model(directory)
    assert "max_error" not in metrics._REGISTERED.names
    with pytest.raises(UnknownIdentifierError, match="absolute_error"):
        losses.get("absolute_error")


@pytest.mark.parametrize(
    ("custom_objects", "match"),
    [
        ([Twice], r"expects a dict \{name: class\}.*Received: list"),
        ({"Twice": Twice()}, r"subclasses\) or functions \(metrics, Lambda layers'\)\. Received: 'Twice': "),
        ({"scale": 2.0}, r"Received: 'scale': 2.0"),
        ({1: Twice}, r"Received: 1: "),
    ],
)
def test_custom_objects_of_other_kinds_are_refused_before_reading(tmp_path, custom_objects, match):
    with pytest.raises(InvalidTypeError, match=match):
        load_model(tmp_path / "nothing here", custom_objects=custom_objects)


def test_an_unknown_keyword_is_still_refused_naming_compiles_options(tmp_path):
    with pytest.raises(InvalidTypeError, match=r"unexpected keyword argument 'optimiser'.*'optimizer'") as error:
        load_model(tmp_path, optimiser="sgd")
    assert "'unknown'" not in str(error.value)
