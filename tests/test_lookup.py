"""``ledger``, ``tx`` and ``ledger_entry`` from the history, as rippled shapes them.

Sans-IO first (hub.lookup over a History fed like a live hub feeds it), then against
real hubs: answers byte-compatible with the stream messages they came from at v1 and
v2, the ledgerClosed-then-ask race (XRPLF/clio#1697), not-found and forwarding, and a
hub chain that mends a gap from a hub upstream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
import trio
import trio.testing

from hub import Hub
from hub.core.history import History, Tail
from hub.core.lookup import (
    Arrivals,
    fee_settings_result,
    ledger_query,
    ledger_result,
    tx_hash_of,
    tx_result,
    wants_fee_settings,
)
from hub.core.render import Frames, body_for
from hub.links.upstream import fees_of, ledger_messages
from hub.sources.simulator import LedgerSimulator
from hub.wire.errors import ERRORS, RPCError
from hub.xrpl import events
from hub.xrpl.ids import fill_ids
from hub.xrpl.ledgerdata import FEE_SETTINGS_INDEX, ripple_time_human, ripple_time_iso
from tests.conftest import Client, eventually, make_config, websocket
from tests.samples import ledger_closed, xrp_payment

encode = msgspec.json.encode


def sim_ledgers(count: int, seed: int = 3, txs: int = 6) -> list[list[dict[str, Any]]]:
    sim = LedgerSimulator(seed=seed, tx_per_ledger=txs)
    return [sim.close_ledger() for _ in range(count)]


def keep(history: History, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        event = events.parse(message)
        history.add(event, Frames(event))


def of(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == kind]


# --- parsing --------------------------------------------------------------------------


def test_ledger_query_accepts_rippleds_forms() -> None:
    assert ledger_query({"ledger_index": 5}).index == 5
    assert ledger_query({"ledger_index": "17"}).index == 17
    assert ledger_query({"ledger_index": "validated"}).shortcut == "validated"
    assert ledger_query({"ledger_index": "closed"}).shortcut == "closed"
    assert ledger_query({}).shortcut == "current"
    assert ledger_query({"ledger_index": ""}).shortcut == "current"
    assert ledger_query({"ledger_hash": "ab" * 32}).ledger_hash == "AB" * 32
    query = ledger_query({"ledger_index": 1, "transactions": True, "expand": True})
    assert (query.transactions, query.expand, query.beyond) == (True, True, None)
    assert ledger_query({"ledger_index": 1, "binary": True}).beyond == "binary"
    assert ledger_query({"ledger_index": 1, "accounts": True}).beyond == "accounts"
    assert ledger_query({"ledger_index": 1, "binary": False}).beyond is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ledger_index": 1, "ledger_hash": "A" * 64}, "Exactly one of"),
        ({"ledger_index": "newest"}, "not string or number"),
        ({"ledger_index": -1}, "not string or number"),
        ({"ledger_index": 2**32}, "not string or number"),
        ({"ledger_index": True}, "not string or number"),
        ({"ledger_index": 1.5}, "not string or number"),
        ({"ledger_hash": "XYZ"}, "'ledger_hash', not hex string"),
        ({"ledger_hash": 5}, "'ledger_hash', not hex string"),
        ({"ledger_index": 1, "transactions": "yes"}, "'transactions', not bool"),
    ],
)
def test_ledger_query_refuses_what_rippled_refuses(params: dict[str, Any], message: str) -> None:
    with pytest.raises(RPCError, match=message) as caught:
        ledger_query(params)
    assert caught.value.token == "invalidParams"


def test_tx_hash_of() -> None:
    assert tx_hash_of({"transaction": "ab" * 32}) == "AB" * 32
    assert tx_hash_of({"ctid": "C000000100000000"}) is None
    for bad in ({}, {"transaction": "nope"}, {"transaction": "A" * 64, "ctid": "C0"}):
        with pytest.raises(RPCError) as caught:
            tx_hash_of(bad)
        assert caught.value.token == "invalidParams"


def test_txn_not_found_is_rippleds() -> None:
    assert ERRORS["txnNotFound"] == (29, "Transaction not found.")


# --- answers from a History -----------------------------------------------------------


def test_ledger_v2_expanded_rebuilds_exactly_what_was_published() -> None:
    ledgers = sim_ledgers(3)
    history = History()
    for messages in ledgers:
        keep(history, messages)
    messages = ledgers[1]
    closed = of(messages, "ledgerClosed")[0]
    index = closed["ledger_index"]
    query = ledger_query({"ledger_index": index, "transactions": True, "expand": True})
    result = ledger_result(history, index, query, 2)
    assert result["ledger_hash"] == closed["ledger_hash"]
    assert result["ledger_index"] == index
    assert result["validated"] is True
    header = result["ledger"]
    assert header["ledger_index"] == index
    assert header["closed"] is True
    assert header["close_time"] == closed["ledger_time"]
    assert header["close_time_iso"] == ripple_time_iso(closed["ledger_time"])
    assert header["close_time_human"] == ripple_time_human(closed["ledger_time"])
    assert header["parent_hash"] == of(ledgers[0], "ledgerClosed")[0]["ledger_hash"]
    txs = of(messages, "transaction")
    assert len(header["transactions"]) == len(txs) == closed["txn_count"]
    for entry, tx in zip(header["transactions"], txs, strict=True):
        assert entry["hash"] == tx["hash"]
        assert encode(entry["meta"]) == encode(tx["meta"])
        assert entry["tx_json"] == {k: v for k, v in tx["tx_json"].items() if k != "date"}
        assert (entry["ledger_index"], entry["ledger_hash"]) == (index, closed["ledger_hash"])
        assert entry["validated"] is True
    # What a relay rebuilds from this answer is what was published.
    fees = fees_of(fee_settings_result(history, index)["node"])
    rebuilt = ledger_messages(header, fees)
    for message in rebuilt:  # what a ledger answer lacks, the relay adds (hub.xrpl.ids)
        fill_ids(message, 0)
    published = [m for m in messages if m["type"] != "validationReceived"]
    assert rebuilt[0] == {k: v for k, v in closed.items() if k != "validated_ledgers"}
    assert rebuilt[1:] == published[1:]


def test_ledger_v1_shapes_and_hashes_only() -> None:
    ledgers = sim_ledgers(2)
    history = History()
    for messages in ledgers:
        keep(history, messages)
    index = of(ledgers[0], "ledgerClosed")[0]["ledger_index"]
    txs = of(ledgers[0], "transaction")
    expanded = ledger_query({"ledger_index": index, "transactions": True, "expand": True})
    result = ledger_result(history, index, expanded, 1)
    assert result["ledger"]["ledger_index"] == str(index)
    assert "parent_hash" not in result["ledger"]  # the previous ledger is not held
    for entry, tx in zip(result["ledger"]["transactions"], txs, strict=True):
        v1 = body_for(events.parse(tx), 1)["transaction"]
        assert entry == {**{k: v for k, v in v1.items() if k != "date"}, "metaData": tx["meta"]}
        assert entry["hash"] == tx["hash"]
    hashes = ledger_query({"ledger_index": index, "transactions": True})
    assert ledger_result(history, index, hashes, 2)["ledger"]["transactions"] == [
        tx["hash"] for tx in txs
    ]
    header_only = ledger_query({"ledger_index": index})
    assert "transactions" not in ledger_result(history, index, header_only, 2)["ledger"]
    assert ledger_result(history, index + 5, header_only, 2) is None


def test_tx_v2_and_v1_with_ctid_only_when_the_message_has_one() -> None:
    history = History()
    plain = {k: v for k, v in xrp_payment(9, 0).items() if k != "ctid"}  # an older source's
    with_ctid = {**xrp_payment(9, 1), "ctid": "C000000900010000"}
    keep(history, [ledger_closed(9, 2), plain, with_ctid])
    v2 = tx_result(history, plain["hash"].lower(), 2)
    assert v2["tx_json"] == {**plain["tx_json"], "ledger_index": 9}
    assert encode(v2["meta"]) == encode(plain["meta"])
    assert (v2["hash"], v2["ledger_index"], v2["ledger_hash"]) == (
        plain["hash"], 9, plain["ledger_hash"]
    )  # fmt: skip
    assert v2["close_time_iso"] == plain["close_time_iso"]
    assert v2["validated"] is True
    assert "ctid" not in v2
    assert tx_result(history, with_ctid["hash"], 2)["ctid"] == "C000000900010000"
    v1 = tx_result(history, plain["hash"], 1)
    stream_v1 = body_for(events.parse(plain), 1)["transaction"]
    assert {k: v for k, v in v1.items() if k not in ("inLedger", "ledger_index", "meta",
            "validated")} == stream_v1  # fmt: skip
    assert v1["Amount"] == v1["DeliverMax"] == plain["tx_json"]["DeliverMax"]
    assert (v1["inLedger"], v1["ledger_index"], v1["hash"]) == (9, 9, plain["hash"])
    assert "ctid" not in v1
    assert tx_result(history, with_ctid["hash"], 1)["ctid"] == "C000000900010000"
    assert tx_result(history, "0" * 64, 2) is None


def test_fee_settings_from_the_ledger_closed() -> None:
    history = History()
    keep(history, [ledger_closed(4)])
    assert wants_fee_settings({"index": FEE_SETTINGS_INDEX.lower()})
    assert not wants_fee_settings({"index": "A" * 64})
    result = fee_settings_result(history, 4)
    assert result["node"]["LedgerEntryType"] == "FeeSettings"
    assert fees_of(result["node"]) == {"fee_base": 10, "reserve_base": 1_000_000,
                                       "reserve_inc": 200_000}  # fmt: skip
    assert fee_settings_result(history, 5) is None


def test_indexes_leave_with_the_history() -> None:
    history = History(ledgers=2)
    for index in (1, 2, 3):
        keep(history, [ledger_closed(index, 1), xrp_payment(index, 0)])
    gone, kept = ledger_closed(1), ledger_closed(3)
    assert history.closed(1) is None
    assert history.index_of(gone["ledger_hash"]) is None
    assert history.transaction(xrp_payment(1, 0)["hash"]) is None
    assert history.index_of(kept["ledger_hash"]) == 3
    assert history.transaction(xrp_payment(3, 0)["hash"]) is not None
    # Bounded by bytes as well: the oldest ledger leaves whole, indexes included.
    small = History(ledgers=100, max_bytes=3000)
    for index in range(1, 8):
        keep(small, [ledger_closed(index, 1), xrp_payment(index, 0)])
    floor = small.resumable_from
    assert floor is not None
    assert small.closed(floor) is None
    assert small.transaction(xrp_payment(floor, 0)["hash"]) is None
    assert small.closed(7) is not None


def test_tail_says_what_of_the_last_ledger_went_out() -> None:
    history = History()
    assert history.tail() is None
    keep(history, [ledger_closed(5, 3), xrp_payment(5, 0), xrp_payment(5, 1)])
    tail = history.tail()
    assert tail == Tail(5, frozenset({xrp_payment(5, 0)["hash"], xrp_payment(5, 1)["hash"]}),
                        False, False)  # fmt: skip
    keep(history, [xrp_payment(5, 2)])
    tail = history.tail()
    assert tail is not None
    assert tail.complete


async def test_arrivals_wake_a_lookup_when_its_ledger_completes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    history = History()
    arrivals = Arrivals(history)
    keep(history, [ledger_closed(7, 2), xrp_payment(7, 0)])
    assert arrivals.due(7)
    assert arrivals.due(8)  # the next ledger, not here yet
    assert not arrivals.due(10)  # too far ahead to wait for
    results: list[tuple[int, bool, float]] = []

    async def wait(index: int) -> None:
        results.append((index, await arrivals.wait(index, timeout=5), trio.current_time()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait, 7)
        nursery.start_soon(wait, 7)
        nursery.start_soon(wait, 8)
        await trio.sleep(1)
        keep(history, [xrp_payment(7, 1)])
    assert sorted(results) == [(7, True, 1.0), (7, True, 1.0), (8, False, 5.0)]
    assert not arrivals.due(7)


# --- against real hubs ----------------------------------------------------------------


@asynccontextmanager
async def streams(url: str, version: int) -> AsyncIterator[Client]:
    async with websocket(url, message_queue_size=10_000) as ws:
        client = Client(ws)
        reply = await client.request(
            {"command": "subscribe", "streams": ["ledger", "transactions"],
             "api_version": version}
        )  # fmt: skip
        assert reply["status"] == "success"
        yield client


async def one_ledger(client: Client) -> list[dict[str, Any]]:
    """A whole ledger off a stream: its ledgerClosed and txn_count transactions."""
    while (message := await client.recv(10))["type"] != "ledgerClosed":
        pass
    return [message, *[await client.recv(10) for _ in range(message["txn_count"])]]


async def test_ledger_and_tx_answer_byte_compatible_with_the_stream(nursery: trio.Nursery) -> None:
    node = Hub(make_config(source={"source": "simulator", "ledger_interval": 0.05, "seed": 2}))
    await nursery.start(node.run)
    async with streams(node.url, 1) as v1, streams(node.url, 2) as v2:
        got = {1: await one_ledger(v1), 2: await one_ledger(v2)}
        index = max(ledger[0]["ledger_index"] for ledger in got.values())
        for version, client in ((1, v1), (2, v2)):
            while got[version][0]["ledger_index"] < index:
                got[version] = await one_ledger(client)
    async with websocket(node.url) as ws:
        client = Client(ws)
        for version in (1, 2):
            stream = got[version]
            reply = await client.request(
                {"command": "ledger", "ledger_index": index, "transactions": True,
                 "expand": True, "api_version": version}
            )  # fmt: skip
            header = reply["result"]["ledger"]
            assert header["ledger_hash"] == stream[0]["ledger_hash"]
            key = "tx_json" if version == 2 else None
            for entry, message in zip(header["transactions"], stream[1:], strict=True):
                if key:
                    assert encode(entry["tx_json"]) == encode(
                        {k: v for k, v in message["tx_json"].items() if k != "date"}
                    )
                    assert encode(entry["meta"]) == encode(message["meta"])
                else:
                    fields = {k: v for k, v in message["transaction"].items() if k != "date"}
                    assert encode({k: entry[k] for k in fields}) == encode(fields)
                    assert encode(entry["metaData"]) == encode(message["meta"])
            for message in stream[1:]:
                tx_hash = message["hash"] if version == 2 else message["transaction"]["hash"]
                raw = await _raw(client, {"command": "tx", "transaction": tx_hash,
                                          "api_version": version})  # fmt: skip
                assert encode(message["meta"]) in raw  # the very bytes, in the same order
                answer = msgspec.json.decode(raw)["result"]
                if version == 2:
                    assert answer["tx_json"] == {**message["tx_json"], "ledger_index": index}
                    for field in ("hash", "ledger_hash", "close_time_iso"):
                        assert answer[field] == message[field]
                else:
                    assert {k: answer[k] for k in message["transaction"]} == message["transaction"]
                    assert answer["inLedger"] == index
                assert answer["validated"] is True
    node.shutdown()


async def _raw(client: Client, request: dict[str, Any]) -> bytes:
    await client.send(request)
    with trio.fail_after(5):
        data = await client.ws.get_message()
    return data.encode() if isinstance(data, str) else data


async def test_a_client_that_sees_ledger_closed_and_asks_at_once_gets_all_of_it(
    nursery: trio.Nursery,
) -> None:
    node = Hub(make_config())
    await nursery.start(node.run)
    async with streams(node.url, 2) as watcher, websocket(node.url) as ws:
        asker = Client(ws)
        await node.publish(ledger_closed(40, 2))
        assert (await watcher.recv())["ledger_index"] == 40
        await asker.send({"command": "ledger", "ledger_index": 40, "transactions": True,
                          "api_version": 2, "id": 1})  # fmt: skip
        await asker.send({"command": "ledger", "ledger_index": 41, "api_version": 2, "id": 2})
        await eventually(lambda: node.node.arrivals.waiting == 2)
        for seq in range(2):
            await node.publish(xrp_payment(40, seq))
        first = await asker.recv()
        assert first["id"] == 1
        assert first["result"]["ledger"]["transactions"] == [
            xrp_payment(40, seq)["hash"] for seq in range(2)
        ]
        await node.publish(ledger_closed(41))  # the next ledger, asked for before it came
        second = await asker.recv()
        assert second["id"] == 2
        assert second["result"]["ledger_index"] == 41
    node.shutdown()


async def test_outside_the_history_rippleds_not_found_errors(nursery: trio.Nursery) -> None:
    node = Hub(make_config())
    await nursery.start(node.run)
    for message in (ledger_closed(3, 1), xrp_payment(3, 0)):
        await node.publish(message)
    await eventually(lambda: node.node.history.complete(3))
    async with websocket(node.url) as ws:
        client = Client(ws)
        missing = await client.request({"command": "ledger", "ledger_index": 99})
        assert (missing["error"], missing["error_code"]) == ("lgrNotFound", 21)
        by_hash = await client.request({"command": "ledger", "ledger_hash": "B" * 64})
        assert by_hash["error"] == "lgrNotFound"
        current = await client.request({"command": "ledger"})
        assert "no open ledger" in current["error_message"]
        tx = await client.request({"command": "tx", "transaction": "C" * 64})
        assert (tx["error"], tx["error_code"], tx["error_message"]) == (
            "txnNotFound", 29, "Transaction not found."
        )  # fmt: skip
        binary = await client.request({"command": "ledger", "ledger_index": 3, "binary": True})
        assert binary["error"] == "notSupported"
        state = await client.request({"command": "ledger_entry", "index": "A" * 64})
        assert state["error"] == "notSupported"
        found = await client.request({"command": "ledger", "ledger_index": "validated",
                                      "transactions": True, "api_version": 2})  # fmt: skip
        assert found["result"]["ledger_index"] == 3
        assert found["result"]["ledger"]["transactions"] == [xrp_payment(3, 0)["hash"]]
        by_hash = await client.request(
            {"command": "ledger", "ledger_hash": ledger_closed(3)["ledger_hash"].lower()}
        )
        assert by_hash["result"]["ledger_index"] == 3
        fee = await client.request(
            {"command": "ledger_entry", "index": FEE_SETTINGS_INDEX, "ledger_index": 3}
        )
        assert fee["result"]["node"]["BaseFeeDrops"] == "10"
    node.shutdown()


async def start_relay(nursery: trio.Nursery, *urls: str) -> Hub:
    relay = Hub(make_config(source={"source": "upstream:" + ",".join(urls)}))
    await nursery.start(relay.run)
    assert relay.node.upstream is not None
    status = relay.node.upstream
    await eventually(lambda: status.connected)
    await eventually(
        lambda: relay.node.forwarder is not None and relay.node.forwarder.connected > 0
    )
    return relay


async def test_outside_its_history_a_relay_asks_its_upstream(nursery: trio.Nursery) -> None:
    origin = Hub(make_config())
    await nursery.start(origin.run)
    for message in (ledger_closed(5, 1), xrp_payment(5, 0)):
        await origin.publish(message)
    await eventually(lambda: origin.node.history.complete(5))
    relay = await start_relay(nursery, origin.url)  # joined after ledger 5
    async with websocket(relay.url) as ws:
        client = Client(ws)
        reply = await client.request({"command": "ledger", "ledger_index": 5, "id": 3})
        assert reply["forwarded"] is True
        assert reply["result"]["ledger_hash"] == ledger_closed(5)["ledger_hash"]
        tx = await client.request({"command": "tx", "transaction": xrp_payment(5, 0)["hash"],
                                   "api_version": 2})  # fmt: skip
        assert tx["forwarded"] is True
        assert tx["result"]["hash"] == xrp_payment(5, 0)["hash"]
        gone = await client.request({"command": "tx", "transaction": "D" * 64})
        assert (gone["error"], gone["forwarded"]) == ("txnNotFound", True)
    relay.shutdown()
    origin.shutdown()


class Proxy:
    """A TCP proxy on a port of 127.0.0.1 that the test cuts (every link dropped, the
    port closed: connections are refused) and restores (listening on the same port)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.port = 0
        self._restored = trio.Event()
        self._listening = trio.CancelScope()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        while True:
            with trio.CancelScope() as self._listening:
                listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
                self.port = listeners[0].socket.getsockname()[1]
                await trio.serve_listeners(self._serve, listeners, task_status=task_status)
            task_status = trio.TASK_STATUS_IGNORED
            await self._restored.wait()
            self._restored = trio.Event()

    def cut(self) -> None:
        self._listening.cancel()

    def restore(self) -> None:
        self._restored.set()

    async def _serve(self, client: trio.SocketStream) -> None:
        async with (
            client,
            await trio.open_tcp_stream("127.0.0.1", self.target) as server,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(_copy, client, server)
            nursery.start_soon(_copy, server, client)


async def _copy(source: trio.SocketStream, sink: trio.SocketStream) -> None:
    try:
        async for chunk in source:
            await sink.send_all(chunk)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    await sink.send_eof()


async def test_a_hub_chain_mends_a_gap_from_the_upstream_hubs_history(
    nursery: trio.Nursery,
) -> None:
    origin = Hub(make_config(source={"source": "simulator", "ledger_interval": 0.1, "seed": 8,
                                     "tx_per_ledger": 4}))  # fmt: skip
    await nursery.start(origin.run)
    assert origin.port is not None
    proxy = Proxy(origin.port)
    await nursery.start(proxy.run)
    relay = await start_relay(nursery, f"ws://127.0.0.1:{proxy.port}")
    assert relay.node.upstream is not None
    status = relay.node.upstream
    async with streams(relay.url, 2) as client, streams(origin.url, 2) as truth:
        before = await one_ledger(client)
        proxy.cut()
        await eventually(lambda: not status.connected)
        cut_at = origin.node.ledger.index
        assert cut_at is not None
        await eventually(lambda: (origin.node.ledger.index or 0) >= cut_at + 3)
        proxy.restore()
        await eventually(lambda: status.repaired_ledgers > 0, 10)
        got = [before, *[await one_ledger(client) for _ in range(8)]]
        wanted: dict[int, list[dict[str, Any]]] = {}
        while max(wanted, default=0) < got[-1][0]["ledger_index"]:
            ledger = await one_ledger(truth)
            wanted[ledger[0]["ledger_index"]] = ledger
    indexes = [ledger[0]["ledger_index"] for ledger in got]
    assert indexes == list(range(indexes[0], indexes[0] + len(indexes)))
    for ledger in got:
        assert [(m["type"], m.get("hash")) for m in ledger] == [
            (m["type"], m.get("hash")) for m in wanted[ledger[0]["ledger_index"]]
        ]
    assert status.repaired_ledgers >= 2
    assert status.missing_ledgers == 0
    relay.shutdown()
    origin.shutdown()
