"""The trio edge: listeners, handshakes, one task tree per connection, graceful shutdown.

:class:`Hub` is also the in-process API: run it in your own nursery with
``port = await nursery.start(hub.run)`` and stop it with :meth:`Hub.shutdown`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request
from wsproto.utilities import RemoteProtocolError

from . import broker, events, httpd, identity
from . import config as _config
from .books import BookSource, UpstreamBooks
from .connection import Connection
from .dispatch import Method, Methods
from .errors import RPCError
from .fanout import deliver
from .forward import Forwarder
from .health import STALE, STALE_LOAD, Health
from .history import History
from .ledger import LedgerState
from .load import DEFAULT_COSTS, LoadPolicy, LoadTracker, Verdict
from .metrics import Metrics
from .outbox import Outbox
from .protocol import LOAD_WARNING, NO_EXTRAS, Extras
from .render import Frames
from .session import Session
from .sources.replay import Replay, run_replay
from .sources.upstream import Relay, UpstreamStatus, run_upstream
from .stamp import stamp
from .stats import Stats
from .subscriptions import Subscriptions
from .versions import VersionPolicy

log = logging.getLogger(__name__)

Message = dict[str, Any] | events.Event | Sequence[dict[str, Any] | events.Event]


class Hub:
    """A hub node: its settings, method table, state and the connections it serves."""

    def __init__(self, config: _config.Config | None = None, *, methods: Methods | None = None):
        from .methods import METHODS

        self.config = config or _config.Config()
        self.versions = VersionPolicy(self.config.api.default_version, self.config.api.beta_api)
        self.methods = methods or METHODS
        self.stats = Stats()
        self.started = time.monotonic()
        self.connections: set[Connection] = set()
        self.subscriptions: Subscriptions[Session] = Subscriptions()
        self.ledger = LedgerState()
        self.history = History(self.config.history.ledgers, self.config.history.max_bytes)
        self._send, self._receive = trio.open_memory_channel[Message](
            self.config.source.publish_queue
        )
        self.host = self.config.server.host
        self.port: int | None = None
        self._admin_ips = frozenset(self.config.admin.ips)
        load = self.config.load
        self.load = LoadTracker(
            LoadPolicy(
                warning=load.warning,
                drop=load.drop,
                decay_window=load.decay_window,
                costs={**DEFAULT_COSTS, **load.costs},
            ),
            clock=trio.current_time,
        )
        self._per_ip: Counter[str] = Counter()
        self._open = 0
        self.health = Health(self.config.health.max_ledger_age, trio.current_time)
        self.metrics = Metrics(self)
        self.upstream: UpstreamStatus | None = None
        self.forwarder: Forwarder | None = None
        self.broker: broker.Bus | None = broker.from_config(self.config.cluster)
        if self.broker is not None:
            status = self.broker.status
            self.metrics.probe("broker", status.url, lambda: status.connected)
            if isinstance(self.broker, broker.Broker):
                self.broker.remember = self.remember
        self.worker: dict[str, int] | None = None  # set by hub.workers in a worker process
        self.identity = identity.NodeIdentity.create(self.config.source.seed)
        self.book_source: BookSource | None = None  # what book snapshots are read from
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
            if self.broker is not None:
                await root.start(self.broker.run, self.apply)
            root.start_soon(self._fan_out)
            await self._start_source(root)
            async with trio.open_nursery() as conns:
                await conns.start(self._accept, listeners, conns)
                log.info("listening on %s", self.url)
                self.health.start()
                task_status.started(self.port)
                await self._stopping.wait()
                self.health.stop()
                self._accepting.cancel()
                for conn in list(self.connections):
                    conn.close(1001, "server shutting down")
            root.cancel_scope.cancel()

    def shutdown(self) -> None:
        """Stop accepting and close every client with 1001; :meth:`run` returns soon after."""
        self._stopping.set()

    def publisher(self) -> trio.MemorySendChannel[Message]:
        """A send end of the publisher channel for a source; close it when done.

        Messages may be dicts (validated as they leave the channel; invalid ones are
        logged and counted, never delivered), :class:`~hub.events.Event` objects, or
        lists of either, which are delivered back to back.
        """
        return self._send.clone()

    async def publish(self, message: dict[str, Any] | events.Event) -> events.Event:
        """Validate one message and queue it for every subscriber; raises EventError."""
        event = events.parse(message)
        await self._send.send(event)
        return event

    async def publish_batch(self, batch: list[events.Event]) -> None:
        """Queue already validated events so that nothing is interleaved with them."""
        await self._send.send(batch)

    @property
    def upstream_identity(self) -> identity.UpstreamIdentity | None:
        """What the upstream (relayed or forwarded to) said of itself, if anything."""
        told = self.upstream.identity if self.upstream else None
        return told or (self.forwarder.identity if self.forwarder else None)

    @property
    def network_id(self) -> int:
        return identity.network_id(self.config.server.network_id, self.upstream_identity)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    def charge(self, session: Session, cost: float) -> Verdict:
        """Charge a request to its client's balance; admins are never charged."""
        if session.admin:
            return Verdict.OK
        verdict = self.load.charge(session.load_key, cost, warned=session.warned)
        if verdict is Verdict.WARN:
            session.warned = True
            self.stats.load_warnings += 1
        elif verdict is Verdict.DROP:
            self.stats.load_drops += 1
        return verdict

    def extras(self, session: Session, verdict: Verdict = Verdict.OK) -> Extras:
        """Envelope fields owed to this session right now: the load warning, and
        Clio's warning 2002 while the latest ledger is stale (see :mod:`hub.health`)."""
        if self.health.stale():
            return STALE if verdict is Verdict.OK else STALE_LOAD
        return NO_EXTRAS if verdict is Verdict.OK else LOAD_WARNING

    def is_admin(self, remote: str, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """Admin by address (``[admin] ips``) or by ``Authorization: Bearer <token>``."""
        return remote in self._admin_ips or self._bearer_ok(headers)

    async def _accept(
        self,
        listeners: list[trio.SocketListener],
        conns: trio.Nursery,
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with self._accepting:
            await trio.serve_listeners(
                self._serve,
                listeners,
                handler_nursery=conns,
                task_status=task_status,
            )

    async def _serve(self, stream: trio.SocketStream) -> None:
        remote = _peer_ip(stream)
        self._per_ip[remote] += 1
        self._open += 1
        try:
            await self._serve_client(stream, remote)
        finally:
            self._open -= 1
            self._per_ip[remote] -= 1
            if not self._per_ip[remote]:
                del self._per_ip[remote]

    def refusal(self, remote: str, admin: bool) -> tuple[int, str] | None:
        """Whether a new connection is over a limit: (HTTP status, reason) or None."""
        limits = self.config.limits
        if self._open > limits.max_connections:
            return 503, "The hub has reached its connection limit."
        if not admin and self._per_ip[remote] > limits.max_connections_per_ip:
            return 429, "Too many connections from your address."
        return None

    async def _serve_client(self, stream: trio.SocketStream, remote: str) -> None:
        try:
            try:
                accepted = await self._handshake(stream, remote)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if accepted is None:
                return
            ws, session = accepted
            conn = Connection(self, stream, ws, session, self.config.server)
            self.connections.add(conn)
            self.stats.connections_accepted += 1
            self.load.attach(session.load_key)
            try:
                await conn.run()
            finally:
                self.connections.discard(conn)
                self._forget(session)
        finally:
            await trio.aclose_forcefully(stream)

    async def _handshake(
        self, stream: trio.SocketStream, remote: str
    ) -> tuple[WSConnection, Session] | None:
        """One port for everything: the first request's head is parsed with h11; a
        WebSocket upgrade goes on to wsproto with the same bytes, anything else is plain
        HTTP served by :mod:`hub.httpd` (JSON-RPC, health, metrics, dashboard)."""
        ws = WSConnection(ConnectionType.SERVER)
        request: Request | None = None
        head: httpd.Head | None = None
        with trio.move_on_after(self.config.server.handshake_timeout):
            head = await httpd.read_head(stream)
            if head is None:
                return None
            data = head.raw
            while head.websocket and request is None:
                try:
                    ws.receive_data(data)
                    for event in ws.events():
                        if isinstance(event, Request):
                            request = event
                except RemoteProtocolError as exc:
                    hint = exc.event_hint
                    status = hint.status_code if isinstance(hint, RejectConnection) else 400
                    await _reject(stream, ws, status, str(exc))
                    return None
                if request is None:
                    data = await stream.receive_some(65536)
                    if not data:
                        return None
        if head is not None and not head.websocket:
            await httpd.serve(self, stream, remote, head)
            return None
        if request is None:
            log.info("handshake from %s timed out", remote)
            return None
        admin = self.is_admin(remote, request.extra_headers)
        refusal = self.refusal(remote, admin)
        if refusal is not None:
            self.stats.connections_refused += 1
            await _reject(stream, ws, refusal[0], refusal[1])
            return None
        await stream.send_all(ws.send(AcceptConnection()))
        limits = self.config.limits
        session = Session(
            remote=remote,
            admin=admin,
            outbox=Outbox(limits.send_queue_bytes, limits.send_queue_messages),
            stream_version=self.versions.default,
        )
        session.load_key = remote if self.config.load.key == "ip" else session.id
        return ws, session

    def _bearer_ok(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        token = self.config.admin.token
        if not token:
            return False
        expected = f"Bearer {token}".encode()
        return any(
            name.lower() == b"authorization" and value.strip() == expected
            for name, value in headers
        )

    def _forget(self, session: Session) -> None:
        """Drop every trace of a closed session."""
        self.subscriptions.drop(session)
        self.load.detach(session.load_key)

    async def _fan_out(self) -> None:
        """Apply published events in order; writers run only once the queue is drained.

        Everything already waiting in the channel is applied before yielding, so each
        connection's writer wakes once for all of it and writes it in one go.
        """
        receive = self._receive
        if self.broker is not None:
            # A node on a bus (Redis, or a worker's parent) delivers only what it reads
            # back from it, so all nodes deliver one order (hub.broker, hub.workers).
            async for item in receive:
                await self.broker.submit(self._parsed(item))
            return
        async for item in receive:
            while True:
                self._apply_item(item)
                try:
                    item = receive.receive_nowait()
                except trio.WouldBlock:
                    break

    def _apply_item(self, item: Message) -> None:
        for event in self._parsed(item):
            self.apply(event)

    def _parsed(self, item: Message) -> list[events.Event]:
        """The valid events of a published item; invalid messages are logged and counted."""
        valid = []
        for message in item if isinstance(item, Sequence) else (item,):
            try:
                valid.append(events.parse(message))
            except events.EventError as exc:
                self.stats.events_rejected += 1
                log.warning("rejected a published message: %s", exc)
        return valid

    def apply(self, event: events.Event) -> None:
        """Update the hub's own state from an event, then deliver it; never waits."""
        stamp(event.body, self.network_id)
        if event.kind == "ledgerClosed":
            self.ledger.update(event.body, time.monotonic())
            self.health.ledger_seen()
        self.stats.events_published += 1
        frames = Frames(event)
        self.stats.deliveries += deliver(event, self.subscriptions, trio.current_time(), frames)
        self.history.add(event, frames)

    def remember(self, event: events.Event) -> None:
        """Take an event published before this node started into its state and history,
        delivering it to nobody (it is not live)."""
        stamp(event.body, self.network_id)
        if event.kind == "ledgerClosed":
            self.ledger.update(event.body, time.monotonic())
        self.history.add(event, Frames(event))

    def lookup(self, name: str, version: int) -> Method:
        """The method for a request; unknown ones go upstream when there is one."""
        try:
            return self.methods.lookup(name, version)
        except RPCError:
            if self.forwarder is None:
                raise
            return self.forwarder.method

    async def _start_source(self, nursery: trio.Nursery) -> None:
        cfg = self.config.source
        kind, _, where = cfg.source.partition(":")
        if cfg.source == "none":
            return
        if kind == "upstream":
            urls = [url.strip() for url in where.split(",") if url.strip()]
            if not urls:
                raise _config.ConfigError("upstream: needs at least one ws:// or wss:// URL")
            self.upstream = upstream = UpstreamStatus(urls)
            for url in urls:  # hub_component_up{component="upstream", name=url}
                self.metrics.probe("upstream", url, partial(_linked, upstream, url))
            relay = Relay(urls, streams=cfg.upstream_streams)
            await nursery.start(run_upstream, self.publisher(), relay, self.upstream)
            self.forwarder = Forwarder(urls, cfg.forward_pool, cfg.forward_timeout)
            self.book_source = UpstreamBooks(self.forwarder.forward)
            await nursery.start(self.forwarder.run)
            return
        if kind == "replay":
            replay = Replay(where, speed=cfg.speed, loop=cfg.loop)
            await nursery.start(partial(run_replay, self.publisher(), replay))
            return
        if cfg.source == "simulator":
            from .sources.simulator import start_simulator

            self.book_source = await start_simulator(nursery, self.publisher(), self.config)
            return
        raise _config.ConfigError(f"unknown source {cfg.source!r}")


def _linked(upstream: UpstreamStatus, url: str) -> bool:
    """Whether the relay is connected to this upstream right now."""
    return upstream.connected and upstream.url == url


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
