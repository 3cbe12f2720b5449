"""The test tree mirrors ``hub/``, and unit tests stay unit tests.

- Every module of ``hub`` is imported by at least one test file, unless it is listed in
  :data:`UNTESTED_BY_IMPORT` with the reason.
- ``tests/unit/<package>/test_<name>.py`` tests ``hub/<package>/<name>.py`` (and
  ``test_<package>.py`` the package's ``__init__``): the module exists and the file
  imports it (the few files about the whole checkout are listed in
  :data:`ABOUT_THE_CHECKOUT`). Folders of ``tests/integration`` and ``tests/interop``
  are named after packages of ``hub``.
- A unit test that opens a socket, resolves a name or starts a process fails
  (:mod:`tests.helpers.isolation`); the tests below check that the guard refuses each.
"""

from __future__ import annotations

import ast
import functools
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.helpers.isolation import GUARD, IOForbidden
from tests.helpers.paths import HUB, LAYERS, ROOT, TESTS

UNTESTED_BY_IMPORT: dict[str, str] = {
    "hub.__main__": "two lines that call hub.app.cli.main: every test that runs `python -m hub`",
    "hub.core.ports": (
        "the protocols the node's adapters implement, checked by mypy; exercised through "
        "the adapters (tests/unit/cluster, tests/unit/links, tests/unit/sources)"
    ),
    "hub.app.rlimit": (
        "raises the process's own open-file limit, which a test process must keep: "
        "run by `hub serve` in tests/integration/edge/test_drain.py"
    ),
}
"""Modules with logic that no test file imports, each with the reason and where it is
exercised. A module of nothing but a docstring and imports (a package's ``__init__``)
needs no test."""

ABOUT_THE_CHECKOUT = {
    "test_architecture.py": "the shape of hub/ itself",
    "test_docs.py": "the documentation against the code",
    "test_helpers.py": "the test helpers",
    "test_layout.py": "this file: the tests against hub/",
    "test_readme.py": "the README against .ci/run",
}
"""Files of tests/unit named after no module, and what they test instead."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(HUB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def has_logic(path: Path) -> bool:
    """Whether the module does anything beyond its docstring, imports and ``__all__``."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__":
            continue
        return True
    return False


MODULES = {_module_name(path): path for path in sorted(HUB.rglob("*.py"))}
WITH_LOGIC = {name for name, path in MODULES.items() if has_logic(path)}


def _lazy_names() -> dict[str, str]:
    """``hub``'s lazily imported names (``from hub import Hub``) and their modules."""
    tree = ast.parse((HUB / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign) and "_WHERE" in ast.unparse(node):
            assert node.value is not None
            where = ast.literal_eval(node.value)
            return {name: module for name, (module, _) in where.items()}
    raise AssertionError("hub/__init__.py no longer maps its lazy names in _WHERE")


LAZY = _lazy_names()


@functools.cache
def imported_modules(path: Path) -> set[str]:
    """The modules of ``hub`` that the file at ``path`` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in MODULES}
        elif isinstance(node, ast.ImportFrom) and node.module in MODULES and not node.level:
            found.add(node.module)
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                if child in MODULES:
                    found.add(child)
                elif node.module == "hub" and alias.name in LAZY:
                    found.add(LAZY[alias.name])
    return found


def all_test_files() -> Iterator[Path]:
    for layer in LAYERS:
        yield from sorted((TESTS / layer).rglob("test_*.py"))


def test_every_test_file_is_in_a_layer_that_pytest_runs() -> None:
    """``testpaths`` names the layers: a test file anywhere else would never run."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    assert settings["ini_options"]["testpaths"] == [f"tests/{layer}" for layer in LAYERS]
    layers = {TESTS / layer for layer in LAYERS}
    astray = [
        str(path.relative_to(TESTS))
        for path in sorted(TESTS.rglob("test_*.py"))
        if "node_modules" not in path.parts and not layers & set(path.parents)
    ]
    assert astray == []


def test_every_module_of_hub_is_imported_by_a_test() -> None:
    imported = set().union(*(imported_modules(path) for path in all_test_files()))
    untested = sorted(WITH_LOGIC - imported - set(UNTESTED_BY_IMPORT))
    assert untested == [], "no test file imports these; test them or say why not"
    stale = sorted(set(UNTESTED_BY_IMPORT) - set(MODULES))
    assert stale == [], "listed as untested but gone from hub/"
    now_tested = sorted(set(UNTESTED_BY_IMPORT) & imported)
    assert now_tested == [], "listed as untested but imported by a test: drop them from the list"


def test_each_unit_test_file_is_named_after_the_module_it_imports() -> None:
    wrong = []
    for path in sorted((TESTS / "unit").rglob("test_*.py")):
        relative = path.relative_to(TESTS / "unit")
        if relative.parent == Path(".") and path.name in ABOUT_THE_CHECKOUT:
            continue
        name = path.stem.removeprefix("test_")
        package = relative.parent.parts
        # tests/unit/<package>/test_<package>.py tests the package's own __init__
        module = ".".join(["hub", *package] if package[-1:] == (name,) else ["hub", *package, name])
        if module not in MODULES:
            wrong.append(f"{relative}: there is no {module}")
        elif module not in imported_modules(path):
            wrong.append(f"{relative}: does not import {module}")
    assert wrong == []


def test_the_folders_of_each_layer_are_packages_of_hub() -> None:
    packages = {path.parent.relative_to(HUB) for path in HUB.rglob("__init__.py")}
    strays = [
        str(folder.relative_to(TESTS))
        for layer in ("unit", "integration", "interop")
        for folder in sorted((TESTS / layer).rglob("*"))
        if folder.is_dir()
        and folder.name not in ("__pycache__", "js", "node_modules")
        and "js" not in folder.relative_to(TESTS / layer).parts
        and folder.relative_to(TESTS / layer) not in packages
    ]
    assert strays == []


def test_unit_tests_run_with_the_guard_armed() -> None:
    assert GUARD.armed


def refused(call: object) -> list[str]:
    """What the guard refused and recorded for ``call()``, which must raise IOForbidden;
    forgotten afterwards, so that this test itself passes."""
    assert callable(call)
    with pytest.raises(IOForbidden):
        call()
    return GUARD.take()


def test_a_socket_is_refused() -> None:
    assert refused(socket.socket) == ["socket.__new__(2, 1, 0)"]


def test_a_name_lookup_is_refused() -> None:
    (seen,) = refused(lambda: socket.getaddrinfo("localhost", 80))
    assert seen.startswith("socket.getaddrinfo")


def test_a_process_is_refused() -> None:
    (seen,) = refused(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
    assert seen.startswith("subprocess.Popen")


def test_the_guard_refuses_forks_and_spawns() -> None:
    for event in ("os.fork", "os.posix_spawn", "os.exec", "os.system"):
        with pytest.raises(IOForbidden):
            GUARD(event, ())
    assert len(GUARD.take()) == 4
    GUARD("open", ("/dev/null", "r", 0))  # reading a file is no I/O it minds
    assert GUARD.take() == []


async def test_trio_may_wake_itself_but_not_open_a_socket() -> None:
    """trio.run's own socketpair is allowed (this test runs in one); a trio socket is not."""
    with pytest.raises(IOForbidden):
        trio.socket.socket()
    assert len(GUARD.take()) == 1
    with pytest.raises(IOForbidden):
        await trio.run_process([sys.executable, "-c", "pass"])
    assert GUARD.take()[0].startswith("subprocess.Popen")


def test_a_refusal_caught_and_dropped_still_fails_the_test() -> None:
    try:
        socket.socket()
    except Exception:  # code that swallows the error must not hide the I/O
        pass
    assert GUARD.seen == ["socket.__new__(2, 1, 0)"]
    GUARD.take()


def test_the_guard_is_off_outside_unit_tests() -> None:
    GUARD.armed = False
    try:
        GUARD("socket.__new__", (None, 2, 1, 0))
        assert GUARD.take() == []
    finally:
        GUARD.armed = True
