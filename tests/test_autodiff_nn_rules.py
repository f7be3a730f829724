"""Gradient rules of the network ops (convolutions, pooling, normalization, Dropout, Pad, Resize): one row per op
and attribute variant against finite differences, and against ONNX Runtime training's gradient graph where it has
one (tests/gradcheck.py is the harness). ONNX Runtime's CPU build has no float64 Conv, ConvTranspose, AveragePool
or Resize, so those rows run in float32 with the harness's wider tolerance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from gradcheck import (
    FLOAT32,
    Case,
    autodiff_gradients,
    away_from_zero,
    check_against_ort,
    check_case,
    check_symbolic_batch,
    distinct,
    loss_model,
    numeric_gradients,
    ort_cases,
    rand,
)

from onnxtrain import autodiff
from onnxtrain.errors import UnsupportedError

X1 = rand(2, 3, 7)
X2 = rand(2, 3, 6, 5)
X3 = rand(1, 2, 4, 3, 5)

CONV = [
    Case("Conv 2-D", "Conv", {"x": X2, "w": rand(4, 3, 3, 3), "b": rand(4)}),
    Case("Conv 2-D no bias", "Conv", {"x": X2, "w": rand(4, 3, 3, 2)}),
    Case(
        "Conv 1-D strides pads", "Conv", {"x": X1, "w": rand(2, 3, 3), "b": rand(2)}, {"strides": [2], "pads": [1, 2]}
    ),
    Case(
        "Conv 2-D strides pads dilations",
        "Conv",
        {"x": X2, "w": rand(2, 3, 2, 3), "b": rand(2)},
        {"strides": [2, 1], "pads": [1, 0, 2, 1], "dilations": [2, 1]},
    ),
    Case("Conv stride leaves a tail", "Conv", {"x": rand(1, 2, 8, 7), "w": rand(3, 2, 2, 2)}, {"strides": [3, 3]}),
    Case("Conv SAME_UPPER", "Conv", {"x": X2, "w": rand(2, 3, 2, 2)}, {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    Case("Conv SAME_LOWER", "Conv", {"x": X2, "w": rand(2, 3, 2, 3)}, {"auto_pad": "SAME_LOWER"}),
    Case("Conv VALID", "Conv", {"x": X2, "w": rand(2, 3, 3, 3)}, {"auto_pad": "VALID", "strides": [2, 2]}),
    Case(
        "Conv group 3",
        "Conv",
        {"x": rand(2, 6, 5, 5), "w": rand(9, 2, 3, 3), "b": rand(9)},
        {"group": 3, "pads": [1] * 4},
    ),
    Case("Conv depthwise", "Conv", {"x": X2, "w": rand(6, 1, 3, 3)}, {"group": 3, "strides": [2, 2]}),
    Case("Conv 1x1", "Conv", {"x": X2, "w": rand(5, 3, 1, 1), "b": rand(5)}),
    # 9 input channels x 9 offsets: one weight-gradient Gemm per offset, not the stacked im2col of the rows above.
    Case(
        "Conv many input channels strides pads",
        "Conv",
        {"x": rand(2, 9, 6, 5), "w": rand(2, 9, 3, 3), "b": rand(2)},
        {"strides": [2, 1], "pads": [1, 0, 2, 1]},
    ),
    Case("Conv 3-D", "Conv", {"x": X3, "w": rand(2, 2, 2, 2, 3), "b": rand(2)}, {"pads": [1, 0, 1, 0, 1, 1]}),
    Case(  # Conv3D's forms: grouped, strided and dilated, with Keras' "same" pads
        "Conv 3-D group strides dilations pads",
        "Conv",
        {"x": rand(1, 4, 5, 4, 5), "w": rand(4, 2, 2, 3, 2), "b": rand(4)},
        {"group": 2, "strides": [1, 2, 2], "dilations": [2, 1, 1], "pads": [1, 1, 0, 1, 1, 1]},
    ),
    # 9 input channels x 8 offsets: the 3-D weight gradient's one Gemm per offset
    Case(
        "Conv 3-D many input channels strides",
        "Conv",
        {"x": rand(1, 9, 4, 3, 5), "w": rand(2, 9, 2, 2, 2)},
        {"strides": [2, 1, 2]},
    ),
    Case("Conv kernel_shape attribute", "Conv", {"x": X2, "w": rand(2, 3, 3, 3)}, {"kernel_shape": [3, 3]}),
    Case("Conv weight only", "Conv", {"x": X2, "w": rand(2, 3, 3, 3)}, wrt=["w"]),
    Case("Conv opset 13", "Conv", {"x": X2, "w": rand(2, 3, 3, 3), "b": rand(2)}, opset=13),
    Case("Conv opset 21", "Conv", {"x": X2, "w": rand(2, 3, 3, 3), "b": rand(2)}, opset=21),
]

CONV_TRANSPOSE = [
    Case("ConvTranspose 2-D", "ConvTranspose", {"x": X2, "w": rand(3, 2, 3, 3), "b": rand(2)}),
    Case(
        "ConvTranspose 1-D strides pads",
        "ConvTranspose",
        {"x": X1, "w": rand(3, 2, 3)},
        {"strides": [2], "pads": [1, 0]},
    ),
    Case(
        "ConvTranspose output_padding",
        "ConvTranspose",
        {"x": X2, "w": rand(3, 2, 3, 3), "b": rand(2)},
        {"strides": [2, 3], "output_padding": [1, 2], "pads": [1, 1, 0, 1]},
    ),
    Case(
        "ConvTranspose dilations",
        "ConvTranspose",
        {"x": X2, "w": rand(3, 2, 2, 3)},
        {"dilations": [2, 2], "strides": [2, 1]},
    ),
    Case(
        "ConvTranspose group",
        "ConvTranspose",
        {"x": rand(2, 4, 4, 3), "w": rand(4, 3, 3, 3), "b": rand(6)},
        {"group": 2, "strides": [2, 2]},
    ),
    Case(
        "ConvTranspose output_shape",
        "ConvTranspose",
        {"x": X2, "w": rand(3, 2, 3, 3)},
        {"strides": [2, 2], "output_shape": [12, 10]},
    ),
    Case(
        "ConvTranspose SAME_UPPER",
        "ConvTranspose",
        {"x": X2, "w": rand(3, 2, 3, 2)},
        {"strides": [2, 2], "auto_pad": "SAME_UPPER"},
    ),
    Case(
        "ConvTranspose SAME_LOWER",
        "ConvTranspose",
        {"x": X2, "w": rand(3, 2, 3, 2)},
        {"strides": [2, 2], "auto_pad": "SAME_LOWER"},
    ),
    Case("ConvTranspose 3-D", "ConvTranspose", {"x": X3, "w": rand(2, 2, 2, 2, 2)}, {"strides": [1, 2, 1]}),
    Case(  # Conv3DTranspose(2, 3, strides=2, output_padding=(1, 0, 1)) with dilations: pads and output_padding
        "ConvTranspose 3-D pads output_padding dilations",
        "ConvTranspose",
        {"x": rand(1, 2, 2, 3, 2), "w": rand(2, 3, 2, 3, 2), "b": rand(3)},
        {"strides": [2, 2, 3], "pads": [1, 2, 0, 0, 1, 1], "output_padding": [1, 0, 2], "dilations": [2, 1, 1]},
    ),
]

MAX_POOL = [
    Case("MaxPool 2x2", "MaxPool", {"x": distinct(2, 3, 6, 4)}, {"kernel_shape": [2, 2], "strides": [2, 2]}),
    Case(
        "MaxPool overlapping pads",
        "MaxPool",
        {"x": distinct(2, 2, 5, 6)},
        {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
    ),
    Case(
        "MaxPool strides ceil_mode",
        "MaxPool",
        {"x": distinct(1, 2, 7, 6)},
        {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 0], "ceil_mode": 1},
    ),
    Case("MaxPool dilations", "MaxPool", {"x": distinct(1, 2, 7, 7)}, {"kernel_shape": [2, 3], "dilations": [2, 2]}),
    Case(
        "MaxPool SAME_UPPER", "MaxPool", {"x": distinct(1, 2, 5, 5)}, {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"}
    ),
    Case(
        "MaxPool SAME_LOWER",
        "MaxPool",
        {"x": distinct(1, 2, 5, 5)},
        {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_LOWER"},
    ),
    Case("MaxPool 1-D", "MaxPool", {"x": distinct(2, 3, 9)}, {"kernel_shape": [3], "strides": [2]}),
    Case("MaxPool 3-D", "MaxPool", {"x": distinct(1, 2, 4, 4, 5)}, {"kernel_shape": [2, 2, 3], "strides": [1, 2, 2]}),
    Case(  # MaxPooling3D((3, 2, 2), strides=(2, 1, 2), padding="same"): overlapping windows, Keras' pads
        "MaxPool 3-D overlapping pads",
        "MaxPool",
        {"x": distinct(2, 2, 4, 5, 6)},
        {"kernel_shape": [3, 2, 2], "strides": [2, 1, 2], "pads": [0, 0, 0, 1, 1, 0]},
    ),
    Case(
        "MaxPool 3-D opset 13 overlapping",
        "MaxPool",
        {"x": distinct(1, 2, 3, 4, 5)},
        {"kernel_shape": [2, 2, 2], "strides": [1, 1, 1]},
        opset=13,
    ),
    Case(
        "MaxPool opset 13 apart",
        "MaxPool",
        {"x": distinct(2, 2, 6, 6)},
        {"kernel_shape": [2, 2], "strides": [2, 2]},
        opset=13,
    ),
    Case(
        "MaxPool opset 13 overlapping",
        "MaxPool",
        {"x": distinct(2, 2, 6, 7)},
        {"kernel_shape": [3, 3], "strides": [1, 2], "pads": [1, 1, 1, 1]},
        opset=13,
    ),
    Case(
        "MaxPool opset 15 dilations",
        "MaxPool",
        {"x": distinct(1, 2, 7, 7)},
        {"kernel_shape": [3, 2], "dilations": [2, 3]},
        opset=15,
    ),
    Case(
        "MaxPool opset 21",
        "MaxPool",
        {"x": distinct(2, 2, 6, 6)},
        {"kernel_shape": [3, 3], "strides": [2, 2]},
        opset=21,
    ),
]

AVERAGE_POOL = [
    Case("AveragePool 2x2", "AveragePool", {"x": X2}, {"kernel_shape": [2, 2], "strides": [2, 2]}),
    Case("AveragePool pads exclude", "AveragePool", {"x": X2}, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    Case(
        "AveragePool pads include",
        "AveragePool",
        {"x": X2},
        {"kernel_shape": [3, 3], "pads": [1, 2, 1, 0], "count_include_pad": 1},
    ),
    Case(
        "AveragePool ceil_mode exclude",
        "AveragePool",
        {"x": rand(1, 2, 7, 6)},
        {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 0], "ceil_mode": 1},
    ),
    Case(
        "AveragePool ceil_mode include",
        "AveragePool",
        {"x": rand(1, 2, 7, 6)},
        {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 0], "ceil_mode": 1, "count_include_pad": 1},
    ),
    Case(
        "AveragePool SAME_UPPER",
        "AveragePool",
        {"x": X2},
        {"kernel_shape": [2, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
    ),
    Case("AveragePool 1-D", "AveragePool", {"x": X1}, {"kernel_shape": [3], "strides": [2]}),
    Case("AveragePool 3-D", "AveragePool", {"x": X3}, {"kernel_shape": [2, 2, 2], "pads": [0, 1, 0, 1, 0, 1]}),
    Case(  # AveragePooling3D(3, strides=2, padding="same") on 4x5x6: Keras' pads, left out of each mean
        "AveragePool 3-D strides pads exclude",
        "AveragePool",
        {"x": rand(2, 2, 4, 5, 6)},
        {"kernel_shape": [3, 3, 3], "strides": [2, 2, 2], "pads": [0, 1, 0, 1, 1, 1]},
    ),
    Case(
        "AveragePool dilations opset 19",
        "AveragePool",
        {"x": rand(1, 2, 7, 7)},
        {"kernel_shape": [2, 3], "dilations": [2, 2], "pads": [1, 1, 1, 1]},
        opset=19,
    ),
    Case("AveragePool opset 13", "AveragePool", {"x": X2}, {"kernel_shape": [3, 2], "strides": [2, 1]}, opset=13),
    Case("GlobalAveragePool", "GlobalAveragePool", {"x": X2}),
    Case("GlobalAveragePool 1-D", "GlobalAveragePool", {"x": X1}),
    Case("GlobalAveragePool 3-D", "GlobalAveragePool", {"x": X3}),
    Case("GlobalMaxPool", "GlobalMaxPool", {"x": distinct(2, 3, 4, 5)}),
    Case("GlobalMaxPool 3-D", "GlobalMaxPool", {"x": distinct(2, 2, 3, 2, 3)}),
]

# Opset 21's GroupNormalization computes its statistics in stash_type, float32 by default, whatever X is.
GROUP_NORM_STASH = "its statistics are float32 (stash_type 1) for a float64 X"
C3 = {"scale": rand(3, seed=1), "b": rand(3, seed=2)}
STATS = {"mean": rand(3, seed=3), "var": rand(3, low=0.5, high=1.5, seed=4)}
NORM = [
    Case("BatchNormalization inference", "BatchNormalization", {"x": X2, **C3, **STATS}),
    Case("BatchNormalization inference 2-D", "BatchNormalization", {"x": rand(4, 3), **C3, **STATS}, {"epsilon": 0.1}),
    Case("BatchNormalization inference opset 13", "BatchNormalization", {"x": X2, **C3, **STATS}, opset=13),
    Case(
        "BatchNormalization inference constant statistics",
        "BatchNormalization",
        {"x": X2, **C3, **STATS},
        constants=["mean", "var"],
    ),
    Case(
        "BatchNormalization training",
        "BatchNormalization",
        {"x": X2, **C3, **STATS},
        {"training_mode": 1},
        num_outputs=3,
        loss_outputs=[0],
        wrt=["x", "scale", "b"],
        opset=14,
    ),
    Case(
        "BatchNormalization training 1-D",
        "BatchNormalization",
        {"x": rand(3, 3, 5), **C3, **STATS},
        {"training_mode": 1, "epsilon": 1e-3},
        num_outputs=3,
        loss_outputs=[0],
        wrt=["x", "scale", "b"],
        opset=15,
    ),
    Case(
        "LayerNormalization last axis",
        "LayerNormalization",
        {"x": rand(2, 3, 4), "scale": rand(4), "b": rand(4, seed=2)},
        num_outputs=3,
        loss_outputs=[0],
    ),
    Case(
        "LayerNormalization axis 1",
        "LayerNormalization",
        {"x": rand(2, 3, 4), "scale": rand(3, 4), "b": rand(3, 4, seed=2)},
        {"axis": 1, "epsilon": 1e-3},
        num_outputs=3,
        loss_outputs=[0],
    ),
    Case(
        "LayerNormalization axis 0",
        "LayerNormalization",
        {"x": rand(3, 4), "scale": rand(3, 4), "b": rand(3, 4, seed=2)},
        {"axis": 0},
        num_outputs=3,
        loss_outputs=[0],
    ),
    Case(
        "LayerNormalization no bias",
        "LayerNormalization",
        {"x": rand(3, 5), "scale": rand(5)},
        num_outputs=3,
        loss_outputs=[0],
    ),
    Case(
        "LayerNormalization Y only",
        "LayerNormalization",
        {"x": rand(3, 5), "scale": rand(5), "b": rand(5, seed=2)},
        opset=21,
    ),
    Case("InstanceNormalization 2-D", "InstanceNormalization", {"x": X2, **C3}),
    Case("InstanceNormalization 1-D (opset 13)", "InstanceNormalization", {"x": X1, **C3}, {"epsilon": 0.1}, opset=13),
    Case("InstanceNormalization 3-D (opset 21)", "InstanceNormalization", {"x": rand(2, 3, 2, 3, 2), **C3}, opset=21),
    Case(
        "GroupNormalization scale per channel (opset 21)",
        "GroupNormalization",
        {"x": rand(2, 4, 3, 2), "scale": rand(4, seed=1), "b": rand(4, seed=2)},
        {"num_groups": 2},
        opset=21,
        float32=GROUP_NORM_STASH,
    ),
    Case(
        "GroupNormalization a group per channel, stash_type float64 (opset 21)",
        "GroupNormalization",
        {"x": X1, "scale": rand(3, seed=1), "b": rand(3, seed=2)},
        {"num_groups": 3, "stash_type": 11},
        opset=21,
    ),
]


def pads(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


DROPOUT_AND_PAD = [
    Case("Dropout inference", "Dropout", {"x": X2}),
    Case(
        "Dropout training_mode false",
        "Dropout",
        {"x": X2, "ratio": np.array(0.3), "mode": np.array(False)},
        constants=["ratio"],
        num_outputs=2,
    ),
    Case(
        "Dropout training ratio 0",
        "Dropout",
        {"x": X2, "ratio": np.array(0.0), "mode": np.array(True)},
        constants=["ratio"],
        num_outputs=2,
    ),
    Case("Pad constant", "Pad", {"x": X2, "pads": pads(0, 0, 1, 2, 0, 1, 0, 3)}),
    Case("Pad constant crops", "Pad", {"x": X2, "pads": pads(0, 0, -1, 2, 1, 0, 1, -2)}),
    Case("Pad constant 3-D", "Pad", {"x": X3, "pads": pads(0, 0, 1, 0, 2, 0, 0, 2, 1, 0)}),  # ZeroPadding3D's
    Case("Pad constant value", "Pad", {"x": X2, "pads": pads(0, 1, 1, 0, 1, 0, 1, 1), "value": np.array(0.5)}),
    Case(
        "Pad constant axes", "Pad", {"x": X2, "pads": pads(1, -1, 2, 0), "value": None, "axes": pads(-1, 2)}, opset=18
    ),
    Case("Pad reflect", "Pad", {"x": X2, "pads": pads(0, 0, 2, 1, 0, 0, 5, 4)}, {"mode": "reflect"}),
    Case("Pad edge", "Pad", {"x": X2, "pads": pads(0, 1, 3, 0, 0, 0, 7, 2)}, {"mode": "edge"}),
    Case("Pad edge opset 13", "Pad", {"x": X1, "pads": pads(0, 0, 2, 0, 0, 1)}, {"mode": "edge"}, opset=13),
    Case(
        "Pad reflect axes",
        "Pad",
        {"x": X2, "pads": pads(1, 4, 3, 0), "value": None, "axes": pads(2, 3)},
        {"mode": "reflect"},
        opset=18,
    ),
    Case("Pad wrap", "Pad", {"x": X2, "pads": pads(0, 0, 6, 2, 0, 0, 1, 5)}, {"mode": "wrap"}, opset=19),
    Case("Pad wrap opset 21", "Pad", {"x": X1, "pads": pads(0, 0, 3, 0, 1, 7)}, {"mode": "wrap"}, opset=21),
]


def resize(
    case_id: str,
    x: np.ndarray,
    attributes: dict,
    scales: list[float] | None = None,
    sizes: list[int] | None = None,
    opset: int = 17,
) -> Case:
    """A Resize row: scales come from a Constant's value_floats (float32 at every test dtype, as Resize wants),
    sizes from an int64 initializer."""
    nodes = (
        []
        if scales is None
        else [onnx.helper.make_node("Constant", [], ["scales"], value_floats=[float(s) for s in scales])]
    )
    inputs = {"x": x} if sizes is None else {"x": x, "sizes": np.array(sizes, np.int64)}
    node_inputs = ["x", "", "scales" if scales is not None else "", *(["sizes"] if sizes is not None else [])]
    return Case(case_id, "Resize", inputs, attributes, opset, extra_nodes=nodes, node_inputs=node_inputs)


RESIZE = [
    resize("Resize nearest x2", X2, {}, [1, 1, 2, 2]),
    resize(  # UpSampling3D((1, 2, 3))
        "Resize nearest 3-D asymmetric floor",
        X3,
        {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
        [1, 1, 1, 2, 3],
    ),
    resize(
        "Resize nearest x3 asymmetric floor",
        X2,
        {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
        [1, 1, 3, 3],
    ),
    resize("Resize nearest asymmetric round", X2, {"coordinate_transformation_mode": "asymmetric"}, [1, 1, 2, 3]),
    resize(
        "Resize nearest ceil align_corners",
        X2,
        {"coordinate_transformation_mode": "align_corners", "nearest_mode": "ceil"},
        sizes=[2, 3, 9, 7],
    ),
    resize("Resize nearest downsample", rand(1, 2, 8, 9), {"nearest_mode": "round_prefer_ceil"}, [1, 1, 0.5, 0.7]),
    resize(
        "Resize nearest tf_half_pixel_for_nn",
        X2,
        {"coordinate_transformation_mode": "tf_half_pixel_for_nn"},
        [1, 1, 1.5, 2],
        opset=13,
    ),
    resize("Resize linear x2", X2, {"mode": "linear"}, [1, 1, 2, 2]),
    resize(
        "Resize linear align_corners",
        X2,
        {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
        sizes=[2, 3, 11, 8],
    ),
    resize(
        "Resize linear pytorch_half_pixel",
        X2,
        {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
        sizes=[2, 3, 1, 7],
    ),
    resize(
        "Resize linear asymmetric downsample",
        rand(1, 2, 8, 9),
        {"mode": "linear", "coordinate_transformation_mode": "asymmetric"},
        [1, 1, 0.6, 0.5],
    ),
    resize(
        "Resize linear half_pixel_symmetric",
        X2,
        {"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"},
        [1, 1, 1.7, 2.5],
        opset=19,
    ),
    resize("Resize linear 1-D", X1, {"mode": "linear"}, [1, 1, 2.5]),
    resize("Resize linear 3-D", X3, {"mode": "linear"}, [1, 1, 2, 1, 1.5]),
    resize("Resize linear axes", X2, {"mode": "linear", "axes": [3, 2]}, [2, 1.5], opset=18),
    resize("Resize cubic", X2, {"mode": "cubic"}, [1, 1, 2, 1.5]),
    resize(
        "Resize cubic exclude_outside",
        X2,
        {"mode": "cubic", "exclude_outside": 1, "cubic_coeff_a": -0.5},
        [1, 1, 1.5, 2],
    ),
    resize("Resize sizes opset 21", X2, {"mode": "linear"}, sizes=[2, 3, 4, 10], opset=21),
]

CASES = CONV + CONV_TRANSPOSE + MAX_POOL + AVERAGE_POOL + NORM + DROPOUT_AND_PAD + RESIZE

# ONNX Runtime training (1.19.2 CPU) as a second reference. Its CPU build has no ConvTransposeGrad or ResizeGrad
# kernel and no BatchNormalization gradient. Rows where it differs from finite differences (which these rules match)
# are strict xfails; rows its gradient builder cannot take are left out.
ORT_OPS = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "LayerNormalization", "Dropout", "Pad"}
ORT_DIFFERS = {
    "Conv SAME_UPPER": "its ConvGrad ignores auto_pad",
    "Conv SAME_LOWER": "its ConvGrad ignores auto_pad",
    "AveragePool SAME_UPPER": "its AveragePoolGrad ignores auto_pad",
    "AveragePool 3-D": "its AveragePoolGrad is wrong for 3-D windows",
    "AveragePool 3-D strides pads exclude": "its AveragePoolGrad is wrong for 3-D windows",
    "AveragePool dilations opset 19": "its AveragePoolGrad ignores dilations",
    "Dropout training_mode false": "its DropoutGrad scales by 1 / (1 - ratio) in inference mode too",
}
ORT_CANNOT = {
    "LayerNormalization no bias",  # its builder needs B
    "LayerNormalization Y only",  # its builder needs the Mean and InvStdDev outputs
    "Dropout inference",  # its builder needs the mask output
    "Pad constant value",  # no gradient for constant_value
    "Pad constant axes",  # its gradient ignores the axes input (opset 18) and fails
    # its Pad gradient takes constant mode only
    *("Pad reflect", "Pad edge", "Pad edge opset 13", "Pad reflect axes", "Pad wrap", "Pad wrap opset 21"),
}
ORT_CASES = ort_cases([c for c in CASES if c.op_type in ORT_OPS and c.id not in ORT_CANNOT], ORT_DIFFERS)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_nn_rule_matches_finite_differences(case: Case) -> None:
    check_case(case)


@pytest.mark.training
@pytest.mark.parametrize("case", ORT_CASES)
def test_nn_rule_matches_onnxruntime_training(case: Case) -> None:
    check_against_ort(case)


GROUP_NORMALIZATION_18 = [
    Case(
        "GroupNormalization scale per group (opset 18)",
        "GroupNormalization",
        {"x": rand(2, 4, 3, 2), "scale": rand(2, seed=1), "b": rand(2, seed=2)},
        {"num_groups": 2},
        opset=18,
    ),
    Case(
        "GroupNormalization one group 1-D (opset 20)",
        "GroupNormalization",
        {"x": X1, "scale": rand(1, seed=1), "b": rand(1, seed=2)},
        {"num_groups": 1, "epsilon": 1e-3},
        opset=20,
    ),
]


@pytest.mark.parametrize("case", GROUP_NORMALIZATION_18, ids=str)
def test_group_normalization_opset_18_form_matches_finite_differences(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    # onnx (1.19+) marks GroupNormalization-18 deprecated (its scale and bias are per group) and its checker refuses
    # a model at opsets 18-20 that has one; ONNX Runtime still runs it, and the rule takes it.
    monkeypatch.setattr(onnx.checker, "check_model", lambda *args, **kwargs: None)
    check_case(case)


def test_layer_normalization_mean_and_inv_std_dev_outputs_take_gradients() -> None:
    # Mean and InvStdDev are float32 whatever X is (stash_type), so this row runs in float32 only.
    case = Case(
        "LayerNormalization Mean InvStdDev in the loss",
        "LayerNormalization",
        {"x": rand(2, 3, 4), "scale": rand(4), "b": rand(4, seed=2)},
        num_outputs=3,
    )
    analytic, _ = autodiff_gradients(case, np.dtype(np.float32))
    numeric = numeric_gradients(case, np.dtype(np.float32), FLOAT32.eps)
    for name, value in analytic.items():
        np.testing.assert_allclose(value, numeric[name], rtol=FLOAT32.rtol, atol=FLOAT32.atol, err_msg=name)


def _first_max_reference(x: np.ndarray, r: np.ndarray, kernel: int, stride: int, pad: int) -> tuple[np.ndarray, ...]:
    """MaxPool's gradient for loss sum(y * r): each window's r goes to its first maximum (row-major), as ONNX
    Runtime's Indices name it; also the wrong mask gradient, which gives r to every tied maximum."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    first, mask = np.zeros_like(padded), np.zeros_like(padded)
    for i, j in np.ndindex(r.shape[2:]):
        rows, cols = slice(i * stride, i * stride + kernel), slice(j * stride, j * stride + kernel)
        for b, ch in np.ndindex(n, c):
            window = padded[b, ch, rows, cols]
            top = np.unravel_index(np.argmax(window), window.shape)
            first[b, ch, rows, cols][top] += r[b, ch, i, j]
            mask[b, ch, rows, cols] += r[b, ch, i, j] * (window == window.max())
    crop = (slice(None), slice(None), slice(pad, pad + h), slice(pad, pad + w))
    return first[crop], mask[crop]


@pytest.mark.parametrize(
    ("kernel", "stride", "pad", "opset", "dtype"),
    # float32 windows that do not overlap: MaxUnpool (ONNX Runtime has no float64 one); the others scatter.
    [(2, 2, 0, 17, np.float64), (2, 2, 0, 17, np.float32), (3, 1, 1, 17, np.float64), (3, 1, 1, 13, np.float64)],
)
def test_max_pool_gradient_takes_one_of_tied_maxima(
    kernel: int, stride: int, pad: int, opset: int, dtype: type
) -> None:
    # A zero background, as in Fashion-MNIST: most windows hold tied maxima (0), and two pixels tie at 0.7.
    x = np.zeros((2, 2, 6, 6))
    x[:, :, 1:3, 2:5] = rand(2, 2, 2, 3, low=0.1, high=0.6)
    x[0, 1, 4, 4] = x[0, 1, 4, 5] = 0.7
    attributes = {"kernel_shape": [kernel] * 2, "strides": [stride] * 2, "pads": [pad] * 4}
    case = Case("MaxPool ties", "MaxPool", {"x": x}, attributes, opset)
    analytic, grad_model = autodiff_gradients(case, np.dtype(dtype))
    _, _, _, projections = loss_model(case, np.dtype(dtype))
    expected, wrong = _first_max_reference(x.astype(dtype), projections["y"], kernel, stride, pad)
    tolerance = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(analytic["x"], expected, rtol=tolerance, atol=tolerance)
    used = {node.op_type for node in grad_model.graph.node}
    assert ("MaxUnpool" in used) == (dtype == np.float32 and kernel == stride)
    assert np.abs(wrong - expected).max() > 0.5 * np.abs(expected).max()  # the data does tell the two apart


@pytest.mark.parametrize(("ratio_as_input", "mode_as_input"), [(False, False), (True, False), (True, True)])
def test_dropout_gradient_drops_what_the_forward_dropped(ratio_as_input: bool, mode_as_input: bool) -> None:
    # Training-mode Dropout is random, so no finite differences: y = x * mask / (1 - ratio) and, for the harness's
    # loss sum(y * r), dx = r * mask / (1 - ratio), with the mask of the same run.
    x = away_from_zero(4, 50)
    case = Case(
        "Dropout training",
        "Dropout",
        {"x": x, "ratio": np.array(0.4), "mode": np.array(True)},
        constants=[] if ratio_as_input else ["ratio"],
        wrt=["x"],
    )
    model, feeds, _, projections = loss_model(case, np.dtype(np.float64))
    if mode_as_input:  # training_mode known at run time only
        mode = next(t for t in model.graph.initializer if t.name == "mode")
        model.graph.initializer.remove(mode)
        model.graph.input.append(onnx.helper.make_tensor_value_info("mode", onnx.TensorProto.BOOL, []))
        feeds["mode"] = np.array(True)
    session = onnxruntime.InferenceSession(
        autodiff.gradients(model, ["x"]).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    y, dx = session.run(["y", "x_grad"], feeds)
    kept = y != 0
    assert 0.3 < kept.mean() < 0.9
    np.testing.assert_allclose(y, np.where(kept, x / 0.6, 0), rtol=1e-6)
    np.testing.assert_allclose(dx, np.where(kept, projections["y"] / 0.6, 0), rtol=1e-6)
    if mode_as_input:  # inference mode: the identity
        y, dx = session.run(["y", "x_grad"], {**feeds, "mode": np.array(False)})
        np.testing.assert_allclose(dx, projections["y"], rtol=1e-12)


REFUSED = [
    (
        Case("MaxPool storage_order 1", "MaxPool", {"x": X2}, {"kernel_shape": [2, 2], "storage_order": 1}),
        "storage_order=1",
    ),
    (
        Case(
            "ConvTranspose output_padding",
            "ConvTranspose",
            {"x": X2, "w": rand(3, 2, 3, 3)},
            {"strides": [2, 2], "dilations": [3, 3], "output_padding": [2, 0]},
        ),
        r"output_padding=\[2, 0\]",
    ),
    (
        Case("Pad reflect wider than X", "Pad", {"x": X1, "pads": pads(0, 0, 7, 0, 0, 0)}, {"mode": "reflect"}),
        r"pads=\[7, 0\].*'reflect' takes pads from 0 to 6",
    ),
    (Case("Pad edge cropping", "Pad", {"x": X1, "pads": pads(0, 0, -1, 0, 0, 2)}, {"mode": "edge"}), r"pads=\[-1, 2\]"),
    (
        resize("Resize tf_crop_and_resize", X2, {"coordinate_transformation_mode": "tf_crop_and_resize"}, [1, 1, 2, 2]),
        "coordinate_transformation_mode='tf_crop_and_resize'",
    ),
    (
        resize("Resize antialias", rand(1, 1, 8, 8), {"mode": "linear", "antialias": 1}, [1, 1, 0.5, 0.5], opset=18),
        "antialias=1",
    ),
    (
        Case(
            "Dropout ratio 1", "Dropout", {"x": X2, "ratio": np.array(1.0), "mode": np.array(True)}, constants=["ratio"]
        ),
        "ratio=1.0",
    ),
]


@pytest.mark.parametrize(("case", "message"), REFUSED, ids=[c.id for c, _ in REFUSED])
def test_nn_rule_refuses_what_it_cannot_differentiate(case: Case, message: str) -> None:
    model, _, wrt, _ = loss_model(case, np.dtype(np.float32))
    with pytest.raises(UnsupportedError, match=f"{case.op_type} node .*{message}"):
        autodiff.gradients(model, wrt)


def test_batch_normalization_refuses_opset_13_training_form() -> None:
    case = Case("BatchNormalization", "BatchNormalization", {"x": X2, **C3, **STATS}, wrt=["x"], opset=13)
    model, _, _, _ = loss_model(case, np.dtype(np.float32))
    model.graph.node[0].output.extend(["running_mean", "running_var"])  # opset 13's training form
    with pytest.raises(UnsupportedError, match=r"outputs=3 .*training_mode=1"):
        autodiff.gradients(model, ["x"])


def _with_symbolic_image(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with input x's height and width symbolic, as a graph for variable-sized images has them."""
    for value in (model.graph.input[0], *model.graph.output[1:]):
        for i, dim in enumerate(value.type.tensor_type.shape.dim):
            if i >= 2:
                dim.dim_param = f"{value.name}_{i}"
    del model.graph.value_info[:]
    return model


def test_conv_refuses_an_image_size_known_at_run_time_only() -> None:
    model, _, wrt, _ = loss_model(Case("Conv", "Conv", {"x": X2, "w": rand(2, 3, 3, 3)}), np.dtype(np.float32))
    with pytest.raises(UnsupportedError, match=r"spatial shape=.*known statically"):
        autodiff.gradients(_with_symbolic_image(model), wrt)


def test_resize_refuses_scales_computed_at_run_time() -> None:
    case = Case("Resize", "Resize", {"x": X2, "roi": None, "scales": np.array([1, 1, 2, 2.0])}, wrt=["x"])
    model, _, _, _ = loss_model(case, np.dtype(np.float32))
    with pytest.raises(UnsupportedError, match="scales='computed at run time'"):
        autodiff.gradients(model, ["x"])


def lenet(
    batch: int, size: int, filters: tuple[int, int] = (32, 64), hidden: int = 128, classes: int = 10, seed: int = 0
) -> tuple[onnx.ModelProto, dict[str, np.ndarray], list[str]]:
    """A LeNet-style loss graph written with onnx.helper: Conv(same)-Relu-MaxPool-Conv(valid)-Relu-MaxPool-Flatten-
    Gemm-Relu-Gemm and SoftmaxCrossEntropyLoss; its parameters are initializers. Returns (model, feeds, parameter
    names); the images have a zero background, as Fashion-MNIST's do, so pooling windows tie."""
    rng = np.random.default_rng(seed)
    pooled = (size // 2 - 2) // 2
    shapes = {
        "conv1.w": (filters[0], 1, 3, 3),
        "conv1.b": (filters[0],),
        "conv2.w": (filters[1], filters[0], 3, 3),
        "conv2.b": (filters[1],),
        "dense1.w": (filters[1] * pooled * pooled, hidden),
        "dense1.b": (hidden,),
        "dense2.w": (hidden, classes),
        "dense2.b": (classes,),
    }
    params = {
        name: (rng.normal(0, (2 / np.prod(s[1:])) ** 0.5, s) if len(s) > 1 else rng.normal(0, 0.1, s))
        for name, s in shapes.items()
    }
    make = onnx.helper.make_node
    nodes = [
        make("Conv", ["x", "conv1.w", "conv1.b"], ["c1"], pads=[1, 1, 1, 1]),
        make("Relu", ["c1"], ["r1"]),
        make("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        make("Conv", ["p1", "conv2.w", "conv2.b"], ["c2"]),
        make("Relu", ["c2"], ["r2"]),
        make("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        make("Flatten", ["p2"], ["f"]),
        make("Gemm", ["f", "dense1.w", "dense1.b"], ["d1"]),
        make("Relu", ["d1"], ["h"]),
        make("Gemm", ["h", "dense2.w", "dense2.b"], ["logits"]),
        make("SoftmaxCrossEntropyLoss", ["logits", "labels"], ["loss"]),
    ]
    graph = onnx.helper.make_graph(
        nodes,
        "lenet",
        [
            onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [batch, 1, size, size]),
            onnx.helper.make_tensor_value_info("labels", onnx.TensorProto.INT64, [batch]),
        ],
        [onnx.helper.make_tensor_value_info("loss", onnx.TensorProto.FLOAT, [])],
        [onnx.numpy_helper.from_array(p.astype(np.float32), name) for name, p in params.items()],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    model.ir_version = 8
    images = rng.uniform(0, 1, (batch, 1, size, size)) * (rng.uniform(0, 1, (batch, 1, size, size)) < 0.4)
    images[:, :, :2] = images[:, :, -2:] = 0  # a zero border: whole pooling windows of zeros
    feeds = {"x": images.astype(np.float32), "labels": rng.integers(0, classes, batch).astype(np.int64)}
    return model, feeds, list(params)


def _lenet_loss(model: onnx.ModelProto, feeds: dict[str, np.ndarray], name: str, value: np.ndarray) -> float:
    """The loss with parameter `name` set to `value`."""
    parameter = next(t for t in model.graph.initializer if t.name == name)
    original = onnx.numpy_helper.to_array(parameter)
    parameter.CopyFrom(onnx.numpy_helper.from_array(value, name))
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    parameter.CopyFrom(onnx.numpy_helper.from_array(original, name))
    return float(session.run(["loss"], feeds)[0])


@pytest.mark.slow
def test_lenet_gradients_match_finite_differences() -> None:
    model, feeds, params = lenet(batch=4, size=12, filters=(4, 6), hidden=16)
    grad_model = autodiff.gradients(model, params)
    session = onnxruntime.InferenceSession(grad_model.SerializeToString(), providers=["CPUExecutionProvider"])
    grads = dict(zip(params, session.run([f"{p}_grad" for p in params], feeds), strict=True))
    values = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    rng = np.random.default_rng(1)
    for name in params:
        for index in [tuple(rng.integers(0, d) for d in values[name].shape) for _ in range(3)]:
            numeric = []
            # float32 central differences at two steps: the larger may cross a Relu or pooling kink, the smaller
            # has more rounding; the gradient must match one of them.
            for eps in (2e-3, 4e-4):
                up, down = values[name].copy(), values[name].copy()
                up[index] += eps
                down[index] -= eps
                difference = _lenet_loss(model, feeds, name, up) - _lenet_loss(model, feeds, name, down)
                numeric.append(difference / (2 * eps))
            assert any(abs(grads[name][index] - n) <= 1e-3 + 1e-2 * abs(n) for n in numeric), (name, index, numeric)


@pytest.mark.parametrize("case", [c for c in CASES if "sizes" not in c.inputs], ids=str)  # sizes fix the batch
def test_nn_rule_takes_a_batch_known_at_run_time_only(case: Case) -> None:
    check_symbolic_batch(case)


@pytest.mark.slow
def test_lenet_benchmark_tool_runs() -> None:
    tool = Path(__file__).resolve().parents[1] / "tools" / "bench_autodiff_lenet.py"
    done = subprocess.run([sys.executable, str(tool), "--batch", "2", "--runs", "1"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "forward + gradients" in done.stdout


@pytest.mark.slow
def test_conv_weight_gradient_at_lenet_scale_equals_numpy():
    """conv1 of the fashion-cnn at its real size (a batch of 100 28x28 images with a zero background, 32 filters
    of 3x3, 'same' padding) against numpy in float64: the rows above use small shapes, and the weight gradient
    takes another form (stacked offsets) from some number of rows on."""
    rng = np.random.default_rng(0)
    x = np.where(rng.random((100, 1, 28, 28)) < 0.5, 0.0, rng.random((100, 1, 28, 28))).astype(np.float32)
    case = Case("Conv LeNet conv1", "Conv", {"x": x, "w": rand(32, 1, 3, 3), "b": rand(32)}, {"pads": [1, 1, 1, 1]})
    _, _, _, projections = loss_model(case, np.dtype(np.float32))
    grads, _ = autodiff_gradients(case, np.dtype(np.float32))
    r = projections["y"].astype(np.float64)
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # (N, Q, 28, 28, 3, 3)
    expected = np.einsum("nphw,nqhwij->pqij", r, windows)
    np.testing.assert_allclose(grads["w"], expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    np.testing.assert_allclose(grads["b"], r.sum(axis=(0, 2, 3)), rtol=1e-4, atol=1e-3)
