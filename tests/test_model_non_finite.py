"""Weights that hold NaN or inf (training diverged): NonFiniteLossError says so truthfully, save, save_weights and
export refuse them before writing anything, and load_model refuses a file of them as a damaged save."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from onnxtrain import Sequential, load_model
from onnxtrain._finite_weights import describe_non_finite, non_finite_weights
from onnxtrain.errors import ModelFileError, ModelStateError, NonFiniteLossError
from onnxtrain.layers import Dense, Input

RNG = np.random.default_rng(0)
X = RNG.random((64, 8), np.float32)
Y = RNG.integers(0, 3, 64)


def tiny() -> Sequential:
    return Sequential.of(Input(8), Dense(16), Dense(3), seed=0)


def broken(model: Sequential) -> Sequential:
    """`model` with NaN in two of dense_1.kernel's values and inf in dense_2.bias (set in the layers, as a step that
    overflowed leaves them: set_weights refuses such values)."""
    kernel = model.get_weights()["dense_1.kernel"].copy()
    kernel.flat[[0, 5]] = np.nan
    bias = np.full(3, np.inf, np.float32)
    model.graph.set_params_by_name({"dense_1.kernel": kernel, "dense_2.bias": bias})
    return model


def test_the_non_finite_parameters_are_named_with_their_counts():
    found = non_finite_weights(broken(tiny()).get_weights())
    assert found == {"dense_1.kernel": (2, 128), "dense_2.bias": (3, 3)}
    assert describe_non_finite(found) == "parameters dense_1.kernel (2 of 128 values), dense_2.bias (3 of 3 values)"


WRITES = [
    ("save", lambda model, path: model.save(path / "saved")),
    ("save_weights", lambda model, path: model.save_weights(path / "w.weights.npz")),
    ("export", lambda model, path: model.export(path / "model.onnx")),
]


@pytest.mark.parametrize(("action", "write"), WRITES, ids=[row[0] for row in WRITES])
def test_non_finite_weights_are_refused_before_anything_is_written(tmp_path, action, write):
    model = broken(tiny())
    with pytest.raises(
        ModelStateError,
        match=rf"^{action}: the model's parameters dense_1\.kernel \(2 of 128 values\), dense_2\.bias \(3 of 3 "
        r"values\) hold NaN or inf \(training diverged\), so the file would hold a model that predicts nothing.*"
        r"Nothing was written\.",
    ):
        write(model, tmp_path)
    assert not list(tmp_path.iterdir())


def test_load_model_refuses_a_save_with_non_finite_weights_naming_the_file(tmp_path):
    with tiny() as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        directory = model.save(tmp_path / "saved")
    # As an earlier version saved a diverged model: NaN in model.onnx, its checksum recorded for those bytes.
    proto = onnx.load(directory / "model.onnx")
    for initializer in proto.graph.initializer:
        if initializer.name == "dense_2.kernel":
            value = numpy_helper.to_array(initializer).copy()
            value.flat[:4] = np.nan
            initializer.CopyFrom(numpy_helper.from_array(value, initializer.name))
    (directory / "model.onnx").write_bytes(proto.SerializeToString())
    config = json.loads((directory / "config.json").read_text())
    del config["model_sha256"]
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ModelFileError,
        match=r"^.*saved/model\.onnx: the model's parameter dense_2\.kernel \(4 of 48 values\) hold NaN or inf: it was "
        r"saved after its training diverged.*Load an earlier save",
    ):
        load_model(directory)


@pytest.mark.training
def test_a_step_that_broke_the_weights_is_reported_truthfully():
    # /tmp/ut_robust/r_nan.py: Adam on x * 1e37 with ort-training; the last finite loss's update made NaN weights.
    with tiny() as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine="ort-training")
        with pytest.raises(
            NonFiniteLossError,
            match=r"^The loss became nan at epoch 1, batch 2/2; training stopped, and the model's weights are no "
            r"longer usable: parameters dense_1\.kernel \(\d+ of 128 values\), dense_2\.kernel \(\d+ of 48 values\) "
            r"hold NaN or inf, made by the update before that batch.*Start again from a saved model",
        ):
            model.fit(X * 1e37, Y, epochs=1, batch_size=32, verbose=0)
        with pytest.raises(ModelStateError, match=r"^save: the model's parameters dense_1\.kernel"):
            model.save("never-written")


def test_a_non_finite_loss_with_finite_weights_says_they_were_kept():
    x = RNG.normal(size=(64, 8)).astype(np.float32) * 100
    y = RNG.normal(size=(64, 3)).astype(np.float32) * 1e6
    with Sequential.of(Input(8), Dense(3, activation="linear"), seed=2) as model:
        model.compile(optimizer="sgd", loss="mse")
        with pytest.raises(
            NonFiniteLossError, match=r"training stopped and the weights of the last finite step were kept"
        ):
            model.fit(x, y, epochs=50, batch_size=8, verbose=0)


def test_an_imported_graph_with_an_exporters_minus_inf_constant_trains_saves_loads_and_exports(tmp_path):
    """A constant an exporter wrote (a causal mask of -inf: frozen by default) is not a diverged weight: the model
    saves, loads, exports and predicts; only what training changes must be finite."""
    from onnx import TensorProto, helper

    from onnxtrain import InferenceModel, from_onnx

    rng = np.random.default_rng(0)
    weights = {"mask": np.array([-np.inf, -np.inf, 0.0, -np.inf], np.float32), "w": rng.normal(size=(4, 2))}
    graph = helper.make_graph(
        [helper.make_node("Max", ["x", "mask"], ["kept"]), helper.make_node("MatMul", ["kept", "w"], ["logits"])],
        "masked",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        [numpy_helper.from_array(np.asarray(v, np.float32), n) for n, v in weights.items()],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    with from_onnx(proto) as model:
        model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
        model.fit(x, y, batch_size=8, verbose=0)
        expected = model.predict_softly(x)
        model.save(tmp_path / "saved")
        exported = model.export(tmp_path / "model.onnx")
    with load_model(tmp_path / "saved") as loaded:
        np.testing.assert_array_equal(loaded.predict_softly(x), expected)
        mask = next(value for name, value in loaded.get_weights().items() if name.endswith("mask"))
        assert np.isneginf(mask).sum() == 3
    np.testing.assert_allclose(InferenceModel.load(exported).predict_softly(x), expected, rtol=1e-6)
