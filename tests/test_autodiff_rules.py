"""Every gradient rule of onnxtrain.autodiff, one row per op and attribute variant: against finite differences
(float64 where ONNX Runtime has the kernels) and, where ONNX Runtime's training build differentiates the op, against
its gradient graph. A new rule is one row here (tests/gradcheck.py is the harness)."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import Case, away_from_zero, check_against_ort, check_case, rand

LABELS = np.array([0, 3, 4, 1], np.int64)
ORT_1D = "ORT 1.19's MatMul gradient fails shape inference for 1-D operands"

CASES = [
    Case("Identity", "Identity", {"x": rand(2, 3)}),
    Case("Add same shape", "Add", {"a": rand(2, 3), "b": rand(2, 3, seed=1)}),
    Case("Add broadcast row", "Add", {"a": rand(2, 3), "b": rand(3)}),
    Case("Add broadcast both", "Add", {"a": rand(2, 1, 4), "b": rand(3, 1)}),
    Case("Sub broadcast", "Sub", {"a": rand(2, 3), "b": rand(1, 3)}),
    Case("Mul broadcast scalar", "Mul", {"a": rand(2, 3), "b": rand()}),
    Case(
        "Mul same input twice",
        "Mul",
        {"a": rand(2, 3)},
        node_inputs=["a", "a"],
        ort_skip="ORT's gradient builder defines a_grad twice for an input read twice",
    ),
    Case("Div broadcast", "Div", {"a": rand(2, 3), "b": rand(2, 1, low=0.5, high=2)}),
    Case("Neg", "Neg", {"x": rand(2, 3)}),
    Case("Relu", "Relu", {"x": away_from_zero(3, 4)}),
    Case("MatMul 2-D", "MatMul", {"a": rand(3, 4), "b": rand(4, 2)}),
    Case("MatMul batched broadcast", "MatMul", {"a": rand(2, 3, 4), "b": rand(4, 5)}),
    Case("MatMul batch broadcast both", "MatMul", {"a": rand(2, 1, 3, 4), "b": rand(3, 4, 2)}),
    Case("MatMul 1-D left", "MatMul", {"a": rand(4), "b": rand(2, 4, 3)}, ort_skip=ORT_1D),
    Case("MatMul 1-D right", "MatMul", {"a": rand(2, 3, 4), "b": rand(4)}, ort_skip=ORT_1D),
    Case("MatMul 1-D both", "MatMul", {"a": rand(4), "b": rand(4, seed=3)}, ort_skip=ORT_1D),
    Case("Gemm", "Gemm", {"a": rand(3, 4), "b": rand(4, 5), "c": rand(5)}),
    Case("Gemm no C", "Gemm", {"a": rand(3, 4), "b": rand(4, 5)}),
    Case("Gemm transA", "Gemm", {"a": rand(4, 3), "b": rand(4, 5), "c": rand(3, 5)}, {"transA": 1}),
    Case(
        "Gemm transB alpha beta",
        "Gemm",
        {"a": rand(3, 4), "b": rand(5, 4), "c": rand(1, 5)},
        {"transB": 1, "alpha": 0.5, "beta": 2.0},
    ),
    Case(
        "Gemm transA transB C column",
        "Gemm",
        {"a": rand(4, 3), "b": rand(5, 4), "c": rand(3, 1)},
        {"transA": 1, "transB": 1, "alpha": -1.5},
    ),
    Case("Gemm scalar C", "Gemm", {"a": rand(3, 4), "b": rand(4, 5), "c": rand()}, {"beta": 0.25}),
    Case(
        "SoftmaxCrossEntropyLoss mean",
        "SoftmaxCrossEntropyLoss",
        {"x": rand(4, 5), "t": LABELS},
        ort_skip="ORT's gradient of SoftmaxCrossEntropyLoss needs the log_prob output declared",
    ),
    Case(
        "SoftmaxCrossEntropyLoss mean, log_prob declared",
        "SoftmaxCrossEntropyLoss",
        {"x": rand(4, 5), "t": LABELS},
        num_outputs=2,
        loss_outputs=[0],
    ),
    Case(
        "SoftmaxCrossEntropyLoss loss and log_prob used",
        "SoftmaxCrossEntropyLoss",
        {"x": rand(4, 5), "t": LABELS},
        num_outputs=2,
        ort_skip="ORT's SoftmaxCrossEntropyLoss gradient drops the gradient that flows into log_prob",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rule_matches_finite_differences(case: Case) -> None:
    check_case(case)


@pytest.mark.training
@pytest.mark.parametrize("case", CASES, ids=str)
def test_rule_matches_onnxruntime_training(case: Case) -> None:
    check_against_ort(case)
