"""The shape of ``hub/`` itself: short functions, no import cycles, no reaching in.

These are the rules ``docs/architecture.md`` states; each test names what broke them."""

from __future__ import annotations

import ast
from collections.abc import Iterator

import pytest

from tests.helpers.paths import HUB

MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(HUB.rglob("*.py")):
        parts = path.relative_to(HUB.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(), str(path))
    return out


MODULES = _modules()


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _runtime_imports(name: str, tree: ast.Module) -> set[str]:
    """Modules of ``hub`` that ``name`` imports when it runs (TYPE_CHECKING blocks aside)."""
    package = name if (HUB.parent / name.replace(".", "/") / "__init__.py").exists() else ""
    base = package or name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("hub")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base.split(".")[: len(base.split(".")) - node.level + 1]
                target = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if not target.startswith("hub"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return found - {name}


def test_no_function_in_hub_is_longer_than_60_lines() -> None:
    long = [
        f"{name}.{fn.name} ({(fn.end_lineno or fn.lineno) - fn.lineno + 1} lines)"
        for name, tree in MODULES.items()
        for fn in _functions(tree)
        if (fn.end_lineno or fn.lineno) - fn.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_hub_modules_import_no_cycle() -> None:
    graph = {
        name: _runtime_imports(name, ast.parse(ast.unparse(tree))) for name, tree in MODULES.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for dep in sorted(graph.get(name, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_no_module_touches_another_objects_private_names() -> None:
    """``x._name`` only on ``self``/``cls`` (a module's own ``_names`` are fine)."""
    found = []
    for name, tree in MODULES.items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                found.append(f"{name}:{node.lineno} {ast.unparse(node)}")
    assert found == []
