"""Layering (design.md, issue 15 item 7), checked by reading the import statements of
every module under agent/ (static analysis with ``ast``: nothing is imported).

What counts as an import: every ``import`` and ``from … import`` statement anywhere in
a module, at module level, inside functions and methods (lazy imports), and under
``if TYPE_CHECKING:``. Relative imports are resolved. ``from agent.x import y`` is an
edge to ``agent.x.y`` when that is a module, else to ``agent.x``; the parent packages
that Python imports on the way are not counted as edges (they are not a choice of the
importing module). A lazy or type-only import is still a dependency of the design,
which is why they count: hiding a circle behind a function-level import does not pass.

The same check from the command line: ``python -m tests.test_layers`` prints the
circles and rule breaks it finds (none: "no import circle in agent/ (N modules)").
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "agent"
DEVICE_LIBS = {"smartcard", "nfc", "serial", "evdev", "usb"}
#: lowest first: a package imports nothing from the packages after it
LAYER_ORDER = ["readers", "icao", "qr", "identity", "forward", "api"]
#: item 7: the protocol and transport layers import nothing from these
LOWER = ("icao", "qr", "readers", "forward")
FORBIDDEN_FOR_LOWER = ("sim", "config", "daemon", "api", "cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _imported(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Every ``agent.*`` module this module's import statements name."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield sub if sub in known else target


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {dep for dep in _imported(name, path, known) if dep in known and dep != name}
            for name, path in known.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph)))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return found


def _in(module: str, package: str) -> bool:
    name = f"agent.{package}"
    return module == name or module.startswith(name + ".")


def rule_breaks(graph: dict[str, set[str]]) -> list[str]:
    """Item 7 and the layer order, as "importer imports imported" lines."""
    breaks = []
    for module, deps in sorted(graph.items()):
        for lower in LOWER:
            if _in(module, lower):
                breaks += [f"{module} imports {dep}" for dep in sorted(deps)
                           if any(_in(dep, bad) for bad in FORBIDDEN_FOR_LOWER)]
        for position, lower in enumerate(LAYER_ORDER):
            if _in(module, lower):
                higher = LAYER_ORDER[position + 1:]
                breaks += [f"{module} imports {dep} (above {lower})" for dep in sorted(deps)
                           if any(_in(dep, h) for h in higher)]
    return sorted(set(breaks))


def test_no_import_circle_in_agent() -> None:
    graph = import_graph()
    assert len(graph) > 100  # the walk found the package
    assert circles(graph) == []


def test_the_circle_check_finds_a_circle() -> None:
    graph = {"agent.a": {"agent.b"}, "agent.b": {"agent.c"}, "agent.c": {"agent.a"}, "agent.d": {"agent.a"}}
    assert circles(graph) == [["agent.a", "agent.b", "agent.c"]]


def test_lazy_and_type_only_imports_count(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from agent.daemon import Daemon\n"
                      "def f():\n    from agent.icao import pa\n    import agent.api.server\n", encoding="utf-8")
    known = {"agent.daemon": module, "agent.icao": module, "agent.icao.pa": module, "agent.api.server": module}
    found = {name for name in _imported("agent.m", module, known) if name in known}
    assert found == {"agent.daemon", "agent.icao.pa", "agent.api.server"}


def test_lower_layers_import_nothing_from_above() -> None:
    assert rule_breaks(import_graph()) == []


def test_the_rules_catch_a_break() -> None:
    assert rule_breaks({"agent.icao.read": {"agent.identity"}, "agent.readers.registry": {"agent.config"}}) == [
        "agent.icao.read imports agent.identity (above icao)", "agent.readers.registry imports agent.config"]


@pytest.mark.parametrize("package", ["icao", "qr", "forward"])
def test_protocol_layers_import_no_device_library(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
        bad = {n for n in names if n.split(".")[0] in DEVICE_LIBS}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_cv2_capture_only_in_readers() -> None:
    for path in ROOT.rglob("*.py"):
        if path.parent.name == "readers":
            continue
        assert "VideoCapture" not in path.read_text(encoding="utf-8"), path


if __name__ == "__main__":
    found_graph = import_graph()
    found = circles(found_graph)
    for circle in found:
        print("import circle:", " → ".join(circle))
    for line in rule_breaks(found_graph):
        print("layer rule broken:", line)
    if not found:
        print(f"no import circle in agent/ ({len(found_graph)} modules, "
              f"{sum(len(d) for d in found_graph.values())} imports)")
    raise SystemExit(1 if found or rule_breaks(found_graph) else 0)
