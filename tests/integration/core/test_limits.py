"""Load, limits and slow consumers end to end: the offender is cut, nobody else notices."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    open_websocket_url,
    wrap_client_stream,
)

from hub import Hub
from tests.helpers.hubs import Client, client_from, make_config
from tests.helpers.samples import account, ledger_closed, xrp_payment
from tests.helpers.sockets import silent_subscriber

TOKEN = "t0ken"


ADMIN = [("Authorization", f"Bearer {TOKEN}")]


async def start(nursery: trio.Nursery, **sections: dict[str, Any]) -> Hub:
    sections.setdefault("admin", {"ips": [], "token": TOKEN})
    node = Hub(make_config(**sections))
    await nursery.start(node.run)
    return node


async def refusal(node: Hub, source_ip: str, headers: Any = ()) -> ConnectionRejected:
    """The rejection a new connection from ``source_ip`` gets (it must be refused)."""
    stream = await trio.open_tcp_stream("127.0.0.1", node.port, local_address=source_ip)
    found: list[BaseException] = []
    try:
        async with trio.open_nursery() as nursery:
            await wrap_client_stream(nursery, stream, "127.0.0.1", "/", extra_headers=list(headers))
    except* ConnectionRejected as group:
        found.extend(group.exceptions)
    finally:
        await stream.aclose()
    assert len(found) == 1, "the connection was accepted"
    rejected = found[0]
    assert isinstance(rejected, ConnectionRejected)
    return rejected


async def flood_until_closed(client: Client) -> list[Any]:
    """Send pings one at a time until the hub closes the socket; return every reply."""
    replies = []
    with trio.fail_after(30):
        try:
            while True:
                replies.append(await client.request({"command": "ping", "id": len(replies)}))
        except ConnectionClosed:
            return replies


async def test_warn_then_slow_down_then_close(nursery: trio.Nursery, mock_clock: Any) -> None:
    """On a stopped clock nothing decays, so the count of requests is exact."""
    node = await start(nursery, load={"warning": 100, "drop": 300})
    async with client_from(node, "127.0.0.1") as flooder:
        replies = await flood_until_closed(flooder)
        close = flooder.ws.closed
    warned = [i for i, r in enumerate(replies) if r.get("warning") == "load"]
    assert warned, "a client must be warned before it is dropped"
    assert all(r["status"] == "success" for r in replies[: warned[0]])
    assert all(r.get("warning") == "load" for r in replies[warned[0] :])
    last = replies[-1]
    assert last["error"] == "slowDown"
    assert last["error_code"] == 10
    assert last["id"] == len(replies) - 1
    assert close is not None
    assert close.code == 1008
    assert close.reason == "threshold exceeded"
    # 300 balance units at 20/32 per ping: the 480th ping crosses the threshold.
    assert len(replies) == 300 * 32 // 20
    assert node.node.stats.load_drops == 1


async def test_errors_carry_the_load_warning_too(nursery: trio.Nursery) -> None:
    node = await start(nursery, load={"warning": 50, "drop": 100_000})
    async with client_from(node, "127.0.0.1") as client:
        for _ in range(60):
            await client.request({"command": "nope"})
        reply = await client.request({"command": "nope", "id": 1})
        assert reply["error"] == "unknownCmd"
        assert reply["warning"] == "load"
        await client.send("not json")
        reply = await client.recv()
        assert reply["error"] == "badSyntax"
        assert reply["warning"] == "load"


async def test_malformed_requests_cost_more(nursery: trio.Nursery) -> None:
    node = await start(nursery)
    async with client_from(node, "127.0.0.1") as client:
        await client.request({"command": "ping"})
        after_ping = node.node.load.balance("127.0.0.1")
        await client.request({"command": "nope"})
        after_bad = node.node.load.balance("127.0.0.1")
    assert after_ping == pytest.approx(20 / 32, rel=0.01)
    assert after_bad - after_ping == pytest.approx(100 / 32, rel=0.01)


async def test_other_clients_see_nothing(nursery: trio.Nursery) -> None:
    node = await start(nursery, load={"warning": 100, "drop": 300})
    async with (
        open_websocket_url(node.url, extra_headers=ADMIN) as admin_ws,
        client_from(node, "127.0.0.2") as bystander,
        client_from(node, "127.0.0.1") as flooder,
    ):
        admin = Client(admin_ws)
        sub = await bystander.request({"command": "subscribe", "streams": ["ledger"]})
        assert sub["status"] == "success"
        async with trio.open_nursery() as inner:
            inner.start_soon(flood_until_closed, flooder)
            for i in range(1, 21):
                reply = await admin.request({"command": "publish", "messages": [ledger_closed(i)]})
                assert reply["status"] == "success"
        got = [(await bystander.recv())["ledger_index"] for _ in range(20)]
        assert got == list(range(1, 21))
        reply = await bystander.request({"command": "ping", "id": "still here"})
        assert reply == {"id": "still here", "status": "success", "type": "response", "result": {}}
    assert node.node.stats.load_drops == 1


async def test_sockets_from_one_ip_share_a_balance(nursery: trio.Nursery) -> None:
    node = await start(nursery)
    async with client_from(node, "127.0.0.3") as a, client_from(node, "127.0.0.3") as b:
        await a.request({"command": "ping"})
        await b.request({"command": "ping"})
    assert node.node.load.balance("127.0.0.3") == pytest.approx(40 / 32, rel=0.01)


async def test_connection_key_separates_sockets(nursery: trio.Nursery) -> None:
    node = await start(nursery, load={"key": "connection", "warning": 100, "drop": 300})
    async with client_from(node, "127.0.0.1") as a, client_from(node, "127.0.0.1") as b:
        await flood_until_closed(a)
        reply = await b.request({"command": "ping"})
        assert "warning" not in reply


async def test_admins_are_exempt(nursery: trio.Nursery) -> None:
    node = await start(nursery, load={"warning": 10, "drop": 20})
    async with open_websocket_url(node.url, extra_headers=ADMIN) as ws:
        admin = Client(ws)
        for i in range(200):
            reply = await admin.request({"command": "ping", "id": i})
            assert "warning" not in reply
    assert node.node.stats.load_warnings == 0


async def test_per_ip_connection_limit_is_429(nursery: trio.Nursery) -> None:
    node = await start(nursery, limits={"max_connections_per_ip": 2})
    async with client_from(node, "127.0.0.4"), client_from(node, "127.0.0.4"):
        rejected = await refusal(node, "127.0.0.4")
        assert rejected.status_code == 429
        assert rejected.body == b"Too many connections from your address.\n"
        async with client_from(node, "127.0.0.5") as other:
            assert (await other.request({"command": "ping"}))["status"] == "success"
        async with open_websocket_url(node.url, extra_headers=ADMIN) as ws:
            assert (await Client(ws).request({"command": "ping"}))["status"] == "success"
    assert node.node.stats.connections_refused == 1


async def test_hub_connection_limit_is_503(nursery: trio.Nursery) -> None:
    node = await start(nursery, limits={"max_connections": 2})
    async with client_from(node, "127.0.0.6"), client_from(node, "127.0.0.7"):
        rejected = await refusal(node, "127.0.0.1", ADMIN)
        assert rejected.status_code == 503


async def test_stalled_handshake_is_closed(nursery: trio.Nursery) -> None:
    node = await start(nursery, server={"port": 0, "handshake_timeout": 0.3})
    stream = await trio.open_tcp_stream("127.0.0.1", node.port)
    await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
    with trio.fail_after(5):
        assert await stream.receive_some(100) == b""
    await stream.aclose()


async def test_subscription_cap(nursery: trio.Nursery) -> None:
    node = await start(nursery, limits={"max_subscriptions_per_connection": 5})
    async with client_from(node, "127.0.0.1") as client:
        accounts = [account(i) for i in range(6)]
        reply = await client.request({"command": "subscribe", "accounts": accounts})
        assert reply["error"] == "invalidParams"
        assert "limit 5" in reply["error_message"]
        reply = await client.request({"command": "subscribe", "accounts": accounts[:5]})
        assert reply["status"] == "success"
        reply = await client.request({"command": "subscribe", "streams": ["ledger"]})
        assert reply["error"] == "invalidParams"


async def test_slow_consumer_is_closed_and_others_get_everything(nursery: trio.Nursery) -> None:
    node = await start(nursery, limits={"send_queue_bytes": 512 * 1024})
    silent = await silent_subscriber(node.port)
    async with (
        open_websocket_url(node.url, extra_headers=ADMIN) as admin_ws,
        client_from(node, "127.0.0.8") as reader,
    ):
        admin = Client(admin_ws)
        await reader.request({"command": "subscribe", "streams": ["transactions"]})
        seq = 0
        with trio.fail_after(60):
            while node.node.stats.slow_closes == 0:
                assert seq < 50_000, "the silent subscriber was never cut"
                batch = [xrp_payment(1, s) for s in range(seq, seq + 100)]
                reply = await admin.request({"command": "publish", "messages": batch})
                assert reply["status"] == "success"
                for expected in range(seq, seq + 100):
                    message = await reader.recv()
                    assert message["transaction"]["Sequence"] == expected
                seq += 100
        assert (await reader.request({"command": "ping", "id": 1}))["status"] == "success"
    assert node.node.stats.slow_closes == 1
    with trio.fail_after(10):
        while await silent.receive_some(1 << 20):
            pass
    await silent.aclose()


async def test_large_subscribe_costs_in_proportion(nursery: trio.Nursery) -> None:
    node = await start(nursery)
    async with client_from(node, "127.0.0.9") as client:
        reply = await client.request({"command": "subscribe", "streams": ["ledger"]})
        assert reply["status"] == "success"
        small = node.node.load.balance("127.0.0.9")
        request = {"command": "subscribe", "accounts": [account(i) for i in range(1000)]}
        reply = await client.request(request)
        assert reply["status"] == "success"
        big = node.node.load.balance("127.0.0.9") - small
    kilobytes = len(msgspec.json.encode(request)) // 1024 - 1
    assert small == pytest.approx((20 + 1) / 32, rel=0.01)
    assert big == pytest.approx((20 + 5 * 1000 + 5 * kilobytes) / 32, rel=0.01)


async def test_warned_and_dropped_clients_are_visible(nursery: trio.Nursery) -> None:
    node = await start(nursery, load={"warning": 100, "drop": 300})
    async with open_websocket_url(node.url, extra_headers=ADMIN) as ws:
        admin = Client(ws)
        async with client_from(node, "127.0.0.10") as flooder:
            await flooder.request({"command": "subscribe", "streams": ["ledger", "validations"]})
            await flood_until_closed(flooder)
        async with client_from(node, "127.0.0.11") as quiet:
            await quiet.request({"command": "subscribe", "streams": ["ledger"], "api_version": 2})
            info = (await admin.request({"command": "server_info"}))["result"]["info"]["hub"]
            listing = (await admin.request({"command": "connections"}))["result"]["connections"]
            public = (await quiet.request({"command": "server_info"}))["result"]["info"]["hub"]
            denied = await quiet.request({"command": "connections"})
    assert info["load"]["warnings"] >= 1
    assert info["load"]["drops"] == 1
    assert info["load"]["top_balances"][0]["client"] == "127.0.0.10"
    assert info["load"]["top_balances"][0]["balance"] >= 300
    assert "client" not in public["load"]["top_balances"][0]
    assert info["queues"] == {"messages": 0, "bytes": 0, "max_bytes": 0}
    assert denied["error"] == "forbidden"
    by_remote = {c["remote"]: c for c in listing}
    assert set(by_remote) == {"127.0.0.1", "127.0.0.11"}
    quiet_row = by_remote["127.0.0.11"]
    assert quiet_row["api_version"] == 2
    assert quiet_row["admin"] is False
    assert quiet_row["subscriptions"]["streams"] == ["ledger"]
    assert quiet_row["balance"] == 1
    assert by_remote["127.0.0.1"]["admin"] is True
