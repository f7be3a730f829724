"""Training records: `History` (per-epoch figures, Keras-compatible keys) and `EvaluationResult`."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from onnxtrain import metrics as metrics_module
from onnxtrain._kotlindl_attributes import KOTLINDL_HISTORY_ATTRIBUTES, missing_attribute
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, RuntimeSetupError, UnknownIdentifierError
from onnxtrain.metrics import Metric, Metrics, NamedMetric

MetricKey = Metrics | Metric | str


class MetricValues(Mapping[MetricKey, float]):
    """Metric values keyed by the compiled metrics (`NamedMetric`, named as compile was given them: "acc");
    looked up by that name, by a `Metrics` member or by any name of the metric (`result.metrics[Metrics.ACCURACY]`,
    `["accuracy"]` of metrics=["acc"]). A model of several outputs keys them by Keras' names instead:
    "<output>_loss", "<output>_accuracy"."""

    def __init__(self, values: Mapping[Any, float]):  # keys: MetricKey (Mapping's key type is invariant)
        self._values = dict(values)

    def __getitem__(self, key: MetricKey) -> float:
        if key in self._values:
            return self._values[key]
        if isinstance(key, str):
            for own, value in self._values.items():
                if _name(own) == key:
                    return value
        try:
            metric = metrics_module.get(key)  # another name of a metric ("accuracy" of "acc"), or a member
        except UnknownIdentifierError:
            metric = None
        for own, value in self._values.items():
            if metric is not None and (own is metric or (isinstance(own, NamedMetric) and own.metric is metric)):
                return value
        raise KeyError(f"{key!r}: the metrics here are {[_name(own) for own in self._values]}")

    def __iter__(self) -> Iterator[MetricKey]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{_name(m)}: {v:.4f}" for m, v in self._values.items()) + "}"


def _name(key: MetricKey) -> str:
    return key.value if isinstance(key, Metrics | Metric) else key


@dataclass(frozen=True)
class EvaluationResult:
    """What `evaluate` returns: the mean loss and each metric over the whole dataset.

    It unpacks and indexes like Keras' list, the loss first and then the metrics in the order compile was given
    them: `loss, accuracy = model.evaluate(x, y)`, `score[0]`, `score[1]`; `len(result)` is 1 + the number of
    metrics. For a model of several outputs, the total loss, then each output's loss, then each output's metrics
    (`result.metrics["head_loss"]`). Where Keras returns the loss alone (no metrics), it is also that number:
    `float(result)`, `f"{result:.3f}"`, `round(result, 3)`, `result < 0.5`, `result + 1`, `np.isclose(result, x)`
    (`result.loss` is the plain float, for `json.dumps`).
    """

    loss: float
    metrics: MetricValues

    def __iter__(self) -> Iterator[float]:
        yield self.loss
        yield from self.metrics.values()

    def __len__(self) -> int:
        return 1 + len(self.metrics)

    def __str__(self) -> str:
        return " - ".join([f"loss: {self.loss:.4f}", *(f"{_name(m)}: {v:.4f}" for m, v in self.metrics.items())])

    @overload
    def __getitem__(self, index: int) -> float: ...
    @overload
    def __getitem__(self, index: slice) -> list[float]: ...
    def __getitem__(self, index: int | slice) -> float | list[float]:
        """Keras' list: `score[0]` the loss, `score[1]` the first metric, slices as a list's."""
        if isinstance(index, bool) or not isinstance(index, int | slice):
            raise InvalidTypeError(
                f"An evaluate result is indexed like Keras' list [loss, *metrics] by an int or a slice (by name: "
                f"result.metrics[name], or evaluate(..., return_dict=True)). Received: {index!r}"
            )
        values = list(self)
        if isinstance(index, int) and not -len(values) <= index < len(values):
            raise IndexError(
                f"evaluate result index {index} is out of range: it holds {len(values)} values "
                f"{['loss', *(_name(m) for m in self.metrics)]}"
            )
        return values[index]

    def __float__(self) -> float:
        if self.metrics:
            raise InvalidTypeError(
                f"float() takes the result of an evaluate without metrics, which is its loss (Keras returns the loss "
                f"alone then). This one also holds {[_name(m) for m in self.metrics]}: use result.loss, "
                "result.metrics[...] or `loss, *metrics = result`."
            )
        return self.loss

    # The number Keras returns where there are no metrics: arithmetic, comparisons and numpy take float(self), which
    # refuses (with what to use instead) a result that also holds metrics.
    def __round__(self, ndigits: int | None = None) -> float:
        return round(float(self), ndigits)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """numpy reads Keras' return: the loss, a number, without metrics; the list [loss, *metrics] with them."""
        return np.asarray(list(self) if self.metrics else float(self), dtype=dtype)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EvaluationResult):
            return (self.loss, dict(self.metrics)) == (other.loss, dict(other.metrics))
        if isinstance(other, int | float | np.number) and not isinstance(other, bool) and not self.metrics:
            return self.loss == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.loss, *self.metrics.values()))

    def __lt__(self, other: Any) -> bool:
        return float(self) < other

    def __le__(self, other: Any) -> bool:
        return float(self) <= other

    def __gt__(self, other: Any) -> bool:
        return float(self) > other

    def __ge__(self, other: Any) -> bool:
        return float(self) >= other

    def __add__(self, other: Any) -> float:
        return float(self) + other

    def __radd__(self, other: Any) -> float:
        return other + float(self)

    def __sub__(self, other: Any) -> float:
        return float(self) - other

    def __rsub__(self, other: Any) -> float:
        return other - float(self)

    def __mul__(self, other: Any) -> float:
        return float(self) * other

    def __rmul__(self, other: Any) -> float:
        return other * float(self)

    def __truediv__(self, other: Any) -> float:
        return float(self) / other

    def __rtruediv__(self, other: Any) -> float:
        return other / float(self)

    def __format__(self, spec: str) -> str:
        return format(float(self), spec) if spec else str(self)

    def to_dict(self) -> dict[str, float]:
        """Keras' `evaluate(..., return_dict=True)`: {"loss": ..., "accuracy": ...}, the keys as in the logs of
        `fit` (a model of several outputs: "loss", "<output>_loss", "<output>_accuracy", ...), in the order of the
        list (`list(result)`), the loss first."""
        return {"loss": self.loss, **{_name(m): v for m, v in self.metrics.items()}}


@dataclass
class History:
    """Per-epoch figures of a `fit` call.

    `history` maps Keras-compatible keys ("accuracy", "loss", "val_accuracy", "val_loss", ...) to one value
    per epoch, in Keras 3's order: the first epoch's keys sorted, then those first logged later (the val_ ones of
    a `validation_freq` that skips the first epoch) and those a callback adds, as they came; `epochs` (or Keras'
    spelling `epoch`) holds the epoch numbers (1-based, continuing across `fit` calls on one model, where Keras'
    are 0-based indices). A `learning_rate` key appears when a LearningRateScheduler or ReduceLROnPlateau callback
    adds it to the logs, as in Keras. `params` is Keras'
    {"verbose": ..., "epochs": ..., "steps": ...} of the call (epochs asked for, batches per epoch); a History
    read from CSV has none, and equality ignores it.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epochs: list[int] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def epoch(self) -> list[int]:
        """Keras' name for `epochs` (the same list)."""
        return self.epochs

    def append(self, epoch: int, logs: Mapping[str, float]) -> None:
        """Record one epoch; keys first seen later are back-filled with NaN (one value per epoch per key)."""
        for key in logs:
            if key not in self.history:
                self.history[key] = [math.nan] * len(self.epochs)
        self.epochs.append(epoch)
        for key, values in self.history.items():
            values.append(float(logs.get(key, math.nan)))

    def last(self) -> dict[str, float]:
        """The last epoch's figures, {key: value} for every key (a new dict): the final loss and metrics of a run
        (`history.last()["val_loss"]`), with the keys callbacks added (`learning_rate`), which the callbacks'
        `on_train_end` does not get (Keras passes it the epoch's logs as fit built them). NaN where a key had no
        value that epoch (a "val_" key on an epoch `validation_freq` skipped); {} when no epoch was recorded."""
        return {key: values[-1] for key, values in self.history.items() if values}

    if not TYPE_CHECKING:  # mypy would take a History to have every attribute

        def __getattr__(self, attribute: str) -> Any:
            # Only reached for an attribute neither set nor defined: KotlinDL's name of one
            # (`history.lastEpochEvent`) is refused naming what stands for it.
            message = missing_attribute(self, attribute, KOTLINDL_HISTORY_ATTRIBUTES, "history")
            raise AttributeError(message, name=attribute, obj=self)

    def __len__(self) -> int:
        return len(self.epochs)

    def to_csv(self, path: str | Path) -> Path:
        """Write one row per epoch: `epoch`, then every key. Returns the path."""
        from onnxtrain.saving import write_atomically

        rows = [["epoch", *self.history]]
        rows += [[str(epoch), *(repr(v[i]) for v in self.history.values())] for i, epoch in enumerate(self.epochs)]
        text = "".join(",".join(row) + "\n" for row in rows)
        return write_atomically(Path(path), text.encode())

    @classmethod
    def from_csv(cls, path: str | Path) -> History:
        """Read a file written by `to_csv` or `CSVLogger`.

        A "val_" column that holds no value at all (every cell nan) is left out: Keras' CSVLogger, and so
        onnxtrain's, adds a "val_" column for every figure where the first epoch it logs has no validation figure,
        which a fit without validation leaves empty. So a CSVLogger's file reads back equal to its fit's History
        (and `plot` draws no empty validation curve).

        Raises:
            InvalidArgumentError: the file cannot be read, or is not a History CSV (header, column count or a
                non-numeric value).
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:  # missing, a folder, unreadable, not text
            reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
            raise InvalidArgumentError(
                f"History.from_csv expects a CSV file written by to_csv or CSVLogger. Received: '{path}', which "
                f"cannot be read as one ({reason})."
            ) from e
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if not header or header[0] != "epoch":
            raise InvalidArgumentError(f"{path} is not a History CSV: expected a header starting with 'epoch'.")
        history = cls(history={key: [] for key in header[1:]})
        for row in reader:
            if not row:
                continue
            try:
                if len(row) != len(header):
                    raise ValueError(f"{len(row)} fields, expected {len(header)}")
                epoch, values = int(row[0]), [float(value) for value in row[1:]]
            except ValueError as e:
                raise InvalidArgumentError(f"{path}, line {reader.line_num}: not a History row ({e}).") from e
            history.epochs.append(epoch)
            for key, value in zip(header[1:], values, strict=True):
                history.history[key].append(value)
        for key in [key for key, values in history.history.items() if key.startswith("val_")]:
            if all(math.isnan(value) for value in history.history[key]):
                del history.history[key]
        return history

    def plot(self, path: str | Path) -> Path:
        """Save the loss and metric curves (train and validation, one panel per figure) as an image.

        The file name's suffix picks the format ("curves.png", ".pdf", ".svg", ...; PNG when there is none). Needs
        the `plot` extra (matplotlib). Draws on its own Agg canvas, so pyplot's backend and open figures are left
        alone.

        Raises:
            RuntimeSetupError: matplotlib is not installed.
            InvalidArgumentError: the History has no epochs, or the suffix names no format matplotlib writes.
        """
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as e:
            raise RuntimeSetupError(
                "History.plot needs matplotlib: `pip install onnxtrain[plot]` (or `pip install matplotlib`)."
            ) from e
        if not self.epochs:
            raise InvalidArgumentError("History.plot needs at least one epoch. Received: an empty History")
        image_format = Path(path).suffix.lower().removeprefix(".") or "png"
        formats = FigureCanvasAgg.get_supported_filetypes()
        if image_format not in formats:
            raise InvalidArgumentError(
                f"History.plot writes the format its file name's suffix names: one of {sorted(formats)}. "
                f"Received: path={str(path)!r}"
            )
        names = [key for key in self.history if not key.startswith("val_")]
        names += [key for key in self.history if key.startswith("val_") and key[4:] not in self.history]
        fig = Figure(figsize=(5 * len(names), 4))
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(names), squeeze=False)[0]
        for ax, name in zip(axes, names, strict=True):
            ax.plot(self.epochs, self.history[name], marker="o", label=_label(name))
            if f"val_{name}" in self.history:
                ax.plot(self.epochs, self.history[f"val_{name}"], marker="o", label=_label(f"val_{name}"))
            ax.set_xlabel("epoch")
            ax.set_title(name.removeprefix("val_"))
            ax.grid(True, alpha=0.3)
            ax.legend()
            if len(self.epochs) <= 20:
                ax.set_xticks(self.epochs)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format=image_format, dpi=100)
        from onnxtrain.saving import write_atomically

        return write_atomically(Path(path), buffer.getvalue())


def _label(key: str) -> str:
    if key == "learning_rate":
        return "learning rate"
    return f"validation {key[4:]}" if key.startswith("val_") else f"train {key}"
