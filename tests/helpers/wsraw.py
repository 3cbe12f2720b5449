"""A bare wsproto WebSocket client over a trio TCP stream, for tests.

Unlike trio-websocket it does nothing on its own: it answers no ping and no close unless
told to, so tests can play a client that has gone silent, send frames a polite client
never would (binary, oversized, raw bytes) and see every control frame the hub sends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import msgspec
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Request,
    TextMessage,
)


class ConnectionGone(Exception):
    """The TCP stream ended before the event a test waited for."""


class RawClient:
    """One wsproto client connection; ``events()`` yields exactly what the hub sent."""

    def __init__(self, stream: trio.SocketStream, ws: WSConnection) -> None:
        self.stream = stream
        self.ws = ws
        self._pending: deque[Event] = deque()
        self.eof = False

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        target: str = "/",
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
        timeout: float = 5,  # noqa: ASYNC109
        local_address: str | None = None,
        host_header: str | None = None,
        preamble: bytes = b"",
    ) -> RawClient:
        """Connect and complete the handshake. ``host_header`` replaces ``host:port`` as
        the ``Host``; ``preamble`` is sent before the handshake (a PROXY header)."""
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(host, port, local_address=local_address)
            if preamble:
                await stream.send_all(preamble)
            ws = WSConnection(ConnectionType.CLIENT)
            client = cls(stream, ws)
            await client.send(
                Request(
                    host=host_header or f"{host}:{port}",
                    target=target,
                    extra_headers=list(extra_headers),
                )
            )
            event = await client.next_event(timeout)
            if not isinstance(event, AcceptConnection):
                raise AssertionError(f"handshake refused: {event!r}")
            return client

    async def send(self, event: Event) -> None:
        await self.stream.send_all(self.ws.send(event))

    async def send_text(self, text: str) -> None:
        await self.send(TextMessage(data=text))

    async def send_json(self, message: Any) -> None:
        await self.send_text(msgspec.json.encode(message).decode())

    async def send_bytes(self, data: bytes) -> None:
        await self.send(BytesMessage(data=data))

    async def next_event(self, timeout: float = 5) -> Event:  # noqa: ASYNC109
        """The next event from the hub, whatever it is (ping, pong, message, close)."""
        with trio.fail_after(timeout):
            while not self._pending:
                if self.eof:
                    raise ConnectionGone("the hub closed the TCP stream")
                try:
                    data = await self.stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if not data:
                    self.eof = True
                    self.ws.receive_data(None)
                else:
                    self.ws.receive_data(data)
                self._pending.extend(self.ws.events())
            return self._pending.popleft()

    async def next_message(self, timeout: float = 5) -> Any:  # noqa: ASYNC109
        """The next complete data message, JSON-decoded; fails on anything else."""
        event = await self.next_event(timeout)
        if not isinstance(event, Message) or not event.message_finished:
            raise AssertionError(f"expected a whole message, got {event!r}")
        return msgspec.json.decode(event.data)

    async def next_close(self, timeout: float = 5) -> CloseConnection:  # noqa: ASYNC109
        """Skip data and control frames until the hub's close frame; return it."""
        with trio.fail_after(timeout):
            while True:
                event = await self.next_event(timeout)
                if isinstance(event, CloseConnection):
                    return event

    async def wait_eof(self, timeout: float = 5) -> None:  # noqa: ASYNC109
        """Wait until the hub has closed the TCP stream, discarding any events."""
        with trio.fail_after(timeout):
            while True:
                try:
                    await self.next_event(timeout)
                except ConnectionGone:
                    return

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


@asynccontextmanager
async def open_raw(url: str, **kwargs: Any) -> AsyncIterator[RawClient]:
    """A :class:`RawClient` connected to ``ws://host:port``; closed on exit."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    client = await RawClient.connect(parts.hostname, parts.port, **kwargs)
    try:
        yield client
    finally:
        await client.aclose()
