"""Client WebSocket connections for the hub's own outgoing links (upstream, forwarding).

trio-websocket 0.12.2 leaves the client's socket open when the *server* starts the
closing handshake, so a relay reconnecting to a restarted upstream would leak a file
descriptor each time. Here the TCP (or TLS) stream is opened by us and always closed
by us, and trio-websocket only runs the protocol over it. The handshake is bounded
too: trio-websocket waits forever for the reply to an upgrade that a server accepted
on TCP and then closed (a proxy with no backend, say).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import trio
from trio_websocket import ConnectionTimeout, WebSocketConnection, wrap_client_stream

HANDSHAKE_TIMEOUT = 10.0


@asynccontextmanager
async def connect(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
    **kwargs: Any,
) -> AsyncIterator[WebSocketConnection]:
    """A connected client for ``ws://`` or ``wss://`` ``url``; its socket dies with it.

    ``kwargs`` go to trio-websocket (``extra_headers``, ``message_queue_size``, ...);
    ``ssl_context`` verifies a ``wss://`` server (the system's CAs by default). Raises
    trio-websocket's ``ConnectionTimeout`` (a ``HandshakeError``) when the upgrade is
    not answered within ``handshake_timeout`` seconds.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a WebSocket URL: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    stream: trio.abc.Stream
    if secure:
        tls = await trio.open_ssl_over_tcp_stream(
            parts.hostname, port, ssl_context=ssl_context or ssl.create_default_context()
        )
        await _handshake(tls)
        stream = tls
    else:
        stream = await trio.open_tcp_stream(parts.hostname, port)
    try:
        async with trio.open_nursery() as nursery:
            with trio.move_on_after(handshake_timeout) as handshake:
                ws = await wrap_client_stream(nursery, stream, parts.hostname, resource, **kwargs)
            if handshake.cancelled_caught:
                raise ConnectionTimeout(f"no answer to the upgrade within {handshake_timeout} s")
            try:
                yield ws
            finally:
                await ws.aclose()
    except BaseExceptionGroup as group:
        # The nursery is ours, not the caller's: a lone error surfaces as itself.
        if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
            raise group.exceptions[0] from None
        raise
    finally:
        await trio.aclose_forcefully(stream)


async def _handshake(stream: trio.SSLStream[trio.SocketStream]) -> None:
    """The TLS handshake now, so a certificate the client refuses raises here as the
    ``ssl`` error (an OSError) instead of leaving trio-websocket waiting."""
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as exc:
        await trio.aclose_forcefully(stream)
        cause = exc.__cause__
        raise (cause if isinstance(cause, OSError) else OSError(str(exc))) from None
