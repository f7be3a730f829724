"""The `onnxtrain` command line (the `onnxtrain` console script, `python -m onnxtrain`): train, evaluate, predict,
export, artifacts, bundle, finetune and summary.

Modules: `_main` (the parser and `main`), `_train` (`onnxtrain train`), `_resume` (`train --resume`), `_run_fit` (what
a new and a resumed run share: data, threads, fit and save), `_run_save` (a run's files written, or saved on an
interrupt), `_run_config` (a run's config read and checked, and the output folder it writes into), `_config_model`
(the model and compile settings a checked config describes), `_predict` (`evaluate`, `predict`), `_export`
(`export`, `artifacts`), `_summary` (`summary`), `_finetune` (`onnxtrain finetune`), `_bundle` (`onnxtrain bundle`)
and `_data` (what the commands read: datasets, inputs, saved models).
"""

from onnxtrain.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
