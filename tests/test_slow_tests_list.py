"""tests/slow_tests.txt (written by tools/slow_tests.py, read by conftest.py) names tests that exist."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from conftest import SLOW_LIST, _listed_slow_tests

ROOT = SLOW_LIST.parent.parent


@cache
def _test_functions(path: Path) -> frozenset[str]:
    """The names a test can have in the file: its functions, and the module-level names assigned (tables of tests
    made by a factory: `test_a, test_b = table_tests(CASES)`)."""
    tree = ast.parse(path.read_text())
    names = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    for statement in tree.body:
        if isinstance(statement, ast.Assign):
            names |= {
                name.id for target in statement.targets for name in ast.walk(target) if isinstance(name, ast.Name)
            }
    return frozenset(names)


def test_every_listed_test_names_a_test_function_of_an_existing_file() -> None:
    listed = _listed_slow_tests()
    assert listed, f"{SLOW_LIST} lists no test"
    stale = []
    for node in sorted(listed):
        file, _, name = node.partition("::")
        path = ROOT / file
        if not path.is_file() or name.split("[")[0] not in _test_functions(path):
            stale.append(node)
    assert not stale, f"run `python tools/slow_tests.py` again: {SLOW_LIST.name} names tests that are gone: {stale}"
