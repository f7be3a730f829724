"""Runtime detection: one onnxruntime flavour per environment, and device strings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from onnxtrain._runtime import (
    Device,
    check_single_flavour,
    create_session,
    installed_flavours,
    resolve_device,
    session_options,
)
from onnxtrain.errors import InvalidArgumentError, RuntimeSetupError


def test_this_environment_has_exactly_one_flavour():
    assert len(installed_flavours()) == 1


def test_two_flavours_fail_naming_both_and_the_fix():
    with pytest.raises(
        RuntimeSetupError, match=r"onnxruntime, onnxruntime-training-cpu.*keep exactly one.*pip uninstall"
    ):
        check_single_flavour(["onnxruntime", "onnxruntime-training-cpu"])
    assert issubclass(RuntimeSetupError, ImportError)


def test_single_or_no_flavour_is_fine():
    assert check_single_flavour(["onnxruntime-gpu"]) == "onnxruntime-gpu"
    assert check_single_flavour([]) is None


@pytest.mark.parametrize(
    ("text", "providers", "expected"),
    [
        ("cpu", ["CPUExecutionProvider"], Device("cpu")),
        ("CPU", ["CPUExecutionProvider"], Device("cpu")),
        ("auto", ["CPUExecutionProvider"], Device("cpu")),
        ("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"], Device("cuda", 0)),
        ("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"], Device("cuda", 0)),
        ("cuda:1", ["CUDAExecutionProvider", "CPUExecutionProvider"], Device("cuda", 1)),
    ],
)
def test_device_strings(text, providers, expected):
    assert resolve_device(text, providers) == expected


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "cpu:0", "", 0, None])
def test_bad_device_strings(bad):
    with pytest.raises(InvalidArgumentError, match="device expects"):
        resolve_device(bad, ["CPUExecutionProvider"])


def test_cuda_without_provider_says_which_extra():
    with pytest.raises(RuntimeSetupError, match=r"onnxtrain\[cuda\].*onnxtrain\[infer-gpu\]"):
        resolve_device("cuda:0", ["CPUExecutionProvider"])
    assert Device("cuda", 1).ort_device == "cuda:1" and Device("cpu").provider == "CPUExecutionProvider"


class FakeSession:
    def __init__(self, providers: list[str]):
        self._providers = providers
        self.fallback = True

    def get_providers(self) -> list[str]:
        return self._providers

    def disable_fallback(self) -> None:
        self.fallback = False


class FakeOrt:
    """An onnxruntime whose CUDA provider starts only once its libraries are preloaded (or never)."""

    __version__ = "1.31.1"
    cuda_version = "13.0"

    def __init__(self, loads_after_preload: bool, has_preload: bool = True, raises: tuple[bool, bool] | None = None):
        self.loads_after_preload = loads_after_preload
        self.raises = raises  # (on CUDA, on the CPU): InferenceSession raises instead
        self.preloaded = False
        self.sessions: list[tuple[list, FakeSession]] = []
        if has_preload:
            self.preload_dlls = self._preload

    def _preload(self) -> None:
        self.preloaded = True

    def InferenceSession(
        self,
        model: bytes,
        options: object,
        providers: list,
        enable_fallback: int = 1,
        disabled_optimizers: list[str] | None = None,
    ) -> FakeSession:
        assert enable_fallback == (0 if len(providers) > 1 else 1)  # no quiet CPU session in place of a CUDA one
        assert disabled_optimizers == ["Pad_Fusion"]  # every session: _runtime.DISABLED_OPTIMIZERS
        wanted = [p[0] if isinstance(p, tuple) else p for p in providers]
        loads = self.preloaded and self.loads_after_preload
        if self.raises is not None and self.raises["CUDAExecutionProvider" not in wanted] and not loads:
            # ONNX Runtime's messages start with the C++ source location; the reason comes last.
            location = "/onnxruntime_src/onnxruntime/core/providers/cuda/cuda_execution_provider_info.cc:63 " * 5
            raise RuntimeError(location + ("Invalid device ID: 7" if len(wanted) > 1 else "Invalid model"))
        started = wanted if self.preloaded and self.loads_after_preload else ["CPUExecutionProvider"]
        session = FakeSession(started)
        self.sessions.append((providers, session))
        return session


@pytest.mark.parametrize(("setting", "spinning"), [(None, None), ("1", None), ("0", "0")])
def test_onnxtrain_spinning_0_turns_onnx_runtime_s_spinning_off(monkeypatch, setting, spinning):
    import onnxruntime

    if setting is None:
        monkeypatch.delenv("ONNXTRAIN_SPINNING", raising=False)  # tests/conftest.py sets it
    else:
        monkeypatch.setenv("ONNXTRAIN_SPINNING", setting)
    options = session_options(onnxruntime, 2)
    try:
        entry = options.get_session_config_entry("session.intra_op.allow_spinning")
    except RuntimeError:  # not set: ONNX Runtime's default, spinning
        entry = None
    assert entry == spinning and options.intra_op_num_threads == 2


def test_onnxtrain_spinning_takes_0_or_1(monkeypatch):
    import onnxruntime

    monkeypatch.setenv("ONNXTRAIN_SPINNING", "off")
    with pytest.raises(InvalidArgumentError, match=r"ONNXTRAIN_SPINNING expects \"0\" or \"1\"\. Received: 'off'"):
        session_options(onnxruntime, None)


def test_a_cpu_session_asks_for_the_cpu_provider_only():
    ort = FakeOrt(loads_after_preload=True)
    create_session(ort, b"model", None, Device("cpu"))
    assert [p for p, _ in ort.sessions] == [["CPUExecutionProvider"]] and not ort.preloaded


def test_a_cuda_provider_that_starts_after_preloading_its_libraries_is_used_and_cannot_fall_back():
    ort = FakeOrt(loads_after_preload=True)
    session = create_session(ort, b"model", None, Device("cuda", 1))
    assert ort.preloaded and len(ort.sessions) == 2
    assert ort.sessions[-1][0][0] == ("CUDAExecutionProvider", {"device_id": "1", "use_tf32": "0"})
    assert session.get_providers()[0] == "CUDAExecutionProvider"
    assert not session.fallback  # a failing CUDA run raises instead of moving to the CPU


@pytest.mark.parametrize("has_preload", [True, False])
def test_a_cuda_provider_that_does_not_start_is_an_error_not_a_quiet_cpu_session(has_preload):
    ort = FakeOrt(loads_after_preload=False, has_preload=has_preload)
    with pytest.raises(
        RuntimeSetupError,
        match=r"device='cuda:0': ONNX Runtime 1\.31\.1 has a CUDA provider but could not start it \(session "
        r"providers: \['CPUExecutionProvider'\];.*no GPU 0 \(`nvidia-smi -L`.*needs CUDA 13\.0 and cuDNN 9, which "
        r"`pip install onnxruntime-gpu\[cuda,cudnn\]`",
    ):
        create_session(ort, b"model", None, Device("cuda", 0))
    assert len(ort.sessions) == (2 if has_preload else 1)


def test_the_libraries_are_preloaded_once_a_process():
    ort = FakeOrt(loads_after_preload=False)
    for _ in range(2):
        with pytest.raises(RuntimeSetupError, match="could not start it"):
            create_session(ort, b"model", None, Device("cuda", 0))
    assert len(ort.sessions) == 3  # the second call does not preload and retry again


def test_a_cuda_provider_that_raises_until_its_libraries_are_preloaded_is_used():
    ort = FakeOrt(loads_after_preload=True, raises=(True, False))
    session = create_session(ort, b"model", None, Device("cuda", 0))
    assert ort.preloaded and session.get_providers()[0] == "CUDAExecutionProvider"


def test_a_cuda_session_that_raises_for_cuda_s_sake_is_a_setup_error_naming_onnx_runtime_s_reason():
    ort = FakeOrt(loads_after_preload=False, raises=(True, False))
    with pytest.raises(
        RuntimeSetupError,
        match=r"device='cuda:7': ONNX Runtime 1\.31\.1 could not start its CUDA provider \(RuntimeError: \.\.\..*"
        r"cuda_execution_provider_info\.cc:63 Invalid device ID: 7\)\. Either there is no GPU 7",
    ):
        create_session(ort, b"model", None, Device("cuda", 7))
    assert ort.preloaded  # tried with the libraries preloaded before giving up


def test_a_model_that_no_provider_loads_keeps_onnx_runtime_s_own_error():
    ort = FakeOrt(loads_after_preload=False, raises=(True, True))
    with pytest.raises(RuntimeError, match="Invalid device ID"):  # the caller wraps a bad model's error
        create_session(ort, b"model", None, Device("cuda", 0))


@pytest.mark.slow
def test_sessions_keep_onnx_runtime_s_warnings_off_the_user_s_stderr(tmp_path):
    """An imported graph whose Dropout ratio is unread at inference made ONNX Runtime print "Removing initializer
    ... It is not used" on compile, every predict and the export's: not the user's to act on. In a fresh process
    (a test process's earlier sessions may have quietened ONNX Runtime's default logger already)."""
    script = f"""
import numpy as np, onnx, onnxtrain
from onnx import TensorProto, helper, numpy_helper
graph = helper.make_graph(
    [helper.make_node("Dropout", ["x", "ratio"], ["h"]), helper.make_node("Gemm", ["h", "w", "b"], ["y"])],
    "unused",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
    [
        numpy_helper.from_array(np.ones((3, 2), np.float32), "w"),
        numpy_helper.from_array(np.zeros(2, np.float32), "b"),
        numpy_helper.from_array(np.array(0.5, np.float32), "ratio"),
    ],
)
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), r"{tmp_path / "m.onnx"}")
with onnxtrain.from_onnx(r"{tmp_path / "m.onnx"}") as model:
    model.compile(optimizer="sgd", loss="mse")
    assert np.allclose(model.predict(np.ones((4, 3), np.float32)), 3.0)
    model.export(r"{tmp_path / "out.onnx"}")
onnxtrain.InferenceModel.load(r"{tmp_path / "out.onnx"}").predict(np.ones((4, 3), np.float32))
print("done")
"""
    root = Path(__file__).parent.parent
    run = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "done", run.stderr
    assert "Removing initializer" not in run.stderr, run.stderr
