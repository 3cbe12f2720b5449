"""One client's input ends at most that client: deep JSON, wrong types, a bug met while
replying, an event that cannot be applied. The hub answers everyone else throughout."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest
import trio

from hub import Hub
from hub.core import methods as real
from hub.core.dispatch import Call, Methods
from hub.xrpl.events import Event
from tests.helpers.httpraw import fetch, rpc
from tests.helpers.hubs import ADMIN_PING, expect_close, make_config, open_client, start_hub
from tests.helpers.samples import ledger_closed

DEEP = 976
"""Deep enough to pass msgspec's own recursion guard and break any ``repr`` after it."""


def deep_subscribe(depth: int) -> str:
    return '{"command":"subscribe","streams":' + "[" * depth + "]" * depth + ',"id":1}'


async def test_a_deeply_nested_frame_is_refused_and_the_hub_serves_on(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    node = await start_hub(nursery)
    async with open_client(node) as neighbour, open_client(node) as attacker:
        assert (await neighbour.request({"command": "subscribe", "streams": ["ledger"]}))[
            "status"
        ] == "success"
        await attacker.send(deep_subscribe(DEEP))
        reply = await attacker.recv()
        assert reply["error"] == "badSyntax"
        assert "nested more than 64" in reply["error_message"]
        await node.publish(ledger_closed(7))
        assert (await neighbour.recv())["ledger_index"] == 7
        assert (await attacker.request({"command": "ping", "id": 2}))["result"] == ADMIN_PING
    nested = msgspec.json.decode("[" * 60 + "]" * 60)
    response = await rpc(node.port, "ledger", {"ledger_index": nested})
    assert response.json()["result"]["error"] == "invalidParams"
    deep_body = '{"method":"ping","params":[' + "[" * DEEP + "]" * DEEP + "]}"
    assert (await fetch(node.port, "POST", "/", deep_body.encode())).status == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("streams", [[[]], [{}], [1], [None], [True], ["ledger", ["ledger"]]])
async def test_stream_names_that_are_not_strings_are_malformed(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, streams: list[Any]
) -> None:
    node = await start_hub(nursery)
    async with open_client(node) as client:
        reply = await client.request({"command": "subscribe", "streams": streams, "id": 1})
        assert (reply["error"], reply["error_code"]) == ("malformedStream", 71)
        reply = await client.request({"command": "unsubscribe", "streams": streams, "id": 2})
        assert reply["error"] == "malformedStream"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def _table() -> Methods[Any]:
    table: Methods[Any] = Methods()
    table.register("ping")(real.ping)
    table.register("subscribe")(real.subscribe)

    @table.register("unencodable")
    def unencodable(call: Call[Any]) -> Any:
        return {"an object": object()}  # msgspec cannot encode it: the reply itself fails

    @table.register("recurse")
    def recurse(call: Call[Any]) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    return table


async def test_a_bug_while_replying_ends_that_connection_with_1011(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    node = Hub(make_config(), methods=_table())
    await nursery.start(node.run)
    async with open_client(node) as neighbour:
        await neighbour.request({"command": "subscribe", "streams": ["ledger"]})
        for _ in range(3):
            async with open_client(node) as victim:
                await victim.send({"command": "unencodable", "id": 1})
                assert await expect_close(victim) == 1011
        await node.publish(ledger_closed(3))
        assert (await neighbour.recv())["ledger_index"] == 3
        assert (await neighbour.request({"command": "ping"}))["result"] == ADMIN_PING
    assert node.node.stats.internal_errors == 3
    logged = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert logged
    assert all(r.exc_info for r in logged)


async def test_a_handler_crash_answers_internal_and_keeps_the_connection(
    nursery: trio.Nursery,
) -> None:
    node = Hub(make_config(), methods=_table())
    await nursery.start(node.run)
    async with open_client(node) as client:
        reply = await client.request({"command": "recurse", "id": 9})
        assert (reply["id"], reply["error"]) == (9, "internal")
        assert (await client.request({"command": "ping"}))["result"] == ADMIN_PING


async def test_crash_logs_are_throttled_and_cut_short(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """Fifty crashing requests of 100 kB each: a handful of lines, none of them long."""
    node = Hub(make_config(), methods=_table())
    await nursery.start(node.run)
    caplog.set_level(logging.INFO)
    async with open_client(node) as client:
        for i in range(50):
            reply = await client.request({"command": "recurse", "id": i, "pad": "x" * 100_000})
            assert reply["error"] == "internal"
    crashes = [r for r in caplog.records if "failed for" in r.getMessage()]
    assert 1 <= len(crashes) <= 5
    assert all(len(r.getMessage()) < 2_000 for r in crashes)


async def test_an_event_that_cannot_be_applied_costs_that_event_only(
    nursery: trio.Nursery,
) -> None:
    node = await start_hub(nursery)
    async with open_client(node) as client:
        await client.request({"command": "subscribe", "streams": ["ledger"]})
        broken = Event("ledgerClosed", {**ledger_closed(4), "unencodable": object()}, True, 4)
        await node.publish_batch([broken])
        await node.publish(ledger_closed(5))
        assert (await client.recv())["ledger_index"] == 5
    assert node.node.stats.events_rejected == 1


async def test_the_connection_survives_nothing_but_its_own_bug(nursery: trio.Nursery) -> None:
    """After a 1011 the hub accepts and serves new connections on the same port."""
    node = Hub(make_config(), methods=_table())
    await nursery.start(node.run)
    async with open_client(node) as victim:
        await victim.send({"command": "unencodable"})
        assert await expect_close(victim) == 1011
    async with open_client(node) as after:
        assert (await after.request({"command": "ping"}))["result"] == ADMIN_PING
