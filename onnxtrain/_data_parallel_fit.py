"""What a data-parallel fit adds to `Trainer.fit`: the checks that every process compiles and trains alike (on the same
data), the seed, counters and flags that all processes agree on, and the callbacks of processes other than 0, which
write no files.

The checks share each process's values first (a broadcast or an all-reduce), then decide on those alone: every
process reaches the same verdict, and raises the same `DataParallelError`, at the same call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxtrain._batch_stream import BatchStream
from onnxtrain._batches import Batches, examples
from onnxtrain.arrays import InputArrays
from onnxtrain.callbacks import Callback, CSVLogger, ModelCheckpoint
from onnxtrain.distributed._communicator import Communicator, broadcast_bytes, meet
from onnxtrain.distributed._data_checksum import SAMPLED_ROWS, checksums_differ, sampled_checksum
from onnxtrain.distributed._reduce import all_reduce_sums
from onnxtrain.distributed._world import world
from onnxtrain.errors import DataParallelError, InvalidArgumentError, ModelStateError

LISTED_PROCESSES = 4  # how many processes a message names before "and N more"

logger = logging.getLogger("onnxtrain")


def gathered(communicator: Communicator, values: Sequence[float]) -> np.ndarray:
    """Every process's `values`, one row per process in rank order (one all-reduce: each process fills its row,
    and a sum with zeros is exact)."""
    rows = np.zeros((communicator.size, len(values)), np.float64)
    rows[communicator.rank] = values
    communicator.all_reduce_sum(rows)
    return rows


def compile_settings_of(
    engine: str, optimizer: Any, loss: Any, metrics: Sequence[Any], parameters: Mapping[str, np.ndarray],
    trainable: Mapping[str, np.ndarray],
) -> dict[str, str]:  # fmt: skip
    """What the processes of a data-parallel world must compile alike, by setting, as text: the engine, the
    optimizer's config (its name first), the loss, the metrics, and each parameter's shape (`parameters`, the
    graph's, layer state included; those not in `trainable` are marked)."""
    settings = {"engine": repr(engine)}
    config = dict(optimizer.get_config())
    if isinstance(config.get("learning_rate"), int | float):
        # a plain rate is state, taken from process 0 with the weights (a model only process 0 loaded from a save
        # records the rate it trained at last, the others their compiled one); fit refuses rates that still
        # differ then; a schedule is compared
        del config["learning_rate"]
    settings["optimizer"] = repr(config.pop("name", type(optimizer).__name__))
    settings.update({f"optimizer {key}": repr(value) for key, value in config.items()})
    settings["loss"] = json.dumps(loss.get_config(), sort_keys=True, default=str)
    # A metric's config: its arguments too (Precision(thresholds=0.3) is not Precision()), a bare name for the rest
    settings["metrics"] = repr([_metric_setting(m) for m in metrics])
    for name, value in parameters.items():
        frozen = "" if name in trainable else " (not trainable)"
        settings[f"parameter {name}"] = f"shape {tuple(int(d) for d in np.shape(value))}{frozen}"
    return settings


def _metric_setting(metric: Any) -> Any:
    """A metric as the processes compare it: its config, or its name where it has no config to save (a lambda
    given as a metric function trains; only `save` refuses it)."""
    if not hasattr(metric, "get_config"):
        return getattr(metric, "value", metric)
    try:
        return metric.get_config()
    except InvalidArgumentError:
        return getattr(metric, "name", repr(metric))


def check_compiled_alike(communicator: Communicator, settings: Mapping[str, str]) -> None:
    """Check, before the engine's first collective call, that every process compiled what process 0 did
    (`compile_settings_of`): process 0's settings are broadcast, each process compares, and the first process
    that differs broadcasts its own, so that every process names the same setting and both values.

    Process 0's weights and optimizer state are broadcast at compile, so the processes need not initialise their
    models alike; its settings are not: overriding what another process's code asked for would hide the mistake.

    Raises:
        DataParallelError: a setting or a parameter's shape differs from process 0's, in every process alike.
    """
    meet(communicator, lambda waited: logger.warning(_stalled_at_compile(communicator, waited)))
    mine = json.dumps(list(settings.items())).encode()
    first = broadcast_bytes(communicator, mine if communicator.rank == 0 else None)
    differing = np.flatnonzero(gathered(communicator, [float(mine != first)])[:, 0])
    if not len(differing):
        return
    other_rank = int(differing[0])
    other = broadcast_bytes(communicator, mine if communicator.rank == other_rank else None, root=other_rank)
    ours, theirs = dict(json.loads(first)), dict(json.loads(other))
    setting = next(key for key in [*ours, *theirs] if ours.get(key) != theirs.get(key))
    more = f" ({len(differing)} processes differ from process 0)" if len(differing) > 1 else ""
    raise DataParallelError(
        "A data-parallel compile expects every process to compile the same model, optimizer, loss and metrics "
        "(process 0's weights and optimizer state are broadcast, its settings are not). Received: "
        f"{setting}: {theirs.get(setting, 'absent')} in process {other_rank}, {ours.get(setting, 'absent')} in "
        f"process 0{more}. Build and compile alike in every process."
    )


def _stalled_at_compile(communicator: Communicator, waited: float) -> str:
    """The warning of a process that has waited `waited` seconds at compile for the others (`meet`)."""
    return (
        f"Process {communicator.rank} of {communicator.size} has waited {waited:.0f} s in compile for "
        "the other processes of its data-parallel world, and waits on. After onnxtrain.distributed.init(), "
        "compile (and load_model, which compiles) is collective: every process makes it, in the same order. A "
        "model that only some processes load or compile (`if world.rank == 0: load_model(...)`, to evaluate or "
        "predict) belongs inside `with onnxtrain.distributed.alone():` in those processes. (Processes that are "
        "only slower to get here, loading data, need no change.)"
    )


def _processes(ranks: Sequence[int]) -> str:
    """`ranks` for a message: "process 1", "processes 1, 2, 3, 4 and 2 more"."""
    named = ", ".join(map(str, ranks[:LISTED_PROCESSES]))
    if len(ranks) > LISTED_PROCESSES:
        named += f" and {len(ranks) - LISTED_PROCESSES} more"
    return f"process{'es' if len(ranks) > 1 else ''} {named}"


def _by_process(values: np.ndarray, describe: Any) -> str:
    """`values` (one per process) for a message: each distinct value with the processes that hold it."""
    groups: dict[float, list[int]] = {}
    for rank, value in enumerate(values.tolist()):
        groups.setdefault(value, []).append(rank)
    exactly = len({describe(value) for value in groups}) < len(groups)  # values that read alike once rounded
    return ", ".join(
        f"{describe(value)}{f' (exactly {value!r})' if exactly else ''} in {_processes(ranks)}"
        for value, ranks in groups.items()
    )


# What check_world gathers from each process, in order: (name, what every process must hold alike, how a value
# reads in a message).
_FIT_SETTINGS: tuple[tuple[str, str, Any], ...] = (
    (
        "examples",
        "hold the same whole training set (each takes its rows of every global batch: not a shard per process)",
        lambda v: f"{v:g} examples",
    ),
    (
        "validation",
        "hold the same whole validation set (each evaluates its share of it: not a shard per process)",
        lambda v: "no validation data" if v < 0 else f"{v:g} validation examples",
    ),
    ("batch_size", "fit with the same batch_size", lambda v: f"batch_size={v:g}"),
    ("validation_batch_size", "fit with the same validation_batch_size", lambda v: f"validation_batch_size={v:g}"),
    ("epochs", "fit for the same number of epochs", lambda v: f"epochs={v:g}"),
    ("shuffle", "fit with the same shuffle flag", lambda v: f"shuffle={bool(v)}"),
    (
        "learning_rate",
        "train with the same learning rate (model.learning_rate set in some processes only, or by a callback in "
        "some processes only at the end of the last fit: give learning-rate callbacks to every process)",
        lambda v: f"learning_rate={v:.7g}",
    ),
)


# The parts of a dataset whose checksums check_world compares, as a message names them (training, validation)
_DATA_PARTS = (("x", "x"), ("y", "y"), ("sample weights (sample_weight, class_weight)", "sample weights"))
# Rows in another order differ too: what draws one per process
_SAME_ORDER = (
    ": a split or shuffle of your own without a seed (Dataset.split(shuffle=True), Dataset.shuffle(), "
    "np.random.permutation) draws another order in each process. Pass the same seed= in every process "
    "(split(0.8, shuffle=True, seed=1)), or leave the shuffling to fit, which shuffles alike in every process."
)
# Why every process must hold the whole set, and the fix where x or y differ (training, validation)
_WHOLE_SET = (
    (
        "onnxtrain gives each process its rows of every global batch itself (what DistributedSampler does for "
        "PyTorch DDP), and batch_size is the global batch",
        "Load all the training data in every process, not a shard of it per process, and in the same order"
        + _SAME_ORDER,
    ),
    (
        "onnxtrain gives each process its share of it to evaluate",
        "Pass all the validation data in every process, not a shard of it per process, and in the same order"
        + _SAME_ORDER,
    ),
)
_SAME_WEIGHTS = (
    "Pass the same sample_weight and class_weight in every process.",
    "Pass the same validation sample weights in every process.",
)


def data_checksums(data: Batches | BatchStream | None) -> list[float]:
    """The checksum and its magnitude (`sampled_checksum`) of each part of `data` (`_DATA_PARTS`: x, each input
    weighted by its place, y and the sample weights), flat; zeros for no data, a stream or no weights."""
    if not isinstance(data, Batches):
        return [0.0] * 2 * len(_DATA_PARTS)
    inputs = data.x.arrays if isinstance(data.x, InputArrays) else (data.x,)
    x = sum(np.multiply(sampled_checksum(array), place) for place, array in enumerate(inputs, start=1))
    weights = (0.0, 0.0) if data.w is None else sampled_checksum(data.w)
    return [*np.asarray(x).tolist(), *sampled_checksum(data.y), *weights]


def _check_same_data(checksums: np.ndarray, train: int, validation: int) -> None:
    """Refuse processes whose training or validation data differ from process 0's (`checksums`: a row of each
    process's `data_checksums` of both; `train` and `validation` examples, which every process holds).

    Raises:
        DataParallelError: naming the data, its parts that differ and the processes that hold them.
    """
    width = 2 * len(_DATA_PARTS)
    for block, (data, count) in enumerate((("training", train), ("validation", validation))):
        parts, differing = [], np.zeros(len(checksums), bool)
        for index, names in enumerate(_DATA_PARTS):
            column = block * width + 2 * index
            differs = checksums_differ(checksums[:, column], checksums[:, column + 1])
            if differs.any():
                parts.append(names[block])
                differing |= differs
        if not parts:
            continue
        why, fix = _WHOLE_SET[block]
        weights_only = parts[0].startswith("sample weights")  # x and y are alike: the weights given differ
        if weights_only:
            fix = _SAME_WEIGHTS[block]
        differ = "differ" if len(parts) > 1 or weights_only else "differs"
        raise DataParallelError(
            f"A data-parallel fit expects every process to pass the same whole {data} set: {why}. Received: "
            f"{data} {' and '.join(parts)} in {_processes(np.flatnonzero(differing).tolist())} that {differ} from "
            f"process 0's ({count} examples in every process; checksums of up to {SAMPLED_ROWS} evenly spaced "
            f"rows). {fix}"
        )


def check_world(
    communicator: Communicator | None,
    train: Batches | BatchStream,
    batch_size: int,
    *,
    validation: Batches | BatchStream | None = None,
    validation_batch_size: int | None = None,
    epochs: int = 1,
    shuffle: bool = True,
    learning_rate: float = 0.0,
) -> Communicator | None:
    """The world a fit trains over (`communicator`, the engine's), after checking, on every process alike (one
    all-reduce gathers each process's values), that all processes hold the same training and validation data
    (`validation`: None without validation data; their numbers of examples, then `data_checksums`: each process
    takes its rows of every global batch from its own arrays, so a shard per process would train on part of the
    data), fit with the same batch sizes, epochs, shuffle flag and learning rate, and that a global batch has a
    row for each process.

    Raises:
        ModelStateError: `onnxtrain.distributed.init()` or `leave()` was called after compile.
        DataParallelError: the processes differ in one of those, or a batch is smaller than the world.
    """
    current = world()
    if current is not communicator:
        if communicator is None:
            happened, fix = (
                "init() was called after compile() (or the model was compiled inside alone())",
                "train over the world (or call init() first)",
            )
        elif current is None:
            happened, fix = "leave() was called after compile()", "train alone"
        else:
            happened, fix = "init() was called again after compile()", "train over the new world"
        raise ModelStateError(
            f"onnxtrain.distributed.{happened}: the compiled engine still trains "
            f"{'alone' if communicator is None else 'over the world it was compiled in'}. Call compile() again to "
            f"{fix}; the weights are kept, the optimizer state starts anew."
        )
    if communicator is None:
        return None
    count = examples(train)
    mine = {
        "examples": count,
        "validation": -1 if validation is None else examples(validation),
        "batch_size": batch_size,
        "validation_batch_size": batch_size if validation_batch_size is None else validation_batch_size,
        "epochs": epochs,
        "shuffle": float(shuffle),
        "learning_rate": learning_rate,
    }
    settings = [float(mine[name]) for name, _, _ in _FIT_SETTINGS]
    table = gathered(communicator, [*settings, *data_checksums(train), *data_checksums(validation)])
    for column, (_, expectation, describe) in enumerate(_FIT_SETTINGS):
        values = table[:, column]
        if not np.all(values == values[0]):
            received = _by_process(values, describe)
            raise DataParallelError(f"A data-parallel fit expects every process to {expectation}. Received: {received}")
    _check_same_data(table[:, len(settings) :], count, int(mine["validation"]))
    if min(batch_size, count) < communicator.size:
        raise DataParallelError(
            f"A data-parallel fit over {communicator.size} processes expects batch_size >= {communicator.size} "
            f"(a row of each batch for each process). Received: batch_size={batch_size} on {count} examples"
        )
    return communicator


@dataclass(frozen=True)
class TrainingCounters:
    """What decides which global batches a fit trains on and how each step updates, besides the weights and the
    optimizer state: the epochs and optimizer steps trained so far, the current learning rate, and the input scale
    (what the model multiplies integer inputs by)."""

    epochs: int
    steps: int
    learning_rate: float
    input_scale: float


def process_zero_counters(communicator: Communicator, mine: TrainingCounters) -> TrainingCounters:
    """The counters this process trains on, decided alike in every process (one all-reduce gathers them all).

    Process 0's weights, optimizer state and step were broadcast at compile; its counters are taken here, when
    fit starts. A process that has trained no epoch while process 0 has (only process 0 loaded the save) takes
    all of process 0's counters: its epoch count, step count, learning rate and input scale. Any other process
    takes process 0's step count, and must hold its epoch count: processes that loaded different saves, or
    trained different numbers of epochs, would otherwise shuffle each epoch differently and train on other
    global batches. (A learning rate that differs then is refused by `check_world`.)

    Raises:
        DataParallelError: a process that has trained epochs holds another epoch count than process 0's, in
            every process alike.
    """
    table = gathered(communicator, [mine.epochs, mine.steps, mine.learning_rate, mine.input_scale])
    epochs, steps, learning_rate, input_scale = (float(v) for v in table[0])
    counts = table[:, 0]
    differing = (counts != epochs) & (counts > 0)
    if np.any(differing):
        received = _by_process(counts, lambda v: f"epochs_trained={v:g}")
        raise DataParallelError(
            "A data-parallel fit expects every process to continue from process 0's epoch count: its weights and "
            "optimizer state are broadcast, and the epoch number decides each epoch's shuffle. Received: "
            f"{received}. Load the same save in every process, or load it in process 0 alone (the others take "
            "its counters)."
        )
    if mine.epochs == 0 and epochs > 0:
        return TrainingCounters(int(epochs), int(steps), learning_rate, input_scale)
    return TrainingCounters(mine.epochs, int(steps), mine.learning_rate, mine.input_scale)


def agree_on_step(communicator: Communicator, learning_rate: float, moment: str, flag: bool = False) -> bool:
    """Whether `flag` is set in any process, after checking that every process trains at the same `learning_rate`
    at `moment` ("when epoch 3 started"): one all-reduce, which the epoch loop makes as each epoch starts, after
    each batch where a process reads batch logs (with the stop flag), and before each step where a process has a
    batch-begin hook (`LearningRateScheduler(per_step=True)`). A callback that sets the rate in some processes
    only (ReduceLROnPlateau or LearningRateScheduler given to process 0 alone, Horovod's habit for the callbacks
    that print) would step their weights apart with the same reduced gradients, silently.

    Raises:
        DataParallelError: the rates differ, naming each process's, in every process alike (before a step used
            them where the rate was set at an epoch's or a batch's start).
    """
    table = gathered(communicator, [learning_rate, float(flag)])
    rates = table[:, 0]
    if not np.all(rates == rates[0]):
        received = _by_process(rates, lambda v: f"learning_rate={v:.7g}")
        raise DataParallelError(
            "A data-parallel fit expects every process to train at the same learning rate: they apply the same "
            f"reduced gradients, and other rates step their weights apart. Received: {received}, {moment}. Give "
            "every callback that sets the rate (ReduceLROnPlateau, LearningRateScheduler, or one of your own that "
            "sets model.learning_rate) to every process, as Horovod asks: each process sees the same all-reduced "
            "logs and sets the same rate. (Every callback can run in every process: only process 0 prints, and "
            "CSVLogger and ModelCheckpoint write in process 0 alone by themselves.)"
        )
    return bool(np.any(table[:, 1]))


def shared_seed(communicator: Communicator, seed: int) -> int:
    """Process 0's `seed`, on every process: one shuffle for all of them (a collective call)."""
    buffer = np.array([seed], np.int64)
    communicator.broadcast(buffer)
    return int(buffer[0])


def any_process(communicator: Communicator, flag: bool) -> bool:
    """Whether `flag` is set in any process (a collective call: every process makes it)."""
    return all_reduce_sums(communicator, [float(flag)])[0] > 0


def not_writing(callbacks: Any) -> Any:
    """`callbacks` less those that write files (CSVLogger, ModelCheckpoint): what processes other than 0 run."""
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    if callbacks is None or not isinstance(callbacks, Sequence | set):
        return callbacks  # CallbackList says what is wrong with it
    return [c for c in callbacks if not isinstance(c, CSVLogger | ModelCheckpoint)]
