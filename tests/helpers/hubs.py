"""Real hubs on a free port and real WebSocket clients of them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import msgspec
import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    open_websocket_url,
    wrap_client_stream,
)

from hub import Config, Hub
from hub import config as hub_config
from hub.links.connect import connect

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


async def start_hub(
    nursery: trio.Nursery, config: Config | None = None, *, methods: Any = None
) -> Hub:
    """A running Hub (``make_config()`` unless given) on a free port, in ``nursery``.

    Call ``node.shutdown()`` to stop it; the ``nursery`` fixture cancels it otherwise.
    """
    node = Hub(config or make_config(), methods=methods)
    await nursery.start(node.run)
    return node


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


def websocket(url: str, **kwargs: Any) -> AbstractAsyncContextManager[WebSocketConnection]:
    """A test client; :func:`hub.links.connect.connect` closes its socket whoever closes first."""
    return connect(url, **kwargs)


@asynccontextmanager
async def open_client(node: Hub, **kwargs: Any) -> AsyncIterator[Client]:
    async with websocket(node.url, **kwargs) as ws:
        yield Client(ws)


@asynccontextmanager
async def client_from(node: Hub, source_ip: str) -> AsyncIterator[Client]:
    """A WebSocket client whose socket is bound to ``source_ip`` (any 127.x address)."""
    stream = await trio.open_tcp_stream("127.0.0.1", node.port, local_address=source_ip)
    try:
        async with trio.open_nursery() as nursery:
            ws = await wrap_client_stream(nursery, stream, "127.0.0.1", "/")
            try:
                yield Client(ws)
            finally:
                await ws.aclose()
    finally:
        await stream.aclose()


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


@asynccontextmanager
async def subscriber(node: Hub, streams: list[str]) -> AsyncIterator[Client]:
    """A client subscribed to ``streams`` (API v2), with room for a long backlog."""
    async with open_websocket_url(node.url, message_queue_size=10_000) as ws:
        client = Client(ws)
        reply = await client.request({"command": "subscribe", "streams": streams, "api_version": 2})
        assert reply["status"] == "success"
        yield client
