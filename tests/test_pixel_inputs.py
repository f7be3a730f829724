"""One rule for integer pixels: `onnxtrain evaluate`, `onnxtrain predict`, `InferenceModel.predict` and
`Model.predict` all scale integer inputs by the model's own input_scale (raw 0-255 for a model trained on floats,
with a warning; divided by 255 for one trained on 8-bit pixels, which refuses integers outside [0, 255]); images
that `onnxtrain predict --input` reads (16-bit grey, transparency) against numpy references."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import Dataset, InferenceModel, Sequential
from onnxtrain.cli import main
from onnxtrain.cli._data import DatasetLoader, image_pixels, read_input
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.optimizers import Adam

Image = pytest.importorskip("PIL.Image")

SHAPE = (4, 4, 1)
RAW_PIXELS = "uint8 \\(pixels 0-255\\) and the model's input_scale is 1"


def _pixels(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(count, *SHAPE)).astype(np.uint8)
    y = (x[:, 0, 0, 0] > 128).astype(np.int64) + (x[:, 1, 1, 0] > 200).astype(np.int64)
    return x, y


def _trained(folder: Path, on_pixels: bool) -> Path:
    """A tiny classifier trained on x / 255: as floats (input_scale 1) or as pixels (input_scale 1/255)."""
    x, y = _pixels(48, seed=0)
    scaled = x / np.float32(255)
    with Sequential.of(Input(*SHAPE), Flatten(), Dense(3, activation="linear"), seed=3) as model:
        model.compile(optimizer=Adam(learning_rate=0.05), loss="softmax_cross_entropy_with_logits", metric="accuracy")
        data = Dataset(scaled, y, input_scale=1 / 255) if on_pixels else (scaled, y)
        model.fit(data, epochs=3, batch_size=8, verbose=0)
        assert model.input_scale == (pytest.approx(1 / 255) if on_pixels else 1.0)
        return Path(model.save(folder / ("pixels" if on_pixels else "floats")))


def _reference(model: Path, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Cross-entropy and accuracy of `model` on `x` in numpy, from the export's logits."""
    with InferenceModel.load(model) as inference, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logits = inference.predict_outputs(x)["logits"].astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probabilities[np.arange(len(y)), y].mean()), float((logits.argmax(1) == y).mean())


def _evaluated(capsys: pytest.CaptureFixture[str], *args: str, warns: bool = False) -> tuple[float, float]:
    assert main(["evaluate", *args]) == 0
    printed = capsys.readouterr()
    found = re.fullmatch(r"loss: (\S+) - accuracy: (\S+)  \(\d+ examples\)\n", printed.out)
    assert found, "evaluate printed an unexpected line"
    _check_warning_line(printed.err, "evaluate", warns)
    return float(found[1]), float(found[2])


def _predicted_classes(capsys: pytest.CaptureFixture[str], *args: str, warns: bool = False) -> list[int]:
    assert main(["predict", *args]) == 0
    printed = capsys.readouterr()
    _check_warning_line(printed.err, "predict", warns)
    return [int(c) for c in re.findall(r"^\d+: class \d+ \((\d+)\) p=", printed.out, re.M)]


def _check_warning_line(err: str, command: str, warns: bool) -> None:
    """The CLI shows the raw-pixel warning as one `onnxtrain <command>: warning:` line on stderr, or nothing."""
    lines = [line for line in err.splitlines() if line.startswith(f"onnxtrain {command}: warning: ")]
    assert len(lines) == (1 if warns else 0), err
    assert not warns or re.search(RAW_PIXELS, lines[0])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pixels")
    return {"floats": _trained(folder, on_pixels=False), "pixels": _trained(folder, on_pixels=True)}


@pytest.fixture
def test_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, np.ndarray]:
    x, y = _pixels(40, seed=1)
    np.savez(tmp_path / "test.npz", x=x, y=y)
    np.save(tmp_path / "batch.npy", x)
    monkeypatch.chdir(tmp_path)
    return x, y


# --- evaluate, predict and InferenceModel agree ------------------------------------------------------------
def test_evaluate_reads_uint8_data_raw_as_predict_does_for_a_model_trained_on_floats(models, test_data, capsys):
    x, y = test_data
    raw, scaled = _reference(models["floats"], x, y), _reference(models["floats"], x / np.float32(255), y)
    assert abs(raw[0] - scaled[0]) > 0.01  # the two readings differ, so the test tells them apart
    loss, accuracy = _evaluated(capsys, str(models["floats"]), "--data", "test.npz", warns=True)
    assert loss == pytest.approx(raw[0], abs=1e-4)  # printed with 4 decimals
    assert accuracy == pytest.approx(raw[1], abs=1e-4)
    classes = _predicted_classes(capsys, str(models["floats"]), "--input", "batch.npy", warns=True)
    with InferenceModel.load(models["floats"]) as inference, pytest.warns(UserWarning, match=RAW_PIXELS):
        assert classes == inference.predict(x).tolist()
    assert accuracy == pytest.approx(float(np.mean(np.array(classes) == y)), abs=1e-4)


def test_evaluate_and_predict_divide_uint8_by_255_for_a_model_trained_on_pixels(models, test_data, capsys):
    x, y = test_data
    reference = _reference(models["pixels"], x / np.float32(255), y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw-pixel warning: the model divides them itself
        loss, accuracy = _evaluated(capsys, str(models["pixels"]), "--data", "test.npz")
        classes = _predicted_classes(capsys, str(models["pixels"]), "--input", "batch.npy")
        with InferenceModel.load(models["pixels"]) as inference:
            assert classes == inference.predict(x).tolist() == inference.predict(x / np.float32(255)).tolist()
    assert (loss, accuracy) == (pytest.approx(reference[0], abs=1e-4), pytest.approx(reference[1], abs=1e-4))


def test_evaluate_loads_uint8_as_stored_while_training_data_stays_divided(tmp_path):
    x, y = _pixels(6, seed=2)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    loader = DatasetLoader(tmp_path)
    kept = loader.load("d.npz", "--data", "test", scale_pixels=False)
    assert kept.input_scale is None and np.array_equal(kept.x, x)
    trained_on = loader.load("d.npz", "[data] train")
    assert trained_on.input_scale == pytest.approx(1 / 255)
    assert np.array_equal(trained_on.x, x / np.float32(255))


def test_model_predict_warns_of_uint8_pixels_for_a_scale_of_one_but_not_of_floats(models):
    x, _ = _pixels(5, seed=4)
    with InferenceModel.load(models["floats"]) as inference:
        with pytest.warns(UserWarning, match=RAW_PIXELS) as caught:
            raw = inference.predict_softly(x)
        assert len(caught) == 1 and caught[0].filename == __file__  # once, naming the caller's line
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert np.array_equal(raw, inference.predict_softly(x.astype(np.float32)))


# --- integers outside [0, 255] for a model trained on pixels -----------------------------------------------
OUT_OF_RANGE = {
    "uint16": (
        np.full((2, *SHAPE), 257 * 9, np.uint16),
        r"x\[0, 0, 0, 0\]=2313 \(dtype uint16\)\. 16-bit pixels.*>> 8",
    ),
    "negative": (np.full((2, *SHAPE), -1, np.int64), r"x\[0, 0, 0, 0\]=-1 \(dtype int64\)"),
    "300": (np.pad(np.full((1, *SHAPE), 300, np.int32), ((1, 0), (0, 0), (0, 0), (0, 0))), r"x\[1, 0, 0, 0\]=300"),
}


@pytest.mark.parametrize("case", OUT_OF_RANGE, ids=list(OUT_OF_RANGE))
def test_integers_outside_0_255_are_refused_for_a_model_of_input_scale_1_255(models, case):
    x, message = OUT_OF_RANGE[case]
    with InferenceModel.load(models["pixels"]) as inference:
        with pytest.raises(InvalidArgumentError, match=r"expects integer pixels in \[0, 255\].*" + message):
            inference.predict(x)
        assert np.array_equal(inference.predict(np.clip(x, 0, 255)), inference.predict(np.clip(x, 0, 255) / 255))


def test_integers_in_range_of_a_wide_dtype_are_divided_by_255(models):
    x, _ = _pixels(5, seed=5)
    with InferenceModel.load(models["pixels"]) as inference:
        expected = inference.predict_softly(x / np.float32(255))
        for dtype in (np.uint16, np.int32, np.int64):
            assert np.array_equal(inference.predict_softly(x.astype(dtype)), expected)


def test_a_model_of_input_scale_one_reads_any_integers_as_they_are(models):
    x = np.full((2, *SHAPE), 300, np.int32)
    with InferenceModel.load(models["floats"]) as inference:
        assert np.array_equal(inference.predict_softly(x), inference.predict_softly(x.astype(np.float32)))


# --- images predict reads ----------------------------------------------------------------------------------
def test_a_16_bit_grey_png_is_rounded_to_8_bits_not_binarized(tmp_path):
    values = np.arange(0, 65536, 4096, dtype=np.uint16).reshape(4, 4)
    values[0, :3] = (0, 65535, 128 * 257)  # the widened 8-bit value 128 comes back exactly
    Image.fromarray(values).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as image:
        assert image.mode.startswith("I")  # (Pillow's mode for 16-bit grey)
    expected = np.round(values / 257.0).astype(np.uint8)
    grey = read_input(tmp_path / "g16.png", SHAPE)
    assert grey.dtype == np.uint8 and np.array_equal(grey[..., 0], expected)
    assert grey[0, 0, 0] == 0 and grey[0, 1, 0] == 255 and grey[0, 2, 0] == 128
    assert np.array_equal(read_input(tmp_path / "g16.png", (4, 4, 3)), np.repeat(expected[..., None], 3, -1))


def test_a_16_bit_png_of_widened_8_bit_pixels_predicts_as_the_8_bit_png(models, tmp_path, capsys):
    x, _ = _pixels(1, seed=6)
    Image.fromarray(x[0, ..., 0]).save(tmp_path / "g8.png")
    Image.fromarray(x[0, ..., 0].astype(np.uint16) * 257).save(tmp_path / "g16.png")
    model = str(models["pixels"])
    assert np.array_equal(read_input(tmp_path / "g16.png", SHAPE), x[0])
    assert main(["predict", model, "--input", str(tmp_path / "g8.png")]) == 0
    eight = capsys.readouterr().out
    assert main(["predict", model, "--input", str(tmp_path / "g16.png")]) == 0
    assert capsys.readouterr().out == eight


def test_transparent_pixels_are_composited_on_black(tmp_path):
    grey = np.full((4, 4), 200, np.uint8)
    alpha = np.array([0, 255, 128, 1] * 4, np.uint8).reshape(4, 4)
    Image.fromarray(np.stack([grey, alpha], axis=-1)).save(tmp_path / "la.png")  # (4, 4, 2) uint8: "LA"
    expected = np.floor(200.0 * alpha / 255 + 0.5).astype(np.uint8)  # 0, 200, 100, 1
    assert np.array_equal(read_input(tmp_path / "la.png", SHAPE)[..., 0], expected)
    rgb = np.stack([np.full((4, 4), c, np.uint8) for c in (255, 100, 0)], axis=-1)
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "rgba.png")
    composited = np.floor(rgb * (alpha[..., None] / 255.0) + 0.5).astype(np.uint8)
    assert np.array_equal(read_input(tmp_path / "rgba.png", (4, 4, 3)), composited)


def test_float_and_beyond_16_bit_images_are_refused(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"floating-point image .*'F'.*\.npy"):
        image_pixels(Image.fromarray(np.zeros((4, 4), np.float32)), 1, "'f.tif'")
    with pytest.raises(InvalidArgumentError, match=r"32-bit integer image .*'I'.* values in \[0, 70000\]"):
        image_pixels(Image.fromarray(np.array([[0, 70000]], np.int32)), 1, "'i.tif'")
