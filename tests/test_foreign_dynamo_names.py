"""torch.onnx's dynamo exports written with the exporter's default optimizer (tests/data/onnx_dynamo_names/, by
tools/onnx_fixtures_dynamo_names.py): each weight is selected by the torch parameter the export's metadata proves it
holds (`val_6` is `enc.self_attn.in_proj_weight`, transposed), the zero biases the optimizer dropped are weights
again, and SGD steps give torch's weights (`_torch_names`, `_removed_biases`)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from onnxtrain import Sequential, from_onnx, load_model, lora
from onnxtrain.foreign._input_names import file_input_names
from onnxtrain.foreign._layer import OnnxLayer
from onnxtrain.foreign._torch_names import SIGNATURE, FxCall, fx_call, torch_names
from onnxtrain.layers import Dense, Input
from onnxtrain.optimizers import SGD

DATA = Path(__file__).parent / "data" / "onnx_dynamo_names"
ENCODER, CONV = "encoder_dynamo_default", "conv_dynamo_default"
LOSS = "softmax_cross_entropy_with_logits"
TOLERANCE = 1e-5  # max |ours - torch's| / max |torch's|, per weight


def fixture(name: str) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    with np.load(DATA / f"{name}.npz") as arrays:
        reference = dict(arrays)
    return str(DATA / f"{name}.onnx"), json.loads((DATA / f"{name}.json").read_text()), reference


def import_quietly(source: Any, **options: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these imports warns
        return from_onnx(source, **options)


def trainable(model: Any) -> set[str]:
    layer = model.layers[-1]
    return set(layer.weight_shapes) - layer.non_trainable


def test_the_metadata_names_each_folded_weight_as_torch_does():
    path, meta, _ = fixture(ENCODER)
    graph = onnx.load(path).graph
    weights = [t.name for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    by_value = {k: v.split(" ")[0] for k, v in meta["held"].items() if k != v}  # found by the tool, by value
    assert by_value == {  # the folded Linear weights
        "val_1": "embed.weight",
        "val_6": "enc.self_attn.in_proj_weight",
        "val_92": "enc.linear1.weight",
        "val_94": "enc.linear2.weight",
    }
    assert torch_names(graph, weights) == by_value


def test_a_graph_without_the_export_signature_names_nothing():
    path, _, _ = fixture(ENCODER)
    graph = _without_signature(onnx.load(path)).graph
    assert torch_names(graph, [t.name for t in graph.initializer]) == {}


@pytest.mark.parametrize(
    ("options", "trains"),
    [
        # "freeze everything but the head": the folded weights are the modules' too
        ({"frozen": ["embed.*", "enc.*"]}, {"head.weight", "head.bias"}),
        ({"trainable": ["enc.linear1.*"]}, {"val_92", "enc.linear1.bias"}),
        ({"trainable": ["enc.linear1.weight"]}, {"val_92"}),
        (
            {"trainable": ["enc.self_attn.*"]},
            {
                "val_6",
                "enc.self_attn.in_proj_bias",
                "enc.self_attn.out_proj.weight",
                "enc.self_attn.out_proj.bias",
            },  # not the attention's scale val_73: a pattern selects a constant by its own name only
        ),
        (
            {"trainable": ["*"], "frozen": ["*.weight"]},
            {
                "embed.bias",
                "enc.self_attn.in_proj_bias",
                "enc.self_attn.out_proj.bias",
                "enc.linear1.bias",
                "enc.linear2.bias",
                "enc.norm1.bias",
                "enc.norm2.bias",
                "head.bias",
                "val_73",
                "val_6",  # enc.self_attn.in_proj_weight: no ".weight" in torch's name either
            },
        ),
        ({"trainable": ["val_92"]}, {"val_92"}),  # the initializer's own name still selects it
    ],
)
def test_trainable_and_frozen_select_a_folded_weight_by_its_torch_name(options, trains):
    path, _, _ = fixture(ENCODER)
    assert trainable(import_quietly(path, **options)) == trains


def test_a_frozen_backbone_trains_what_the_unoptimized_export_trains():
    path, _, _ = fixture(ENCODER)
    model = import_quietly(path, frozen=["embed.*", "enc.*"])
    assert model.param_counts()[0] == 8 * 3 + 3  # head.weight and head.bias


@pytest.mark.parametrize("name", [ENCODER, CONV])
def test_dropped_zero_biases_are_restored_as_weights(name):
    path, meta, reference = fixture(name)
    model = import_quietly(path)
    layer = model.layers[-1]
    weights = model.get_weights()
    restored = {n for n in meta["not_in_graph"] if n.endswith(".bias") and not n.startswith("enc.norm")}
    assert restored == ({"enc.self_attn.out_proj.bias"} if name == ENCODER else {"conv.bias", "up.bias", "fc.bias"})
    for bias in restored:
        np.testing.assert_array_equal(weights[bias], reference[f"step_0/{bias}"])  # zeros, torch's shape
        assert bias not in layer.non_trainable
    assert model.param_counts()[0] == meta["parameters"]  # torch's count: 683, 461
    np.testing.assert_allclose(model.predict(reference["x"][0]), reference["logits_0"], atol=1e-6)


# ONNX Runtime 1.19 has no CPU kernel for ConvTransposeGrad: the CNN trains on the portable engine only.
@pytest.mark.parametrize(("name", "engine"), [(ENCODER, "portable"), (ENCODER, "ort-training"), (CONV, "portable")])
def test_sgd_steps_equal_torch(name, engine):
    path, meta, reference = fixture(name)
    model = import_quietly(path)
    model.compile(optimizer=SGD(learning_rate=meta["learning_rate"]), loss=LOSS, engine=engine)
    for step in range(meta["steps"]):
        model.train_on_batch(reference["x"][step], reference["labels"][step])
    weights = model.get_weights()
    held = {name: name for name in weights} | meta["held"]  # untied and restored weights are named as torch's
    compared = set()
    for name_, value in weights.items():
        holds, _, how = held[name_].partition(" ")
        if f"step_0/{holds}" not in reference:
            assert value.size == 1  # an exporter's constant (the attention's scale)
            continue
        theirs = reference[f"step_{meta['steps']}/{holds}"]
        theirs = theirs.T if how == "(transposed)" else theirs
        assert np.max(np.abs(value - theirs)) <= TOLERANCE * np.max(np.abs(theirs)), name_
        compared.add(holds)
    assert compared == {key.split("/", 1)[1] for key in reference if key.startswith("step_0/")}  # every parameter


def test_the_selection_and_the_restored_bias_survive_save_and_load(tmp_path):
    path, _, reference = fixture(ENCODER)
    model = import_quietly(path, frozen=["embed.*", "enc.linear*"])
    model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS)
    model.train_on_batch(reference["x"][0], reference["labels"][0])
    model.save(tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    assert loaded.layers[-1].non_trainable == model.layers[-1].non_trainable
    assert {"val_1", "val_92", "val_94"} <= loaded.layers[-1].non_trainable
    for name, value in model.get_weights().items():
        np.testing.assert_array_equal(loaded.get_weights()[name], value)
    assert np.any(loaded.get_weights()["enc.self_attn.out_proj.bias"] != 0)  # restored, then trained


def test_lora_nodes_select_a_folded_weight_by_its_torch_name():
    path, _, _ = fixture(ENCODER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rank above min(in, out) of nothing here; left-out products aside
        model = lora(path, rank=2, nodes=["enc.linear1.*"])
    assert {name for name in model.get_weights() if ".lora_" in name} == {"val_92.lora_A", "val_92.lora_B"}


def test_a_lora_nodes_entry_matching_nothing_lists_the_torch_names():
    path, _, _ = fixture(ENCODER)
    with pytest.raises(ValueError, match=r"node_MatMul_89 \(val_92 = enc\.linear1\.weight\)"):
        lora(path, rank=2, nodes=["nope"])


def _without_signature(model: onnx.ModelProto) -> onnx.ModelProto:
    kept = [e for e in model.graph.metadata_props if e.key != SIGNATURE]
    del model.graph.metadata_props[:]
    model.graph.metadata_props.extend(kept)
    return model


def test_without_the_signature_a_module_pattern_warns_naming_the_weights_it_misses():
    path, _, _ = fixture(ENCODER)
    proto = _without_signature(onnx.load(path))
    with pytest.warns(UserWarning, match=r"node_Gemm_120.*cannot be restored.*optimize=False"):
        with pytest.warns(
            UserWarning,
            match=r"do not select them: 'val_6' \(read in module 'enc\.self_attn': from_onnx\(frozen=\.\.\.\) has "
            r"'enc\.\*'\); 'val_92' .*; 'val_94' .*optimize=False",
        ) as caught:
            model = from_onnx(proto, frozen=["enc.*"])
    assert {"val_6", "val_92", "val_94"} <= trainable(model)  # as warned: the pattern did not reach them
    assert "val_1" in trainable(model)  # embed's: 'enc.*' names no module it is read in, so no warning either
    assert all(w.filename == __file__ for w in caught)  # each warning points at the caller's line


def test_without_the_signature_patterns_that_name_no_module_do_not_warn():
    path, _, _ = fixture(ENCODER)
    proto = _without_signature(onnx.load(path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from_onnx(proto, trainable=["head.*"])
    assert [str(w.message) for w in caught if "do not select them" in str(w.message)] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "%linear_3 : [num_users=1] = call_function[target=torch.ops.aten.linear.default](args = (%ln, "
            "%p_enc_linear1_weight, %p_enc_linear1_bias), kwargs = {})",
            FxCall(
                "linear_3", "torch.ops.aten.linear.default", ("%ln", "%p_enc_linear1_weight", "%p_enc_linear1_bias")
            ),
        ),
        (  # a list argument holds commas
            "%view : [num_users=1] = call_function[target=torch.ops.aten.view.default](args = (%linear_1, [28, "
            "%sym_size_int_1, 3, 32]), kwargs = {})",
            FxCall("view", "torch.ops.aten.view.default", ("%linear_1", "[28, %sym_size_int_1, 3, 32]")),
        ),
        ("", None),
        ("%x : [num_users=2] = placeholder[target=x]", None),
    ],
)
def test_fx_call_reads_the_aten_call_of_a_node(text, expected):
    node = onnx.helper.make_node("Relu", ["a"], ["b"])
    if text:
        node.metadata_props.add(key="pkg.torch.onnx.fx_node", value=text)
    assert fx_call(node) == expected


def test_summary_names_folded_weights_restored_biases_and_only_what_freezes(tmp_path, capsys):
    from onnxtrain.cli._main import main

    path, _, _ = fixture(ENCODER)
    assert main(["summary", path]) == 0
    out = capsys.readouterr().out
    assert "val_6 (= enc.self_attn.in_proj_weight) [8, 24]" in out
    assert "683 train by default, 1 frozen (1 exporter constant: 1-element or non-finite);" in out
    assert "Restored: enc.self_attn.out_proj.bias (zero biases the exporter's optimizer removed" in out
    mlp = Path(__file__).parent / "data" / "onnx_models" / "mlp_torchscript.onnx"
    assert main(["summary", str(mlp)]) == 0
    assert "400 train by default, 0 frozen; from_onnx" in capsys.readouterr().out
    cnn = Path(__file__).parent / "data" / "onnx_models" / "cnn_torchscript.onnx"
    assert main(["summary", str(cnn)]) == 0
    frozen = next(
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("Parameters: ") and "in" in line and "weights" in line
    )
    assert "frozen (6 BatchNormalization statistics);" in frozen


def test_an_imported_model_knows_the_file_input_name_it_is_fed_by():
    path, _, _ = fixture(ENCODER)
    model = import_quietly(path)
    assert file_input_names(model.graph) == ["x"]
    head = Sequential.of(Input(5, 6), OnnxLayer(path, trainable=False), Dense(2))  # onnxtrain's model: `input`
    assert file_input_names(head.graph) == [None]


def test_a_shared_weight_the_metadata_cannot_prove_warns_at_the_callers_line():
    path, _, _ = fixture(ENCODER)
    proto = onnx.load(path)
    norm2 = next(node for node in proto.graph.node if node.name == "node_layer_norm_1")
    del norm2.metadata_props[:]  # norm2 reads enc.norm1.weight with nothing saying it is enc.norm2.weight
    with pytest.warns(UserWarning, match=r"'enc\.norm1\.weight' \(read by LayerNormalization") as caught:
        from_onnx(proto)
    assert [w.filename for w in caught] == [__file__]


def test_an_imported_model_is_fed_by_the_file_input_name_as_its_export_is():
    path, _, reference = fixture(ENCODER)
    model = import_quietly(path)
    x = reference["x"][0]
    expected = model.predict(x)
    np.testing.assert_array_equal(model.predict({"x": x}), expected)  # the file's (and the export's) name
    np.testing.assert_array_equal(model.predict({str(model.layers[0].name): x}), expected)  # the Input's, as before
    with pytest.raises(ValueError, match=r"a dict \{'input_1': array\} or \{'x': array\} .*Received keys: \['ids'\]"):
        model.predict({"ids": x})
