"""Blocked sockets wait in the hub's one poller, not in a task each; nothing is lost."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
import pytest
import trio
import trio.testing
from wsproto.frame_protocol import FrameProtocol, Opcode

from hub import Hub
from hub.edge.poller import WritePoller
from hub.xrpl import events
from tests.helpers.hubs import make_config
from tests.helpers.samples import xrp_payment
from tests.helpers.sockets import silent_subscriber


@contextmanager
def full_socket() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A non-blocking socket whose send buffer is full, and its peer."""
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    try:
        while True:
            left.send(b"x" * 65536)
    except BlockingIOError:
        pass
    try:
        yield left, right
    finally:
        left.close()
        right.close()


def drain(sock: socket.socket) -> None:
    try:
        while sock.recv(1 << 20):
            pass
    except BlockingIOError:
        pass


@pytest.fixture
def poller() -> Iterator[WritePoller]:
    poller = WritePoller()
    yield poller
    poller.close()


def test_a_full_socket_is_called_back_once_it_takes_bytes_and_only_once(
    poller: WritePoller,
) -> None:
    calls: list[str] = []
    with full_socket() as (left, right):
        poller.wait(left, lambda: calls.append("left"))
        assert len(poller) == 1
        assert poller.ready() == 0
        assert calls == []
        drain(right)
        assert poller.ready() == 1
        assert calls == ["left"]
        assert len(poller) == 0
        assert poller.ready() == 0
        assert calls == ["left"]
        poller.wait(left, lambda: calls.append("again"))  # re-armed: writable at once
        assert poller.ready() == 1
        assert calls == ["left", "again"]


def test_a_forgotten_socket_is_never_called_back(poller: WritePoller) -> None:
    calls: list[int] = []
    with full_socket() as (left, right):
        poller.wait(left, lambda: calls.append(1))
        poller.forget(left)
        drain(right)
        assert poller.ready() == 0
        assert calls == []
        assert len(poller) == 0
        poller.forget(left)  # twice is harmless


def test_many_ready_sockets_are_served_in_one_call(poller: WritePoller) -> None:
    calls: list[int] = []
    pairs = [socket.socketpair() for _ in range(1100)]  # more than one epoll batch
    try:
        for i, (left, _right) in enumerate(pairs):
            poller.wait(left, lambda i=i: calls.append(i))
        assert poller.ready() == len(pairs)
        assert sorted(calls) == list(range(len(pairs)))
    finally:
        for left, right in pairs:
            left.close()
            right.close()


def task_count() -> int:
    count, nurseries = 0, list(trio.lowlevel.current_root_task().child_nurseries)
    while nurseries:
        for task in nurseries.pop().child_tasks:
            count += 1
            nurseries.extend(task.child_nurseries)
    return count


async def read_messages(stream: trio.SocketStream, count: int) -> list[int]:
    """The ``Sequence`` of each of the next ``count`` transactions, after the reply."""
    proto = FrameProtocol(client=True, extensions=[])
    seqs: list[int] = []
    part = ""
    with trio.fail_after(30):
        while len(seqs) < count + 1:
            data = await stream.receive_some(1 << 20)
            assert data, "the hub closed the stream"
            proto.receive_bytes(data)
            for frame in proto.received_frames():
                assert frame.opcode in (Opcode.TEXT, Opcode.CONTINUATION)
                part += frame.payload
                if frame.message_finished:
                    message = msgspec.json.decode(part)
                    part = ""
                    seqs.append(message.get("transaction", {}).get("Sequence", -1))
    return seqs[1:]


async def blocked_subscribers(nursery: trio.Nursery, n: int) -> tuple[int, int, Hub]:
    """``n`` subscribers that stop reading while 2.4 MB each is published to them; the
    hub's task count before and after, with every socket blocked."""
    node = Hub(make_config(limits={"send_queue_bytes": 64 << 20}))
    await nursery.start(node.run)
    streams = [await silent_subscriber(node.port) for _ in range(n)]
    with trio.fail_after(10):
        while node.node.subscriptions.counts().get("transactions", 0) < n:  # noqa: ASYNC110
            await trio.sleep(0.01)
    await trio.testing.wait_all_tasks_blocked()
    before = task_count()
    for start in range(0, 4000, 500):
        await node.publish_batch(
            [events.parse(xrp_payment(1, seq)) for seq in range(start, start + 500)]
        )
    await trio.testing.wait_all_tasks_blocked()
    during = task_count()
    try:
        for stream in streams:
            assert await read_messages(stream, 4000) == list(range(4000))
    finally:
        for stream in streams:
            await stream.aclose()
    return before, during, node


async def test_blocked_sockets_cost_no_task_and_get_every_message_in_order(
    nursery: trio.Nursery,
) -> None:
    before, during, _ = await blocked_subscribers(nursery, 10)
    assert during == before


async def test_without_a_poller_each_blocked_socket_gets_a_writer_task(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WritePoller, "available", False)  # as where epoll is missing
    before, during, _ = await blocked_subscribers(nursery, 10)
    assert during == before + 10
