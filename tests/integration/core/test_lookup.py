"""``ledger``, ``tx`` and ``ledger_entry`` against real hubs: answers byte-compatible
with the stream messages they came from at v1 and v2, the ledgerClosed-then-ask race
(XRPLF/clio#1697), not-found and forwarding, and a hub chain that mends a gap from a hub
upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import trio
import trio.testing

from hub import Hub
from hub.xrpl.ledgerdata import FEE_SETTINGS_INDEX
from tests.helpers.hubs import Client, eventually, make_config, websocket
from tests.helpers.samples import ledger_closed, xrp_payment

encode = msgspec.json.encode


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
