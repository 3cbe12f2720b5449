"""The fixtures every folder shares; helpers live in ``tests/helpers``.

The folders say what a test needs: ``unit`` nothing but the code (no socket, no
process; ``tests/unit/conftest.py`` enforces it), ``integration`` real hubs on port 0
with real clients, ``interop`` real peers (xrpl.js, xrpl-py, nginx, haproxy, Chromium,
redis-server), ``benchmarks`` the benchmark tool. Each test is marked with its folder's
name, so ``-m unit`` (or ``-m "not interop"``) picks a layer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio

from hub import Hub
from hub.edge import spool
from tests.helpers.hubs import Client, make_config, websocket
from tests.helpers.paths import LAYERS, TESTS
from tests.helpers.redis_server import RedisServer
from tests.helpers.testca import Certificates, make_ca


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        layer = item.path.relative_to(TESTS).parts[0]
        if layer in LAYERS:
            item.add_marker(layer)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A real ``redis-server`` on a free port (no persistence), killed after the test."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
async def hub(nursery: trio.Nursery) -> AsyncIterator[Hub]:
    node = Hub(make_config())
    await nursery.start(node.run)
    yield node
    node.shutdown()


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[Client]:
    async with websocket(hub.url) as ws:
        yield Client(ws)


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    """A new test CA and a server chain for 127.0.0.1 and localhost (``openssl``)."""
    return make_ca(tmp_path / "ca")


@pytest.fixture(params=["splice", "portable"])
def spool_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test on each path of :mod:`hub.edge.spool`: ``splice`` (tee and splice,
    Linux only: skipped elsewhere) and ``portable`` (plain ``send``, as on a host without
    them), forced here by turning off ``spool.available``, which :func:`spool.spool`
    consults on every call."""
    if request.param == "portable":
        monkeypatch.setattr(spool, "available", False)
    elif not spool.available:
        pytest.skip("tee and splice are Linux-only")
    return str(request.param)


@pytest.fixture(scope="session")
def node_binary() -> str:
    """``node``, with the pinned xrpl.js of ``tests/interop/js`` installed."""
    from tests.helpers.peers import need_node  # xrpl-py is imported by interop tests only

    return need_node()
