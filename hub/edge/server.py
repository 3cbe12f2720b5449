"""The trio edge: listeners, handshakes, one task tree per connection, graceful shutdown.

A :class:`Server` serves one :class:`~hub.core.node.Node`, which holds the state and the
policy; the edge only moves bytes between sockets and the node. (The in-process API,
``from hub import Hub``, is a server on a node built from a configuration:
:class:`hub.app.compose.Hub`.)

One port serves everything: the first request's head is parsed with h11
(:mod:`hub.edge.httpd`); a WebSocket upgrade is checked by :mod:`hub.wire.handshake`
and served by :class:`~hub.edge.connection.Connection`, anything else is plain HTTP
answered by :mod:`hub.edge.routes` (JSON-RPC, health, metrics, dashboard).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
from functools import partial
from typing import Any

import trio

from hub import config as _config
from hub import logs
from hub.core.dispatch import Methods
from hub.core.node import CROWDED, Message, Node
from hub.core.occupancy import Slot
from hub.core.outbox import Outbox
from hub.edge import httpd, routes, spool, tls
from hub.edge.connection import Connection
from hub.edge.keepalive import Deadlines
from hub.edge.poller import WritePoller
from hub.edge.prefixed import Prefixed
from hub.logs import throttled
from hub.wire import deflate, envelope, handshake, proxyproto
from hub.wire.admission import Identity
from hub.wire.clientaddr import UNKNOWN
from hub.wire.close import CloseCode
from hub.xrpl import events

log = logging.getLogger(__name__)

# accept() errors that mean "full right now", as trio's serve_listeners treats them.
_CAPACITY_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_ACCEPT_RETRY = 0.1
_ACCEPT_LOG_EVERY = 10.0
_READ_SIZE = 65536
_CROWDED = handshake.refuse(handshake.Refusal(*CROWDED))


class Every:
    """Says yes at most once per ``interval`` seconds: a warning repeated while a
    condition lasts (accept failing every retry) is logged once per interval, not per
    failure."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: float | None = None

    def due(self, now: float) -> bool:
        if self._last is not None and now - self._last < self.interval:
            return False
        self._last = now
        return True


class Server:
    """A node and the listeners, handshakes and connections that serve it.

    Shutdown is a drain (:meth:`shutdown`): ``/health`` turns 503 ``draining`` and new
    clients are refused at once; existing ones keep their streams for ``[server]
    drain_seconds`` (or until they have all gone), then are closed with 1001, spread
    over ``drain_spread`` seconds, each close reason naming the ``since_ledger`` that
    resumes it without loss. A second :meth:`shutdown` closes everyone at once.
    """

    def __init__(
        self,
        config: _config.Config | None = None,
        *,
        methods: Methods[Node] | None = None,
        node: Node | None = None,
    ) -> None:
        self.node = node or Node(config, methods=methods, join=spool.JOIN)
        """Without one, a node on its own: no source, no bus, no upstream."""
        self.config = self.node.config
        self.host = self.config.server.host
        self.port: int | None = None
        self.connections: set[Connection] = set()
        self._tls = tls.server_context(self.config.server)
        self._stopping = trio.Event()
        self._now = trio.Event()
        self._changed = trio.Event()
        self._accepting = trio.CancelScope()
        self._accept_warning = Every(_ACCEPT_LOG_EVERY)
        self._alive: Deadlines[Connection] = Deadlines()
        self._alive_sooner = trio.Event()
        self._unwatched: set[Connection] = set()
        self._poller: WritePoller | None = None

    async def run(
        self,
        *,
        listeners: list[trio.SocketListener] | None = None,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until :meth:`shutdown` has drained; reports the bound port to
        ``nursery.start``. ``listeners`` (the hub closes them) replace the ``[server]``
        host and port, as :mod:`hub.app.workers` does to accept on one port in many
        processes."""
        cfg = self.config.server
        if listeners is None:
            listeners = await trio.open_tcp_listeners(cfg.port, host=cfg.host)
        self.port = listeners[0].socket.getsockname()[1]
        self._poller = WritePoller() if WritePoller.available else None
        try:
            await self._serve_until_drained(listeners, task_status)
        finally:
            if self._poller is not None:
                self._poller.close()

    async def _serve_until_drained(
        self, listeners: list[trio.SocketListener], task_status: Any
    ) -> None:
        async with trio.open_nursery() as root:
            await root.start(self.node.run)
            if self._poller is not None:
                root.start_soon(self._poller.run)
            async with trio.open_nursery() as conns:
                await conns.start(self._accept, listeners, conns)
                log.info("listening on %s", self.url)
                task_status.started(self.port)
                await self._stopping.wait()
                self.node.drain()
                await self._drain()
                self.node.stop_serving()
                self._accepting.cancel()
            root.cancel_scope.cancel()

    def shutdown(self) -> None:
        """Drain and stop (see the class); a second call closes every client at once."""
        if self._stopping.is_set():
            self._now.set()
            self._changed.set()
        self._stopping.set()

    def reload_tls(self) -> None:
        """Load the certificate files again for new connections (SIGHUP); a bad file is
        logged and the running certificate kept."""
        if self._tls is None:
            return
        try:
            self._tls = tls.server_context(self.config.server)
        except _config.ConfigError as exc:
            log.error("TLS reload failed, keeping the current certificate: %s", exc)
            return
        log.info("TLS certificate reloaded")

    def publisher(self) -> trio.MemorySendChannel[Message]:
        """A send end of the node's publisher channel (:meth:`Node.publisher`)."""
        return self.node.publisher()

    async def publish(self, message: dict[str, Any] | events.Event) -> events.Event:
        """Validate one message and queue it for every subscriber; raises EventError."""
        return await self.node.publish(message)

    async def publish_batch(self, batch: list[events.Event]) -> None:
        """Queue already validated events so that nothing is interleaved with them."""
        await self.node.publish_batch(batch)

    def connection_counts(self) -> tuple[int, int]:
        """WebSocket connections accepted so far, and those open now."""
        return self.node.stats.connections_accepted, len(self.connections)

    @property
    def url(self) -> str:
        return f"{'wss' if self._tls else 'ws'}://{netloc(self.host, self.port)}"

    # ---- drain ------------------------------------------------------------------

    async def _drain(self) -> None:
        cfg = self.config.server
        with trio.move_on_after(cfg.drain_seconds):
            while self.connections and not self._now.is_set():
                self._changed = trio.Event()
                await self._changed.wait()
        conns = sorted(self.connections, key=lambda conn: conn.session.id)
        start = trio.current_time()
        for i, conn in enumerate(conns):
            with trio.move_on_at(start + cfg.drain_spread * i / len(conns)):
                await self._now.wait()
            conn.close(CloseCode.GOING_AWAY, envelope.goodbye(self.node.resume_point()))
        with trio.move_on_after(cfg.close_timeout * 2):
            while self.connections:
                self._changed = trio.Event()
                await self._changed.wait()

    # ---- accepting --------------------------------------------------------------

    async def _accept(
        self,
        listeners: list[trio.SocketListener],
        conns: trio.Nursery,
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with self._accepting:
            async with trio.open_nursery() as accepting:
                for listener in listeners:
                    accepting.start_soon(self._accept_from, listener, conns)
                accepting.start_soon(self._keepalive)
                task_status.started()

    async def _accept_from(self, listener: trio.SocketListener, conns: trio.Nursery) -> None:
        """Accept until cancelled. Out of file descriptors (or memory) the hub says so
        once per interval, counts it, and keeps serving the connections it has."""
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno not in _CAPACITY_ERRORS:
                        raise
                    self._cannot_accept(exc)
                    await trio.sleep(_ACCEPT_RETRY)
                    continue
                peer = _peer_ip(stream)
                slot = self.node.admit(peer)
                if self.node.crowded(slot):
                    self._turn_away(stream, peer)
                    self.node.release(slot)
                    stream.socket.close()
                    continue
                conns.start_soon(self._serve, stream, peer, slot)

    def _cannot_accept(self, exc: OSError) -> None:
        self.node.stats.accept_errors += 1
        if self._accept_warning.due(trio.current_time()):
            log.warning(
                "cannot accept connections: %s; serving the %d open ones (open-file limit %d)",
                exc.strerror or exc,
                len(self.connections),
                resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            )

    # ---- keepalive --------------------------------------------------------------

    async def _keepalive(self) -> None:
        """One task for every connection's keepalive: sleep until the earliest deadline,
        let each connection due act, put it back at the deadline it names."""
        while True:
            with trio.move_on_at(self._alive.next_due or float("inf")):
                await self._alive_sooner.wait()
            self._alive_sooner = trio.Event()
            now = trio.current_time()
            for conn in self._alive.pop_due(now):
                due = conn.keepalive(now)
                if due is not None:
                    self._alive.add(due, conn)
                else:
                    self._unwatched.add(conn)

    def _watch(self, conn: Connection) -> None:
        if self._alive.add(conn.alive.last_heard + conn.alive.interval, conn):
            self._alive_sooner.set()

    # ---- one connection ---------------------------------------------------------

    async def _serve(self, tcp: trio.SocketStream, peer: str, slot: Slot) -> None:
        """One accepted socket, counted since its accept (:meth:`Node.admit`) until it
        closes: its first request, then HTTP or a WebSocket. What only the handshake
        needs is let go of before the connection runs."""
        try:
            first = await self._first_request(tcp, peer, slot)
            if first is None:
                return
            stream, peer, head = first
            del first
            who = self.node.identify(peer, head.request.headers)
            self.node.identified(slot, who)
            if not head.websocket:
                await self._serve_http(stream, peer, head)
                return
            upgrade, trailing = handshake.check(head.request), head.trailing
            del head
            await self._upgrade(stream, who, upgrade, trailing)
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except* Exception as group:  # a bug met serving one socket ends that socket only
            self.node.stats.internal_errors += 1
            logs.throttled(
                log, logging.ERROR, ("socket", type(group.exceptions[0])),
                "closing %s: internal error", _peer_ip(tcp), exc_info=group,
            )  # fmt: skip
        finally:
            self.node.release(slot)
            await trio.aclose_forcefully(tcp)

    def _turn_away(self, tcp: trio.SocketStream, client: str) -> None:
        """A socket whose client already holds ``max_connections_per_ip`` before its
        handshake: answered 429 without reading a byte or starting a task, and closed by
        the caller. A client speaking HTTP reads it as the answer to the request it
        sent; reading nothing leaves nothing to parse or wait for. The write cannot
        block (a new socket's send buffer is empty) and one that fails is let go. Over
        TLS it is closed unanswered: an answer would cost the TLS handshake that
        turning it away spares."""
        self.node.stats.connections_refused += 1
        throttled(
            log,
            logging.INFO,
            "crowded",
            "refused a connection from %s before its handshake: over max_connections_per_ip",
            client,
        )
        if self._tls is None:
            with contextlib.suppress(OSError):
                os.write(tcp.socket.fileno(), _CROWDED)

    async def _first_request(
        self, tcp: trio.SocketStream, peer: str, slot: Slot
    ) -> tuple[trio.abc.Stream, str, httpd.Head] | None:
        """The stream, the client and the head of the first request, read within
        ``handshake_timeout``; None when there is nothing to serve."""
        with trio.move_on_after(self.config.server.handshake_timeout) as timer:
            opened = await self._open(tcp, peer, slot)
            if opened is None:
                return None
            stream, peer, data = opened
            head = await httpd.read_head(stream, data)
        if timer.cancelled_caught:
            throttled(log, logging.INFO, "handshake timeout", "handshake from %s timed out", peer)
            return None
        return None if head is None else (stream, peer, head)

    async def _open(
        self, tcp: trio.SocketStream, peer: str, slot: Slot
    ) -> tuple[trio.abc.Stream, str, bytes] | None:
        """The stream to speak HTTP on, the peer (a PROXY header's source when a trusted
        proxy sent one, counted under it from then on) and bytes of the first request
        already read; None when the connection is to be dropped (bad PROXY header, its
        client over the limit, failed TLS handshake)."""
        first = b""
        if self.config.server.proxy_protocol:
            proxied = await self._proxy_header(tcp, peer)
            if proxied is None:
                return None
            peer, first = proxied
            self.node.proxied(slot, peer)
            if self.node.crowded(slot):
                self._turn_away(tcp, peer)
                return None
        if self._tls is None:
            return tcp, peer, first
        stream = trio.SSLStream(Prefixed(tcp, first) if first else tcp, self._tls, server_side=True)
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:
            log.debug("TLS handshake from %s failed: %s", peer, exc.__cause__ or exc)
            return None
        return stream, peer, b""

    async def _proxy_header(self, tcp: trio.SocketStream, peer: str) -> tuple[str, bytes] | None:
        """A trusted proxy's PROXY header: (the client, the bytes after it). From any
        other peer a PROXY header is refused and logged, other bytes pass untouched.

        A header that names no client (v2 ``LOCAL``, v1 ``UNKNOWN``) gives
        :data:`~hub.wire.clientaddr.UNKNOWN`, not the proxy's own address: a proxy on
        127.0.0.1 would otherwise make whoever it relays admin by address."""
        if not self.node.trusts(peer):
            data = bytes(await tcp.receive_some(_READ_SIZE))
            if proxyproto.looks_like(data):
                throttled(
                    log,
                    logging.WARNING,
                    "untrusted proxy header",
                    "closing %s: a PROXY header from a peer not in trusted_proxies",
                    peer,
                )
                return None
            return peer, data
        parser = proxyproto.ProxyParser()
        result: proxyproto.Result = proxyproto.NEED_MORE
        while isinstance(result, proxyproto.NeedMore):
            data = bytes(await tcp.receive_some(_READ_SIZE))
            if not data:
                return None
            result = parser.feed(data)
        if isinstance(result, proxyproto.Invalid):
            throttled(
                log,
                logging.WARNING,
                "bad proxy header",
                "closing %s: bad PROXY header: %s",
                peer,
                result.reason,
            )
            return None
        if result.source is None:
            log.debug("a PROXY header from %s names no client: its address is unknown", peer)
        return result.source or UNKNOWN, result.remaining

    async def _serve_http(self, stream: trio.abc.Stream, peer: str, head: httpd.Head) -> None:
        """Plain HTTP until either side closes; the connection counts against the limits
        as its first request's client (each request is identified on its own)."""
        answer = partial(routes.handle, self.node)
        await httpd.serve(stream, peer, head, answer, self.config.server)

    async def _upgrade(
        self,
        stream: trio.abc.Stream,
        who: Identity,
        upgrade: handshake.Upgrade | handshake.Refusal,
        trailing: bytes,
    ) -> None:
        """Answer the upgrade (:mod:`hub.wire.handshake`), then serve the connection."""
        if isinstance(upgrade, handshake.Refusal):
            throttled(
                log,
                logging.INFO,
                "bad handshake",
                "bad WebSocket handshake from %s: %s",
                who.address,
                upgrade.reason,
            )
            await _send(stream, handshake.refuse(upgrade))
            return
        conn = await self._accept_upgrade(stream, upgrade, who, trailing)
        del upgrade, trailing
        if conn is not None:
            await self._run_connection(conn)

    async def _accept_upgrade(
        self, stream: trio.abc.Stream, upgrade: handshake.Upgrade, who: Identity, trailing: bytes
    ) -> Connection | None:
        """The connection, once the 101 is sent; None when refused or gone."""
        refusal = self.node.refusal(who.address, who.admin)
        if refusal is not None:
            self.node.stats.connections_refused += 1
            await _send(stream, handshake.refuse(handshake.Refusal(*refusal)))
            return None
        cfg = self.config.server
        agreement = deflate.negotiate(upgrade.offers) if cfg.compression else None
        if not await _send(
            stream, handshake.accept(upgrade, agreement.header if agreement else None)
        ):
            return None
        limits = self.config.limits
        outbox = Outbox(limits.send_queue_bytes, limits.send_queue_messages)
        params = agreement.params if agreement else None
        return Connection(
            self.node,
            stream,
            cfg,
            outbox,
            who=who,
            deflate=params,
            trailing=trailing,
            poller=self._poller,
        )

    async def _run_connection(self, conn: Connection) -> None:
        self.connections.add(conn)
        self._watch(conn)
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)
            if conn in self._unwatched:
                self._unwatched.discard(conn)
            else:
                self._alive.discard(conn)
            self._changed.set()


def netloc(host: str, port: int | None) -> str:
    """``host:port`` for a URL, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _peer_ip(stream: trio.SocketStream) -> str:
    try:
        peer = stream.socket.getpeername()
    except OSError:
        return UNKNOWN
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


async def _send(stream: trio.abc.Stream, data: bytes) -> bool:
    """Write a handshake's answer; False when the peer has gone."""
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return False
    return True
