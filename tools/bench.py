"""Side-by-side benchmark of the tutorial job: onnxtrain against PyTorch eager, JAX and Keras 3, on the real
Fashion-MNIST.

Each engine runs in its own process: the tutorial's 784-300-100-10 MLP with ReLU hidden layers and linear logits
(the tutorial's ReLU logits make accuracy depend on the seed, see tools/seed_study.py), He init, Adam 1e-3 eps 1e-7,
batch 100, per-epoch shuffle, softmax cross-entropy, 2 threads; engines alternate A/B/... within each of --repeats
rounds, and round r uses seed --seed + r for every engine, so the accuracy is a median over seeds, not one draw.
Reports per engine: fit s/epoch (median, min, max over repeats), training samples/s, test accuracy (median, min), peak
RSS, and `predict` on the 10,000 test images (samples/s; for onnxtrain also its inference session alone, without the
input checks); plus the ratio of medians, and the median of the per-round ratios, against PyTorch and against JAX.
Each worker ends by timing 300 train steps on one reused batch (no gather, metrics or progress): x 600 that is the
epoch's floor, and fit / bare is what the loop adds to it. Writes JSON and a markdown table.

Engines: onnxtrain's `auto` (what compile() picks by default), `ort-training`, `portable` (the fused update when
numba is installed, onnxtrain[fast]), `portable-graph` (the portable engine with the update in its ONNX graph,
ONNXTRAIN_FUSED_UPDATE=0) and `portable-unsplit` (never the split step, ONNXTRAIN_SPLIT_STEP=0); the peers `torch`
(PyTorch eager), `jax` (JAX + optax, the whole step one jitted call with donated buffers; its compile time is kept
apart, as onnxtrain's compile() is) and `keras-jax` (Keras 3's model.fit on the JAX backend, its first epoch's
compiling included). The peers run tools/bench_peers/*_peer.py in their own virtual environments, start from the
same initial weights (drawn with numpy), and never import onnxtrain:

    bash tools/peer_venvs.sh     # ../venv-torch (torch 2.13.0), ../venv-jax (jax[cpu] 0.10.2, optax, keras)
    python tools/bench.py --engines auto,ort-training,torch,jax,keras-jax \
        --torch-python ../venv-torch/bin/python --jax-python ../venv-jax/bin/python

A peer's flag may be left out when this interpreter imports its framework. An engine may name the interpreter its
worker runs on, `ENGINE@PYTHON`: `portable@/tmp/venv312/bin/python` runs the portable engine on that Python and its
onnxruntime (onnxtrain imports from this checkout there). The table names each row's runtime and Python version.
To compare two versions of onnxtrain in one run, name an interpreter wrapper that sets PYTHONPATH to the other
checkout (`auto,auto@/tmp/base-python`, where the wrapper runs `PYTHONPATH=/tmp/base exec .venv/bin/python "$@"`);
a second row of the same engine and runtime is labelled with its interpreter.

`--model cnn` (issue 20) trains a LeNet-style CNN instead (Conv2D 32 3x3 same, MaxPool 2, Conv2D 64 3x3 valid,
MaxPool 2, Dense 128, Dropout --dropout, Dense 10) and writes bench-cnn.json/.md. onnxtrain's engines build it from
onnxtrain.layers.Conv2D, MaxPooling2D and Dropout; a checkout without them stops before the first round, naming the
missing ones, and `--engines torch,jax,keras-jax` runs the peers alone.

Usage: python tools/bench.py [--repeats 3] [--epochs 10] [--engines ENGINE[@PYTHON],...] [--model mlp|cnn]
    [--dropout 0.5] [--torch-python PATH] [--jax-python PATH] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve()
PEER_FOLDER = HERE.parent / "bench_peers"
THREADS = 2
ONNXTRAIN_ENGINES = ("auto", "ort-training", "portable", "portable-graph", "portable-unsplit")
# compile(engine=...) per benchmark engine; portable-graph and -unsplit differ from portable by their environment
COMPILE_ENGINE = {
    "auto": None,
    "ort-training": "ort-training",
    "portable": "portable",
    "portable-graph": "portable",
    "portable-unsplit": "portable",
}
ENVIRONMENT = {"portable-graph": {"ONNXTRAIN_FUSED_UPDATE": "0"}, "portable-unsplit": {"ONNXTRAIN_SPLIT_STEP": "0"}}
MODELS = ("mlp", "cnn")
BASELINES = ("torch", "jax")  # the speed-up columns, in this order
VENVS = "bash tools/peer_venvs.sh makes both (../venv-torch and ../venv-jax beside this checkout)"


@dataclass(frozen=True)
class Peer:
    """A reference framework's worker: its script in tools/bench_peers, the flag naming its interpreter, and the
    modules that interpreter must import."""

    script: str
    flag: str
    modules: tuple[str, ...]


PEERS = {
    "torch": Peer("torch_peer.py", "--torch-python", ("numpy", "torch")),
    "jax": Peer("jax_peer.py", "--jax-python", ("numpy", "jax", "optax")),
    "keras-jax": Peer("keras_peer.py", "--jax-python", ("numpy", "jax", "keras")),
}
ENGINES = (*ONNXTRAIN_ENGINES, *PEERS)
# What a worker's last stdout line must hold (the peers' _harness.report writes it).
RESULT_KEYS = ("epoch_times", "accuracy", "predict_s", "bare_step_s", "peak_rss_mib", "runtime")


# --- workers (run in child processes) -----------------------------------------------------------------------
def worker_onnxtrain(
    data: Path, epochs: int, engine: str, seed: int, model_name: str = "mlp", dropout: float = 0.0
) -> dict:
    import platform
    import time

    import numpy as np
    import onnxruntime
    from _tutorial import cnn_layers, tutorial_layers

    sys.path.insert(0, str(PEER_FOLDER))  # the bare step and peak RSS measured as the peers measure them
    import _harness

    from onnxtrain import Callback, Sequential
    from onnxtrain.losses import Losses
    from onnxtrain.metrics import Metrics
    from onnxtrain.optimizers import Adam

    x, y = np.load(data / "x_train.npy"), np.load(data / "y_train.npy")
    xt, yt = np.load(data / "x_test.npy"), np.load(data / "y_test.npy")
    layers = cnn_layers(dropout) if model_name == "cnn" else tutorial_layers()
    model = Sequential(layers, seed=seed)
    with model:
        options = {"engine": COMPILE_ENGINE[engine]} if COMPILE_ENGINE[engine] else {}
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
        # Private: there is no public handle on predict's session (tools/README.md, "Private access").
        session = model._trainer._session()

        def session_only() -> None:
            outputs = [session.run(["logits"], {"input": xt[s : s + 1024]})[0] for s in range(0, len(xt), 1024)]
            np.concatenate(outputs).argmax(1)

        update = _update(model)  # before the model closes
        if engine == "auto":  # private: the engine compile() resolved "auto" to has no public name
            update += f", runs {model._trainer.compiled.engine}"
        predict_times, session_times = [], []
        for _ in range(3):
            for run, times in ((lambda: model.predict(xt), predict_times), (session_only, session_times)):
                started = time.perf_counter()
                run()
                times.append(time.perf_counter() - started)
        # private: a compiled model's engine (its train_step) has no public handle
        engine_, xb, yb = model._trainer.engine, np.ascontiguousarray(x[:100]), np.ascontiguousarray(y[:100])
        bare_step_s = _harness.bare_step_s(lambda: engine_.train_step(xb, yb))  # last: it changes the weights
    return {
        "epoch_times": epoch_times,
        "fit_s": fit_seconds,
        "accuracy": float(accuracy),
        "predict_s": min(predict_times),
        "session_predict_s": min(session_times),
        "bare_step_s": bare_step_s,
        "peak_rss_mib": _harness.peak_rss_mib(),
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

    shares = engine._shares  # private: how many shares the split step cuts a batch into (1: unsplit)
    split = f", split step ({shares} shares)" if shares > 1 else ""
    return f", fused update (numba {numba.__version__}){split}"


# --- driver -------------------------------------------------------------------------------------------------
def export_data(directory: Path, subset: int | None = None) -> int:
    """Fashion-MNIST as .npy files every worker reads: x (N, 28, 28, 1) float32 in [0, 1], y int64; the first
    `subset` training images only when given. Returns the number of training images.
    """
    import numpy as np
    from _tutorial import tutorial_data

    train, test = tutorial_data()
    np.save(directory / "x_train.npy", train.x[:subset])
    np.save(directory / "y_train.npy", train.y[:subset])
    np.save(directory / "x_test.npy", test.x)
    np.save(directory / "y_test.npy", test.y)
    return len(train.x[:subset])


def parse_engine(spec: str, torch_python: str | None = None, jax_python: str | None = None) -> tuple[str, str]:
    """`ENGINE` or `ENGINE@PYTHON` -> (engine, the interpreter that runs its worker).

    A peer without @PYTHON runs on its flag's interpreter (--torch-python, --jax-python), else on this one if it
    imports the peer's modules; otherwise the benchmark stops here, before any round, naming the flag.
    """
    engine, _, python = spec.partition("@")
    if engine not in ENGINES:
        raise SystemExit(f"--engines: unknown engine {engine!r} in {spec!r}; expected one of {list(ENGINES)}")
    if python:
        return engine, python
    if engine not in PEERS:
        return engine, sys.executable
    peer = PEERS[engine]
    given = torch_python if peer.flag == "--torch-python" else jax_python
    if given:
        return engine, given
    missing = [m for m in peer.modules if importlib.util.find_spec(m) is None]
    if not missing:
        return engine, sys.executable
    raise SystemExit(
        f"--engines {engine} needs {peer.flag} PATH, an interpreter that imports {', '.join(peer.modules)}: this one"
        f" ({sys.executable}) lacks {', '.join(missing)}. {VENVS}."
    )


def check_interpreter(engine: str, python: str) -> None:
    """Stop before the first round when `python` cannot run `engine`'s peer worker."""
    peer = PEERS[engine]
    if shutil.which(python) is None:
        raise SystemExit(f"{peer.flag} {python}: no such interpreter (for engine {engine}). {VENVS}.")
    done = subprocess.run(
        [python, "-c", f"import {', '.join(peer.modules)}"],
        capture_output=True,
        text=True,
        env=peer_environment(),
        timeout=600,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise SystemExit(
            f"{peer.flag} {python} cannot run engine {engine}: importing {', '.join(peer.modules)} failed with"
            f" {last}. {VENVS}."
        )


def check_model(engines: dict[str, tuple[str, str]], model_name: str, dropout: float) -> None:
    """Stop before the first round when an onnxtrain engine cannot build `model_name` (the CNN's layers)."""
    onnxtrain_specs = [spec for spec, (engine, _) in engines.items() if engine in ONNXTRAIN_ENGINES]
    if model_name != "cnn" or not onnxtrain_specs:
        return
    from _tutorial import cnn_layers

    try:
        cnn_layers(dropout)
    except ImportError as e:
        raise SystemExit(f"--model cnn with engine(s) {', '.join(onnxtrain_specs)}: {e}") from e


def peer_environment() -> dict[str, str]:
    # No PYTHONPATH to this checkout: a peer must not import onnxtrain. JAX on the CPU, as the other engines run.
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**environment, "OMP_NUM_THREADS": str(THREADS), "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}


def worker_command(
    engine: str, python: str, data: Path, epochs: int, seed: int, model_name: str, dropout: float
) -> list[str]:
    common = ["--data", str(data), "--epochs", str(epochs), "--seed", str(seed), "--model", model_name]
    common += ["--dropout", str(dropout if model_name == "cnn" else 0.0)]
    if engine in PEERS:
        return [python, str(PEER_FOLDER / PEERS[engine].script), *common, "--threads", str(THREADS)]
    return [python, str(HERE), "--worker", engine, *common]


def run_worker(
    python: str, engine: str, data: Path, epochs: int, seed: int, model_name: str = "mlp", dropout: float = 0.0
) -> dict:
    if engine in PEERS:
        env = peer_environment()
    else:
        # PYTHONPATH: an interpreter without onnxtrain installed (another Python, another onnxruntime) uses this
        # checkout.
        path = os.pathsep.join(p for p in (str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "PYTHONPATH": path}
        env.update(ENVIRONMENT.get(engine, {}))
    command = worker_command(engine, python, data, epochs, seed, model_name, dropout)
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{engine} worker failed:\n{done.stderr[-3000:]}")
    return parse_worker_output(engine, done.stdout)


def parse_worker_output(engine: str, stdout: str) -> dict:
    """A worker's result: the JSON object on its last non-empty stdout line, with every key of RESULT_KEYS."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        tail = "\n".join(lines[-5:]) or "(nothing)"
        raise SystemExit(
            f"{engine} worker printed no result (a JSON object as its last stdout line); it printed:\n{tail}"
        )
    missing = [key for key in RESULT_KEYS if key not in result]
    if missing or not result["epoch_times"]:
        raise SystemExit(
            f"{engine} worker's result lacks {missing or ['epoch_times (empty)']}; expected the keys"
            f" {list(RESULT_KEYS)}. Received: {lines[-1][:500]}"
        )
    return result


def summarize(runs: list[dict], train_samples: int = 60000) -> dict:
    # Whole fit time over epochs: onnxtrain's one-time input checks count (torch has none to count).
    per_epoch = [r.get("fit_s", sum(r["epoch_times"])) / len(r["epoch_times"]) for r in runs]
    median = statistics.median(per_epoch)
    return {
        "fit_s_per_epoch": {"median": median, "min": min(per_epoch), "max": max(per_epoch), "rounds": per_epoch},
        "train_samples_per_s": train_samples / median,
        # an epoch of bare steps (600 for the full set): the same steps without the loop's work
        "bare_step_s_per_epoch": statistics.median(train_samples // 100 * r["bare_step_s"] for r in runs),
        "accuracy": statistics.median(r["accuracy"] for r in runs),
        "accuracy_min": min(r["accuracy"] for r in runs),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "predict_samples_per_s": statistics.median(10000 / r["predict_s"] for r in runs),
        "session_predict_samples_per_s": (
            statistics.median(10000 / r["session_predict_s"] for r in runs) if "session_predict_s" in runs[0] else None
        ),
        "runs": runs,
    }


def engine_of(label: str) -> str:
    """The engine a result label names: "torch (torch 2.13.0, Python 3.11.7)" -> "torch"."""
    return label.split(" ", 1)[0]


def machine() -> str:
    """The CPU the benchmark ran on, for the table: its model name, cores and widest vector extension. The ratios
    between engines depend on it: a GEMM-bound step gains more from AVX-512 in one library than in another."""
    import platform

    flags: set[str] = set()
    name = platform.processor() or platform.machine()
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: the name platform gives
        cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.split("\n\n")[0].splitlines():  # the first logical CPU's fields
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    if "model name" in fields:  # a hypervisor may give only "AMD EPYC": the family and model tell its generation
        name = f"{fields['model name']} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"
    flags = set(fields.get("flags", "").split())
    vector = next((ext.upper() for ext in ("avx512f", "avx2", "avx", "neon", "asimd") if ext in flags), "unknown")
    vector = vector.replace("AVX512F", "AVX-512")
    return f"{name}, {os.cpu_count()} logical cores, widest vectors: {vector}"


def table(results: dict[str, dict]) -> str:
    """The markdown table: a row per engine, and a pair of speed-up columns per baseline (torch, jax) it holds."""
    baselines = {
        name: next(r["fit_s_per_epoch"] for label, r in results.items() if engine_of(label) == name)
        for name in BASELINES
        if any(engine_of(label) == name for label in results)
    }
    header = (
        "| engine | fit s/epoch median (min-max) | train samples/s | test accuracy median (min) | peak RSS MiB |"
        " predict samples/s | of which ORT session alone |"
    )
    for name in baselines:
        header += f" speed-up vs {name} (fit) | per-round speed-up vs {name}, median (min-max) |"
    header += " bare step x 600, s (fit / bare) |"
    lines = [header, "|---" * header.count(" |") + "|"]
    for engine, r in results.items():
        fit = r["fit_s_per_epoch"]
        session = f"{r['session_predict_samples_per_s']:,.0f}" if r["session_predict_samples_per_s"] else "—"
        row = (
            f"| {engine} | {fit['median']:.3f} ({fit['min']:.3f}-{fit['max']:.3f}) | {r['train_samples_per_s']:,.0f} |"
            f" {r['accuracy']:.4f} ({r['accuracy_min']:.4f}) | {r['peak_rss_mib']:.0f} |"
            f" {r['predict_samples_per_s']:,.0f} | {session} |"
        )
        for baseline in baselines.values():
            # Round r of every engine ran back to back with the same seed: each round's ratio cancels most of the
            # machine's drift between rounds.
            rounds = [b / e for b, e in zip(baseline["rounds"], fit["rounds"], strict=True)]
            row += (
                f" {baseline['median'] / fit['median']:.2f}x |"
                f" {statistics.median(rounds):.2f}x ({min(rounds):.2f}-{max(rounds):.2f}) |"
            )
        row += f" {r['bare_step_s_per_epoch']:.3f} ({fit['median'] / r['bare_step_s_per_epoch']:.2f}x) |"
        lines.append(row)
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--engines",
        default="ort-training,torch",
        help=f"comma-separated ENGINE or ENGINE@PYTHON, of {', '.join(ENGINES)}; e.g. portable@.venv313/bin/python:"
        " that worker runs on that interpreter and its onnxruntime",
    )
    parser.add_argument("--model", choices=MODELS, default="mlp", help="the tutorial MLP, or issue 20's CNN")
    parser.add_argument("--dropout", type=float, default=0.5, help="the CNN's dropout rate, 0 for none (--model cnn)")
    parser.add_argument("--torch-python", help="interpreter with torch for the torch engine (default: this one)")
    parser.add_argument(
        "--jax-python", help="interpreter with jax[cpu], optax and keras for jax and keras-jax (default: this one)"
    )
    parser.add_argument(
        "--subset",
        type=int,
        help="train on the first N training images only, a multiple of 100 (smoke runs: the numbers are not the"
        " benchmark's)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--seed", type=int, default=12, help="round r uses seed + r (every engine the same)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.epochs < 1:
        parser.error(f"--repeats and --epochs expect positive ints. Received: {args.repeats}, {args.epochs}")
    if args.subset is not None and (args.subset < 100 or args.subset % 100):
        parser.error(f"--subset expects a positive multiple of the batch size, 100. Received: {args.subset}")
    if not 0 <= args.dropout < 1:
        parser.error(f"--dropout expects a rate in [0, 1). Received: {args.dropout}")
    return args


def labelled(engines: dict[str, tuple[str, str]], runs: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Each spec's runs under its row label, "ENGINE (RUNTIME)". The same engine on a second interpreter of the same
    runtime (a wrapper that puts another checkout on PYTHONPATH, to compare code side by side) adds the interpreter:
    "ENGINE (RUNTIME) [PYTHON]"."""
    rows: dict[str, list[dict]] = {}
    for spec, spec_runs in runs.items():
        engine, python = engines[spec]
        label = f"{engine} ({spec_runs[0]['runtime']})"
        rows[label if label not in rows else f"{label} [{python}]"] = spec_runs
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker_onnxtrain(args.data, args.epochs, args.worker, args.seed, args.model, args.dropout)))
        return

    specs = [spec for spec in (e.strip() for e in args.engines.split(",")) if spec]
    engines = {spec: parse_engine(spec, args.torch_python, args.jax_python) for spec in specs}
    for engine, python in dict.fromkeys(engines.values()):  # each interpreter once, before any round
        if engine in PEERS:
            check_interpreter(engine, python)
    check_model(engines, args.model, args.dropout)
    runs: dict[str, list[dict]] = {spec: [] for spec in engines}
    with tempfile.TemporaryDirectory(prefix="onnxtrain-bench-") as tmp:
        data = Path(tmp)
        train_samples = export_data(data, args.subset)
        for repeat in range(args.repeats):
            for spec, (engine, python) in engines.items():  # alternate engines within each repeat
                seed = args.seed + repeat
                runs[spec].append(run_worker(python, engine, data, args.epochs, seed, args.model, args.dropout))
                last = runs[spec][-1]
                print(
                    f"repeat {repeat + 1}/{args.repeats} {spec}: {statistics.mean(last['epoch_times']):.3f} s/epoch, "
                    f"accuracy {last['accuracy']:.4f}",
                    flush=True,
                )
    results = {label: summarize(r, train_samples) for label, r in labelled(engines, runs).items()}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "bench" if args.model == "mlp" else f"bench-{args.model}"
    (args.out / f"{stem}.json").write_text(json.dumps({"machine": machine(), **results}, indent=2) + "\n")
    markdown = f"Machine: {machine()}\n\n{table(results)}"
    (args.out / f"{stem}.md").write_text(markdown + "\n")
    print(markdown)
    print(f"\nwrote {args.out / f'{stem}.json'} and {args.out / f'{stem}.md'}")


if __name__ == "__main__":
    main()
