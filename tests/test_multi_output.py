"""`onnxtrain.multi_output` and its parts (`_output_spec`, `_output_arguments`): compile's per-output arguments
resolved as Keras 3 takes them, the config round trip, and the packing of outputs and labels against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import losses
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.multi_output import NO_LOSS, OutputLosses, packed_width, resolve

NAMES, SHAPES = ["a", "b"], [(3,), (2,)]


def test_losses_weights_and_metrics_are_resolved_per_output():
    resolved = resolve(NAMES, SHAPES, {"a": "mse"}, {"a": 2.0}, {"a": ["mae", "mae"]})
    first, second = resolved.outputs
    assert (first.name, first.loss, first.weight, [m.name for m in first.metrics]) == (
        "a",
        losses.get("mse"),
        2.0,
        ["mae"],  # one metric given twice is kept once, as Keras keeps it
    )
    assert second.loss is NO_LOSS and second.label_width == 0 and not second.metrics
    assert resolved.keys() == ["a_mae"]  # one output with a loss: its loss is the model's, not logged apart


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ((["mse"], None, None), r"loss given as a list expects one entry per output: 2 \(\['a', 'b'\]\)"),
        (({"c": "mse"}, None, None), r"loss given as a dict expects output names as keys: .*unknown key\(s\): \['c'\]"),
        (([None, None], None, None), "expects a loss for at least one output"),
        (("mse", [1.0, -1.0], None), r"non-negative finite numbers. Received: -1.0 for output 'b'"),
        (([None, "mse"], None, [["mae"], None]), "metrics for output 'a', which has no loss"),
    ],
)
def test_bad_per_output_arguments_are_refused(arguments, match):
    with pytest.raises(InvalidArgumentError, match=match):
        resolve(NAMES, SHAPES, *arguments)


@pytest.mark.parametrize(
    ("loss", "shape"),
    [
        ("sparse_categorical_crossentropy", (6, 3)),  # a tagger's class per time step
        ("sparse_categorical_crossentropy", (4, 4, 3)),
    ],
)
def test_sparse_cross_entropy_on_an_output_of_several_axes_takes_a_class_per_position(loss, shape):
    # as Keras: one class index per position, (N, *positions) for an output (*positions, C)
    resolved = resolve(["tag", "reg"], [shape, (2,)], [loss, "mse"], None, None)
    assert resolved.outputs[0].label_width == int(np.prod(shape[:-1]))
    resolved = resolve(["tag", "reg"], [shape, (2,)], ["categorical_crossentropy", "mse"], None, None)
    assert resolved.outputs[0].label_width == int(np.prod(shape))  # one-hot targets shaped like the output
    resolved = resolve(["tag", "reg"], [shape, (2,)], [None, "mse"], None, None)  # no loss: takes no labels
    assert resolved.outputs[0].label_width == 0


def test_the_config_round_trip_keeps_every_output():
    resolved = resolve(NAMES, SHAPES, ["mse", None], [0.5, 1.0], [["mae"], None], weighted_metrics=[["mae"], None])
    assert OutputLosses.from_config(resolved.get_config()) == resolved
    assert [m.name for m in resolved.outputs[0].weighted_metrics] == ["weighted_mae"]  # Keras' key beside "mae"


def test_outputs_and_labels_unpack_as_they_were_packed():
    resolved = resolve(NAMES, SHAPES, "mse", None, None)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    packed = np.concatenate([a, b, np.zeros((4, 2))], axis=1)  # each output flattened, then one loss column each
    assert packed.shape[1] == packed_width(SHAPES) == resolved.packed_width
    unpacked = resolved.unpack_outputs(packed)
    np.testing.assert_array_equal(unpacked[0], a)
    np.testing.assert_array_equal(unpacked[1], b)
    labels = resolved.prepare_labels({"a": a, "b": b}, ())
    np.testing.assert_allclose(labels, np.concatenate([a, b], axis=1).astype(np.float32))
