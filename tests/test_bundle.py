"""onnxtrain.bundle: the training bundle JavaScript trains from, checked against the Python engine it continues."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given
from hypothesis import strategies as st

from onnxtrain import Model, Sequential
from onnxtrain._bundle_state import pack_state
from onnxtrain.bundle import BUNDLE_FILES, read_metadata, read_state, unpack_state
from onnxtrain.cli import main
from onnxtrain.errors import InvalidArgumentError, ModelExistsError, ModelFileError, ModelStateError
from onnxtrain.layers import BatchNormalization, Concatenate, Dense, Embedding, Flatten, Input

RNG = np.random.default_rng(5)
X = RNG.random((24, 4, 4, 1), dtype=np.float32)
Y = RNG.integers(0, 3, 24)


def _model(optimizer: str = "adam", engine: str = "portable", *extra: object) -> Sequential:
    model = Sequential.of(Input(4, 4, 1), Flatten(), Dense(6), *extra, Dense(3, activation="linear"), seed=3)
    model.compile(optimizer=optimizer, loss="softmax_cross_entropy_with_logits", engine=engine)
    return model


def _run_train_step(bundle, x, y):
    """One step of the bundle's train_step.onnx, fed from its state.bin, in Python's onnxruntime."""
    metadata, state = read_metadata(bundle), read_state(bundle)
    session = ort.InferenceSession(str(bundle / "train_step.onnx"), providers=["CPUExecutionProvider"])
    feeds = {name: state[name] for name in (i.name for i in session.get_inputs()) if name in state}
    feeds.update(input=x, labels=y.astype(np.int64), learning_rate=np.array(metadata["learning_rate"], np.float32))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


@pytest.mark.slow  # the first fit of the module compiles the fused update
def test_bundle_holds_the_engines_weights_optimizer_state_and_step(tmp_path):
    with _model() as model:
        model.fit((X, Y), epochs=1, batch_size=8, shuffle=False, verbose=0)
        model.export_training_bundle(tmp_path / "b")
        engine = model._trainer.engine
        weights, carried, step = engine.get_weights(), engine.carried_state(), engine.step
    assert {p.name for p in (tmp_path / "b").iterdir()} == BUNDLE_FILES
    state = read_state(tmp_path / "b")
    assert set(state) == {*weights, *carried, "step"}
    for name, value in {**weights, **carried}.items():
        np.testing.assert_array_equal(state[name], value)
    assert state["step"] == step == 3
    metadata = read_metadata(tmp_path / "b")
    assert metadata["inputs"] == [
        {"name": "input", "dtype": "float32", "shape": [None, 4, 4, 1], "token_ids": None, "rescales_pixels": False}
    ]
    assert metadata["labels"] == {"name": "labels", "dtype": "int64", "shape": [None]}
    assert metadata["state_source"] == "engine"
    assert all(entry["offset"] % 8 == 0 for entry in metadata["tensors"])


def test_the_bundles_train_step_continues_the_python_run(tmp_path):
    """state.bin fed to train_step.onnx gives what one more Python step gives: the bundle resumes exactly."""
    with _model() as model:
        model.fit((X[:16], Y[:16]), epochs=1, batch_size=8, shuffle=False, verbose=0)
        model.export_training_bundle(tmp_path / "b")
        model.fit((X[16:], Y[16:]), epochs=1, batch_size=8, shuffle=False, verbose=0)
        expected = {**model._trainer.engine.get_weights(), **model._trainer.engine.carried_state()}
    outputs = _run_train_step(tmp_path / "b", X[16:], Y[16:])
    assert outputs["updated.step"] == 3
    for name, value in expected.items():
        np.testing.assert_allclose(outputs[f"updated.{name}"], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_the_template_is_the_exported_model(tmp_path):
    with _model() as model:
        model.fit((X, Y), epochs=1, batch_size=8, verbose=0)
        model.class_names = ("a", "b", "c")
        model.export_training_bundle(tmp_path / "b")
        exported = model.inference_model()
    template = onnx.load(tmp_path / "b" / "model.onnx")
    assert template.SerializeToString() == exported.SerializeToString()
    metadata = read_metadata(tmp_path / "b")
    assert metadata["class_names"] == ["a", "b", "c"]
    assert metadata["export_initializers"] == {name: name for name in metadata["trainable"]}


def test_layer_state_is_carried_and_listed(tmp_path):
    with _model("sgd", "portable", BatchNormalization()) as model:
        model.export_training_bundle(tmp_path / "b")
    metadata = read_metadata(tmp_path / "b")
    assert metadata["layer_state"] == ["batch_normalization_1.moving_mean", "batch_normalization_1.moving_variance"]
    outputs = _run_train_step(tmp_path / "b", X[:8], Y[:8])
    assert {f"updated.{name}" for name in metadata["layer_state"]} <= set(outputs)


@pytest.mark.training
def test_an_ort_training_model_bundles_fresh_optimizer_state(tmp_path):
    pytest.importorskip("onnxruntime.training")
    with _model("adam", "ort-training") as model:
        model.fit((X, Y), epochs=1, batch_size=8, verbose=0)
        model.export_training_bundle(tmp_path / "b")
        weights = model.get_weights()
    state, metadata = read_state(tmp_path / "b"), read_metadata(tmp_path / "b")
    assert metadata["state_source"] == "fresh" and state["step"] == 0
    np.testing.assert_array_equal(state["dense_1.kernel"], weights["dense_1.kernel"])
    assert not state["optimizer.m.dense_1.kernel"].any()


def test_bundle_refuses_an_existing_folder_unless_overwritten(tmp_path):
    with _model() as model:
        model.export_training_bundle(tmp_path / "b")
        with pytest.raises(ModelExistsError, match="exists"):
            model.export_training_bundle(tmp_path / "b")
        model.fit((X, Y), epochs=1, batch_size=8, verbose=0)
        model.export_training_bundle(tmp_path / "b", writing_mode="override")
    assert read_state(tmp_path / "b")["step"] == 3


def test_bundle_onto_a_file_names_export_training_bundle(tmp_path):
    (tmp_path / "b").write_bytes(b"not a bundle")
    with _model() as model, pytest.raises(InvalidArgumentError) as raised:
        model.export_training_bundle(tmp_path / "b")
    assert str(raised.value).startswith("export_training_bundle(directory=...) expects a directory path, but '")
    assert (tmp_path / "b").read_bytes() == b"not a bundle"


def test_bundle_needs_a_compiled_model(tmp_path):
    model = Sequential.of(Input(2), Dense(2))
    with pytest.raises(ModelStateError, match=r"export_training_bundle\(\) needs a compiled model"):
        model.export_training_bundle(tmp_path / "b")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("{not json", "not a readable training bundle index"),
        (
            json.dumps({"format": "something/9"}),
            r"expects format 'onnxtrain.training_bundle/1'. Received: 'something/9'",
        ),
        ("[1]", "Received: 'list'"),
    ],
)
def test_read_metadata_refuses_what_is_not_a_bundle(tmp_path, metadata, message):
    (tmp_path / "bundle.json").write_text(metadata, encoding="utf-8")
    with pytest.raises(ModelFileError, match=message):
        read_metadata(tmp_path)


def test_read_state_reads_only_the_bundles_own_state_file(tmp_path):
    (tmp_path / "secret.bin").write_bytes(np.arange(4, dtype="<f4").tobytes())
    bundle = tmp_path / "b"
    bundle.mkdir()
    index = [{"name": "w", "dtype": "float32", "shape": [4], "offset": 0}]
    metadata = {"format": "onnxtrain.training_bundle/1", "files": {"state": "../secret.bin"}, "tensors": index}
    (bundle / "bundle.json").write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(ModelFileError, match=r"expects files.state 'state.bin'. Received: '../secret.bin'"):
        read_state(bundle)
    (bundle / "bundle.json").write_text(json.dumps({**metadata, "files": {"state": "state.bin"}}), encoding="utf-8")
    (bundle / "state.bin").write_bytes(np.arange(4, dtype="<f4").tobytes())
    np.testing.assert_array_equal(read_state(bundle)["w"], np.arange(4, dtype=np.float32))


def test_unpack_state_refuses_a_short_buffer_and_other_dtypes():
    index = [{"name": "w", "dtype": "float32", "shape": [2, 2], "offset": 8}]
    with pytest.raises(
        ModelFileError,
        match=r"expect 24 bytes \(state.bin of this bundle's 1 tensors\) or 48 .*"
        r"Received: 16 bytes",
    ):
        unpack_state(bytes(16), index)
    with pytest.raises(ModelFileError, match=r"expects dtype float32 or int64\. Received: float64"):
        unpack_state(bytes(64), [{**index[0], "dtype": "float64"}])
    np.testing.assert_array_equal(
        unpack_state(bytes(8) + np.arange(4, dtype="<f4").tobytes(), index)["w"],
        np.arange(4, dtype=np.float32).reshape(2, 2),
    )


@pytest.mark.slow
def test_cli_bundles_a_saved_model_with_its_optimizer_state(tmp_path, capsys):
    with _model() as model:
        model.fit((X, Y), epochs=1, batch_size=8, verbose=0)
        model.save(tmp_path / "saved", save_optimizer_state=True)
        carried = model._trainer.engine.carried_state()
    assert main(["bundle", str(tmp_path / "saved"), str(tmp_path / "b")]) == 0
    assert "Wrote training bundle" in capsys.readouterr().out
    state = read_state(tmp_path / "b")
    assert state["step"] == 3
    for name, value in carried.items():
        np.testing.assert_array_equal(state[name], value)
    assert main(["bundle", str(tmp_path / "saved"), str(tmp_path / "b")]) == 1
    assert "exists" in capsys.readouterr().err


@pytest.mark.slow
@given(
    shapes=st.lists(st.lists(st.integers(0, 4), max_size=3), min_size=1, max_size=5),
    step=st.integers(0, 2**62),
    seed=st.integers(0, 2**16),
)
def test_packed_state_reads_back_bit_for_bit(shapes, step, seed):
    rng = np.random.default_rng(seed)
    tensors = {f"t{k}": rng.standard_normal(shape).astype(np.float32) for k, shape in enumerate(shapes)}
    tensors["step"] = np.array(step, np.int64)
    data, index = pack_state(tensors)
    assert all(entry["offset"] % 8 == 0 for entry in index) and len(data) % 8 == 0
    unpacked = unpack_state(data, index)
    assert list(unpacked) == list(tensors)
    for name, value in tensors.items():
        assert unpacked[name].dtype == value.dtype and unpacked[name].shape == value.shape
        np.testing.assert_array_equal(unpacked[name], value)


def test_bundle_names_the_inputs_an_embedding_reads_with_the_smallest_table(tmp_path):
    """inputs[].token_ids: what a JS runtime checks ids against (as `_token_ids.token_id_inputs` tells Python)."""
    pixels, ids = Input(shape=(4,), name="pixels"), Input(shape=(2,), dtype="int64", name="ids")
    tables = [Flatten()(Embedding(dim, 2)(ids)) for dim in (12, 7)]
    outputs = Dense(3)(Concatenate()([Dense(4)(pixels), *tables]))
    with Model(inputs=[pixels, ids], outputs=outputs, seed=1) as model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.export_training_bundle(tmp_path / "bundle")
    inputs = read_metadata(tmp_path / "bundle")["inputs"]
    assert [(i["name"], i["dtype"], i["token_ids"]) for i in inputs] == [
        ("pixels", "float32", None),
        ("ids", "int64", {"input_dim": 7, "layer": "embedding_2"}),
    ]


def test_the_public_names_stay_importable_from_onnxtrain_bundle():
    import onnxtrain.bundle
    from onnxtrain import _bundle_resume, _bundle_state

    for name in onnxtrain.bundle.__all__:
        own = getattr(_bundle_state, name, None) or getattr(_bundle_resume, name, None)
        assert getattr(onnxtrain.bundle, name) is (own or onnxtrain.bundle.write_training_bundle), name
    assert {"load_state", "unpack_state", "state_bytes_rate", "read_state", "read_metadata"} <= set(
        onnxtrain.bundle.__all__
    )
