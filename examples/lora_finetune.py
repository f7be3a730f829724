"""LoRA on an exported ONNX model: the tutorial's Fashion-MNIST MLP, fine-tuned through rank-r adapters only.

Imports the MLP's export (`onnxtrain.from_onnx`), adds LoRA adapters to its three Gemm/MatMul nodes
(`onnxtrain.lora`: base weights frozen), fine-tunes one epoch and exports with the adapters merged into the weights.
Two tasks: "same" fine-tunes on Fashion-MNIST itself; "inverted" on its negative images (1 - x), a shifted input
distribution where the base model is poor and the adapters must do the work. For each rank it prints the trainable
and total parameters, the test accuracy before and after, the merged export's size against the original export's
and the imported base's re-export (no adapters), and how far the merged export's outputs are from the adapted
model's.

Usage (the model: a saved model directory, e.g. from `onnxtrain train --example fashion-mlp --output runs/mlp`, or
its export):
    python examples/lora_finetune.py runs/mlp/model [--ranks 4 8] [--tasks same inverted] [--epochs 1]
        [--train-images 60000] [--output runs/lora]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from onnxtrain import Dataset, InferenceModel, Model, from_onnx, load_model, lora
from onnxtrain.datasets import fashion_mnist
from onnxtrain.optimizers import Adam


def exported_model(source: Path, output: Path) -> Path:
    """`source` itself when it is an .onnx file; else the export of the saved model directory it names."""
    if source.suffix.lower() == ".onnx":
        return source
    with load_model(source, compile=False) as model:
        model.compile()
        return model.export(output / "base.onnx", writing_mode="override")


def task_data(task: str, train: Dataset, test: Dataset, images: int) -> tuple[Dataset, Dataset]:
    def shifted(data: Dataset, n: int | None = None) -> Dataset:
        x = data.x[:n] if task == "same" else 1.0 - data.x[:n]
        return Dataset(x, data.y[:n], class_names=data.class_names)

    return shifted(train, images), shifted(test)


def accuracy(model: Model, data: Dataset) -> float:
    return float(model.evaluate(data, batch_size=500).metrics["accuracy"])


def run(args: argparse.Namespace) -> list[dict[str, object]]:
    args.output.mkdir(parents=True, exist_ok=True)
    base_path = exported_model(args.model, args.output)
    train_set, test_set = fashion_mnist()
    rows = []
    for task in args.tasks:
        train, test = task_data(task, train_set, test_set, args.train_images)
        with from_onnx(base_path, outputs=["logits"]) as base:  # not its softmax output, `probabilities`
            base.compile(optimizer=Adam(args.learning_rate), metric="accuracy")
            before = accuracy(base, test)
            reexport = base.export(args.output / "base_reexported.onnx", writing_mode="override").stat().st_size
            for rank in args.ranks:
                with lora(base, rank=rank, alpha=args.alpha) as model:
                    model.compile(optimizer=Adam(args.learning_rate), metric="accuracy")
                    trainable, frozen = model.param_counts()
                    model.fit(train, epochs=args.epochs, batch_size=args.batch_size, verbose=0, seed=args.seed)
                    after = accuracy(model, test)
                    merged = model.export(
                        args.output / f"lora_{task}_r{rank}.onnx", writing_mode="override", merge_adapters=True
                    )
                    with InferenceModel.load(merged) as plain:
                        difference = np.abs(plain.predict_softly(test.x[:1000]) - model.predict_softly(test.x[:1000]))
                rows.append(
                    {
                        "task": task,
                        "rank": rank,
                        "trainable": trainable,
                        "total": trainable + frozen,
                        "before": before,
                        "after": after,
                        "merged_bytes": merged.stat().st_size,
                        "original_bytes": base_path.stat().st_size,
                        "reexport_bytes": reexport,
                        "max_diff": float(difference.max()),
                    }
                )
    return rows


def print_table(rows: list[dict[str, object]]) -> None:
    print(
        "| task | rank | trainable / total parameters | test accuracy before → after | merged export | original "
        "export | imported base re-exported | max abs. difference of the merged export's probabilities |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        share = 100 * int(r["trainable"]) / int(r["total"])  # type: ignore[call-overload]
        print(
            f"| {r['task']} | {r['rank']} | {r['trainable']:,} / {r['total']:,} ({share:.2f}%) | "
            f"{r['before']:.4f} → {r['after']:.4f} | {r['merged_bytes']:,} B | {r['original_bytes']:,} B | "
            f"{r['reexport_bytes']:,} B | "
            f"{r['max_diff']:.1e} |"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="the fashion-mlp's saved model directory or its .onnx export")
    parser.add_argument("--ranks", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--tasks", nargs="+", choices=("same", "inverted"), default=["same", "inverted"])
    parser.add_argument("--alpha", type=float, default=16.0)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--train-images", type=int, default=60000, help="fine-tune on the first N images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("runs/lora"))
    return parser


def main() -> None:
    print_table(run(build_parser().parse_args()))


if __name__ == "__main__":
    main()
