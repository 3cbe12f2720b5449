"""Streams end to end: real hub on port 0, real WebSocket clients, admin publish."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from trio_websocket import open_websocket_url

from hub import Hub
from tests.helpers.hubs import Client, eventually, make_config
from tests.helpers.samples import (
    ALICE,
    BOB,
    GATEWAY,
    account,
    iou_payment,
    ledger_closed,
    validation,
    xrp_payment,
)


async def subscribe(client: Client, **params: Any) -> Any:
    reply = await client.request({"command": "subscribe", "id": "sub", **params})
    assert reply["status"] == "success", reply
    return reply["result"]


async def publish(client: Client, messages: list[dict[str, Any]]) -> None:
    reply = await client.request({"command": "publish", "messages": messages, "id": "pub"})
    assert reply == {
        "id": "pub",
        "status": "success",
        "type": "response",
        "result": {"published": len(messages)},
    }


async def recv_stream(client: Client, n: int) -> list[Any]:
    """The next n stream messages, skipping nothing: a response here is a failure."""
    out = []
    for _ in range(n):
        message = await client.recv()
        assert message.get("type") != "response", message
        out.append(message)
    return out


def ledger_batch(index: int, txs: int) -> list[dict[str, Any]]:
    return [xrp_payment(index, seq) for seq in range(txs)] + [ledger_closed(index, txs)]


@pytest.fixture
async def publisher(hub: Hub) -> AsyncIterator[Client]:
    async with open_websocket_url(hub.url) as ws:
        yield Client(ws)


async def test_many_subscribers_get_everything_in_order(hub: Hub, publisher: Client) -> None:
    ledgers, txs, n_clients = 12, 8, 30
    expected = [m for i in range(1, ledgers + 1) for m in ledger_batch(i, txs)]
    async with trio.open_nursery() as nursery:
        clients = []
        for _k in range(n_clients):
            ws = await nursery.start(_open, hub.url)
            client = Client(ws)
            await subscribe(client, streams=["ledger", "transactions"], api_version=2)
            clients.append(client)
        for i in range(1, ledgers + 1):
            await publish(publisher, ledger_batch(i, txs))
        for client in clients:
            got = await recv_stream(client, len(expected))
            assert got == expected
        nursery.cancel_scope.cancel()


async def _open(url: str, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    async with open_websocket_url(url) as ws:
        task_status.started(ws)
        await trio.sleep_forever()


async def test_v1_and_v2_side_by_side(hub: Hub, publisher: Client, client: Client) -> None:
    async with open_websocket_url(hub.url) as ws:
        v2 = Client(ws)
        await subscribe(client, streams=["transactions"], api_version=1)
        await subscribe(v2, streams=["transactions"], api_version=2)
        message = xrp_payment(3, 1)
        await publish(publisher, [message])
        (got1,) = await recv_stream(client, 1)
        (got2,) = await recv_stream(v2, 1)
    assert got2 == message
    assert got1["transaction"]["hash"] == message["hash"]
    assert got1["transaction"]["Amount"] == message["tx_json"]["DeliverMax"]
    assert "tx_json" not in got1


async def test_stream_version_is_that_of_the_latest_subscribe(
    publisher: Client, client: Client
) -> None:
    await subscribe(client, streams=["transactions"], api_version=2)
    await subscribe(client, streams=["ledger"], api_version=1)
    reply = await client.request({"command": "version", "api_version": 2, "id": 1})
    assert reply["result"] == {"version": {"first": 1, "last": 2}}
    await publish(publisher, [xrp_payment(3, 1)])
    (got,) = await recv_stream(client, 1)
    assert "transaction" in got
    assert "tx_json" not in got


async def test_subscribe_ledger_returns_latest_ledger(publisher: Client, client: Client) -> None:
    assert await subscribe(client, streams=["ledger"]) == {}
    await publish(publisher, [ledger_closed(41)])
    await recv_stream(client, 1)
    result = await subscribe(client, streams=["ledger"])
    latest = ledger_closed(41)
    assert result == {
        key: latest[key]
        for key in (
            "ledger_index",
            "ledger_hash",
            "ledger_time",
            "fee_base",
            "reserve_base",
            "reserve_inc",
            "network_id",
            "validated_ledgers",
        )
    }
    assert await subscribe(client, streams=["validations"]) == {}


async def test_unsubscribe_stops_delivery(publisher: Client, client: Client) -> None:
    await subscribe(client, streams=["ledger", "transactions"])
    reply = await client.request({"command": "unsubscribe", "streams": ["transactions"], "id": 2})
    assert reply["status"] == "success"
    assert reply["result"] == {}
    await publish(publisher, [xrp_payment(8, 1), ledger_closed(8)])
    (got,) = await recv_stream(client, 1)
    assert got["type"] == "ledgerClosed"


async def test_invalid_subscribe_changes_nothing(publisher: Client, client: Client) -> None:
    await subscribe(client, streams=["validations"])
    for bad, token in (
        ({"streams": ["ledger", "bogus"]}, "malformedStream"),
        ({"streams": ["ledger"], "accounts": ["nope"]}, "actMalformed"),
        ({"streams": ["ledger"], "accounts": ALICE}, "invalidParams"),
    ):
        reply = await client.request({"command": "subscribe", "id": 3, **bad}, timeout=5)
        assert reply["error"] == token, reply
        assert reply["request"]["command"] == "subscribe"
    await publish(publisher, [ledger_closed(9), iou_payment(9, 1)])
    (lone,) = list(await _drain_until_marker(client, publisher))
    assert lone["type"] == "validationReceived"


async def _drain_until_marker(client: Client, publisher: Client) -> list[Any]:
    """Publish a validation (which the client is subscribed to) and collect what came first."""
    await publish(publisher, [validation(10_000)])
    out = []
    while True:
        message = await client.recv()
        out.append(message)
        if message.get("type") == "validationReceived":
            return out


async def test_account_subscription_end_to_end(publisher: Client, client: Client) -> None:
    await subscribe(client, accounts=[GATEWAY], api_version=2)
    messages = [xrp_payment(4, 1, ALICE, BOB), iou_payment(4, 2, ALICE, BOB)]
    await publish(publisher, messages)
    (got,) = await recv_stream(client, 1)
    assert got["hash"] == messages[1]["hash"]


async def test_closed_connection_loses_its_subscriptions(hub: Hub) -> None:
    async with open_websocket_url(hub.url) as ws:
        await subscribe(Client(ws), streams=["ledger"], accounts=[ALICE])
        assert hub.node.subscriptions.counts()["ledger"] == 1
    await eventually(
        lambda: (
            not hub.node.subscriptions.counts()["ledger"] and not hub.node.subscriptions.accounts
        )
    )


async def test_ledger_closed_and_current(publisher: Client, client: Client) -> None:
    reply = await client.request({"command": "ledger_closed"})
    assert reply["error"] == "lgrNotFound"
    await subscribe(client, streams=["ledger"])
    await publish(publisher, [ledger_closed(77)])
    await recv_stream(client, 1)
    closed = await client.request({"command": "ledger_closed"})
    assert closed["result"] == {"ledger_hash": ledger_closed(77)["ledger_hash"], "ledger_index": 77}
    current = await client.request({"command": "ledger_current"})
    assert current["result"] == {"ledger_current_index": 78}
    info = (await client.request({"command": "server_info"}))["result"]["info"]
    assert info["validated_ledger"]["seq"] == 77
    assert info["complete_ledgers"] == "1-77"
    assert info["hub"]["subscribers"]["ledger"] == 1


async def test_publish_rejects_the_whole_batch(publisher: Client, client: Client) -> None:
    await subscribe(client, streams=["ledger"])
    batch = [ledger_closed(5), {"type": "ledgerClosed", "ledger_index": 6}]
    reply = await publisher.request({"command": "publish", "messages": batch, "id": 1})
    assert reply["error"] == "invalidParams"
    assert "messages[1]" in reply["error_message"]
    await publish(publisher, [ledger_closed(7)])
    (got,) = await recv_stream(client, 1)
    assert got["ledger_index"] == 7


async def test_publish_needs_admin(nursery: trio.Nursery) -> None:
    node = Hub(make_config(admin={"ips": [], "token": "s3cret"}))
    await nursery.start(node.run)
    async with open_websocket_url(node.url) as ws:
        reply = await Client(ws).request({"command": "publish", "messages": [], "id": 1})
        assert reply["error"] == "forbidden"
        assert reply["error_code"] == 3
        reply = await Client(ws).request({"command": "subscribe", "streams": ["peer_status"]})
        assert reply["error"] == "noPermission"
    headers = [("Authorization", "Bearer s3cret")]
    async with open_websocket_url(node.url, extra_headers=headers) as ws:
        admin = Client(ws)
        await subscribe(admin, streams=["ledger", "peer_status"])
        await admin.send({"command": "publish", "messages": [ledger_closed(3)], "id": "pub"})
        got = [await admin.recv(), await admin.recv()]
        got.sort(key=lambda m: m["type"])
        assert got[0]["ledger_index"] == 3
        assert got[1]["result"] == {"published": 1}
    async with open_websocket_url(node.url, extra_headers=[("Authorization", "Bearer no")]) as ws:
        reply = await Client(ws).request({"command": "publish", "messages": []})
        assert reply["error"] == "forbidden"
    node.shutdown()


async def test_python_api_publish(nursery: trio.Nursery) -> None:
    node = Hub(make_config())
    await nursery.start(node.run)
    async with open_websocket_url(node.url) as ws:
        client = Client(ws)
        await subscribe(client, streams=["transactions"], api_version=2)
        await node.publish(xrp_payment(2, 1))
        (got,) = await recv_stream(client, 1)
        assert got == xrp_payment(2, 1)
    node.shutdown()


async def test_simulator_source_publishes_live_ledgers(nursery: trio.Nursery) -> None:
    """rippled's order at a close: ledgerClosed, then that ledger's transactions."""
    node = Hub(make_config(source={"source": "simulator", "ledger_interval": 0.05, "seed": 7}))
    await nursery.start(node.run)
    async with open_websocket_url(node.url) as ws:
        client = Client(ws)
        await subscribe(client, streams=["ledger", "transactions"], api_version=2)
        ledgers: list[dict[str, Any]] = []
        txs: dict[int, int] = {}
        with trio.fail_after(10):
            while len(ledgers) < 4:
                message = await client.recv()
                if message["type"] == "ledgerClosed":
                    ledgers.append(message)
                    continue
                assert message["type"] == "transaction"
                assert message["validated"] is True
                if ledgers:
                    assert message["ledger_index"] == ledgers[-1]["ledger_index"]
                    txs[message["ledger_index"]] = txs.get(message["ledger_index"], 0) + 1
    indexes = [m["ledger_index"] for m in ledgers]
    assert indexes == list(range(indexes[0], indexes[0] + 4))
    for ledger in ledgers[:-1]:
        assert txs.get(ledger["ledger_index"], 0) == ledger["txn_count"]
    node.shutdown()


async def test_bystander_account_gets_nothing(publisher: Client, client: Client) -> None:
    await subscribe(client, accounts=[account(1234)], streams=["ledger"])
    await publish(publisher, [iou_payment(4, 2), ledger_closed(4)])
    (got,) = await recv_stream(client, 1)
    assert got["type"] == "ledgerClosed"
