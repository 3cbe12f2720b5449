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


# --- layers: arrows point inward ------------------------------------------------------

ALLOWED: dict[str, set[str]] = {
    # package: the hub packages its modules may import at run time
    "wire": {"wire", "config"},
    "xrpl": {"xrpl", "wire"},
    "core": {"core", "wire", "xrpl", "config", "logs"},
    "edge": {"edge", "core", "wire", "xrpl", "config", "logs"},
    "links": {"links", "core", "wire", "xrpl", "config", "logs", "backoff"},
    "sources": {"sources", "links", "core", "wire", "xrpl", "config", "logs"},
    "cluster": {"cluster", "core", "wire", "xrpl", "config", "logs", "backoff"},
    "app": {
        "app",
        "edge",
        "core",
        "links",
        "sources",
        "cluster",
        "wire",
        "xrpl",
        "config",
        "logs",
        "backoff",
    },
    "config": {"config", "wire"},
    "logs": {"logs", "wire"},
    "backoff": {"backoff"},
}
SANS_IO = ("wire", "xrpl", "core")
FORBIDDEN_IN_SANS_IO = {"socket", "ssl", "ctypes", "fcntl", "select", "coredis", "subprocess"}
NO_TRIO = ("wire", "xrpl")


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(tree: ast.Module) -> set[str]:
    """Top-level names of every module imported at run time (TYPE_CHECKING aside)."""
    tree = ast.parse(ast.unparse(tree))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = [ast.Pass()]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_inside_it(package: str) -> None:
    wrong = sorted(
        f"{name} imports {target}"
        for name, tree in MODULES.items()
        if _package(name) == package
        for target in _imports(tree)
        if target.startswith("hub.") and _package(target) not in ALLOWED[package]
    )
    assert wrong == []


@pytest.mark.parametrize("package", SANS_IO)
def test_the_core_and_the_sans_io_layers_touch_no_socket_or_redis(package: str) -> None:
    banned = FORBIDDEN_IN_SANS_IO | ({"trio"} if package in NO_TRIO else set())
    wrong = sorted(
        f"{name} imports {target}"
        for name, tree in MODULES.items()
        if _package(name) == package
        for target in _imports(tree)
        if target.split(".")[0] in banned
    )
    assert wrong == []


def test_hub_has_a_handful_of_modules_at_the_top() -> None:
    top = sorted(path.name for path in HUB.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "backoff.py", "config.py", "logs.py"]


def test_no_module_in_hub_is_longer_than_about_600_lines() -> None:
    long = {
        path.relative_to(HUB.parent).as_posix(): n
        for path in HUB.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 620
    }
    assert long == {}
