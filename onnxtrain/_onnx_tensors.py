"""The tensor data of an untrusted ONNX model: each tensor's declared size (dtype x shape) checked against the data
it holds, and its external data read in only from inside the model's folder, before any runtime sees the model.

Every TensorProto counts: initializers, sparse initializers, Constant-like attributes, in subgraphs and functions
and training-info graphs too. What `load_external_data` returns has all data inline, so ONNX Runtime gets bytes
and never a path: onnxruntime 1.19.2 follows `../secret.bin` when it loads a model by path (1.32 refuses).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import onnx
from onnx import TensorProto

from onnxtrain._bounded_read import read_range
from onnxtrain.errors import ModelFileError

MAX_MODEL_BYTES = (1 << 31) - 1
"""Protobuf's limit on a serialized model, so the most a model with its external data inline may hold."""

T = TensorProto
# Bits per element; STRING has no fixed size (its string_data count is checked instead).
_BITS: dict[int, int] = {
    T.FLOAT: 32, T.UINT8: 8, T.INT8: 8, T.UINT16: 16, T.INT16: 16, T.INT32: 32, T.INT64: 64, T.BOOL: 8,
    T.FLOAT16: 16, T.DOUBLE: 64, T.UINT32: 32, T.UINT64: 64, T.COMPLEX64: 64, T.COMPLEX128: 128, T.BFLOAT16: 16,
    T.FLOAT8E4M3FN: 8, T.FLOAT8E4M3FNUZ: 8, T.FLOAT8E5M2: 8, T.FLOAT8E5M2FNUZ: 8, T.FLOAT8E8M0: 8,
    T.UINT4: 4, T.INT4: 4, T.FLOAT4E2M1: 4, T.UINT2: 2, T.INT2: 2, T.FLOAT6E2M3: 6, T.FLOAT6E3M2: 6,
}  # fmt: skip
# The typed field each data type keeps its values in when not raw_data, and values per element there.
_TYPED_FIELD: dict[int, tuple[str, int]] = {
    T.FLOAT: ("float_data", 1), T.COMPLEX64: ("float_data", 2), T.INT64: ("int64_data", 1),
    T.DOUBLE: ("double_data", 1), T.COMPLEX128: ("double_data", 2), T.UINT32: ("uint64_data", 1),
    T.UINT64: ("uint64_data", 1), T.STRING: ("string_data", 1),
}  # fmt: skip
_DATA_FIELDS = ("raw_data", "float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")


def model_tensors(model: onnx.ModelProto) -> Iterator[tuple[str, TensorProto]]:
    """(where, tensor) for every TensorProto of `model`: "initializer 'w'", "node 'c' attribute 'value'", ..."""
    yield from _graph_tensors(model.graph, "")
    for function in model.functions:
        yield from _node_tensors(function.node, f"function '{function.name}' ")
    for index, info in enumerate(model.training_info):
        yield from _graph_tensors(info.initialization, f"training_info[{index}].initialization ")
        yield from _graph_tensors(info.algorithm, f"training_info[{index}].algorithm ")


def _graph_tensors(graph: onnx.GraphProto, prefix: str) -> Iterator[tuple[str, TensorProto]]:
    for tensor in graph.initializer:
        yield f"{prefix}initializer '{tensor.name}'", tensor
    for sparse in graph.sparse_initializer:
        yield f"{prefix}sparse initializer '{sparse.values.name}' (values)", sparse.values
        yield f"{prefix}sparse initializer '{sparse.values.name}' (indices)", sparse.indices
    yield from _node_tensors(graph.node, prefix)


def _node_tensors(nodes: Iterable[onnx.NodeProto], prefix: str) -> Iterator[tuple[str, TensorProto]]:
    for node in nodes:
        for attribute in node.attribute:
            where = f"{prefix}node '{node.name or node.op_type}' attribute '{attribute.name}'"
            if attribute.HasField("t"):
                yield where, attribute.t
            for index, tensor in enumerate(attribute.tensors):
                yield f"{where}[{index}]", tensor
            sparses = ([attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []) + list(
                attribute.sparse_tensors
            )
            for sparse in sparses:
                yield f"{where} (sparse values)", sparse.values
                yield f"{where} (sparse indices)", sparse.indices
            if attribute.HasField("g"):
                yield from _graph_tensors(attribute.g, f"{where} subgraph: ")
            for index, graph in enumerate(attribute.graphs):
                yield from _graph_tensors(graph, f"{where}[{index}] subgraph: ")


def declared_bytes(tensor: TensorProto, source: str, where: str) -> int:
    """The bytes of raw data `tensor`'s dtype and shape call for (0 for strings), refusing an unknown dtype or a
    negative dimension."""
    if tensor.data_type not in _BITS and tensor.data_type != T.STRING:
        raise ModelFileError(
            f"{source}: {where} has data_type {tensor.data_type}, which is not an ONNX tensor type "
            f"(expected one of {sorted((*_BITS, T.STRING))})."
        )
    if any(dim < 0 for dim in tensor.dims):
        raise ModelFileError(f"{source}: {where} has a negative dimension: dims={list(tensor.dims)}.")
    count = math.prod(tensor.dims)
    return 0 if tensor.data_type == T.STRING else (count * _BITS[tensor.data_type] + 7) // 8


def check_tensor_size(tensor: TensorProto, source: str, where: str) -> None:
    """Refuse inline data that does not hold exactly what `tensor`'s dtype x shape declares (a forged huge shape
    over a few bytes, a truncated raw_data): checked before anything allocates the declared size."""
    expected = declared_bytes(tensor, source, where)
    count = math.prod(tensor.dims)
    lengths = {name: len(getattr(tensor, name)) for name in _DATA_FIELDS}  # raw_data's is a copy: take it once
    present = [name for name, length in lengths.items() if length]
    dtype = T.DataType.Name(tensor.data_type)
    shape = f"{dtype} {list(tensor.dims)}"
    if len(present) > 1:
        raise ModelFileError(f"{source}: {where} ({shape}) holds data in several fields: {present}; expected one.")
    if not present:
        if count:
            raise ModelFileError(f"{source}: {where} ({shape}) declares {count:,} elements but holds no data.")
        return
    field = present[0]
    held = lengths[field]
    if field == "raw_data":
        if held != expected:
            raise ModelFileError(
                f"{source}: {where} ({shape}) declares {expected:,} bytes of raw_data (dtype x shape) but holds "
                f"{held:,}: the file is damaged or forged."
            )
        return
    name, per_element = _TYPED_FIELD.get(tensor.data_type, ("int32_data", 1))
    wanted = count * per_element if _BITS.get(tensor.data_type, 8) >= 8 else expected
    if field != name or held != wanted:
        raise ModelFileError(
            f"{source}: {where} ({shape}) declares {wanted:,} values in {name} but holds {held:,} in {field}: the "
            "file is damaged or forged."
        )


def has_external_data(tensor: TensorProto) -> bool:
    return tensor.data_location == T.EXTERNAL or len(tensor.external_data) > 0


def load_external_data(model: onnx.ModelProto, source: str, folder: Path | None) -> None:
    """Read every tensor's external data into it (raw_data), in place, checking each reference first.

    A reference must be a relative location inside `folder` after resolving symlinks, name a regular file,
    and give an offset and length inside it; the length must be what the tensor's dtype x shape declares, and
    no two tensors may share bytes (so the model in memory is never larger than the files on disk). All
    references are checked and the total bounded before any is read. `folder` None (a model given in memory)
    refuses every reference.

    Raises:
        ModelFileError: naming `source`, the tensor and its location.
    """
    references = [(where, tensor) for where, tensor in model_tensors(model) if has_external_data(tensor)]
    if not references:
        return
    if folder is None:
        where, tensor = references[0]
        raise ModelFileError(
            f"{source}: {where} keeps its data in an external file "
            f"({_entries(tensor, source, where).get('location')!r}), and "
            "a model given in memory has no folder to read it from. Pass the .onnx file's path instead."
        )
    root = Path(os.path.realpath(folder))
    plans = [_plan(tensor, where, source, root) for where, tensor in references]
    _check_no_overlap(plans, source)
    total = sum(length for _, _, _, _, length in plans)
    if total > MAX_MODEL_BYTES:
        raise ModelFileError(
            f"{source}: its external data totals {total:,} bytes, more than the {MAX_MODEL_BYTES:,} a model "
            "loaded in memory may hold."
        )
    for where, tensor, path, offset, length in plans:
        try:
            data = read_range(path, offset, length)
        except (OSError, ValueError) as e:
            raise ModelFileError(
                f"{source}: cannot read the external data of {where} from '{path}': "
                f"{getattr(e, 'strerror', None) or e}."
            ) from e
        del tensor.external_data[:]
        tensor.data_location = T.DEFAULT
        tensor.raw_data = data


def _entries(tensor: TensorProto, source: str, where: str) -> dict[str, str]:
    """The external_data key/value pairs; protobuf gives bytes for a string that is not UTF-8 (refused)."""
    entries: dict[str, str] = {}
    for entry in tensor.external_data:
        key, value = entry.key, entry.value
        if not isinstance(key, str) or not isinstance(value, str):
            raise ModelFileError(
                f"{source}: {where} has an external data entry that is not UTF-8 text ({key!r}: {value!r}); "
                "expected a relative file name such as 'weights.bin'."
            )
        entries[key] = value
    return entries


Plan = tuple[str, TensorProto, Path, int, int]


def _plan(tensor: TensorProto, where: str, source: str, root: Path) -> Plan:
    """(where, tensor, resolved file, offset, length) of one checked external-data reference."""
    entries = _entries(tensor, source, where)
    location = entries.get("location", "")
    at = f"{where} (external data location {location!r})"
    if tensor.data_location != T.EXTERNAL:
        raise ModelFileError(f"{source}: {at} has external_data entries but data_location is not EXTERNAL.")
    if any(len(getattr(tensor, name)) for name in _DATA_FIELDS):
        raise ModelFileError(f"{source}: {at} holds inline data as well as an external reference.")
    if not location or "\x00" in location:
        raise ModelFileError(f"{source}: {where} has an external data reference without a usable location.")
    if os.path.isabs(location) or location.startswith(("/", "\\")) or (len(location) > 1 and location[1] == ":"):
        raise ModelFileError(
            f"{source}: {at} is an absolute path; external data must be a relative path inside the model's "
            f"folder '{root}'."
        )
    path = Path(os.path.realpath(root / location))
    if os.path.commonpath([root, path]) != str(root):
        raise ModelFileError(
            f"{source}: {at} resolves to '{path}', outside the model's folder '{root}' (a '..' or a symbolic "
            "link): onnxtrain reads external data only from inside the model's folder."
        )
    offset, length = (_integer(entries, key, at, source) for key in ("offset", "length"))
    try:
        size = path.stat().st_size if path.is_file() else None
    except OSError as e:
        raise ModelFileError(f"{source}: {at}: cannot read '{path}': {e.strerror or e}.") from e
    if size is None:
        raise ModelFileError(f"{source}: {at}: '{path}' is missing or is not a regular file.")
    offset = offset or 0
    expected = declared_bytes(tensor, source, where)
    if tensor.data_type == T.STRING:
        raise ModelFileError(f"{source}: {at}: a string tensor cannot keep its data externally.")
    length = size - offset if length is None else length
    if offset > size or offset + length > size:
        raise ModelFileError(
            f"{source}: {at} asks for bytes {offset:,} to {offset + length:,} of '{path.name}', which has "
            f"{size:,}: the offset or length is past the end of the file."
        )
    if length != expected:
        raise ModelFileError(
            f"{source}: {at} gives a length of {length:,} bytes, but its dtype x shape "
            f"({T.DataType.Name(tensor.data_type)} {list(tensor.dims)}) declares {expected:,}."
        )
    return where, tensor, path, offset, length


def _integer(entries: dict[str, str], key: str, at: str, source: str) -> int | None:
    if key not in entries:
        return None
    text = entries[key]
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise ModelFileError(f"{source}: {at} has {key}={text!r}; expected a non-negative whole number of bytes.")
    return int(text)


def _check_no_overlap(plans: list[Plan], source: str) -> None:
    """Refuse two tensors reading the same bytes: a 1 MB file could otherwise fill gigabytes of memory."""
    spans = sorted((str(path), offset, offset + length, where) for where, _, path, offset, length in plans if length)
    reach = ("", 0, "")  # (file, furthest end so far, the tensor that reads up to there)
    for path, start, end, where in spans:
        if path == reach[0] and start < reach[1]:
            raise ModelFileError(
                f"{source}: {where} reads bytes of '{path}' that {reach[2]} reads too (from offset "
                f"{start:,}); external data ranges must not overlap."
            )
        if path != reach[0] or end > reach[1]:
            reach = (path, end, where)
