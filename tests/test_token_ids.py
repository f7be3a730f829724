"""Token ids: fit (training and validation data), evaluate, predict, predict_softly, an exported model and the
command line refuse ids an Embedding cannot read (past the table, negative, fractional) before ONNX Runtime runs,
naming the position, the value and the range; valid ids read the rows numpy reads."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import InferenceModel, Model, Sequential
from onnxtrain._token_ids import _BLOCK, TokenIds, check_token_ids, exported_token_ids, token_id_inputs
from onnxtrain.cli import main
from onnxtrain.datasets import Dataset
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Concatenate, Dense, Embedding, Flatten, Input, Reshape

RANGE = "integer token ids in [0, 9] for Embedding layer 'embedding_1' (input_dim=10)"


def embedding_model() -> Sequential:
    model = Sequential([Input(3), Embedding(10, 2), Flatten(), Dense(2)], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def expected(argument: str, where: str, value: str) -> str:
    return re.escape(f"{argument} expects {RANGE}. Received: {argument}[{where}]={value}")


BAD_IDS = [  # (ids, the position and value named)
    ([[1, 2, 10]], "0, 2", "10"),
    ([[1, 2, -1]], "0, 2", "-1"),
    ([[4, 5, 6], [1, -3, 2]], "1, 1", "-3"),
    ([[1, 2, 1.5]], "0, 2", "1.5"),
    ([[-0.5, 2, 3]], "0, 0", "-0.5"),  # the Cast would truncate it to row 0
    ([[1e9, 2, 3]], "0, 0", "1000000000"),
]


@pytest.mark.parametrize(("ids", "where", "value"), BAD_IDS)
def test_predict_and_predict_softly_refuse_ids_outside_the_table_or_fractional(ids, where, value):
    with embedding_model() as model:
        for predict in (model.predict, model.predict_softly):
            with pytest.raises(InvalidArgumentError, match=expected("x", where, value)):
                predict(np.array(ids))
        assert model._trainer is not None and model._trainer._predictor._session is None  # ORT never ran


@pytest.mark.parametrize(("ids", "where", "value"), BAD_IDS)
def test_fit_and_evaluate_refuse_bad_ids_before_a_step(ids, where, value):
    x, y = np.array(ids * 2), np.zeros(2 * len(ids), np.int64)
    with embedding_model() as model:
        before = model.get_weights()
        with pytest.raises(InvalidArgumentError, match=expected("x", where, value)):
            model.fit(x, y, epochs=1, verbose=0)
        with pytest.raises(InvalidArgumentError, match=expected("dataset.x", where, value)):
            model.fit(Dataset(x, y), epochs=1, verbose=0)
        with pytest.raises(InvalidArgumentError, match=expected("x", where, value)):
            model.evaluate(x, y)
        after = model.get_weights()
    assert all(np.array_equal(before[name], after[name]) for name in before)


def test_fit_refuses_bad_validation_ids_before_the_first_epoch():
    x, y = np.array([[1, 2, 3]] * 4), np.zeros(4, np.int64)
    with embedding_model() as model:
        before = model.get_weights()
        with pytest.raises(InvalidArgumentError, match=expected("validation.x", "1, 0", "10")):
            model.fit(x, y, verbose=0, validation=(np.array([[1, 2, 3], [10, 2, 3]]), np.zeros(2, np.int64)))
        with pytest.raises(InvalidArgumentError, match=expected("validation.x", "0, 1", "-2")):
            model.fit(x, y, verbose=0, validation_data=(np.array([[1, -2, 3]]), np.zeros(1, np.int64)))
        assert model._trainer is not None and model._trainer.epochs_trained == 0
        after = model.get_weights()
    assert all(np.array_equal(before[name], after[name]) for name in before)


def test_validation_split_holds_out_checked_ids():
    x, y = np.array([[1, 2, 3]] * 3 + [[1, 2, 12]]), np.zeros(4, np.int64)
    with embedding_model() as model, pytest.raises(InvalidArgumentError, match=expected("x", "3, 2", "12")):
        model.fit(x, y, verbose=0, validation_split=0.25)


def test_the_message_counts_the_bad_ids():
    x = np.array([[1, 10, 11], [-1, 2, 3]], np.float32)
    with pytest.raises(InvalidArgumentError, match=r"Received: x\[0, 1\]=10 \(3 invalid ids in all\)$"):
        check_token_ids(x, TokenIds(10, "embedding_1"), "x")
    with pytest.raises(InvalidArgumentError, match=r"Received: x\[1, 0\]=-1$"):
        check_token_ids(np.array([[1, 2, 3], [-1, 2, 3]], np.int64), TokenIds(10, "embedding_1"), "x")


def int64_embedding_model() -> Sequential:
    model = Sequential([Input(shape=(3,), dtype="int64"), Embedding(10, 2), Flatten(), Dense(2)], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize(("ids", "where", "value"), [row for row in BAD_IDS if float(row[2]).is_integer()])
def test_an_integer_input_refuses_ids_outside_the_table(ids, where, value):
    with int64_embedding_model() as model, pytest.raises(InvalidArgumentError, match=expected("x", where, value)):
        model.predict(np.array(ids, np.int64))


@pytest.mark.parametrize(("ids", "where", "value"), BAD_IDS)
def test_an_integer_input_refuses_float_ids_in_the_embeddings_words(ids, where, value):
    """Floats into Input(dtype="int64"): a fractional id is refused with the Embedding's range, as a float32
    input's is, not with int64's [-2**63, 2**63 - 1]; fit refuses it before a step."""
    x = np.array(ids, np.float32)
    with int64_embedding_model() as model:
        with pytest.raises(InvalidArgumentError, match=expected("x", where, value) + "$"):
            model.predict(x)
        with pytest.raises(InvalidArgumentError, match=expected("x", where, value) + "$"):
            model.fit(x, np.zeros(len(x), np.int64), verbose=0)
        assert model._trainer is not None and model._trainer.steps_trained == 0


@pytest.mark.parametrize("make", [embedding_model, int64_embedding_model], ids=["float32", "int64"])
def test_token_ids_are_never_scaled_by_the_input_scale(make, tmp_path):
    """An input_scale (1/255 for pixels) never reaches the ids an Embedding reads: predict, evaluate, fit and the
    export's InferenceModel read the rows of the ids as given."""
    ids, y = np.array([[0, 9, 3], [5, 5, 1]], np.uint8), np.array([0, 1])
    with make() as model:
        model.input_scale = 1 / 255
        weights = model.get_weights()
        rows = weights["embedding_1.embeddings"][ids].reshape(len(ids), -1)
        logits = rows @ weights["dense_1.kernel"] + weights["dense_1.bias"]
        softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(model.predict_softly(ids), softmax, rtol=1e-5, atol=1e-6)
        model.fit(ids, y, verbose=0)  # 9 / 255 would be a fractional id: refused if it were scaled
        predicted = model.predict_softly(ids)
        model.export(tmp_path / "model.onnx")
    with InferenceModel.load(tmp_path / "model.onnx") as exported:
        assert exported.input_scale == pytest.approx(1 / 255)
        np.testing.assert_allclose(exported.predict_softly(ids), predicted, rtol=1e-6)


@pytest.mark.parametrize("position", [0, _BLOCK - 1, _BLOCK, 3 * _BLOCK + 5])
@pytest.mark.parametrize("bad", [10.0, -1.0, 2.5])
def test_a_bad_id_is_found_in_any_block(position, bad):
    x = np.random.default_rng(0).integers(0, 10, (4 * _BLOCK + 7) // 7 * 7).astype(np.float32).reshape(-1, 7)
    check_token_ids(x, TokenIds(10, "e"), "x")
    x.reshape(-1)[position] = bad
    where = f"{position // 7}, {position % 7}"
    with pytest.raises(InvalidArgumentError, match=re.escape(f"Received: x[{where}]={bad:g}")):
        check_token_ids(x, TokenIds(10, "e"), "x")


def test_valid_ids_read_the_rows_numpy_reads():
    ids = np.array([[0, 9, 3], [5, 5, 1]])
    with embedding_model() as model:
        weights = model.get_weights()
        probabilities = model.predict_softly(ids)
        np.testing.assert_array_equal(model.predict_softly(ids.astype(np.float32)), probabilities)
        loss = model.evaluate(ids, np.array([0, 1])).loss
    rows = weights["embedding_1.embeddings"][ids].reshape(len(ids), -1)
    logits = rows @ weights["dense_1.kernel"] + weights["dense_1.bias"]
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, softmax, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(-np.log(softmax[[0, 1], [0, 1]]).mean(), rel=1e-5)


def test_valid_ids_train_as_the_same_ids_given_as_floats():
    rng = np.random.default_rng(1)
    ids, y = rng.integers(0, 10, (32, 3)), rng.integers(0, 2, 32)
    trained = []
    for x in (ids, ids.astype(np.float32)):
        with embedding_model() as model:
            history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, validation=(x[:4], y[:4]))
            trained.append((history.history, model.get_weights()))
    assert trained[0][0] == trained[1][0]
    for name, value in trained[0][1].items():
        np.testing.assert_array_equal(value, trained[1][1][name])


def two_inputs() -> Model:
    ids, features = Input(3, name="ids"), Input(2, name="features")
    h = Concatenate()([Flatten()(Embedding(10, 2)(ids)), Dense(2)(features)])
    model = Model([ids, features], Dense(2)(h), seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_a_model_of_two_inputs_checks_only_the_one_that_feeds_an_embedding():
    ids, features = np.array([[1, 2, 3], [4, 5, 6]]), np.array([[-5.0, 1.5], [12.0, -0.25]], np.float32)
    y = np.zeros(2, np.int64)
    with two_inputs() as model:
        model.predict([ids, features])  # any float feature is fine
        model.fit([ids, features], y, verbose=0)
        bad = np.array([[1, 2, 3], [4, 10, 6]])
        with pytest.raises(InvalidArgumentError, match=expected("x['ids']", "1, 1", "10")):
            model.predict({"ids": bad, "features": features})
        with pytest.raises(InvalidArgumentError, match=expected("x['ids']", "1, 1", "10")):
            model.fit([bad, features], y, verbose=0)
        with pytest.raises(InvalidArgumentError, match=expected("validation.x['ids']", "1, 1", "10")):
            model.fit([ids, features], y, verbose=0, validation=([bad, features], y))
        with pytest.raises(InvalidArgumentError, match=expected("x['ids']", "1, 1", "10")):
            model.evaluate([bad, features], y)


def test_an_input_that_feeds_several_tables_takes_the_smallest():
    x = Input(2)
    y = Concatenate()([Flatten()(Embedding(10, 2)(x)), Flatten()(Embedding(4, 2, name="small")(x))])
    model = Model(x, Dense(2)(y), seed=0)
    assert token_id_inputs(model.graph) == [TokenIds(4, "small")]
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with model, pytest.raises(InvalidArgumentError, match=r"in \[0, 3\] for Embedding layer 'small' \(input_dim=4\)"):
        model.predict(np.array([[1, 4]]))


def test_which_inputs_are_checked():
    ids = Input(3)
    inner = Model(ids, Flatten()(Embedding(7, 2)(ids)), name="encoder", seed=0)
    outer_ids, features = Input(3, name="tokens"), Input(2, name="features")
    outer = Model([outer_ids, features], Dense(2)(Concatenate()([inner(outer_ids), features])), seed=0)
    # An Embedding of a Model called as a layer is followed; one after a Reshape is not (its ids are computed).
    assert token_id_inputs(outer.graph) == [TokenIds(7, "embedding_1"), None]
    reshaped = Sequential([Input(6), Reshape((2, 3)), Embedding(10, 2), Flatten(), Dense(2)], seed=0)
    assert token_id_inputs(reshaped.graph) == [None]
    assert token_id_inputs(Sequential([Input(3), Dense(2)], seed=0).graph) == [None]


def test_an_exported_model_and_the_command_line_refuse_bad_ids(tmp_path, capsys):
    with embedding_model() as model:
        model.fit(np.array([[1, 2, 3]] * 4), np.array([0, 1, 0, 1]), verbose=0)
        model.export(tmp_path / "model.onnx")
        model.save(tmp_path / "saved")
        probabilities = model.predict_softly(np.array([[1, 2, 9]]))
    with InferenceModel.load(tmp_path / "model.onnx") as exported:
        assert exported.inputs[0].token_ids == TokenIds(10, "embedding_1")
        np.testing.assert_allclose(exported.predict_softly(np.array([[1, 2, 9]])), probabilities, rtol=1e-6)
        for predict in (exported.predict, exported.predict_softly):
            with pytest.raises(InvalidArgumentError, match=expected("x", "0, 2", "-1")):
                predict(np.array([[1, 2, -1]]))
    np.save(tmp_path / "bad.npy", np.array([[1, 2, 10]]))
    assert main(["predict", str(tmp_path / "saved"), "--input", str(tmp_path / "bad.npy")]) == 1
    assert f"x expects {RANGE}. Received: x[0, 2]=10" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", x=np.array([[1, 2, 3], [1, 12, 3]]), y=np.array([0, 1]))
    assert main(["evaluate", str(tmp_path / "saved"), "--data", str(tmp_path / "bad.npz")]) == 1
    assert f"dataset.x expects {RANGE}. Received: dataset.x[1, 1]=12" in capsys.readouterr().err


def test_only_an_input_cast_to_integers_that_gathers_rows_of_a_table_has_token_ids():
    assert exported_token_ids(embedding_model().inference_model().graph, "input") == TokenIds(10, "embedding_1")
    graph = int64_embedding_model().inference_model().graph  # Gather reads the int64 input itself
    assert graph.node[0].op_type == "Gather"
    assert exported_token_ids(graph, "input") == TokenIds(10, "embedding_1")
    assert exported_token_ids(Sequential([Input(3), Dense(2)], seed=0).inference_model().graph, "input") is None
    reshaped = Sequential([Input(6), Reshape((2, 3)), Embedding(10, 2), Flatten(), Dense(2)], seed=0)
    assert exported_token_ids(reshaped.inference_model().graph, "input") is None


TORCH_TOKENS = Path(__file__).parent / "data" / "onnx_torch_cases" / "tokens_torchscript.onnx"
TORCH_RANGE = "integer token ids in [0, 49] for Embedding layer 'emb' (input_dim=50)"


@pytest.mark.parametrize(("bad", "value"), [(50, "50"), (99, "99"), (-1, "-1")])
def test_an_imported_torch_embedding_refuses_ids_past_its_table_and_negative_ones(bad, value):
    """torch's nn.Embedding exported (`Gather(emb.weight, ids)`, int64 ids): fit, evaluate, predict and
    predict_softly check the ids against the table's 50 rows before ONNX Runtime runs; ONNX Gather would fail
    with ORT's own error past it and read row 50 - k for -k, where torch raises."""
    from onnxtrain import from_onnx

    ids = np.random.default_rng(0).integers(0, 50, (8, 7))
    ids[1, 3] = bad
    y = np.zeros(8, np.int64)
    message = re.escape(f"x expects {TORCH_RANGE}. Received: x[1, 3]={value}")
    with from_onnx(TORCH_TOKENS) as model:
        model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
        before = model.get_weights()
        for run in (
            lambda: model.fit(ids, y, batch_size=4, verbose=0),
            lambda: model.evaluate(ids, y),
            lambda: model.predict(ids),
            lambda: model.predict_softly(ids),
        ):
            with pytest.raises(InvalidArgumentError, match=message):
                run()
        after = model.get_weights()
        assert all(np.array_equal(after[name], before[name]) for name in before)  # no step ran
        ids[1, 3] = 49
        assert model.predict(ids).shape == (8,)


def test_an_imported_embedding_under_a_new_head_checks_its_ids():
    from onnxtrain.layers import OnnxLayer

    base = OnnxLayer(TORCH_TOKENS, outputs=["/ReduceMean_output_0"], trainable=False, name="base")
    x = Input(7, dtype="int64")
    model = Model(x, Dense(2)(base(x)), seed=0)
    assert token_id_inputs(model.graph) == [TokenIds(50, "emb")]
    model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
    with model, pytest.raises(InvalidArgumentError, match=re.escape("Received: x[0, 0]=70")):
        model.predict(np.full((2, 7), 70, np.int64))
