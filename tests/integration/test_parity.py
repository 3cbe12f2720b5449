"""Wire parity with rippled end to end: book streams and snapshots, ctid and network_id
on what the hub passes on, subscribe to ``server``, admin ``ping``, and ``server_info``
relayed from the upstream. Real hubs on port 0, real WebSocket clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
import trio

from hub import Hub
from hub.sources.simulator import LedgerSimulator
from hub.xrpl import ctid
from hub.xrpl.accounts import affected_books, book_key, reversed_book
from tests.helpers.fake_rippled import BUILD_VERSION, FakeRippled, start_relay
from tests.helpers.hubs import (
    ADMIN_PING,
    Client,
    client_from,
    eventually,
    make_config,
    start_hub,
    websocket,
)
from tests.helpers.samples import (
    GATEWAY,
    USD,
    h,
    ledger_closed,
    legacy,
    offer_crossing,
    xrp_payment,
)

XRP = {"currency": "XRP"}


@asynccontextmanager
async def connect(node: Hub) -> AsyncIterator[Client]:
    async with websocket(node.url) as ws:
        yield Client(ws)


async def ok(client: Client, request: dict[str, Any]) -> dict[str, Any]:
    """The result of a request on a connection no stream message can arrive on first
    (or a ``subscribe``, whose reply precedes what it subscribed to); API v2."""
    reply = await client.request({"id": "req", "api_version": 2, **request}, timeout=10)
    assert reply["status"] == "success", reply
    result: dict[str, Any] = reply["result"]
    return result


async def publish(client: Client, messages: list[dict[str, Any]]) -> None:
    await ok(client, {"command": "publish", "messages": messages})


async def next_of(client: Client, kind: str, timeout: float = 10) -> dict[str, Any]:  # noqa: ASYNC109
    with trio.fail_after(timeout):
        while True:
            message: dict[str, Any] = await client.recv(timeout)
            if message.get("type") == kind:
                return message


async def test_older_sources_get_ctid_and_network_id(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(server={"network_id": 21338}))
    async with connect(node) as client, connect(node) as publisher:
        await ok(client, {"command": "subscribe", "streams": ["ledger", "transactions"]})
        own_network = {**xrp_payment(9, 3), "tx_json": {**xrp_payment(9, 3)["tx_json"]}}
        own_network["tx_json"]["NetworkID"] = 1025
        already = {**xrp_payment(9, 4), "ctid": "C0000009000400FF"}
        batch = [legacy(ledger_closed(9)), legacy(xrp_payment(9, 2)), legacy(own_network)]
        await publish(publisher, [*batch, already])
        closed = await next_of(client, "ledgerClosed")
        assert closed["network_id"] == 21338
        got = [await next_of(client, "transaction") for _ in range(3)]
        assert [ctid.decode(m["ctid"]) for m in got[:2]] == [(9, 2, 21338), (9, 3, 1025)]
        assert got[2]["ctid"] == "C0000009000400FF"  # a source's own ctid is kept
        subscribed = await ok(client, {"command": "subscribe", "streams": ["ledger"]})
        assert subscribed["network_id"] == 21338
        info = await ok(client, {"command": "server_info"})
        assert info["info"]["network_id"] == 21338


async def test_no_ctid_beyond_16_bit_network_ids(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(server={"network_id": 70000}))
    async with connect(node) as client, connect(node) as publisher:
        await ok(client, {"command": "subscribe", "streams": ["transactions"]})
        await publish(publisher, [legacy(xrp_payment(9, 2))])
        assert "ctid" not in await next_of(client, "transaction")


async def test_subscribe_to_server_answers_subserver_fields(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery)
    async with connect(node) as admin, client_from(node, "127.0.0.2") as visitor:
        first = await ok(admin, {"command": "subscribe", "streams": ["server"]})
        again = await ok(visitor, {"command": "subscribe", "streams": ["server"]})
        for result in (first, again):
            assert set(result) == {
                "random",
                "server_status",
                "load_base",
                "load_factor",
                "hostid",
                "pubkey_node",
            }
            assert len(result["random"]) == 64
            int(result["random"], 16)
            assert (result["load_base"], result["load_factor"]) == (256, 256)
            assert result["server_status"] == "connected"  # no ledger yet
            assert result["pubkey_node"] == node.node.identity.pubkey_node
        assert first["random"] != again["random"]
        assert again["hostid"] == node.node.identity.hostid(admin=False)
        assert len(again["hostid"]) == 4
        status = {"type": "serverStatus", "server_status": "full", "load_factor": 512}
        async with connect(node) as publisher:
            await publish(publisher, [status])
        assert (await next_of(visitor, "serverStatus"))["load_factor"] == 512


async def test_ping_tells_an_admin_its_role(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery)
    async with connect(node) as admin, client_from(node, "127.0.0.2") as visitor:
        assert await ok(admin, {"command": "ping"}) == ADMIN_PING
        assert await ok(visitor, {"command": "ping"}) == {}


async def test_book_stream_direction_end_to_end(nursery: trio.Nursery) -> None:
    """Book_test.cpp: taker_gets XRP / taker_pays USD receives the offer whose TakerGets is
    USD (here a crossing that consumes one), the reverse subscriber does not; ``both``
    receives either."""
    node = await start_hub(nursery)
    async with (
        connect(node) as publisher,
        connect(node) as gets_xrp,
        connect(node) as gets_usd,
        connect(node) as both,
    ):
        await ok(
            gets_xrp, {"command": "subscribe", "books": [{"taker_gets": XRP, "taker_pays": USD}]}
        )
        await ok(
            gets_usd, {"command": "subscribe", "books": [{"taker_gets": USD, "taker_pays": XRP}]}
        )
        await ok(
            both,
            {
                "command": "subscribe",
                "books": [{"taker_gets": USD, "taker_pays": XRP, "both": True}],
            },
        )
        await ok(gets_usd, {"command": "subscribe", "streams": ["ledger"]})
        await publish(publisher, [offer_crossing(5, 2), ledger_closed(5, 1)])
        assert (await next_of(gets_xrp, "transaction"))["hash"] == h("tx", 5, 2)
        assert (await next_of(both, "transaction"))["hash"] == h("tx", 5, 2)
        assert (await gets_usd.recv())["type"] == "ledgerClosed"  # and no transaction before it


async def test_snapshot_without_a_book_source_is_not_supported(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery)
    async with connect(node) as client:
        books = [{"taker_gets": XRP, "taker_pays": USD, "snapshot": True}]
        reply = await client.request(
            {"command": "subscribe", "books": books, "streams": ["ledger"]}
        )
        assert reply["error"] == "notSupported"
        assert reply["error_code"] == 75
        assert node.node.subscriptions.counts()["books"] == 0  # all or nothing
        assert node.node.subscriptions.counts()["ledger"] == 0


async def _simulated(nursery: trio.Nursery, seed: int) -> Hub:
    config = make_config(
        source={"source": "simulator", "ledger_interval": 0.25, "seed": seed, "tx_per_ledger": 30}
    )
    node = await start_hub(nursery, config)
    await eventually(lambda: node.node.ledger.index is not None, timeout=20)
    return node


async def test_snapshot_from_the_simulator(nursery: trio.Nursery) -> None:
    seed = 31
    node = await _simulated(nursery, seed)
    issuer = LedgerSimulator(seed=seed).issuers[0]
    usd = {"currency": "USD", "issuer": issuer}
    async with connect(node) as client:
        book = {"taker_gets": XRP, "taker_pays": usd, "snapshot": True, "taker": issuer}
        one = await ok(client, {"command": "subscribe", "books": [book]})
        assert set(one) == {"offers"}
        assert one["offers"]
        for offer in one["offers"]:
            assert isinstance(offer["TakerGets"], str)  # XRP, in drops
            assert offer["TakerPays"]["currency"] == "USD"
            assert offer["TakerPays"]["issuer"] == issuer
            assert {"quality", "index", "LedgerEntryType", "Account"} <= set(offer)
        assert "owner_funds" in one["offers"][0]
        both = await ok(
            client, {"command": "subscribe", "books": [{**book, "both": True, "limit": 3}]}
        )
        assert set(both) == {"bids", "asks"}
        assert 0 < len(both["bids"]) <= 3
        assert all(isinstance(o["TakerPays"], str) for o in both["asks"])
        qualities = [Decimal(o["quality"]) for o in one["offers"]]
        assert qualities == sorted(qualities)
        # The stream that follows carries this market's transactions (both sides now).
        key = book_key(XRP, usd)
        message = await next_of(client, "transaction", timeout=20)
        assert {key, reversed_book(key)} & affected_books(message["meta"])


async def test_snapshot_charges_rippleds_medium_burden(nursery: trio.Nursery) -> None:
    node = await _simulated(nursery, 32)
    issuer = LedgerSimulator(seed=32).issuers[0]
    async with client_from(node, "127.0.0.2") as client:
        before = node.node.load.balance("127.0.0.2")
        books = [{"taker_gets": XRP, "taker_pays": {"currency": "USD", "issuer": issuer}}]
        await ok(client, {"command": "subscribe", "books": [{**books[0], "snapshot": True}]})
        with_snapshot = node.node.load.balance("127.0.0.2") - before
    # request 20 + one book 4 + snapshot 400, over the 32 s decay window
    assert with_snapshot == pytest.approx((20 + 4 + 400) / 32, rel=0.02)


async def _relaying(nursery: trio.Nursery) -> tuple[FakeRippled, Hub]:
    return await start_relay(nursery, network_id=21338)


async def test_relay_reports_the_upstreams_build_version_and_network(nursery: trio.Nursery) -> None:
    fake, relay = await _relaying(nursery)
    async with connect(relay) as client, connect(fake.hub) as upstream:
        info = (await ok(client, {"command": "server_info"}))["info"]
        assert info["build_version"] == BUILD_VERSION
        assert info["network_id"] == 21338
        assert info["hub"]["build_version"] != BUILD_VERSION  # the hub's own release
        assert info["hub"]["upstream"]["network_id"] == 21338
        # What the upstream leaves out is stamped with the upstream's network.
        await ok(client, {"command": "subscribe", "streams": ["ledger", "transactions"]})
        await publish(upstream, [legacy(ledger_closed(3, 1)), legacy(xrp_payment(3, 0))])
        assert (await next_of(client, "ledgerClosed"))["network_id"] == 21338
        tx = await next_of(client, "transaction")
        assert ctid.decode(tx["ctid"]) == (3, 0, 21338)


BOOK_PAGE = {
    "ledger_index": 3,
    "validated": True,
    "offers": [{"Account": GATEWAY, "TakerGets": "100", "quality": "0.5", "owner_funds": "9"}],
}


async def test_relay_snapshot_asks_the_upstream(nursery: trio.Nursery) -> None:
    fake, relay = await _relaying(nursery)
    fake.book = BOOK_PAGE
    async with connect(relay) as client, connect(fake.hub) as upstream:
        await publish(upstream, [ledger_closed(3)])
        await eventually(lambda: relay.node.ledger.index == 3)
        book = {"taker_gets": XRP, "taker_pays": USD, "snapshot": True, "taker": GATEWAY}
        result = await ok(client, {"command": "subscribe", "books": [{**book, "both": True}]})
        assert result == {"bids": BOOK_PAGE["offers"], "asks": BOOK_PAGE["offers"]}
        bids, asks = fake.book_requests
        assert (bids["taker_gets"], bids["taker_pays"]) == (XRP, USD)
        assert (asks["taker_gets"], asks["taker_pays"]) == (USD, XRP)
        assert (bids["taker"], bids["ledger_index"], bids["limit"]) == (GATEWAY, 3, 60)


async def test_relay_snapshot_error_changes_nothing(nursery: trio.Nursery) -> None:
    fake, relay = await _relaying(nursery)
    assert fake.book is None  # the fake answers book_offers with lgrNotFound
    async with connect(relay) as client:
        books = [{"taker_gets": XRP, "taker_pays": USD, "snapshot": True}]
        reply = await client.request({"command": "subscribe", "books": books, "id": 1})
        assert reply["error"] == "lgrNotFound"
        assert "upstream" in reply["error_message"]
        assert relay.node.subscriptions.counts()["books"] == 0


async def test_relay_snapshot_then_what_closed_meanwhile(nursery: trio.Nursery) -> None:
    """A ledger that closes while the upstream is asked follows the reply from the
    history: the snapshot (of ledger 3) and the stream meet without a gap."""
    fake, relay = await _relaying(nursery)
    fake.book = BOOK_PAGE
    fake.book_gate = trio.Event()
    async with connect(relay) as client, connect(fake.hub) as upstream:
        await publish(upstream, [ledger_closed(3)])
        await eventually(lambda: relay.node.ledger.index == 3)
        books = [{"taker_gets": XRP, "taker_pays": USD, "snapshot": True}]
        await client.send({"command": "subscribe", "books": books, "id": "snap", "api_version": 2})
        await eventually(lambda: bool(fake.book_requests))
        await publish(upstream, [ledger_closed(4, 1), offer_crossing(4, 0)])
        await eventually(lambda: relay.node.history.latest == 4)
        fake.book_gate.set()
        reply = await client.recv(10)
        assert reply["id"] == "snap"
        assert reply["result"] == {"offers": BOOK_PAGE["offers"]}
        caught_up = await client.recv(10)
        assert caught_up["type"] == "transaction"
        assert caught_up["hash"] == h("tx", 4, 0)
