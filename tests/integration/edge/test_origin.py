"""Admin is out of reach of web pages, end to end: real WebSocket handshakes and HTTP
requests from 127.0.0.1 that carry what a browser would (the rules themselves:
``tests/unit/wire/test_admission.py``; in a real browser:
``tests/interop/test_dashboard.py``).

The attack they stop: 127.0.0.1 is admin by the default ``[admin] ips``, and a page
from another origin, opened in a browser on the hub's machine, reaches it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
import trio

from hub import Hub
from tests.helpers.httpraw import fetch, http_client
from tests.helpers.hubs import ADMIN_PING, make_config, start_hub
from tests.helpers.samples import ledger_closed
from tests.helpers.wsraw import RawClient

TOKEN = "origin-test-token"


async def ws(node: Hub, *headers: tuple[str, str], host: str | None = None) -> RawClient:
    """A WebSocket from 127.0.0.1 with these extra headers (and this ``Host``)."""
    extra = [(name.encode(), value.encode()) for name, value in headers]
    return await RawClient.connect(
        "127.0.0.1", node.port or 0, extra_headers=extra, host_header=host
    )


async def ask(client: RawClient, request: dict[str, Any]) -> Any:
    await client.send_json(request)
    return await client.next_message()


@asynccontextmanager
async def subscriber(node: Hub) -> AsyncIterator[RawClient]:
    """A client subscribed to ``ledger`` (no Origin: a program, not a page)."""
    client = await ws(node)
    try:
        reply = await ask(client, {"command": "subscribe", "streams": ["ledger"]})
        assert reply["status"] == "success"
        yield client
    finally:
        await client.aclose()


async def delivered_next(node: Hub, listener: RawClient, index: int) -> int:
    """Publish ledger ``index`` as an admin and return the index of the next ledger the
    listener receives: ``index`` unless something forged reached it first."""
    async with http_client(node.port or 0) as http:
        reply = await http.request(
            "POST", "/", {"method": "publish", "params": [{"messages": [ledger_closed(index)]}]}
        )
    assert reply.json()["result"]["published"] == 1
    message = await listener.next_message()
    assert message["type"] == "ledgerClosed"
    return int(message["ledger_index"])


async def test_a_websocket_from_another_origin_is_not_admin(nursery: trio.Nursery) -> None:
    """The attack: a page on another local port connects from 127.0.0.1 and publishes."""
    node = await start_hub(nursery)
    port = node.port
    forged = {"command": "publish", "messages": [ledger_closed(666)]}
    async with subscriber(node) as listener:
        page = await ws(node, ("origin", f"http://127.0.0.1:{(port or 0) + 1}"))
        rebound = await ws(node, ("origin", f"http://evil.example:{port}"),
                           host=f"evil.example:{port}")  # fmt: skip
        hidden = await ws(node, ("origin", "null"))
        try:
            for stranger in (page, rebound, hidden):
                assert (await ask(stranger, {"command": "ping"}))["result"] == {}
                assert (await ask(stranger, forged))["error"] == "forbidden"
        finally:
            for client in (page, rebound, hidden):
                await client.aclose()
        assert await delivered_next(node, listener, 7) == 7
    assert node.node.history.complete_through() == 7
    # Programs (no Origin) and the dashboard's own origin stay admin.
    program = await ws(node)
    dashboard = await ws(node, ("origin", f"http://127.0.0.1:{port}"))
    by_name = await ws(node, ("origin", f"http://localhost:{port}"), host=f"localhost:{port}")
    try:
        for client in (program, dashboard, by_name):
            assert (await ask(client, {"command": "ping"}))["result"] == ADMIN_PING
    finally:
        for client in (program, dashboard, by_name):
            await client.aclose()


async def test_allowed_origins_and_the_token_are_admin_from_a_page(nursery: trio.Nursery) -> None:
    config = make_config(server={"allowed_origins": ["https://ops.example"]},
                         admin={"token": TOKEN})  # fmt: skip
    node = await start_hub(nursery, config)
    listed = await ws(node, ("origin", "https://ops.example"))
    token = await ws(node, ("origin", "https://elsewhere.example"),
                     ("authorization", f"Bearer {TOKEN}"))  # fmt: skip
    other = await ws(node, ("origin", "https://elsewhere.example"))
    try:
        assert (await ask(listed, {"command": "ping"}))["result"] == ADMIN_PING
        assert (await ask(token, {"command": "ping"}))["result"] == ADMIN_PING
        assert (await ask(other, {"command": "ping"}))["result"] == {}
    finally:
        for client in (listed, token, other):
            await client.aclose()


@pytest.mark.parametrize(
    "headers",
    [
        [("content-type", "text/plain;charset=UTF-8")],  # fetch(url, {body: string})
        [("content-type", "text/plain;charset=UTF-8"), ("origin", "http://127.0.0.1:1")],
        [("content-type", "application/x-www-form-urlencoded")],  # an HTML form, curl -d
        [("content-type", "multipart/form-data; boundary=b")],
        [],  # fetch with a Blob body of no type
        [("content-type", "application/json"), ("origin", "http://127.0.0.1:1")],
    ],
)
async def test_json_rpc_a_page_can_send_cannot_publish(
    nursery: trio.Nursery, headers: list[tuple[str, str]]
) -> None:
    """What ``fetch`` in ``no-cors`` mode or an HTML form can send; the admin's own
    ``application/json`` publish that follows is what the subscriber gets next."""
    node = await start_hub(nursery)
    forged = {"method": "publish", "params": [{"messages": [ledger_closed(666)]}]}
    body = msgspec.json.encode(forged)
    async with subscriber(node) as listener:
        reply = await fetch(node.port or 0, "POST", "/", body, headers)
        assert reply.status == 200
        assert reply.json()["result"]["error"] == "forbidden"
        ping = await fetch(node.port or 0, "POST", "/", b'{"method": "ping"}', headers)
        assert ping.json() == {"result": {"status": "success"}}  # not role: admin
        assert await delivered_next(node, listener, 8) == 8


async def test_json_rpc_with_a_rebinding_host_is_not_admin(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery)
    port = node.port or 0
    ping = {"method": "ping"}
    async with http_client(port, host_header=f"evil.example:{port}") as http:
        rebound = await http.request("POST", "/", ping, [("origin", f"http://evil.example:{port}")])
        bare = await http.request("POST", "/", ping)
    async with http_client(port, host_header=f"localhost:{port}") as http:
        local = await http.request("POST", "/", ping, [("origin", f"http://localhost:{port}")])
    assert rebound.json() == {"result": {"status": "success"}}
    assert bare.json() == {"result": {"status": "success"}}
    assert local.json() == {"result": {"role": "admin", "status": "success"}}
