"""The reproducers of attacks that once hurt the hub, end to end on a real hub: each now
costs only the attacker, who is answered, warned, cut and turned away at the door,
while a neighbour on the same hub keeps its stream and its answers."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest
import trio
from trio_websocket import ConnectionClosed

from hub import Hub
from hub.core import methods as real
from hub.core.dispatch import Call, Methods
from tests.helpers.httpraw import fetch
from tests.helpers.hubs import client_from, expect_close, make_config
from tests.helpers.samples import account, ledger_closed

ATTACKER, NEIGHBOUR = "127.0.0.31", "127.0.0.32"


def flood_request() -> str:
    """About 1 MB: 25 000 valid accounts, far over the per-connection limit."""
    return msgspec.json.encode(
        {"command": "subscribe", "accounts": [account(i) for i in range(25_000)]}
    ).decode()


async def test_a_flood_of_huge_subscribes_is_warned_cut_and_turned_away(
    nursery: trio.Nursery,
) -> None:
    config = make_config(admin={"ips": []}, load={"warning": 1_000, "drop": 5_000})
    node = Hub(config)
    await nursery.start(node.run)
    frame = flood_request()
    async with client_from(node, NEIGHBOUR) as neighbour:
        await neighbour.request({"command": "subscribe", "streams": ["ledger"]})
        async with client_from(node, ATTACKER) as attacker:
            replies: list[dict[str, Any]] = []
            for i in range(200):
                try:
                    await attacker.send(frame)
                    replies.append(await attacker.recv())
                except ConnectionClosed:
                    break
                await node.publish(ledger_closed(i + 1))
                assert (await neighbour.recv())["ledger_index"] == i + 1
            else:
                pytest.fail("the flood was never cut")
        assert all(r["error"] in ("invalidParams", "slowDown") for r in replies)
        assert any(r.get("warning") == "load" for r in replies), "warned before it was cut"
        assert len(replies) < 60, "each request is charged for its kilobytes"
        assert (await upgrade_status(node.port, ATTACKER)) == 503
        pong = await neighbour.request({"command": "ping", "id": "still here"})
        assert pong["id"] == "still here"


async def upgrade_status(port: int, source: str) -> int:
    """The status a WebSocket upgrade from ``source`` is answered with."""
    headers = [
        ("connection", "upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ]
    return (await fetch(port, "GET", "/", headers=headers, source_ip=source)).status


async def test_failing_megabyte_requests_write_a_few_short_log_lines(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """Forty 1 MB requests that fail, half of them by crashing their handler: the log
    holds a handful of lines of at most a kilobyte or so, not forty megabytes."""
    table: Methods[Any] = Methods()
    table.register("subscribe")(real.subscribe)

    @table.register("crash")
    def crash(call: Call[Any]) -> Any:
        raise ValueError("a bug")

    caplog.set_level(logging.DEBUG)
    node = Hub(make_config(load={"warning": 1e12, "drop": 2e12}), methods=table)
    await nursery.start(node.run)
    pad = "x" * 900_000
    async with client_from(node, ATTACKER) as client:
        for i in range(20):
            reply = await client.request({"command": "crash", "pad": pad, "id": i}, timeout=20)
            assert reply["error"] == "internal"
            reply = await client.request({"command": "subscribe", "streams": pad}, timeout=20)
            assert reply["error"] == "invalidParams"
    hub_lines = [r for r in caplog.records if r.name.startswith("hub")]
    assert 1 <= len(hub_lines) <= 6
    assert sum(len(r.getMessage()) for r in hub_lines) < 10_000


async def test_a_client_cut_for_load_is_refused_at_its_next_handshake(
    nursery: trio.Nursery,
) -> None:
    node = Hub(make_config(admin={"ips": []}, load={"warning": 200, "drop": 400}))
    await nursery.start(node.run)
    async with client_from(node, ATTACKER) as attacker:
        for _ in range(1000):
            await attacker.send('{"command": "no_such_method"}')
        assert await expect_close(attacker, 10) == 1008
    assert (await upgrade_status(node.port, ATTACKER)) == 503
    async with client_from(node, NEIGHBOUR) as other:
        assert (await other.request({"command": "ping"}))["status"] == "success"
