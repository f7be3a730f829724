"""docs/layers.md's examples run as written: each Python block on its own, in a namespace of its own, as a reader
copies one (the custom layers of "Write your own layer" build, train and update their state)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from onnxtrain.autodiff._rules import RULES

DOC = Path(__file__).parent.parent / "docs" / "layers.md"


@pytest.mark.slow
def test_layers_guide_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 4
    rules = dict(RULES)
    try:
        for block in blocks:
            namespace: dict[str, object] = {"__name__": "docs_layers"}
            exec(compile(block, str(DOC), "exec"), namespace)  # the guide's own code, alone
    finally:  # the guide registers a rule (Shrink's): leave the table as the other tests know it
        RULES.clear()
        RULES.update(rules)
