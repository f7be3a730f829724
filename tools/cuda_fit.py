"""The tutorial on each device named, one after the other in one process: s/epoch, accuracy, where the sessions ran.

A GPU check for `tools/cuda_check.sh`; it runs anywhere (`--devices cpu`). Every device trains the main job's model
(examples/fashion_mlp.toml: the tutorial's MLP with linear logits, seed 42) on the real Fashion-MNIST, predicts the
10,000 test images through the saved model with InferenceModel on that device, and the devices' predictions are
compared.

    python tools/cuda_fit.py --devices cuda,cpu --epochs 3 [--batch-size 100] [--json FILE]
        [--engine auto|portable|ort-training]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _tutorial import tutorial_data, tutorial_model

from onnxtrain import InferenceModel
from onnxtrain.callbacks import Callback
from onnxtrain.losses import Losses
from onnxtrain.metrics import Metrics
from onnxtrain.optimizers import Adam


class EpochTimer(Callback):
    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.seconds.append(time.perf_counter() - self._started)


def run(device: str, engine: str, epochs: int, batch_size: int, folder: Path) -> dict[str, Any]:
    train, test = tutorial_data()
    timer = EpochTimer()
    with tutorial_model(seed=42) as model:
        model.compile(
            optimizer=Adam(),
            loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS,
            metric=Metrics.ACCURACY,
            device=device,
            engine=engine,
        )
        trainer = model._trainer
        sessions = getattr(trainer.engine, "_train_session", None)
        model.fit(dataset=train, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[timer])
        accuracy = model.evaluate(dataset=test, batch_size=100).metrics[Metrics.ACCURACY]
        saved = model.save(folder)
    x_test = test.x
    with InferenceModel.load(saved, device=device) as inference:
        started = time.perf_counter()
        predictions = inference.predict(x_test)
        predict_seconds = time.perf_counter() - started
        inference_providers = inference._session.get_providers()
    epoch_seconds = float(np.median(timer.seconds[1:] or timer.seconds))
    return {
        "device": device,
        "batch_size": batch_size,
        "engine": type(trainer.engine).__name__,
        "train_session_providers": sessions.get_providers() if sessions is not None else None,
        "inference_providers": inference_providers,
        "seconds_per_epoch": [round(s, 3) for s in timer.seconds],
        "median_after_first": round(epoch_seconds, 3),
        "train_samples_per_s": round(len(train) / epoch_seconds),
        "test_accuracy": round(float(accuracy), 4),
        "predict_samples_per_s": round(len(x_test) / predict_seconds),
        "predictions": predictions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="cuda,cpu", help="comma-separated device strings (default cuda,cpu)")
    parser.add_argument("--engine", default="auto", help="compile(engine=...): auto, portable or ort-training")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for device in args.devices.split(","):
            results.append(run(device, args.engine, args.epochs, args.batch_size, Path(folder) / str(len(results))))
            shown = {k: v for k, v in results[-1].items() if k != "predictions"}
            print(json.dumps(shown), flush=True)
    first = results[0]["predictions"]
    for other in results[1:]:
        agree = float(np.mean(first == other["predictions"]))
        print(f"predictions of {results[0]['device']} and {other['device']} agree on {agree:.2%} of the test images")
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if k != "predictions"} for r in results]))


if __name__ == "__main__":
    main()
