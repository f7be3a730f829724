"""Keras' initializers as a Keras config writes them: `initializers.get` reads Keras 3's serialized form
(`{"module": "keras.initializers", "class_name": ..., "config": {...}, "registered_name": None}`), Keras 2's
(`{"class_name", "config"}`) and Keras' names as the initializer Keras means: the same class and arguments
(tests/data/keras/layer_configs.json's `initializers`, from tools/keras_layer_configs.py) and the same distribution
as Keras draws; what onnxtrain cannot rebuild is refused naming it."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from layer_harness import KERAS_FIXTURES

from onnxtrain import initializers
from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError, UnsupportedError
from onnxtrain.initializers import (
    Constant,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    Initializer,
    LeCunNormal,
    LeCunUniform,
    Ones,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    Zeros,
)

FACTS: dict[str, dict[str, Any]] = json.loads((KERAS_FIXTURES / "layer_configs.json").read_text())["initializers"]

# the fixture's initializers, as tools/keras_layer_configs.py made them in Keras, in onnxtrain
EXPECTED: dict[str, Initializer] = {
    "zeros": Zeros(),
    "ones": Ones(),
    "constant": Constant(0.3),
    "random_normal": RandomNormal(0.1, 0.2, seed=1),
    "random_uniform": RandomUniform(-0.3, 0.1, seed=2),
    "truncated_normal": TruncatedNormal(0.2, 0.05, seed=3),
    "variance_scaling_untruncated_fan_out": VarianceScaling(2.0, "fan_out", "untruncated_normal"),
    "variance_scaling_uniform_fan_avg": VarianceScaling(0.5, "fan_avg", "uniform", seed=4),
    "variance_scaling_normal_fan_in": VarianceScaling(1.5, "fan_in", "truncated_normal"),
    "glorot_normal": GlorotNormal(),
    "glorot_uniform": GlorotUniform(seed=5),
    "he_normal": HeNormal(),
    "he_uniform": HeUniform(),
    "lecun_normal": LeCunNormal(),
    "lecun_uniform": LeCunUniform(),
    "orthogonal": Orthogonal(gain=2.0, seed=6),
}
# the ones whose draws have no bound but the extremes of their sample
UNBOUNDED = {"random_normal", "variance_scaling_untruncated_fan_out", "orthogonal"}


def test_the_fixture_has_every_initializer_onnxtrain_has() -> None:
    assert sorted(FACTS) == sorted(EXPECTED)
    assert {type(i) for i in EXPECTED.values()} == set(initializers._CLASSES.values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_keras_serialized_initializer_is_the_one_keras_means(name: str) -> None:
    config = FACTS[name]["config"]
    assert config["module"] == "keras.initializers" and config["registered_name"] is None
    assert initializers.get(config) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_keras_serialized_initializer_draws_what_keras_draws(name: str) -> None:
    """The same distribution: mean and standard deviation, and the bounds of a bounded one, of a (100, 200) weight
    with Keras' fans (100, 200); seeded draws are numpy's, not Keras' values."""
    facts = FACTS[name]
    shape = tuple(facts["shape"])
    drawn = initializers.get(facts["config"])(shape, shape[0], shape[1], np.random.default_rng(0)).astype(np.float64)
    scale = max(facts["std"], 1e-12)
    # two samples' means differ by about sqrt(2) * std / sqrt(size): six of those is over four standard errors
    assert abs(drawn.mean() - facts["mean"]) <= 6 * scale / math.sqrt(drawn.size) + 1e-7, name
    assert drawn.std() == pytest.approx(facts["std"], rel=0.03, abs=1e-7), name
    if name not in UNBOUNDED:
        for bound in ("min", "max"):
            assert getattr(drawn, bound)() == pytest.approx(facts[bound], abs=0.02 * scale + 1e-6), (name, bound)
    if name == "orthogonal":  # 100 rows of 200: orthonormal rows, times the gain
        np.testing.assert_allclose(drawn @ drawn.T, 4.0 * np.eye(shape[0]), atol=1e-5)


KERAS_NAMES = {  # Keras' names (keras.initializers.get takes them) of the initializers onnxtrain has
    Zeros: ["Zeros", "zeros", "zero"],
    Ones: ["Ones", "ones", "one"],
    Constant: ["Constant", "constant"],
    RandomNormal: ["RandomNormal", "random_normal", "normal"],
    RandomUniform: ["RandomUniform", "random_uniform", "uniform"],
    TruncatedNormal: ["TruncatedNormal", "truncated_normal"],
    VarianceScaling: ["VarianceScaling", "variance_scaling"],
    GlorotNormal: ["GlorotNormal", "glorot_normal"],
    GlorotUniform: ["GlorotUniform", "glorot_uniform"],
    HeNormal: ["HeNormal", "he_normal"],
    HeUniform: ["HeUniform", "he_uniform"],
    LeCunNormal: ["LecunNormal", "lecun_normal"],
    LeCunUniform: ["LecunUniform", "lecun_uniform"],
    Orthogonal: ["Orthogonal", "orthogonal", "OrthogonalInitializer"],
}


@pytest.mark.parametrize(("cls", "name"), [(cls, name) for cls, names in KERAS_NAMES.items() for name in names])
def test_keras_names_give_the_initializer_keras_means(cls: type[Initializer], name: str) -> None:
    assert initializers.get(name) == cls()
    assert initializers.get({"module": "keras.initializers", "class_name": name, "config": {}}) == cls()


def test_keras_2_serialized_initializers_are_read_too() -> None:
    keras_2 = {"class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": "fan_in", "distribution": "normal"}}
    assert initializers.get(keras_2) == VarianceScaling(2.0, "fan_in", "truncated_normal")
    assert initializers.get({"class_name": "Zeros"}) == Zeros()  # no config: Keras' defaults


def test_keras_constant_of_an_array_is_read() -> None:
    value = {"class_name": "__numpy__", "config": {"value": [[0.0, 1.0], [2.0, 3.0]], "dtype": "float64"}}
    keras = {"module": "keras.initializers", "class_name": "Constant", "config": {"value": value}}
    assert initializers.get(keras) == Constant(np.array([[0.0, 1.0], [2.0, 3.0]]))


def test_variance_scaling_takes_keras_distribution_spellings() -> None:
    assert VarianceScaling(distribution="Uniform") == VarianceScaling(distribution="uniform")
    assert VarianceScaling(distribution="normal") == VarianceScaling(distribution="truncated_normal")
    assert VarianceScaling(distribution="UNTRUNCATED_NORMAL").get_config()["distribution"] == "untruncated_normal"


def test_untruncated_normal_draws_the_plain_normal() -> None:
    drawn = VarianceScaling(2.0, "fan_in", "untruncated_normal", seed=0)((400, 300), 50, 300, np.random.default_rng())
    assert drawn.std() == pytest.approx(math.sqrt(2.0 / 50), rel=0.01)
    assert np.abs(drawn).max() > 3 * math.sqrt(2.0 / 50)  # not cut at two standard deviations


def test_one_of_input_axes_and_output_axes_is_ignored_as_keras_ignores_it() -> None:
    keras = {"class_name": "GlorotUniform", "config": {"seed": None, "input_axes": [0], "output_axes": None}}
    assert initializers.get(keras) == GlorotUniform()


def keras_initializer(class_name: str, config: dict[str, Any], **outer: Any) -> dict[str, Any]:
    return {"module": "keras.initializers", "class_name": class_name, "config": config, "registered_name": None} | outer


SEED_GENERATOR = {
    "module": "keras.random",
    "class_name": "SeedGenerator",
    "config": {"seed": 3},
    "registered_name": None,
}
BAD = [
    (
        keras_initializer("RandomNormal", {"seed": SEED_GENERATOR, "mean": 0.0, "stddev": 0.05}),
        UnsupportedError,
        r"^Keras' RandomNormal initializer has seed=\{.*'SeedGenerator'.*\}: a Keras SeedGenerator .* Give an int seed",
    ),
    (
        keras_initializer("GlorotUniform", {"seed": None, "input_axes": [0], "output_axes": [1]}),
        UnsupportedError,
        r"^Keras' GlorotUniform initializer has input_axes=\[0\] and output_axes=\[1\] \(the fans of an EinsumDense "
        r"kernel\).* Leave both out",
    ),
    (
        keras_initializer("MyInit", {}, module="my_package", registered_name="MyPackage>MyInit"),
        UnsupportedError,
        r"^Keras' serialized initializer 'MyInit' is a class of one's own \(module 'my_package', registered as "
        r"'MyPackage>MyInit'\), which onnxtrain cannot rebuild",
    ),
    (keras_initializer("Zeros", {}, module="__main__"), UnsupportedError, r"class of one's own \(module '__main__'"),
    (
        keras_initializer("Identity", {"gain": 1.0}),
        UnknownIdentifierError,
        r"^Could not interpret initializer 'Identity'\. Valid names: .* Identity is one of Keras' initializers that "
        r"onnxtrain does not have",
    ),
    (
        keras_initializer("STFTInitializer", {}),
        UnknownIdentifierError,
        r"STFT is one of Keras' initializers that onnxtrain does not have",
    ),
    (
        keras_initializer("RandomNormal", {"mean": 0.0, "stddev": 0.05, "seed": None, "shift": 1}),
        InvalidArgumentError,
        r"unknown key\(s\) \['shift'\] for RandomNormal",
    ),
    (
        keras_initializer("VarianceScaling", {"distribution": "cauchy"}),
        InvalidArgumentError,
        r"^VarianceScaling\(distribution=\.\.\.\) expects one of \['truncated_normal', 'untruncated_normal', "
        r"'uniform'\] .* Received: distribution='cauchy'$",
    ),
    (
        {"class_name": "Zeros", "config": [1]},
        InvalidArgumentError,
        r"^Could not interpret Keras' serialized initializer \{'class_name': 'Zeros', 'config': \[1\]\}: expected",
    ),
    (
        keras_initializer("Zeros", {}, build_config={}),
        InvalidArgumentError,
        r"^Could not interpret Keras' serialized initializer .* \(unknown key\(s\) \['build_config'\]\)\.$",
    ),
]


@pytest.mark.parametrize(("identifier", "error", "message"), BAD)
def test_what_onnxtrain_cannot_rebuild_is_refused_naming_it(identifier: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        initializers.get(identifier)
