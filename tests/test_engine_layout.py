"""The engine's shape: small modules, no import cycle, a worker side that never imports it.

Parsed with :mod:`ast`, nothing is imported: an import inside a function
counts like one at the top (a cycle hidden in a function is still a cycle);
only ``if TYPE_CHECKING:`` blocks (never executed) are left out.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AUTOGRADER = ROOT / "autograder"
MAX_LINES = 450  # per module of autograder/, suites included


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(AUTOGRADER.rglob("*.py"))}
PACKAGES = {module_name(p) for p in MODULES.values() if p.name == "__init__.py"}


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:``."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
                continue
            todo.append(child)
    return out


def engine_imports(name: str) -> dict[str, int]:
    """The ``autograder`` modules that module ``name`` imports: module -> line."""
    path = MODULES[name]
    package = name if name in PACKAGES else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from pkg import sub`` imports the submodule; ``from pkg import name`` the package
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            targets = subs if len(subs) == len(node.names) else [base, *subs]
        for target in targets:
            if target in MODULES and target != name:
                found.setdefault(target, node.lineno)
    return found


def test_no_module_of_the_engine_is_too_long() -> None:
    long = {str(p.relative_to(ROOT)): n for p in MODULES.values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """A cycle of ``graph`` as ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycle_among_engine_modules() -> None:
    graph = {name: engine_imports(name) for name in MODULES}
    cycle = find_cycle(graph)
    if cycle:
        where = [f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)]
        pytest.fail("import cycle: " + " -> ".join(where) + f" -> {cycle[-1]}")


def test_the_checks_can_fail() -> None:
    """The parser resolves the import forms the engine uses, and a cycle is found."""
    assert "autograder.sandbox.sandbox" in engine_imports("autograder.sandbox.zygote")
    assert "autograder.sandbox.uids" in engine_imports("autograder.sandbox.reaping")
    assert "autograder.sandbox.sandbox" in engine_imports("autograder.sandbox")
    # TYPE_CHECKING-only imports are left out (they never run)
    assert "autograder.sandbox.zygote" not in engine_imports("autograder.sandbox.sandbox")
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {}}) is None
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"b": 3}}) == ["b", "c", "b"]


def test_worker_side_imports_only_the_standard_library() -> None:
    """The files copied next to the worker (``launch.WORKER_FILES``) never import
    ``autograder`` (a confined worker cannot see it) nor any third-party package but
    numpy and the build tools; they import each other as ``_autograder_<name>``."""
    from autograder.sandbox.launch import WORKER_FILES

    allowed_third_party = {"numpy", "torch", "Cython", "setuptools"}
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    bad = []
    for path in WORKER_FILES:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for mod in names:
                top = mod.split(".")[0]
                if not (top in stdlib or top in allowed_third_party
                        or top.startswith("_autograder_")):
                    bad.append(f"{path.name}:{node.lineno} imports {mod}")
    assert bad == []
    assert {p.name for p in WORKER_FILES} >= {"worker.py", "protocol.py", "jail.py"}
