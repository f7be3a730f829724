"""`onnxtrain bundle MODEL OUT`: a saved model's training bundle (`onnxtrain.bundle`), the folder onnxtrain-js
trains from in a browser or Node.js."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from onnxtrain.cli._data import LISTED_ENTRIES, SAVED_MODEL, load_compiled, saved_model_dir
from onnxtrain.cli._train import writing_mode
from onnxtrain.errors import InvalidArgumentError, ModelExistsError, listing
from onnxtrain.saving import unreplaceable_entries


def check_bundle_output(out: Path, overwrite: bool) -> None:
    """Refuse an OUT_DIR that the bundle's save would refuse, naming the command's --overwrite rather than the
    Python API's writing_mode, before anything is loaded.

    Raises:
        InvalidArgumentError: OUT_DIR exists without --overwrite, or is a file.
        ModelExistsError: OUT_DIR holds entries that are not files of a training bundle.
        OSError: OUT_DIR cannot be listed.
    """
    from onnxtrain.bundle import BUNDLE_FILES

    if not os.path.lexists(out):
        return
    if not overwrite:
        raise InvalidArgumentError(f"'{out}' already exists. Pass --overwrite to replace it, or another OUT_DIR.")
    if not out.is_dir():
        raise InvalidArgumentError(
            f"'{out}' is a file, not a bundle folder; --overwrite replaces only a folder that holds a bundle. Move "
            "it, or pass another OUT_DIR."
        )
    foreign = unreplaceable_entries(out, BUNDLE_FILES)
    if foreign:
        raise ModelExistsError(
            f"--overwrite replaces '{out}' only when it holds nothing but a training bundle "
            f"({', '.join(sorted(BUNDLE_FILES))}); it also holds {listing(foreign, LISTED_ENTRIES)}. Move or remove "
            "those, or pass another OUT_DIR. Nothing was changed."
        )


def cmd_bundle(args: argparse.Namespace) -> int:
    directory = saved_model_dir(args.model, SAVED_MODEL)
    check_bundle_output(Path(args.out), args.overwrite)
    # resume=True: a save with its optimizer state gives the bundle that state, so the browser continues the run.
    with load_compiled(directory, None, "bundle", resume=True) as model:
        path = model.export_training_bundle(args.out, writing_mode=writing_mode(args))
    print(f"Wrote training bundle {path}/:")
    for file in sorted(Path(path).iterdir()):
        print(f"  {file.name:<16} {file.stat().st_size:>10,} bytes")
    return 0


def add_bundle_command(commands: argparse._SubParsersAction) -> None:
    """Register `bundle` on the parser's sub-commands."""
    bundle = commands.add_parser(
        "bundle",
        help="training bundle for the browser and Node.js (js/, onnxtrain-js)",
        description="Write a saved model's training bundle: the portable train step, eval and inference graphs, "
        "weights and optimizer state (when the save holds it) and metadata, for onnxtrain-js "
        "(onnxruntime-web in a browser, onnxruntime-node).",
    )
    bundle.add_argument("model", metavar="MODEL", help="saved model directory")
    bundle.add_argument("out", metavar="OUT_DIR", help="folder to write the bundle into")
    bundle.add_argument(
        "--overwrite", action="store_true", help="replace OUT_DIR if it holds a bundle (and nothing else)"
    )
    bundle.set_defaults(func=cmd_bundle)
