"""Fuzzing the loaders of untrusted files: config.json, model.onnx and the training checkpoint.

Each case is a mutation of a valid save, loaded in a worker process (tools/fuzz.py), so a native crash in
ONNX Runtime or protobuf shows as a failed example instead of taking pytest down. Only the documented errors
may come out: ModelFileError from load_model / InferenceModel.load, any onnxtrain error from a call on a model
that loaded. Fixed seed (derandomized), bounded example counts; `python tools/fuzz.py --examples N` runs
longer. The IDX reader's property tests live in tests/test_idx.py.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _load_fuzz_tool() -> Any:
    spec = importlib.util.spec_from_file_location("onnxtrain_fuzz_tool", REPO / "tools" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


fuzz = _load_fuzz_tool()
FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return fuzz.Corpus.create(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> Any:
    isolated = fuzz.IsolatedChecker(timeout=60, log=tmp_path_factory.mktemp("fuzz-log") / "worker.log")
    yield isolated
    isolated.close()


def _assert_documented(verdict: dict[str, Any]) -> None:
    assert verdict["verdict"] in (fuzz.OK, fuzz.REFUSED), verdict


@FUZZ
@given(data=st.data())
def test_mutated_config_json_only_raises_model_file_error(corpus, checker, data):
    _assert_documented(checker.check("config", fuzz.draw_case("config", data, corpus)))


@FUZZ
@given(data=st.data())
def test_mutated_model_onnx_only_raises_model_file_error_and_never_crashes(corpus, checker, data):
    _assert_documented(checker.check("onnx", fuzz.draw_case("onnx", data, corpus)))


@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_a_mutated_checkpoint_is_refused_before_onnx_runtime_parses_it(corpus, checker, data):
    path = fuzz.draw_case("checkpoint", data, corpus)
    verdict = checker.check("checkpoint", path)
    _assert_documented(verdict)
    if (path / "checkpoint").read_bytes() != corpus.files["checkpoint"]:
        assert verdict["verdict"] == fuzz.REFUSED and "SHA-256 differs" in verdict["message"], verdict


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_mutated_external_data_is_refused_or_read_from_inside_the_folder_only(corpus, checker, data):
    _assert_documented(checker.check("external", fuzz.draw_case("external", data, corpus)))  # never "escaped"


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_mutated_npz_headers_of_checkpoints_and_datasets_are_refused_with_onnxtrain_errors(corpus, checker, data):
    _assert_documented(checker.check("npz", fuzz.draw_case("npz", data, corpus)))


def test_the_worker_turns_a_crash_and_a_hang_into_verdicts(tmp_path):
    """The isolation is real: a worker dying of SIGSEGV or stuck past the timeout is reported and replaced.

    Only the hang case gets a short timeout, and its input never returns: no verdict depends on the machine's speed.
    """
    isolated = fuzz.IsolatedChecker(timeout=120, log=tmp_path / "log")
    path = tmp_path / "case.idx"
    path.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
    try:
        assert isolated.check("idx", path)["verdict"] == fuzz.OK
        crashed = isolated.check("self-test-crash", path)
        assert crashed["verdict"] == fuzz.CRASHED and crashed["returncode"] == -11
        assert isolated.check("idx", path)["verdict"] == fuzz.OK  # a fresh worker
        isolated.timeout = 0.5
        assert isolated.check("self-test-hang", path)["verdict"] == fuzz.HUNG
        isolated.timeout = 120
        assert isolated.check("idx", path)["verdict"] == fuzz.OK
        assert isolated.restarts == 2
    finally:
        isolated.close()


def test_a_slow_worker_start_does_not_count_against_the_timeout(tmp_path, monkeypatch):
    """The timeout counts from a ready worker: one that takes 4 s to start still answers a case in time."""
    slow = tmp_path / "slow_start"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text("import time\ntime.sleep(4)\n")  # Python imports it at start-up
    monkeypatch.setenv("PYTHONPATH", str(slow))
    path = tmp_path / "case.idx"
    path.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
    isolated = fuzz.IsolatedChecker(timeout=3, log=tmp_path / "log")
    try:
        assert isolated.check("idx", path)["verdict"] == fuzz.OK
    finally:
        isolated.close()


def test_a_worker_that_dies_while_starting_is_an_error_not_a_verdict(tmp_path, monkeypatch):
    broken = tmp_path / "broken_start"
    broken.mkdir()
    (broken / "sitecustomize.py").write_text("import os\nos._exit(3)\n")
    monkeypatch.setenv("PYTHONPATH", str(broken))
    isolated = fuzz.IsolatedChecker(timeout=3, log=tmp_path / "log")
    with pytest.raises(fuzz.WorkerStartError, match=r"exited with status 3 before it was ready"):
        isolated.check("idx", tmp_path / "case.idx")
