"""Every field of every method, filled with arbitrary JSON, sent to a real hub on port 0
over WebSocket and JSON-RPC: a well-formed answer each time, never ``internal`` for a
client's mistake, while a neighbour keeps its stream."""

from __future__ import annotations

from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import Hub
from hub.wire.errors import ERRORS
from tests.helpers.fuzz import check_reply, requests
from tests.helpers.httpraw import http_client
from tests.helpers.hubs import Client, make_config, websocket
from tests.helpers.samples import ledger_closed

TOKEN = "fuzz-admin"


async def _over_the_wire(batch: list[dict[str, Any]]) -> None:
    config = make_config(admin={"ips": [], "token": TOKEN}, load={"warning": 1e12, "drop": 2e12})
    node = Hub(config)
    admin_headers = [("Authorization", f"Bearer {TOKEN}")]
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        async with (
            websocket(node.url) as plain_ws,
            websocket(node.url, extra_headers=admin_headers) as admin_ws,
            websocket(node.url) as neighbour_ws,
            http_client(node.port, "127.0.0.2") as rpc,
        ):
            neighbour = Client(neighbour_ws)
            await neighbour.request({"command": "subscribe", "streams": ["ledger"]})
            clients = (Client(plain_ws), Client(admin_ws))
            for i, body in enumerate(batch):
                await _both_ways(clients[i % 2], rpc, body, admin=bool(i % 2))
                marker = 1_000_000 + i
                await node.publish(ledger_closed(marker))
                await _sees(neighbour, marker)
            assert (await _answer(clients[0], {"command": "ping", "id": "end"}))["result"] == {}
        node.shutdown()


async def _both_ways(client: Client, rpc: Any, body: dict[str, Any], *, admin: bool) -> None:
    """The request over WebSocket, then over JSON-RPC (which may refuse it before
    dispatch with a 400, as rippled does for a ``method`` that is not a string)."""
    check_reply(await _answer(client, body), body)
    params = {k: v for k, v in body.items() if k not in ("command", "id")}
    envelope = {"method": body["command"], "params": [params], "id": body.get("id")}
    headers = [("content-type", "application/json")]
    if admin:
        headers.append(("authorization", f"Bearer {TOKEN}"))
    response = await rpc.request("POST", "/", envelope, headers, timeout=10)
    if response.status == 400:
        assert not isinstance(body["command"], str) or not body["command"]
        return
    assert response.status == 200, response
    result = response.json()["result"]
    assert result.get("error") != "internal", (body, result)
    assert result.get("error", "none") in {*ERRORS, "none"}


async def _answer(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    """The reply to ``body``, past any stream message the client subscribed to."""
    await client.send(body)
    while True:
        message: dict[str, Any] = await client.recv(10)
        if message.get("type") == "response":
            return message


async def _sees(neighbour: Client, marker: int) -> None:
    while True:
        message = await neighbour.recv(10)
        if message.get("type") == "ledgerClosed" and message.get("ledger_index") == marker:
            return


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(requests(), min_size=10, max_size=20))
def test_a_live_hub_answers_every_request_over_both_transports(
    batch: list[dict[str, Any]],
) -> None:
    trio.run(_over_the_wire, batch)
