"""The `onnxtrain` command line (the `onnxtrain` console script, `python -m onnxtrain`): train, evaluate, predict,
export, artifacts and summary.

Modules: `_main` (the parser, every command but train, and `main`), `_train` (`onnxtrain train`), `_run_config` (a
run's config and the output folder it writes into) and `_data` (what the commands read: datasets, inputs, saved
models).
"""

from onnxtrain.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
