"""The Sequential model a run config describes (`onnxtrain.cli._config_model`): the built-in CNN example, the
layers a config can name and the errors for the arguments it gives them."""

from __future__ import annotations

import pytest

from onnxtrain.cli._config_model import build_model
from onnxtrain.cli._examples import example_config
from onnxtrain.errors import InvalidArgumentError, UnsupportedError


def test_the_cnn_example_builds_the_lenet_style_cnn():
    config = example_config("fashion-cnn")
    assert (config["epochs"], config["batch_size"], config["seed"], config["optimizer"]) == (
        10, 100, 42, {"name": "adam", "learning_rate": 0.001}
    )  # fmt: skip
    with build_model(config) as model:
        rows = [(type(layer).__name__, layer.output_shape) for layer in model.layers]
        conv = [layer.get_config() for layer in model.layers if type(layer).__name__ == "Conv2D"]
        dropout = next(layer for layer in model.layers if type(layer).__name__ == "Dropout")
        assert rows == [
            ("Input", (28, 28, 1)),
            ("Conv2D", (28, 28, 32)),
            ("MaxPooling2D", (14, 14, 32)),
            ("Conv2D", (12, 12, 64)),
            ("MaxPooling2D", (6, 6, 64)),
            ("Flatten", (2304,)),
            ("Dense", (128,)),
            ("Dropout", (128,)),
            ("Dense", (10,)),
        ]
        assert [(c["kernel_size"], c["padding"], c["activation"]) for c in conv] == [
            ([3, 3], "same", {"name": "relu"}), ([3, 3], "valid", {"name": "relu"})
        ]  # fmt: skip
        assert dropout.get_config()["rate"] == 0.5
        assert model.param_counts() == (315_146, 0)  # (trainable, frozen)


LAYER_ERRORS = [
    # (id, a [[layers]] entry after Input, pattern of the error)
    (
        "unknown_type",
        {"type": "Conv4D"},
        r"^layers\[1\]: Could not interpret layer class 'Conv4D'\. Known layers: .*Conv2D",
    ),
    ("private_base", {"type": "_Conv"}, r"^layers\[1\]: Could not interpret layer class '_Conv'"),
    (
        "unknown_argument",
        {"type": "Conv2D", "filters": 4, "kernel_size": 3, "paddin": "same"},
        r"^layers\[1\] \(Conv2D\): unexpected keyword argument 'paddin'\. Conv2D takes: filters, kernel_size, strides, "
        r"padding, ",
    ),
    (
        "missing_argument",
        {"type": "Conv2D", "kernel_size": 3},
        r"^layers\[1\] \(Conv2D\) needs filters, e\.g\. filters = ",
    ),
    ("bad_value", {"type": "Dropout", "rate": 1.5}, r"Dropout\(rate=\.\.\.\) expects a number in \[0, 1\)"),
]


@pytest.mark.parametrize(("case", "entry", "pattern"), LAYER_ERRORS, ids=[e[0] for e in LAYER_ERRORS])
def test_a_config_layer_is_refused_with_what_it_takes(case, entry, pattern):
    with pytest.raises(InvalidArgumentError, match=pattern):
        build_model({"layers": [{"type": "Input", "shape": [8, 8, 1]}, entry]})


def test_a_config_may_name_a_layer_by_its_alias():
    layers = [{"type": "Input", "shape": [8, 8, 1]}, {"type": "MaxPool2D", "pool_size": 2}, {"type": "Flatten"}]
    with build_model({"layers": layers}) as model:
        assert type(model.layers[1]).__name__ == "MaxPooling2D" and model.layers[-1].output_shape == (16,)


def test_a_wrapper_takes_its_layer_as_an_entry_of_its_own():
    layers = [
        {"type": "Input", "shape": [5, 3]},
        {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 4, "return_sequences": True}},
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 2}},
        {"type": "Flatten"},
    ]
    with build_model({"layers": layers}) as model:
        assert [type(layer).__name__ for layer in model.layers[1:3]] == ["Bidirectional", "TimeDistributed"]
        assert (model.layers[1].forward_layer.units, model.layers[1].output_shape) == (4, (5, 8))
        assert model.layers[-1].output_shape == (10,)
    unknown = [layers[0], {"type": "Bidirectional", "layer": {"type": "LSTM", "unit": 4}}]
    with pytest.raises(
        InvalidArgumentError, match=r"^layers\[1\] \(LSTM\): unexpected keyword argument 'unit'\. LSTM "
    ):
        build_model({"layers": unknown})


def test_a_config_layer_takes_keras_data_format_and_refuses_channels_first():
    conv = {"type": "Conv2D", "filters": 2, "kernel_size": 3}
    model = build_model({"layers": [{"type": "Input", "shape": [8, 8, 1]}, {**conv, "data_format": "channels_last"}]})
    assert type(model.layers[1]).__name__ == "Conv2D"
    with pytest.raises(
        UnsupportedError, match=r"^layers\[1\] \(Conv2D\): Conv2D\(data_format='channels_first'\) is not supported"
    ):
        build_model({"layers": [{"type": "Input", "shape": [8, 8, 1]}, {**conv, "data_format": "channels_first"}]})
