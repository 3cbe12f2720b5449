"""The trio edge: listeners, handshakes, one task tree per connection, graceful shutdown.

:class:`Hub` is also the in-process API: run it in your own nursery with
``port = await nursery.start(hub.run)`` and stop it with :meth:`Hub.shutdown`. Its
state and policy are its :class:`~hub.node.Node` (``hub.node``); the edge only moves
bytes between sockets and the node.

One port serves everything: the first request's head is parsed with h11; a WebSocket
upgrade goes on to wsproto with the same bytes, anything else is plain HTTP served by
:mod:`hub.httpd` (JSON-RPC, health, metrics, dashboard).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import RemoteProtocolError

from . import config as _config
from . import events, http, httpd
from .connection import Connection
from .dispatch import Methods
from .node import Message, Node
from .outbox import Outbox

log = logging.getLogger(__name__)


class Hub:
    """A node and the listeners, handshakes and connections that serve it."""

    def __init__(
        self,
        config: _config.Config | None = None,
        *,
        methods: Methods[Node] | None = None,
        node: Node | None = None,
    ) -> None:
        self.node = node or Node(config, methods=methods)
        self.config = self.node.config
        self.host = self.config.server.host
        self.port: int | None = None
        self.connections: set[Connection] = set()
        self._stopping = trio.Event()
        self._accepting = trio.CancelScope()

    async def run(
        self,
        *,
        listeners: list[trio.SocketListener] | None = None,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until :meth:`shutdown`; reports the bound port to ``nursery.start``.

        ``listeners`` (the hub closes them) replace the ``[server]`` host and port, as
        :mod:`hub.workers` does to accept on one port in many processes.
        """
        cfg = self.config.server
        if listeners is None:
            listeners = await trio.open_tcp_listeners(cfg.port, host=cfg.host)
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as root:
            await root.start(self.node.run)
            async with trio.open_nursery() as conns:
                await conns.start(self._accept, listeners, conns)
                log.info("listening on %s", self.url)
                task_status.started(self.port)
                await self._stopping.wait()
                self.node.stop_serving()
                self._accepting.cancel()
                for conn in list(self.connections):
                    conn.close(CloseReason.GOING_AWAY, "server shutting down")
            root.cancel_scope.cancel()

    def shutdown(self) -> None:
        """Stop accepting and close every client with 1001; :meth:`run` returns soon after."""
        self._stopping.set()

    def publisher(self) -> trio.MemorySendChannel[Message]:
        """A send end of the node's publisher channel (:meth:`Node.publisher`)."""
        return self.node.publisher()

    async def publish(self, message: dict[str, Any] | events.Event) -> events.Event:
        """Validate one message and queue it for every subscriber; raises EventError."""
        return await self.node.publish(message)

    async def publish_batch(self, batch: list[events.Event]) -> None:
        """Queue already validated events so that nothing is interleaved with them."""
        await self.node.publish_batch(batch)

    @property
    def url(self) -> str:
        return f"ws://{netloc(self.host, self.port)}"

    async def _accept(
        self,
        listeners: list[trio.SocketListener],
        conns: trio.Nursery,
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with self._accepting:
            await trio.serve_listeners(
                self._serve, listeners, handler_nursery=conns, task_status=task_status
            )

    async def _serve(self, stream: trio.SocketStream) -> None:
        remote = _peer_ip(stream)
        self.node.connected(remote)
        deadline = trio.current_time() + self.config.server.handshake_timeout
        try:
            with trio.move_on_at(deadline) as timer:
                head = await httpd.read_head(stream)
            if timer.cancelled_caught:
                log.info("handshake from %s timed out", remote)
            elif head is not None and head.websocket:
                await self._upgrade(stream, remote, head, deadline)
            elif head is not None:
                answer = partial(http.handle, self.node)
                await httpd.serve(stream, remote, head, answer, self.config.server)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self.node.disconnected(remote)
            await trio.aclose_forcefully(stream)

    async def _upgrade(
        self, stream: trio.SocketStream, remote: str, head: httpd.Head, deadline: float
    ) -> None:
        """Finish a WebSocket handshake by ``deadline``, then serve the connection."""
        ws = WSConnection(ConnectionType.SERVER)
        request = None
        with trio.move_on_at(deadline):
            request = await _upgrade_request(stream, ws, head.raw)
        if request is None:
            log.info("handshake from %s timed out or failed", remote)
            return
        admin = self.node.is_admin(remote, request.extra_headers)
        refusal = self.node.refusal(remote, admin)
        if refusal is not None:
            self.node.stats.connections_refused += 1
            await _reject(stream, ws, *refusal)
            return
        await stream.send_all(ws.send(AcceptConnection()))
        limits = self.config.limits
        outbox = Outbox(limits.send_queue_bytes, limits.send_queue_messages)
        conn = Connection(
            self.node, stream, ws, self.config.server, outbox, remote=remote, admin=admin
        )
        self.connections.add(conn)
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)


async def _upgrade_request(
    stream: trio.SocketStream, ws: WSConnection, data: bytes
) -> Request | None:
    """Feed wsproto until it has the upgrade request; a bad one is answered and None."""
    while True:
        try:
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, Request):
                    return event
        except RemoteProtocolError as exc:
            hint = exc.event_hint
            status = hint.status_code if isinstance(hint, RejectConnection) else 400
            await _reject(stream, ws, status, str(exc))
            return None
        data = await stream.receive_some(65536)
        if not data:
            return None


def netloc(host: str, port: int | None) -> str:
    """``host:port`` for a URL, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _peer_ip(stream: trio.SocketStream) -> str:
    try:
        peer = stream.socket.getpeername()
    except OSError:
        return "unknown"
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


async def _reject(stream: trio.SocketStream, ws: WSConnection, status: int, reason: str) -> None:
    """Answer the upgrade with a plain HTTP error and a one-line body saying why."""
    body = f"{reason}\n".encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
    ]
    try:
        data = ws.send(RejectConnection(status_code=status, headers=headers, has_body=True))
        data += ws.send(RejectData(data=body))
    except Exception:
        data = b"HTTP/1.1 %d Bad Request\r\ncontent-length: %d\r\n\r\n%s" % (
            status,
            len(body),
            body,
        )
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
