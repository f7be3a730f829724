"""Side-by-side benchmark of the tutorial job: onnxtrain against PyTorch eager, on the real Fashion-MNIST.

Each engine runs in its own process: the tutorial's 784-300-100-10 MLP with ReLU hidden layers and linear logits
(the tutorial's ReLU logits make accuracy depend on the seed, see tools/seed_study.py), He init, Adam 1e-3 eps 1e-7,
batch 100, per-epoch shuffle, 2 threads; engines alternate A/B/... within each of --repeats rounds, and round r uses
seed --seed + r for every engine, so the accuracy is a median over seeds, not one draw. Reports per engine: fit
s/epoch (median, min, max over repeats), training samples/s, test accuracy (median, min), peak RSS, and `predict`
on the 10,000 test images (samples/s; for onnxtrain also its inference session alone, without the input checks);
plus the ratio of medians against PyTorch. Each worker ends by timing 300 train steps on one reused batch (no
gather, metrics or progress): x 600 that is the epoch's floor, and fit / bare is what the loop adds to it. Writes
JSON and a markdown table.

PyTorch is a bench-only dependency: `python -m venv .venv-torch && .venv-torch/bin/pip install torch==2.13.0 numpy`,
then pass `--torch-python .venv-torch/bin/python` (default: this interpreter if it can import torch).

`portable` takes the fused update when numba is installed (onnxtrain[fast]); `portable-graph` is the portable engine
with the update in its ONNX graph (ONNXTRAIN_FUSED_UPDATE=0), for the comparison in one run.

An engine may name the interpreter its worker runs on, `ENGINE@PYTHON`: `portable@/tmp/venv312/bin/python` runs the
portable engine on that Python and its onnxruntime (onnxtrain imports from this checkout there). The table names
each row's onnxruntime (or torch) and Python version.

Usage: python tools/bench.py [--repeats 3] [--epochs 10] [--engines ort-training,portable@PYTHON,torch] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
THREADS = 2
ENGINES = ("ort-training", "portable", "portable-graph", "torch")


# --- workers (run in child processes) -----------------------------------------------------------------------
def _bare_step_s(step, warmup: int = 50, steps: int = 300) -> float:
    """Seconds per call of `step()`: one train step on one reused batch, the floor a fit loop adds its work to
    (the issue's "bare ORT training step": no gather, no metrics, no progress, the batch in cache).
    """
    import time

    for _ in range(warmup):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_onnxtrain(data: Path, epochs: int, engine: str, seed: int) -> dict:
    import platform
    import time

    import numpy as np
    import onnxruntime

    from onnxtrain import Callback, Sequential
    from onnxtrain.layers import Dense, Flatten, Input
    from onnxtrain.losses import Losses
    from onnxtrain.metrics import Metrics
    from onnxtrain.optimizers import Adam

    x, y = np.load(data / "x_train.npy"), np.load(data / "y_train.npy")
    xt, yt = np.load(data / "x_test.npy"), np.load(data / "y_test.npy")
    layers = (Input(28, 28, 1), Flatten(), Dense(300), Dense(100), Dense(10, activation="linear"))
    model = Sequential.of(*layers, seed=seed)
    with model:
        options = {} if engine == "ort-training" else {"engine": "portable"}  # portable or portable-graph
        model.compile(
            optimizer=Adam(),
            loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS,
            metric=Metrics.ACCURACY,
            threads=THREADS,
            **options,
        )
        epoch_times: list[float] = []

        class EpochTimer(Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                epoch_times.append(time.perf_counter() - self.started)

        # One fit call, as the tutorial makes; its one-time input checks are spread over the epochs.
        started = time.perf_counter()
        model.fit((x, y), epochs=epochs, batch_size=100, verbose=0, callbacks=[EpochTimer()])
        fit_seconds = time.perf_counter() - started
        accuracy = model.evaluate((xt, yt), batch_size=100).metrics[Metrics.ACCURACY]
        model.predict(xt[:1000])  # warm-up: builds the inference session
        # The same batches through the inference session alone (no input checks): what `predict` adds to ORT.
        session = model._trainer._session()

        def session_only() -> None:
            outputs = [session.run(["logits"], {"input": xt[s : s + 1024]})[0] for s in range(0, len(xt), 1024)]
            np.concatenate(outputs).argmax(1)

        update = _update(model)  # before the model closes
        predict_times, session_times = [], []
        for _ in range(3):
            for run, times in ((lambda: model.predict(xt), predict_times), (session_only, session_times)):
                started = time.perf_counter()
                run()
                times.append(time.perf_counter() - started)
        engine_, xb, yb = model._trainer.engine, np.ascontiguousarray(x[:100]), np.ascontiguousarray(y[:100])
        bare_step_s = _bare_step_s(lambda: engine_.train_step(xb, yb))  # last: it changes the weights
    return {
        "epoch_times": epoch_times,
        "fit_s": fit_seconds,
        "accuracy": float(accuracy),
        "predict_s": min(predict_times),
        "session_predict_s": min(session_times),
        "bare_step_s": bare_step_s,
        "peak_rss_mib": _peak_rss_mib(),
        "runtime": f"onnxruntime {onnxruntime.__version__}, Python {platform.python_version()}{update}",
    }


def _update(model) -> str:
    """How the portable engine updates the weights, for the table: its fused kernel (numba's version) or the graph."""
    engine = model._trainer.engine
    if not hasattr(engine, "fused"):
        return ""
    if not engine.fused:
        return ", update in the graph"
    import numba

    return f", fused update (numba {numba.__version__})"


def worker_torch(data: Path, epochs: int, seed: int) -> dict:
    import math
    import platform
    import time

    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(THREADS)
    torch.manual_seed(seed)
    x = torch.from_numpy(np.load(data / "x_train.npy"))
    y = torch.from_numpy(np.load(data / "y_train.npy"))
    xt = torch.from_numpy(np.load(data / "x_test.npy"))
    yt = torch.from_numpy(np.load(data / "y_test.npy"))
    layers = [nn.Linear(784, 300), nn.Linear(300, 100), nn.Linear(100, 10)]
    for layer in layers:  # KotlinDL's defaults: HeNormal (truncated) kernel, HeUniform bias
        fan_in = layer.in_features
        std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
        nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
        limit = math.sqrt(6.0 / fan_in)
        nn.init.uniform_(layer.bias, -limit, limit)
    model = nn.Sequential(nn.Flatten(), layers[0], nn.ReLU(), layers[1], nn.ReLU(), layers[2])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    epoch_times = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(x))
        correct = 0
        for start in range(0, len(x), 100):
            index = order[start : start + 100]
            xb, yb = x[index], y[index]
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            optimizer.step()
            correct += int((logits.argmax(1) == yb).sum())  # the same per-batch metric work onnxtrain does
        epoch_times.append(time.perf_counter() - started)
    model.eval()
    with torch.no_grad():
        accuracy = float((model(xt).argmax(1) == yt).float().mean())
        model(xt[:1000])
        predict_times = []
        for _ in range(3):
            started = time.perf_counter()
            torch.cat([model(xt[s : s + 1024]).argmax(1) for s in range(0, len(xt), 1024)])
            predict_times.append(time.perf_counter() - started)
    model.train()
    xb, yb = x[:100].clone(), y[:100].clone()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(xb), yb).backward()
        optimizer.step()

    bare_step_s = _bare_step_s(step)
    return {
        "epoch_times": epoch_times,
        "accuracy": accuracy,
        "predict_s": min(predict_times),
        "bare_step_s": bare_step_s,
        "peak_rss_mib": _peak_rss_mib(),
        "runtime": f"torch {torch.__version__}, Python {platform.python_version()}",
    }


# --- driver -------------------------------------------------------------------------------------------------
def export_data(directory: Path) -> None:
    import numpy as np

    from onnxtrain.datasets import fashion_mnist

    train, test = fashion_mnist()
    np.save(directory / "x_train.npy", train.x)
    np.save(directory / "y_train.npy", train.y)
    np.save(directory / "x_test.npy", test.x)
    np.save(directory / "y_test.npy", test.y)


def parse_engine(spec: str, torch_python: str) -> tuple[str, str]:
    """`ENGINE` or `ENGINE@PYTHON` -> (engine, the interpreter that runs its worker)."""
    engine, _, python = spec.partition("@")
    if engine not in ENGINES:
        raise SystemExit(f"--engines: unknown engine {engine!r} in {spec!r}; expected one of {list(ENGINES)}")
    return engine, python or (torch_python if engine == "torch" else sys.executable)


def run_worker(python: str, engine: str, data: Path, epochs: int, seed: int) -> dict:
    # PYTHONPATH: an interpreter without onnxtrain installed (another Python, another onnxruntime) uses this checkout.
    path = os.pathsep.join(p for p in (str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "PYTHONPATH": path}
    if engine == "portable-graph":
        env["ONNXTRAIN_FUSED_UPDATE"] = "0"
    command = [python, str(HERE), "--worker", engine, "--data", str(data), "--epochs", str(epochs), "--seed", str(seed)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{engine} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict]) -> dict:
    # Whole fit time over epochs: onnxtrain's one-time input checks count (torch has none to count).
    per_epoch = [r.get("fit_s", sum(r["epoch_times"])) / len(r["epoch_times"]) for r in runs]
    median = statistics.median(per_epoch)
    return {
        "fit_s_per_epoch": {"median": median, "min": min(per_epoch), "max": max(per_epoch), "rounds": per_epoch},
        "train_samples_per_s": 60000 / median,
        # 600 bare steps: an epoch of the same steps without the loop's work
        "bare_step_s_per_epoch": statistics.median(600 * r["bare_step_s"] for r in runs),
        "accuracy": statistics.median(r["accuracy"] for r in runs),
        "accuracy_min": min(r["accuracy"] for r in runs),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "predict_samples_per_s": statistics.median(10000 / r["predict_s"] for r in runs),
        "session_predict_samples_per_s": (
            statistics.median(10000 / r["session_predict_s"] for r in runs) if "session_predict_s" in runs[0] else None
        ),
        "runs": runs,
    }


def table(results: dict[str, dict]) -> str:
    lines = [
        "| engine | fit s/epoch median (min-max) | train samples/s | test accuracy median (min) | peak RSS MiB |"
        " predict samples/s | of which ORT session alone |"
        " speed-up vs torch (fit) | per-round speed-up median (min-max) | bare step x 600, s (fit / bare) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    torch_fit = next((r["fit_s_per_epoch"] for name, r in results.items() if name.startswith("torch")), None)
    for engine, r in results.items():
        fit = r["fit_s_per_epoch"]
        ratio = paired = "—"
        if torch_fit:
            ratio = f"{torch_fit['median'] / fit['median']:.2f}x"
            # Round r of every engine ran back to back with the same seed: each round's ratio cancels most of the
            # machine's drift between rounds.
            rounds = [t / e for t, e in zip(torch_fit["rounds"], fit["rounds"], strict=True)]
            paired = f"{statistics.median(rounds):.2f}x ({min(rounds):.2f}-{max(rounds):.2f})"
        session = f"{r['session_predict_samples_per_s']:,.0f}" if r["session_predict_samples_per_s"] else "—"
        lines.append(
            f"| {engine} | {fit['median']:.3f} ({fit['min']:.3f}-{fit['max']:.3f}) | {r['train_samples_per_s']:,.0f} |"
            f" {r['accuracy']:.4f} ({r['accuracy_min']:.4f}) | {r['peak_rss_mib']:.0f} |"
            f" {r['predict_samples_per_s']:,.0f} | {session} | {ratio} | {paired} |"
            f" {r['bare_step_s_per_epoch']:.3f} ({fit['median'] / r['bare_step_s_per_epoch']:.2f}x) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--engines",
        default="ort-training,torch",
        help="comma-separated ENGINE or ENGINE@PYTHON (ort-training, portable, portable-graph, torch), e.g."
        " portable@.venv313/bin/python: that worker runs on that interpreter and its onnxruntime",
    )
    parser.add_argument("--torch-python", default=sys.executable)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--seed", type=int, default=12, help="round r uses seed + r (every engine the same)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        result = (
            worker_torch(args.data, args.epochs, args.seed)
            if args.worker == "torch"
            else worker_onnxtrain(args.data, args.epochs, args.worker, args.seed)
        )
        print(json.dumps(result))
        return

    engines = {
        spec: parse_engine(spec, args.torch_python) for spec in (e.strip() for e in args.engines.split(",")) if spec
    }
    runs: dict[str, list[dict]] = {spec: [] for spec in engines}
    with tempfile.TemporaryDirectory(prefix="onnxtrain-bench-") as tmp:
        data = Path(tmp)
        export_data(data)
        for repeat in range(args.repeats):
            for spec, (engine, python) in engines.items():  # alternate engines within each repeat
                runs[spec].append(run_worker(python, engine, data, args.epochs, args.seed + repeat))
                last = runs[spec][-1]
                print(
                    f"repeat {repeat + 1}/{args.repeats} {spec}: {statistics.mean(last['epoch_times']):.3f} s/epoch, "
                    f"accuracy {last['accuracy']:.4f}",
                    flush=True,
                )
    results = {f"{engines[spec][0]} ({r[0]['runtime']})": summarize(r) for spec, r in runs.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = table(results)
    (args.out / "bench.md").write_text(markdown + "\n")
    print(markdown)
    print(f"\nwrote {args.out / 'bench.json'} and {args.out / 'bench.md'}")


if __name__ == "__main__":
    main()
