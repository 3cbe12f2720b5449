"""Hub nodes on Redis: one order everywhere, exactly once, through node and Redis failures.

The cluster tests run two or three in-process nodes against a real ``redis-server``
the test starts on a free port. Redis outages come in three kinds, each with its own
promise:

- paused (SIGSTOP/SIGCONT): the host stops answering and comes back with its data;
  writes that timed out may have happened after all, so this is where exactly-once
  appends are tested;
- restarted with persistence (append-only file in a temp dir): nodes resume from
  the last sequence they applied, and what was published while Redis was down is
  appended when it is back;
- restarted empty (no persistence): a new epoch; nodes read the new streams from the
  start, so events published after the restart are not lost."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import trio

from hub import Hub
from hub.backoff import Backoff
from hub.cluster.broker import (
    Broker,
    Keys,
    encode_entry,
    redis_client,
    seq_of,
)
from hub.xrpl import events
from tests.helpers.hubs import Client, eventually, make_config, websocket
from tests.helpers.redis_server import RedisServer
from tests.helpers.samples import ledger_closed, xrp_payment


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, persistent=True)
    server.start()
    yield server
    server.kill()


async def start_node(nursery: trio.Nursery, url: str, **cluster: Any) -> Hub:
    """An in-process node on ``url`` that gives up on Redis quickly and retries fast."""
    config = make_config(cluster={"broker": url, "timeout": 0.5, **cluster})
    node = Hub(config)
    assert node.node.bus is not None
    node.node.bus.backoff = lambda: Backoff(initial=0.05, maximum=0.5)
    await nursery.start(node.run)
    return node


def broker_of(node: Hub) -> Broker:
    assert node.node.bus is not None
    return node.node.bus


async def nodes_connected(*nodes: Hub) -> None:
    await eventually(lambda: all(broker_of(node).status.connected for node in nodes), 15)


def ledger(index: int, transactions: int = 2) -> list[dict[str, Any]]:
    """A ledger's messages: its close, then its transactions (two streams, one order)."""
    return [ledger_closed(index, transactions)] + [
        xrp_payment(index, seq) for seq in range(transactions)
    ]


def key(message: dict[str, Any]) -> tuple[str, int, str | None]:
    return message["type"], message["ledger_index"], message.get("hash")


class Subscriber:
    """A client subscribed to ``ledger`` and ``transactions`` on one node."""

    def __init__(self, node: Hub, client: Client) -> None:
        self.node = node
        self.client = client

    async def until(self, last: dict[str, Any], timeout: float = 20) -> list[tuple[Any, ...]]:  # noqa: ASYNC109
        """Every stream message up to and including ``last``."""
        got = []
        with trio.fail_after(timeout):
            while True:
                message = await self.client.recv(timeout)
                if "type" in message and message["type"] != "response":
                    got.append(key(message))
                    if got[-1] == key(last):
                        return got


async def subscribe(stack: AsyncExitStack, node: Hub) -> Subscriber:
    ws = await stack.enter_async_context(websocket(node.url))
    client = Client(ws)
    reply = await client.request(
        {"command": "subscribe", "streams": ["ledger", "transactions"], "api_version": 2}
    )
    assert reply["status"] == "success", reply
    return Subscriber(node, client)


async def publish(node: Hub, messages: list[dict[str, Any]]) -> None:
    await node.publish_batch([events.parse(message) for message in messages])


async def two_nodes_after(
    stack: AsyncExitStack, nursery: trio.Nursery, redis: RedisServer, ledgers: int
) -> tuple[Hub, Hub, list[Subscriber], list[dict[str, Any]]]:
    """Two connected nodes, a subscriber on each, and ``ledgers`` ledgers already
    published on the first and received by both subscribers."""
    await redis.ready()
    a = await start_node(nursery, redis.url)
    b = await start_node(nursery, redis.url)
    await nodes_connected(a, b)
    subscribers = [await subscribe(stack, node) for node in (a, b)]
    before = [m for i in range(1, ledgers + 1) for m in ledger(i)]
    await publish(a, before)
    for subscriber in subscribers:
        await subscriber.until(before[-1])
    return a, b, subscribers, before


async def appended(node: Hub, count: int) -> None:
    """Wait until ``node`` has appended ``count`` events to Redis in all: what it
    publishes next is numbered after them."""
    await eventually(lambda: broker_of(node).status.appended == count, 15)


async def test_two_nodes_publish_on_one_reaches_every_subscriber_in_order_once(
    nursery: trio.Nursery, redis: RedisServer
) -> None:
    async with AsyncExitStack() as stack:
        await redis.ready()
        a = await start_node(nursery, redis.url)
        b = await start_node(nursery, redis.url)
        await nodes_connected(a, b)
        subscribers = [await subscribe(stack, node) for node in (a, b, a, b)]
        admin = Client(await stack.enter_async_context(websocket(a.url)))
        sent: list[dict[str, Any]] = []
        for index in range(1, 41):
            batch = ledger(index)
            reply = await admin.request({"command": "publish", "messages": batch})
            assert reply["result"] == {"published": len(batch)}
            sent += batch
        for subscriber in subscribers:
            assert await subscriber.until(sent[-1]) == [key(m) for m in sent]
        assert broker_of(a).status.appended == len(sent)
        assert broker_of(b).status.appended == 0
        assert broker_of(b).status.applied == len(sent)
        assert a.node.stats.events_published == b.node.stats.events_published == len(sent)


async def test_three_nodes_publishing_at_once_agree_on_one_order(
    nursery: trio.Nursery, redis: RedisServer
) -> None:
    async with AsyncExitStack() as stack:
        await redis.ready()
        nodes = [await start_node(nursery, redis.url) for _ in range(3)]
        await nodes_connected(*nodes)
        subscribers = [await subscribe(stack, node) for node in nodes for _ in range(2)]
        # Each node publishes its own ledgers (1xxx, 2xxx, 3xxx), all at the same time.
        per_node = {
            n: [m for i in range(60) for m in ledger(1000 * (n + 1) + i, 1)] for n in range(3)
        }

        async def publish_all(n: int) -> None:
            rng = random.Random(n)
            messages = per_node[n]
            while messages:
                size = rng.randint(1, 7)
                await publish(nodes[n], messages[:size])
                messages = messages[size:]
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as publishers:
            for n in range(3):
                publishers.start_soon(publish_all, n)
        for n in range(3):
            await appended(nodes[n], len(per_node[n]))
        done = ledger(9999, 0)
        await publish(nodes[0], done)
        orders = [await subscriber.until(done[-1]) for subscriber in subscribers]
        assert all(order == orders[0] for order in orders)
        every = [key(m) for ms in per_node.values() for m in ms] + [key(done[0])]
        assert sorted(orders[0]) == sorted(every)
        assert len(set(orders[0])) == len(orders[0])
        for n in range(3):  # each publisher's own order is kept
            own = [k for k in orders[0] if k[1] // 1000 == n + 1]
            assert own == [key(m) for m in per_node[n]]


async def test_a_node_killed_and_restarted_misses_nothing_elsewhere(
    nursery: trio.Nursery, redis: RedisServer
) -> None:
    async with AsyncExitStack() as stack:
        await redis.ready()
        a = await start_node(nursery, redis.url)
        b = await start_node(nursery, redis.url)
        c = await start_node(nursery, redis.url)
        await nodes_connected(a, b, c)
        steady = [await subscribe(stack, node) for node in (a, b)]
        doomed = await subscribe(stack, c)
        first = [m for i in range(1, 11) for m in ledger(i)]
        await publish(c, first)
        assert await doomed.until(first[-1]) == [key(m) for m in first]
        c.shutdown()  # the node dies: its clients are closed, its Redis link with it
        await eventually(lambda: not c.connections)
        during = [m for i in range(11, 21) for m in ledger(i)]
        await publish(a, during)
        await appended(a, len(during))
        c2 = await start_node(nursery, redis.url)
        await nodes_connected(c2)
        reborn = await subscribe(stack, c2)
        after = [m for i in range(21, 31) for m in ledger(i)]
        await publish(b, after[:6])
        await appended(b, 6)  # so that c2's batch is numbered after b's
        await publish(c2, after[6:])
        everything = [key(m) for m in first + during + after]
        for subscriber in steady:
            assert await subscriber.until(after[-1]) == everything
        assert await reborn.until(after[-1]) == [key(m) for m in after]


async def test_redis_paused_mid_stream_loses_and_repeats_nothing(
    nursery: trio.Nursery, redis: RedisServer
) -> None:
    async with AsyncExitStack() as stack:
        a, b, subscribers, before = await two_nodes_after(stack, nursery, redis, 10)
        redis.pause()
        try:
            during = [m for i in range(11, 31) for m in ledger(i)]
            on_a = 0
            for index in range(0, len(during), 3):
                node = a if index % 2 else b
                await publish(node, during[index : index + 3])
                on_a += len(during[index : index + 3]) if node is a else 0
            await eventually(lambda: not broker_of(a).status.connected, 10)
            await eventually(lambda: not broker_of(b).status.connected, 10)
            # Clients are still served while Redis is away.
            ping = await subscribers[1].client.request({"command": "ping", "id": 1})
            assert ping["status"] == "success"
        finally:
            redis.resume()
        await appended(a, len(before) + on_a)
        after = ledger(31)
        await publish(b, after)
        want = [key(m) for m in during + after]
        orders = [await subscriber.until(after[-1]) for subscriber in subscribers]
        assert orders[0] == orders[1]
        assert sorted(orders[0]) == sorted(want)
        assert len(set(orders[0])) == len(orders[0])
        for node in (a, b):
            assert broker_of(node).status.reconnects >= 1
            assert broker_of(node).status.lost == 0


async def test_redis_restarted_with_its_data_nodes_resume_from_their_last_id(
    nursery: trio.Nursery, persistent_redis: RedisServer
) -> None:
    async with AsyncExitStack() as stack:
        redis = persistent_redis
        a, b, subscribers, before = await two_nodes_after(stack, nursery, redis, 10)
        last = broker_of(b).status.last_seq
        redis.stop()
        await eventually(lambda: not broker_of(b).status.connected, 10)
        during = [m for i in range(11, 21) for m in ledger(i)]
        await publish(a, during)  # queued on node a until Redis is back
        redis.start()
        await redis.ready()
        await appended(a, len(before) + len(during))
        after = ledger(21)
        await publish(b, after)
        want = [key(m) for m in during + after]
        for subscriber in subscribers:
            assert await subscriber.until(after[-1]) == want
        assert broker_of(b).status.last_seq == last + len(during) + len(after)


async def test_redis_restarted_empty_nodes_read_the_new_streams_from_the_start(
    nursery: trio.Nursery, redis: RedisServer
) -> None:
    async with AsyncExitStack() as stack:
        a, b, subscribers, _ = await two_nodes_after(stack, nursery, redis, 20)
        epoch = broker_of(a).status.epoch
        redis.stop()
        await eventually(lambda: not broker_of(a).status.connected, 10)
        redis.start()  # no persistence: sequence 1 again, below every node's position
        await redis.ready()
        after = [m for i in range(21, 24) for m in ledger(i)]
        await publish(b, after)
        for subscriber in subscribers:
            assert await subscriber.until(after[-1]) == [key(m) for m in after]
        assert broker_of(a).status.epoch != epoch


async def test_redis_emptied_under_live_connections_is_noticed_without_an_error(
    nursery: trio.Nursery, redis: RedisServer
) -> None:
    """Redis loses its data while no command fails: ``FLUSHALL`` here, or a restart the
    client rode through (coredis opens a new connection, without an error, in place
    of a pooled one closed while idle). The next read must notice the new epoch and
    read the new streams from their start, not on from the old sequence, which would
    skip everything the new streams hold up to it."""
    await redis.ready()
    before = [events.parse(m) for i in range(1, 21) for m in ledger(i)]
    after = [events.parse(m) for i in range(21, 24) for m in ledger(i)]
    got: list[events.Event] = []
    fast = lambda: Backoff(initial=0.05, maximum=0.5)  # noqa: E731
    reader = Broker(redis.url, timeout=0.5, block=0.5, backoff=fast)
    writer = Broker(redis.url, timeout=0.5, block=0.5, backoff=fast)
    await nursery.start(reader.run, got.append, lambda _: None)
    await nursery.start(writer.run, lambda _: None, lambda _: None)
    await eventually(lambda: reader.status.connected and writer.status.connected, 15)
    await writer.submit(before)
    await eventually(lambda: len(got) == len(before), 10)
    epoch = reader.status.epoch
    async with redis_client(redis.url, 2) as client:
        await client.flushall()
    await writer.submit(after)  # sequence numbers 1, 2, ... again, in a new epoch
    await eventually(lambda: len(got) == len(before) + len(after), 10)
    assert [e.body for e in got] == [e.body for e in before + after]
    assert reader.status.epoch != epoch
    assert reader.status.last_seq == len(after)
    assert reader.status.reconnects == 0  # nothing failed: the read itself told


async def test_server_info_reports_the_broker(nursery: trio.Nursery, redis: RedisServer) -> None:
    async with AsyncExitStack() as stack:
        await redis.ready()
        node = await start_node(nursery, redis.url)
        await nodes_connected(node)
        client = Client(await stack.enter_async_context(websocket(node.url)))
        reply = await client.request({"command": "server_info", "api_version": 2})
        broker = reply["result"]["info"]["hub"]["broker"]
        assert broker["url"] == redis.url
        assert broker["connected"] is True
        assert set(broker) >= {"last_seq", "reconnects", "appended", "applied", "lost"}


async def test_a_node_starts_and_serves_while_redis_is_down(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    async with AsyncExitStack() as stack:
        redis = RedisServer(tmp_path)  # not started yet
        node = await start_node(nursery, redis.url)
        client = Client(await stack.enter_async_context(websocket(node.url)))
        assert (await client.request({"command": "ping"}))["status"] == "success"
        subscriber = await subscribe(stack, node)
        messages = ledger(5)
        await publish(node, messages)
        redis.start()
        try:
            await redis.ready()
            assert await subscriber.until(messages[-1]) == [key(m) for m in messages]
        finally:
            redis.kill()


async def test_a_retried_append_is_appended_once(redis: RedisServer) -> None:
    """A write whose reply was lost is retried with the same batch number: no duplicate."""
    import coredis

    from hub.cluster.broker import APPEND

    await redis.ready()
    keys = Keys("t")
    client: coredis.Redis[bytes] = coredis.Redis.from_url(redis.url)
    event = events.parse(ledger_closed(3))
    async with client:
        script = client.register_script(APPEND)
        args = [keys.seq, keys.epoch, keys.writer("w1"), keys.leader, keys.stream(event.kind)]
        first = await script(keys=args, args=[100, 1, 60, "e", "", encode_entry(event)])
        again = await script(keys=args, args=[100, 1, 60, "e", "", encode_entry(event)])
        after = await script(keys=args, args=[100, 2, 60, "e", "", encode_entry(event)])
        assert (first, again, after) == (1, 0, 2)
        entries = await client.xrange(keys.stream(event.kind))
        assert [seq_of(entry.identifier) for entry in entries] == [1, 2]


async def resume_on(node: Hub, stack: AsyncExitStack, since: int) -> tuple[Client, int]:
    client = Client(await stack.enter_async_context(websocket(node.url)))
    reply = await client.request(
        {"command": "subscribe", "streams": ["ledger", "transactions"], "api_version": 2,
         "since_ledger": since}
    )  # fmt: skip
    assert reply["status"] == "success", reply
    return client, reply["result"]["resumed_messages"]


async def test_disconnect_from_one_node_resume_on_another(
    nursery: trio.Nursery, redis: RedisServer
) -> None:
    async with AsyncExitStack() as stack:
        await redis.ready()
        a = await start_node(nursery, redis.url)
        b = await start_node(nursery, redis.url)
        await nodes_connected(a, b)
        steady = await subscribe(stack, b)
        sent: list[dict[str, Any]] = []
        async with AsyncExitStack() as first_life:
            leaving = await subscribe(first_life, a)
            for index in range(1, 4):
                sent += ledger(index)
                await publish(a, ledger(index))
            before = await leaving.until(sent[-1])
        for index in range(4, 7):
            sent += ledger(index)
            await publish(a, ledger(index))
        await steady.until(sent[-1])
        client, count = await resume_on(b, stack, 3)
        assert count == len(sent) - len(before)
        again = Subscriber(b, client)
        sent += ledger(7)
        await publish(a, ledger(7))
        after = await again.until(sent[-1])
    assert before + after == [key(m) for m in sent]


async def test_a_node_started_late_serves_resumes_from_the_streams(
    nursery: trio.Nursery, redis: RedisServer
) -> None:
    async with AsyncExitStack() as stack:
        await redis.ready()
        a = await start_node(nursery, redis.url)
        await nodes_connected(a)
        sent = [m for index in range(1, 6) for m in ledger(index)]
        await publish(a, sent)
        await appended(a, len(sent))
        late = await start_node(nursery, redis.url)
        await nodes_connected(late)
        await eventually(lambda: late.node.history.latest == 5)
        assert late.node.ledger.index == 5
        client, count = await resume_on(late, stack, 2)
        expected = [m for index in range(3, 6) for m in ledger(index)]
        assert count == len(expected)
        got = [await client.recv() for _ in expected]
    assert [key(m) for m in got] == [key(m) for m in expected]
