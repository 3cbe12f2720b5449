"""Resume without loss, end to end: ``since_ledger`` replays what a reconnecting client
missed, at the socket's pace."""

from __future__ import annotations

import functools
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from trio_websocket import WebSocketConnection, open_websocket_url
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from hub import Hub
from hub.core.history import Entry
from hub.edge.connection import Connection
from hub.sources.simulator import LedgerSimulator
from hub.wire.frames import frame_payload
from hub.xrpl import events
from hub.xrpl.books import BookPage, BookQuery
from tests.helpers.hubs import eventually, make_config, open_client, start_hub
from tests.helpers.samples import (
    ALICE,
    BOB,
    CAROL,
    USD,
    iou_payment,
    published_ledger,
)
from tests.helpers.testca import Certificates, tls_config
from tests.helpers.wsraw import RawClient

STREAMS = ["ledger", "transactions", "validations", "book_changes"]


@functools.cache
def simulated(ledgers: int) -> list[bytes]:
    """``ledgers`` simulator ledgers (20 transactions each, full metadata), each batch as
    JSON: made once, decoded afresh for each hub (the hub stamps what it publishes)."""
    sim = LedgerSimulator(seed=1, tx_per_ledger=20)
    return [msgspec.json.encode(sim.close_ledger()) for _ in range(ledgers)]


async def publish_ledgers(node: Hub, batches: list[bytes]) -> None:
    for batch in batches:
        await node.publish_batch([events.parse(m) for m in msgspec.json.decode(batch)])
    last = msgspec.json.decode(batches[-1])[-1]["ledger_index"]
    await eventually(lambda: node.node.history.latest == last)


def texts(entries: Iterable[Entry]) -> list[str]:
    """What a v2 subscriber receives of these entries, as text."""
    return [frame_payload(entry.frames(2)).decode() for entry in entries]


async def test_a_reading_client_resumes_the_whole_default_history(nursery: trio.Nursery) -> None:
    """256 ledgers, several times ``send_queue_bytes``, replayed whole to a client that
    reads as clients do; ledgers that close meanwhile (evicting the oldest the replay
    still owes) follow it with no gap and nothing twice."""
    node = await start_hub(nursery)
    history = node.node.history
    batches = simulated(history.ledgers + 8)
    await publish_ledgers(node, batches[:-3])
    since, latest = history.resumable_from, history.latest
    assert since is not None
    assert len({entry.ledger_index for entry in history.since(since)}) == 256
    replayed = texts(history.since(since))
    assert sum(map(len, replayed)) > 3 * node.node.config.limits.send_queue_bytes
    async with open_client(node) as client:
        reply = await client.request(
            {"command": "subscribe", "streams": STREAMS, "api_version": 2, "since_ledger": since}
        )
        assert reply["result"]["resumed_from"] == since + 1
        assert reply["result"]["resumed_to"] == latest
        assert reply["result"]["resumed_messages"] == len(replayed)
        got = [await client.ws.get_message() for _ in range(100)]
        await publish_ledgers(node, batches[-3:])  # live, while the replay runs
        assert history.resumable_from == since + 3
        live = texts(history.since(history.latest - 3))
        with trio.fail_after(30):
            while len(got) < len(replayed) + len(live):
                got.append(await client.ws.get_message())
        assert got == replayed + live
        assert (await client.request({"command": "ping", "id": 1}))["status"] == "success"
    assert node.node.stats.slow_closes == 0


async def test_a_client_that_stops_reading_during_a_replay_is_still_cut(
    nursery: trio.Nursery,
) -> None:
    """The replay it is owed does not count against the bound; what was pulled for it
    and the live frames waiting behind it do."""
    bound = 256 * 1024
    node = await start_hub(
        nursery, make_config(limits={"send_queue_bytes": bound}, server={"close_timeout": 10})
    )
    batches = simulated(60)
    await publish_ledgers(node, batches[:30])
    history = node.node.history
    since = history.resumable_from
    assert sum(map(len, texts(history.since(0)))) > 4 * bound
    client = await stopped_reader(node.port)
    await client.send_json(
        {"command": "subscribe", "streams": STREAMS, "api_version": 2, "since_ledger": since}
    )
    reply = await whole_message(client)
    assert reply["result"]["resumed_messages"] == len(history)
    first = [await whole_message(client) for _ in range(3)]
    assert [m["ledger_index"] for m in first] == [since + 1] * 3
    (conn,) = [session.sink for session in node.node.sessions]
    assert isinstance(conn, Connection)
    assert node.node.stats.slow_closes == 0  # owed far past the bound, and not cut
    for i in range(30, 60):  # it reads nothing more; live frames pile up behind
        await publish_ledgers(node, batches[i : i + 1])
        if node.node.stats.slow_closes:
            break
    assert node.node.stats.slow_closes == 1
    assert conn.close_code == 1008
    close = await client.next_close(timeout=10)
    assert close.code == 1008
    await client.aclose()


async def stopped_reader(port: int) -> RawClient:
    """A client with a tiny receive buffer, so that its not reading is soon felt."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", port))
    client = RawClient(trio.SocketStream(sock), WSConnection(ConnectionType.CLIENT))
    await client.send(Request(host=f"127.0.0.1:{port}", target="/"))
    assert isinstance(await client.next_event(), AcceptConnection)
    return client


async def whole_message(client: RawClient) -> Any:
    """The next data message, however many pieces wsproto hands it over in."""
    data = ""
    while True:
        event = await client.next_event()
        if isinstance(event, TextMessage):
            data += event.data
            if event.message_finished:
                return msgspec.json.decode(data)


async def test_since_ledger_past_the_newest_is_lgr_not_found(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery)
    await publish_ledgers(node, simulated(3))
    newest = node.node.history.latest
    assert newest is not None
    async with open_client(node) as client:
        for since in (newest + 1, 10**30):
            reply = await client.request(
                {"command": "subscribe", "streams": ["ledger"], "since_ledger": since}
            )
            assert reply["error"] == "lgrNotFound", reply
            assert reply["since_ledger_max"] == newest
            assert reply["since_ledger_min"] == newest - 3
            assert f"since_ledger {newest} at the latest" in reply["error_message"]
        assert node.node.subscriptions.counts()["ledger"] == 0
        reply = await client.request(
            {"command": "subscribe", "streams": ["ledger"], "since_ledger": newest}
        )
        assert reply["result"]["resumed_messages"] == 0
        assert (reply["result"]["resumed_from"], reply["result"]["resumed_to"]) == (
            newest + 1,
            newest,
        )
        await publish_ledgers(node, simulated(4)[3:])
        assert (await client.recv())["ledger_index"] == newest + 1


KINDS_OF_SINCE: list[tuple[Any, str]] = [
    (True, "invalidParams"),
    (False, "invalidParams"),
    (2.0, "invalidParams"),
    (-1, "invalidParams"),
    (-(10**30), "invalidParams"),
    ("90000001", "invalidParams"),
    (None, "invalidParams"),
    ([90000001], "invalidParams"),
    ({"ledger_index": 90000001}, "invalidParams"),
    (0, "lgrNotFound"),
    (10**30, "lgrNotFound"),
]


async def test_every_kind_of_since_ledger_is_answered_as_documented(
    nursery: trio.Nursery,
) -> None:
    node = await start_hub(nursery)
    await publish_ledgers(node, simulated(2))
    async with open_client(node) as client:
        for since, error in KINDS_OF_SINCE:
            reply = await client.request(
                {"command": "subscribe", "streams": ["ledger"], "since_ledger": since}
            )
            assert reply.get("error") == error, (since, reply)
            assert "since_ledger" in reply["error_message"]
            if error == "lgrNotFound":
                assert reply["since_ledger_min"] == reply["since_ledger_max"] - 2
        assert node.node.subscriptions.counts()["ledger"] == 0


async def test_a_resume_is_charged_for_the_history_it_routes(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(admin={"ips": []}))
    await publish_ledgers(node, simulated(5))
    history = node.node.history
    routed = len(list(history.since(history.latest - 2)))
    async with open_client(node) as client:
        reply = await client.request(
            {"command": "subscribe", "accounts": [ALICE], "since_ledger": history.latest - 2}
        )
        assert reply["result"]["resumed_messages"] == 0
        balance = node.node.load.balance("127.0.0.1")
    assert routed > 40
    assert balance == pytest.approx((20 + 5 + routed) / 32, rel=0.01)  # request, account, replay


async def test_a_resume_over_tls_streams_through_the_writer_task(
    nursery: trio.Nursery,
    certs: Certificates,
) -> None:
    """Over TLS a connection writes from a task of its own, not the poller: a replay
    many times the bound goes through it too."""
    bound = 128 * 1024
    node = await start_hub(nursery, tls_config(certs, limits={"send_queue_bytes": bound}))
    await publish_ledgers(node, simulated(20))
    history = node.node.history
    since = history.resumable_from
    replayed = texts(history.since(0))
    assert sum(map(len, replayed)) > 4 * bound
    async with open_client(node, ssl_context=certs.client_context()) as client:
        reply = await client.request(
            {"command": "subscribe", "streams": STREAMS, "api_version": 2, "since_ledger": since}
        )
        assert reply["result"]["resumed_messages"] == len(replayed)
        with trio.fail_after(20):
            got = [await client.ws.get_message() for _ in replayed]
    assert got == replayed


class GatedBooks:
    """A book source that answers only once the test opens its gate."""

    def __init__(self) -> None:
        self.gate = trio.Event()

    async def book_page(self, query: BookQuery) -> BookPage | None:
        await self.gate.wait()
        return BookPage([], None)


async def test_a_resume_that_waited_for_a_snapshot_is_checked_again(
    nursery: trio.Nursery,
) -> None:
    """Ledgers that close while a book snapshot is read may evict ``since_ledger``: the
    resume then fails as documented, not with a silent gap."""
    node = await start_hub(nursery, make_config(history={"ledgers": 2}))
    books = GatedBooks()
    node.node.book_source = books
    await publish_ledgers(node, simulated(3))
    since = node.node.history.resumable_from
    assert since is not None
    async with open_client(node) as client:
        book = {"taker_gets": {"currency": "XRP"}, "taker_pays": USD, "snapshot": True}
        await client.send(
            {
                "command": "subscribe",
                "books": [book],
                "streams": ["ledger"],
                "since_ledger": since,
            }
        )
        (session,) = node.node.sessions
        await eventually(lambda: session.sink.in_flight == 1)
        await publish_ledgers(node, simulated(5)[3:])
        books.gate.set()
        reply = await client.recv()
        assert reply["error"] == "lgrNotFound", reply
        assert reply["since_ledger_min"] == since + 2
        assert node.node.subscriptions.counts()["ledger"] == 0


@asynccontextmanager
async def connect(node: Hub) -> AsyncIterator[WebSocketConnection]:
    async with open_websocket_url(node.url, message_queue_size=100_000) as ws:
        yield ws


async def request(ws: WebSocketConnection, message: dict[str, Any]) -> dict[str, Any]:
    """Send a request; return its reply (stream messages before it must not exist)."""
    await ws.send_message(msgspec.json.encode(message).decode())
    with trio.fail_after(5):
        reply: dict[str, Any] = msgspec.json.decode(await ws.get_message())
    assert reply.get("type") == "response", reply
    return reply


async def frames(ws: WebSocketConnection, n: int) -> list[str]:
    with trio.fail_after(10):
        return [str(await ws.get_message()) for _ in range(n)]


async def publish(node: Hub, messages: list[dict[str, Any]]) -> None:
    await node.publish_batch([events.parse(m) for m in messages])


LEDGER_STREAMS = ["ledger", "transactions", "validations"]


async def test_resumed_client_sees_what_a_connected_one_saw(nursery: trio.Nursery) -> None:
    node = Hub(make_config())
    await nursery.start(node.run)
    async with connect(node) as steady:
        await request(steady, {"command": "subscribe", "streams": LEDGER_STREAMS, "api_version": 2})
        all_sent: list[dict[str, Any]] = []
        async with connect(node) as first:
            await request(
                first, {"command": "subscribe", "streams": LEDGER_STREAMS, "api_version": 2}
            )
            for i in range(1, 4):
                all_sent += published_ledger(i)
                await publish(node, published_ledger(i))
            before = await frames(first, len(all_sent))
        for i in range(4, 9):
            all_sent += published_ledger(i)
            await publish(node, published_ledger(i))
        async with connect(node) as again:
            reply = await request(
                again,
                {
                    "command": "subscribe",
                    "streams": LEDGER_STREAMS,
                    "api_version": 2,
                    "since_ledger": 3,
                },
            )
            assert reply["result"]["resumed_from"] == 4
            assert reply["result"]["resumed_to"] == 8
            replayed = await frames(again, reply["result"]["resumed_messages"])
            all_sent += published_ledger(9)
            await publish(node, published_ledger(9))
            live = await frames(again, len(published_ledger(9)))
        reference = await frames(steady, len(all_sent))
    assert before + replayed + live == reference
    assert [msgspec.json.decode(f) for f in reference] == all_sent


async def test_replay_renders_in_the_connection_version(nursery: trio.Nursery) -> None:
    node = Hub(make_config())
    await nursery.start(node.run)
    async with connect(node) as v1_live:
        await request(v1_live, {"command": "subscribe", "streams": ["transactions"]})
        for i in range(1, 3):
            await publish(node, published_ledger(i))
        reference = await frames(v1_live, 6)
    async with connect(node) as v1:
        reply = await request(
            v1, {"command": "subscribe", "streams": ["transactions"], "since_ledger": 0}
        )
        assert reply["result"]["resumed_messages"] == 6
        assert await frames(v1, 6) == reference
    assert "transaction" in msgspec.json.decode(reference[0])


async def test_accounts_resume_replays_only_matching_transactions(nursery: trio.Nursery) -> None:
    node = Hub(make_config())
    await nursery.start(node.run)
    for i in range(1, 4):
        await publish(node, [*published_ledger(i), iou_payment(i, 9, CAROL, BOB)])
    async with connect(node) as ws:
        reply = await request(
            ws,
            {"command": "subscribe", "accounts": [ALICE], "since_ledger": 1, "api_version": 2},
        )
        got = [
            msgspec.json.decode(f) for f in await frames(ws, reply["result"]["resumed_messages"])
        ]
    assert got
    assert all(m["type"] == "transaction" and m["tx_json"]["Account"] == ALICE for m in got)
    assert {m["ledger_index"] for m in got} == {2, 3}


async def test_resume_while_ledgers_keep_closing(nursery: trio.Nursery) -> None:
    """A publisher closes ledgers as fast as it can while clients resume: no gap, no dup."""
    node = Hub(make_config())
    await nursery.start(node.run)
    total = 60
    for i in range(1, 6):
        await publish(node, published_ledger(i, 2))

    async def keep_closing() -> None:
        for i in range(6, total + 1):
            await publish(node, published_ledger(i, 2))
            await trio.lowlevel.checkpoint()

    results: list[list[int]] = []

    async def resume_once(since: int) -> None:
        async with connect(node) as ws:
            reply = await request(
                ws, {"command": "subscribe", "streams": ["ledger"], "since_ledger": since}
            )
            seen: list[int] = []
            count = reply["result"]["resumed_messages"]
            with trio.fail_after(10):
                while not seen or seen[-1] < total:
                    seen.append(msgspec.json.decode(await ws.get_message())["ledger_index"])
            assert count >= 0
            results.append([since, *seen])

    async with trio.open_nursery() as inner:
        inner.start_soon(keep_closing)
        for since in (1, 3, 5):
            inner.start_soon(resume_once, since)
    assert len(results) == 3
    for since, *seen in results:
        assert seen == list(range(since + 1, total + 1))


@pytest.mark.parametrize("bad", ["5", -1, 1.5, True, None, [3]])
async def test_malformed_since_ledger(client: Any, bad: Any) -> None:
    reply = await client.request(
        {"command": "subscribe", "streams": ["ledger"], "since_ledger": bad}
    )
    assert reply["error"] == "invalidParams"
    assert "since_ledger" in reply["error_message"]


async def test_too_old_since_ledger_changes_nothing(nursery: trio.Nursery) -> None:
    node = Hub(make_config(history={"ledgers": 3}))
    await nursery.start(node.run)
    async with connect(node) as ws:
        reply = await request(
            ws, {"command": "subscribe", "streams": ["ledger"], "since_ledger": 0}
        )
        assert reply["error"] == "lgrNotFound"
        assert reply["since_ledger_min"] is None
        for i in range(1, 7):
            await publish(node, published_ledger(i))
        reply = await request(
            ws, {"command": "subscribe", "streams": ["ledger"], "since_ledger": 2}
        )
        assert reply["error"] == "lgrNotFound"
        assert reply["since_ledger_min"] == 3
        assert "since_ledger 3 at the earliest" in reply["error_message"]
        assert node.node.subscriptions.counts()["ledger"] == 0
        ok = await request(ws, {"command": "subscribe", "streams": ["ledger"], "since_ledger": 3})
        assert ok["result"]["resumed_messages"] == 3


async def test_without_since_ledger_nothing_is_replayed(nursery: trio.Nursery) -> None:
    node = Hub(make_config())
    await nursery.start(node.run)
    await publish(node, published_ledger(1))
    async with connect(node) as ws:
        reply = await request(ws, {"command": "subscribe", "streams": ["ledger"]})
        assert "resumed_from" not in reply["result"]
        await publish(node, published_ledger(2))
        (only,) = await frames(ws, 1)
    assert msgspec.json.decode(only)["ledger_index"] == 2


async def resume_schedule(schedule: list[tuple[int, bool]]) -> None:
    """Publish ledgers in rounds; between rounds the client may drop and resume."""
    node = Hub(make_config(history={"ledgers": 64}))
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        sent: list[str] = []
        got: list[str] = []
        next_index, last_complete = 1, 0
        ws_cm = connect(node)
        ws = await ws_cm.__aenter__()
        await request(ws, {"command": "subscribe", "streams": LEDGER_STREAMS, "api_version": 2})
        try:
            for ledgers, drop in schedule:
                batch = [
                    m
                    for i in range(next_index, next_index + ledgers)
                    for m in published_ledger(i, 1)
                ]
                next_index += ledgers
                sent += [msgspec.json.encode(m).decode() for m in batch]
                await publish(node, batch)
                if not drop:
                    got += await frames(ws, len(batch))
                    last_complete = next_index - 1
                    continue
                await ws_cm.__aexit__(None, None, None)
                ws_cm = connect(node)
                ws = await ws_cm.__aenter__()
                reply = await request(
                    ws,
                    {"command": "subscribe", "streams": LEDGER_STREAMS, "api_version": 2,
                     "since_ledger": last_complete},
                )  # fmt: skip
                got += await frames(ws, reply["result"]["resumed_messages"])
                last_complete = next_index - 1
        finally:
            await ws_cm.__aexit__(None, None, None)
        node.shutdown()
    assert [msgspec.json.decode(g) for g in got] == [msgspec.json.decode(s) for s in sent]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.booleans()), min_size=1, max_size=8))
def test_random_disconnects_lose_nothing(schedule: list[tuple[int, bool]]) -> None:
    trio.run(resume_schedule, schedule)
