"""from_onnx on graphs whose exporter merged parameters of equal value: TorchScript's Identity copies and the dynamo
optimizer's shared initializers become one weight per parameter again (against a numpy SGD step of the separate
parameters), a real tie stays tied, and what cannot be told apart warns and unties on request."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxtrain import from_onnx
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.optimizers import SGD

RNG = np.random.default_rng(3)
X = RNG.normal(size=(6, 3)).astype(np.float32)
Y = np.array([0, 1, 2, 1, 0, 2])
W = RNG.normal(size=(3, 3)).astype(np.float32)
V = RNG.normal(size=(3, 3)).astype(np.float32)
BIAS = np.zeros(3, np.float32)  # fresh biases: the equal values an exporter merges


def _fx(parameter: str, scope: str) -> list[onnx.StringStringEntryProto]:
    """The dynamo exporter's metadata of a node of module `scope` that reads torch parameter `parameter`."""
    return [
        onnx.StringStringEntryProto(
            key="pkg.torch.onnx.fx_node", value=f"%add = call_function(args = (%h, %{parameter}))"
        ),
        onnx.StringStringEntryProto(key="pkg.torch.onnx.name_scopes", value=f"['', '{scope}', 'add']"),
    ]


def two_layers(shared: str, second: tuple[str, str] | None = None) -> onnx.ModelProto:
    """x [N, 3] -> MatMul W -> Add l1.bias -> MatMul V -> Add (l2.bias) -> logits [N, 3]. The second Add reads
    the first's bias "through Identity" (TorchScript: an Identity named `l2.bias`) or "directly" (dynamo's optimizer;
    `second`: the torch parameter and module scope its metadata names)."""
    bias2 = "l2.bias" if shared == "through Identity" else "l1.bias"
    nodes = [
        helper.make_node("MatMul", ["x", "l1.weight"], ["h0"], name="/l1/MatMul"),
        helper.make_node("Add", ["h0", "l1.bias"], ["h1"], name="/l1/Add"),
        helper.make_node("MatMul", ["h1", "l2.weight"], ["h2"], name="/l2/MatMul"),
        helper.make_node("Add", ["h2", bias2], ["logits"], name="node_add_1"),
    ]
    if shared == "through Identity":
        nodes.insert(0, helper.make_node("Identity", ["l1.bias"], ["l2.bias"], name="Identity_0"))
    if second is not None:
        nodes[0].metadata_props.extend(_fx("p_l1_bias", "l1"))
        nodes[1].metadata_props.extend(_fx("p_l1_bias", "l1"))
        nodes[3].metadata_props.extend(_fx(*second))
    weights = {"l1.weight": W, "l1.bias": BIAS, "l2.weight": V}
    graph = helper.make_graph(
        nodes,
        "merged_biases",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(a, n) for n, a in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def numpy_step(tied: bool, lr: float = 0.1) -> dict[str, np.ndarray]:
    """One SGD step of softmax cross-entropy (mean) on separate biases, or on one shared bias (`tied`)."""
    h1 = X @ W + BIAS
    logits = h1 @ V + BIAS
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g = (p - np.eye(3)[Y]) / len(X)
    dv, db2 = h1.T @ g, g.sum(0)
    dh1 = g @ V.T
    dw, db1 = X.T @ dh1, dh1.sum(0)
    step = {"l1.weight": W - lr * dw, "l2.weight": V - lr * dv}
    if tied:
        return step | {"l1.bias": BIAS - lr * (db1 + db2)}
    return step | {"l1.bias": BIAS - lr * db1, "l2.bias": BIAS - lr * db2}


def trained(model: object) -> dict[str, np.ndarray]:
    model.compile(optimizer=SGD(0.1), loss="softmax_cross_entropy_with_logits")  # type: ignore[attr-defined]
    model.fit(X, Y, epochs=1, batch_size=len(X), shuffle=False, verbose=0)  # type: ignore[attr-defined]
    return model.get_weights()  # type: ignore[attr-defined,no-any-return]


def assert_weights(found: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(found) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(found[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize(
    ("shared", "second"),
    [("through Identity", None), ("directly", ("p_l2_bias", "l2"))],
    ids=["torchscript_identity", "dynamo_metadata"],
)
def test_merged_parameters_train_apart_as_torch_does(shared: str, second: tuple[str, str] | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # proven separate: nothing to warn about
        model = from_onnx(two_layers(shared, second))
    assert_weights(trained(model), numpy_step(tied=False))


def test_untie_false_keeps_the_file_s_sharing() -> None:
    model = from_onnx(two_layers("through Identity"), untie=False)
    assert_weights(trained(model), numpy_step(tied=True))


def test_a_real_tie_proven_by_metadata_stays_tied_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = from_onnx(two_layers("directly", ("p_l1_bias", "l1")))
    assert_weights(trained(model), numpy_step(tied=True))


def test_an_unproven_shared_weight_warns_naming_it_and_its_readers() -> None:
    with pytest.warns(UserWarning, match=r"'l1\.bias' \(read by Add '/l1/Add', Add 'node_add_1'\).*untie=") as caught:
        model = from_onnx(two_layers("directly"))
    assert len(caught) == 1
    assert_weights(trained(model), numpy_step(tied=True))


def test_frozen_shared_weights_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_onnx(two_layers("directly"), frozen=["l1.bias"])


@pytest.mark.parametrize("untie", [True, ["l1.bias"], "l1.*"])
def test_untie_gives_each_reader_its_own_copy_named_after_the_node(untie: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = from_onnx(two_layers("directly"), untie=untie)  # type: ignore[arg-type]
    found = trained(model)
    expected = numpy_step(tied=False)
    expected["node_add_1.bias"] = expected.pop("l2.bias")
    assert_weights(found, expected)


@pytest.mark.parametrize(
    ("untie", "error", "match"),
    [
        (["nope"], InvalidArgumentError, r"from_onnx\(untie=\.\.\.\): 'nope' matches no initializer that several"),
        ([3], TypeError, r"from_onnx\(untie=\.\.\.\) expects a bool or a list .* Received: untie=\[3\]"),
    ],
)
def test_untie_refuses_bad_values(untie: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        from_onnx(two_layers("directly"), untie=untie)  # type: ignore[arg-type]


def test_saved_and_loaded_model_keeps_the_copies(tmp_path: object) -> None:
    from onnxtrain import load_model

    model = from_onnx(two_layers("through Identity"))
    model.save(str(tmp_path) + "/m")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_model(str(tmp_path) + "/m")
    assert set(loaded.get_weights()) == {"l1.weight", "l1.bias", "l2.weight", "l2.bias"}
