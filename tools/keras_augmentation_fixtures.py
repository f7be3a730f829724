"""Write Keras 3 reference outputs for the image preprocessing and augmentation layers: tests/data/keras_augmentation/.

Three files, each holding per case `<id>.x` (the input), `<id>.y` (Keras' output) and `<id>.config` (JSON: the
onnxtrain layer's class and arguments, or the sampler's), which tests/test_layers_resizing.py and
tests/test_layers_augmentation.py read without Keras installed:

- resizing.npz: `keras.layers.Resizing` and `CenterCrop` (every interpolation onnxtrain takes, up- and
  down-sampling, crop and pad to the aspect ratio), and `keras.utils.smart_resize` (what RandomCrop computes at
  inference, following Keras' docstring: Keras 3.15's code returns the input unresized there).
- affine_transform.npz: `keras.ops.image.affine_transform` for every fill mode and interpolation, one transform per
  image (`<id>.transform`, Keras' rows of 8), the geometric layers' shared sampler.
- layers_fixed.npz: the random layers in training with a range of one value (factor=(a, a)), so the draw is known:
  RandomRotation, RandomTranslation, RandomZoom, RandomBrightness, and RandomCrop of an input with no room to move.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_augmentation_fixtures.py
"""

from __future__ import annotations

import argparse
import json
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras_augmentation"

# id: (class, arguments, per-example input shape); the arguments are Keras' and onnxtrain's alike.
RESIZING: dict[str, tuple[str, dict[str, Any], tuple[int, int, int]]] = {
    "bilinear_up": ("Resizing", {"height": 11, "width": 13}, (5, 6, 2)),
    "bilinear_down": ("Resizing", {"height": 4, "width": 3}, (9, 7, 2)),
    "bilinear_mixed": ("Resizing", {"height": 3, "width": 10}, (7, 4, 3)),
    "bilinear_same_height": ("Resizing", {"height": 5, "width": 8}, (5, 6, 1)),
    "nearest_up": ("Resizing", {"height": 11, "width": 13, "interpolation": "nearest"}, (5, 6, 2)),
    "nearest_down": ("Resizing", {"height": 6, "width": 3, "interpolation": "nearest"}, (20, 7, 2)),
    "nearest_odd": ("Resizing", {"height": 1, "width": 9, "interpolation": "nearest"}, (14, 39, 1)),
    "bicubic_up": ("Resizing", {"height": 9, "width": 10, "interpolation": "bicubic"}, (4, 6, 2)),
    "bicubic_down": ("Resizing", {"height": 4, "width": 5, "interpolation": "bicubic"}, (9, 11, 2)),
    "crop_to_aspect_ratio": ("Resizing", {"height": 4, "width": 4, "crop_to_aspect_ratio": True}, (6, 9, 2)),
    "crop_to_aspect_ratio_tall": (
        "Resizing",
        {"height": 6, "width": 3, "crop_to_aspect_ratio": True, "interpolation": "nearest"},
        (7, 8, 2),
    ),
    "pad_to_aspect_ratio": (
        "Resizing",
        {"height": 6, "width": 6, "pad_to_aspect_ratio": True, "fill_value": 0.5},
        (4, 7, 2),
    ),
    "pad_to_aspect_ratio_tall": (
        "Resizing",
        {"height": 8, "width": 4, "pad_to_aspect_ratio": True, "interpolation": "bicubic"},
        (5, 5, 1),
    ),
    "center_crop": ("CenterCrop", {"height": 4, "width": 5}, (7, 8, 2)),
    "center_crop_same": ("CenterCrop", {"height": 7, "width": 3}, (7, 6, 2)),
    "center_crop_smaller": ("CenterCrop", {"height": 6, "width": 6}, (4, 9, 2)),
    "center_crop_upscale": ("CenterCrop", {"height": 8, "width": 10}, (5, 5, 3)),
    "smart_resize_down": ("smart_resize", {"height": 4, "width": 4}, (6, 8, 2)),
    "smart_resize_up": ("smart_resize", {"height": 5, "width": 4}, (3, 3, 2)),
    "smart_resize_wide": ("smart_resize", {"height": 4, "width": 6}, (5, 7, 1)),
}

FILL_MODES = ("reflect", "wrap", "nearest", "constant")
INTERPOLATIONS = ("bilinear", "nearest")
AFFINE_SHAPE = (7, 6, 9, 2)  # one image per transform below


def _rotation(degrees: float, height: int, width: int) -> list[float]:
    """Keras' rotation matrix about the image's center (`_compute_affine_matrix` with no shear, scale 1)."""
    theta = np.deg2rad(degrees)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    cos, sin = np.cos(theta), np.sin(theta)
    return [cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos, 0, 0]


def _transforms() -> np.ndarray:
    _, height, width, _ = AFFINE_SHAPE
    rows = [
        [1, 0, 0, 0, 1, 0, 0, 0],  # the identity
        _rotation(33.0, height, width),
        _rotation(-100.0, height, width),
        [1, 0, -1.75, 0, 1, 2.25, 0, 0],  # a translation
        [1, 0, 0.5, 0, 1, -1.5, 0, 0],  # half-pixel: nearest's ties (rounded away from zero)
        [1.4, 0.3, -2.1, -0.2, 0.7, 1.2, 0, 0],  # zoom and shear
        [2.5, 0, -7.3, 0, 2.5, -6.2, 0, 0],  # zoomed far out: the fill mode repeats the image
    ]
    return np.array(rows, np.float32)


# id: (class, arguments, per-example input shape, input range)
LAYERS_FIXED: dict[str, tuple[str, dict[str, Any], tuple[int, int, int], tuple[float, float]]] = {
    "rotation": ("RandomRotation", {"factor": (0.1, 0.1)}, (7, 9, 2), (-2, 2)),
    "rotation_nearest_wrap": (
        "RandomRotation",
        {"factor": (-0.3, -0.3), "fill_mode": "wrap", "interpolation": "nearest"},
        (6, 8, 2),
        (-2, 2),
    ),
    "rotation_constant": (
        "RandomRotation",
        {"factor": (0.2, 0.2), "fill_mode": "constant", "fill_value": -1.0},
        (8, 8, 1),
        (-2, 2),
    ),
    "translation": (
        "RandomTranslation",
        {"height_factor": (0.2, 0.2), "width_factor": (-0.3, -0.3)},
        (7, 9, 2),
        (-2, 2),
    ),
    "translation_nearest": (
        "RandomTranslation",
        {
            "height_factor": (-0.25, -0.25),
            "width_factor": (0.5, 0.5),
            "fill_mode": "nearest",
            "interpolation": "nearest",
        },
        (8, 6, 2),
        (-2, 2),
    ),
    "zoom": ("RandomZoom", {"height_factor": (0.3, 0.3), "width_factor": (-0.2, -0.2)}, (7, 9, 2), (-2, 2)),
    "zoom_keep_aspect": (
        "RandomZoom",
        {"height_factor": (-0.4, -0.4), "fill_mode": "constant", "fill_value": 0.25},
        (9, 7, 1),
        (-2, 2),
    ),
    "zoom_out_wrap": ("RandomZoom", {"height_factor": (0.6, 0.6), "fill_mode": "wrap"}, (6, 6, 2), (-2, 2)),
    "brightness": ("RandomBrightness", {"factor": (0.1, 0.1), "value_range": (0, 1)}, (5, 6, 3), (0, 1)),
    "brightness_down": ("RandomBrightness", {"factor": (-0.3, -0.3), "value_range": (0, 255)}, (4, 4, 3), (0, 255)),
    "crop_no_room": ("RandomCrop", {"height": 4, "width": 4}, (4, 7, 2), (-2, 2)),
}


def _input(case_id: str, shape: tuple[int, ...], low: float = -2.0, high: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(case_id.encode()))
    return rng.uniform(low, high, size=shape).astype(np.float32)


def _config(class_name: str, arguments: dict[str, Any]) -> np.ndarray:
    return np.array(json.dumps({"class_name": class_name, "config": arguments}))


def resizing_fixtures() -> dict[str, np.ndarray]:
    arrays = {}
    for case_id, (class_name, arguments, shape) in RESIZING.items():
        x = _input(case_id, (2, *shape))
        if class_name == "smart_resize":
            y = keras.preprocessing.image.smart_resize(x, (arguments["height"], arguments["width"]))
        else:
            y = getattr(keras.layers, class_name)(**arguments)(x, training=False)
        arrays |= {
            f"{case_id}.x": x,
            f"{case_id}.y": np.asarray(y),
            f"{case_id}.config": _config(class_name, arguments),
        }
    return arrays


def affine_fixtures() -> dict[str, np.ndarray]:
    arrays = {}
    transform = _transforms()
    for interpolation in INTERPOLATIONS:
        for fill_mode in FILL_MODES:
            case_id = f"{interpolation}_{fill_mode}"
            x = _input(case_id, AFFINE_SHAPE)
            arguments = {"interpolation": interpolation, "fill_mode": fill_mode, "fill_value": 0.5}
            y = keras.ops.image.affine_transform(x, transform, **arguments)
            arrays |= {
                f"{case_id}.x": x,
                f"{case_id}.transform": transform,
                f"{case_id}.y": np.asarray(y),
                f"{case_id}.config": _config("affine_transform", arguments),
            }
    return arrays


def fixed_layer_fixtures() -> dict[str, np.ndarray]:
    arrays = {}
    for case_id, (class_name, arguments, shape, (low, high)) in LAYERS_FIXED.items():
        x = _input(case_id, (3, *shape), low, high)
        y = getattr(keras.layers, class_name)(**arguments, seed=1)(x, training=True)
        arrays |= {
            f"{case_id}.x": x,
            f"{case_id}.y": np.asarray(y),
            f"{case_id}.config": _config(class_name, arguments),
        }
    return arrays


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"Keras {keras.__version__} on {keras.backend.backend()}")
    for name, arrays in (
        ("resizing", resizing_fixtures()),
        ("affine_transform", affine_fixtures()),
        ("layers_fixed", fixed_layer_fixtures()),
    ):
        np.savez_compressed(OUT / f"{name}.npz", **arrays)
        cases = sorted({key.rsplit(".", 1)[0] for key in arrays})
        print(f"{name}.npz: {len(cases)} cases ({', '.join(cases)})")


if __name__ == "__main__":
    main()
