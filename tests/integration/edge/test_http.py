"""The HTTP side: JSON-RPC (seed 001's shape), health, metrics, one port with WebSocket."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from tests.helpers.httpraw import exchange, fetch, http_client, rpc
from tests.helpers.hubs import ADMIN_PING, Client, make_config, start_hub, websocket
from tests.helpers.metrics import metric_samples
from tests.helpers.samples import ALICE, BOB, ledger_closed, xrp_payment

TOKEN = "s3cret-token"


async def test_websocket_json_rpc_health_metrics_and_page_share_one_port(
    nursery: trio.Nursery,
) -> None:
    node = await start_hub(nursery)
    async with websocket(node.url) as ws:
        client = Client(ws)
        assert (await client.request({"command": "ping", "id": 1}))["result"] == ADMIN_PING
        async with http_client(node.port) as http:  # keep-alive: four requests, one socket
            reply = await http.request("POST", "/", {"method": "ping", "params": [{}]})
            assert reply.json() == {"result": {"role": "admin", "status": "success"}}
            assert (await http.request("GET", "/health")).status == 200
            metrics = await http.request("GET", "/metrics")
            assert metrics.headers["content-type"].startswith("text/plain; version=")
            page = await http.request("GET", "/")
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            head = await http.request("HEAD", "/")
            assert head.body == b""
            assert head.headers["content-length"] == str(len(page.body))
        assert (await client.request({"command": "ping", "id": 2}))["id"] == 2


async def test_upgrade_split_across_many_reads(nursery: trio.Nursery) -> None:
    """h11 buffers the head across reads; wsproto then gets every byte of it."""
    node = await start_hub(nursery)
    handshake = (
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    payload = b'{"command":"ping","id":3}'
    frame = bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload  # masked, key 0
    stream = await trio.open_tcp_stream("127.0.0.1", node.port)
    try:
        for i in range(0, len(handshake), 7):
            await stream.send_all(handshake[i : i + 7])
            await trio.testing.wait_all_tasks_blocked()
        received = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in received:
                received += await stream.receive_some(65536)
            assert received.startswith(b"HTTP/1.1 101 ")
            await stream.send_all(frame)
            while b'"id":3' not in received:
                received += await stream.receive_some(65536)
    finally:
        await stream.aclose()


async def test_body_over_max_message_size_is_413(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(server={"port": 0, "max_message_size": 100}))
    async with http_client(node.port) as http:
        response = await http.request("POST", "/", b"{" + b" " * 200 + b"}")
        assert response.status == 413
        assert await http.closed_by_server()
    at_limit = {"method": "ping", "params": [{"pad": "x" * 50}]}
    assert (await fetch(node.port, "POST", "/", at_limit)).status == 200


async def test_malformed_http_is_400_and_closed(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery)
    answer = await exchange(node.port, b"GARBAGE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")


async def test_idle_keep_alive_connection_is_closed(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(server={"port": 0, "handshake_timeout": 0.2}))
    async with http_client(node.port) as http:
        assert (await http.request("GET", "/health")).status == 200
        assert await http.closed_by_server(timeout=5)


async def test_the_per_ip_limit_applies_to_every_socket_monitoring_included(
    nursery: trio.Nursery,
) -> None:
    """A socket over its address's limit is answered 429 before its request is read,
    so even ``/health``; a connection within the limit keeps being answered."""
    config = make_config(admin={"ips": []}, limits={"max_connections_per_ip": 1})
    node = await start_hub(nursery, config)
    async with http_client(node.port, source_ip="127.0.0.5") as first:
        assert (await first.request("POST", "/", {"method": "ping"})).status == 200
        refused = await fetch(node.port, "POST", "/", {"method": "ping"}, source_ip="127.0.0.5")
        assert refused.status == 429
        assert refused.text == "Too many connections from your address.\n"
        assert (await fetch(node.port, "GET", "/health", source_ip="127.0.0.5")).status == 429
        assert (await first.request("GET", "/health")).status == 200
        other = await fetch(node.port, "POST", "/", {"method": "ping"}, source_ip="127.0.0.6")
        assert other.status == 200
    assert node.node.stats.connections_refused == 2


async def test_a_full_hub_refuses_json_rpc_but_answers_monitoring(
    nursery: trio.Nursery,
) -> None:
    config = make_config(admin={"ips": []}, limits={"max_connections": 1})
    node = await start_hub(nursery, config)
    async with http_client(node.port, source_ip="127.0.0.5") as first:
        assert (await first.request("POST", "/", {"method": "ping"})).status == 200
        refused = await fetch(node.port, "POST", "/", {"method": "ping"}, source_ip="127.0.0.6")
        assert refused.status == 503
        assert refused.text == "The hub has reached its connection limit.\n"
        assert (await fetch(node.port, "GET", "/health", source_ip="127.0.0.6")).status == 200
        assert (await fetch(node.port, "GET", "/metrics", source_ip="127.0.0.6")).status == 200
    assert node.node.stats.connections_refused == 1


async def test_json_rpc_load_warns_then_answers_503(
    nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    # decay_window 32 and request cost 640: each request adds 20 to the balance.
    config = make_config(
        admin={"ips": []}, load={"warning": 100, "drop": 200, "costs": {"request": 640}}
    )
    node = await start_hub(nursery, config)
    warned_at = None
    async with http_client(node.port, source_ip="127.0.0.9") as http:
        for i in range(1, 10):
            reply = await http.request("POST", "/", {"method": "ping"})
            assert reply.status == 200
            if "warning" in reply.json():
                assert reply.json() == {"result": {"status": "success"}, "warning": "load"}
                warned_at = warned_at or i
        assert warned_at == 5
        dropped = await http.request("POST", "/", {"method": "ping"})
        assert dropped.status == 503
        assert dropped.text == "Server is overloaded\n"
        assert await http.closed_by_server()
    again = await rpc(node.port, "ping", source_ip="127.0.0.9")
    assert again.status == 503  # still over the threshold: refused before dispatch
    assert (await rpc(node.port, "ping", source_ip="127.0.0.10")).status == 200  # others fine
    assert node.node.stats.load_drops == 2
    # The balance is the IP's: its WebSocket connections draw on the same one.
    mock_clock.jump(32 * 3)
    assert (await rpc(node.port, "ping", source_ip="127.0.0.9")).status == 200


async def test_health_flips_to_503_when_ledgers_stop(
    nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    node = await start_hub(nursery, make_config(health={"max_ledger_age": 60}))

    async def health() -> tuple[int, Any]:
        response = await fetch(node.port, "GET", "/health")
        return response.status, response.json()

    status, body = await health()
    assert (status, body["status"], body["ledger_index"]) == (200, "ok", None)  # startup grace
    mock_clock.jump(60)
    status, body = await health()
    assert (status, body["status"]) == (503, "stale")  # never saw a ledger

    await node.publish(ledger_closed(5))
    await trio.testing.wait_all_tasks_blocked()
    status, body = await health()
    assert (status, body["status"], body["ledger_index"], body["ledger_age"]) == (200, "ok", 5, 0)

    mock_clock.jump(59.5)
    assert (await health())[0] == 200
    mock_clock.jump(0.5)
    status, body = await health()
    assert (status, body["status"], body["ledger_age"]) == (503, "stale", 60)

    await node.publish(ledger_closed(6))
    await trio.testing.wait_all_tasks_blocked()
    assert (await health())[0] == 200


async def test_stale_ledger_adds_clio_warning_2002_to_replies(
    nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    node = await start_hub(nursery, make_config(health={"max_ledger_age": 60}))
    await node.publish(ledger_closed(5))
    await trio.testing.wait_all_tasks_blocked()
    warning = [{"id": 2002, "message": "This server may be out of date"}]
    async with websocket(node.url) as ws:
        client = Client(ws)
        fresh = await client.request({"command": "ping", "id": 1})
        assert "warnings" not in fresh
        mock_clock.jump(61)
        stale = await client.request({"command": "ping", "id": 2})
        assert stale["warnings"] == warning
        error = await client.request({"command": "nope", "id": 3})
        assert error["status"] == "error"
        assert error["warnings"] == warning
        over_rpc = (await rpc(node.port, "ping")).json()
        assert over_rpc == {"result": {"role": "admin", "status": "success"}, "warnings": warning}
        await node.publish(ledger_closed(6))
        await trio.testing.wait_all_tasks_blocked()
        assert "warnings" not in await client.request({"command": "ping", "id": 4})


async def test_metrics_match_what_happened(nursery: trio.Nursery) -> None:
    config = make_config(admin={"ips": [], "token": TOKEN})
    node = await start_hub(nursery, config)
    auth = [("Authorization", f"Bearer {TOKEN}")]
    async with websocket(node.url) as ws2, websocket(node.url, extra_headers=auth) as ws1:
        v2, v1 = Client(ws2), Client(ws1)
        sub = {"command": "subscribe", "streams": ["ledger", "transactions"], "api_version": 2}
        assert (await v2.request(sub))["status"] == "success"
        sub = {"command": "subscribe", "streams": ["ledger"], "api_version": 1}
        assert (await v1.request(sub))["status"] == "success"
        assert (await v2.request({"command": "no_such"}))["error"] == "unknownCmd"
        assert (await rpc(node.port, "ping")).status == 200
        assert (await rpc(node.port, "ping", {"api_version": 7})).status == 200
        await node.publish(ledger_closed(10, txn_count=1))
        await node.publish(xrp_payment(10, 0, ALICE, BOB))
        assert (await v2.recv())["type"] == "ledgerClosed"
        assert (await v2.recv())["type"] == "transaction"
        assert (await v1.recv())["type"] == "ledgerClosed"
        await trio.testing.wait_all_tasks_blocked()

        response = await fetch(node.port, "GET", "/metrics")
        found = metric_samples(response.text)
        sent = node.node.stats.bytes_sent

    def value(name: str, **labels: str) -> float:
        return found[(name, tuple(sorted(labels.items())))]

    assert value("hub_connections", api_version="2", admin="false") == 1
    assert value("hub_connections", api_version="1", admin="true") == 1
    assert value("hub_subscriptions", stream="ledger") == 2
    assert value("hub_subscriptions", stream="transactions") == 1
    assert value("hub_subscriptions", stream="validations") == 0
    assert value("hub_connections_accepted_total") == 2
    assert value("hub_requests_total") == 5
    assert value("hub_errors_total", token="unknownCmd") == 1
    assert value("hub_errors_total", token="invalid_API_version") == 1
    assert value("hub_events_published_total") == 2
    assert value("hub_deliveries_total") == 3
    assert value("hub_sent_bytes_total") == sent > 0
    assert value("hub_outbound_queue_messages") == 0
    assert value("hub_ledger_index") == 10
    assert value("hub_healthy") == 1
    assert value("hub_load_warnings_total") == value("hub_load_drops_total") == 0
    assert value("hub_http_responses_total", route="jsonrpc", status="200") == 2
    # Three deliveries, written in two or three flushes, each observed once.
    count = value("hub_publish_to_write_seconds_count")
    assert 2 <= count <= 3
    assert value("hub_publish_to_write_seconds_bucket", le="+Inf") == count
    assert value("hub_source_info", source="none") == 1


async def test_a_failing_route_costs_one_response_not_the_hub(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await start_hub(nursery)

    def broken() -> bytes:
        raise RuntimeError("boom")

    monkeypatch.setattr(node.node.metrics, "render", broken)
    failed = await fetch(node.port, "GET", "/metrics")
    assert (failed.status, failed.text) == (500, "Internal error.\n")
    assert (await fetch(node.port, "GET", "/health")).status == 200
