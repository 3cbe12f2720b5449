"""The upstream relay: ordering, fail-over, gap repair, forwarding, record and replay."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import trio
from trio_websocket import open_websocket_url

from hub import Hub
from hub.core.history import Tail
from hub.links.upstream import (
    Relay,
    UpstreamStatus,
    run_upstream,
)
from hub.sources.simulator import LedgerSimulator
from tests.helpers.fake_rippled import FakeRippled
from tests.helpers.hubs import Client, eventually, make_config, subscriber
from tests.helpers.programs import free_port
from tests.helpers.samples import ledger_closed, xrp_payment


async def start_relay(nursery: trio.Nursery, *urls: str, **sections: Any) -> Hub:
    source = {"source": "upstream:" + ",".join(urls)}
    node = Hub(make_config(source=source, **sections))
    await nursery.start(node.run)
    return node


async def publish(node: Hub, messages: list[dict[str, Any]]) -> None:
    async with open_websocket_url(node.url) as ws:
        reply = await Client(ws).request({"command": "publish", "messages": messages})
        assert reply["status"] == "success", reply


async def wait_connected(node: Hub, reconnects: int = 0) -> None:
    assert node.node.upstream is not None
    upstream = node.node.upstream
    await eventually(lambda: upstream.connected and upstream.reconnects >= reconnects)


async def test_chain_of_three_hubs_keeps_order(nursery: trio.Nursery) -> None:
    origin = Hub(make_config())
    await nursery.start(origin.run)
    middle = await start_relay(nursery, origin.url)
    edge = await start_relay(nursery, middle.url)
    await wait_connected(middle)
    await wait_connected(edge)
    sent = [
        m for i in range(1, 6) for m in [ledger_closed(i), *(xrp_payment(i, s) for s in range(5))]
    ]
    async with subscriber(edge, ["ledger", "transactions"]) as client:
        await publish(origin, sent)
        got = [await client.recv() for _ in sent]
    assert got == sent
    info = await _server_info(edge)
    assert info["hub"]["upstream"]["connected"] is True
    assert info["hub"]["upstream"]["last_ledger"] == 5


async def _server_info(node: Hub) -> Any:
    async with open_websocket_url(node.url) as ws:
        return (await Client(ws).request({"command": "server_info"}))["result"]["info"]


async def test_upstream_restart_gap_is_repaired(nursery: trio.Nursery) -> None:
    sim = LedgerSimulator(seed=5, tx_per_ledger=6)
    ledgers = [
        [m for m in sim.close_ledger() if m["type"] != "validationReceived"] for _ in range(8)
    ]
    port = free_port()
    first = FakeRippled(port=port)
    relay = await start_relay(nursery, f"ws://127.0.0.1:{port}")
    async with subscriber(relay, ["ledger", "transactions"]) as client:
        async with trio.open_nursery() as upstream_nursery:
            await first.start(upstream_nursery)
            await wait_connected(relay)
            for messages in ledgers[:3]:
                first.remember(messages)
                await publish(first.hub, messages)
            expected = [m for ms in ledgers[:3] for m in ms if m["type"] != "bookChanges"]
            got = [await client.recv() for _ in expected]
            assert got == expected
            first.hub.shutdown()
        # The upstream comes back on the same port having closed ledgers 4-6 meanwhile.
        second = FakeRippled(port=port)
        for messages in ledgers:
            second.remember(messages)
        await second.start(nursery)
        await wait_connected(relay, reconnects=1)
        await publish(second.hub, ledgers[6])
        expected = [m for ms in ledgers[3:7] for m in ms if m["type"] != "bookChanges"]
        got = [await client.recv(timeout=10) for _ in expected]
    assert [m["type"] for m in got] == [m["type"] for m in expected]
    for g, e in zip(got, expected, strict=True):
        if e["type"] == "ledgerClosed" and e["ledger_index"] != ledgers[6][0]["ledger_index"]:
            assert g == {k: v for k, v in e.items() if k != "validated_ledgers"}
        else:
            assert g == e
    assert "ledger" in second.asked
    assert relay.node.upstream is not None
    assert relay.node.upstream.repaired_ledgers == 3


async def test_ledger_the_upstream_no_longer_has_is_a_logged_gap(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    sim = LedgerSimulator(seed=6, tx_per_ledger=2)
    ledgers = [[m for m in sim.close_ledger() if m["type"] == "ledgerClosed"] for _ in range(5)]
    fake = FakeRippled()
    for messages in ledgers:
        fake.remember(messages)
    fake.forget(ledgers[2][0]["ledger_index"])
    await fake.start(nursery)
    relay = await start_relay(nursery, fake.url)
    await wait_connected(relay)
    async with subscriber(relay, ["ledger"]) as client:
        await publish(fake.hub, ledgers[0])
        assert (await client.recv())["ledger_index"] == ledgers[0][0]["ledger_index"]
        await publish(fake.hub, ledgers[4])
        got = [(await client.recv())["ledger_index"] for _ in range(3)]
    indexes = [messages[0]["ledger_index"] for messages in ledgers]
    assert got == [indexes[1], indexes[3], indexes[4]]
    assert relay.node.upstream is not None
    assert relay.node.upstream.missing_ledgers == 1
    assert f"ledger {indexes[2]} is unavailable" in caplog.text


async def test_a_relay_started_from_a_tail_finishes_that_ledger_then_mends_on(
    nursery: trio.Nursery,
) -> None:
    """A new cluster leader: the stream holds ledger 0's close and first two
    transactions; the relay publishes the rest of ledger 0, all of ledger 1 (missed),
    then ledger 2 live, and nothing twice."""
    sim = LedgerSimulator(seed=12, tx_per_ledger=5)
    ledgers = [[m for m in sim.close_ledger() if m["type"] == "ledgerClosed" or
                m["type"] == "transaction"] for _ in range(3)]  # fmt: skip
    fake = FakeRippled()
    for messages in ledgers:
        fake.remember(messages)
    await fake.start(nursery)
    first = ledgers[0]
    done = [m["hash"] for m in first[1:3]]
    tail = Tail(first[0]["ledger_index"], frozenset(done), False, False)
    send, receive = trio.open_memory_channel[Any](1000)
    status = UpstreamStatus([fake.url])
    await nursery.start(partial(run_upstream, send, Relay([fake.url]), status, start=tail))
    await eventually(lambda: status.connected)
    await publish(fake.hub, ledgers[2])
    expected = first[3:] + ledgers[1] + ledgers[2]
    got = [await receive.receive() for _ in expected]
    assert [(m["type"], m.get("hash")) for m in got] == [
        (m["type"], m.get("hash")) for m in expected
    ]
    assert status.repaired_ledgers == 2  # the rest of ledger 0, and ledger 1
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()


async def test_a_relay_mends_up_to_the_upstreams_latest_ledger_without_waiting(
    nursery: trio.Nursery,
) -> None:
    """The ``subscribe`` answer names the upstream's latest ledger: what was missed up to
    it is published at once, not at the next close, and nothing of it twice."""
    sim = LedgerSimulator(seed=13, tx_per_ledger=4)
    # Rebuilt ledgers carry a bookChanges only when offers crossed.
    ledgers = [[m for m in sim.close_ledger() if m["type"] != "validationReceived"
                and m.get("changes") != []] for _ in range(4)]  # fmt: skip
    fake = FakeRippled()
    for messages in ledgers:
        fake.remember(messages)
    await fake.start(nursery)
    await publish(fake.hub, ledgers[2][:1])  # the upstream's latest ledger is now ledger 2
    await eventually(lambda: fake.hub.node.ledger.index == ledgers[2][0]["ledger_index"])
    send, receive = trio.open_memory_channel[Any](1000)
    status = UpstreamStatus([fake.url])
    tail = Tail(ledgers[0][0]["ledger_index"])
    await nursery.start(partial(run_upstream, send, Relay([fake.url]), status, start=tail))
    mended = ledgers[1] + ledgers[2]
    with trio.fail_after(10):  # before anything is published live
        got = [await receive.receive() for _ in mended]
    assert [(m["type"], m.get("hash")) for m in got] == [(m["type"], m.get("hash")) for m in mended]
    await publish(fake.hub, ledgers[2][1:] + ledgers[3])  # late live rest of 2, then 3
    with trio.fail_after(10):
        got = [await receive.receive() for _ in ledgers[3]]
    assert [m.get("hash") for m in got] == [m.get("hash") for m in ledgers[3]]
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()


async def test_failover_to_the_next_url(nursery: trio.Nursery) -> None:
    backup = Hub(make_config())
    await nursery.start(backup.run)
    dead = "ws://127.0.0.1:1"
    relay = await start_relay(nursery, dead, backup.url)
    await wait_connected(relay)
    assert relay.node.upstream is not None
    assert relay.node.upstream.url == backup.url
    assert relay.node.upstream.reconnects >= 1


@pytest.mark.parametrize("request_id", [7, "seven", {"n": [7]}, None, 7.5, True, "absent"])
async def test_forwarded_reply_keeps_the_client_id(nursery: trio.Nursery, request_id: Any) -> None:
    fake = FakeRippled()
    await fake.start(nursery)
    relay = await start_relay(nursery, fake.url)
    await wait_connected(relay)
    await eventually(
        lambda: relay.node.forwarder is not None and relay.node.forwarder.connected > 0
    )
    request: dict[str, Any] = {"command": "account_info", "account": "rA", "api_version": 2}
    if request_id != "absent":
        request["id"] = request_id
    async with open_websocket_url(relay.url) as ws:
        reply = await Client(ws).request(request)
    assert reply["forwarded"] is True
    assert reply["status"] == "success"
    assert reply["result"]["account_data"]["Account"] == "rA"
    assert reply["result"]["seen_api_version"] == 2
    assert reply["api_version"] == 2
    if request_id == "absent":
        assert "id" not in reply
    else:
        assert reply["id"] == request_id
        assert type(reply["id"]) is type(request_id)


async def test_forwarded_errors_and_admin_methods(nursery: trio.Nursery) -> None:
    fake = FakeRippled()
    await fake.start(nursery)
    relay = await start_relay(nursery, fake.url, admin={"ips": []})
    await wait_connected(relay)
    await eventually(
        lambda: relay.node.forwarder is not None and relay.node.forwarder.connected > 0
    )
    async with open_websocket_url(relay.url) as ws:
        client = Client(ws)
        bad = await client.request(
            {"command": "account_info", "account": "rBad", "id": 1, "secret": "s"}
        )
        peers = await client.request({"command": "peers", "id": 2})
    assert bad["error"] == "actMalformed"
    assert bad["forwarded"] is True
    assert bad["id"] == 1
    assert bad["request"] == {
        "command": "account_info",
        "account": "rBad",
        "id": 1,
        "secret": "<masked>",
    }
    assert peers["error"] == "forbidden"
    assert "forwarded" not in peers
    assert "peers" not in fake.asked


async def test_without_upstream_unknown_stays_unknown(client: Client) -> None:
    reply = await client.request({"command": "account_info", "account": "rA"})
    assert reply["error"] == "unknownCmd"


async def test_an_upgrade_nobody_answers_times_out(autojump_clock: Any) -> None:
    """A server that accepts TCP and never answers the upgrade (a proxy with no backend)
    must not hang a relay or a forwarding link: ``connect`` gives up."""
    from trio_websocket import HandshakeError

    from hub.links.connect import connect

    accepted = trio.Event()

    async def silent(stream: trio.SocketStream) -> None:
        accepted.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        start = trio.current_time()
        with pytest.raises(HandshakeError, match="no answer to the upgrade"):
            async with connect(f"ws://127.0.0.1:{port}", handshake_timeout=3):
                pass
        assert accepted.is_set()
        assert trio.current_time() - start == pytest.approx(3, abs=0.1)
        nursery.cancel_scope.cancel()
