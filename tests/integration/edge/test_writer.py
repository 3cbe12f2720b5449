"""The write path (``hub.edge.writer``) on socket pairs: many frames per sendmsg, partial
writes resumed mid-frame, order kept; the Writer's three ways (direct, the poller, a
task) and what it tells its connection."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import trio
import trio.testing

from hub.core.feed import Feed
from hub.core.outbox import Outbox
from hub.core.stats import Stats
from hub.edge.poller import WritePoller
from hub.edge.writer import Writer, send_frames, write_now
from hub.wire.frames import close_frame
from tests.helpers.sockets import read_exactly, through_a_small_buffer


async def test_frames_arrive_whole_and_in_order_through_a_small_buffer() -> None:
    frames = [bytes([i % 251]) * (1 + (i * 7919) % 5000) for i in range(3000)]
    assert await through_a_small_buffer(frames) == b"".join(frames)


async def test_a_gone_peer_raises() -> None:
    left, right = socket.socketpair()
    left.setblocking(False)
    right.close()
    with pytest.raises((BrokenPipeError, ConnectionResetError)), trio.fail_after(5):
        await send_frames(left, [b"x" * 100_000] * 10)
    left.close()


async def test_one_big_buffer_through_a_small_buffer_resumes_where_it_stopped() -> None:
    data = bytes(range(256)) * 4000  # one joined batch, far over the send buffer
    assert await through_a_small_buffer([data]) == data


def test_write_now_returns_exactly_what_the_socket_did_not_take() -> None:
    left, right = socket.socketpair()
    left.setblocking(False)
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    frames = [b"a" * 3000, b"b" * 50_000, b"c" * 10]
    rest = write_now(left, frames)
    assert rest, "a 4 KiB send buffer cannot take 53 kB"
    right.setblocking(False)
    taken = b""
    while True:
        try:
            taken += right.recv(1 << 20)
        except BlockingIOError:
            break
    assert taken + b"".join(rest) == b"".join(frames)
    assert rest[-1] == b"c" * 10  # whole frames after the cut stay whole
    (single,) = write_now(left, [b"z" * 200_000]) or [b""]
    assert single == (b"z" * 200_000)[-len(single) :]
    left.close()
    right.close()


# ---- the Writer: one connection's write path ---------------------------------------------


class Owner:
    """What a connection is told by its writer, recorded."""

    def __init__(self) -> None:
        self.told: list[str] = []

    def overflowed(self) -> None:
        self.told.append("overflowed")

    def lost(self) -> None:
        self.told.append("lost")

    def abort(self, exc: BaseException) -> None:
        raise AssertionError("the writer met a bug") from exc


class Counting:
    """The node's side: counters, and the latencies of writes outside a flush."""

    def __init__(self) -> None:
        self.stats = Stats()
        self.stamps: list[float] = []
        self.observed = trio.Event()

    def wrote(self, stamp: float) -> None:
        self.stamps.append(stamp)
        self.observed.set()


@dataclass
class Rig:
    writer: Writer
    outbox: Outbox
    owner: Owner
    counting: Counting
    peer: socket.socket
    """The other end of the writer's socket, non-blocking."""
    poller: WritePoller | None


@pytest.fixture
def rig() -> Iterator[Callable[..., Rig]]:
    """Makes a writer over one end of a socket pair (``sndbuf`` bytes of send buffer,
    doubled by the kernel), with a poller of its own unless ``poller=False``. Everything
    is closed after the test."""
    opened: list[socket.socket] = []
    pollers: list[WritePoller] = []

    def make(sndbuf: int = 1 << 20, *, poller: bool = True, max_bytes: int = 1 << 24) -> Rig:
        left, right = socket.socketpair()
        left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        for end in (left, right):
            end.setblocking(False)
            opened.append(end)
        outbox, owner, counting = Outbox(max_bytes, 100_000), Owner(), Counting()
        waiting = WritePoller() if poller else None
        if waiting is not None:
            pollers.append(waiting)
        unused = trio.testing.memory_stream_pair()[0]  # a plain socket is written itself
        writer = Writer(outbox, owner, counting, sock=left, stream=unused, poller=waiting)
        return Rig(writer, outbox, owner, counting, right, waiting)

    yield make
    for end in opened:
        end.close()
    for waiting in pollers:
        waiting.close()


def drain(sock: socket.socket) -> bytes:
    out = bytearray()
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return bytes(out)
        out += chunk


def test_a_flush_returns_the_stamp_of_what_went_out_whole_for_its_caller_to_observe(
    rig: Callable[..., Rig],
) -> None:
    r = rig()
    r.outbox.push(b"a" * 100, 5.0)
    r.outbox.push(b"b" * 50, 6.0)
    assert r.writer.flush() == 5.0  # the oldest of the write
    assert r.counting.stats.bytes_sent == 150
    assert r.counting.stamps == []  # the caller observes what a flush returns
    assert drain(r.peer) == b"a" * 100 + b"b" * 50
    assert r.writer.flush() is None  # nothing due


def test_what_a_full_socket_leaves_waits_in_the_poller_and_is_observed_when_it_goes(
    rig: Callable[..., Rig],
) -> None:
    r = rig(4096)
    assert r.poller is not None
    data = bytes(range(256)) * 800
    r.outbox.push(data, 7.0)
    assert r.writer.flush() is None  # not all of it went
    assert r.counting.stats.bytes_sent == 0
    assert len(r.poller) == 1
    r.outbox.push(b"later", 8.0)
    assert r.writer.flush() is None  # behind what waits: nothing is written out of order
    got = drain(r.peer)
    while len(got) < len(data) + 5:
        r.poller.ready()
        got += drain(r.peer)
    assert got == data + b"later"
    assert r.counting.stamps == [7.0, 8.0]  # the rest of the first write, then the second
    assert r.counting.stats.bytes_sent == len(data) + 5
    assert len(r.poller) == 0


def test_when_sent_is_told_once_the_last_byte_has_gone(rig: Callable[..., Rig]) -> None:
    r = rig(4096)
    assert r.poller is not None
    told: list[int] = []
    got = b""
    r.outbox.push(b"x" * 300_000)
    r.outbox.push_control(close_frame(1000))
    r.writer.when_sent(lambda: told.append(len(got)))
    assert r.writer.flush() is None
    assert told == []
    while not told:
        got += drain(r.peer)
        r.poller.ready()
    got += drain(r.peer)
    assert got == b"x" * 300_000 + close_frame(1000)
    assert len(told) == 1
    r.writer.when_sent(lambda: told.append(-1))  # nothing queued: told at once
    assert told[-1] == -1


def test_a_gone_peer_is_told_once_and_nothing_more_is_written(rig: Callable[..., Rig]) -> None:
    r = rig(4096)
    assert r.poller is not None
    told: list[str] = []
    r.outbox.push(b"x" * 300_000)
    r.writer.when_sent(lambda: told.append("sent"))
    assert r.writer.flush() is None
    assert len(r.poller) == 1
    r.peer.close()
    r.poller.ready()
    assert r.owner.told == ["lost"]
    assert len(r.poller) == 0  # forgotten before the socket is closed
    assert told == []  # what was lost was not sent
    assert r.counting.stats.bytes_sent == 0


def test_a_feed_backlog_past_a_bound_is_the_owners_to_cut(rig: Callable[..., Rig]) -> None:
    r = rig(max_bytes=100)
    feed = Feed(frozenset({"ledger"}), 2, None)
    r.outbox.follow(feed)
    for _ in range(3):
        feed.append(b"y" * 40, None)
    assert r.writer.flush() is None
    assert r.owner.told == ["overflowed"]
    assert not r.outbox
    assert drain(r.peer) == b""


def test_last_words_go_out_only_when_no_frame_is_half_written(rig: Callable[..., Rig]) -> None:
    r = rig(4096)
    last = close_frame(1011, "internal error")
    r.writer.last_words(last)
    assert drain(r.peer) == last
    r.outbox.push(b"x" * 300_000)
    r.writer.flush()
    r.writer.last_words(last)
    r.writer.stop()
    got = drain(r.peer)
    assert got
    assert set(got) == {ord("x")}


async def test_without_a_poller_a_writer_task_writes_what_the_socket_did_not_take(
    rig: Callable[..., Rig],
) -> None:
    r = rig(4096, poller=False)
    data = bytes(range(256)) * 2000
    reader = trio.socket.from_stdlib_socket(r.peer)
    async with trio.open_nursery() as nursery:
        r.writer.start(nursery)
        r.outbox.push(data, 3.0)
        assert r.writer.flush() is None
        with trio.fail_after(10):
            got = await read_exactly(reader, len(data))
            await r.counting.observed.wait()
        assert got == data
        assert r.counting.stamps == [3.0]
        assert r.counting.stats.bytes_sent == len(data)
        nursery.cancel_scope.cancel()


async def test_over_a_stream_the_writer_task_writes_and_tells_when_all_has_gone() -> None:
    left, right = trio.testing.memory_stream_pair()
    outbox, owner, counting = Outbox(1 << 20, 1000), Owner(), Counting()
    writer = Writer(outbox, owner, counting, sock=None, stream=left)
    sent = trio.Event()
    async with trio.open_nursery() as nursery:
        writer.start(nursery)
        outbox.push(b"hello", 1.0)
        outbox.push_control(close_frame(1000))
        writer.when_sent(sent.set)
        assert writer.flush() is None  # the task writes, never the flush
        with trio.fail_after(10):
            await sent.wait()
            got = await right.receive_some()
        assert got == b"hello" + close_frame(1000)
        assert counting.stamps == [1.0]
        nursery.cancel_scope.cancel()
