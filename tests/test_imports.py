"""The package's modules import each other without a cycle, so each layer of it can be read and tested alone.

Every import counts: at module level, inside functions and under `if TYPE_CHECKING:`. A function-level import
hides a cycle from Python, not from the reader. `from onnxtrain import x` is the submodule `onnxtrain.x` when x
is a module and the package `onnxtrain` otherwise; since the package `__init__` imports every public module, a
module inside the package that imports a name from the package itself closes a cycle and is refused too.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

PACKAGE = "onnxtrain"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """{dotted module name: path} of every module of the package under `root`."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """The modules of the package that one import statement in `module` loads by name."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in known:
                yield alias.name
        return
    base = node.module or ""
    if node.level:  # relative: resolved against the importing module's package
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    if base not in known:
        return
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        yield submodule if submodule in known else base


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """{module: the package's modules it imports anywhere in its source}."""
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                targets.update(_imported(node, name, path.name == "__init__.py", known))
        targets.discard(name)
        graph[name] = targets
    return graph


def strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (each an import cycle), largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        # Tarjan's algorithm, iterative: (node, iterator over its successors)
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components, key=len, reverse=True)


def shortest_cycle(graph: Mapping[str, set[str]], component: list[str]) -> list[str]:
    """One shortest import cycle among the modules of `component`, first module repeated at the end."""
    members = set(component)
    best: list[str] = []
    for start in component:
        parents: dict[str, str | None] = {start: None}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if start in graph[node]:  # breadth first: the first way back is a shortest one
                path = [node]
                while (parent := parents[path[-1]]) is not None:
                    path.append(parent)
                cycle = [*reversed(path), start]
                if not best or len(cycle) < len(best):
                    best = cycle
                break
            for successor in sorted(graph[node] & members):
                if successor not in parents:
                    parents[successor] = node
                    queue.append(successor)
    return best


def describe(graph: Mapping[str, set[str]], components: list[list[str]]) -> str:
    lines = []
    for component in components:
        cycle = shortest_cycle(graph, component)
        lines.append(f"{len(component)} modules import each other in a cycle, e.g. {' -> '.join(cycle)}.")
        lines.append(f"  all of them: {', '.join(component)}")
    return "\n".join(lines)


@pytest.mark.slow
def test_the_package_has_no_import_cycle():
    graph = import_graph(module_files())
    cycles = strongly_connected(graph)
    assert not cycles, (
        "Import cycles (counting imports inside functions and under TYPE_CHECKING; a name imported from the "
        f"package `{PACKAGE}` itself counts as importing its __init__, which imports everything):\n"
        + describe(graph, cycles)
    )


def test_the_checker_finds_a_cycle(tmp_path):
    package = tmp_path / PACKAGE
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from onnxtrain.a import A\n__version__ = '0'\n")
    (package / "a.py").write_text("A = 1\ndef f():\n    from onnxtrain.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import a\n")
    (package / "c.py").write_text("from onnxtrain import __version__\n")
    graph = import_graph(module_files(package))
    assert graph["onnxtrain.a"] == {"onnxtrain.sub.b"}
    assert graph["onnxtrain.sub.b"] == {"onnxtrain.a"}
    assert graph["onnxtrain.c"] == {"onnxtrain"}
    pair = ["onnxtrain.a", "onnxtrain.sub.b"]
    assert strongly_connected(graph) == [pair]
    assert shortest_cycle(graph, pair) == [*pair, "onnxtrain.a"]
    (package / "a.py").write_text("from onnxtrain.c import x\n")
    cycles = strongly_connected(import_graph(module_files(package)))
    assert cycles == [["onnxtrain", "onnxtrain.a", "onnxtrain.c"]]
