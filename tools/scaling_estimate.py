"""The scaling model of docs/scaling.md: when do more machines pay for a data-parallel fit? Prints the estimate
table (markdown) for 1-64 machines on 10 and 100 Gbit/s, for the tutorial MLP, the CNN and a 25M-parameter model.

    python tools/scaling_estimate.py [--mlp-ms 1.68,0.81] [--cnn-ms 20.0,10.5] [--latency-us 30]

One step of a global batch B on N machines takes

    T(N) = C(B / N) + R(N),   C(b) = c0 + c1 * b,
    R(N) = 2 * log2(N) * alpha + 2 * (N - 1) / N * S / bandwidth      (R(1) = 0)

C is one machine's forward, backward and update on b rows (c0 and c1 fitted to the step times measured at
b = B and b = B/2 by tools/bench_distributed.py); R is the packed all-reduce of S = 4 * (P + 2) bytes (P gradients,
the loss sum and the count) with MPI's reduce-scatter + all-gather (Rabenseifner), alpha the latency of one
message. The speed-up is T(1) / T(N). The 25M-parameter model has no measured step: its c1 is the MLP's per-row
cost scaled by the parameter count (a dense net's 6 * P flops per row), c0 the MLP's scaled likewise.
"""

from __future__ import annotations

import argparse
import math

MACHINES = (1, 2, 4, 8, 16, 32, 64)
BANDWIDTHS_GBIT = (10, 100)


def fit(batch: int, full_ms: float, half_ms: float) -> tuple[float, float]:
    """(c0, c1) in ms of C(b) = c0 + c1 * b through the times at b = batch and batch / 2 (c0 >= 0)."""
    c1 = (full_ms - half_ms) / (batch - batch / 2)
    c0 = max(0.0, full_ms - c1 * batch)
    return c0, (full_ms - c0) / batch


def step_ms(n: int, batch: int, c0: float, c1: float, parameters: int, gbit: float, latency_us: float) -> float:
    compute = c0 + c1 * batch / n
    if n == 1:
        return compute
    size = 4 * (parameters + 2)
    transfer = 2 * (n - 1) / n * size / (gbit * 1e9 / 8) * 1e3
    return compute + 2 * math.log2(n) * latency_us * 1e-3 + transfer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlp-ms", default="1.68,0.81", help="MLP step ms at batch 100 and 50, one process")
    parser.add_argument("--cnn-ms", default="20.0,10.5", help="CNN step ms at batch 100 and 50, one process")
    parser.add_argument("--latency-us", type=float, default=30.0, help="one message's latency (TCP: 20-50 us)")
    parser.add_argument("--big-batch", type=int, default=512, help="global batch of the 25M-parameter model")
    args = parser.parse_args()
    mlp = fit(100, *map(float, args.mlp_ms.split(",")))
    cnn = fit(100, *map(float, args.cnn_ms.split(",")))
    mlp_parameters, cnn_parameters, big_parameters = 266_610, 315_146, 25_000_000
    scale = big_parameters / mlp_parameters
    models = [
        ("tutorial MLP (266,610 parameters)", 100, mlp, mlp_parameters),
        ("CNN (315,146 parameters)", 100, cnn, cnn_parameters),
        ("25M-parameter dense model", args.big_batch, (mlp[0] * scale, mlp[1] * scale), big_parameters),
    ]
    print(f"Speed-up T(1)/T(N) of a step of B rows; alpha = {args.latency_us:g} us\n")
    header = " | ".join(f"N={n}" for n in MACHINES)
    print(f"| model (global batch B) | c0 ms, c1 ms/row | Gbit/s | {header} |")
    print("|---|---|---|" + "---|" * len(MACHINES))
    for name, batch, (c0, c1), parameters in models:
        for gbit in BANDWIDTHS_GBIT:
            one = step_ms(1, batch, c0, c1, parameters, gbit, args.latency_us)
            cells = " | ".join(
                f"{one / step_ms(n, batch, c0, c1, parameters, gbit, args.latency_us):.2f}" for n in MACHINES
            )
            print(f"| {name} (B={batch}) | {c0:.3f}, {c1:.4f} | {gbit} | {cells} |")


if __name__ == "__main__":
    main()
