"""How fast the tutorial MLP's two big matrix products run alone, operands hot in cache: X W (100x784 by 784x300,
the first layer's forward) and X^T dZ (its weight gradient), on 2 threads, in ONNX Runtime's Gemm and, where the
interpreter has it, PyTorch's `torch.mm`. The step's floor: a fit step cannot be faster than these two.

Usage: python tools/bench_gemm.py [--threads 2] [--repeats 2000]
       ../venv-torch/bin/python tools/bench_gemm.py     (PyTorch's figures; ONNX Runtime's too if it is installed)
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable

import numpy as np

BATCH, INPUTS, UNITS = 100, 784, 300


def microseconds(run: Callable[[], object], repeats: int) -> float:
    for _ in range(50):
        run()
    started = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - started) / repeats * 1e6


def onnxruntime_products(x: np.ndarray, w: np.ndarray, dz: np.ndarray, threads: int, repeats: int) -> None:
    import onnxruntime
    from onnx import TensorProto, helper

    for name, (a, b), trans_a in (("X W", (x, w), 0), ("X^T dZ", (x, dz), 1)):
        graph = helper.make_graph(
            [helper.make_node("Gemm", ["a", "b"], ["y"], transA=trans_a)],
            "gemm",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, v.shape) for n, v in (("a", a), ("b", b))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        binding = session.io_binding()
        binding.bind_cpu_input("a", a)
        binding.bind_cpu_input("b", b)
        binding.bind_output("y")
        report(
            f"onnxruntime {onnxruntime.__version__} Gemm {name}", microseconds(binding_run(session, binding), repeats)
        )


def torch_products(x: np.ndarray, w: np.ndarray, dz: np.ndarray, threads: int, repeats: int) -> None:
    import torch

    torch.set_num_threads(threads)
    tx, tw, tdz = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(dz)
    for name, run in (("X W", lambda: tx @ tw), ("X^T dZ", lambda: tx.T @ tdz)):
        report(f"torch {torch.__version__} mm {name}", microseconds(run, repeats))


def binding_run(session: object, binding: object) -> Callable[[], object]:
    return lambda: session.run_with_iobinding(binding)  # type: ignore[attr-defined]


def report(label: str, us: float) -> None:
    print(f"{label}: {us:.0f} us ({2 * BATCH * INPUTS * UNITS / us / 1e3:.0f} GFLOP/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, INPUTS), dtype=np.float32)
    w, dz = rng.random((INPUTS, UNITS), dtype=np.float32), rng.random((BATCH, UNITS), dtype=np.float32)
    found = False
    for module, products in (("onnxruntime", onnxruntime_products), ("torch", torch_products)):
        if importlib.util.find_spec(module) is not None:
            products(x, w, dz, args.threads, args.repeats)
            found = True
    if not found:
        raise SystemExit("bench_gemm: neither onnxruntime nor torch is installed in this interpreter")


if __name__ == "__main__":
    main()
