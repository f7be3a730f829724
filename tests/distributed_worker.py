"""One process of the data-parallel equivalence runs of tests/test_distributed.py.

    mpiexec -n 2 python -m mpi4py tests/distributed_worker.py ENGINE OUTPUT_DIR

runs every scenario of `SCENARIOS` in turn, training the tiny MLP of `build` on `data()`, and writes each
process's final weights, and the name of the error fit raised if any, to OUTPUT_DIR/<scenario>.rank<R>.npz. The
test runs the same scenarios in its own process, alone (`run(..., world=None)`), as the reference.

The "batchnorm" scenario (portable engine) trains the BatchNormalization MLP of `batchnorm_model` and also writes
each process's predictions (`predictions.rank<R>.npy`); its reference is `averaged_shares`, which derives the
data-parallel run from one-process steps on each process's rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import onnxtrain.distributed as dist
from onnxtrain import Sequential, load_model, losses
from onnxtrain.errors import NonFiniteLossError
from onnxtrain.layers import BatchNormalization, Dense, Input
from onnxtrain.optimizers import SGD, Adam
from onnxtrain.portable import PortableEngine

EXAMPLES = 37  # batches of 8: the last holds 5 rows, split 2 + 3 over two processes
BATCH = 8
NAN_ROW = 13  # unshuffled, batch 2 (rows 8..15): the second process's rows 12..15


class NoAllReduce:
    """The control: a world whose all-reduce leaves each process's own values (broadcast still works)."""

    def __init__(self, inner: dist.Communicator):
        self.inner = inner

    @property
    def rank(self) -> int:
        return self.inner.rank

    @property
    def size(self) -> int:
        return self.inner.size

    def all_reduce_sum(self, buffer: np.ndarray) -> None:
        if buffer.dtype == np.float32 and buffer.size > 2:  # the step's packed gradients: kept local
            return
        self.inner.all_reduce_sum(buffer)

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> None:
        self.inner.broadcast(buffer, root)

    def abort(self, code: int = 1) -> None:
        self.inner.abort(code)


def data(nan: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(EXAMPLES, 6)).astype(np.float32)
    y = rng.integers(0, 3, EXAMPLES)
    if nan:
        x[NAN_ROW, :] = 3e38  # finite, as fit requires, but the logits overflow: the loss is NaN
    return x, y


def build(engine: str, seed: int) -> Sequential:
    model = Sequential.of(Input(6), Dense(8, activation="relu"), Dense(3), seed=seed)
    model.compile(
        optimizer=Adam(learning_rate=0.02, clip_norm=0.3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", "mae"],  # summed over shares, an empty one included (single_row_last)
        engine=engine,
    )
    return model


def batchnorm_model(seed: int, inputs: int = 6) -> Sequential:
    """An MLP with layer state (BatchNormalization's moving statistics, momentum 0.8 so that they move fast)."""
    return Sequential.of(
        Input(inputs),
        Dense(8),
        BatchNormalization(momentum=0.8),
        Dense(8, activation="relu"),
        Dense(3),
        seed=seed,
    )


BATCHNORM_SGD = 0.1  # SGD: its step is linear in the gradient, which `averaged_shares` relies on


def averaged_shares(
    model: Sequential, batches: list[tuple[np.ndarray, np.ndarray]], size: int, update: str = "graph"
) -> dict[str, np.ndarray]:
    """The weights and layer state of a data-parallel SGD run over `size` processes, derived from one process.

    In a data-parallel step each process normalises with its own rows' statistics, the gradients are averaged
    (weighted by rows) and so are the new moving statistics. SGD's update is linear in the gradient, so that step
    is the weighted mean, over the processes' shares, of one-process steps that each start from the same weights
    and see one share: which this computes, share by share, with one engine alone (the train-step graph, layer
    state and all), in float64 between the steps. A non-finite loss in any share skips the step everywhere.
    """
    loss = losses.get("sparse_categorical_crossentropy")
    engine = PortableEngine(model.graph, loss, SGD(BATCHNORM_SGD), update=update)
    current = engine.get_weights()
    for x, y in batches:
        shares = [dist.local_rows(0, len(x), rank, size) for rank in range(size)]
        stepped = []
        for rows in (share for share in shares if share.stop > share.start):
            engine.set_weights(current)
            loss, _ = engine.train_step(x[rows], y[rows])
            stepped.append((rows.stop - rows.start, engine.get_weights()))
            if not np.isfinite(loss):
                break
        if not np.isfinite(loss):
            continue
        current = {
            name: (sum(n * np.float64(w[name]) for n, w in stepped) / len(x)).astype(np.float32) for name in current
        }
    engine.close()
    return current


SCENARIOS = ("equal", "single_row_last", "nan", "resume", "no_all_reduce", "batchnorm")


def run(scenario: str, engine: str, output: Path, world: dist.Communicator | None) -> None:
    """Train as `scenario` says, over `world` (None: alone), and write the weights to `output`."""
    if world is not None:
        world = dist.init(communicator=NoAllReduce(world) if scenario == "no_all_reduce" else world)
    rank = 0 if world is None else world.rank
    if scenario == "batchnorm":
        return run_batchnorm(output, rank)
    # Process 0's initial weights and shuffling seed must win: the others start from a seed of their own.
    model = build(engine, seed=11 + rank)
    x, y = data(nan=scenario == "nan")
    if scenario == "single_row_last":  # 33 rows: the last batch's one row leaves process 0 none
        x, y = x[:33], y[:33]
    error = ""
    with model:
        try:
            if scenario == "resume":  # 1 epoch here, then 1 more in one process from what process 0 saved
                model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
                if rank == 0:
                    model.save(output / f"saved_{engine}", save_optimizer_state=True)
            else:
                model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, shuffle=scenario != "nan")
        except NonFiniteLossError as e:
            error = type(e).__name__
        weights = model.get_weights()
    dist.leave()
    if scenario == "resume" and rank == 0:
        with load_model(output / f"saved_{engine}") as resumed:
            resumed.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
            weights = resumed.get_weights()
    np.savez(output / f"{scenario}.rank{rank}.npz", error=np.array(error), **weights)


def run_batchnorm(output: Path, rank: int) -> None:
    """2 epochs of the BatchNormalization MLP, unshuffled (37 rows in batches of 8: the last split 2 + 3), from
    process 0's weights; each process's weights, moving statistics included, and predictions after the fit."""
    x, y = data()
    with batchnorm_model(seed=11 + rank) as model:
        model.compile(optimizer=SGD(BATCHNORM_SGD), loss="sparse_categorical_crossentropy", engine="portable")
        model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, shuffle=False)
        weights = model.get_weights()
        np.save(output / f"predictions.rank{rank}.npy", model.predict_softly(x))
    dist.leave()
    np.savez(output / f"batchnorm.rank{rank}.npz", error=np.array(""), **weights)


def batchnorm_reference() -> dict[str, np.ndarray]:
    """`run_batchnorm`'s two processes, derived from one (`averaged_shares`)."""
    x, y = data()
    batches = [(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, EXAMPLES, BATCH)] * 2
    return averaged_shares(batchnorm_model(seed=11), batches, size=2)


def main(engine: str, output: Path) -> None:
    world = dist.init()
    for scenario in SCENARIOS:
        if scenario != "batchnorm" or engine == "portable":  # ort-training refuses layer state (onnxruntime#17879)
            run(scenario, engine, output, world)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
