"""onnxtrain.bundle's reading of state bytes (`_bundle_state`): a bundle's state.bin, or what onnxtrain-js'
`stateBytes()` writes (its trailer's layout fingerprint and learning rate checked and read as `stateFromBytes` does
in JavaScript)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from onnxtrain._bundle_state import _fingerprint, pack_state
from onnxtrain.bundle import read_metadata, state_bytes_rate, unpack_state
from onnxtrain.errors import ModelFileError
from tests.js_harness import JS, ORT_NODE, missing_js_dependencies, node_script

FIXTURE = JS / "test" / "fixtures" / "bundle"


def _index() -> list[dict]:
    return read_metadata(FIXTURE)["tensors"]


def _node(body: str, tmp_path: Path) -> dict:
    reason = missing_js_dependencies(ORT_NODE)
    if reason is not None:
        pytest.skip(reason)
    src = json.dumps((JS / "src" / "index.js").as_uri())
    return node_script(f"const js = await import({src});\nconst BUNDLE = {json.dumps(str(FIXTURE))};\n{body}", tmp_path)


@pytest.mark.slow
def test_js_state_bytes_are_read_with_their_learning_rate(tmp_path):
    body = """
const trainer = await Trainer.load(ort, BUNDLE);
trainer.learningRate = 0.0123;
result = { bytes: Array.from(trainer.stateBytes()), tensors: Object.fromEntries(trainer.getState().tensors) };
"""
    node = _node(body, tmp_path)
    data = bytes(node["bytes"])
    state = unpack_state(data, _index())
    for name, values in node["tensors"].items():
        np.testing.assert_array_equal(state[name].ravel(), np.asarray(values, state[name].dtype), err_msg=name)
    assert state_bytes_rate(data, _index()) == 0.0123
    assert state_bytes_rate((FIXTURE / "state.bin").read_bytes(), _index()) is None


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dense_1.kernel", "dénse/ünïcode", 'quote"back\\slash\ttab', "emoji😀"])
def test_the_layout_fingerprint_is_javascripts(tmp_path, name):
    index = [
        {"name": name, "dtype": "float32", "shape": [3, 2], "offset": 0},
        {"name": "step", "dtype": "int64", "shape": [], "offset": 24},
    ]
    body = f"""
const index = {json.dumps(index)};
const tensors = new Map([[index[0].name, new Float32Array(6)], ["step", BigInt64Array.of(7n)]]);
const bytes = js.packState(tensors, index, 0.5);
result = Array.from(bytes.subarray(bytes.length - 16, bytes.length - 12));
"""
    assert int.from_bytes(bytes(_node(body, tmp_path)), "little") == _fingerprint(index)


def _state(index: list[dict]) -> bytes:
    tensors = {e["name"]: np.zeros(e["shape"], e["dtype"]) for e in index}
    return pack_state(tensors)[0]


def _trailer(index: list[dict], rate: float = 0.001) -> bytes:
    return b"OTJSSTA1" + np.array([_fingerprint(index), 0], "<u4").tobytes() + np.array(rate, "<f8").tobytes()


def _renamed(index: list[dict]) -> list[dict]:
    return [{**e, "name": e["name"].replace("dense_", "layer_")} for e in index]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            lambda i: _state(i) + b"\0" * 64,
            r"expect 1496 bytes \(state.bin of this bundle's 13 tensors\) or 1520 "
            r"\(JavaScript stateBytes\(\) of this model\)\. Received: 1560 bytes",
        ),
        (lambda i: _state(i)[:-8], r"expect 1496 bytes .*Received: 1488 bytes"),
        (
            lambda i: _state(i) + _trailer(_renamed(i)),
            r"expect the layout of this bundle's model \(fingerprint "
            r"[0-9a-f]+: 13 tensors\)\. Received: another model's stateBytes\(\) \(fingerprint [0-9a-f]+\)",
        ),
        (lambda i: _state(i) + b"OTJSSTA1" + bytes(16), r"another model's stateBytes\(\) \(fingerprint 0\)"),
    ],
    ids=["trailing junk", "short", "another model's trailer", "a trailer without a fingerprint"],
)
def test_unpack_state_refuses_bytes_of_another_layout(data, message):
    index = _index()
    with pytest.raises(ModelFileError, match=message):
        unpack_state(data(index), index)
    with pytest.raises(ModelFileError, match=message):
        state_bytes_rate(data(index), index)


def test_another_models_state_of_another_length_is_refused_naming_both():
    mlp = [{"name": "dense_1.kernel", "dtype": "float32", "shape": [784, 300], "offset": 0}]
    with pytest.raises(ModelFileError, match=r"expect 1496 bytes .*Received: 940824 bytes"):
        unpack_state(_state(mlp) + _trailer(mlp), _index())


def test_this_models_trailer_is_read_and_the_rate_returned():
    index = _index()
    data = _state(index) + _trailer(index, 0.25)
    assert state_bytes_rate(data, index) == 0.25
    assert set(unpack_state(data, index)) == {e["name"] for e in index}
