"""`onnxtrain finetune`, run in-process through `onnxtrain.cli.main` on the torch-exported MLP fixture
(8 features, 4 classes) with a tiny .npz dataset the test writes; and what `train` and `load_model` say when given
an .onnx file."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import numpy_helper

from onnxtrain import from_onnx, lora
from onnxtrain.adapters import A_SUFFIX, B_SUFFIX
from onnxtrain.cli import main
from onnxtrain.errors import ModelFileError
from onnxtrain.loading import load_model
from onnxtrain.model import Model

FIXTURE = Path(__file__).parent / "data" / "onnx_models" / "mlp_torchscript.onnx"
ORIGINAL = {t.name: numpy_helper.to_array(t) for t in onnx.load(FIXTURE).graph.initializer}


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    np.savez(tmp_path / "test.npz", x=x[:16], y=y[:16])
    np.savez(tmp_path / "narrow.npz", x=x[:4, :5], y=y[:4])  # 5 features where the model takes 8
    shutil.copy(FIXTURE, tmp_path / "mlp.onnx")
    two = onnx.load(FIXTURE)
    two.graph.output.append(onnx.helper.make_empty_tensor_value_info("/Relu_output_0"))
    onnx.save(two, tmp_path / "two_outputs.onnx")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _finetune(*arguments: str) -> int:
    common = ["--data", "train.npz", "--test", "test.npz", "--batch-size", "16", "--learning-rate", "0.05"]
    return main(["finetune", "mlp.onnx", *common, "--verbose", "0", *arguments])


def _weights(path: Path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def _logits(path: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.slow
def test_finetune_trains_what_is_not_frozen_and_writes_a_run(folder: Path, capsys: pytest.CaptureFixture) -> None:
    assert _finetune("--frozen", "fc1.*", "--epochs", "2", "--output", "run") == 0
    out = capsys.readouterr().out
    assert "Test before fine-tuning (16 examples): loss: " in out
    assert "Fine-tuning mlp.onnx (its weights: 256 of 400 parameters train) on 48 examples; writing to run/" in out
    assert "  export   run/model.onnx (" in out
    assert {p.name for p in (folder / "run").iterdir()} >= {"model", "model.onnx", "history.csv"}
    exported = _weights(folder / "run" / "model.onnx")
    for name in ("fc1.weight", "fc1.bias"):
        np.testing.assert_array_equal(exported[name], ORIGINAL[name])
    for name in ("fc2.weight", "fc2.bias", "head.weight", "head.bias"):
        assert not np.array_equal(exported[name], ORIGINAL[name]), name
    with load_model(folder / "run" / "model", compile=False) as saved:  # the save reads back
        np.testing.assert_array_equal(saved.get_weights()["head.weight"], exported["head.weight"])


@pytest.mark.slow
def test_finetune_writes_a_run_that_resume_continues_exactly(folder: Path, capsys: pytest.CaptureFixture) -> None:
    # Two epochs of finetune, and one then one more by `train --resume` on what run.json records: the same weights.
    assert _finetune("--epochs", "2", "--validation", "test", "--output", "whole") == 0
    assert _finetune("--epochs", "1", "--validation", "test", "--output", "first") == 0
    record = json.loads((folder / "first" / "run.json").read_text())
    assert record["finetuned_from"] == str(folder / "mlp.onnx")
    data = {"train": str(folder / "train.npz"), "test": str(folder / "test.npz"), "validation": "test"}
    assert record["data"] == data
    assert (record["epochs"], record["batch_size"], record["seed"]) == (1, 16, 0)
    capsys.readouterr()
    assert main(["train", "--resume", "first", "--epochs", "1", "--output", "second", "--verbose", "0"]) == 0
    run_json = Path("first") / "run.json"
    assert (
        f"1 more on 48 examples of {folder / 'train.npz'} (from {run_json}), batch size 16 (from {run_json})"
    ) in capsys.readouterr().out
    with load_model(folder / "whole" / "model", compile=False) as whole, load_model(folder / "second" / "model") as two:
        for name, value in whole.get_weights().items():
            np.testing.assert_array_equal(two.get_weights()[name], value, err_msg=name)
    resumed = json.loads((folder / "second" / "run.json").read_text())
    assert (resumed["finetuned_from"], resumed["epochs"]) == (str(folder / "mlp.onnx"), 2)
    assert main(["train", "first/run.json", "--output", "scratch"]) == 1  # no layers: it cannot start from scratch
    assert (
        f"records a fine-tuning of the ONNX model '{folder / 'mlp.onnx'}' (onnxtrain finetune), whose layers no run "
        "config describes, so it cannot train a model from scratch. Continue that run with onnxtrain train --resume "
        "first --epochs N"
    ) in capsys.readouterr().err


@pytest.mark.slow
def test_finetune_lora_merges_the_adapters_into_the_export(folder: Path, capsys: pytest.CaptureFixture) -> None:
    assert _finetune("--lora", "2", "--lora-alpha", "4", "--epochs", "2", "--output", "run") == 0
    out = capsys.readouterr().out
    assert "(LoRA rank 2 adapters: 136 of 536 parameters train)" in out  # 2·(8+16+16+12+12+4)
    assert "(adapters merged)" not in out and ", adapters merged)" in out
    merged = _weights(folder / "run" / "model.onnx")
    assert {k: v.shape for k, v in merged.items()} == {k: v.shape for k, v in ORIGINAL.items()}
    for name in ("fc1.bias", "fc2.bias", "head.bias"):
        np.testing.assert_array_equal(merged[name], ORIGINAL[name])  # LoRA adapts the matrices only
    assert not np.array_equal(merged["head.weight"], ORIGINAL["head.weight"])
    # The merged export computes what the adapted model does: export the saved (unmerged) model and compare.
    with load_model(folder / "run" / "model") as saved:
        unmerged = saved.export(folder / "unmerged.onnx")
    x = np.load(folder / "test.npz")["x"]
    np.testing.assert_allclose(_logits(folder / "run" / "model.onnx", x), _logits(unmerged, x), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_finetune_head_on_a_cut_model_keeps_it_frozen(folder: Path, capsys: pytest.CaptureFixture) -> None:
    assert _finetune("--outputs", "/Relu_1_output_0", "--head", "4", "--output", "run") == 0
    assert "(a new Dense(4) head on the frozen model: 52 of 400 parameters train)" in capsys.readouterr().out
    exported = folder / "run" / "model.onnx"
    weights = _weights(exported)
    assert {k: v.shape for k, v in weights.items()} == {
        "onnx_layer_1.fc1.weight": (16, 8),
        "onnx_layer_1.fc1.bias": (16,),
        "onnx_layer_1.fc2.weight": (12, 16),
        "onnx_layer_1.fc2.bias": (12,),
        "head.kernel": (12, 4),
        "head.bias": (4,),
    }
    for name in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"):
        np.testing.assert_array_equal(weights[f"onnx_layer_1.{name}"], ORIGINAL[name])
    x = np.load(folder / "test.npz")["x"]
    features = np.maximum(
        np.maximum(x @ ORIGINAL["fc1.weight"].T + ORIGINAL["fc1.bias"], 0) @ ORIGINAL["fc2.weight"].T
        + ORIGINAL["fc2.bias"],
        0,
    )
    expected = features @ weights["head.kernel"] + weights["head.bias"]
    np.testing.assert_allclose(_logits(exported, x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        (
            ("--lora", "2", "--trainable", "head.*"),
            r"--lora trains the adapters only .* Received: --lora 2 with --trainable",
        ),
        (("--optimizer", "adamm"), r"Could not interpret optimizer"),
        (("--test", "narrow.npz"), r"error: --test 'narrow\.npz' does not fit the model: dataset\.x expects shape"),
        (
            ("--validation", "narrow.npz"),
            r"error: --validation 'narrow\.npz' does not fit the model: validation\.x expects shape",
        ),
        (
            ("--validation", "test", "--test", "narrow.npz"),
            r"error: --test 'narrow\.npz' does not fit the model: dataset\.x expects shape",
        ),
        (("--seed", "-1"), r"error: --seed expects a non-negative integer\. Received: --seed -1$"),
        (("--lora-alpha", "4"), r"error: --lora-alpha scales the adapters that --lora RANK adds\. Received: "),
        (("--lora", "2", "--lora-alpha", "-1"), r"--lora-alpha expects a positive number\. Received: --lora-alpha -1$"),
        (("--validation", "test", "--test", ""), r"--validation test needs --test DATA"),
        # Errors about the import name the option given, not from_onnx's or OnnxLayer's argument.
        (
            ("--trainable", "nope.*"),
            r"error: --trainable: 'nope\.\*' matches no float initializer of the graph\. Avail",
        ),
        (
            ("--frozen", "fc1.*", "nope"),
            r"error: --frozen: 'nope' matches no float initializer of the graph\. Available",
        ),
        (("--head", "3", "--trainable", "nope"), r"error: --trainable: 'nope' matches no float initializer of the"),
        (("--outputs", "missing_value"), r"error: --outputs names no value of the graph: 'missing_value'\. "),
        (("--frozen", "*"), r"error: finetune would train no parameter: .*Received: --frozen \*$"),
    ],
)
def test_finetune_refuses_bad_arguments(
    folder: Path, capsys: pytest.CaptureFixture, arguments: tuple, match: str
) -> None:
    assert main(["finetune", "mlp.onnx", "--data", "train.npz", "--output", "run", *arguments]) == 1
    err = capsys.readouterr().err
    assert err.startswith("onnxtrain finetune: error: ")
    assert re.search(match, err.strip()), err
    assert not (folder / "run").exists()  # refused before anything is written


def test_finetune_refuses_a_folder_a_missing_file_and_an_existing_output(
    folder: Path, capsys: pytest.CaptureFixture
) -> None:
    (folder / "run" / "model").mkdir(parents=True)
    cases = [
        (
            ["finetune", "run", "--data", "train.npz", "--output", "out"],
            r"expects an \.onnx file\. Received: 'run', which is a folder",
        ),
        (
            ["finetune", "nope.onnx", "--data", "train.npz", "--output", "out"],
            r"Received: 'nope\.onnx', which does not exist",
        ),
        (
            ["finetune", "mlp.onnx", "--data", "train.npz", "--output", "run"],
            r"'run/model' already exists\. Pass --overwrite",
        ),
        (
            ["finetune", "two_outputs.onnx", "--data", "train.npz", "--output", "out"],
            r"'two_outputs\.onnx' has 2 outputs \['logits', '/Relu_output_0'\]; finetune trains one: choose it with "
            r"--outputs NAME \(for an onnxtrain export: --outputs logits\)$",
        ),
    ]
    for argv, match in cases:
        assert main(argv) == 1
        assert re.search(match, capsys.readouterr().err)


def test_train_and_load_model_given_an_onnx_file_point_to_finetune_and_from_onnx(
    folder: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["train", "mlp.onnx"]) == 1
    assert "To fine-tune this one: onnxtrain finetune mlp.onnx --data DATA --output DIR" in capsys.readouterr().err
    with pytest.raises(
        ModelFileError,
        match=r"'mlp\.onnx' is an ONNX file, not a saved model directory: .* onnxtrain\.from_onnx\('mlp\.onnx'\)",
    ):
        load_model("mlp.onnx")


def _saved(model_path: Path, model: Model) -> Path:
    with model:
        model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
        model.save(model_path)
    return model_path


def test_export_names_the_opset_option_for_an_imported_graph(folder: Path, capsys: pytest.CaptureFixture) -> None:
    saved = _saved(folder / "saved", from_onnx(FIXTURE))
    assert main(["export", str(saved), "out.onnx", "--opset", "15"]) == 1
    err = capsys.readouterr().err
    assert (
        "--opset 15 is older than the model's imported graph (opset 17), which is never downgraded. Pass --opset 17"
        in err
    )
    assert "opset=" not in err and not (folder / "out.onnx").exists()


@pytest.mark.slow
def test_export_merge_adapters_folds_a_saved_lora_model(folder: Path, capsys: pytest.CaptureFixture) -> None:
    model = lora(FIXTURE, rank=2)
    model.set_weights({n: np.full_like(v, 0.1) for n, v in model.get_weights().items() if n.endswith(B_SUFFIX)})
    saved = _saved(folder / "saved", model)
    assert main(["export", str(saved), "adapted.onnx"]) == 0
    assert main(["export", str(saved), "merged.onnx", "--merge-adapters"]) == 0
    merged = _weights(folder / "merged.onnx")
    assert {k: v.shape for k, v in merged.items()} == {k: v.shape for k, v in ORIGINAL.items()}
    assert not any(name.endswith(A_SUFFIX) for name in merged)
    assert not np.array_equal(merged["head.weight"], ORIGINAL["head.weight"])
    x = np.load(folder / "test.npz")["x"]
    np.testing.assert_allclose(
        _logits(folder / "merged.onnx", x), _logits(folder / "adapted.onnx", x), rtol=1e-5, atol=1e-5
    )


def _token_model() -> onnx.ModelProto:
    """The tester's model: int64 ids [N, 5] -> Gather(emb, ids) -> ReduceMean -> Gemm."""
    h, rng = onnx.helper, np.random.default_rng(5)
    arrays = {
        "emb": rng.standard_normal((20, 8)),
        "w": rng.standard_normal((3, 8)),
        "b": rng.standard_normal(3),
    }
    nodes = [
        h.make_node("Gather", ["emb", "ids"], ["e"]),
        h.make_node("ReduceMean", ["e", "ax"], ["m"], keepdims=0),
        h.make_node("Gemm", ["m", "w", "b"], ["logits"], transB=1),
    ]
    initializers = [numpy_helper.from_array((0.3 * a).astype(np.float32), n) for n, a in arrays.items()]
    graph = h.make_graph(
        nodes,
        "tok",
        [h.make_tensor_value_info("ids", onnx.TensorProto.INT64, ["N", 5])],
        [h.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["N", 3])],
        [*initializers, numpy_helper.from_array(np.array([1], np.int64), "ax")],
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 18)], ir_version=8)


@pytest.mark.slow
def test_finetune_of_an_int64_token_model_exports_an_int64_input(folder: Path) -> None:
    """The export keeps the int64 input, named as in the file and with no Cast in front, so code that fed the
    original model int64 ids feeds the export the same; ONNX Runtime on it equals the saved model's predict."""
    onnx.save(_token_model(), folder / "tok.onnx")
    ids = np.random.default_rng(1).integers(0, 20, (40, 5))
    np.savez(folder / "tok.npz", x=ids, y=ids[:, 0] % 3)
    assert main(["finetune", "tok.onnx", "--data", "tok.npz", "--verbose", "0", "--output", "run"]) == 0
    exported = onnx.load(folder / "run" / "model.onnx")  # the file's own input name, as the original model's
    assert [(i.name, i.type.tensor_type.elem_type) for i in exported.graph.input] == [("ids", onnx.TensorProto.INT64)]
    assert "Cast" not in {node.op_type for node in exported.graph.node}
    with load_model(folder / "run" / "model") as saved:
        assert saved.graph.inputs[0].dtype == np.int64
        logits = _logits(folder / "run" / "model.onnx", ids)  # the int64 ids as they are
        probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        np.testing.assert_allclose(probabilities, saved.predict_softly(ids), rtol=1e-5)
        np.testing.assert_array_equal(logits.argmax(1), saved.predict(ids))


TORCH_CASES = Path(__file__).parent / "data" / "onnx_torch_cases"  # tools/onnx_fixtures_torch_cases.py


@pytest.fixture
def tokens(folder: Path) -> Path:
    """tokens.onnx (torch's Embedding(50, 16) + TransformerEncoderLayer + mean + Linear(16, 3), int64 ids [N, 7],
    dynamic batch) and tokens.npz (40 examples) in the test's folder."""
    shutil.copy(TORCH_CASES / "tokens_torchscript.onnx", folder / "tokens.onnx")
    ids = np.random.default_rng(2).integers(0, 50, (40, 7))
    np.savez(folder / "tokens.npz", x=ids, y=ids[:, 0] % 3)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("lora_rank", [None, "2"])
def test_finetune_head_keeps_an_int64_token_input_int64(tokens: Path, lora_rank: str | None) -> None:
    """A new --head (with or without --lora) is fed the graph's int64 ids as they are: the saved model's Input and
    the export's input stay int64, and ONNX Runtime on the export equals the saved model's predict."""
    lora_option = ["--lora", lora_rank] if lora_rank else []
    arguments = ["--data", "tokens.npz", "--outputs", "/ReduceMean_output_0", "--head", "3", *lora_option]
    assert main(["finetune", "tokens.onnx", *arguments, "--verbose", "0", "--output", "run"]) == 0
    exported = onnx.load(tokens / "run" / "model.onnx")
    assert [(i.name, i.type.tensor_type.elem_type) for i in exported.graph.input] == [("input", onnx.TensorProto.INT64)]
    ids = np.load(tokens / "tokens.npz")["x"][:6]
    with load_model(tokens / "run" / "model") as saved:
        assert saved.graph.inputs[0].dtype == np.int64
        logits = _logits(tokens / "run" / "model.onnx", ids)  # int64 ids, as the original model took them
        np.testing.assert_array_equal(logits.argmax(1), saved.predict(ids))


def test_finetune_of_a_fixed_batch_export_is_one_error_line_before_training(
    folder: Path, capsys: pytest.CaptureFixture
) -> None:
    """torch's default export (no dynamic_axes) of a transformer runs at its batch of 4 only: refused at import
    with the fix, not a traceback of ONNX Runtime's Reshape error in the first step."""
    shutil.copy(TORCH_CASES / "tokens_fixed_batch_torchscript.onnx", folder / "fixed.onnx")
    np.savez(folder / "tokens.npz", x=np.zeros((8, 7), np.int64), y=np.zeros(8, np.int64))
    assert main(["finetune", "fixed.onnx", "--data", "tokens.npz", "--verbose", "0", "--output", "run"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(
        "onnxtrain finetune: error: the graph was exported for a batch of exactly 4 and cannot run another: at a "
        "batch of 1, ONNX Runtime fails in the Reshape node '/enc/self_attn/Reshape_5"  # 1.32 appends "_new_reshape"
    ), err
    assert "dynamic_axes={'ids': {0: 'batch'}, 'logits': {0: 'batch'}}" in err
    assert not (folder / "run").exists()


def _conv_model() -> onnx.ModelProto:
    """x [N, 1, 6] -> Conv(2 filters of 3) -> ReduceMax over time -> [N, 2]: no MatMul or Gemm to adapt."""
    h = onnx.helper
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((2, 1, 3)).astype(np.float32), "c.weight")
    graph = h.make_graph(
        [
            h.make_node("Conv", ["x", "c.weight"], ["conv"]),
            h.make_node("ReduceMax", ["conv"], ["features"], axes=[2], keepdims=0),
        ],
        "conv",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 1, 6])],
        [h.make_tensor_value_info("features", onnx.TensorProto.FLOAT, ["N", 2])],
        [weight],
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("head", [(), ("--head", "3")])
def test_finetune_lora_without_a_node_to_adapt_names_the_option(
    folder: Path, capsys: pytest.CaptureFixture, head: tuple[str, ...]
) -> None:
    onnx.save(_conv_model(), folder / "conv.onnx")
    np.savez(folder / "conv.npz", x=np.zeros((4, 1, 6), np.float32), y=np.zeros(4, np.int64))
    arguments = ["--data", "conv.npz", "--lora", "2", *head, "--output", "run"]
    assert main(["finetune", "conv.onnx", *arguments]) == 1
    err = capsys.readouterr().err
    assert err == (
        "onnxtrain finetune: error: --lora 2: the model has no MatMul or Gemm whose weight is a 2-D float initializer "
        "to adapt (its ops: Conv, ReduceMax). Fine-tune it without --lora (--trainable / --frozen choose what trains)\n"
    )


@pytest.mark.slow
def test_finetune_prints_a_warning_as_one_line_without_python_s_source_lines(
    folder: Path, capsys: pytest.CaptureFixture
) -> None:
    """LoRA rank 8 on the head's 12x4 weight warns; the CLI prints it as its own line, not Python's
    `path.py:59: UserWarning:` and the line of onnxtrain's source that warned."""
    assert _finetune("--lora", "8", "--output", "run") == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "curves skipped" not in line]
    assert lines == [
        "onnxtrain finetune: warning: LoRA rank 8 exceeds min(in_features, out_features) of 1 adapted weight(s): "
        "'head.weight' (4, 12) of node '/head/Gemm'. Each of their adapters then has more parameters than the weight "
        "it adapts (rank*(in + out) > in*out) and can express no more than an update of rank min(in, out). A rank "
        "below the smaller side is the usual choice."
    ], lines
