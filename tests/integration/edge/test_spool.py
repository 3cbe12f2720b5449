"""Spooled buffers on real sockets: one pipe per shared batch, tee'd and spliced to each
socket and closed by its feed; and the portable path (plain ``send``) giving every socket
the same bytes. Tests taking ``spool_path`` run both ways, on Linux too."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio

from hub import Hub
from hub.edge import spool
from hub.edge.spool import Spooled
from hub.edge.writer import write_now
from hub.xrpl import events
from tests.helpers.hubs import make_config, open_client
from tests.helpers.samples import SPOOLABLE as BIG
from tests.helpers.samples import xrp_payment
from tests.helpers.sockets import through_a_small_buffer

linux_only = pytest.mark.skipif(not spool.available, reason="tee and splice are Linux-only")

Pair = tuple[socket.socket, socket.socket]


@pytest.fixture
def open_pair() -> Iterator[Callable[[int], Pair]]:
    """Opens a non-blocking socket pair whose left end has a ``sndbuf``-byte send
    buffer (the kernel doubles it); all are closed after the test."""
    opened: list[socket.socket] = []

    def make(sndbuf: int = 1 << 20) -> Pair:
        left, right = socket.socketpair()
        left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        for end in (left, right):
            end.setblocking(False)
            opened.append(end)
        return left, right

    yield make
    for end in opened:
        end.close()


@pytest.fixture
def pair(open_pair: Callable[[int], Pair]) -> Pair:
    return open_pair(1 << 20)


def drain(sock: socket.socket) -> bytes:
    out = bytearray()
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return bytes(out)
        out += chunk


def spooled(data: bytes, spool_path: str) -> bytes:
    """``spool.spool(data)``, checked to be spooled on the splice path and not otherwise."""
    out = spool.spool(data)
    assert out == data
    assert (type(out) is Spooled) == (spool_path == "splice")
    return out


def release(data: bytes) -> None:
    if type(data) is Spooled:
        data.close()


def test_every_socket_gets_the_whole_buffer(
    spool_path: str, open_pair: Callable[[int], Pair]
) -> None:
    data = spooled(BIG, spool_path)
    for left, right in [open_pair(1 << 20) for _ in range(3)]:
        assert spool.send(left, data) == len(BIG)  # sending does not use the buffer up
        assert drain(right) == BIG
    release(data)


@linux_only
def test_every_socket_is_spliced_from_the_same_pipe(
    monkeypatch: pytest.MonkeyPatch, open_pair: Callable[[int], Pair]
) -> None:
    data = spool.spool(BIG)
    assert type(data) is Spooled
    assert data.covered == len(BIG)
    into: list[int] = []
    real = os.splice

    def splice(src: int, dst: int, count: int, *args: Any, **kwargs: Any) -> int:
        into.append(dst)
        return real(src, dst, count, *args, **kwargs)

    monkeypatch.setattr(os, "splice", splice)
    pairs = [open_pair(1 << 20) for _ in range(3)]
    for left, right in pairs:
        assert data.send(left) == len(BIG)
        assert drain(right) == BIG
    assert into == [left.fileno() for left, _ in pairs]
    data.close()


def test_what_a_full_socket_did_not_take_is_not_sent_to_the_next(
    spool_path: str, open_pair: Callable[[int], Pair]
) -> None:
    small, small_peer = open_pair(4096)
    data = spooled(BIG, spool_path)
    part = spool.send(small, data)
    assert 0 < part < len(BIG)
    with pytest.raises(BlockingIOError):
        spool.send(small, data)
    assert drain(small_peer) == BIG[:part]
    big, big_peer = open_pair(1 << 20)
    assert spool.send(big, data) == len(BIG)
    assert drain(big_peer) == BIG  # from the start: nothing left over in the staging pipe
    release(data)


def test_a_gone_peer_raises_and_the_next_socket_still_gets_it_all(
    spool_path: str, pair: Pair
) -> None:
    left, right = pair
    gone, gone_peer = socket.socketpair()
    gone_peer.close()
    data = spooled(BIG, spool_path)
    with pytest.raises((BrokenPipeError, ConnectionResetError)):
        spool.send(gone, data)
    gone.close()
    other = spooled(BIG[::-1], spool_path)
    assert spool.send(left, other) == len(BIG)
    assert drain(right) == BIG[::-1]  # nothing of the failed send left in the staging pipe
    release(data)
    release(other)


@linux_only
def test_what_a_socket_holds_survives_the_pipe_being_closed(pair: Pair) -> None:
    left, right = pair
    data = spool.spool(BIG)
    assert type(data) is Spooled
    fd = data.fd
    sent = data.send(left)
    assert sent > 0
    data.close()
    assert data.fd == -1
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)
    assert drain(right) == BIG[:sent]


@linux_only
def test_a_closed_spool_still_sends_its_bytes(pair: Pair) -> None:
    left, right = pair
    data = spool.spool(BIG)
    assert type(data) is Spooled
    data.close()
    sent = spool.send(left, data)
    assert sent > 0
    assert drain(right) == BIG[:sent]


@linux_only
@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP])
def test_a_socket_splice_cannot_write_to_gets_plain_send(
    monkeypatch: pytest.MonkeyPatch, pair: Pair, code: int
) -> None:
    left, right = pair
    data = spool.spool(BIG)
    assert type(data) is Spooled

    real = os.splice

    def unsupported(src: int, dst: int, count: int, *args: Any, **kwargs: Any) -> int:
        if dst == left.fileno():
            raise OSError(code, os.strerror(code))
        return real(src, dst, count, *args, **kwargs)  # into /dev/null: what was staged

    monkeypatch.setattr(os, "splice", unsupported)
    assert spool.send(left, data) == len(BIG)
    monkeypatch.undo()
    assert drain(right) == BIG
    other = spool.spool(BIG[::-1])  # and the staging pipe holds nothing of it
    assert spool.send(left, other) == len(BIG)
    assert drain(right) == BIG[::-1]
    data.close()
    release(other)


async def test_a_buffer_longer_than_a_pipe_holds_arrives_whole(spool_path: str) -> None:
    long = BIG * 30  # 3 MB: over the 1 MiB a pipe holds by default
    data = spooled(long, spool_path)
    if type(data) is Spooled:
        assert spool.MIN_BYTES <= data.covered < len(long)  # spooled in part
    assert await through_a_small_buffer([data]) == long
    release(data)


async def test_a_shared_batch_arrives_whole_through_a_small_buffer(spool_path: str) -> None:
    data = spooled(BIG * 3, spool_path)
    assert await through_a_small_buffer([data]) == BIG * 3
    release(data)


def test_write_now_keeps_what_a_full_socket_did_not_take_of_a_shared_batch(
    spool_path: str, open_pair: Callable[[int], Pair]
) -> None:
    left, right = open_pair(4096)
    data = spooled(BIG, spool_path)
    rest = write_now(left, [data])
    assert rest
    assert drain(right) + b"".join(rest) == BIG
    release(data)


async def test_subscribers_share_one_batch_and_no_pipe_is_left_open(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch, spool_path: str
) -> None:
    made: list[Spooled] = []
    real = spool.spool

    def spooling(data: bytes) -> bytes:
        out = real(data)
        if type(out) is Spooled:
            made.append(out)
        return out

    monkeypatch.setattr(spool, "spool", spooling)
    node = Hub(make_config())
    await nursery.start(node.run)
    batch = [events.parse(xrp_payment(1, seq)) for seq in range(1, 61)]
    async with open_client(node) as a, open_client(node) as b, open_client(node) as c:
        clients = (a, b, c)
        for client in clients:
            reply = await client.request({"command": "subscribe", "streams": ["transactions"]})
            assert reply["status"] == "success"
        latency = node.node.metrics.latency
        observed = sum(latency.counts)
        await node.publish_batch(batch)
        for client in clients:
            got: list[Any] = [await client.recv() for _ in batch]
            assert [m["transaction"]["Sequence"] for m in got] == list(range(1, 61))
        assert sum(latency.counts) == observed + 3  # one write each, each observed
        if spool_path == "portable":
            assert made == []
            return
        assert len(made) == 1, "a 60-transaction batch to three subscribers is spooled once"
        assert made[0].fd == -1, "and its pipe closed once all three have it"


@linux_only
def test_a_host_that_allows_only_small_pipes_still_spools_what_they_hold(
    monkeypatch: pytest.MonkeyPatch, pair: Pair
) -> None:
    real = fcntl.fcntl

    def strict(fd: int, cmd: int, arg: int = 0) -> int:
        if cmd == fcntl.F_SETPIPE_SZ and arg > 1 << 16:
            raise PermissionError(errno.EPERM, "over pipe-max-size")
        return real(fd, cmd, arg)

    monkeypatch.setattr(fcntl, "fcntl", strict)
    stage = spool._Stage()
    assert stage.capacity == 1 << 16
    for fd in (stage.read, stage.write, stage.null):
        os.close(fd)
    data = spool.spool(BIG)
    assert type(data) is Spooled
    assert data.covered == 1 << 16  # a pipe's default size
    left, right = pair
    rest = write_now(left, [data])
    assert drain(right) + b"".join(rest) == BIG
    data.close()
