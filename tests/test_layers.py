"""The shape of the package: the import contracts hold and no import cycle exists.

The contracts themselves (layers, peers) live in pyproject.toml under `[tool.importlinter]`; the
layers are described in docs/architecture.md.
"""

from __future__ import annotations

import collections
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp

ROOT = Path(__file__).parents[1]


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def _cycles(nodes: Iterable[str], edges: Mapping[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = {stack.pop()}
            while node not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.append(frozenset(component))

    for node in nodes:
        if node not in index:
            visit(node)
    return found


def import_cycles(graph: grimp.ImportGraph) -> list[frozenset[str]]:
    """Cycles among the children of every package, each child standing for all it contains.

    A package's own `__init__` is a node beside its children, so a module importing its package
    while the package imports it is a cycle; so are two modules of two sibling packages importing
    each other's package. Module-level cycles show at the level of their closest common package.
    """
    cycles: list[frozenset[str]] = []
    for package in sorted(m for m in graph.modules if graph.find_children(m)):
        prefix = package + "."

        def node(module: str, package: str = package, prefix: str = prefix) -> str | None:
            if module == package:
                return package
            if not module.startswith(prefix):
                return None
            return prefix + module[len(prefix) :].split(".")[0]

        edges: dict[str, set[str]] = collections.defaultdict(set)
        nodes = set()
        for module in graph.modules:
            source = node(module)
            if source is None:
                continue
            nodes.add(source)
            for imported in graph.find_modules_directly_imported_by(module):
                target = node(imported)
                if target is not None and target != source:
                    edges[source].add(target)
        cycles.extend(_cycles(sorted(nodes), edges))
    return cycles


def test_no_import_cycles() -> None:
    # Imports under `if TYPE_CHECKING:` are left out: they never run. Lazy imports inside functions count.
    graph = grimp.build_graph("batchd", exclude_type_checking_imports=True, cache_dir=None)
    cycles = sorted(sorted(c) for c in import_cycles(graph))
    assert not cycles, f"import cycles: {cycles}"


def test_cycle_finder_sees_module_and_package_cycles() -> None:
    graph = grimp.ImportGraph()
    for module in ("p", "p.a", "p.b", "p.b.x", "p.b.y", "p.c", "p.d"):
        graph.add_module(module)
    graph.add_import(importer="p.a", imported="p.b.x")
    graph.add_import(importer="p.b.y", imported="p.a")  # p.a -> p.b -> p.a, through two modules of p.b
    graph.add_import(importer="p", imported="p.c")
    graph.add_import(importer="p.c", imported="p")  # a module and its package's __init__
    graph.add_import(importer="p.d", imported="p.b.x")  # one way only: no cycle
    assert set(import_cycles(graph)) == {frozenset({"p.a", "p.b"}), frozenset({"p", "p.c"})}
