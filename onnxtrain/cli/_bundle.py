"""`onnxtrain bundle MODEL OUT`: a saved model's training bundle (`onnxtrain.bundle`), the folder onnxtrain-js
trains from in a browser or Node.js."""

from __future__ import annotations

import argparse
from pathlib import Path

from onnxtrain.cli._data import SAVED_MODEL, load_compiled, saved_model_dir
from onnxtrain.cli._output_folder import check_replaceable, check_writable_place
from onnxtrain.cli._train import writing_mode


def check_bundle_output(out: Path, overwrite: bool) -> None:
    """Refuse an OUT_DIR that the bundle's save would refuse, before anything is loaded (`check_replaceable`)."""
    from onnxtrain.bundle import BUNDLE_FILES

    check_replaceable(out, overwrite, BUNDLE_FILES, "a training bundle", "OUT_DIR", "changed")
    check_writable_place(out, "OUT_DIR", "written")


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
    bundle.add_argument(
        "model", metavar="MODEL", help="saved model directory, or the output folder of a run, for the model/ in it"
    )
    bundle.add_argument("out", metavar="OUT_DIR", help="folder to write the bundle into")
    bundle.add_argument(
        "--overwrite", action="store_true", help="replace OUT_DIR if it holds a bundle (and nothing else)"
    )
    bundle.set_defaults(func=cmd_bundle)
