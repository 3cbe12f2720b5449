"""One WebSocket client on trio: a reader task that reads, answers and decides; a writer.

The connection layer is the hub's own rather than trio-websocket's server:
trio-websocket frames each message anew and writes it under a lock with no buffer
(python-trio/trio-websocket#65), while the hub writes frames built once for all
clients, coalesced into one write per batch. Incoming bytes are parsed by
:mod:`hub.wire.inbound`; every outgoing frame comes from :mod:`hub.wire.frames` and is
written by the connection's :class:`~hub.edge.writer.Writer`, the one write path.

A connection is its session's :class:`~hub.core.session.Sink`, and renders the WebSocket
envelope of every outcome the node hands back. How it closes is
:mod:`hub.wire.lifecycle`'s state machine; the codes it closes with are
:class:`~hub.wire.close.CloseCode`'s (a client's own close is answered with its code).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, Protocol

import trio

from hub import logs
from hub.core.dispatch import Outcome, Pending
from hub.core.feed import Feed
from hub.core.load import Verdict
from hub.core.outbox import Outbox
from hub.core.session import Session, Sink
from hub.core.stats import Stats
from hub.edge.keepalive import Keepalive, Step
from hub.edge.poller import WritePoller
from hub.edge.writer import Writer
from hub.wire import envelope
from hub.wire.close import CloseCode
from hub.wire.deflate import DeflateParams, compressed_text_frame
from hub.wire.envelope import Extras
from hub.wire.errors import RPCError
from hub.wire.frames import close_frame, control_frame, text_frame
from hub.wire.inbound import PING, PONG, Binary, Closed, Failed, Parser, PingIn, Text
from hub.wire.lifecycle import Event, Lifecycle, State

if TYPE_CHECKING:
    from hub.config import ServerConfig
    from hub.wire.admission import Identity

log = logging.getLogger(__name__)

_READ_SIZE = 65536
_BINARY = RPCError("badSyntax", "Syntax error: binary frames are not supported.")
_ENDS = (Closed, Failed)
_OPEN: Final = State.OPEN
_CLOSING: Final = State.CLOSING


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

    def wrote(self, stamp: float) -> None:
        """A write outside the flush loop held stream messages; ``stamp`` is the
        fan-out time of the oldest."""
        ...


class Connection:
    """Owns the socket and the session of one client until it closes; all its tasks
    die with it. Opens its session on the node and closes it when done.

    It runs one task, its reader, which reads, answers and decides. Frames are written by
    its :class:`~hub.edge.writer.Writer` from whoever queued them (fan-out once per
    batch, the reader once per read); what a socket would not take waits in the hub's
    poller, or, over TLS or without a poller, in a writer task started when needed.
    Keepalive is the hub's (:mod:`hub.edge.keepalive`): :meth:`keepalive` is called when
    it is due. Its close is a :class:`~hub.wire.lifecycle.Lifecycle`.
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
        self._reader = Parser(config.max_message_size, deflate=deflate is not None)
        self._trailing = trailing
        self._config = config
        self._outbox = outbox
        self._writer = Writer(outbox, self, node, sock=self._sock, stream=stream, poller=poller)
        self._life = Lifecycle()
        self._settled = trio.Event()
        """Set on entering CLOSE_SENT or LOST: nothing more is written."""
        self._inflight = trio.Semaphore(config.max_in_flight)
        self._scope = trio.CancelScope()
        self.alive = Keepalive(config.ping_interval, config.ping_timeout, trio.current_time())
        self.close_code: int | None = None
        self._deflate = deflate
        self.session = node.open_session(who, self, self._deflate)

    @property
    def state(self) -> State:
        """Where it is in closing (:mod:`hub.wire.lifecycle`)."""
        return self._life.state

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
        """Queue a frame without waiting; a client that cannot keep up is cut. Nothing
        is queued once the close frame is."""
        if self._life.state is not _OPEN:
            return
        try:
            if not self._outbox.push(frame, stamp):
                self._too_slow()
        except Exception as exc:
            self.abort(exc)

    def flush(self) -> float | None:
        """Write what is due now (the writer's :meth:`~hub.edge.writer.Writer.flush`);
        the stamp of what went out whole, for the flush loop to observe. Only open or
        closing is there anything to write."""
        state = self._life.state
        if state is not _OPEN and state is not _CLOSING:
            return None
        try:
            return self._writer.flush()
        except Exception as exc:
            self.abort(exc)
            return None

    def _flush(self) -> None:
        """:meth:`flush` from the connection's own tasks, observing what it wrote."""
        stamp = self.flush()
        if stamp is not None:
            self.node.wrote(stamp)

    # ---- what the writer tells it -------------------------------------------------

    def overflowed(self) -> None:
        """The writer's call: the backlog passed a bound."""
        if self._life.state is _OPEN:
            self._too_slow()

    def lost(self) -> None:
        """The peer is gone (the writer's call), or a bug ended the connection: nothing
        more can be written, and its tasks are cancelled."""
        self._writer.stop()
        self._life.handle(Event.LOST)
        self._settled.set()
        self._scope.cancel()

    def _sent(self) -> None:
        """The writer's call once the close frame, and all before it, has gone."""
        self._life.handle(Event.SENT)
        self._settled.set()

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
            self._life.handle(Event.END)
            self._writer.stop()
            self.node.close_session(self.session)
            if self._sock is not None:
                trio.lowlevel.notify_closing(self._sock)
                self._sock.close()
            await trio.aclose_forcefully(self._stream)

    async def _serve(self) -> None:
        async with trio.open_nursery() as nursery:
            self._writer.start(nursery)
            await self._read_loop(nursery)
            self._close_if_open(CloseCode.NORMAL, "")
            with trio.move_on_after(self._config.close_timeout):
                await self._settled.wait()
            nursery.cancel_scope.cancel()

    def abort(self, exc: BaseException) -> None:
        """End this connection after a bug met while serving it: a best-effort 1011
        close frame (unless a close frame is queued already, or a frame is half
        written), the socket closed, the error logged (at most a few times per interval
        for each kind)."""
        self.node.stats.internal_errors += 1
        logs.throttled(
            log, logging.ERROR, ("connection", _kind(exc)),
            "closing %s: internal error", self.session.remote, exc_info=exc,
        )  # fmt: skip
        if self._life.state is _OPEN:
            self._writer.last_words(close_frame(CloseCode.INTERNAL, "internal error"))
        self.close_code = CloseCode.INTERNAL
        self.lost()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; the socket is gone within ``close_timeout``."""
        self._close_if_open(code, reason)
        self._scope.deadline = min(
            self._scope.deadline, trio.current_time() + self._config.close_timeout
        )

    def _close_if_open(self, code: int | None, reason: str) -> None:
        """Queue the close frame after everything already due; nothing follows it."""
        if self._life.state is not _OPEN:
            return
        self._life.handle(Event.CLOSE)
        self.node.stop_streams(self.session)
        self.close_code = code
        self._outbox.push_control(close_frame(code, reason))
        self._writer.when_sent(self._sent)
        self._flush()

    def _too_slow(self) -> None:
        self.node.stats.slow_closes += 1
        logs.throttled(log, logging.INFO, "slow", "closing %s: too slow", self.session.remote)
        self.close(CloseCode.POLICY, "Policy error: client is too slow.")

    def _reply(self, outcome: Outcome, now: float | None = None) -> None:
        """The WebSocket envelope of an outcome, queued; the client is cut at the drop."""
        if self._life.state is not _OPEN:
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
        if replay is not None and self._life.state is _OPEN and not self._outbox.attach(replay):
            self._too_slow()
        if outcome.verdict is Verdict.DROP:
            logs.throttled(
                log, logging.INFO, "load", "closing %s: load threshold exceeded",
                self.session.remote,
            )  # fmt: skip
            self.close(CloseCode.POLICY, "threshold exceeded")

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
            self._flush()  # every reply to this read in one write
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
        if self._life.state is not _OPEN:
            return None
        if isinstance(event, PingIn):
            self._outbox.push_control(control_frame(PONG, event.payload), urgent=True)
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
            self._flush()  # what is answered already goes out while this waits
        await self._inflight.acquire()
        nursery.start_soon(self._answer, pending)

    async def _answer(self, pending: Pending) -> None:
        try:
            self._reply(await self.node.finish(self.session, pending))
            self._flush()
        finally:
            self._inflight.release()

    # ---- keepalive ----------------------------------------------------------------

    def keepalive(self, now: float) -> float | None:
        """Ping or give up as :class:`~hub.edge.keepalive.Keepalive` says; when to call again
        (None: never, the connection is closing)."""
        if self._life.state is not _OPEN:
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
            self._flush()
        elif step is Step.TIMEOUT:
            logs.throttled(
                log, logging.INFO, "ping", "closing %s: no answer to ping", self.session.remote
            )
            self.close(CloseCode.GOING_AWAY, "ping timeout")
            return None
        return due
