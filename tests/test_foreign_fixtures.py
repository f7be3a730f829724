"""Real exporters' graphs (tests/data/onnx_models/: torch.onnx's two exporters, Keras' export with the torch and
TensorFlow backends; written by tools/onnx_fixtures*.py) trained with onnxtrain.autodiff on ONNX Runtime: five plain
SGD steps give the exporting framework's weights within 1e-5 relative; and what ONNX Runtime training's gradient
builder makes of the same graphs and trainable sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from onnxtrain import _ort_training, autodiff
from onnxtrain.errors import InvalidArgumentError, UnsupportedError

DATA = Path(__file__).parent / "data" / "onnx_models"
FIXTURES = sorted(path.stem for path in DATA.glob("*.onnx"))
# Fixtures whose shape arithmetic ONNX shape inference cannot follow (TorchScript's nn.MultiheadAttention computes a
# Reshape's target with Mod), leaving the rank of the op named unknown: autodiff.fold_constants first.
NEEDS_FOLDING = {"torch_encoder_torchscript": "Gather"}
TOLERANCE = 1e-5  # max |ours - theirs| / max |theirs|, per weight and step (theirs: the exporting framework's)

# What ONNX Runtime training 1.19.2 makes of each fixture (generate_artifacts, the same trainable set, its SGD):
# "matches" the framework's steps, or the op where its gradient builder fails or trains another model.
ORT_TRAINING = {
    "mlp_torchscript": "matches",
    # Its builder swaps each eval-mode BatchNormalization for BatchNormInternal(training_mode=1): the step normalizes
    # with batch statistics and updates them (onnxruntime#17879), which is not the model torch trained.
    "cnn_torchscript": "BatchNormalization",
    "cnn_dynamo": "CastLike",  # no gradient builder registered
    "cnn_dynamo_folded": "matches",
    "cnn_torchscript_bn_training": "matches",  # what torch trained: batch statistics (its weights; not the statistics)
    "keras_cnn_torch": "Gelu",  # its gradient of approximate="tanh" is the exact form's: 2e-5 off after 5 steps
    "keras_cnn_tf2onnx": "matches",
    # Its LayerNormalization gradient reads the optional Mean and InvStdDev outputs, which exporters leave out: it
    # fails an index check with no op name (gradient_builder_base.h:123). Given the outputs, it matches torch.
    "transformer_torchscript": "LayerNormalization",
    "transformer_dynamo": "LayerNormalization",
    "torch_encoder_torchscript": "LayerNormalization",
    "torch_encoder_dynamo": "LayerNormalization",
}


def fixture(name: str) -> tuple[onnx.ModelProto, dict[str, Any], dict[str, np.ndarray]]:
    """The exported graph, its description (the .json) and the framework's arrays (the .npz)."""
    with np.load(DATA / f"{name}.npz") as arrays:
        reference = dict(arrays)
    return onnx.load(DATA / f"{name}.onnx"), json.loads((DATA / f"{name}.json").read_text()), reference


def trains_batch_norm(meta: dict[str, Any]) -> bool:
    return str(meta["batch_norm"]).startswith("training mode")


def with_loss(model: onnx.ModelProto, meta: dict[str, Any]) -> tuple[onnx.ModelProto, set[str]]:
    """`model` with a `labels` input and a `loss` output: the mean softmax cross-entropy of its logits (what
    onnxtrain's softmax_cross_entropy_with_logits computes); and the initializers that change in a step (the
    trainable ones, and the BatchNorm statistics of a fixture that torch trained with BatchNorm in training mode:
    there the BatchNormalization nodes are switched to training mode, with outputs `<statistic>_next`)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    # tf2onnx imports ai.onnx.ml without using it; GraphBuilder.from_model refuses any domain but the default one.
    used = {node.domain for node in graph.node} | {"", "ai.onnx"}
    kept = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    moving = set(meta["trainable"])
    if trains_batch_norm(meta):
        moving |= switch_batch_norm_to_training(graph)
    graph.input.append(helper.make_tensor_value_info("labels", TensorProto.INT64, ["batch"]))
    graph.node.append(
        helper.make_node("SoftmaxCrossEntropyLoss", [meta["output"], "labels"], ["loss"], reduction="mean")
    )
    graph.output.append(helper.make_tensor_value_info("loss", TensorProto.FLOAT, []))
    return model, moving


def as_inputs(model: onnx.ModelProto, names: set[str]) -> onnx.ModelProto:
    """`model` with the initializers in `names` turned into graph inputs (fed at every step)."""
    graph = model.graph
    kept = [init for init in graph.initializer if init.name not in names]
    moved = [init for init in graph.initializer if init.name in names]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in moved)
    return model


def switch_batch_norm_to_training(graph: onnx.GraphProto) -> set[str]:
    """Each BatchNormalization node in training mode (epsilon and momentum as exported), its running statistics'
    updates graph outputs `<statistic>_next`; returns the statistics' names."""
    statistics = set()
    for node in graph.node:
        if node.op_type != "BatchNormalization":
            continue
        mean, var = node.input[3], node.input[4]
        kept = [a for a in node.attribute if a.name != "training_mode"]
        del node.attribute[:]
        node.attribute.extend([*kept, helper.make_attribute("training_mode", 1)])
        node.output.extend([f"{mean}_next", f"{var}_next"])
        graph.output.extend(helper.make_tensor_value_info(f"{v}_next", TensorProto.FLOAT, None) for v in (mean, var))
        statistics |= {mean, var}
    return statistics


def relative_difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.max(np.abs(ours - theirs)) / max(float(np.max(np.abs(theirs))), 1e-12))


def train_with_autodiff(name: str, fold: bool) -> tuple[dict[int, dict[str, np.ndarray]], list[float], np.ndarray]:
    """Five SGD steps of the fixture's graph with our gradients on ONNX Runtime, its constants folded by
    `autodiff.fold_constants` first if `fold`: the weights (and BatchNorm statistics where they train) after each
    step (0 is the start), the loss of each step and the first batch's logits (the graph as exported, no step)."""
    model, meta, reference = fixture(name)
    trainable = list(meta["trainable"])
    forward, moving = with_loss(model, meta)
    if fold:
        forward = autodiff.fold_constants(forward, keep=sorted(moving))
    trained = autodiff.gradients(as_inputs(forward, moving), trainable, loss="loss")
    session = onnxruntime.InferenceSession(trained.SerializeToString(), providers=["CPUExecutionProvider"])
    statistics = [key.split("/", 1)[1] for key in reference if key.startswith("state_0/")]
    fetch = ["loss", *(f"{w}_grad" for w in trainable), *(f"{s}_next" for s in statistics)]
    weights = {w: reference[f"step_0/{w}"] for w in trainable} | {s: reference[f"state_0/{s}"] for s in statistics}
    history, losses = {0: dict(weights)}, []
    for step in range(meta["steps"]):
        feeds = {meta["input"]: reference["x"][step], "labels": reference["labels"][step], **weights}
        loss, *values = session.run(fetch, feeds)
        losses.append(float(loss))
        grads, updates = values[: len(trainable)], values[len(trainable) :]
        weights = {w: weights[w] - np.float32(meta["learning_rate"]) * g for w, g in zip(trainable, grads, strict=True)}
        weights |= dict(zip(statistics, updates, strict=True))
        history[step + 1] = dict(weights)
    inference = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    logits = inference.run([meta["output"]], {meta["input"]: reference["x"][0]})[0]
    return history, losses, logits


def ort_training_steps(
    model: onnx.ModelProto, meta: dict[str, Any], reference: dict[str, np.ndarray], directory: Path
) -> tuple[dict[int, dict[str, np.ndarray]], onnx.ModelProto]:
    """generate_artifacts on the exported graph (its cross-entropy loss, its SGD), then five steps of its training
    API: the weights after each step, and the training graph."""
    if not _ort_training.training_available():
        pytest.skip("no onnxruntime-training build installed")
    api = _ort_training._training_api()  # imports the training API without torch (see there)
    from onnxruntime.training import artifacts

    directory.mkdir(parents=True, exist_ok=True)
    with _ort_training._native_stderr_captured():
        artifacts.generate_artifacts(
            model,
            requires_grad=list(meta["trainable"]),
            frozen_params=meta["frozen"],
            loss=artifacts.LossType.CrossEntropyLoss,
            optimizer=artifacts.OptimType.SGD,
            artifact_directory=directory,
        )
    files = [directory / f"{kind}_model.onnx" for kind in ("training", "eval", "optimizer")]
    for path in files:
        saved = onnx.load(path)
        saved.ir_version = min(saved.ir_version, 10)  # the onnx package writes IR 11+; ORT 1.19 loads <= 10
        onnx.save(saved, path)
    state = api.CheckpointState.load_checkpoint(str(directory / "checkpoint"))
    module = api.Module(str(files[0]), state, str(files[1]))
    optimizer = api.Optimizer(str(files[2]), module)
    optimizer.set_learning_rate(meta["learning_rate"])
    module.train()
    history = {}
    for step in range(meta["steps"]):
        module(reference["x"][step], reference["labels"][step])
        optimizer.step()
        module.lazy_reset_grad()
        history[step + 1] = {w: state.parameters[w].data.copy() for w in meta["trainable"]}
    return history, onnx.load(files[0])


def worst_difference(
    history: dict[int, dict[str, np.ndarray]], meta: dict[str, Any], reference: dict[str, np.ndarray]
) -> float:
    """The largest relative difference of any trainable weight after any step from the framework's."""
    return max(
        relative_difference(history[step][w], reference[f"step_{step}/{w}"])
        for step in range(1, meta["steps"] + 1)
        for w in meta["trainable"]
    )


@pytest.mark.parametrize("name", FIXTURES)
def test_five_sgd_steps_with_autodiff_match_the_exporting_framework(name: str) -> None:
    _, meta, reference = fixture(name)
    history, losses, logits = train_with_autodiff(name, fold=name in NEEDS_FOLDING)
    np.testing.assert_allclose(logits, reference["logits_0"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(losses, reference["losses"], rtol=1e-5)
    assert worst_difference(history, meta, reference) <= TOLERANCE


@pytest.mark.parametrize("name", sorted(NEEDS_FOLDING))
def test_shape_arithmetic_shape_inference_cannot_follow_needs_folding(name: str) -> None:
    with pytest.raises(UnsupportedError, match=f"No gradient for {NEEDS_FOLDING[name]} node .* rank=None"):
        train_with_autodiff(name, fold=False)


@pytest.mark.parametrize("name", [n for n in FIXTURES if n not in NEEDS_FOLDING])
def test_folded_constants_train_the_same(name: str) -> None:
    _, meta, reference = fixture(name)
    history, _, _ = train_with_autodiff(name, fold=True)
    assert worst_difference(history, meta, reference) <= TOLERANCE


def test_fold_constants_keeps_the_weights_to_train_and_folds_the_rest() -> None:
    model, meta, _ = fixture("torch_encoder_torchscript")
    folded = autodiff.fold_constants(model, keep=list(meta["trainable"]))
    before = {t.name: t for t in model.graph.initializer}
    after = {t.name: t for t in folded.graph.initializer}
    for name in meta["trainable"]:
        assert after[name] == before[name]
    assert [v.name for v in folded.graph.input] == [v.name for v in model.graph.input]
    assert "Mod" not in {node.op_type for node in folded.graph.node}
    assert len(folded.graph.node) < len(model.graph.node)
    assert [o.domain for o in folded.opset_import] == [""]


def test_fold_constants_names_what_is_not_an_initializer() -> None:
    model, _, _ = fixture("mlp_torchscript")
    with pytest.raises(InvalidArgumentError, match=r"expects initializers of the model. Received: \['nope'\]"):
        autodiff.fold_constants(model, keep=["fc1.weight", "nope"])


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_describes_its_graph(name: str) -> None:
    model, meta, reference = fixture(name)
    onnx.checker.check_model(model, full_check=True)
    floats = {t.name for t in model.graph.initializer if helper.tensor_dtype_to_np_dtype(t.data_type).kind == "f"}
    assert set(meta["trainable"]) | set(meta["frozen"]) == floats
    assert not set(meta["trainable"]) & set(meta["frozen"])
    assert meta["ops"] == sorted({node.op_type for node in model.graph.node})
    assert meta["opset"] == next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    assert meta["ir_version"] == model.ir_version
    initial = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for w in meta["trainable"]:
        np.testing.assert_array_equal(reference[f"step_0/{w}"], initial[w])
        assert all(f"step_{step}/{w}" in reference for step in range(meta["steps"] + 1))
    assert reference["x"].shape[0] == reference["labels"].shape[0] == meta["steps"]


def test_batch_norm_switched_to_training_mode_updates_statistics_as_onnx_specifies() -> None:
    # torch updates running_var with the unbiased batch variance, ONNX (and ONNX Runtime's kernel) with the biased
    # one: torch's updates are rescaled by (n - 1) / n, n the values per channel (batch x 6 x 6 at every BatchNorm).
    # Momentum 0.9 is ONNX's (the exported attribute), torch's 0.1.
    _, meta, reference = fixture("cnn_torchscript_bn_training")
    history, _, _ = train_with_autodiff("cnn_torchscript_bn_training", fold=False)
    x = reference["x"]
    n = x.shape[1] * x.shape[3] * x.shape[4]
    statistics = [key.split("/", 1)[1] for key in reference if key.startswith("state_0/")]
    assert len(statistics) == 6
    for name in statistics:
        expected = reference[f"state_0/{name}"]
        for step in range(1, meta["steps"] + 1):
            before, after = reference[f"state_{step - 1}/{name}"], reference[f"state_{step}/{name}"]
            if name.endswith("running_var"):
                batch_var = (after - 0.9 * before) / 0.1 * (n - 1) / n
                expected = 0.9 * expected + 0.1 * batch_var
            else:
                expected = after
            assert relative_difference(history[step][name], expected) <= TOLERANCE, (name, step)


def test_every_fixture_has_its_ort_training_outcome() -> None:
    assert sorted(ORT_TRAINING) == FIXTURES


@pytest.mark.parametrize("name", [n for n, outcome in ORT_TRAINING.items() if outcome == "matches"])
def test_ort_training_matches_the_framework_where_its_builder_handles_the_graph(name: str, tmp_path: Path) -> None:
    model, meta, reference = fixture(name)
    history, _ = ort_training_steps(model, meta, reference, tmp_path)
    assert worst_difference(history, meta, reference) <= TOLERANCE


def test_ort_training_differentiates_tanh_gelu_as_exact(tmp_path: Path) -> None:
    model, meta, reference = fixture("keras_cnn_torch")
    assert [helper.get_attribute_value(a) for n in model.graph.node if n.op_type == "Gelu" for a in n.attribute] == [
        b"tanh"
    ]
    history, _ = ort_training_steps(model, meta, reference, tmp_path)
    assert TOLERANCE < worst_difference(history, meta, reference) < 1e-3  # 2.0e-5 on 2026-12-06


@pytest.mark.parametrize("name", [n for n, outcome in ORT_TRAINING.items() if outcome == "LayerNormalization"])
def test_ort_training_needs_layer_norm_statistics_outputs(name: str, tmp_path: Path) -> None:
    model, meta, reference = fixture(name)
    with pytest.raises(RuntimeError, match=r"GradientBuilderBase::O\(size_t, bool\).*OutputDefs\(\)\.size\(\)"):
        ort_training_steps(model, meta, reference, tmp_path / "as_exported")
    for node in model.graph.node:
        if node.op_type == "LayerNormalization":
            node.output.extend([f"{node.output[0]}_mean", f"{node.output[0]}_inv_std_dev"])
    history, _ = ort_training_steps(model, meta, reference, tmp_path / "with_outputs")
    assert worst_difference(history, meta, reference) <= TOLERANCE


def test_ort_training_has_no_cast_like_gradient(tmp_path: Path) -> None:
    model, meta, reference = fixture("cnn_dynamo")
    with pytest.raises(RuntimeError, match="gradient builder has not been registered: CastLike"):
        ort_training_steps(model, meta, reference, tmp_path)


def test_ort_training_trains_batch_norm_with_batch_statistics(tmp_path: Path) -> None:
    model, meta, reference = fixture("cnn_torchscript")
    history, training_graph = ort_training_steps(model, meta, reference, tmp_path)
    forward = [node for node in training_graph.graph.node if node.op_type == "BatchNormInternal"]
    assert len(forward) == 3
    assert all(helper.get_attribute_value(a) == 1 for n in forward for a in n.attribute if a.name == "training_mode")
    assert worst_difference(history, meta, reference) > 1e-2  # not torch's eval-mode steps (0.39 on 2026-12-06)
