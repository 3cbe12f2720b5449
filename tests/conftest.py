from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from hub import Config, Hub
from hub import config as hub_config

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def make_config(**sections: dict[str, Any]) -> Config:
    """Test settings: a free port, no source, plus any section overrides."""
    overrides: dict[str, dict[str, Any]] = {
        "server": {"port": 0},
        "source": {"source": "none"},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return hub_config.load(None, overrides)


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

    async def recv(self, timeout: float = 5) -> Any:
        with trio.fail_after(timeout):
            return msgspec.json.decode(await self.ws.get_message())

    async def request(self, message: dict[str, Any], timeout: float = 5) -> Any:
        await self.send(message)
        return await self.recv(timeout)


async def open_client(node: Hub, **kwargs: Any) -> AsyncIterator[Client]:
    async with open_websocket_url(node.url, **kwargs) as ws:
        yield Client(ws)


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[Client]:
    async with open_websocket_url(hub.url) as ws:
        yield Client(ws)
