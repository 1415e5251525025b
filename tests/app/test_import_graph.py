"""The import graph of govfn has no circle: every import statement counts, lazy and
type-checking ones included (as for `.importlinter`, whose `layers` contract allows the
siblings it joins with `:` to import each other)."""

from __future__ import annotations

import grimp


def circles(graph: grimp.ImportGraph, root: str) -> list[list[str]]:
    """The groups of modules under `root` that reach each other (Tarjan's algorithm)."""
    modules = sorted(m for m in graph.modules if m == root or m.startswith(root + "."))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in modules:
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_no_module_of_govfn_imports_one_that_imports_it_back() -> None:
    assert circles(grimp.build_graph("govfn"), "govfn") == []
