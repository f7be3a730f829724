"""Where a saved model is, given the folder a user names (`saved_model_folder`): the folder itself, or, for the output
folder of a run (`onnxtrain train` and `onnxtrain finetune` save the model into OUTPUT/model/), the model/ folder in
it. `load_model`, `InferenceModel.load` and every command of the CLI take either by this one rule."""

from __future__ import annotations

from pathlib import Path

from onnxtrain.model_files import CONFIG_FILE, MODEL_FILE

RUN_MODEL_FOLDER = "model"
"""The folder of a run's output folder that holds the model the run saved."""


def saved_model_folder(directory: Path) -> Path:
    """The folder that holds the saved model `directory` stands for.

    config.json decides: `directory` where it holds one (a saved model, whatever folders it holds), else its
    model/ where that holds a saved model's file (the output folder of a run: what the run saved is what the user
    means, even where `onnxtrain finetune` put its export, a model.onnx, beside model/), else `directory` (an
    export's folder, or no model at all). A damaged run's model/ is chosen too, so that the loader's refusal names
    that folder and the file missing there.

    Example:
        saved_model_folder(Path("runs/x"))  # runs/x/model, for the output folder of `onnxtrain train`
    """
    if (directory / CONFIG_FILE).exists():
        return directory
    inner = directory / RUN_MODEL_FOLDER
    return inner if any((inner / name).is_file() for name in (CONFIG_FILE, MODEL_FILE)) else directory
