"""The one write path to a client's socket: everything a connection sends goes here.

A :class:`Writer` takes what its connection's :class:`~hub.core.outbox.Outbox` has due
and writes it, in one of three ways, the same to its connection:

- **direct**: a plain socket is written with a non-blocking ``sendmsg`` by whoever
  calls :meth:`Writer.flush` (fan-out once per batch, the reader once per read). A
  batch shared by many subscribers arrives spooled (:mod:`hub.edge.spool`) and goes
  out with ``tee`` and ``splice`` instead of a copy per socket.
- **the poller**: what a plain socket would not take waits as a view (no copy) and the
  socket is armed in the hub's one :class:`~hub.edge.poller.WritePoller`, whose task
  calls the writer back when the kernel has room: a ledger that fills 10 000 send
  buffers starts no task.
- **a writer task**: over TLS (no plain socket to write), or where there is no poller,
  a task of the writer's own, started the first time it is needed, writes and waits.

The connection decides; the writer only writes, and tells it what it cannot decide
itself (:class:`Owner`): the backlog passed a bound, the peer is gone, a bug was met.
It also knows when everything queued has gone, close frame included
(:meth:`Writer.when_sent`).

The publish-to-write latency is observed per write, never per message: a
:meth:`Writer.flush` returns the fan-out stamp of what it wrote whole, for its caller
to observe (the node's flush loop groups a batch's writes by stamp, with one reading of
the clock); a write finished later, by the poller or the writer task, is told to
:meth:`Counting.wrote` as it ends.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Final, Protocol

import trio

from hub.core.outbox import Outbox
from hub.core.stats import Stats
from hub.edge import spool
from hub.edge.poller import WritePoller

_IOV_MAX: Final = 1024

Chunk = bytes | memoryview
"""A frame, or what is left of one after a partial write (a view: no copy is made)."""

_GONE: Final = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)


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


class Owner(Protocol):
    """The connection a writer writes for: what the writer tells it and cannot decide."""

    def overflowed(self) -> None:
        """The backlog passed a bound of the outbox: the client is too slow."""
        ...

    def lost(self) -> None:
        """The socket takes nothing more: the peer is gone."""
        ...

    def abort(self, exc: BaseException) -> None:
        """A bug was met writing from a shared task (the poller's)."""
        ...


class Counting(Protocol):
    """Where a writer counts what it wrote: the node's counters and latency metric."""

    @property
    def stats(self) -> Stats: ...

    def wrote(self, stamp: float) -> None:
        """A write that ended outside a flush (the poller's, the writer task's):
        ``stamp`` is the fan-out time of the oldest stream message in it."""
        ...


class Writer:
    """One connection's writing (see the module): :meth:`flush` writes what is due,
    :meth:`when_sent` says when it has all gone, :meth:`stop` ends it.

    Over a plain socket ``sock`` is that socket and ``stream`` is not written; over TLS
    ``sock`` is None and ``stream`` is. Without ``poller`` a socket that would block is
    written by the writer task.
    """

    __slots__ = ("_counting", "_lot", "_nursery", "_outbox", "_owner", "_poller", "_sent",
                 "_sock", "_stopped", "_stream", "_unsent", "_unsent_for")  # fmt: skip

    def __init__(
        self,
        outbox: Outbox,
        owner: Owner,
        counting: Counting,
        *,
        sock: socket.socket | None,
        stream: trio.abc.Stream,
        poller: WritePoller | None = None,
    ) -> None:
        self._outbox = outbox
        self._owner = owner
        self._counting = counting
        self._sock = sock
        self._stream = stream
        self._poller = poller if sock is not None else None
        self._unsent: Sequence[Chunk] = ()
        """What was taken and not written yet: the poller or the task writes it next."""
        self._unsent_for: tuple[int, float | None] = (0, None)
        self._nursery: trio.Nursery | None = None
        self._lot: trio.lowlevel.ParkingLot | None = None
        """The writer task's, once it runs."""
        self._sent: Callable[[], None] | None = None
        self._stopped = False

    def start(self, nursery: trio.Nursery) -> None:
        """The writer task, when one is needed, runs in ``nursery`` (its connection's,
        given before it reads anything)."""
        self._nursery = nursery

    def flush(self) -> float | None:
        """Write what is due now without waiting; what the socket does not take waits
        for the poller or the writer task. Returns the fan-out stamp of the oldest
        stream message in what went out whole now (None: none did)."""
        sock = self._sock
        if self._unsent or sock is None:
            outbox = self._outbox
            if not outbox.within_bounds():
                self._owner.overflowed()
            if self._poller is None and (outbox or self._unsent) and not self._stopped:
                self._wake()
            return None
        due = self._outbox.take()
        if due is None:
            self._owner.overflowed()
            return None
        frames, nbytes, stamp = due
        if not frames:
            if self._sent is not None:
                self._sent_if_asked()
            return None
        return self._write(sock, frames, nbytes, stamp)

    def when_sent(self, sent: Callable[[], None]) -> None:
        """Call ``sent`` once, when everything queued has been written (a close frame is
        queued last, so its writing is the end): from a flush, the poller or the task.
        Never once the writer has stopped."""
        self._sent = sent
        self._sent_if_asked()

    def last_words(self, frame: bytes) -> None:
        """Write ``frame`` now if the socket takes it and no frame is half written; the
        best a connection ended by a bug can do, so a failure is ignored."""
        if self._sock is None or self._unsent or self._stopped:
            return
        try:
            self._sock.send(frame)
        except OSError:
            pass

    def stop(self) -> None:
        """Write nothing more: the poller forgets the socket (before it is closed: its
        descriptor number will be reused), what was unsent is dropped."""
        if self._stopped:
            return
        self._stopped = True
        self._unsent = ()
        self._sent = None
        if self._poller is not None and self._sock is not None:
            self._poller.forget(self._sock)

    def _write(
        self, sock: socket.socket, frames: Sequence[Chunk], nbytes: int, stamp: float | None
    ) -> float | None:
        """Write now what the socket takes; the rest waits until it can take more.
        Returns ``stamp`` once all of ``frames`` has gone."""
        try:
            rest = write_now(sock, frames)
        except OSError:
            self._gone()
            return None
        if rest:
            self._unsent, self._unsent_for = rest, (nbytes, stamp)
            self._wait(sock)
            return None
        self._unsent = ()
        self._counting.stats.bytes_sent += nbytes
        if self._outbox.replaying:
            self._wait(sock)  # the replay's next chunk, once the socket takes more
        elif self._sent is not None:
            self._sent_if_asked()
        return stamp

    def _wait(self, sock: socket.socket) -> None:
        """Write again when the socket can take more (from the poller, or the task)."""
        if self._poller is not None:
            self._poller.wait(sock, self._writable)
        else:
            self._wake()

    def _writable(self) -> None:
        """The poller's call: the socket takes bytes again. What waited goes first,
        then what became due meanwhile (a replay's next chunk, say): one chunk per call,
        so a long replay takes turns with everything else the hub does."""
        sock = self._sock
        if sock is None or self._stopped:
            return
        try:
            if self._unsent:
                stamp = self._write(sock, self._unsent, *self._unsent_for)
                if stamp is not None:
                    self._counting.wrote(stamp)
            if not self._unsent and not self._stopped:
                stamp = self.flush()
                if stamp is not None:
                    self._counting.wrote(stamp)
        except Exception as exc:
            self._owner.abort(exc)

    def _sent_if_asked(self) -> None:
        sent = self._sent
        if sent is not None and not self._unsent and not self._outbox:
            self._sent = None
            sent()

    def _gone(self) -> None:
        self.stop()
        self._owner.lost()

    # ---- the writer task --------------------------------------------------------------

    def _wake(self) -> None:
        lot = self._lot
        if lot is None:
            if self._nursery is None:
                return  # before start(): its connection has read nothing, nothing is due
            self._lot = lot = trio.lowlevel.ParkingLot()
            self._nursery.start_soon(self._run, lot)
        elif lot:
            lot.unpark()

    async def _run(self, lot: trio.lowlevel.ParkingLot) -> None:
        """Write whatever is due, waiting on the socket; park when nothing is."""
        outbox = self._outbox
        while not self._stopped:
            if not self._unsent:
                if not outbox:
                    self._sent_if_asked()
                    await lot.park()
                    continue
                frames, nbytes, stamp = outbox.take_due()
                self._unsent, self._unsent_for = frames, (nbytes, stamp)
            try:
                await self._send(self._unsent)
            except _GONE:
                self._gone()
                return
            self._unsent = ()
            nbytes, stamp = self._unsent_for
            self._counting.stats.bytes_sent += nbytes
            if stamp is not None:
                self._counting.wrote(stamp)

    async def _send(self, frames: Sequence[Chunk]) -> None:
        if self._sock is not None:
            await send_frames(self._sock, frames)
        else:
            await self._stream.send_all(b"".join(frames))
