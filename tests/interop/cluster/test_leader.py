"""Source leadership on Redis (hub.cluster.leader): one node runs the source, and failover
loses nothing.

First the Redis side in process (fencing refuses a deposed term's appends and never
an admin publish; the source stops by its own clock before the lease can expire),
then real clusters: three ``hub serve`` processes, all given the same upstream (a hub
on its simulator, in this process) and a real ``redis-server``, with a subscriber on
every node and one on the upstream as the truth. The leader is killed with SIGKILL,
paused past its lease with SIGSTOP, or dies while Redis restarts empty; every
surviving subscriber must see each ledger and its transactions once, in order."""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from hub import Hub
from hub.backoff import Backoff
from hub.cluster.broker import APPEND, Broker, Keys, encode_entry, redis_client, seq_of
from hub.cluster.leader import ACQUIRE, Leadership
from hub.cluster.lease import Lease, Role
from hub.core.history import Tail
from hub.sources.simulator import LedgerSimulator
from hub.xrpl import events
from tests.helpers.fake_rippled import FakeRippled
from tests.helpers.httpraw import fetch
from tests.helpers.hubs import Client, eventually, make_config, websocket
from tests.helpers.processes import HubProcess, hub_process
from tests.helpers.redis_server import RedisServer
from tests.helpers.samples import ledger_closed, xrp_payment

LEASE = 1.0


def parse(item: Any) -> list[events.Event]:
    """What a node does with what its source sends (hub.core.node): valid events only."""
    return events.parse_valid(item if isinstance(item, list) else [item], lambda _: None)


async def start_node(nursery: trio.Nursery, redis: RedisServer) -> tuple[Hub, Broker]:
    """An in-process node (no source) connected to ``redis``, and its broker."""
    await redis.ready()
    node = Hub(make_config(cluster={"broker": redis.url, "timeout": 0.5}))
    broker = node.node.bus
    assert isinstance(broker, Broker)
    broker.backoff = lambda: Backoff(initial=0.05, maximum=0.5)
    await nursery.start(node.run)
    await eventually(lambda: broker.status.connected, 15)
    return node, broker


async def acquire(client: Any, keys: Keys, node_id: str, term: str = "t1") -> str:
    """Take the lease as ``node_id`` would (the key must be free); its token."""
    token = f"{node_id}:{term}"
    answer = await client.register_script(ACQUIRE)(
        keys=[keys.leader, keys.epoch, keys.seq], args=[node_id, token, 60_000, "e"]
    )
    assert int(answer[0]) == 1, answer
    return token


async def entries(client: Any, keys: Keys) -> list[tuple[int, dict[bytes, bytes]]]:
    """Every stream entry as (sequence, fields), in sequence order."""
    out = []
    for stream in keys.streams():
        for entry in await client.xrange(stream):
            out.append((seq_of(entry.identifier), dict(entry.field_values)))
    return sorted(out, key=lambda item: item[0])


async def test_a_deposed_terms_appends_are_refused_but_never_an_admin_publish(
    nursery: trio.Nursery, redis: RedisServer
) -> None:
    node, broker = await start_node(nursery, redis)
    keys = broker.keys
    async with redis_client(redis.url, 2) as client:
        old = await acquire(client, keys, "old")
        await broker.submit([events.parse(ledger_closed(1, 1))], fence=old)
        await eventually(lambda: broker.status.appended == 1)
        await client.delete([keys.leader])  # the old term's lease expired ...
        new = await acquire(client, keys, "new")  # ... and another node took it
        late = [events.parse(xrp_payment(1, 0))]
        await broker.submit(late, fence=old)
        await broker.submit([events.parse(ledger_closed(2))], fence=old)
        await broker.submit([events.parse(ledger_closed(3))])  # admin publish: unfenced
        await broker.submit([events.parse(ledger_closed(4))], fence=new)
        await eventually(lambda: broker.status.appended == 3)
        assert broker.status.fenced == 2  # the late transaction and ledger 2
        stored = await entries(client, keys)
    kinds = [(msgspec.json.decode(fields[b"e"])["ledger_index"], fields.get(b"f")) for _, fields
             in stored]  # fmt: skip
    assert kinds == [(1, old.encode()), (3, None), (4, new.encode())]
    assert node.node.history.latest == 4
    node.shutdown()


async def test_whether_a_fenced_batch_is_appended_is_redis_answer_alone(
    nursery: trio.Nursery, redis: RedisServer
) -> None:
    """The broker keeps no list of refused terms that could refuse a term Redis accepts
    (tokens are never granted twice, but a Redis that did so must not silence it)."""
    node, broker = await start_node(nursery, redis)
    async with redis_client(redis.url, 2) as client:
        await broker.submit([events.parse(ledger_closed(1))], fence="n:t1")  # no lease yet
        await eventually(lambda: broker.status.fenced == 1)
        await client.set(broker.keys.leader, "n:t1")  # now the lease's value
        await broker.submit([events.parse(ledger_closed(2))], fence="n:t1")
        await eventually(lambda: broker.status.appended == 1)
    await eventually(lambda: node.node.history.latest == 2)
    node.shutdown()


async def test_a_retry_of_a_batch_appended_before_the_term_ended_is_not_refused(
    redis: RedisServer,
) -> None:
    """The batch-number check comes first: a reply lost, the lease lost, the retry must
    say "already appended", not "refused" (which would count it as never appended)."""
    await redis.ready()
    keys = Keys("t")
    event = events.parse(ledger_closed(3))
    async with redis_client(redis.url, 2) as client:
        token = await acquire(client, keys, "a")
        script = client.register_script(APPEND)
        names = [keys.seq, keys.epoch, keys.writer("w"), keys.leader, keys.stream(event.kind)]
        first = await script(keys=names, args=[100, 1, 60, "e", token, encode_entry(event)])
        await client.delete([keys.leader])
        await acquire(client, keys, "b")
        retry = await script(keys=names, args=[100, 1, 60, "e", token, encode_entry(event)])
        later = await script(keys=names, args=[100, 2, 60, "e", token, encode_entry(event)])
    assert (first, retry, later) == (1, 0, -1)


class Recording(Lease):
    """A lease that remembers when each accepted acquisition or renewal was sent."""

    sent: list[float]

    def acquired(self, term: str, sent_at: float) -> Any:
        self.sent.append(sent_at)
        return super().acquired(term, sent_at)

    def renewed(self, sent_at: float) -> None:
        self.sent.append(sent_at)
        super().renewed(sent_at)


@dataclass
class FakeSource:
    """Records each start (its tail) and when each run was cancelled."""

    starts: list[Tail | None] = field(default_factory=list)
    stopped: list[float] = field(default_factory=list)
    started: trio.Event = field(default_factory=trio.Event)

    async def __call__(self, nursery: trio.Nursery, send: Any, tail: Tail | None) -> None:
        self.starts.append(tail)
        self.started.set()
        nursery.start_soon(self._run)

    async def _run(self) -> None:
        try:
            await trio.sleep_forever()
        finally:
            self.stopped.append(trio.current_time())


async def test_the_source_stops_by_its_own_clock_before_the_lease_can_expire(
    nursery: trio.Nursery, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.cluster.leader")
    node, broker = await start_node(nursery, redis)
    await node.publish(ledger_closed(10))
    await eventually(lambda: node.node.history.latest == 10)
    leadership = Leadership(broker, lease=LEASE, tail=node.node.history.tail, parse=parse)
    recording = Recording(leadership.lease.node_id, LEASE)
    recording.sent = []
    leadership.lease = recording
    source = FakeSource()
    await nursery.start(leadership.run, source)
    with trio.fail_after(5):
        await source.started.wait()
    assert source.starts == [Tail(10)]
    await eventually(lambda: len(recording.sent) >= 3)  # renewing
    redis.pause()  # renewals go unanswered from now on
    try:
        paused = trio.current_time()
        await eventually(lambda: bool(source.stopped) and not leadership.leading, 5)
        last = max(recording.sent)
        # Stopped by stop_by, which is before Redis could let the key expire.
        assert source.stopped[0] <= last + LEASE - recording.margin + 0.1
        assert source.stopped[0] < last + LEASE
        assert last <= paused
        assert leadership.lease.role is Role.FOLLOWER
    finally:
        redis.resume()
    # Redis is back: the lease expired meanwhile, so this node leads again, in a new term.
    first_token = leadership.lease.token
    await eventually(lambda: len(source.starts) == 2, 10)
    assert leadership.lease.token != first_token
    node.shutdown()
    # Taking the lease is routine (INFO); a term that ran out is for an operator to see.
    changes = [(r.levelno, r.getMessage()) for r in caplog.records if "leadership: node" in r.msg]
    assert [level for level, message in changes if "leads now" in message] == [logging.INFO] * 2
    assert [level for level, message in changes if "stopped leading" in message] == [
        logging.WARNING
    ]


async def test_a_leader_shutting_down_gives_the_lease_back(
    nursery: trio.Nursery, redis: RedisServer
) -> None:
    node, broker = await start_node(nursery, redis)
    leadership = Leadership(broker, lease=60, tail=node.node.history.tail, parse=parse)
    source = FakeSource()
    keys = broker.keys
    async with redis_client(redis.url, 2) as client:
        async with trio.open_nursery() as candidacy:
            candidacy.start_soon(leadership.run, source)
            with trio.fail_after(5):
                await source.started.wait()
            assert await client.get(keys.leader) == leadership.lease.token.encode()
            candidacy.cancel_scope.cancel()
        # run() returned: its source was stopped and the 60 s lease given back.
        assert source.stopped
        assert not leadership.leading
        assert await client.get(keys.leader) is None
    node.shutdown()


@dataclass
class Node:
    process: HubProcess
    url: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    async def info(self) -> dict[str, Any]:
        async with websocket(self.url) as ws:
            reply = await Client(ws).request({"command": "server_info", "api_version": 2})
        return dict(reply["result"]["info"]["hub"])

    @property
    def latest(self) -> int:
        return max((m["ledger_index"] for m in self.messages if m["type"] == "ledgerClosed"),
                   default=0)  # fmt: skip


async def follow(url: str, into: list[dict[str, Any]], task_status: Any) -> None:
    """Subscribe to ``ledger`` and ``transactions`` and keep every message."""
    async with websocket(url, message_queue_size=100_000) as ws:
        client = Client(ws)
        reply = await client.request(
            {"command": "subscribe", "streams": ["ledger", "transactions"], "api_version": 2}
        )
        assert reply["status"] == "success"
        task_status.started()
        try:
            while True:
                into.append(msgspec.json.decode(await ws.get_message()))
        except Exception:  # the node died: what it sent is what is checked
            return


@asynccontextmanager
async def cluster(
    tmp_path: Path, redis: RedisServer, nursery: trio.Nursery
) -> AsyncIterator[tuple[list[Node], list[dict[str, Any]], Hub]]:
    """An upstream hub on its simulator, three nodes relaying it on Redis, subscribers."""
    upstream = Hub(make_config(source={"source": "simulator", "ledger_interval": 0.25,
                                       "tx_per_ledger": 3, "seed": 21}))  # fmt: skip
    await nursery.start(upstream.run)
    truth: list[dict[str, Any]] = []
    await nursery.start(follow, upstream.url, truth)
    config = tmp_path / "node.toml"
    config.write_text(f"[cluster]\nlease_seconds = {LEASE}\ntimeout = 0.5\n")
    await redis.ready()
    args = ["serve", "--port", "0", "--config", str(config), "--broker", redis.url,
            "--source", f"upstream:{upstream.url}"]  # fmt: skip
    async with AsyncExitStack() as stack:
        processes = [await stack.enter_async_context(hub_process(*args)) for _ in range(3)]
        nodes = [Node(process, (await process.listening())[0]) for process in processes]
        for node in nodes:
            await nursery.start(follow, node.url, node.messages)
        yield nodes, truth, upstream
    upstream.shutdown()


async def until(check: Callable[[], Awaitable[bool]], timeout: float) -> None:  # noqa: ASYNC109
    """Ask until ``check()`` holds, failing after ``timeout`` seconds: the state asked
    about is another process's, with no event to wait on from here."""
    with trio.fail_after(timeout):
        while not await check():  # noqa: ASYNC110
            await trio.sleep(0.02)


async def leader_among(nodes: list[Node], timeout: float = 10) -> tuple[Node, dict[str, Any]]:  # noqa: ASYNC109
    """The node that says it leads."""
    found: list[tuple[Node, dict[str, Any]]] = []

    async def one_leads() -> bool:
        for node in nodes:
            cluster_info = (await node.info())["cluster"]
            if cluster_info["role"] == "leader":
                found.append((node, cluster_info))
                return True
        return False

    await until(one_leads, timeout)
    return found[-1]


def ledgers(messages: list[dict[str, Any]]) -> list[tuple[int, int, list[str]]]:
    """(index, txn_count, transaction hashes) of each ledger seen, from the first close."""
    out: list[tuple[int, int, list[str]]] = []
    for message in messages:
        if message["type"] == "ledgerClosed":
            out.append((message["ledger_index"], message["txn_count"], []))
        elif message["type"] == "transaction" and out:
            index = out[-1][0]
            assert message["ledger_index"] == index, f"a transaction of ledger "\
                f"{message['ledger_index']} after ledger {index}'s close"  # fmt: skip
            out[-1][2].append(message["hash"])
    return out


def assert_each_ledger_once_in_order(node: Node, truth: list[dict[str, Any]]) -> None:
    got = ledgers(node.messages)
    assert len(got) >= 2
    indexes = [index for index, _, _ in got]
    assert indexes == list(range(indexes[0], indexes[0] + len(indexes))), indexes
    wanted = {index: hashes for index, _, hashes in ledgers(truth)}
    for index, count, hashes in got[:-1]:  # the last may still be arriving
        assert len(hashes) == count
        assert hashes == wanted[index], f"ledger {index}"


async def ledgers_past(nodes: list[Node], upstream: Hub, more: int) -> None:
    """Wait until every node's subscriber got ``more`` ledgers past the upstream's now."""
    target = (upstream.node.ledger.index or 0) + more
    await eventually(lambda: all(node.latest >= target for node in nodes), 20)


async def test_kill_the_leader_the_others_miss_nothing(
    tmp_path: Path, redis: RedisServer, nursery: trio.Nursery
) -> None:
    async with cluster(tmp_path, redis, nursery) as (nodes, truth, upstream):
        leader, _ = await leader_among(nodes)
        await ledgers_past(nodes, upstream, 3)
        for node in nodes:  # /metrics says who leads
            metrics = (await fetch(int(node.url.rpartition(":")[2]), "GET", "/metrics")).text
            assert f"hub_cluster_leader {1.0 if node is leader else 0.0}" in metrics
            assert "hub_broker_fenced_events_total 0.0" in metrics
        killed = trio.current_time()
        leader.process.proc.kill()
        await leader.process.proc.wait()
        survivors = [node for node in nodes if node is not leader]
        successor, info = await leader_among(survivors)
        named = trio.current_time() - killed
        assert named < LEASE + LEASE / 3 + 1.0  # the bound, plus slack for a busy machine
        assert info["leader"] == info["node_id"]

        async def all_name_it() -> bool:  # a follower hears of it at its next ask
            return {(await n.info())["cluster"]["leader"] for n in survivors} == {info["node_id"]}

        await until(all_name_it, LEASE / 3 + 2)
        await ledgers_past(survivors, upstream, 4)
        for node in survivors:
            assert_each_ledger_once_in_order(node, truth)
        assert b"leads now" in successor.process.stderr


async def test_a_leader_paused_past_its_lease_appends_nothing_when_it_wakes(
    tmp_path: Path, redis: RedisServer, nursery: trio.Nursery
) -> None:
    async with cluster(tmp_path, redis, nursery) as (nodes, truth, upstream):
        old, old_info = await leader_among(nodes)
        await ledgers_past(nodes, upstream, 3)
        old.process.proc.send_signal(signal.SIGSTOP)
        try:
            others = [node for node in nodes if node is not old]
            _, new_info = await leader_among(others)
            await ledgers_past(others, upstream, 3)
        finally:
            old.process.proc.send_signal(signal.SIGCONT)
        await eventually(lambda: old.latest >= max(node.latest for node in others), 20)
        assert (await old.info())["cluster"]["role"] == "follower"
        await ledgers_past(nodes, upstream, 2)
        for node in nodes:
            assert_each_ledger_once_in_order(node, truth)
        async with redis_client(redis.url, 2) as client:
            stored = await entries(client, Keys())
        old_token = old_info["token"].encode()
        new_token = new_info["token"].encode()
        terms = [(seq, fields.get(b"f")) for seq, fields in stored]
        first_new = min(seq for seq, token in terms if token == new_token)
        assert all(seq < first_new for seq, token in terms if token == old_token)
        assert any(token == old_token for _, token in terms)


async def test_the_leader_dies_while_redis_restarts_empty(
    tmp_path: Path, redis: RedisServer, nursery: trio.Nursery
) -> None:
    async with cluster(tmp_path, redis, nursery) as (nodes, truth, upstream):
        leader, _ = await leader_among(nodes)
        await ledgers_past(nodes, upstream, 3)
        leader.process.proc.kill()
        await leader.process.proc.wait()
        survivors = [node for node in nodes if node is not leader]
        # Both have read all the dead leader appended (else Redis takes it with it).
        async with redis_client(redis.url, 2) as client:
            last = int(await client.get(Keys().seq) or 0)

        async def both_read_it_all() -> bool:
            return [(await n.info())["broker"]["last_seq"] for n in survivors] == [last, last]

        await until(both_read_it_all, 10)
        redis.stop()
        redis.start()  # no persistence: an empty Redis, a new epoch, no lease
        await leader_among(survivors, timeout=15)
        await ledgers_past(survivors, upstream, 4)
        for node in survivors:
            assert_each_ledger_once_in_order(node, truth)


async def in_process_node(nursery: trio.Nursery, redis: RedisServer, source: str) -> Hub:
    """A cluster node in this process with a short lease and fast Redis retries."""
    config = make_config(
        cluster={"broker": redis.url, "timeout": 0.5, "lease_seconds": LEASE},
        source={"source": source},
    )
    node = Hub(config)
    broker = node.node.bus
    assert isinstance(broker, Broker)
    broker.backoff = lambda: Backoff(initial=0.05, maximum=0.25)
    await nursery.start(node.run)
    return node


def broker_of(node: Hub) -> Broker:
    assert isinstance(node.node.bus, Broker)
    return node.node.bus


def leading(node: Hub) -> bool:
    return node.node.leadership is not None and node.node.leadership.leading


class Upstream:
    """A FakeRippled whose ledgers close when the test says so (and can be fetched
    again by a relay that mends a gap)."""

    def __init__(self) -> None:
        self.fake = FakeRippled()
        self.sim = LedgerSimulator(seed=31, tx_per_ledger=3)
        self.closed: dict[int, list[str]] = {}

    async def close(self) -> int:
        """Close the next ledger (its close and transactions); its index."""
        kinds = ("ledgerClosed", "transaction")
        messages = [m for m in self.sim.close_ledger() if m["type"] in kinds]
        index = messages[0]["ledger_index"]
        self.closed[index] = [m["hash"] for m in messages if m["type"] == "transaction"]
        self.fake.remember(messages)
        await self.fake.hub.publish_batch([events.parse(m) for m in messages])
        return index


def has_ledger(feed: list[dict[str, Any]], index: int) -> bool:
    """Whether ``feed`` has ledger ``index``'s close and all its transactions."""
    return any(i == index and len(hashes) == count for i, count, hashes in ledgers(feed))


async def ledger_everywhere(feeds: list[list[dict[str, Any]]], index: int, timeout: float) -> None:  # noqa: ASYNC109
    """Wait until every subscriber has all of ledger ``index``."""
    await eventually(lambda: all(has_ledger(feed, index) for feed in feeds), timeout)


async def stall_then_restart_empty(
    redis: RedisServer, nodes: list[Hub], feeds: list[list[dict[str, Any]]], upstream: Upstream
) -> float:
    """SIGSTOP Redis past the lease, SIGCONT, restart it empty, each time checking that
    ledgers flow again on every node; the seconds from the restart until they did."""
    few_leases = 4 * LEASE + 1  # the bound, plus slack for a busy machine
    leader = next(node for node in nodes if leading(node))
    fenced = broker_of(leader).status.fenced
    redis.pause()
    try:
        paused = trio.current_time()
        await upstream.close()  # relayed by the leader into a Redis that hangs
        await eventually(lambda: not leading(leader), 2 * LEASE)  # by its own clock
        # Past the lease by Redis' clock as well: its last renewal ran before the pause.
        await trio.sleep_until(paused + LEASE)
    finally:
        redis.resume()
    # The stalled term's ledger is refused; a new term mends it and relays the next.
    await eventually(lambda: broker_of(leader).status.fenced > fenced, few_leases)
    await ledger_everywhere(feeds, await upstream.close(), few_leases)
    # Every node has read all Redis holds and the upstream is quiet: an empty restart
    # now loses nothing that a node has not delivered.
    restarted = trio.current_time()
    redis.stop()
    redis.start()
    await redis.ready()
    await ledger_everywhere(feeds, await upstream.close(), few_leases)
    return trio.current_time() - restarted


@pytest.mark.parametrize("candidates", [1, 3])
async def test_redis_stalled_past_the_lease_then_restarted_empty_twice_stays_live(
    nursery: trio.Nursery, redis: RedisServer, candidates: int
) -> None:
    """Each time, ledgers flow again on every node within a few lease periods, each
    once and in order (:func:`stall_then_restart_empty`).

    A fencing token must never be granted twice: with one candidate, the node that
    leads after the empty restart is the one whose stalled term was refused."""
    upstream = Upstream()
    await upstream.fake.start(nursery)
    await redis.ready()
    nodes = [await in_process_node(nursery, redis, f"upstream:{upstream.fake.url}")
             for _ in range(candidates)]  # fmt: skip
    nodes.append(await in_process_node(nursery, redis, "none"))  # a node that only serves
    feeds: list[list[dict[str, Any]]] = [[] for _ in nodes]
    for node, feed in zip(nodes, feeds, strict=True):
        await nursery.start(follow, node.url, feed)
    await eventually(lambda: any(leading(node) for node in nodes), 10)
    for _ in range(3):
        index = await upstream.close()
    await ledger_everywhere(feeds, index, 10)
    for _ in range(2):
        await stall_then_restart_empty(redis, nodes, feeds, upstream)
    last = max(upstream.closed)
    for feed in feeds:
        got = ledgers(feed)
        indexes = [i for i, _, _ in got]
        assert indexes == list(range(indexes[0], last + 1)), indexes
        for i, count, hashes in got:
            assert hashes == upstream.closed[i], f"ledger {i}"
            assert len(hashes) == count
