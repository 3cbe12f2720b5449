"""One WebSocket client on trio: a reader task, writes without a task, a writer on demand.

The connection layer is the hub's own rather than trio-websocket's server:
trio-websocket frames each message anew and writes it under a lock with no buffer
(python-trio/trio-websocket#65), while the hub writes frames built once for all
clients, coalesced into one write per batch. Incoming bytes are parsed by
:mod:`hub.wire.inbound`; every outgoing frame comes from :mod:`hub.wire.frames`.

A connection is its session's :class:`~hub.core.session.Sink`, and renders the WebSocket
envelope of every outcome the node hands back.

Close codes (wsproto's ``CloseReason``): 1000 or the client's own when the client
closes; 1001 ``GOING_AWAY`` on shutdown or ping timeout; 1008 ``POLICY_VIOLATION``
for a client too slow or over its load limit; 1009 ``MESSAGE_TOO_BIG`` for a message
over ``max_message_size``; 1002 or 1007 for protocol errors (:mod:`hub.wire.inbound`).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

import trio
from wsproto.frame_protocol import CloseReason

from hub import logs
from hub.core.dispatch import Outcome, Pending
from hub.core.feed import Feed
from hub.core.load import Verdict
from hub.core.outbox import Outbox
from hub.core.session import Session, Sink
from hub.core.stats import Stats
from hub.edge import spool
from hub.edge.keepalive import Keepalive, Step
from hub.edge.poller import WritePoller
from hub.wire import envelope
from hub.wire.deflate import DeflateParams, compressed_text_frame
from hub.wire.envelope import Extras
from hub.wire.errors import RPCError
from hub.wire.frames import close_frame, control_frame, text_frame
from hub.wire.inbound import PING, PONG, Binary, Closed, Failed, PingIn, Reader, Text

if TYPE_CHECKING:
    from hub.config import ServerConfig
    from hub.wire.admission import Identity

log = logging.getLogger(__name__)

_READ_SIZE = 65536
_IOV_MAX = 1024
_BINARY = RPCError("badSyntax", "Syntax error: binary frames are not supported.")
_ENDS = (Closed, Failed)


def _kind(exc: BaseException) -> str:
    """The exception type a crash is logged under (the first of a group)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return type(exc).__name__


class Answering(Protocol):
    """What a connection needs of the node: sessions, answers, charges and counters."""

    @property
    def stats(self) -> Stats: ...

    def open_session(
        self, who: Identity, sink: Sink, deflate: DeflateParams | None = ...
    ) -> Session: ...

    def close_session(self, session: Session) -> None: ...

    def stop_streams(self, session: Session) -> None: ...

    def begin(
        self, session: Session, data: bytes, now: float | None = ...
    ) -> Outcome | Pending: ...

    async def finish(self, session: Session, pending: Pending) -> Outcome: ...

    def refuse(self, session: Session, error: RPCError, kind: str = ...) -> Outcome: ...

    def charge(self, session: Session, costs: Iterable[tuple[str, int]]) -> Verdict: ...

    def extras(self, verdict: Verdict = ..., now: float | None = ...) -> Extras: ...

    def wrote(self, nbytes: int, stamp: float | None) -> None:
        """``nbytes`` reached a socket; ``stamp`` is the fan-out time of the oldest."""
        ...


Chunk = bytes | memoryview
"""A frame, or what is left of one after a partial write (a view: no copy is made)."""


def write_now(sock: socket.socket, frames: Sequence[Chunk]) -> list[Chunk]:
    """Write ``frames`` in order until the socket would block; returns what is left.

    One ``sendmsg`` hands the kernel up to ``_IOV_MAX`` frames at once; a partial write
    leaves a view of the rest of its frame first in what is returned. Raises OSError
    when the peer is gone.
    """
    if len(frames) == 1:  # fan-out's usual case: one joined buffer
        data = frames[0]
        try:
            sent = spool.send(sock, data)
        except BlockingIOError:
            return [data]
        return [] if sent == len(data) else [memoryview(data)[sent:]]
    i, offset = 0, 0
    while i < len(frames):
        batch: list[Chunk] = list(frames[i : i + _IOV_MAX])
        if offset:
            batch[0] = memoryview(frames[i])[offset:]
        try:
            sent = sock.sendmsg(batch)
        except BlockingIOError:
            break
        if sent == sum(map(len, batch)):
            i, offset = i + len(batch), 0
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
    if i == len(frames):
        return []
    rest = list(frames[i:])
    if offset:
        rest[0] = memoryview(rest[0])[offset:]
    return rest


async def send_frames(sock: socket.socket, frames: Sequence[Chunk]) -> None:
    """Write ``frames`` in order, waiting whenever the socket would block."""
    rest = write_now(sock, frames)
    while rest:
        await trio.lowlevel.wait_writable(sock)
        rest = write_now(sock, rest)
    await trio.lowlevel.checkpoint()


class Connection:
    """Owns the socket and the session of one client until it closes; all its tasks
    die with it. Opens its session on the node and closes it when done.

    It runs one task, its reader. Frames are written straight from whoever queued them
    (fan-out once per batch, the reader once per read) with a non-blocking ``sendmsg``.
    What a plain socket would not take waits in the hub's :class:`~hub.edge.poller.WritePoller`
    and is written from its task; a writer task of the connection's own is started
    only over TLS, or without a poller, when a socket would block. Keepalive is the
    hub's (:mod:`hub.edge.keepalive`): :meth:`keepalive` is called when it is due.
    """

    def __init__(
        self,
        node: Answering,
        stream: trio.abc.Stream,
        config: ServerConfig,
        outbox: Outbox,
        *,
        who: Identity,
        deflate: DeflateParams | None = None,
        trailing: bytes = b"",
        poller: WritePoller | None = None,
    ) -> None:
        self.node = node
        self._sock: socket.socket | None = None
        self._stream = stream
        if isinstance(stream, trio.SocketStream):
            # In the clear the connection owns the plain socket: frames go out with a
            # non-blocking sendmsg from whoever has them, and the reader waits on the
            # socket itself; no trio socket objects are kept per connection. Over TLS
            # both go through the TLS stream.
            self._sock = socket.socket(fileno=stream.socket.detach())
            self._sock.setblocking(False)
        self._poller = poller if self._sock is not None else None
        self._reader = Reader(config.max_message_size, deflate=deflate is not None)
        self._trailing = trailing
        self._config = config
        self._outbox = outbox
        self._nursery: trio.Nursery | None = None
        self._writer: trio.lowlevel.ParkingLot | None = None
        self._unsent: Sequence[Chunk] = ()
        self._unsent_for: tuple[int, float | None] = (0, None)
        self._inflight = trio.Semaphore(config.max_in_flight)
        self._scope = trio.CancelScope()
        self._close_queued = False
        self._close_written = trio.Event()
        self.alive = Keepalive(config.ping_interval, config.ping_timeout, trio.current_time())
        self.close_code: int | None = None
        self._deflate = deflate
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

    @property
    def cursor(self) -> int:
        return self._outbox.cursor

    # The entry points that shared tasks call (fan-out, the flush, the poller, the
    # keepalive task) end this connection alone if they meet a bug: abort(), never raise.

    def follow(self, feed: Feed | None) -> None:
        try:
            self._outbox.follow(feed)
        except Exception as exc:
            self.abort(exc)

    def send(self, frame: bytes, stamp: float | None = None) -> None:
        """Queue a frame without waiting; a client that cannot keep up is cut."""
        if self._close_queued:
            return
        try:
            if not self._outbox.push(frame, stamp):
                self._too_slow()
        except Exception as exc:
            self.abort(exc)

    def flush(self) -> None:
        """Write what is due now; what the socket cannot take waits for the poller (or
        the writer task)."""
        try:
            self._flush()
        except Exception as exc:
            self.abort(exc)

    def _flush(self) -> None:
        if self._unsent or self._sock is None or self._nursery is None:
            if not self._outbox.within_bounds() and not self._close_queued:
                self._too_slow()
            elif (
                self._nursery is not None
                and self._poller is None
                and (self._outbox or self._unsent)
            ):
                self._wake_writer()
            return
        due = self._outbox.take()
        if due is None:
            if not self._close_queued:
                self._too_slow()
            return
        frames, nbytes, stamp = due
        if frames:
            self._write(self._sock, frames, nbytes, stamp)
        elif self._close_queued:
            self._close_written.set()

    def _write(
        self, sock: socket.socket, frames: Sequence[Chunk], nbytes: int, stamp: float | None
    ) -> None:
        """Write now what the socket takes; the rest waits until it can take more."""
        try:
            self._unsent = write_now(sock, frames)
        except OSError:
            self._lost()
            return
        if not self._unsent:
            self.node.wrote(nbytes, stamp)
            if self._outbox.replaying:
                self._wait(sock)  # the next chunk, once the socket takes more
            elif self._close_queued and not self._outbox:
                self._close_written.set()
            return
        self._unsent_for = (nbytes, stamp)
        self._wait(sock)

    def _wait(self, sock: socket.socket) -> None:
        """Write again when the socket can take more (from the poller, or the writer)."""
        if self._poller is not None:
            self._poller.wait(sock, self._writable)
        else:
            self._wake_writer()

    def _writable(self) -> None:
        """The poller's call: the socket takes bytes again. What it waited with goes
        first, then what became due meanwhile (a replay's next chunk, say): one chunk
        per call, so a long replay takes turns with everything else the hub does."""
        if self._sock is None:
            return
        if self._unsent:
            try:
                self._write(self._sock, self._unsent, *self._unsent_for)
            except Exception as exc:
                self.abort(exc)
                return
        if not self._unsent:
            self.flush()

    # ---- lifecycle ----------------------------------------------------------------

    async def run(self) -> None:
        """Serve the client until it closes or is closed. Whatever this connection's
        input makes go wrong ends this connection alone: 1011, logged once per kind."""
        try:
            with self._scope:
                try:
                    await self._serve()
                except* Exception as group:
                    self.abort(group)
        finally:
            self._nursery = None
            self._close_queued = True
            self.node.close_session(self.session)
            if self._sock is not None:
                if self._poller is not None:
                    self._poller.forget(self._sock)
                trio.lowlevel.notify_closing(self._sock)
                self._sock.close()
            await trio.aclose_forcefully(self._stream)

    async def _serve(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._read_loop(nursery)
            self._close_if_open(CloseReason.NORMAL_CLOSURE, "")
            with trio.move_on_after(self._config.close_timeout):
                await self._close_written.wait()
            nursery.cancel_scope.cancel()

    def abort(self, exc: BaseException) -> None:
        """End this connection after a bug met while serving it: a best-effort 1011
        close frame (unless a frame is half written), the socket closed, the error
        logged (at most a few times per interval for each kind)."""
        self.node.stats.internal_errors += 1
        logs.throttled(
            log, logging.ERROR, ("connection", _kind(exc)),
            "closing %s: internal error", self.session.remote, exc_info=exc,
        )  # fmt: skip
        if not self._close_queued and not self._unsent and self._sock is not None:
            try:
                self._sock.send(close_frame(CloseReason.INTERNAL_ERROR, "internal error"))
            except OSError:
                pass
        self._close_queued = True
        self.close_code = CloseReason.INTERNAL_ERROR
        self._lost()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; the socket is gone within ``close_timeout``."""
        self._close_if_open(code, reason)
        self._scope.deadline = min(
            self._scope.deadline, trio.current_time() + self._config.close_timeout
        )

    def _close_if_open(self, code: int | None, reason: str) -> None:
        """Queue the close frame after everything already due; no stream frame follows."""
        if self._close_queued:
            return
        self._close_queued = True
        self.node.stop_streams(self.session)
        self.close_code = code
        self._outbox.push_control(close_frame(code, reason))
        if self._outbox or self._unsent:
            self.flush()
        else:
            self._close_written.set()

    def _too_slow(self) -> None:
        self.node.stats.slow_closes += 1
        logs.throttled(log, logging.INFO, "slow", "closing %s: too slow", self.session.remote)
        self.close(CloseReason.POLICY_VIOLATION, "Policy error: client is too slow.")

    def _lost(self) -> None:
        """The peer is gone: nothing more can be written."""
        if self._poller is not None and self._sock is not None:
            self._poller.forget(self._sock)
        self._unsent = []
        self._close_written.set()
        self._scope.cancel()

    # ---- writing ------------------------------------------------------------------

    def _wake_writer(self) -> None:
        if self._writer is None:
            assert self._nursery is not None
            self._writer = trio.lowlevel.ParkingLot()
            self._nursery.start_soon(self._write_loop, self._writer)
        elif self._writer:
            self._writer.unpark()

    async def _write_loop(self, lot: trio.lowlevel.ParkingLot) -> None:
        """Write whatever is due, waiting on the socket; park when nothing is."""
        outbox = self._outbox
        while True:
            if not self._unsent:
                if not outbox:
                    if self._close_queued:
                        self._close_written.set()
                    await lot.park()
                    continue
                frames, nbytes, stamp = outbox.take_due()
                self._unsent, self._unsent_for = frames, (nbytes, stamp)
            try:
                await self._send(self._unsent)
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                self._lost()
                return
            self._unsent = []
            self.node.wrote(*self._unsent_for)

    async def _send(self, frames: Sequence[Chunk]) -> None:
        if self._sock is not None:
            await send_frames(self._sock, frames)
        else:
            await self._stream.send_all(b"".join(frames))

    def _reply(self, outcome: Outcome, now: float | None = None) -> None:
        """The WebSocket envelope of an outcome, queued; the client is cut at the drop."""
        if self._close_queued:
            return
        extras = self.node.extras(outcome.verdict, now)
        if outcome.error is None:
            assert outcome.body is not None
            payload = envelope.success(outcome.body, outcome.result, extras)
        else:
            payload = envelope.failure(outcome.body, outcome.error, extras)
        deflate = self._deflate
        self.send(
            text_frame(payload) if deflate is None else compressed_text_frame(payload, deflate)
        )
        replay = outcome.replay
        if replay is not None and not self._close_queued and not self._outbox.attach(replay):
            self._too_slow()
        if outcome.verdict is Verdict.DROP:
            logs.throttled(
                log, logging.INFO, "load", "closing %s: load threshold exceeded",
                self.session.remote,
            )  # fmt: skip
            self.close(CloseReason.POLICY_VIOLATION, "threshold exceeded")

    # ---- reading ------------------------------------------------------------------

    async def _read_loop(self, nursery: trio.Nursery) -> None:
        """Read until the client closes, breaks a rule or goes; answer what it sends.
        Frames that came right behind the handshake are answered before the first read."""
        data: bytes | bytearray = self._trailing
        self._trailing = b""
        now = trio.current_time()
        while True:
            for event in self._reader.feed(data):
                if isinstance(event, _ENDS):
                    self._closed_by(event)
                    return
                pending = self._on_event(event, now)
                if pending is not None:
                    await self._start(pending, nursery)
                    now = trio.current_time()  # it may have waited for a slot
            self.flush()  # every reply to this read in one write
            try:
                data = await self._receive()
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            now = trio.current_time()  # one reading for all this read brought
            self.alive.hear(now)

    def _closed_by(self, event: Closed | Failed) -> None:
        """The client's close is answered with its own code; a broken rule with the
        code it calls for, and a message over the size bound is charged."""
        if isinstance(event, Failed):
            if event.too_big:
                self.node.charge(self.session, (("malformed", 1),))
            logs.throttled(
                log, logging.INFO, ("rule", event.code), "closing %s: %s", self.session.remote,
                event.reason,
            )  # fmt: skip
            self.close(event.code, event.reason)
        else:
            self._close_if_open(event.code, event.reason)

    async def _receive(self) -> bytes | bytearray:
        if self._sock is None:
            return await self._stream.receive_some(_READ_SIZE)
        waited = False
        while True:
            try:
                data = self._sock.recv(_READ_SIZE)
            except BlockingIOError:
                data = None  # wait outside the handler: the exception is not kept alive
            if data is None:
                await trio.lowlevel.wait_readable(self._sock)
                waited = True
                continue
            if not waited:
                await trio.lowlevel.checkpoint()  # a client that never pauses yields too
            return data

    def _on_event(self, event: Text | Binary | PingIn, now: float) -> Pending | None:
        """Answer what needs no waiting (most requests); a request that must wait is
        returned, to be started in a task of its own. ``now`` is when it was read."""
        if isinstance(event, PingIn):
            self._outbox.push_control(control_frame(PONG, event.payload), urgent=True)
            return None
        if self._close_queued:
            return None
        if isinstance(event, Binary):
            self._reply(self.node.refuse(self.session, _BINARY))
            return None
        begun = self.node.begin(self.session, event.data, now)
        if isinstance(begun, Outcome):
            self._reply(begun, now)
            return None
        return begun

    async def _start(self, pending: Pending, nursery: trio.Nursery) -> None:
        if not self._inflight.value:
            self.flush()  # what is answered already goes out while this waits
        await self._inflight.acquire()
        nursery.start_soon(self._answer, pending)

    async def _answer(self, pending: Pending) -> None:
        try:
            self._reply(await self.node.finish(self.session, pending))
            self.flush()
        finally:
            self._inflight.release()

    # ---- keepalive ----------------------------------------------------------------

    def keepalive(self, now: float) -> float | None:
        """Ping or give up as :class:`~hub.edge.keepalive.Keepalive` says; when to call again
        (None: never, the connection is closing)."""
        if self._close_queued:
            return None
        try:
            return self._keepalive(now)
        except Exception as exc:
            self.abort(exc)
            return None

    def _keepalive(self, now: float) -> float | None:
        step, due = self.alive.step(now)
        if step is Step.PING:
            self._outbox.push_control(control_frame(PING, b"hub"), urgent=True)
            self.flush()
        elif step is Step.TIMEOUT:
            logs.throttled(
                log, logging.INFO, "ping", "closing %s: no answer to ping", self.session.remote
            )
            self.close(CloseReason.GOING_AWAY, "ping timeout")
            return None
        return due
