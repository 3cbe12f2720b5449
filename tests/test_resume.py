"""Resume without loss: ``since_ledger`` replays what a reconnecting client missed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from trio_websocket import WebSocketConnection, open_websocket_url

from hub import Hub
from hub.core.history import History
from hub.core.render import Frames
from hub.xrpl import events
from tests.conftest import make_config
from tests.samples import (
    ALICE,
    BOB,
    CAROL,
    GATEWAY,
    iou_payment,
    ledger_closed,
    proposed,
    validation,
    xrp_payment,
)


def ledger(index: int, txs: int = 3) -> list[dict[str, Any]]:
    """One ledger as rippled publishes it: validations, ledgerClosed, transactions."""
    return [
        validation(index, 0),
        ledger_closed(index, txs),
        *(xrp_payment(index, s, ALICE if s % 2 else CAROL, BOB) for s in range(txs)),
    ]


# --- History, sans-IO -----------------------------------------------------------------


def keep(history: History, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        event = events.parse(message)
        history.add(event, Frames(event))


def test_history_keeps_the_last_n_ledgers() -> None:
    history = History(ledgers=3)
    assert history.resumable_from is None
    for i in range(10, 16):
        keep(history, ledger(i))
    assert history.latest == 15
    assert history.resumable_from == 12
    assert {entry.ledger_index for entry in history.since(0)} == {13, 14, 15}
    assert [e.event.kind for e in history.since(14)] == [
        "validationReceived", "ledgerClosed", "transaction", "transaction", "transaction"
    ]  # fmt: skip


def test_a_kept_transaction_works_its_routes_out_from_its_frame() -> None:
    history = History(ledgers=3)
    keep(history, [ledger_closed(7), iou_payment(7, 1, ALICE, BOB)])
    (entry,) = history.transactions(7)
    assert entry.event.body == {}  # the decoded message is not kept
    assert entry.event.known_routes is None
    assert {ALICE, BOB, GATEWAY} <= entry.event.accounts


def test_history_starts_at_the_first_ledger_seen() -> None:
    history = History(ledgers=10)
    keep(history, ledger(50))
    assert history.resumable_from == 49


def test_history_skips_what_belongs_to_no_ledger() -> None:
    history = History(ledgers=10)
    keep(history, ledger(5))
    before = len(history)
    keep(history, [proposed(xrp_payment(6, 1)), {"type": "consensusPhase", "consensus": "open"}])
    assert len(history) == before


def test_late_validation_of_an_evicted_ledger_is_not_kept() -> None:
    history = History(ledgers=2)
    for i in range(1, 5):
        keep(history, ledger(i))
    keep(history, [validation(1, 3)])
    assert all(entry.ledger_index > 2 for entry in history.since(0))


# --- end to end -----------------------------------------------------------------------


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


STREAMS = ["ledger", "transactions", "validations"]


async def test_resumed_client_sees_what_a_connected_one_saw(nursery: trio.Nursery) -> None:
    node = Hub(make_config())
    await nursery.start(node.run)
    async with connect(node) as steady:
        await request(steady, {"command": "subscribe", "streams": STREAMS, "api_version": 2})
        all_sent: list[dict[str, Any]] = []
        async with connect(node) as first:
            await request(first, {"command": "subscribe", "streams": STREAMS, "api_version": 2})
            for i in range(1, 4):
                all_sent += ledger(i)
                await publish(node, ledger(i))
            before = await frames(first, len(all_sent))
        for i in range(4, 9):
            all_sent += ledger(i)
            await publish(node, ledger(i))
        async with connect(node) as again:
            reply = await request(
                again,
                {"command": "subscribe", "streams": STREAMS, "api_version": 2, "since_ledger": 3},
            )
            assert reply["result"]["resumed_from"] == 4
            assert reply["result"]["resumed_to"] == 8
            replayed = await frames(again, reply["result"]["resumed_messages"])
            all_sent += ledger(9)
            await publish(node, ledger(9))
            live = await frames(again, len(ledger(9)))
        reference = await frames(steady, len(all_sent))
    assert before + replayed + live == reference
    assert [msgspec.json.decode(f) for f in reference] == all_sent


async def test_replay_renders_in_the_connection_version(nursery: trio.Nursery) -> None:
    node = Hub(make_config())
    await nursery.start(node.run)
    async with connect(node) as v1_live:
        await request(v1_live, {"command": "subscribe", "streams": ["transactions"]})
        for i in range(1, 3):
            await publish(node, ledger(i))
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
        await publish(node, [*ledger(i), iou_payment(i, 9, CAROL, BOB)])
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
        await publish(node, ledger(i, 2))

    async def keep_closing() -> None:
        for i in range(6, total + 1):
            await publish(node, ledger(i, 2))
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
            await publish(node, ledger(i))
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
    await publish(node, ledger(1))
    async with connect(node) as ws:
        reply = await request(ws, {"command": "subscribe", "streams": ["ledger"]})
        assert "resumed_from" not in reply["result"]
        await publish(node, ledger(2))
        (only,) = await frames(ws, 1)
    assert msgspec.json.decode(only)["ledger_index"] == 2


# --- random disconnect/reconnect schedules --------------------------------------------


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
        await request(ws, {"command": "subscribe", "streams": STREAMS, "api_version": 2})
        try:
            for ledgers, drop in schedule:
                batch = [m for i in range(next_index, next_index + ledgers) for m in ledger(i, 1)]
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
                    {"command": "subscribe", "streams": STREAMS, "api_version": 2,
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


def test_history_is_bounded_in_bytes_too() -> None:
    history = History(ledgers=1000, max_bytes=20_000)
    for i in range(1, 30):
        keep(history, ledger(i, 5))
    assert history.nbytes <= 20_000
    floor = history.resumable_from
    assert floor is not None
    kept = {entry.ledger_index for entry in history.since(0)}
    assert kept == set(range(floor + 1, 30))


def test_history_bound_holds_inside_one_huge_ledger() -> None:
    history = History(ledgers=10, max_bytes=50_000)
    keep(history, [xrp_payment(7, s) for s in range(500)])
    assert history.nbytes <= 50_000
    assert len(history) == 0
    assert history.resumable_from == 7


def test_zero_ledgers_keeps_nothing() -> None:
    history = History(ledgers=0)
    keep(history, ledger(1))
    assert len(history) == 0
    assert history.resumable_from is None
