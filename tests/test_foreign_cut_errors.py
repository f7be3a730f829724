"""Cutting an imported graph (`outputs=[...]`, `--outputs`; `foreign._cut`): a weight is refused by name, a torch
module's name cuts at its last output, and the suggestions for a name that is neither are values nodes compute,
the module's own first. On the torch fixtures (tests/data/onnx_models: TorchScript names nodes `/block/conv1/Conv`,
the dynamo exporter lists `block.conv1` in their metadata; nested Sequentials, which TorchScript scopes as
`/enc/enc.2/Gemm` and `/stages/stages.0/fc/Gemm`) and a TorchScript-like graph made here. And the cut
from_onnx and finetune make by themselves: an onnxtrain export imports as its logits, without the probabilities
its loss added (and the loss adds again)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxtrain import Sequential, emit, from_onnx
from onnxtrain.cli import main
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.foreign._cut import module_scopes
from onnxtrain.layers import Dense, Input
from onnxtrain.optimizers import SGD

FIXTURES = Path(__file__).parent / "data" / "onnx_models"
NESTED = Path(__file__).parent / "data" / "onnx_sequences"  # tools/onnx_sequence_fixtures.py


def _merged_weights() -> onnx.ModelProto:
    """As TorchScript writes parameters of equal value: one initializer (`bn0.bias`), the others named by Identity
    nodes (`layer1.bn.bias`); plus a Shape of a weight, a value computed from no input."""
    nodes = [
        helper.make_node("Identity", ["bn0.bias"], ["layer1.bn.bias"], name="Identity_0"),
        helper.make_node("Shape", ["bn0.bias"], ["bias_shape"], name="/Shape"),
        helper.make_node("Add", ["x", "bn0.bias"], ["/bn0/Add_output_0"], name="/bn0/Add"),
        helper.make_node("Relu", ["/bn0/Add_output_0"], ["/layer1/Relu_output_0"], name="/layer1/Relu"),
        helper.make_node(
            "Add", ["/layer1/Relu_output_0", "layer1.bn.bias"], ["/layer1/bn/Add_output_0"], name="/layer1/bn/Add"
        ),
        helper.make_node("Neg", ["/layer1/Relu_output_0"], ["/layer1/Neg_output_0"], name="/layer1/Neg"),
        helper.make_node("Mul", ["/layer1/bn/Add_output_0", "/layer1/Neg_output_0"], ["y"], name="/Mul"),
        helper.make_node("Sub", ["/layer1/bn/Add_output_0", "/layer1/Neg_output_0"], ["z"], name="/Sub"),
    ]
    graph = helper.make_graph(
        nodes,
        "merged",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(np.arange(3, dtype=np.float32), "bn0.bias")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    ("outputs", "match"),
    [
        (
            ["bn0.bias"],
            r"^from_onnx\(outputs=\.\.\.\): 'bn0\.bias' is a weight \(an initializer\), not a value a node computes; "
            r"a cut ends at a value computed from the graph's input\. Cut after a node that reads it: "
            r"'/bn0/Add_output_0'\.$",
        ),
        (
            ["layer1.bn.bias"],
            r"'layer1\.bn\.bias' is a weight \(the exporter names the initializer 'bn0\.bias' so, through the Identity "
            r"node 'Identity_0'\), not a value a node computes from the input; .* Cut after a node that reads it: "
            r"'/layer1/bn/Add_output_0'\.$",
        ),
        (["bias_shape"], r"'bias_shape' is computed from weights and constants only \(it depends on no input"),
        (
            ["layer1"],
            r"the nodes of module 'layer1' hand on 2 values to the rest of the graph, so the module names no one "
            r"output: '/layer1/bn/Add_output_0', '/layer1/Neg_output_0'\. Name one of them\.$",
        ),
        (["nowhere"], r"names no value of the graph: 'nowhere'\. Nor does it name a torch module of its nodes\."),
        ("y", r"expects a non-empty list of value names\. Received: outputs='y'"),
        ([], r"expects a non-empty list of value names"),
    ],
)
def test_a_cut_that_is_no_value_computed_from_the_input_is_refused_saying_what_it_is(outputs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        from_onnx(_merged_weights(), outputs=outputs)


@pytest.mark.parametrize(
    ("fixture", "module", "value"),
    [
        ("cnn_torchscript", "block", "/block/Relu_1_output_0"),
        ("cnn_torchscript", "block.conv1", "/block/conv1/Conv_output_0"),
        ("cnn_torchscript", "bn", "/bn/BatchNormalization_output_0"),
        ("cnn_dynamo", "block", "relu_2"),
        ("cnn_dynamo", "block.bn1", "getitem_3"),
        ("cnn_dynamo", "head", "logits"),
    ],
)
def test_a_modules_name_cuts_at_its_last_output(fixture, module, value):
    by_module = from_onnx(FIXTURES / f"{fixture}.onnx", outputs=[module])
    by_value = from_onnx(FIXTURES / f"{fixture}.onnx", outputs=[value])
    assert [o.name for o in by_module.layers[-1].graph.graph.output] == [value]
    x = np.random.default_rng(0).normal(size=(2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(by_module.predict(x), by_value.predict(x))


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
@pytest.mark.parametrize(
    "module",
    ["enc", "enc.2", "enc.3", "stages.0", "stages.0.fc", "stages.1", "stages.1.0", "stages.1.1", "embed", "head"],
)
def test_a_nested_modules_name_cuts_at_what_torch_computes_for_it(exporter, module):
    # enc.2 a Sequential's child; stages.0.fc a module's child in a Sequential (ResNet's layer1.0.conv1);
    # stages.1.0 a Sequential's child in a Sequential
    reference = np.load(NESTED / "nested.npz")
    model = from_onnx(NESTED / f"nested_{exporter}.onnx", outputs=[module])
    np.testing.assert_allclose(model.predict(reference["x"]), reference[module], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("segments", "module"),
    [
        (["enc", "enc.2"], "enc.2"),  # a Sequential's child
        (["layer1", "layer1.0", "conv1"], "layer1.0.conv1"),  # a module's child in a Sequential
        (["layer2", "layer2.0", "downsample", "downsample.0"], "layer2.0.downsample.0"),
        (["stages", "stages.1", "stages.1.0"], "stages.1.0"),  # a Sequential in a Sequential
        (["1", "1.1", "1.1.0"], "1.1.0"),  # the same in a Sequential model
        (["encoder", "layers.0", "self_attn"], "encoder.layers.0.self_attn"),  # a ModuleList's item
        (["enc", "2"], "enc.2"),  # a bare index
        (["block", "block"], "block.block"),  # a child named as its parent
    ],
)
def test_torchscript_scopes_name_the_modules_dotted_path(segments, module):
    node = helper.make_node("Relu", ["x"], ["y"], name="/" + "/".join([*segments, "Relu"]))
    parts = module.split(".")
    assert module_scopes(node) == {".".join(parts[: i + 1]) for i in range(len(parts))}


def _suggestions(error: str) -> list[str]:
    found = re.search(r"Close matches: (\[.*?\])\.", error)
    assert found, error
    return list(ast.literal_eval(found.group(1)))


@pytest.mark.parametrize(
    ("fixture", "name", "first"),
    [
        ("cnn_torchscript", "blocks", "/block/Relu_1_output_0"),  # the module's last value first
        ("cnn_torchscript", "block.bn", "/block/bn2/BatchNormalization_output_0"),
        ("cnn_dynamo", "blocks", "relu_2"),
        ("cnn_dynamo", "block.bn", "getitem_6"),
        ("nested_torchscript", "enc2", "/enc/enc.2/Gemm_output_0"),  # not enc's, nor enc.3's
        ("nested_dynamo", "enc2", "linear_2"),
        ("nested_torchscript", "stages.0.f", "/stages/stages.0/fc/Gemm_output_0"),
        ("nested_dynamo", "stages.0.f", "linear_3"),
        ("nested_torchscript", "stage.1", "/stages/stages.1/stages.1.1/Tanh_output_0"),
        ("nested_dynamo", "stage.1", "tanh"),
    ],
)
def test_suggestions_are_values_nodes_compute_the_modules_first(fixture, name, first):
    model = onnx.load((NESTED if fixture.startswith("nested") else FIXTURES) / f"{fixture}.onnx")
    initializers = {t.name for t in model.graph.initializer}
    computed = {out for node in model.graph.node if node.op_type != "Constant" for out in node.output}
    with pytest.raises(InvalidArgumentError) as caught:
        from_onnx(model, outputs=[name])
    suggested = _suggestions(str(caught.value))
    assert suggested[0] == first
    assert not set(suggested) & initializers and set(suggested) <= computed


def test_finetune_refuses_a_weight_as_outputs_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    onnx.save(_merged_weights(), tmp_path / "merged.onnx")
    np.savez(tmp_path / "train.npz", x=np.ones((4, 3), np.float32), y=np.zeros(4, np.int64))
    arguments = ["finetune", "merged.onnx", "--data", "train.npz", "--outputs", "layer1.bn.bias", "--output", "run"]
    assert main([*arguments, "--head", "2"]) == 1
    error = capsys.readouterr().err
    assert re.fullmatch(
        r"onnxtrain finetune: error: --outputs: 'layer1\.bn\.bias' is a weight \(the exporter names the initializer "
        r"'bn0\.bias' so, .*Cut after a node that reads it: '/layer1/bn/Add_output_0'\.\n",
        error,
    ), error
    assert not (tmp_path / "run").exists()


# --- an onnxtrain export: its logits, not the probabilities its loss added -------------------------------------------
def _onnxtrain_export(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 4), np.float32), rng.integers(0, 3, 16)
    model = Sequential.of(Input(4), Dense(8), Dense(3), seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.export(path)
    model.close()
    return x, y


def test_from_onnx_of_an_onnxtrain_export_keeps_the_logits_and_the_export_adds_the_probabilities(tmp_path):
    x, y = _onnxtrain_export(tmp_path / "classifier.onnx")
    session = ort.InferenceSession(str(tmp_path / "classifier.onnx"), providers=["CPUExecutionProvider"])
    logits, probabilities = session.run(None, {"input": x})
    model = from_onnx(tmp_path / "classifier.onnx")
    assert [o.name for o in model.layers[-1].graph.graph.output] == ["logits"] and model.output_shape == (3,)
    np.testing.assert_allclose(model.predict(x), logits, rtol=0, atol=1e-6)
    model.compile(optimizer=SGD(0.1), loss="softmax_cross_entropy_with_logits")
    model.fit(x, y, batch_size=8, verbose=0)
    model.export(tmp_path / "finetuned.onnx")
    assert [o.name for o in onnx.load(tmp_path / "finetuned.onnx").graph.output] == ["logits", "probabilities"]
    model.close()
    forward = emit.loss_model(from_onnx(tmp_path / "classifier.onnx").layers, "softmax_cross_entropy_with_logits")
    session = ort.InferenceSession(forward.SerializeToString(), providers=["CPUExecutionProvider"])
    loss = session.run(["loss"], {"input": x, "labels": y.astype(np.int64)})[0]
    expected = -np.mean(np.log(probabilities[np.arange(len(y)), y]))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_the_probabilities_of_an_onnxtrain_export_stay_when_named_or_in_another_file(tmp_path):
    _onnxtrain_export(tmp_path / "classifier.onnx")
    both = from_onnx(tmp_path / "classifier.onnx", outputs=["logits", "probabilities"])
    assert both.output_names == ["logits_output", "probabilities_output"]
    foreign = onnx.load(tmp_path / "classifier.onnx")
    del foreign.metadata_props[:]  # a file onnxtrain did not write: its outputs are its own
    assert from_onnx(foreign).output_names == ["logits_output", "probabilities_output"]


def test_finetune_of_an_onnxtrain_export_needs_no_outputs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    x, y = _onnxtrain_export(tmp_path / "classifier.onnx")
    np.savez(tmp_path / "train.npz", x=x, y=y)
    assert main(["finetune", "classifier.onnx", "--data", "train.npz", "--output", "run", "--verbose", "0"]) == 0
    exported = onnx.load(tmp_path / "run" / "model.onnx")
    assert [o.name for o in exported.graph.output] == ["logits", "probabilities"]


# --- finetune's data of another shape: the .npz to write, not Python's x.reshape -------------------------------------
@pytest.mark.parametrize(
    ("fixture", "given", "change", "suffix"),
    [
        ("cnn_torchscript", (6, 6, 1), "np.moveaxis(x, -1, 1)", "nchw"),  # torch reads channels first
        ("mlp_torchscript", (2, 4), "x.reshape(-1, 8)", "reshaped"),
    ],
)
def test_finetune_says_which_npz_to_write_for_data_of_another_shape(
    tmp_path, monkeypatch, capsys, fixture, given, change, suffix
):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", x=rng.random((8, *given), np.float32), y=rng.integers(0, 3, 8))
    arguments = ["finetune", str(FIXTURES / f"{fixture}.onnx"), "--data", "train.npz", "--verbose", "0"]
    assert main([*arguments, "--output", "run"]) == 1
    error = capsys.readouterr().err
    written = f"train_{suffix}.npz"
    command = re.search(r'python -c "(.*)", then --data (\S+)$', error.strip())
    assert command and command.group(2) == written, error
    assert f"np.savez('{written}', x={change}, y=y)" in command.group(1)
    exec(command.group(1), {})  # the line the error gives, as the user would run it
    assert main(["finetune", str(FIXTURES / f"{fixture}.onnx"), "--data", written, "--output", "run2"]) == 0
