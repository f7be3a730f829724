"""Write how Keras 3's `image_dataset_from_directory` indexes a folder of images, for
tests/test_datasets_image_folder.py: tests/data/keras/image_folder_index.json.

Keras finds the files, orders them, shuffles them with the seed and cuts off the validation subset in numpy alone
(`keras.src.utils.dataset_utils.index_directory` and `get_training_or_validation_split`, exactly what
`image_dataset_from_directory` calls before it reads any image), so this runs without TensorFlow or Pillow: the
files of LAYOUT are empty. For each case the file holds the keyword arguments, the class names, and the files (paths
relative to the folder, with "/") with their labels in Keras' order: the order of `dataset.file_paths`.

Runs in a Python with Keras 3 (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_image_folder_fixtures.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras
from keras.src.utils import dataset_utils
from keras.src.utils.image_dataset_utils import ALLOWLIST_FORMATS

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "image_folder_index.json"

# Three classes (an upper-case name sorts first), upper-case and mixed suffixes, a file of another kind, a nested
# folder, a hidden folder, an image outside any class folder, and a linked folder (LINKS) inside a class.
LAYOUT = [
    "Bird/b1.jpeg",
    "Bird/b2.png",
    "Bird/b3.png",
    "cat/c1.png",
    "cat/c10.png",
    "cat/c2.jpg",
    "cat/C3.JPG",
    "cat/notes.txt",
    "dog/d1.png",
    "dog/d2.bmp",
    "dog/d3.png",
    "dog/puppies/p1.png",
    "dog/puppies/p2.gif",
    ".hidden/h1.png",
    "loose.png",
]
LINKS = {"dog/linked": "../.hidden"}  # link -> target, relative to the link's folder

# case -> keyword arguments of image_dataset_from_directory that decide the files and labels
CASES: dict[str, dict[str, Any]] = {
    "sorted": {"shuffle": False},
    "shuffled": {"shuffle": True, "seed": 1337},
    "training": {"shuffle": True, "seed": 7, "validation_split": 0.3, "subset": "training"},
    "validation": {"shuffle": True, "seed": 7, "validation_split": 0.3, "subset": "validation"},
    "training_unshuffled": {"shuffle": False, "validation_split": 0.25, "subset": "training"},
    "validation_unshuffled": {"shuffle": False, "validation_split": 0.25, "subset": "validation"},
    "class_names": {"shuffle": False, "class_names": ["dog", "cat"]},
    "follow_links": {"shuffle": False, "follow_links": True},
    "no_labels": {"shuffle": False, "labels": None},
    "no_labels_shuffled": {"shuffle": True, "seed": 3, "labels": None},
}


def make_layout(root: Path) -> None:
    """The empty files of LAYOUT and the links of LINKS under `root` (the tests make the same tree of images)."""
    for name in LAYOUT:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    for link, target in LINKS.items():
        (root / link).symlink_to(target, target_is_directory=True)


def keras_index(root: Path, case: dict[str, Any]) -> dict[str, Any]:
    """Keras' files, labels and class names for `case`, as image_dataset_from_directory computes them."""
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints "Found ... files"
        paths, labels, class_names = dataset_utils.index_directory(
            str(root),
            case.get("labels", "inferred"),
            formats=ALLOWLIST_FORMATS,
            class_names=case.get("class_names"),
            shuffle=case["shuffle"],
            seed=case.get("seed"),
            follow_links=case.get("follow_links", False),
        )
        if "subset" in case:
            paths, labels = dataset_utils.get_training_or_validation_split(
                paths, labels, case["validation_split"], case["subset"]
            )
    return {
        "arguments": case,
        "class_names": class_names,
        "files": [Path(path).relative_to(root).as_posix() for path in paths],
        "labels": None if labels is None else [int(label) for label in labels],
    }


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "images"
        make_layout(root)
        cases = {name: keras_index(root, case) for name, case in CASES.items()}
    fixture = {"keras_version": keras.__version__, "layout": LAYOUT, "links": LINKS, "cases": cases}
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
