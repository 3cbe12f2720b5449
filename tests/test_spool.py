"""Spooled buffers: one memory file per shared batch, sent with sendfile, closed by its feed."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from hub import Hub, events, spool
from hub.connection import write_now
from hub.feed import Feed
from hub.spool import Spooled
from tests.conftest import make_config, open_client
from tests.samples import xrp_payment
from tests.test_writer import through_a_small_buffer

pytestmark = pytest.mark.skipif(not spool.available, reason="memfd_create/sendfile are Linux-only")

BIG = bytes(range(256)) * 400  # 102 400 bytes: over spool.MIN_BYTES


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)
    yield left, right
    left.close()
    right.close()


def drain(sock: socket.socket) -> bytes:
    out = bytearray()
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return bytes(out)
        out += chunk


def open_spools() -> int:
    """Spool files this process has open (a closed one's number may be reused)."""
    return sum(
        os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:hub-spool")
        for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}")
    )


def test_small_buffers_stay_plain_bytes() -> None:
    small = b"x" * (spool.MIN_BYTES - 1)
    assert spool.spool(small) is small


def test_without_a_descriptor_to_spare_the_bytes_stay_plain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def exhausted(name: str, flags: int = 0) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "memfd_create", exhausted)
    assert spool.spool(BIG) is BIG


def test_a_spooled_buffer_is_the_same_bytes_and_goes_out_by_sendfile_from_its_file(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    left, right = pair
    data = spool.spool(BIG)
    assert type(data) is Spooled
    assert data == BIG
    assert os.pread(data.fd, len(BIG), 0) == BIG
    from_files: list[int] = []
    real = os.sendfile

    def sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        from_files.append(in_fd)
        return real(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", sendfile)
    sent = data.send(left)
    assert from_files == [data.fd]
    assert drain(right) == BIG[:sent]
    data.close()


def test_what_a_socket_holds_survives_the_file_being_closed(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    left, right = pair
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    data = spool.spool(BIG)
    assert type(data) is Spooled
    assert open_spools() == 1
    sent = data.send(left)
    assert sent > 0
    data.close()
    assert data.fd == -1
    assert open_spools() == 0
    assert drain(right) == BIG[:sent]


def test_a_closed_spool_still_sends_its_bytes(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    data = spool.spool(BIG)
    assert type(data) is Spooled
    data.close()
    sent = spool.send(left, data)
    assert sent > 0
    assert drain(right) == BIG[:sent]


async def test_a_spooled_batch_arrives_whole_through_a_small_buffer() -> None:
    data = spool.spool(BIG * 3)
    assert type(data) is Spooled
    assert await through_a_small_buffer([data]) == BIG * 3
    data.close()


def test_write_now_keeps_what_a_full_socket_did_not_take_of_a_spooled_batch(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    left, right = pair
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    data = spool.spool(BIG)
    rest = write_now(left, [data])
    assert rest
    assert drain(right) + b"".join(rest) == BIG
    data.close()


def test_a_feed_spools_for_several_readers_and_closes_when_it_moves_on() -> None:
    feed = Feed(frozenset({"transactions"}), 2, None)
    feed.readers.add(object())  # type: ignore[arg-type]
    feed.append(BIG, None)
    alone = feed.joined(0)
    assert type(alone) is bytes  # one reader: nothing to share
    feed.readers.add(object())  # type: ignore[arg-type]
    feed.append(BIG, None)
    shared = feed.joined(0)
    assert type(shared) is Spooled
    assert feed.joined(0) is shared
    assert shared == BIG * 2
    assert open_spools() == 1
    feed.append(b"c", None)
    assert feed.joined(2) == b"c"
    assert shared.fd == -1
    assert open_spools() == 0
    again = feed.joined(0)
    assert type(again) is Spooled
    feed.trim(3)
    assert again.fd == -1


async def test_subscribers_share_one_spooled_batch_and_no_file_is_left_open(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[int] = []
    real = os.memfd_create

    def memfd_create(name: str, flags: int = os.MFD_CLOEXEC) -> int:
        made.append(fd := real(name, flags))
        return fd

    monkeypatch.setattr(os, "memfd_create", memfd_create)
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
        assert made, "a 60-transaction batch to three subscribers is spooled"
        assert open_spools() == 0
        assert sum(latency.counts) == observed + 3  # one write each, each observed
