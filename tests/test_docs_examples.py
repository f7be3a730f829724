"""The snippets of README.md, docs/autodiff.md and docs/kotlindl.md that a reader runs as they stand do run, in
order, in one namespace per file (a later snippet continues an earlier one), in a scratch folder. The tutorial (it
downloads Fashion-MNIST and trains ten epochs) runs on a slice of the data in tests/test_end_to_end.py;
docs/layers.md's blocks run in tests/test_docs_layers.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

# file -> the indices of its ```python blocks that run as they stand (the others need data, a GPU or a cluster)
RUNNABLE = {
    "README.md": [1, 2],  # the Functional API, several outputs
    "docs/autodiff.md": [0, 1],  # gradients() of a model, backward() inside a builder
    "docs/kotlindl.md": [0, 1, 2, 3, 4, 5, 6],  # every block: small random data
    "docs/pytorch.md": [0, 1],  # the training loop, freezing and recompiling
}


def _blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


@pytest.mark.parametrize("name", sorted(RUNNABLE))
def test_the_docs_snippets_run_as_written(name, tmp_path, monkeypatch):
    path = ROOT / name
    blocks = _blocks(path)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_example"}
    for index in RUNNABLE[name]:
        exec(compile(blocks[index], f"{path}[python block {index}]", "exec"), namespace)  # the docs' own code


def test_the_runnable_blocks_are_the_ones_meant():
    """A block added before these shifts the indices: the first lines say which blocks they are."""
    assert len(_blocks(ROOT / "docs" / "kotlindl.md")) == len(RUNNABLE["docs/kotlindl.md"])
    readme, autodiff = _blocks(ROOT / "README.md"), _blocks(ROOT / "docs" / "autodiff.md")
    assert "from onnxtrain import Model" in readme[1] and "model.fit([xa, xb], y" in readme[1]
    assert "x_train, kind_train, size_train" in readme[2]
    assert "autodiff.gradients(forward" in autodiff[0] and "ParameterInputBuilder(parameters" in autodiff[1]
