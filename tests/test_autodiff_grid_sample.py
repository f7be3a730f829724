"""The GridSample rule (torch's F.grid_sample) against finite differences: every mode it takes (bilinear, nearest),
padding mode (zeros, border, reflection) and align_corners, with sampling points inside the image, beyond it and
folded back by reflection; float64 at opset 20 (ONNX Runtime 1.19 has no float64 GridSample-16), float32 at 16."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import onnxruntime
import pytest
from gradcheck import Case, check_case, check_symbolic_batch, loss_model, rand

from onnxtrain import autodiff
from onnxtrain.errors import UnsupportedError

HEIGHT, WIDTH = 3, 4
NO_ORT = "ONNX Runtime training has no GridSample gradient"


def grid(batch: int, align: bool, reach: float, seed: int) -> np.ndarray:
    """[batch, 2, 3, 2] normalized (x, y) points whose pixel coordinates stay 0.1 or more from every multiple of 0.5
    (where bilinear weights, rounding, clamping and reflection turn): a finite-difference step crosses none. `reach`
    is how far beyond the image, in pixels, points may go (reflection folds them back more than once at 2+)."""
    rng = np.random.default_rng(seed)
    points = np.empty((batch, 2, 3, 2))
    for axis, size in ((0, WIDTH), (1, HEIGHT)):
        halves = rng.integers(int(-2 * reach), int(2 * (size - 1 + reach)) + 1, size=(batch, 2, 3))
        pixel = halves * 0.5 + rng.uniform(0.1, 0.4, size=(batch, 2, 3))
        slope = (size - 1) / 2 if align else size / 2
        points[..., axis] = (pixel - (size - 1) / 2) / slope
    return points


def case(
    mode: str, padding: str, align: bool, opset: int = 20, batch: int = 2, reach: float = 2.5, note: str = ""
) -> Case:
    seed = len(mode) * 31 + len(padding) * 7 + int(align) + opset
    if opset >= 20:
        mode = {"bilinear": "linear"}.get(mode, mode)
    return Case(
        f"GridSample {mode} {padding} align_corners={int(align)} (opset {opset}){note}",
        "GridSample",
        {"x": rand(batch, 2, HEIGHT, WIDTH, seed=seed), "grid": grid(batch, align, reach, seed)},
        {"mode": mode, "padding_mode": padding, "align_corners": int(align)},
        opset=opset,
        ort_skip=NO_ORT,
    )


CASES = [
    *(
        case(m, p, a)
        for m, p, a in itertools.product(("bilinear", "nearest"), ("zeros", "border", "reflection"), (0, 1))
    ),
    case("bilinear", "reflection", False, opset=16),
    case("bilinear", "zeros", True, opset=16),
    case("nearest", "border", False, opset=16),
    case("bilinear", "reflection", True, reach=6.0, note=", points folded back several times"),
]


@pytest.mark.parametrize("c", CASES, ids=str)
def test_grid_sample_matches_finite_differences(c: Case) -> None:
    result = check_case(c)
    assert result.dtype == (np.float64 if c.opset >= 20 else np.float32)
    if c.attributes["mode"] == "nearest":
        assert not result.analytic["grid"].any()  # piecewise constant in the grid
    else:
        assert np.abs(result.analytic["grid"]).max() > 1e-3  # the grid's gradient is checked, not only zeros


@pytest.mark.parametrize("c", [CASES[0], CASES[4]], ids=str)
def test_grid_sample_takes_a_batch_known_at_run_time_only(c: Case) -> None:
    check_symbolic_batch(c)


@pytest.mark.parametrize(
    ("attributes", "shapes", "message"),
    [
        ({"mode": "cubic"}, ((1, 1, 3, 4), (1, 2, 3, 2)), r"mode='cubic' \(expected bilinear \(linear\) or nearest\)"),
        ({}, ((1, 1, 2, 3, 4), (1, 2, 3, 2, 3)), r"rank=5 \(the gradient takes 4-D inputs"),
    ],
    ids=["cubic", "3-D"],
)
def test_grid_sample_refuses_what_it_cannot_differentiate(attributes, shapes, message) -> None:
    c = Case("GridSample", "GridSample", {"x": rand(*shapes[0]), "grid": rand(*shapes[1])}, attributes, opset=20)
    model, _, wrt, _ = loss_model(c, np.dtype(np.float32))
    with pytest.raises(UnsupportedError, match=f"GridSample node 'node_under_test' with {message}"):
        autodiff.gradients(model, wrt)


def test_grid_sample_gradient_is_default_domain_and_runs_at_another_batch() -> None:
    model, feeds, wrt, _ = loss_model(CASES[0], np.dtype(np.float32))
    grads = autodiff.gradients(model, wrt)
    assert {n.domain for n in grads.graph.node} <= {""}
    onnx.checker.check_model(grads, full_check=True)
    session = onnxruntime.InferenceSession(grads.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [v.shape for v in session.run(["x_grad", "grid_grad"], feeds)] == [feeds["x"].shape, feeds["grid"].shape]
