"""Runtime detection: one onnxruntime flavour per environment, and device strings."""

from __future__ import annotations

import pytest

from onnxtrain._runtime import Device, check_single_flavour, installed_flavours, resolve_device
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
