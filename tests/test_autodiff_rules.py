"""Every gradient rule of onnxtrain.autodiff, one row per op and attribute variant: against finite differences
(float64 where ONNX Runtime has the kernels) and, where ONNX Runtime's training build differentiates the op, against
its gradient graph. A new rule is one row here (tests/gradcheck.py is the harness)."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
from gradcheck import (
    FLOAT32,
    LOSS,
    Case,
    away_from_zero,
    check_against_ort,
    check_case,
    check_symbolic_batch,
    distinct,
    loss_model,
    ort_cases,
    rand,
)
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from onnxtrain import autodiff
from onnxtrain.errors import UnsupportedError

LABELS = np.array([0, 3, 4, 1], np.int64)
ORT_1D = "ORT 1.19's MatMul gradient fails shape inference for 1-D operands"
NO_FLOAT64 = "ONNX's schema has no float64 form of the op"
ORT_REDUCE_L2 = "ORT 1.19's float64 ReduceL2 (opset 18) sums in float32"
ORT_NO_LOG_PROB = "ORT's gradient of SoftmaxCrossEntropyLoss needs the log_prob output declared"


def ints(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


# The inverse and hyperbolic functions torch exports (asin, acos, sinh, cosh, asinh, acosh, atanh): ONNX Runtime 1.19
# has float kernels only, so these rows run in float32 here, and in float64 through onnx's reference evaluator below.
TRIGONOMETRIC = [
    Case("Sinh", "Sinh", {"x": rand(2, 3, low=-2, high=2)}, ort_skip="ORT has no Sinh gradient"),
    Case("Cosh", "Cosh", {"x": rand(2, 3, low=-2, high=2)}, ort_skip="ORT has no Cosh gradient"),
    Case("Asin", "Asin", {"x": rand(2, 3, low=-0.9, high=0.9)}, ort_skip="ORT has no Asin gradient"),
    Case("Acos", "Acos", {"x": rand(2, 3, low=-0.9, high=0.9)}, ort_skip="ORT has no Acos gradient"),
    Case("Asinh", "Asinh", {"x": rand(2, 3, low=-3, high=3)}, ort_skip="ORT has no Asinh gradient"),
    Case("Acosh", "Acosh", {"x": rand(2, 3, low=1.2, high=3)}, ort_skip="ORT has no Acosh gradient"),
    Case("Atanh", "Atanh", {"x": rand(2, 3, low=-0.9, high=0.9)}, ort_skip="ORT has no Atanh gradient"),
]

ELEMENTWISE = [
    Case("Identity", "Identity", {"x": rand(2, 3)}),
    Case("Add same shape", "Add", {"a": rand(2, 3), "b": rand(2, 3, seed=1)}),
    Case("Add broadcast row", "Add", {"a": rand(2, 3), "b": rand(3)}),
    Case("Add broadcast both", "Add", {"a": rand(2, 1, 4), "b": rand(3, 1)}),
    Case("Sum three inputs", "Sum", {"a": rand(2, 3), "b": rand(3), "c": rand(2, 1)}),
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
    Case("Pow constant exponent 2", "Pow", {"a": rand(2, 3), "b": np.array(2.0)}, constants=["b"]),
    Case("Pow constant exponent 3.5", "Pow", {"a": rand(2, 3, low=0.5, high=2), "b": np.array(3.5)}, constants=["b"]),
    Case(
        "Pow integer exponent",
        "Pow",
        {"a": rand(2, 3), "b": np.array(3, np.int64)},
        ort_skip="ORT 1.19's Pow gradient mixes an int64 exponent with float (type error)",
    ),
    Case(
        "Pow run-time exponent",
        "Pow",
        {"a": rand(2, 3, low=0.5, high=2), "b": rand(3, low=-2, high=2)},
        ort_skip="ORT 1.19 has no gradient for Pow's exponent",
    ),
    Case("Sqrt", "Sqrt", {"x": rand(2, 3, low=0.5, high=2)}),
    Case("Reciprocal", "Reciprocal", {"x": rand(2, 3, low=0.5, high=2) * np.array([1.0, -1.0, 1.0])}),
    Case("Exp", "Exp", {"x": rand(2, 3)}),
    Case("Log", "Log", {"x": rand(2, 3, low=0.5, high=2)}),
    Case("Abs", "Abs", {"x": away_from_zero(2, 3)}),
    Case("Sign has zero gradient", "Sign", {"x": away_from_zero(2, 3)}, ort_skip="ORT has no Sign gradient"),
    Case("Max two inputs broadcast", "Max", {"a": distinct(2, 3), "b": distinct(3, seed=5) * 0.9}),
    Case("Min three inputs", "Min", {"a": distinct(2, 3), "b": distinct(2, 3, seed=2) * 0.9, "c": distinct(3) * 0.8}),
    Case("Min against a constant", "Min", {"a": distinct(2, 3), "b": np.array(0.3)}, constants=["b"]),
    Case(
        "Where broadcast",
        "Where",
        {"c": np.array([[True, False, True]]), "a": rand(2, 3), "b": rand(2, 1)},
        ort_skip="ORT 1.19's Where gradient does not undo broadcasting (returns b_grad shaped [2, 3] for b [2, 1])",
    ),
    Case("Cast float64 to float32", "Cast", {"x": rand(2, 3)}, {"to": 1}, tolerance=FLOAT32),
    Case("Mean three inputs broadcast", "Mean", {"a": rand(2, 3), "b": rand(3), "c": rand(2, 1)}),
    Case("Mean one input (opset 13)", "Mean", {"a": rand(2, 3)}, opset=13),
    Case("Sin", "Sin", {"x": rand(2, 3, low=-3, high=3)}),
    Case("Cos", "Cos", {"x": rand(2, 3, low=-3, high=3)}),
    Case("Tan", "Tan", {"x": rand(2, 3, low=-1.2, high=1.2)}),
    Case("Atan", "Atan", {"x": rand(2, 3, low=-3, high=3)}),
    *TRIGONOMETRIC,
    Case("Hardmax has zero gradient", "Hardmax", {"x": distinct(2, 3)}, opset=13),
    Case(
        "Gather at the ArgMax (ArgMax needs no rule)",
        "GatherElements",
        {"x": distinct(3, 4)},
        {"axis": 1},
        node_inputs=["x", "at"],
        extra_nodes=[helper.make_node("ArgMax", ["x"], ["at"], axis=1)],
    ),
    Case("CastLike (its type input takes none)", "CastLike", {"x": rand(2, 3), "like": rand(1)}, opset=15),
]

ACTIVATIONS = [
    Case("Relu", "Relu", {"x": away_from_zero(3, 4)}),
    Case("LeakyRelu", "LeakyRelu", {"x": away_from_zero(3, 4)}, {"alpha": 0.2}),
    Case(
        "LeakyRelu negative alpha",
        "LeakyRelu",
        {"x": away_from_zero(3, 4)},
        {"alpha": -0.5},
        ort_skip="ORT 1.19's LeakyRelu gradient masks with y > 0, wrong for alpha < 0",
    ),
    Case("Elu", "Elu", {"x": away_from_zero(3, 4)}, {"alpha": 1.5}),
    Case("Elu default alpha", "Elu", {"x": away_from_zero(3, 4)}),
    Case("Selu", "Selu", {"x": away_from_zero(3, 4)}),
    Case("Selu attributes", "Selu", {"x": away_from_zero(3, 4)}, {"alpha": 2.0, "gamma": 0.5}),
    Case("Sigmoid", "Sigmoid", {"x": rand(3, 4, low=-3, high=3)}),
    Case("Tanh", "Tanh", {"x": rand(3, 4, low=-2, high=2)}),
    Case("Erf", "Erf", {"x": rand(3, 4, low=-2, high=2)}),
    Case("Gelu exact (opset 20)", "Gelu", {"x": rand(3, 4, low=-3, high=3)}, opset=20),
    Case(
        "Gelu tanh (opset 20)",
        "Gelu",
        {"x": rand(3, 4, low=-3, high=3)},
        {"approximate": "tanh"},
        opset=20,
        ort_skip="ORT 1.19 differentiates Gelu(approximate='tanh') as the exact Gelu (off by 5e-4)",
    ),
    Case("HardSigmoid", "HardSigmoid", {"x": rand(3, 4, low=-4, high=4)}),
    Case("HardSigmoid attributes", "HardSigmoid", {"x": rand(3, 4, low=-2, high=2)}, {"alpha": 0.4, "beta": 0.3}),
    Case("Softplus", "Softplus", {"x": rand(3, 4, low=-3, high=3)}),
    Case("PRelu per channel (torch)", "PRelu", {"x": away_from_zero(2, 3, 2, 2), "slope": rand(3, 1, 1)}),
    Case("PRelu channels last (Keras)", "PRelu", {"x": away_from_zero(2, 2, 2, 3), "slope": rand(2, 2, 3)}),
    Case("PRelu one slope (opset 13)", "PRelu", {"x": away_from_zero(3, 4), "slope": rand(1)}, opset=13),
    Case("PRelu same shape (opset 21)", "PRelu", {"x": away_from_zero(3, 4), "slope": rand(3, 4, seed=2)}, opset=21),
    Case("HardSwish (opset 14)", "HardSwish", {"x": rand(3, 5, low=-5, high=5)}, opset=14),
    Case("HardSwish (opset 21)", "HardSwish", {"x": rand(3, 5, low=-5, high=5)}, opset=21),
    Case("Softsign", "Softsign", {"x": rand(3, 4, low=-3, high=3)}),
    Case("Celu", "Celu", {"x": away_from_zero(3, 4)}, float32=NO_FLOAT64),
    Case("Celu alpha", "Celu", {"x": away_from_zero(3, 4)}, {"alpha": 0.5}, opset=13, float32=NO_FLOAT64),
    Case("ThresholdedRelu", "ThresholdedRelu", {"x": away_from_zero(3, 4) + 1.0}),  # no jump within a step
    Case("ThresholdedRelu alpha", "ThresholdedRelu", {"x": away_from_zero(3, 4) - 0.5}, {"alpha": -0.5}, opset=13),
    Case("Mish (opset 18)", "Mish", {"x": rand(3, 4, low=-3, high=3)}, opset=18),
    Case("Mish (opset 21)", "Mish", {"x": rand(3, 4, low=-3, high=3)}, opset=21),
    Case(
        "Clip min and max",
        "Clip",
        {"x": distinct(3, 4), "lo": np.array(-0.3), "hi": np.array(0.5)},
        constants=["lo", "hi"],
    ),
    Case("Clip min only", "Clip", {"x": distinct(3, 4), "lo": np.array(-0.3)}, constants=["lo"]),
    Case("Clip max only", "Clip", {"x": distinct(3, 4), "lo": None, "hi": np.array(0.5)}, constants=["hi"]),
    Case("Clip no bounds", "Clip", {"x": distinct(3, 4)}),
    Case(
        "Clip bounds differentiated",
        "Clip",
        {"x": distinct(3, 4), "lo": np.array(-0.31), "hi": np.array(0.52)},
        ort_skip="ORT 1.19 has no gradient for Clip's min and max",
    ),
    Case("Softmax last axis", "Softmax", {"x": rand(3, 4)}),
    Case("Softmax axis 1 of 3-D", "Softmax", {"x": rand(2, 3, 4)}, {"axis": 1}),
    Case("LogSoftmax", "LogSoftmax", {"x": rand(3, 4)}),
    Case("LogSoftmax axis 0", "LogSoftmax", {"x": rand(2, 3, 4)}, {"axis": 0}),
]

LINEAR = [
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
    Case("Einsum batched matmul", "Einsum", {"a": rand(2, 3, 4), "b": rand(2, 4, 5)}, {"equation": "bij,bjk->bik"}),
    Case(
        "Einsum attention scores",
        "Einsum",
        {"q": rand(2, 2, 3, 4), "k": rand(2, 2, 5, 4)},
        {"equation": "bhqd,bhkd->bhqk"},
    ),
    Case(
        "Einsum attention values (opset 13)",
        "Einsum",
        {"p": rand(2, 2, 3, 5), "v": rand(2, 2, 5, 4)},
        {"equation": "bhqk, bhkd -> bhqd"},
        opset=13,
    ),
    Case("Einsum dense (Keras)", "Einsum", {"x": rand(2, 3, 4), "w": rand(4, 5)}, {"equation": "abc,cd->abd"}),
    Case("Einsum ellipsis", "Einsum", {"x": rand(2, 3, 4), "w": rand(4, 5)}, {"equation": "...c,cd->...d"}),
    Case("Einsum implicit output", "Einsum", {"a": rand(3, 4), "b": rand(4, 2)}, {"equation": "ij,jk"}),
    Case("Einsum transpose", "Einsum", {"x": rand(2, 3, 4)}, {"equation": "abc->cab"}, opset=21),
    Case("Einsum sum of an index", "Einsum", {"x": rand(2, 3, 4), "w": rand(3)}, {"equation": "abc,b->a"}),
    Case("Einsum outer product", "Einsum", {"a": rand(3), "b": rand(4)}, {"equation": "i,j->ij"}),
    Case("Gemm scalar C", "Gemm", {"a": rand(3, 4), "b": rand(4, 5), "c": rand()}, {"beta": 0.25}),
]

SHAPE = [
    Case("Reshape", "Reshape", {"x": rand(2, 3, 4), "shape": ints(4, -1)}),
    Case("Reshape allowzero (opset 14)", "Reshape", {"x": rand(2, 3), "shape": ints(3, 2)}, {"allowzero": 1}, opset=14),
    Case("Flatten", "Flatten", {"x": rand(2, 3, 4)}),
    Case("Flatten axis 2", "Flatten", {"x": rand(2, 3, 4)}, {"axis": 2}),
    Case("Transpose", "Transpose", {"x": rand(2, 3, 4)}, {"perm": [1, 2, 0]}),
    Case("Transpose default perm", "Transpose", {"x": rand(2, 3, 4)}),
    Case("Squeeze axes input", "Squeeze", {"x": rand(2, 1, 3, 1), "axes": ints(1, -1)}),
    Case("Squeeze all", "Squeeze", {"x": rand(2, 1, 3, 1)}),
    Case("Unsqueeze axes input", "Unsqueeze", {"x": rand(2, 3), "axes": ints(0, -1)}),
    Case("Concat", "Concat", {"a": rand(2, 3), "b": rand(2, 1), "c": rand(2, 2)}, {"axis": 1}),
    Case("Concat negative axis", "Concat", {"a": rand(2, 3), "b": rand(1, 3)}, {"axis": -2}),
    Case("Split equal", "Split", {"x": rand(4, 3)}, num_outputs=2),
    Case("Split split input", "Split", {"x": rand(2, 5), "split": ints(2, 3)}, {"axis": 1}, num_outputs=2),
    Case(
        "Split one output unused",
        "Split",
        {"x": rand(6, 2), "split": ints(1, 2, 3)},
        num_outputs=3,
        loss_outputs=[0, 2],
        ort_skip="ORT 1.19's Split gradient drops an output without gradient (wrong shape)",
    ),
    Case(
        "Split num_outputs (opset 18)",
        "Split",
        {"x": rand(2, 6)},
        {"axis": 1, "num_outputs": 3},
        opset=18,
        num_outputs=3,
    ),
    Case("Slice", "Slice", {"x": rand(4, 5), "starts": ints(1, 0), "ends": ints(3, 4)}),
    Case(
        "Slice axes negative bounds",
        "Slice",
        {"x": rand(3, 4, 5), "starts": ints(-3), "ends": ints(100), "axes": ints(-1)},
    ),
    Case(
        "Slice steps",
        "Slice",
        {"x": rand(4, 6), "starts": ints(0, 5), "ends": ints(4, 0), "axes": ints(0, 1), "steps": ints(2, -2)},
        ort_skip="ORT 1.19's SliceGrad fails on negative steps (narrowing_error)",
    ),
    Case("Gather rows (embedding)", "Gather", {"w": rand(5, 3), "i": np.array([[0, 2], [2, 4]], np.int64)}),
    Case("Gather rows opset 13", "Gather", {"w": rand(5, 3), "i": np.array([1, 1, 4, -1], np.int64)}, opset=13),
    Case("Gather axis 1", "Gather", {"w": rand(2, 4, 3), "i": np.array([3, 0, 3], np.int64)}, {"axis": 1}),
    Case("Gather scalar index", "Gather", {"w": rand(4, 3), "i": np.array(2, np.int64)}, {"axis": 1}),
    Case(
        "GatherElements axis 1, duplicates, negative",
        "GatherElements",
        {"w": rand(2, 4), "i": np.array([[0, 3, 3], [-1, 1, 0]], np.int64)},
        {"axis": 1},
    ),
    Case("GatherElements axis 0", "GatherElements", {"w": rand(3, 2), "i": np.array([[2, 0], [2, 2]], np.int64)}),
    Case(
        "GatherElements opset 15 (one-hot)",
        "GatherElements",
        {"w": rand(2, 3), "i": np.array([[0, 2, 2], [-1, 1, 0]], np.int64)},
        {"axis": 1},
        opset=15,
    ),
    Case(
        "GatherND duplicate and negative tuples",
        "GatherND",
        {"x": rand(3, 4), "i": np.array([[0, 1], [2, -1], [0, 1]], np.int64)},
    ),
    Case("GatherND slices", "GatherND", {"x": rand(4, 3), "i": np.array([[[1], [3]], [[1], [0]]], np.int64)}),
    Case(
        "GatherND batch_dims 1",
        "GatherND",
        {"x": rand(2, 3, 4), "i": np.array([[[1], [2], [1]], [[0], [-1], [2]]], np.int64)},
        {"batch_dims": 1},
    ),
    Case(
        "GatherND distinct constant tuples (opset 13)",
        "GatherND",
        {"x": rand(3, 4), "i": np.array([[0, 1], [2, 3]], np.int64)},
        opset=13,
    ),
    Case(
        "ScatterND (opset 13)",
        "ScatterND",
        {"x": rand(4, 3), "i": np.array([[1], [3]], np.int64), "u": rand(2, 3)},
        opset=13,
    ),
    Case(
        "ScatterND elements",
        "ScatterND",
        {"x": rand(3, 4), "i": np.array([[0, 1], [2, 3], [1, 1]], np.int64), "u": rand(3)},
    ),
    Case(
        "ScatterND add duplicates (opset 16)",
        "ScatterND",
        {"x": rand(4, 3), "i": np.array([[1], [1], [2]], np.int64), "u": rand(3, 3)},
        {"reduction": "add"},
        opset=16,
    ),
    Case("Trilu upper", "Trilu", {"x": rand(3, 4)}, opset=14),
    Case("Trilu lower k", "Trilu", {"x": rand(2, 3, 4), "k": ints(1)}, {"upper": 0}),
    Case("Trilu upper negative k (opset 21)", "Trilu", {"x": rand(4, 3), "k": ints(-1)}, opset=21),
    Case("DepthToSpace DCR", "DepthToSpace", {"x": rand(2, 8, 2, 3)}, {"blocksize": 2}),
    Case("DepthToSpace CRD", "DepthToSpace", {"x": rand(2, 8, 2, 3)}, {"blocksize": 2, "mode": "CRD"}),
    Case(
        "DepthToSpace CRD (opset 13)",
        "DepthToSpace",
        {"x": rand(1, 9, 2, 1)},
        {"blocksize": 3, "mode": "CRD"},
        opset=13,
    ),
    Case("SpaceToDepth", "SpaceToDepth", {"x": rand(2, 2, 4, 6)}, {"blocksize": 2}),
    Case("SpaceToDepth (opset 13)", "SpaceToDepth", {"x": rand(1, 2, 3, 6)}, {"blocksize": 3}, opset=13),
    Case("Expand", "Expand", {"x": rand(3, 1), "shape": ints(2, 3, 4)}),
    Case("Tile", "Tile", {"x": rand(2, 3), "repeats": ints(2, 3)}),
]

REDUCE = [
    Case("ReduceSum axes input", "ReduceSum", {"x": rand(2, 3, 4), "axes": ints(1)}),
    Case("ReduceSum keepdims 0", "ReduceSum", {"x": rand(2, 3, 4), "axes": ints(0, -1)}, {"keepdims": 0}),
    Case("ReduceSum all", "ReduceSum", {"x": rand(2, 3)}, {"keepdims": 0}),
    Case("ReduceSum noop", "ReduceSum", {"x": rand(2, 3), "axes": ints()}, {"noop_with_empty_axes": 1}),
    Case("ReduceMean axes attribute (opset 17)", "ReduceMean", {"x": rand(2, 3, 4)}, {"axes": [1], "keepdims": 0}),
    Case("ReduceMean axes input (opset 18)", "ReduceMean", {"x": rand(2, 3, 4), "axes": ints(-1)}, opset=18),
    Case("ReduceMean all", "ReduceMean", {"x": rand(2, 3)}, {"keepdims": 0}),
    Case("ReduceMax axes attribute", "ReduceMax", {"x": distinct(2, 3, 4)}, {"axes": [1]}),
    Case(
        "ReduceMax axes input (opset 18)",
        "ReduceMax",
        {"x": distinct(2, 3, 4), "axes": ints(0, 2)},
        {"keepdims": 0},
        opset=18,
    ),
    Case("ReduceSumSquare axes attribute", "ReduceSumSquare", {"x": rand(2, 3, 4)}, {"axes": [1], "keepdims": 0}),
    Case(
        "ReduceSumSquare axes input (opset 18)", "ReduceSumSquare", {"x": rand(2, 3, 4), "axes": ints(0, 2)}, opset=18
    ),
    Case("ReduceL1 all", "ReduceL1", {"x": away_from_zero(3, 4)}, {"keepdims": 0}),
    Case("ReduceL1 axes input (opset 18)", "ReduceL1", {"x": away_from_zero(2, 3, 4), "axes": ints(-1)}, opset=18),
    Case("ReduceL2 axes attribute", "ReduceL2", {"x": rand(2, 3, 4)}, {"axes": [0, 2]}),
    Case(
        "ReduceL2 axes input (opset 18)",
        "ReduceL2",
        {"x": rand(2, 3, 4), "axes": ints(1)},
        {"keepdims": 0},
        opset=18,
        float32=ORT_REDUCE_L2,
    ),
    Case(
        "ReduceLogSumExp axes attribute",
        "ReduceLogSumExp",
        {"x": rand(2, 3, 4)},
        {"axes": [-1], "keepdims": 0},
        ort_skip="ORT 1.19's ReduceLogSumExp gradient emits opset-11 Unsqueeze (no axes input) at opset 13+",
    ),
    Case("ReduceLogSumExp all", "ReduceLogSumExp", {"x": rand(3, 4, low=-3, high=3)}),
    Case("ReduceLogSumExp axes input (opset 18)", "ReduceLogSumExp", {"x": rand(2, 3, 4), "axes": ints(1)}, opset=18),
    Case(
        "ReduceLogSumExp noop (opset 18)",
        "ReduceLogSumExp",
        {"x": rand(2, 3), "axes": ints()},
        {"noop_with_empty_axes": 1},
        opset=18,
    ),
    Case("ReduceMin all", "ReduceMin", {"x": distinct(3, 4)}),
]

LOSSES = [
    Case(
        "SoftmaxCrossEntropyLoss mean",
        "SoftmaxCrossEntropyLoss",
        {"x": rand(4, 5), "t": LABELS},
        ort_skip=ORT_NO_LOG_PROB,
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
    Case(
        "SoftmaxCrossEntropyLoss sum",
        "SoftmaxCrossEntropyLoss",
        {"x": rand(4, 5), "t": LABELS},
        {"reduction": "sum"},
        num_outputs=2,
        loss_outputs=[0],
    ),
    Case(
        "SoftmaxCrossEntropyLoss none",
        "SoftmaxCrossEntropyLoss",
        {"x": rand(4, 5), "t": LABELS},
        {"reduction": "none"},
        num_outputs=2,
        loss_outputs=[0],
    ),
    Case(
        "SoftmaxCrossEntropyLoss weights ignore_index",
        "SoftmaxCrossEntropyLoss",
        {"x": rand(4, 5), "t": LABELS, "w": rand(5, low=0.5, high=2)},
        {"ignore_index": 3},
        wrt=["x"],
        constants=["w"],
        num_outputs=2,
        loss_outputs=[0],
    ),
    Case(
        "SoftmaxCrossEntropyLoss ignore_index out of range, 3-D",
        "SoftmaxCrossEntropyLoss",
        {"x": rand(2, 5, 3), "t": np.array([[0, -100, 4], [1, 2, -100]], np.int64)},
        {"ignore_index": -100},
        num_outputs=2,
        loss_outputs=[0],
    ),
    Case("NegativeLogLikelihoodLoss mean", "NegativeLogLikelihoodLoss", {"x": rand(4, 5), "t": LABELS}),
    Case(
        "NegativeLogLikelihoodLoss weights sum",
        "NegativeLogLikelihoodLoss",
        {"x": rand(4, 5), "t": LABELS, "w": rand(5, low=0.5, high=2)},
        {"reduction": "sum"},
        constants=["w"],
    ),
    Case(
        "NegativeLogLikelihoodLoss weights ignore_index mean",
        "NegativeLogLikelihoodLoss",
        {"x": rand(4, 5), "t": LABELS, "w": rand(5, low=0.5, high=2)},
        {"ignore_index": 0},
        constants=["w"],
    ),
    Case(
        "NegativeLogLikelihoodLoss none",
        "NegativeLogLikelihoodLoss",
        {"x": rand(4, 5), "t": LABELS},
        {"reduction": "none"},
    ),
]

CONSTANT_INPUT = [
    Case(
        "Mul by a Constant node",
        "Mul",
        {"a": rand(2, 3)},
        node_inputs=["a", "k"],
        extra_nodes=[helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array(1.5)))],
    ),
]

# The forms that changed between opsets 13 and 21, at both ends.
OPSETS = [
    Case("Softmax (opset 13)", "Softmax", {"x": rand(2, 3, 4)}, {"axis": 1}, opset=13),
    Case("LogSoftmax (opset 21)", "LogSoftmax", {"x": rand(3, 4)}, opset=21),
    Case(
        "ReduceSum axes input (opset 13)", "ReduceSum", {"x": rand(2, 3, 4), "axes": ints(1)}, {"keepdims": 0}, opset=13
    ),
    Case("ReduceMean axes attribute (opset 13)", "ReduceMean", {"x": rand(2, 3, 4)}, {"axes": [0, 2]}, opset=13),
    Case(
        "ReduceMean axes input (opset 21)",
        "ReduceMean",
        {"x": rand(2, 3, 4), "axes": ints(1)},
        {"keepdims": 0},
        opset=21,
    ),
    Case(
        "ReduceMax axes attribute (opset 13)",
        "ReduceMax",
        {"x": distinct(2, 3)},
        {"axes": [1], "keepdims": 0},
        opset=13,
    ),
    Case("ReduceMax axes input (opset 21)", "ReduceMax", {"x": distinct(2, 3), "axes": ints(0)}, opset=21),
    Case("ReduceSumSquare axes attribute (opset 13)", "ReduceSumSquare", {"x": rand(2, 3)}, {"axes": [0]}, opset=13),
    Case("ReduceL1 axes attribute (opset 13)", "ReduceL1", {"x": away_from_zero(2, 3)}, {"axes": [1]}, opset=13),
    Case(
        "ReduceL2 all (opset 13)",
        "ReduceL2",
        {"x": rand(2, 3)},
        {"keepdims": 0},
        opset=13,
        ort_skip="ORT 1.19's ReduceL2 gradient of a full reduction without keepdims leaves a value untyped",
    ),
    Case(
        "ReduceLogSumExp axes input (opset 21)",
        "ReduceLogSumExp",
        {"x": rand(2, 3, 4), "axes": ints(0, 1)},
        {"keepdims": 0},
        opset=21,
    ),
    Case("ReduceSumSquare axes input (opset 21)", "ReduceSumSquare", {"x": rand(2, 3), "axes": ints(1)}, opset=21),
    Case("Split split input (opset 13)", "Split", {"x": rand(5, 2), "split": ints(3, 2)}, opset=13, num_outputs=2),
    Case(
        "Split num_outputs uneven (opset 21)", "Split", {"x": rand(5, 2)}, {"num_outputs": 2}, opset=21, num_outputs=2
    ),
    Case("Squeeze axes input (opset 13)", "Squeeze", {"x": rand(1, 3, 1), "axes": ints(0)}, opset=13),
    Case("Unsqueeze axes input (opset 21)", "Unsqueeze", {"x": rand(3, 2), "axes": ints(1)}, opset=21),
    Case(
        "Clip (opset 13)",
        "Clip",
        {"x": distinct(3, 4), "lo": np.array(-0.3), "hi": np.array(0.5)},
        opset=13,
        constants=["lo", "hi"],
    ),
    Case("Reshape (opset 21)", "Reshape", {"x": rand(2, 6), "shape": ints(0, 3, -1)}, opset=21),
    Case("Gather (opset 21)", "Gather", {"w": rand(5, 3), "i": np.array([4, 0, 4], np.int64)}, opset=21),
    Case("Gemm (opset 13)", "Gemm", {"a": rand(3, 4), "b": rand(5, 4), "c": rand(5)}, {"transB": 1}, opset=13),
    Case("Pow (opset 21)", "Pow", {"a": rand(2, 3, low=0.5, high=2), "b": np.array(1.5)}, opset=21, constants=["b"]),
    Case(
        "SoftmaxCrossEntropyLoss (opset 13)",
        "SoftmaxCrossEntropyLoss",
        {"x": rand(4, 5), "t": LABELS},
        opset=13,
        num_outputs=2,
        loss_outputs=[0],
    ),
]

CASES = ELEMENTWISE + ACTIVATIONS + LINEAR + SHAPE + REDUCE + LOSSES + CONSTANT_INPUT + OPSETS


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rule_matches_finite_differences(case: Case) -> None:
    check_case(case)


@pytest.mark.parametrize("case", TRIGONOMETRIC, ids=str)
def test_trigonometric_rules_match_float64_finite_differences_in_onnx_s_reference(case: Case) -> None:
    """The gradient graph and the central differences of the forward, both run by onnx's reference evaluator in
    float64 (ONNX Runtime 1.19 has no float64 kernels for these ops)."""
    model, feeds, wrt, _ = loss_model(case, np.dtype(np.float64))
    grads = ReferenceEvaluator(autodiff.gradients(model, wrt)).run([f"{name}_grad" for name in wrt], feeds)
    forward = ReferenceEvaluator(model)
    x = feeds["x"]
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = [x.copy(), x.copy()]
        shifted[0][index] += 1e-6
        shifted[1][index] -= 1e-6
        plus, minus = (float(forward.run([LOSS], {"x": s})[0]) for s in shifted)
        numeric[index] = (plus - minus) / 2e-6
    np.testing.assert_allclose(grads[0], numeric, rtol=1e-6, atol=1e-8)


# Rows where ONNX Runtime training's gradient differs from finite differences (which these rules match): strict xfails.
ORT_DIFFERS = {
    "ScatterND add duplicates (opset 16)": "ORT 1.19's ScatterND gradient ignores reduction='add' (zeroes data's rows)",
}
ORT_CASES = ort_cases(CASES, ORT_DIFFERS)


@pytest.mark.training
@pytest.mark.parametrize("case", ORT_CASES)
def test_rule_matches_onnxruntime_training(case: Case) -> None:
    check_against_ort(case)


SYMBOLIC_BATCH = {
    "PRelu per channel (torch)",
    "HardSwish (opset 14)",
    "Mish (opset 18)",
    "Einsum dense (Keras)",
    "Einsum ellipsis",
    "Einsum sum of an index",
    "GatherND batch_dims 1",
    "ScatterND (opset 13)",
    "Trilu lower k",
    "DepthToSpace CRD",
    "SpaceToDepth",
    "ReduceSumSquare axes input (opset 18)",
    "ReduceL2 axes attribute",
    "ReduceLogSumExp axes attribute",
}


@pytest.mark.parametrize("case", [c for c in CASES if c.id in SYMBOLIC_BATCH], ids=str)
def test_rule_takes_a_batch_known_at_run_time_only(case: Case) -> None:
    check_symbolic_batch(case)


REFUSED = [
    (Case("Einsum diagonal", "Einsum", {"x": rand(3, 3)}, {"equation": "ii->i"}), r"equation='ii->i' .*diagonal"),
    (
        Case(
            "Einsum broadcast ellipsis", "Einsum", {"a": rand(2, 3, 4), "b": rand(1, 4, 5)}, {"equation": "...ij,...jk"}
        ),
        r"equation='...ij,...jk' \(operands broadcast along the ellipsis\)",
    ),
    (
        Case(
            "ScatterND mul",
            "ScatterND",
            {"x": rand(4, 3), "i": np.array([[1]], np.int64), "u": rand(1, 3)},
            {"reduction": "mul"},
            opset=16,
        ),
        r"reduction='mul' \(expected 'none' or 'add'\)",
    ),
    (
        Case(
            "GatherND duplicates (opset 13)",
            "GatherND",
            {"x": rand(3, 4), "i": np.array([[1], [1]], np.int64)},
            opset=13,
        ),
        r"opset=13 \(before opset 16 it needs constant indices without duplicates\)",
    ),
    (Case("Celu alpha 0", "Celu", {"x": rand(3, 4)}, {"alpha": 0.0}), r"alpha=0.0 \(Celu divides by alpha\)"),
    *(
        (
            Case(f"{op} noop (opset 18)", op, {"x": rand(2, 3), "axes": ints()}, {"noop_with_empty_axes": 1}, opset=18),
            r"noop_with_empty_axes=1 \(with empty axes, runtimes disagree on its output",
        )
        for op in ("ReduceL1", "ReduceL2", "ReduceSumSquare")
    ),
]


@pytest.mark.parametrize(("case", "message"), REFUSED, ids=[c.id for c, _ in REFUSED])
def test_rule_refuses_what_it_cannot_differentiate(case: Case, message: str) -> None:
    model, _, wrt, _ = loss_model(case, np.dtype(np.float32))
    with pytest.raises(UnsupportedError, match=f"{case.op_type} node 'node_under_test' with {message}"):
        autodiff.gradients(model, wrt)


@pytest.mark.parametrize("op", ["Max", "Min"])
def test_min_max_give_a_tie_to_the_first_input_that_attains_it(op: str) -> None:
    a = np.array([1.0, 2.0, 3.0, -1.0, 0.0], np.float32)
    b = np.array([1.0, 2.0, 0.0, -1.0, 5.0], np.float32) * (1 if op == "Max" else -1)
    c = np.array([1.0, 0.0, 3.0, -1.0, 5.0], np.float32) * (1 if op == "Max" else -1)
    a = a * (1 if op == "Max" else -1)
    weights = np.arange(1, 6, dtype=np.float32)  # the loss is sum(weights * op(a, b, c))
    nodes = [
        helper.make_node(op, ["a", "b", "c"], ["m"]),
        helper.make_node("Mul", ["m", "w"], ["wm"]),
        helper.make_node("ReduceSum", ["wm"], ["loss"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "ties",
        [],
        [helper.make_tensor_value_info("loss", 1, [])],
        [numpy_helper.from_array(v, n) for n, v in (("a", a), ("b", b), ("c", c), ("w", weights))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    grads = autodiff.gradients(model, ["a", "b", "c"])
    session = onnxruntime.InferenceSession(grads.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {}), strict=True))
    # Element 0: all three tie (a's); 1: a and b tie (a's); 2: a and c tie (a's); 3: all tie (a's); 4: b and c (b's)
    np.testing.assert_array_equal(got["a_grad"], [1, 2, 3, 4, 0])
    np.testing.assert_array_equal(got["b_grad"], [0, 0, 0, 0, 5])
    np.testing.assert_array_equal(got["c_grad"], [0, 0, 0, 0, 0])
