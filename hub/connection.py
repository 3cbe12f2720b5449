"""One WebSocket client on trio: a reader, a writer and a keepalive in one nursery.

The connection layer is wsproto driven directly rather than trio-websocket's server:
trio-websocket frames each message anew and writes it under a lock with no buffer
(python-trio/trio-websocket#65), while the hub writes frames built once for all
clients, coalesced into one write per wakeup. wsproto still parses every incoming
byte and builds every control frame; data frames come from :mod:`hub.frames`.

A connection is its session's :class:`~hub.session.Sink`, and renders the WebSocket
envelope of every outcome the node hands back.

Close codes (wsproto's ``CloseReason``): 1000 or the client's own when the client
closes; 1001 ``GOING_AWAY`` on shutdown or ping timeout; 1008 ``POLICY_VIOLATION``
for a client too slow or over its load limit; 1009 ``MESSAGE_TOO_BIG`` for a message
over ``max_message_size``; the code wsproto reports (1002, 1007) for protocol errors.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

import trio
from wsproto import WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Event, Message, Ping, TextMessage
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError

from . import protocol
from .deflate import DeflateExtension, DeflateParams, compressed_text_frame
from .dispatch import Outcome, Pending
from .errors import RPCError
from .frames import text_frame
from .load import Verdict
from .outbox import Outbox
from .protocol import Extras
from .session import Session, Sink
from .stats import Stats

if TYPE_CHECKING:
    from .config import ServerConfig
    from .node import Identity

log = logging.getLogger(__name__)

_READ_SIZE = 65536
_IOV_MAX = 1024
_BINARY = RPCError("badSyntax", "Syntax error: binary frames are not supported.")


class Answering(Protocol):
    """What a connection needs of the node: sessions, answers, charges and counters."""

    @property
    def stats(self) -> Stats: ...

    def open_session(
        self, who: Identity, sink: Sink, deflate: DeflateParams | None = ...
    ) -> Session: ...

    def close_session(self, session: Session) -> None: ...

    def begin(self, session: Session, data: bytes) -> Outcome | Pending: ...

    async def finish(self, session: Session, pending: Pending) -> Outcome: ...

    def refuse(self, session: Session, error: RPCError, kind: str = ...) -> Outcome: ...

    def charge(self, session: Session, costs: Iterable[tuple[str, int]]) -> Verdict: ...

    def extras(self, verdict: Verdict = ...) -> Extras: ...

    def wrote(self, nbytes: int, stamp: float | None) -> None:
        """``nbytes`` reached a socket; ``stamp`` is the fan-out time of the oldest."""
        ...


async def send_frames(sock: socket.socket, frames: list[bytes]) -> None:
    """Write ``frames`` in order with as few system calls as the kernel allows.

    One ``sendmsg`` hands the kernel up to ``_IOV_MAX`` frames at once; a partial write
    resumes mid-frame. Raises OSError when the peer is gone.
    """
    i, offset = 0, 0
    while i < len(frames):
        batch: list[bytes | memoryview] = list(frames[i : i + _IOV_MAX])
        if offset:
            batch[0] = memoryview(frames[i])[offset:]
        try:
            sent = sock.sendmsg(batch)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)
            continue
        while sent:
            left = len(frames[i]) - offset
            if sent >= left:
                sent -= left
                i += 1
                offset = 0
            else:
                offset += sent
                sent = 0
    await trio.lowlevel.checkpoint()


class Connection:
    """Owns the socket and the session of one client until it closes; all its tasks
    die with it. Opens its session on the node and closes it when done."""

    def __init__(
        self,
        node: Answering,
        stream: trio.abc.Stream,
        ws: WSConnection,
        config: ServerConfig,
        outbox: Outbox,
        *,
        who: Identity,
        deflate: DeflateExtension | None = None,
    ) -> None:
        self.node = node
        self._sock: socket.socket | None = None
        self._stream = stream
        if isinstance(stream, trio.SocketStream):
            # In the clear the writer sends with sendmsg on the plain socket (one system
            # call for many frames, no joined copy); the reader keeps a trio stream over
            # the same socket. Over TLS both go through the TLS stream.
            self._sock = socket.socket(fileno=stream.socket.detach())
            self._sock.setblocking(False)
            self._stream = trio.SocketStream(trio.socket.from_stdlib_socket(self._sock))
        self._ws = ws
        self._config = config
        self._outbox = outbox
        self._lot = trio.lowlevel.ParkingLot()
        self._inflight = trio.Semaphore(config.max_in_flight)
        self._scope = trio.CancelScope()
        self._close_queued = False
        self._close_written = trio.Event()
        self._last_rx = trio.current_time()
        self._received = 0
        self._parts: list[bytes] = []
        self._size = 0
        self.close_code: int | None = None
        self._extension = deflate
        self._deflate = deflate.agreement.params if deflate else None
        self.session = node.open_session(who, self, self._deflate)

    # ---- the Sink of the session --------------------------------------------------

    streams = True

    @property
    def queued_messages(self) -> int:
        return len(self._outbox)

    @property
    def queued_bytes(self) -> int:
        return self._outbox.nbytes

    @property
    def in_flight(self) -> int:
        return self._config.max_in_flight - self._inflight.value

    def send(self, frame: bytes, stamp: float | None = None) -> None:
        """Queue a frame without waiting; a client that cannot keep up is cut."""
        if self._outbox.push(frame, stamp):
            self._wake()
        elif not self._close_queued:
            self._too_slow()

    # ---- lifecycle ----------------------------------------------------------------

    async def run(self) -> None:
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop)
                    nursery.start_soon(self._keepalive)
                    await self._read_loop(nursery)
                    self._close_if_open(CloseReason.NORMAL_CLOSURE, "")
                    with trio.move_on_after(self._config.close_timeout):
                        await self._close_written.wait()
                    nursery.cancel_scope.cancel()
        finally:
            self._close_queued = True
            self.node.close_session(self.session)
            await trio.aclose_forcefully(self._stream)

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; the socket is gone within ``close_timeout``."""
        self._close_if_open(code, reason)
        self._scope.deadline = min(
            self._scope.deadline, trio.current_time() + self._config.close_timeout
        )

    def _close_if_open(self, code: int, reason: str) -> None:
        if self._close_queued:
            return
        self._close_queued = True
        if self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            self.close_code = code
            self._queue_control(self._ws.send(CloseConnection(code, reason)))
        self._wake()

    def _queue_control(self, frame: bytes) -> None:
        self._outbox.push_control(frame)
        self._wake()

    def _wake(self) -> None:
        if self._lot:
            self._lot.unpark()

    def _too_slow(self) -> None:
        self.node.stats.slow_closes += 1
        log.info("closing %s: too slow", self.session.remote)
        self.close(CloseReason.POLICY_VIOLATION, "Policy error: client is too slow.")

    # ---- writing ------------------------------------------------------------------

    async def _write_loop(self) -> None:
        outbox = self._outbox
        while True:
            while not outbox:
                if self._close_queued:
                    self._close_written.set()
                    return
                await self._lot.park()
            stamp = outbox.stamp
            nbytes = outbox.nbytes
            try:
                await self._send(outbox.take_frames())
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                self._close_written.set()
                self._scope.cancel()
                return
            self.node.wrote(nbytes, stamp)

    async def _send(self, frames: list[bytes]) -> None:
        if self._sock is not None:
            await send_frames(self._sock, frames)
        else:
            await self._stream.send_all(b"".join(frames))

    def _reply(self, outcome: Outcome) -> None:
        """The WebSocket envelope of an outcome, queued; the client is cut at the drop."""
        if self._close_queued:
            return
        extras = self.node.extras(outcome.verdict)
        if outcome.error is None:
            assert outcome.body is not None
            payload = protocol.success(outcome.body, outcome.result, extras)
        else:
            payload = protocol.failure(outcome.body, outcome.error, extras)
        deflate = self._deflate
        self.send(
            text_frame(payload) if deflate is None else compressed_text_frame(payload, deflate)
        )
        for frame in outcome.followups:
            self.send(frame)
        if outcome.verdict is Verdict.DROP:
            log.info("closing %s: load threshold exceeded", self.session.remote)
            self.close(CloseReason.POLICY_VIOLATION, "threshold exceeded")

    # ---- reading ------------------------------------------------------------------

    async def _read_loop(self, nursery: trio.Nursery) -> None:
        """Feed wsproto until the client closes or goes; answer what it sends."""
        while True:
            try:
                data = await self._stream.receive_some(_READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            self._last_rx = trio.current_time()
            self._received += 1
            self._ws.receive_data(bytes(data))
            for event in self._ws.events():
                if isinstance(event, CloseConnection):
                    if self._extension is not None and self._extension.too_big:
                        # The inflate bound cut a compressed message short: close 1009.
                        self.node.charge(self.session, (("malformed", 1),))
                    self._close_if_open(event.code, event.reason or "")
                    return
                await self._on_event(event, nursery)

    async def _on_event(self, event: Event, nursery: trio.Nursery) -> None:
        if isinstance(event, Ping):
            self._queue_control(self._ws.send(event.response()))
            return
        if not isinstance(event, Message) or self._close_queued:
            return
        message = self._assemble(event)
        if message is None:
            return
        if isinstance(event, BytesMessage):
            self._reply(self.node.refuse(self.session, _BINARY))
            return
        begun = self.node.begin(self.session, message)
        if isinstance(begun, Outcome):
            self._reply(begun)
            return
        await self._inflight.acquire()
        nursery.start_soon(self._answer, begun)

    def _assemble(self, event: Message[Any]) -> bytes | None:
        """The whole message once its last fragment is in; None before, or when it
        outgrew ``max_message_size`` (the connection is then closing with 1009)."""
        chunk = event.data.encode() if isinstance(event, TextMessage) else event.data
        self._size += len(chunk)
        limit = self._config.max_message_size
        if self._size > limit:
            self.node.charge(self.session, (("malformed", 1),))
            self.close(CloseReason.MESSAGE_TOO_BIG, f"message exceeds {limit} bytes")
            return None
        if not event.message_finished:
            self._parts.append(chunk)
            return None
        message = b"".join((*self._parts, chunk)) if self._parts else chunk
        self._parts.clear()
        self._size = 0
        return message

    async def _answer(self, pending: Pending) -> None:
        try:
            self._reply(await self.node.finish(self.session, pending))
        finally:
            self._inflight.release()

    # ---- keepalive ----------------------------------------------------------------

    async def _keepalive(self) -> None:
        interval = self._config.ping_interval
        timeout = self._config.ping_timeout
        while True:
            due = self._last_rx + interval
            if trio.current_time() < due:
                await trio.sleep_until(due)
                continue
            received = self._received
            try:
                self._queue_control(self._ws.send(Ping(b"hub")))
            except LocalProtocolError:
                return
            await trio.sleep(timeout)
            if self._received == received:
                log.info("closing %s: no answer to ping", self.session.remote)
                self.close(CloseReason.GOING_AWAY, "ping timeout")
                return
