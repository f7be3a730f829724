"""Datasets: the Dataset container fit/evaluate consume, the IDX reader, Fashion-MNIST, and folders of images.

Example:
    >>> from onnxtrain.datasets import fashion_mnist
    >>> train, test = fashion_mnist()  # doctest: +SKIP
"""

from __future__ import annotations

from ._dataset import Dataset, as_dataset
from ._fashion_mnist import FASHION_MNIST_CLASSES, fashion_mnist
from ._idx import read_idx
from ._image_folder import image_dataset_from_directory

__all__ = [
    "FASHION_MNIST_CLASSES",
    "Dataset",
    "as_dataset",
    "fashion_mnist",
    "image_dataset_from_directory",
    "read_idx",
]
