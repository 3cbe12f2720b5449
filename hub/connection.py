"""One WebSocket client on trio: a reader, a writer and a keepalive in one nursery.

The connection layer is wsproto driven directly rather than trio-websocket's server:
trio-websocket frames each message anew and writes it under a lock with no buffer
(python-trio/trio-websocket#65), while the hub writes frames built once for all
clients, coalesced into one write per wakeup. wsproto still parses every incoming
byte and builds every control frame; data frames come from :mod:`hub.frames`.

Close codes: 1000/echo when the client closes, 1001 on shutdown or ping timeout, 1008
for policy (too slow, load), 1009 for a message over ``max_message_size``, and the
code wsproto reports (1002, 1007) for protocol violations.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

import trio
from wsproto import WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError

from .dispatch import Outcome, Pending, Reply, begin, refuse, render
from .errors import RPCError
from .frames import text_frame

if TYPE_CHECKING:
    from .config import ServerConfig
    from .server import Hub
    from .session import Session

log = logging.getLogger(__name__)

_READ_SIZE = 65536


_IOV_MAX = 1024
_BINARY = RPCError("badSyntax", "Syntax error: binary frames are not supported.")


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
    """Owns the socket of one session until it closes; all its tasks die with it."""

    def __init__(
        self,
        hub: Hub,
        stream: trio.SocketStream,
        ws: WSConnection,
        session: Session,
        config: ServerConfig,
    ) -> None:
        self.hub = hub
        self.session = session
        # The writer sends with sendmsg on the plain socket (one system call for many
        # frames, no joined copy); the reader keeps trio's stream over the same socket.
        self._sock = socket.socket(fileno=stream.socket.detach())
        self._sock.setblocking(False)
        self._stream = trio.SocketStream(trio.socket.from_stdlib_socket(self._sock))
        self._ws = ws
        self._config = config
        self._lot = trio.lowlevel.ParkingLot()
        self._inflight = trio.Semaphore(config.max_in_flight)
        self._scope = trio.CancelScope()
        self._close_queued = False
        self._close_written = trio.Event()
        self._last_rx = trio.current_time()
        self._received = 0
        self.close_code: int | None = None
        session.wake = self._wake
        session.overflow = self._too_slow

    @property
    def inflight(self) -> int:
        return self._config.max_in_flight - self._inflight.value

    async def run(self) -> None:
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop)
                    nursery.start_soon(self._keepalive)
                    await self._read_loop(nursery)
                    self._close_if_open(1000, "")
                    with trio.move_on_after(self._config.close_timeout):
                        await self._close_written.wait()
                    nursery.cancel_scope.cancel()
        finally:
            self.session.closed = True
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
        self.session.closed = True
        if self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            self.close_code = code
            self._queue_control(self._ws.send(CloseConnection(code, reason)))
        self._wake()

    def _queue_control(self, frame: bytes) -> None:
        self.session.outbox.push_control(frame)
        self._wake()

    def _wake(self) -> None:
        if self._lot:
            self._lot.unpark()

    def _too_slow(self) -> None:
        self.hub.stats.slow_closes += 1
        log.info("closing %s: too slow", self.session.remote)
        self.close(1008, "Policy error: client is too slow.")

    async def _write_loop(self) -> None:
        outbox = self.session.outbox
        while True:
            while not outbox:
                if self._close_queued:
                    self._close_written.set()
                    return
                await self._lot.park()
            stamp = outbox.stamp
            nbytes = outbox.nbytes
            try:
                await send_frames(self._sock, outbox.take_frames())
            except OSError:
                self._close_written.set()
                self._scope.cancel()
                return
            self.hub.stats.bytes_sent += nbytes
            if stamp is not None:
                self.hub.metrics.latency.observe(trio.current_time() - stamp)

    async def _read_loop(self, nursery: trio.Nursery) -> None:
        ws = self._ws
        limit = self._config.max_message_size
        parts: list[bytes] = []
        size = 0
        while True:
            try:
                data = await self._stream.receive_some(_READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            self._last_rx = trio.current_time()
            self._received += 1
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, Message):
                    if self._close_queued:
                        continue
                    chunk = event.data.encode() if isinstance(event, TextMessage) else event.data
                    size += len(chunk)
                    if size > limit:
                        self.hub.charge(self.session, self.hub.load.policy.cost("malformed"))
                        self.close(1009, f"message exceeds {limit} bytes")
                        continue
                    if not event.message_finished:
                        parts.append(chunk)
                        continue
                    message = b"".join((*parts, chunk)) if parts else chunk
                    parts.clear()
                    size = 0
                    if isinstance(event, BytesMessage):
                        self._reply(refuse(self.hub, self.session, _BINARY))
                        continue
                    begun = begin(self.hub, self.session, message)
                    if isinstance(begun, Outcome):
                        self._reply(render(self.hub, self.session, begun))
                        continue
                    await self._inflight.acquire()
                    nursery.start_soon(self._answer, begun)
                elif isinstance(event, Ping):
                    self._queue_control(ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    self._close_if_open(event.code, event.reason or "")
                    return

    async def _answer(self, pending: Pending) -> None:
        try:
            self._reply(render(self.hub, self.session, await pending.finish()))
        finally:
            self._inflight.release()

    def _reply(self, reply: Reply) -> None:
        if self._close_queued:
            return
        self.session.send(text_frame(reply.payload))
        for frame in reply.followups:
            self.session.send(frame)
        if reply.drop:
            log.info("closing %s: load threshold exceeded", self.session.remote)
            self.close(1008, "threshold exceeded")

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
                self.close(1001, "ping timeout")
                return
