"""Hostile models, checkpoints, configs and data through every loader (docs/security.md): each is refused with one
error of the documented type whose first line names the file, the tensor or array, and what is wrong; nothing
outside the model's folder is read, and nothing a header declares is allocated before it is checked.

The hostile files are built by the `HOSTILE_*` functions below; `tools/security_table.py` runs the same files
through the same loaders in subprocesses and reports each one's peak memory.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import math
import os
import re
import shutil
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import external_data_helper

import onnxtrain
from onnxtrain import initializers, layers
from onnxtrain._npy_file import MAX_DATA_BYTES
from onnxtrain._onnx_file import check_onnx_model, read_onnx_model
from onnxtrain.cli._data import DatasetLoader, read_input
from onnxtrain.cli._main import main
from onnxtrain.datasets import read_idx
from onnxtrain.errors import DataFormatError, ModelFileError
from onnxtrain.model_files import MAX_CONFIG_BYTES, MAX_CONFIG_NESTING

KERNEL, BIAS = "dense_1.kernel", "dense_1.bias"  # the tiny model's initializers: float32 (4, 3) and (3,)
SECRET = np.full(15, 7.0, np.float32)  # what a '../secret.bin' would hand over: as many bytes as data.bin


def save_tiny_model(folder: Path) -> Path:
    """A compiled portable-engine model (4 inputs, 3 classes) saved with its optimizer state."""
    with onnxtrain.Sequential([layers.Input(4), layers.Dense(3, activation="softmax")], seed=0) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine="portable")
        x = np.random.default_rng(0).random((8, 4), dtype=np.float32)
        model.fit(x, np.arange(8) % 3, epochs=1, verbose=0)
        model.save(folder, save_optimizer_state=True)
    return folder


def _rehash(folder: Path) -> None:
    """Record the edited files' SHA-256 in config.json, as an attacker who edits a save would."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except ValueError:  # the rows that damage config.json itself
        return
    config["model_sha256"] = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    if (folder / "checkpoint").exists():
        config["checkpoint_sha256"] = hashlib.sha256((folder / "checkpoint").read_bytes()).hexdigest()
    (folder / "config.json").write_text(json.dumps(config))


def _external(saved: Path, folder: Path, edit: Callable[[onnx.ModelProto, Path], None]) -> Path:
    """A copy of the save in `folder/model` whose weights are in `data.bin`, with `edit` applied to the proto
    (its external-data fields) and the folder; `secret.bin` sits beside the model's folder."""
    model = folder / "model"
    shutil.copytree(saved, model)
    (folder / "secret.bin").write_bytes(SECRET.tobytes())
    proto = onnx.load(model / "model.onnx")
    external_data_helper.convert_model_to_external_data(proto, location="data.bin", size_threshold=0)
    onnx.save(proto, model / "model.onnx")  # writes data.bin: kernel at 0 (48 bytes), bias at 48 (12 bytes)
    proto = onnx.load(model / "model.onnx", load_external_data=False)
    edit(proto, model)
    (model / "model.onnx").write_bytes(proto.SerializeToString())
    _rehash(model)
    return model


def _set(name: str, **fields: str) -> Callable[[onnx.ModelProto, Path], None]:
    def edit(proto: onnx.ModelProto, folder: Path) -> None:
        tensor = next(t for t in proto.graph.initializer if t.name == name)
        entries = {e.key: e.value for e in tensor.external_data} | fields
        del tensor.external_data[:]
        for key, value in entries.items():
            tensor.external_data.add(key=key, value=value)

    return edit


def _symlink_outside(proto: onnx.ModelProto, folder: Path) -> None:
    (folder / "data.bin").unlink()
    (folder / "data.bin").symlink_to(folder.parent / "secret.bin")


def _symlink_inside(proto: onnx.ModelProto, folder: Path) -> None:
    (folder / "weights").mkdir()
    (folder / "data.bin").rename(folder / "weights" / "data.bin")
    (folder / "data.bin").symlink_to(Path("weights") / "data.bin")


def _fifo(proto: onnx.ModelProto, folder: Path) -> None:
    (folder / "data.bin").unlink()
    os.mkfifo(folder / "data.bin")


def _forged_external_shape(proto: onnx.ModelProto, folder: Path) -> None:
    tensor = next(t for t in proto.graph.initializer if t.name == KERNEL)
    tensor.dims[:] = [4, 3 * 10**9]  # 48 GB declared over 48 bytes on disk


def _forged_inline_shape(proto: onnx.ModelProto, folder: Path) -> None:
    onnx.load_external_data_for_model(proto, str(folder))
    next(t for t in proto.graph.initializer if t.name == KERNEL).dims[:] = [10**6, 10**6]


def _absolute(proto: onnx.ModelProto, folder: Path) -> None:
    _set(KERNEL, location=str(folder.parent / "secret.bin"))(proto, folder)


def _non_utf8_location(proto: onnx.ModelProto, folder: Path) -> None:
    data = proto.SerializeToString().replace(b"data.bin", b"dat\xff.bin")
    proto.Clear()
    proto.ParseFromString(data)


# (row, edit, the first line's pattern); every loader must raise ModelFileError matching it.
HOSTILE_ONNX = [
    ("escaping location", _set(KERNEL, location="../secret.bin"), r"'\.\./secret\.bin'\) resolves to .*outside"),
    ("absolute location", _absolute, r"is an absolute path; external data must be a relative path"),
    ("symlink to outside", _symlink_outside, r"'data\.bin'\) resolves to .*secret\.bin', outside the model's folder"),
    ("offset past the end", _set(KERNEL, offset="4096"), r"asks for bytes 4,096 to 4,144 of 'data\.bin', which has 60"),
    ("length mismatch", _set(KERNEL, length="44"), r"gives a length of 44 bytes, but its dtype x shape .* 48"),
    ("forged huge shape (external)", _forged_external_shape, r"length of 48 bytes, but .*declares 48,000,000,000"),
    ("forged huge shape (inline)", _forged_inline_shape, r"declares 4,000,000,000,000 bytes of raw_data .* holds 48"),
    ("overlapping ranges", _set(BIAS, offset="0"), r"reads bytes of '.*data\.bin' that initializer .* reads too"),
    ("non-UTF-8 location", _non_utf8_location, r"has an external data entry that is not UTF-8 text"),
    ("FIFO as data file", _fifo, r"data\.bin' is missing or is not a regular file"),
    ("no location", _set(KERNEL, location=""), r"has an external data reference without a usable location"),
]  # fmt: skip


def _summary(path: Path) -> None:
    """`onnxtrain summary FILE`, raising what it prints on stderr as ModelFileError so a row checks its message."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = main(["summary", str(path)])
    if code:
        raise ModelFileError(stderr.getvalue())


ONNX_LOADERS: dict[str, Callable[[Path], object]] = {
    "load_model": lambda folder: onnxtrain.load_model(folder, compile=False),
    "InferenceModel.load(folder)": onnxtrain.InferenceModel.load,
    "InferenceModel.load(file)": lambda folder: onnxtrain.InferenceModel.load(folder / "model.onnx"),
    "read_onnx_model": lambda folder: read_onnx_model(folder / "model.onnx"),
    "from_onnx": lambda folder: onnxtrain.from_onnx(folder / "model.onnx", outputs=["probabilities"]),
    "onnxtrain summary": lambda folder: _summary(folder / "model.onnx"),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("security") / "saved")


@pytest.mark.parametrize("loader", list(ONNX_LOADERS))
@pytest.mark.parametrize(("edit", "match"), [row[1:] for row in HOSTILE_ONNX], ids=[row[0] for row in HOSTILE_ONNX])
def test_a_hostile_external_data_reference_is_refused_naming_file_tensor_and_location(
    tmp_path, saved, loader, edit, match
):
    folder = _external(saved, tmp_path, edit)
    with pytest.raises(ModelFileError, match=match) as error:
        ONNX_LOADERS[loader](folder)
    first = str(error.value).splitlines()[0]
    assert "model.onnx" in first and ("initializer" in first or "dense_1" in first), first
    assert "ONNXRuntimeError" not in str(error.value)  # refused before any runtime saw the file


@pytest.mark.parametrize("loader", list(ONNX_LOADERS))
def test_external_data_inside_the_folder_through_a_symlink_loads_the_same_weights(tmp_path, saved, loader):
    folder = _external(saved, tmp_path, _symlink_inside)
    loaded = ONNX_LOADERS[loader](folder)
    expected = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(saved / "model.onnx").graph.initializer}
    if isinstance(loaded, onnx.ModelProto):
        found = {t.name: onnx.numpy_helper.to_array(t) for t in loaded.graph.initializer}
        assert all(not t.external_data for t in loaded.graph.initializer)
    elif isinstance(loaded, onnxtrain.InferenceModel):
        x = np.eye(4, dtype=np.float32)
        logits = x @ expected[KERNEL] + expected[BIAS]
        softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(loaded.predict_softly(x), softmax, rtol=1e-5)
        return
    elif loaded is None:  # the summary printed
        return
    else:
        found = loaded.get_weights()
    for name, value in expected.items():
        np.testing.assert_array_equal(found[name], value)


@pytest.mark.parametrize("loader", list(ONNX_LOADERS))
def test_a_folder_whose_name_is_not_utf8_loads_and_is_checked_the_same(tmp_path, saved, loader):
    # onnx itself cannot save into such a folder: build the models elsewhere, then rename the folders.
    for name, edit in (("valid", _symlink_inside), ("escaping", _set(KERNEL, location="../secret.bin"))):
        (tmp_path / name).mkdir()
        _external(saved, tmp_path / name, edit)
        os.rename(tmp_path / name, tmp_path / os.fsdecode(name.encode() + b"\xff"))
    ONNX_LOADERS[loader](tmp_path / os.fsdecode(b"valid\xff") / "model")
    with pytest.raises(
        ModelFileError, match=r"escaping\udcff/model/model\.onnx'?: initializer 'dense_1\.kernel' .*outside"
    ):
        ONNX_LOADERS[loader](tmp_path / os.fsdecode(b"escaping\xff") / "model")


def test_a_model_given_in_memory_may_not_refer_to_external_files():
    tensor = onnx.TensorProto(name="w", data_type=onnx.TensorProto.FLOAT, dims=[2])
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="/etc/passwd")
    graph = onnx.helper.make_graph([], "g", [], [], [tensor])
    with pytest.raises(ModelFileError, match=r"<mem>: initializer 'w' keeps its data in an external file"):
        check_onnx_model(onnx.helper.make_model(graph), "<mem>")


# --- checkpoints and config.json ----------------------------------------------------------------------------


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _forged_npy(shape: tuple[int, ...], dtype: str = "<f4", data: bytes = b"\0" * 48) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    return header.getvalue() + data


def _replace_member(checkpoint: Path, name: str, data: bytes, compress: bool = False) -> None:
    with zipfile.ZipFile(checkpoint) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members[name] = data
    with zipfile.ZipFile(checkpoint, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        for member, content in members.items():
            archive.writestr(member, content)


def _edited_save(saved: Path, folder: Path, edit: Callable[[Path], None]) -> Path:
    copy = folder / "model"
    shutil.copytree(saved, copy)
    edit(copy)
    if (copy / "config.json").is_file():  # not the FIFO row's
        _rehash(copy)
    return copy


def _nested_config(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["notes"] = json.loads("[" * (MAX_CONFIG_NESTING + 5) + "]" * (MAX_CONFIG_NESTING + 5))
    (folder / "config.json").write_text(json.dumps(config))


def _huge_config(folder: Path) -> None:
    with open(folder / "config.json", "r+b") as file:  # sparse: its size is checked before it is read
        file.truncate(MAX_CONFIG_BYTES + 1)


def _forged_units(units: int) -> Callable[[Path], None]:
    """config.json's Dense(3) made Dense(units): its kernel would be (4, units) floats; model.onnx's stays (4, 3)."""

    def edit(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config["layers"][1]["config"]["units"] = units
        (folder / "config.json").write_text(json.dumps(config))

    return edit


FORGED_UNITS = 10**7  # 160 MB of float32 kernel (320 MB as the float64 an initializer draws): a peak, not a crash
HOSTILE_SAVES = [
    (
        "config.json: forged Dense(units=10**7)",
        _forged_units(FORGED_UNITS),
        r"model\.onnx: Dense layer 'dense_1' makes weight 'kernel' of shape \(4, 10000000\), which model\.onnx does "
        r"not declare \(it declares 'dense_1\.kernel' of shape \(4, 3\)\)",
    ),
    (
        "config.json: forged Dense(units=10**12)",
        _forged_units(10**12),
        r"Dense layer 'dense_1' makes weight 'kernel' of shape \(4, 1000000000000\), which model\.onnx does not",
    ),
    (
        "checkpoint: forged huge param header",
        lambda f: _replace_member(f / "checkpoint", f"param/{KERNEL}.npy", _forged_npy((10**6, 10**6))),
        r"checkpoint \(array 'param/dense_1.kernel'\) declares shape \(1000000, 1000000\) .* holds 48 bytes",
    ),
    (
        "checkpoint: param of another shape",
        lambda f: _replace_member(f / "checkpoint", f"param/{KERNEL}.npy", _npy_bytes(np.zeros((5, 3), np.float32))),
        r"checkpoint: array 'param/dense_1.kernel' \(shape \(5, 3\) of float32\) does not fit the model",
    ),
    (
        "checkpoint: compressed 4 MB state (zip bomb)",
        lambda f: _replace_member(
            f / "checkpoint", f"state/optimizer.m.{KERNEL}.npy", _npy_bytes(np.zeros(10**6, np.float32)), True
        ),
        r"array 'state/optimizer\.m\.dense_1\.kernel' \(shape \(1000000,\) of float32\) does not fit the model",
    ),
    (
        "checkpoint: pickled object array",
        lambda f: _replace_member(f / "checkpoint", "step.npy", _npy_bytes(np.array([{}], dtype=object))),
        r"array 'step'\) holds an array of Python objects .* never unpickles",
    ),
    ("config.json nested too deep", _nested_config, r"nests lists and objects more than 64 levels deep"),
    (
        "config.json over 64 MiB",
        _huge_config,
        r"config\.json' is 67,108,865 bytes \(64\.0 MiB\), more than the 67,108,864 bytes",
    ),
    (
        "config.json a FIFO",
        lambda f: ((f / "config.json").unlink(), os.mkfifo(f / "config.json")),
        r"is not a saved onnxtrain model: config\.json is missing",  # a saved model's files are regular files
    ),
]


@pytest.mark.parametrize(("edit", "match"), [row[1:] for row in HOSTILE_SAVES], ids=[row[0] for row in HOSTILE_SAVES])
def test_a_hostile_checkpoint_or_config_is_refused_by_load_model(tmp_path, saved, edit, match):
    folder = _edited_save(saved, tmp_path, edit)
    with pytest.raises(ModelFileError, match=match):
        onnxtrain.load_model(folder)  # compiled, resuming the optimizer state: the checkpoint is read


def test_an_imported_graph_in_config_json_is_held_to_model_onnx_too(tmp_path, saved):
    """An OnnxLayer's config keeps its weight-free graph; a forged weight shape there is refused, not allocated."""
    onnx_file = saved / "model.onnx"  # the tiny model's export: Dense(3) over 4 inputs
    with onnxtrain.from_onnx(onnx_file, outputs=["logits"]) as model:
        model.save(tmp_path / "imported")

    def forge(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        entry = next(e for e in config["layers"] if e["class_name"] == "OnnxLayer")
        graph = onnx.ModelProto.FromString(base64.b64decode(entry["config"]["model"]))
        kernel = next(v for v in graph.graph.input if v.name == KERNEL)
        kernel.type.tensor_type.shape.dim[1].dim_value = 10**12
        entry["config"]["model"] = base64.b64encode(graph.SerializeToString()).decode("ascii")
        (folder / "config.json").write_text(json.dumps(config))

    with pytest.raises(
        ModelFileError,
        match=r"model\.onnx: OnnxLayer layer 'onnx_model' makes weight 'dense_1\.kernel' of shape "
        r"\(4, 1000000000000\), which model\.onnx does not declare \(it declares 'dense_1\.kernel' of shape \(4, 3\)\)",
    ):
        onnxtrain.load_model(_edited_save(tmp_path / "imported", tmp_path / "forged", forge))


@contextlib.contextmanager
def _peak_while_layers_are_rebuilt(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Record (in the list it yields) the traced peak in bytes while load_model rebuilds the layers inside
    `initializers.weights_declared_by`, so the bounded reads of the files before it do not count."""
    peaks: list[int] = []
    declared_by = initializers.weights_declared_by

    @contextlib.contextmanager
    def traced(*args: object) -> Iterator[None]:
        tracemalloc.reset_peak()
        try:
            with declared_by(*args):  # type: ignore[arg-type]
                yield
        finally:
            peaks.append(tracemalloc.get_traced_memory()[1])

    monkeypatch.setattr(initializers, "weights_declared_by", traced)
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        yield peaks
    finally:
        if not tracing:
            tracemalloc.stop()


@pytest.mark.parametrize("size", [10**7, 10**12])
def test_a_forged_normalization_size_is_refused_before_its_statistics_are_allocated(tmp_path, monkeypatch, size):
    """Normalization makes its mean and variance in build, from the input size config.json declares: 10**7 was
    160 MB of float64 allocated before the refusal, 10**12 a MemoryError instead of it."""
    normalization = layers.Normalization()
    normalization.adapt(np.random.default_rng(0).random((8, 4)))
    with onnxtrain.Sequential([layers.Input(4), normalization, layers.Dense(3)], seed=0) as model:
        model.save(tmp_path / "saved")

    def forge(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config["layers"][0]["config"]["shape"] = [size]
        (folder / "config.json").write_text(json.dumps(config))

    folder = _edited_save(tmp_path / "saved", tmp_path / "forged", forge)
    refusal = (
        rf"model\.onnx: Normalization layer 'normalization_1' makes weight 'mean' of shape \({size},\), which "
        r"model\.onnx does not declare \(it declares 'normalization_1\.mean' of shape \(4,\)\)"
        r".* the weight was not allocated"
    )
    with _peak_while_layers_are_rebuilt(monkeypatch) as peaks, pytest.raises(ModelFileError, match=refusal):
        onnxtrain.load_model(folder, compile=False)
    assert len(peaks) == 1 and peaks[0] < 4 * 2**20, f"{peaks[0]:,} bytes traced while the layers were rebuilt"


def _graph_of_a_data_dependent_shape() -> onnx.ModelProto:
    """x [N, 4] @ w [4, 3], reshaped to [-1, 3 + int(max(x))]: shape inference cannot give the output's shape, so
    OnnxLayer runs the graph once, on zeros of the input's and weights' shapes, to learn it."""
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["mm"]),
        helper.make_node("ReduceMax", ["x"], ["top"], keepdims=0),
        helper.make_node("Cast", ["top"], ["top_int"], to=onnx.TensorProto.INT64),
        helper.make_node("Reshape", ["top_int", "one"], ["extra"]),
        helper.make_node("Add", ["extra", "three"], ["width"]),
        helper.make_node("Concat", ["minus_one", "width"], ["target"], axis=0),
        helper.make_node("Reshape", ["mm", "target"], ["logits"]),
    ]
    constants = {"one": [1], "three": [3], "minus_one": [-1]}
    initializers_ = [numpy_helper.from_array(np.ones((4, 3), np.float32), "w")]
    initializers_ += [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in constants.items()]
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])
    logits = helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "data_dependent", [x], [logits], initializers_)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_a_forged_weight_shape_in_an_imported_graph_is_refused_before_the_graph_runs(tmp_path, monkeypatch):
    """The graph in config.json declares w of shape (4, 12 * 10**6): OnnxLayer ran it on 192 MB of zeros to learn
    its output shape before add_weight refused the weight."""
    with onnxtrain.from_onnx(_graph_of_a_data_dependent_shape()) as model:
        assert model.output_shape == (3,)  # from the run
        model.save(tmp_path / "saved")

    def forge(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        entry = next(e for e in config["layers"] if e["class_name"] == "OnnxLayer")
        graph = onnx.ModelProto.FromString(base64.b64decode(entry["config"]["model"]))
        next(v for v in graph.graph.input if v.name == "w").type.tensor_type.shape.dim[1].dim_value = 12 * 10**6
        entry["config"]["model"] = base64.b64encode(graph.SerializeToString()).decode("ascii")
        (folder / "config.json").write_text(json.dumps(config))

    folder = _edited_save(tmp_path / "saved", tmp_path / "forged", forge)
    refusal = (
        r"OnnxLayer layer 'onnx_model' makes weight 'w' of shape \(4, 12000000\), which model\.onnx does not declare"
    )
    with _peak_while_layers_are_rebuilt(monkeypatch) as peaks, pytest.raises(ModelFileError, match=refusal):
        onnxtrain.load_model(folder, compile=False)
    assert len(peaks) == 1 and peaks[0] < 4 * 2**20, f"{peaks[0]:,} bytes traced while the layers were rebuilt"


def test_a_config_of_a_few_megabytes_still_loads(tmp_path, saved):
    # An imported ONNX layer keeps its weight-free graph in config.json as base64.
    def pad(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config["notes"] = "A" * (4 << 20)
        (folder / "config.json").write_text(json.dumps(config))

    with onnxtrain.load_model(_edited_save(saved, tmp_path, pad)) as model:
        expected = onnx.numpy_helper.to_array(onnx.load(saved / "model.onnx").graph.initializer[0])
        np.testing.assert_array_equal(model.get_weights()[KERNEL], expected)


# --- data: IDX, .npy and .npz for the command line --------------------------------------------------------------


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        (folder / name).write_bytes(data)
        return folder / name

    return build


def _npz(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return buffer.getvalue()


def _sparse_npy(folder: Path) -> Path:
    """A .npy whose header declares 8 GiB and whose (sparse) file really is that long."""
    path = folder / "huge.npy"
    path.write_bytes(_forged_npy((2 * MAX_DATA_BYTES,), "|u1", b""))
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size + 2 * MAX_DATA_BYTES)
    return path


def _fifo_file(name: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        os.mkfifo(folder / name)
        return folder / name

    return build


IDX_HUGE = b"\0\0\x08\x03" + (60000).to_bytes(4, "big") + (10**5).to_bytes(4, "big") * 2 + b"\0" * 64
HOSTILE_DATA = [
    ("IDX: forged huge shape", _write("x.idx", IDX_HUGE), "idx", r"claims shape \(60000, 100000, 100000\)"),
    ("IDX: a FIFO", _fifo_file("x.idx"), "idx", r"is not a regular file"),
    (
        "npz: forged huge x",
        _write("d.npz", _npz(x=_forged_npy((10**9, 784), "|u1", b"\0" * 100), y=_npy_bytes(np.zeros(2)))),
        "npz",
        r"d\.npz' \(array 'x'\) declares shape \(1000000000, 784\) of uint8 \(784,000,000,000 bytes\), but holds 100",
    ),
    (
        "npz: pickled object array",
        _write("d.npz", _npz(x=_npy_bytes(np.array([{}], dtype=object)), y=_npy_bytes(np.zeros(1)))),
        "npz",
        r"holds an array of Python objects \(dtype object\)",
    ),
    ("npz: a FIFO", _fifo_file("d.npz"), "npz", r"is not a readable \.npz archive: it is not a regular file"),
    ("npy: forged huge shape", _write("x.npy", _forged_npy((10**6, 10**6))), "npy", r"declares shape .* holds 48"),
    ("npy: 8 GiB declared and present", _sparse_npy, "npy", r"declares 8,589,934,592 bytes .* more than"),
    ("npy: a FIFO", _fifo_file("x.npy"), "npy", r"Cannot read '.*x\.npy' as a \.npy array: it is not a regular"),
]
DATA_LOADERS: dict[str, Callable[[Path], object]] = {
    "idx": read_idx,
    "npz": lambda path: DatasetLoader(path.parent).load(path.name, "--data"),
    "npy": lambda path: read_input(path, (4,)),
}


@pytest.mark.parametrize(
    ("build", "loader", "match"), [row[1:] for row in HOSTILE_DATA], ids=[row[0] for row in HOSTILE_DATA]
)
def test_hostile_data_is_refused_before_its_declared_size_is_allocated(tmp_path, build, loader, match):
    with pytest.raises(DataFormatError, match=match):
        DATA_LOADERS[loader](build(tmp_path))


def test_npz_and_npy_data_that_fit_load_as_numpy_saved_them(tmp_path):
    x, y = np.arange(32, dtype=np.uint8).reshape(8, 4), np.arange(8) % 3
    np.savez_compressed(tmp_path / "d.npz", x=x, y=y)
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    dataset = DATA_LOADERS["npz"](tmp_path / "d.npz")
    np.testing.assert_allclose(dataset.x, x / np.float32(255), rtol=1e-6)
    np.testing.assert_array_equal(dataset.y, y)
    np.testing.assert_array_equal(DATA_LOADERS["npy"](tmp_path / "x.npy"), x.astype(np.float32))


# --- every tensor of a model, not only the initializers ------------------------------------------------------


def _model_with(tensor: onnx.TensorProto, where: str) -> onnx.ModelProto:
    """A model holding `tensor` as an initializer, a Constant's value, or an initializer of an If's branch."""
    out = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    if where == "initializer":
        graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", [tensor.name], ["y"])], "g", [], [out])
        graph.initializer.append(tensor)
    elif where == "constant":
        graph = onnx.helper.make_graph([onnx.helper.make_node("Constant", [], ["y"], value=tensor)], "g", [], [out])
    else:
        branch = onnx.helper.make_graph([onnx.helper.make_node("Identity", [tensor.name], ["y"])], "b", [], [out])
        branch.initializer.append(tensor)
        node = onnx.helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)
        cond = onnx.helper.make_tensor_value_info("c", onnx.TensorProto.BOOL, [])
        graph = onnx.helper.make_graph([node], "g", [cond], [out])
    return onnx.helper.make_model(graph)


def _tensor(**fields: object) -> onnx.TensorProto:
    return onnx.TensorProto(name="t", **fields)  # type: ignore[arg-type]


F, I4, S = onnx.TensorProto.FLOAT, onnx.TensorProto.INT4, onnx.TensorProto.STRING
TENSORS = [  # (row, tensor, None when valid or the refusal's pattern)
    ("float raw_data", onnx.numpy_helper.from_array(np.ones((2, 3), np.float32), "t"), None),
    ("float_data", _tensor(data_type=F, dims=[2, 3], float_data=[1.0] * 6), None),
    ("int4 packed in int32_data", onnx.helper.make_tensor("t", I4, [3], [1, -2, 3]), None),
    ("strings", _tensor(data_type=S, dims=[2], string_data=[b"a", b"b"]), None),
    ("empty", _tensor(data_type=F, dims=[0, 5]), None),
    ("forged dims", _tensor(data_type=F, dims=[10**9], raw_data=b"\0" * 8), r"declares 4,000,000,000 bytes"),
    ("float_data short", _tensor(data_type=F, dims=[2, 3], float_data=[1.0] * 5), r"declares 6 values in float_data"),
    ("wrong typed field", _tensor(data_type=F, dims=[2], int64_data=[1, 2]), r"holds 2 in int64_data"),
    ("two fields", _tensor(data_type=F, dims=[1], float_data=[1.0], raw_data=b"\0" * 4), r"in several fields"),
    ("no data", _tensor(data_type=F, dims=[4]), r"declares 4 elements but holds no data"),
    ("strings short", _tensor(data_type=S, dims=[3], string_data=[b"a"]), r"declares 3 values in string_data"),
    ("negative dim", _tensor(data_type=F, dims=[-1], raw_data=b""), r"has a negative dimension"),
    ("unknown dtype", _tensor(data_type=99, dims=[1], raw_data=b"\0"), r"data_type 99, which is not an ONNX tensor"),
]  # fmt: skip


WHERE = {  # how the first line names the tensor, as a pattern
    "initializer": r"initializer 't'",
    "constant": r"node 'Constant' attribute 'value'",
    "subgraph": r"node 'If' attribute '(then|else)_branch' subgraph: initializer 't'",
}


@pytest.mark.parametrize("where", list(WHERE))
@pytest.mark.parametrize(("tensor", "match"), [row[1:] for row in TENSORS], ids=[row[0] for row in TENSORS])
def test_every_tensor_of_a_model_must_hold_what_its_dtype_and_shape_declare(tensor, match, where):
    model = _model_with(tensor, where)
    if match is None:
        check_onnx_model(model, "<m>")
        np.testing.assert_array_equal(onnx.numpy_helper.to_array(tensor).size, math.prod(tensor.dims))
        return
    with pytest.raises(ModelFileError, match=match) as error:
        check_onnx_model(model, "<m>")
    assert re.match(f"<m>: {WHERE[where]}", str(error.value)), error.value
