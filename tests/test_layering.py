"""The project's import graph has no cycles, and ``accounts`` stays the ground floor.

The graph is read from the source with ``ast``, not by importing: every ``import`` statement
counts, at module level or inside a function (a lazy import still ties the two modules
together, and only hides the cycle until the day someone moves it to the top).

Edges: ``import a.b.c`` is an edge to ``a.b.c``; ``from a.b import c`` is an edge to ``a.b.c``
when that is a module, else to ``a.b`` (the package's ``__init__``). Relative imports are
resolved. The parents Python runs implicitly on the way to a submodule are not edges: only what
a module names. So a submodule that imports a name from its own package's ``__init__``, while that
``__init__`` imports the submodule to re-export it, is a cycle, and this test says so.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("accounts", "api", "asrplatform", "transcription", "bench", "asrclient")
GROUND_FLOOR = "accounts"
ABOVE_GROUND = ("transcription", "api")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        root = REPO / package
        if not (root / "__init__.py").exists():
            continue
        for path in sorted(root.rglob("*.py")):
            modules[_module_name(path)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` if it is a project module, else its longest prefix that is one (None if outside)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported project module, line) for every import statement in the file."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target is not None:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = module.split(".") if is_package else module.split(".")[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, node.module] if node.module else base_parts)
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                target = candidate if candidate in modules else _resolve(base, modules)
                if target is not None:
                    yield target, node.lineno


def import_graph() -> dict[str, dict[str, int]]:
    """module → {imported module: line of the first import of it}."""
    modules = project_modules()
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges = graph.setdefault(module, {})
        for target, line in _imports(module, path, modules):
            if target != module:
                edges.setdefault(target, line)
    return graph


def strongly_connected_components(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; only components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
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
    return components


def _describe(component: list[str], graph: dict[str, dict[str, int]]) -> str:
    members = set(component)
    lines = [f"cycle among {len(component)} modules:"]
    for module in component:
        for target, line in sorted(graph[module].items()):
            if target in members:
                lines.append(f"  {module}:{line} -> {target}")
    return "\n".join(lines)


def test_the_project_has_no_import_cycles():
    graph = import_graph()
    cycles = strongly_connected_components(graph)
    assert not cycles, "\n\n".join(_describe(c, graph) for c in cycles)


def _unit(module: str) -> str:
    """The layer a module belongs to: its subpackage (``transcription.dispatch``), or itself when it
    sits at the top of its package (``transcription.metrics``)."""
    parts = module.split(".")
    if len(parts) >= 3:
        return ".".join(parts[:2])
    return module


def test_no_two_subpackages_import_each_other():
    """Module-level acyclic is not enough: ``dispatch/`` and ``workers/`` once imported each other
    through different modules, which makes them one layer in all but name."""
    graph = import_graph()
    units: dict[str, dict[str, int]] = {}
    where: dict[tuple[str, str], str] = {}
    for module, edges in graph.items():
        unit = _unit(module)
        units.setdefault(unit, {})
        for target, line in edges.items():
            target_unit = _unit(target)
            if target_unit != unit:
                units[unit].setdefault(target_unit, line)
                where.setdefault((unit, target_unit), f"{module}:{line} -> {target}")
    for unit in list(units.values()):
        for target in unit:
            units.setdefault(target, {})
    cycles = strongly_connected_components(units)
    assert not cycles, "\n\n".join(
        "layers importing each other:\n" + "\n".join(f"  {where[(a, b)]}" for a in c for b in units[a] if b in c)
        for c in cycles
    )


def test_accounts_imports_nothing_from_the_floors_above():
    graph = import_graph()
    offences = [
        f"{module}:{line} -> {target}"
        for module, edges in graph.items()
        if module.split(".")[0] == GROUND_FLOOR
        for target, line in sorted(edges.items())
        if target.split(".")[0] in ABOVE_GROUND
    ]
    assert not offences, "accounts is the ground floor:\n" + "\n".join(offences)


def test_the_graph_reader_sees_relative_function_level_and_package_imports():
    """The checks above only mean something if the reader finds these edges."""
    graph = import_graph()
    assert "transcription.engine.session" in graph["transcription.engine"]  # a package re-exporting
    assert "transcription.dispatch.local" in graph["transcription.dispatch"]  # inside a function
    assert "bench.server" in graph["bench.cluster"]  # relative: ``from .server import ...``
    assert "transcription.engine" in graph["transcription.engine_settings"] or any(
        target.startswith("transcription.engine.") for target in graph["transcription.engine_settings"]
    )
