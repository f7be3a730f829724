"""Reading an ONNX model file through one gate, and what is wrong with bytes that should hold one, in words.

`read_onnx_model` is the gate every model file onnxtrain reads goes through before a runtime sees it: the file
is bounded and parsed, its external data checked and read in (`onnxtrain._onnx_tensors`), every tensor's size
checked against its dtype x shape. ONNX Runtime reports empty, truncated or foreign bytes as "INVALID_PROTOBUF"
or "No graph was found in the protobuf"; loaders say what is wrong instead, with protobuf's error as the cause.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from google.protobuf.descriptor import FieldDescriptor

from onnxtrain._bounded_read import read_bounded
from onnxtrain._onnx_tensors import MAX_MODEL_BYTES, check_tensor_size, load_external_data, model_tensors
from onnxtrain.errors import ModelFileError

# Top-level ModelProto fields by number: their name and protobuf wire type (2: length-delimited, 0: varint).
_LENGTH_DELIMITED = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_MESSAGE)
_FIELDS: dict[int, tuple[str, int]] = {
    field.number: (field.name, 2 if field.type in _LENGTH_DELIMITED else 0)
    for field in onnx.ModelProto.DESCRIPTOR.fields
}
_MAX_IR_VERSION = 64  # far above today's 11: a first byte that is an ir_version, not a coincidence


def read_onnx_model(path: str | os.PathLike[str], source: str | None = None) -> onnx.ModelProto:
    """The ONNX model in the file `path`, with its external data checked and loaded in memory.

    External data must be at relative locations inside the file's folder (after resolving symbolic links), in
    regular files, at an offset and length inside them that match the tensor's dtype x shape; every tensor's
    inline data must match its declared size too. All of this is checked before anything of the declared size
    is allocated, and the returned proto holds no external reference, so a runtime can be given its bytes.

    `source` names the file in messages (default: the path as given).

    Raises:
        ModelFileError: naming the file, and the tensor and location when one of them is refused.
    """
    target = Path(path)
    data = read_bounded(target, MAX_MODEL_BYTES, ModelFileError, "an ONNX model")
    return parse_onnx_model(data, str(target) if source is None else source, target.parent)


def parse_onnx_model(data: bytes, source: str, folder: Path | None, fix: str = "") -> onnx.ModelProto:
    """The model in `data` (the bytes of `source`) through the gate of `read_onnx_model`, its external data read
    from `folder` (None: a model with external data is refused)."""
    proto = parse_onnx_file(data, source, fix)
    check_onnx_tensors(proto, source, folder)
    return proto


def check_onnx_model(proto: onnx.ModelProto, source: str) -> None:
    """Refuse a model given in memory whose tensors keep data outside it (there is no folder to check them
    against) or hold data that does not match their dtype x shape.

    Raises:
        ModelFileError: naming `source` and the tensor.
    """
    if not isinstance(proto, onnx.ModelProto):
        raise ModelFileError(f"{source} expects an onnx.ModelProto. Received: {type(proto).__name__}")
    check_onnx_tensors(proto, source, None)


def check_onnx_tensors(proto: onnx.ModelProto, source: str, folder: Path | None) -> None:
    """Read `proto`'s external data in from `folder` through the checks (None: refuse any), then refuse a
    tensor whose data does not match its dtype x shape. `proto` is changed in place."""
    load_external_data(proto, source, folder)
    for where, tensor in model_tensors(proto):
        check_tensor_size(tensor, source, where)


def onnx_file_problem(data: bytes) -> str | None:
    """What keeps `data` from being an ONNX model, to follow a file's name ("is empty (0 bytes)", "is truncated
    (...)", "is not an ONNX model (...)", "has no graph (...)"); None when it parses with a graph and opsets.
    """
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception:  # protobuf's DecodeError, and more on deeply nested garbage
        return _unparsable(data)
    return _incomplete(proto, data)


def parse_onnx_file(data: bytes, name: str, fix: str) -> onnx.ModelProto:
    """The ModelProto in `data`, the bytes of the file `name`.

    Raises:
        ModelFileError: "{name} {what is wrong}. {fix}", with protobuf's error as the cause when it raised one.
    """
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError, and more on deeply nested garbage
        raise ModelFileError(f"{name} {_unparsable(data)}.{' ' + fix if fix else ''}") from e
    problem = _incomplete(proto, data)
    if problem is not None:
        raise ModelFileError(f"{name} {problem}.{' ' + fix if fix else ''}")
    return proto


def _incomplete(proto: onnx.ModelProto, data: bytes) -> str | None:
    # Fields are written in number order (ir_version, producers, graph, opset_import, metadata), so a file cut at
    # a field boundary still parses, without what came after the cut.
    if not data:
        return "is empty (0 bytes)"
    if not proto.HasField("graph"):
        return "has no graph (truncated or not an ONNX model?)"
    if not proto.opset_import:
        return "has a graph but no opset_import (truncated or not an ONNX model?)"
    return None


def _unparsable(data: bytes) -> str:
    parsed = "it does not parse as an ONNX ModelProto"
    if not _starts_with_ir_version(data):
        return f"is not an ONNX model ({parsed})"
    cut = _field_cut_off(data)
    if cut is not None:
        return f"is truncated ({len(data)} bytes; it ends inside its {cut} field, so {parsed})"
    return f"is damaged (it starts as an ONNX model does, but {parsed})"


def starts_as_onnx_model(prefix: bytes) -> bool:
    """Whether `prefix`, the first bytes of a larger file, starts as an ONNX model does: ir_version, then
    well-formed ModelProto fields up to where the prefix cuts one off."""
    return _starts_with_ir_version(prefix) and _field_cut_off(prefix) is not None


def _starts_with_ir_version(data: bytes) -> bool:
    """Whether `data` starts with field 1, ir_version, as every ONNX writer's output does (random bytes do so
    about once in 4,000)."""
    read = _varint(data, 1) if data[:1] == b"\x08" else None
    return read is not None and 1 <= read[0] <= _MAX_IR_VERSION


def _field_cut_off(data: bytes) -> str | None:
    """The top-level field `data` ends inside (quoted), when every field before it is a well-formed ModelProto
    field: the mark of a truncated file. None when the top level is whole, or is not a ModelProto's."""
    position = 0
    while position < len(data):
        read = _varint(data, position)
        if read is None:
            return "last field's tag"
        tag, position = read
        number, wire_type = tag >> 3, tag & 7
        if tag < 0 or _FIELDS.get(number, ("", -1))[1] != wire_type:
            return None
        name = repr(_FIELDS[number][0])
        read = _varint(data, position)
        if read is None:
            return name
        value, position = read
        if value < 0:
            return None
        if wire_type == 2:
            if position + value > len(data):
                return name
            position += value
    return None


def _varint(data: bytes, position: int) -> tuple[int, int] | None:
    """(value, position after it) of the protobuf varint at `position`: -1 for one longer than 10 bytes (not
    protobuf), None when the data ends inside it."""
    value, shift = 0, 0
    while position < len(data):
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if not byte & 0x80:
            return value, position
        shift += 7
        if shift >= 70:
            return -1, position
    return None
