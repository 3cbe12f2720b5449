"""xrpl-py, the XRPL Foundation's Python client, talks to the hub unmodified, over ws://
and wss://.

xrpl-py is asyncio and the hub is trio: the hub runs in this test's trio loop and xrpl-py
runs in its own ``asyncio.run`` on a worker thread (``trio.to_thread.run_sync``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import trio
from xrpl.asyncio.clients import AsyncWebsocketClient
from xrpl.models.requests import GenericRequest, Ping, ServerInfo
from xrpl.models.response import ResponseStatus

from hub import Hub
from hub.sources.simulator import LedgerSimulator
from hub.xrpl.accounts import affected_books, book_key, reversed_book
from tests.helpers.fake_rippled import BUILD_VERSION as FAKE_BUILD_VERSION
from tests.helpers.fake_rippled import start_relay
from tests.helpers.handover import HISTORY, drain_into_a_successor, first_hub
from tests.helpers.hubs import ADMIN_PING, eventually, make_config, start_hub
from tests.helpers.peers import in_asyncio, run_xrpl_py
from tests.helpers.samples import ALICE, GATEWAY, ledger_closed, offer_create
from tests.helpers.snippets import docs_code
from tests.helpers.testca import Certificates, tls_config


async def test_xrpl_py_over_wss(
    nursery: trio.Nursery, certs: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca_cert))
    node = await start_hub(nursery, tls_config(certs))

    async def session(client: AsyncWebsocketClient) -> Any:
        return (await client.request(ServerInfo())).result

    with trio.fail_after(15):
        result = await trio.to_thread.run_sync(in_asyncio, node.url, session)
    assert result["info"]["hub"]["connections"] == 1


ACCOUNT = "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh"


async def test_server_info_and_ping(hub: Hub) -> None:
    async def session(client: AsyncWebsocketClient) -> Any:
        return await client.request(ServerInfo()), await client.request(Ping())

    info, ping = await run_xrpl_py(hub, session)
    assert info.is_successful()
    assert info.status == ResponseStatus.SUCCESS
    assert isinstance(info.result["info"]["build_version"], str)
    assert info.result["info"]["hub"]["connections"] == 1
    assert isinstance(info.id, str)  # xrpl-py makes up string ids: echoed as strings
    assert "SERVER_INFO" in info.id.upper()
    assert ping.is_successful()
    assert ping.result == ADMIN_PING  # the client is on 127.0.0.1, an admin address


async def test_caller_ids_and_version_2(hub: Hub) -> None:
    async def session(client: AsyncWebsocketClient) -> Any:
        ping = await client.request(Ping(id="my-ping"))
        # xrpl-py sends api_version 2 unless told otherwise.
        version = await client.request(GenericRequest(method="version", id="v"))
        return ping, version

    ping, version = await run_xrpl_py(hub, session)
    assert ping.is_successful()
    assert ping.id == "my-ping"
    assert version.is_successful()
    assert version.result == {"version": {"first": 1, "last": 2}}


async def test_error_replies_parse(hub: Hub) -> None:
    async def session(client: AsyncWebsocketClient) -> Any:
        failed = await client.request(GenericRequest(method="no_such_method", account=ACCOUNT))
        after = await client.request(Ping())
        return failed, after

    failed, after = await run_xrpl_py(hub, session)
    assert not failed.is_successful()
    assert failed.status == ResponseStatus.ERROR
    assert failed.result["error"] == "unknownCmd"
    assert failed.result["error_code"] == 32
    assert failed.result["request"]["account"] == ACCOUNT
    assert after.is_successful()


async def test_many_concurrent_requests(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(server={"network_id": 21338}))

    async def session(client: AsyncWebsocketClient) -> Any:
        requests = [ServerInfo() if i % 2 else Ping() for i in range(40)]
        return await asyncio.gather(*(client.request(r) for r in requests))

    responses = await run_xrpl_py(node, session)
    assert len(responses) == 40
    assert all(r.is_successful() for r in responses)
    assert all(r.result["info"]["network_id"] == 21338 for r in responses[1::2])
    assert len({r.id for r in responses}) == 40


async def test_xrpl_py_stream_messages(nursery: trio.Nursery) -> None:
    """xrpl-py's ``async for message in client`` yields the hub's stream messages."""
    from xrpl.models.requests import StreamParameter, Subscribe

    node = Hub(make_config(source={"source": "simulator", "ledger_interval": 0.1, "seed": 5}))
    await nursery.start(node.run)

    async def session(client: AsyncWebsocketClient) -> Any:
        reply = await client.request(
            Subscribe(streams=[StreamParameter.LEDGER, StreamParameter.TRANSACTIONS])
        )
        ledgers, txs = [], []
        async for message in client:
            if message.get("type") == "ledgerClosed":
                ledgers.append(message)
                if len(ledgers) == 3:
                    break
            elif message.get("type") == "transaction":
                txs.append(message)
        return reply, ledgers, txs

    reply, ledgers, txs = await run_xrpl_py(node, session)
    node.shutdown()
    assert reply.is_successful()
    indexes = [m["ledger_index"] for m in ledgers]
    assert indexes == list(range(indexes[0], indexes[0] + 3))
    assert txs
    # xrpl-py asks for API v2: transactions come as tx_json plus a top-level hash.
    assert all("tx_json" in tx and len(tx["hash"]) == 64 for tx in txs)


async def test_xrpl_py_reconnect_loop_resumes(nursery: trio.Nursery) -> None:
    """A loop shaped like the README's: drop, reconnect with since_ledger, lose nothing."""
    from xrpl.models.requests import GenericRequest

    node = Hub(make_config(source={"source": "simulator", "ledger_interval": 0.05, "seed": 8}))
    await nursery.start(node.run)

    async def one_life(client: AsyncWebsocketClient, last: int | None, ledgers: int) -> Any:
        params: dict[str, Any] = {"streams": ["ledger", "transactions"]}
        if last is not None:
            params["since_ledger"] = last
        reply = await client.request(GenericRequest(method="subscribe", id="resume", **params))
        assert reply.is_successful(), reply
        seen: list[tuple[str, int]] = []
        index, left, complete = None, 0, 0
        async for message in client:
            kind = message.get("type")
            if kind == "ledgerClosed":
                index, left = message["ledger_index"], message["txn_count"]
                seen.append((kind, index))
                if left == 0:
                    last, complete = index, complete + 1
            elif kind == "transaction" and message.get("ledger_index") == index:
                seen.append((kind, message["ledger_index"]))
                left -= 1
                if left == 0:
                    last, complete = index, complete + 1
            if complete == ledgers:
                return last, seen, reply.result
        raise AssertionError("stream ended")

    first_last, first_seen, _ = await run_xrpl_py(node, lambda c: one_life(c, None, 2))
    closed = node.node.ledger.index
    assert closed is not None
    # Stay away while at least three more ledgers close.
    await eventually(lambda: (node.node.ledger.index or 0) >= closed + 3)
    last, seen, result = await run_xrpl_py(node, lambda c: one_life(c, first_last, 5))
    assert result["resumed_from"] == first_last + 1
    ledgers = [index for kind, index in seen if kind == "ledgerClosed"]
    assert ledgers == list(range(first_last + 1, first_last + 1 + len(ledgers)))
    assert last == ledgers[-1]
    assert first_seen


async def test_the_readme_xrpl_py_loop_resumes_across_a_drain(nursery: trio.Nursery) -> None:
    """The loop of docs/resume.md, verbatim: A drains while it holds ledgers 5 and 6
    whole; it reconnects to B and resumes from the very number A's close reason named (its own
    tracking, the library hiding the reason): ledger 7 comes, nothing twice."""
    code = docs_code("resume.md", "python", "async def follow(")
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/resume.md", "exec"), namespace)
    first = await first_hub(nursery)
    handled: list[int] = []

    class Enough(Exception):
        pass

    def handle(message: dict[str, Any]) -> None:
        handled.append(message["ledger_index"])
        if len(handled) == 3:
            raise Enough

    def run() -> None:
        with contextlib.suppress(Enough):
            asyncio.run(asyncio.wait_for(namespace["follow"](first.url, handle), 30))

    done = trio.Event()

    async def client() -> None:
        await trio.to_thread.run_sync(run)
        done.set()

    nursery.start_soon(client)
    await eventually(lambda: first.node.subscriptions.counts()["transactions"] == 1, timeout=15)
    for message in HISTORY:
        await first.publish(message)
    await eventually(lambda: len(handled) == 2)
    hint, _ = await drain_into_a_successor(nursery, first)
    assert hint == 6
    with trio.fail_after(30):
        await done.wait()
    assert handled == [5, 6, 7]


def _usd_book(issuer: str, **flags: Any) -> Any:
    from xrpl.models.currencies import XRP, IssuedCurrency
    from xrpl.models.requests import SubscribeBook

    usd = IssuedCurrency(currency="USD", issuer=issuer)
    return SubscribeBook(taker_gets=XRP(), taker_pays=usd, taker=ACCOUNT, **flags)


async def _collect_until_ledger(client: AsyncWebsocketClient, ledgers: int) -> list[Any]:
    txs, seen = [], 0
    async for message in client:
        if message.get("type") == "transaction":
            txs.append(message)
        elif message.get("type") == "ledgerClosed":
            seen += 1
            if seen == ledgers:
                return txs
    raise AssertionError("stream ended")


async def test_xrpl_py_book_stream_direction(hub: Hub) -> None:
    """xrpl-py's Subscribe with taker_gets XRP and taker_pays USD receives the ask
    (TakerGets USD) and not the bid (TakerGets XRP), as Book_test.cpp pins it."""
    from xrpl.models.requests import StreamParameter, Subscribe

    usd = {"currency": "USD", "issuer": GATEWAY, "value": "100"}
    ask = offer_create(5, 1, ALICE, usd, "700000000")
    bid = offer_create(5, 2, ALICE, "75000000", usd)

    async def session(client: AsyncWebsocketClient) -> Any:
        reply = await client.request(
            Subscribe(books=[_usd_book(GATEWAY)], streams=[StreamParameter.LEDGER])
        )
        await client.send(GenericRequest(method="publish", messages=[ask, bid, ledger_closed(6)]))
        return reply, await _collect_until_ledger(client, 1)

    reply, txs = await run_xrpl_py(hub, session)
    assert reply.is_successful()
    assert reply.result == {}
    assert [tx["hash"] for tx in txs] == [ask["hash"]]


async def test_xrpl_py_book_snapshot_on_the_simulator(nursery: trio.Nursery) -> None:
    from xrpl.models.requests import Subscribe

    seed = 43
    config = make_config(
        source={"source": "simulator", "ledger_interval": 0.3, "seed": seed, "tx_per_ledger": 30}
    )
    node = await start_hub(nursery, config)
    await eventually(lambda: node.node.ledger.index is not None, timeout=20)
    issuer = LedgerSimulator(seed=seed).issuers[0]

    async def session(client: AsyncWebsocketClient) -> Any:
        one = await client.request(Subscribe(books=[_usd_book(issuer, snapshot=True)]))
        both = await client.request(Subscribe(books=[_usd_book(issuer, snapshot=True, both=True)]))
        async for message in client:
            if message.get("type") == "transaction":
                return one, both, message
        raise AssertionError("stream ended")

    one, both, tx = await run_xrpl_py(node, session)
    node.shutdown()
    assert one.is_successful()
    assert one.result["offers"]
    assert all(isinstance(offer["TakerGets"], str) for offer in one.result["offers"])
    assert set(both.result) == {"bids", "asks"}
    assert all(isinstance(offer["TakerGets"], str) for offer in both.result["bids"])
    assert all(isinstance(offer["TakerPays"], str) for offer in both.result["asks"])
    key = book_key({"currency": "XRP"}, {"currency": "USD", "issuer": issuer})
    assert {key, reversed_book(key)} & affected_books(tx["meta"])


async def test_xrpl_py_autofill_adds_network_id_through_a_relay(nursery: trio.Nursery) -> None:
    from xrpl.asyncio.transaction import autofill
    from xrpl.models.transactions import Payment

    _, relay = await start_relay(nursery, network_id=21338, ledger=90)

    async def session(client: AsyncWebsocketClient) -> Any:
        payment = Payment(account=ACCOUNT, destination=ALICE, amount="1000")
        return await autofill(payment, client), client.network_id, client.build_version

    tx, network, version = await run_xrpl_py(relay, session)
    assert (network, version) == (21338, FAKE_BUILD_VERSION)
    assert tx.network_id == 21338
    assert tx.sequence == 7  # the upstream's account_info, forwarded
    assert tx.fee == "10"  # the upstream's fee (open_ledger_fee)
    assert tx.last_ledger_sequence == 90 + 20


async def test_xrpl_py_reads_the_hubs_own_version_as_rippled(nursery: trio.Nursery) -> None:
    from xrpl.asyncio.transaction import autofill
    from xrpl.models.transactions import Payment

    node = await start_hub(nursery, make_config(server={"network_id": 21338}))

    async def session(client: AsyncWebsocketClient) -> Any:
        payment = Payment(
            account=ACCOUNT,
            destination=ALICE,
            amount="1000",
            sequence=3,
            fee="12",
            last_ledger_sequence=99,
        )
        return await autofill(payment, client)

    assert (await run_xrpl_py(node, session)).network_id == 21338
