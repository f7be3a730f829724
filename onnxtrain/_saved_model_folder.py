"""Where a saved model is, given the folder a user names: the folder itself, or, for the output folder of a training
run (`onnxtrain train --output runs/x` writes model/ beside history.csv and run.json), the model/ folder in it, as
`load_model`, `InferenceModel.load` and the CLI's commands all take either (`saved_model_folder`)."""

from __future__ import annotations

from pathlib import Path

from onnxtrain.model_files import CONFIG_FILE, MODEL_FILE

RUN_MODEL_FOLDER = "model"
"""The folder of a training run's output folder that holds its saved model."""


def saved_model_folder(directory: Path) -> Path:
    """`directory`, or its model/ folder where `directory` is the output folder of a training run: it holds no
    saved model's files (config.json, model.onnx) itself, and model/ holds one of them. A damaged run's model/ is
    chosen too, so that the loader's refusal names the files missing there."""
    if any((directory / name).exists() for name in (CONFIG_FILE, MODEL_FILE)):
        return directory
    inner = directory / RUN_MODEL_FOLDER
    return inner if any((inner / name).is_file() for name in (CONFIG_FILE, MODEL_FILE)) else directory
