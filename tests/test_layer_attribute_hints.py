"""`layer.<KotlinDL's name>` (`layers/_attribute_hints.py`): a miss names Python's spelling, as a model's does
(`model.predictSoftly`), and every other miss stays a plain AttributeError."""

from __future__ import annotations

import pytest

from onnxtrain.layers import Conv2D, Dense, Lambda

HINTED = [
    (Dense(3), "isTrainable", r"KotlinDL's isTrainable is layer\.trainable here$"),
    (Dense(3), "is_trainable", r"KotlinDL's is_trainable is layer\.trainable here$"),
    (Dense(3), "outputSize", r"KotlinDL's outputSize is layer\.units here$"),
    (Dense(3), "getWeights", r"camelCase names is snake_case: layer\.get_weights$"),
    (Dense(3), "paramCount", r"camelCase names is snake_case: layer\.param_count$"),
    (Conv2D(2, 3), "kernelSize", r"camelCase names is snake_case: layer\.kernel_size$"),
]


@pytest.mark.parametrize(("layer", "attribute", "hint"), HINTED, ids=[row[1] for row in HINTED])
def test_kotlindl_names_of_a_layers_attributes_name_pythons(layer, attribute, hint):
    with pytest.raises(AttributeError, match=rf"^'{type(layer).__name__}' object has no attribute '{attribute}'\. "):
        getattr(layer, attribute)
    with pytest.raises(AttributeError, match=hint):
        getattr(layer, attribute)
    assert not hasattr(layer, attribute)


@pytest.mark.parametrize("attribute", ["fooBar", "nothing_here", "_private", "kernelSize"])
def test_other_misses_stay_plain(attribute):
    with pytest.raises(AttributeError, match=rf"^'Dense' object has no attribute '{attribute}'$") as caught:
        getattr(Dense(3), attribute)  # (Dense has no kernel_size: kernelSize names nothing it has)
    assert caught.value.name == attribute
    assert getattr(Dense(3), attribute, "default") == "default"


def test_a_layer_class_own_attributes_and_settings_are_read_as_before():
    layer = Lambda(lambda g, x: x, name="same")
    assert layer.trainable is True and layer.name == "same" and layer.output_shape is None
