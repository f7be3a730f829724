"""from_onnx(batch_norm="train") on exports whose BatchNormalization nodes share running statistics (TorchScript
merges equal buffers, the later nodes reading them through Identity nodes), against numpy's per-node running
statistics; and on exports without BatchNormalization (folded into the Convs), which warn."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxtrain import from_onnx, load_model
from onnxtrain.optimizers import SGD

RNG = np.random.default_rng(7)
MOMENTUM, EPSILON = 0.9, 1e-5
SCALES = {"s0": np.array([1.5, 0.5], np.float32), "b0": np.array([0.2, -0.3], np.float32)}
SCALES |= {"s1": np.array([0.8, 1.2], np.float32), "b1": np.array([0.0, 0.1], np.float32)}


def two_batch_norms(shared: str) -> onnx.ModelProto:
    """x [N, 2, 3] -> BatchNormalization bn0 -> bn1 -> Flatten -> MatMul head: logits [N, 3]. bn1 reads bn0's
    statistics "through Identity" (as TorchScript writes merged buffers, named m.b1.*) or "directly"."""
    if shared == "through Identity":
        stats1 = ["m.b1.running_mean", "m.b1.running_var"]
        copies = [helper.make_node("Identity", [f"m.b0.{s}"], [f"m.b1.{s}"]) for s in ("running_mean", "running_var")]
    else:
        stats1, copies = ["m.b0.running_mean", "m.b0.running_var"], []
    nodes = [
        *copies,
        helper.make_node(
            "BatchNormalization",
            ["x", "s0", "b0", "m.b0.running_mean", "m.b0.running_var"],
            ["y0"],
            name="/bn0/BatchNormalization",
            momentum=MOMENTUM,
            epsilon=EPSILON,
        ),
        helper.make_node(
            "BatchNormalization",
            ["y0", "s1", "b1", *stats1],
            ["y1"],
            name="/bn1/BatchNormalization",
            momentum=MOMENTUM,
            epsilon=EPSILON,
        ),
        helper.make_node("Flatten", ["y1"], ["flat"]),
        helper.make_node("MatMul", ["flat", "head"], ["logits"]),
    ]
    arrays = {**SCALES, "head": RNG.normal(size=(6, 3)).astype(np.float32)}
    arrays |= {"m.b0.running_mean": np.zeros(2, np.float32), "m.b0.running_var": np.ones(2, np.float32)}
    graph = helper.make_graph(
        nodes,
        "shared_statistics",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(a, n) for n, a in arrays.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def numpy_running_statistics(batches: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Each node's statistics after one training step per batch: normalized by the batch's mean and (population)
    variance, the running ones moved by the node's momentum (ONNX's training mode)."""
    running = {node: [np.zeros(2), np.ones(2)] for node in ("bn0", "bn1")}
    for x in batches:
        values = x.astype(np.float64)
        for node, (scale, bias) in (("bn0", ("s0", "b0")), ("bn1", ("s1", "b1"))):
            mean, var = values.mean((0, 2)), values.var((0, 2))
            running[node] = [r * MOMENTUM + b * (1 - MOMENTUM) for r, b in zip(running[node], (mean, var), strict=True)]
            normalized = (values - mean[None, :, None]) / np.sqrt(var[None, :, None] + EPSILON)
            values = normalized * SCALES[scale][None, :, None] + SCALES[bias][None, :, None]
    return {
        f"{node}.{what}": value
        for node, (mean, var) in running.items()
        for what, value in (("mean", mean), ("var", var))
    }


@pytest.mark.parametrize(
    ("shared", "bn1_statistics"),
    [
        ("through Identity", ["m.b1.running_mean", "m.b1.running_var"]),
        ("directly", ["bn1.BatchNormalization.running_mean", "bn1.BatchNormalization.running_var"]),
    ],
)
def test_batch_norms_that_share_statistics_each_update_their_own(shared, bn1_statistics):
    model = from_onnx(two_batch_norms(shared), batch_norm="train", frozen=list(SCALES))
    x = RNG.normal(1.0, 2.0, size=(8, 2, 3)).astype(np.float32)
    with model:
        model.compile(optimizer=SGD(learning_rate=0.1), loss="softmax_cross_entropy_with_logits")
        model.fit(x, RNG.integers(0, 3, 8), batch_size=4, shuffle=False, verbose=0)
        weights = model.get_weights()
    expected = numpy_running_statistics([x[:4], x[4:]])
    got = {
        "bn0.mean": weights["m.b0.running_mean"],
        "bn0.var": weights["m.b0.running_var"],
        "bn1.mean": weights[bn1_statistics[0]],
        "bn1.var": weights[bn1_statistics[1]],
    }
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    assert not np.allclose(got["bn0.mean"], got["bn1.mean"])  # two nodes, two sets of statistics


def test_inference_mode_leaves_shared_statistics_as_the_file_has_them():
    model = from_onnx(two_batch_norms("through Identity"))
    assert "m.b1.running_mean" not in model.get_weights()


def folded_cnn() -> onnx.ModelProto:
    """A Conv with its BatchNorm folded in (what torch exports by default), Flatten, MatMul: logits [N, 3]."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="/conv/Conv"),
        helper.make_node("Flatten", ["c"], ["flat"]),
        helper.make_node("MatMul", ["flat", "head"], ["logits"]),
    ]
    arrays = {"w": RNG.normal(size=(2, 1, 2, 2)), "b": np.zeros(2), "head": RNG.normal(size=(8, 3))}
    graph = helper.make_graph(
        nodes,
        "folded",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 3, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(a.astype(np.float32), n) for n, a in arrays.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_batch_norm_train_on_a_graph_without_batch_norm_warns_once_how_to_export_them(tmp_path):
    with pytest.warns(
        UserWarning,
        match=r"from_onnx\(batch_norm='train'\): the graph has no BatchNormalization node, so there are no "
        r"statistics to update: the exporter folded each BatchNorm into the Conv before it.*"
        r"training=torch.onnx.TrainingMode.PRESERVE.*dynamo=True, optimize=False",
    ) as caught:
        model = from_onnx(folded_cnn(), batch_norm="train")
    assert len(caught) == 1
    with model, warnings.catch_warnings():
        warnings.simplefilter("error")  # the saved graph loads without a second warning
        model.save(tmp_path / "saved")
        load_model(tmp_path / "saved").close()


def test_batch_norm_train_with_batch_norm_nodes_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_onnx(two_batch_norms("directly"), batch_norm="train").close()
