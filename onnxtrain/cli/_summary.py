"""`onnxtrain summary`: a saved model's layers, compile settings, epochs and files, and any .onnx file's versions,
inputs, outputs, parameters and nodes."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from onnxtrain._saved_model_folder import saved_model_folder
from onnxtrain.cli._data import LISTED_ENTRIES, check_saved_model
from onnxtrain.errors import InvalidArgumentError, listing
from onnxtrain.model_files import CONFIG_FILE, MODEL_FILE
from onnxtrain.model_files import read_config as read_saved_config


def _onnx_file(path: str) -> Path:
    target = Path(path)
    if target.is_dir():
        target = target / MODEL_FILE
    if not target.is_file():
        raise InvalidArgumentError(f"'{path}' is neither an .onnx file nor a saved model directory")
    return target


def cmd_summary(args: argparse.Namespace) -> int:
    from onnxtrain.loading import load_model

    target = Path(args.model)
    if not os.path.lexists(target):
        raise InvalidArgumentError(
            f"'{args.model}' does not exist: summary takes a saved model directory or an .onnx file"
        )
    target = saved_model_folder(target) if target.is_dir() else target
    if target.is_dir():
        check_saved_model(target, "a saved model directory or an .onnx file")
        with load_model(target, compile=False) as model:
            model.summary()
        config = read_saved_config(target / CONFIG_FILE)
        settings = config.get("compile") or {}
        if settings:
            optimizer = settings["optimizer"]
            print(
                f"Compiled with: {optimizer.get('name')} (learning rate {optimizer.get('learning_rate')}), "
                f"loss {settings['loss'].get('name')}, metrics {settings.get('metrics')}"
            )
        print(f"Epochs trained: {config.get('epochs_trained', 0)}")
        files = [f"{p.name} {_size(p)}" for p in sorted(target.iterdir()) if p.is_file()]
        print(f"Files: {listing(files, LISTED_ENTRIES, quote=False)}")
    _print_onnx_summary(_onnx_file(str(target)))
    return 0


def _print_onnx_summary(path: Path) -> None:
    import onnx

    from onnxtrain._onnx_file import read_onnx_model

    proto = read_onnx_model(path, f"'{path}'")  # the gate: external data only from inside its folder, sizes checked
    graph = proto.graph
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in proto.opset_import)
    params = sum(int(np.prod(t.dims)) for t in graph.initializer)
    print(f"ONNX file: {path} ({_size(path)})")
    print(f"IR version {proto.ir_version}; opsets: {opsets}; producer: {proto.producer_name} {proto.producer_version}")
    for title, values in (("Inputs", graph.input), ("Outputs", graph.output)):
        print(f"{title}:")
        for value in values:
            tensor = value.type.tensor_type
            dims = [d.dim_param or (d.dim_value if d.HasField("dim_value") else "?") for d in tensor.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else "?"
            print(f"  {value.name:<16} {dtype} [{', '.join(map(str, dims))}]")
    counts: dict[str, int] = {}
    for node in graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    print(f"Parameters: {params:,} in {len(graph.initializer)} initializers")
    print(f"Nodes: {len(graph.node)} ({', '.join(f'{op} {n}' for op, n in sorted(counts.items()))})")
    for prop in proto.metadata_props:
        print(f"  metadata {prop.key}: {prop.value}")
    if not any(prop.key == "onnxtrain.version" for prop in proto.metadata_props):  # not one onnxtrain wrote
        from onnxtrain.foreign._summary import print_imported

        print_imported(proto)


def _size(path: Path) -> str:
    size = float(path.stat().st_size)
    for unit in ("B", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""  # unreachable
