"""A small residual network on Fashion-MNIST, written with the Functional API.

Two residual blocks (Conv2D-BatchNormalization-ReLU-Conv2D-BatchNormalization, plus the block's input, then ReLU)
between a stem convolution and global average pooling: skip connections, BatchNormalization's moving statistics
and a channels-first graph with one Transpose after the input. Trains on the portable engine, evaluates on the
test set, saves the model and exports the inference graph.

Usage: python examples/residual_cnn.py [--epochs 2] [--train-images 60000] [--output runs/residual-cnn]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from onnxtrain import Model, WritingMode
from onnxtrain.datasets import fashion_mnist
from onnxtrain.layers import (
    Activation,
    Add,
    BatchNormalization,
    Conv2D,
    Dense,
    GlobalAveragePooling2D,
    Input,
    MaxPooling2D,
    SymbolicTensor,
)


def residual_block(x: SymbolicTensor, filters: int) -> SymbolicTensor:
    """relu(x + BN(conv(relu(BN(conv(x))))))."""
    y = Conv2D(filters, 3, padding="same", activation="linear", use_bias=False)(x)
    y = Activation("relu")(BatchNormalization()(y))
    y = Conv2D(filters, 3, padding="same", activation="linear", use_bias=False)(y)
    y = BatchNormalization()(y)
    return Activation("relu")(Add()([x, y]))


def residual_cnn(filters: int = 32, seed: int = 42) -> Model:
    inputs = Input(28, 28, 1, name="image")
    x = Conv2D(filters, 3, padding="same", activation="relu")(inputs)
    x = residual_block(x, filters)
    x = MaxPooling2D(2)(x)
    x = residual_block(x, filters)
    x = GlobalAveragePooling2D()(x)
    return Model(inputs=inputs, outputs=Dense(10, activation="linear")(x), name="residual_cnn", seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-images", type=int, default=60000, help="train on the first N images")
    parser.add_argument("--output", type=Path, default=Path("runs/residual-cnn"))
    args = parser.parse_args()
    train, test = fashion_mnist()
    x, y = train.x[: args.train_images], train.y[: args.train_images]
    with residual_cnn() as model:
        model.summary()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x, y, epochs=args.epochs, batch_size=100, verbose=2)
        loss, accuracy = model.evaluate(test, batch_size=100)
        print(f"Test accuracy: {accuracy:.4f} (loss {loss:.4f})")
        saved = model.save(args.output / "model", writing_mode=WritingMode.OVERRIDE)
        exported = model.export(args.output / "residual_cnn.onnx", writing_mode=WritingMode.OVERRIDE)
        print(f"Saved {saved}; exported {exported}")


if __name__ == "__main__":
    main()
