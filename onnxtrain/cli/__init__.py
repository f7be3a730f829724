"""The `onnxtrain` command line (the `onnxtrain` console script, `python -m onnxtrain`): train, evaluate, predict,
export, artifacts, bundle, finetune and summary.

Modules: `_main` (the parser, every command but train, and `main`), `_train` (`onnxtrain train`), `_run_config` (a
run's config read and checked, and the output folder it writes into), `_config_model` (the model and compile
settings a checked config describes), `_finetune` (`onnxtrain finetune`), `_bundle` (`onnxtrain bundle`) and
`_data` (what the commands read: datasets, inputs, saved models).
"""

from onnxtrain.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
