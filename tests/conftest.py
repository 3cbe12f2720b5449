from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from hub import Config, Hub
from hub import config as hub_config
from hub.links.connect import connect

if TYPE_CHECKING:
    from tests.redis_server import RedisServer

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ADMIN_PING = {"role": "admin", "unlimited": True}
"""What ``ping`` answers an admin on a WebSocket (rippled's doPing); test clients on
127.0.0.1 are admins by the default ``[admin] ips``."""
ADMIN_PING_TEXT = '{"role":"admin","unlimited":true}'


def make_config(**sections: dict[str, Any]) -> Config:
    """Test settings: a free port, no source, plus any section overrides."""
    overrides: dict[str, dict[str, Any]] = {
        "server": {"port": 0, "drain_seconds": 0, "drain_spread": 0},
        "source": {"source": "none"},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return hub_config.load(None, overrides)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A real ``redis-server`` on a free port (no persistence), killed after the test."""
    from tests.redis_server import RedisServer

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


class Client:
    """A real WebSocket client with helpers to send requests and read JSON replies."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws

    async def send(self, message: Any) -> None:
        await self.ws.send_message(
            message if isinstance(message, str | bytes) else msgspec.json.encode(message).decode()
        )

    async def recv(self, timeout: float = 5) -> Any:  # noqa: ASYNC109
        with trio.fail_after(timeout):
            return msgspec.json.decode(await self.ws.get_message())

    async def request(self, message: dict[str, Any], timeout: float = 5) -> Any:  # noqa: ASYNC109
        await self.send(message)
        return await self.recv(timeout)


@asynccontextmanager
async def open_client(node: Hub, **kwargs: Any) -> AsyncIterator[Client]:
    async with websocket(node.url, **kwargs) as ws:
        yield Client(ws)


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[Client]:
    async with websocket(hub.url) as ws:
        yield Client(ws)


def websocket(url: str, **kwargs: Any) -> AbstractAsyncContextManager[WebSocketConnection]:
    """A test client; :func:`hub.links.connect.connect` closes its socket whoever closes first."""
    return connect(url, **kwargs)


async def start_hub(
    nursery: trio.Nursery, config: Config | None = None, *, methods: Any = None
) -> Hub:
    """A running Hub (``make_config()`` unless given) on a free port, in ``nursery``.

    Call ``node.shutdown()`` to stop it; the ``nursery`` fixture cancels it otherwise.
    """
    node = Hub(config or make_config(), methods=methods)
    await nursery.start(node.run)
    return node


async def expect_close(client: Client, timeout: float = 5) -> int | None:  # noqa: ASYNC109
    """Read (and drop) messages until the hub closes the connection; its close code."""
    with trio.fail_after(timeout):
        try:
            while True:
                await client.ws.get_message()
        except ConnectionClosed as exc:
            return exc.reason.code


async def eventually(condition: Callable[[], bool], timeout: float = 5) -> None:  # noqa: ASYNC109
    """Wait until ``condition()`` holds, failing after ``timeout`` seconds.

    For hub state that changes on I/O the test does not own (a socket the hub closes,
    subscriptions it forgets): there is no event to wait on from outside, so the
    condition is re-checked until the deadline. Never a fixed sleep.
    """
    with trio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110
            await trio.sleep(0.005)
