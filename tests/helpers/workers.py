"""``hub serve --workers 2``: its command line, clients spread over both workers, and what
they receive."""

from __future__ import annotations

import signal
from contextlib import AsyncExitStack
from typing import Any

import trio

from tests.helpers.hubs import Client, expect_close, websocket
from tests.helpers.processes import HubProcess
from tests.helpers.samples import ledger_closed, xrp_payment


def workers(*args: str) -> tuple[str, ...]:
    return (
        "serve",
        "--workers",
        "2",
        "--port",
        "0",
        "--drain-seconds",
        "0",
        "--drain-spread",
        "0",
        *args,
    )


async def info(client: Client) -> dict[str, Any]:
    reply = await client.request({"command": "server_info", "api_version": 2})
    return dict(reply["result"]["info"]["hub"])


async def clients_on_both_workers(stack: AsyncExitStack, url: str) -> list[Client]:
    """Clients until both workers hold some (the kernel picks; 40 tries is plenty)."""
    clients: list[Client] = []
    pids: set[int] = set()
    for _ in range(40):
        client = Client(await stack.enter_async_context(websocket(url)))
        figures = await info(client)
        assert figures["worker"]["workers"] == 2
        pids.add(figures["worker"]["pid"])
        clients.append(client)
        if len(pids) == 2 and len(clients) >= 6:
            return clients
    raise AssertionError(f"every connection went to one worker: {pids}")


async def subscribed(clients: list[Client]) -> None:
    for client in clients:
        reply = await client.request(
            {"command": "subscribe", "streams": ["ledger", "transactions"], "api_version": 2}
        )
        assert reply["status"] == "success"


async def stream(client: Client, count: int, timeout: float = 15) -> list[Any]:  # noqa: ASYNC109
    """The next ``count`` stream messages, as ledger indexes and transaction hashes."""
    got: list[Any] = []
    with trio.fail_after(timeout):
        while len(got) < count:
            message = await client.recv(timeout)
            if message.get("type") == "ledgerClosed":
                got.append(message["ledger_index"])
            elif message.get("type") == "transaction":
                got.append(message["hash"])
    return got


def batch(index: int) -> list[dict[str, Any]]:
    return [ledger_closed(index, 2), xrp_payment(index, 0), xrp_payment(index, 1)]


def keys(messages: list[dict[str, Any]]) -> list[Any]:
    return [m["ledger_index"] if m["type"] == "ledgerClosed" else m["hash"] for m in messages]


async def publish_everywhere(hub: HubProcess, url: str) -> None:
    async with AsyncExitStack() as stack:
        clients = await clients_on_both_workers(stack, url)
        await subscribed(clients)
        sent: list[dict[str, Any]] = []
        admin = Client(await stack.enter_async_context(websocket(url)))  # not subscribed
        for index in range(1, 31):
            reply = await admin.request({"command": "publish", "messages": batch(index)})
            assert reply["result"] == {"published": 3}, reply
            sent += batch(index)
        for client in clients:
            assert await stream(client, len(sent)) == keys(sent)
        # and nothing more: the next message is the answer to a ping
        for client in clients:
            assert (await client.request({"command": "ping", "id": "end"}))["id"] == "end"
        hub.proc.send_signal(signal.SIGTERM)
        for client in clients:
            assert await expect_close(client) == 1001
        assert await hub.exit_code(within=15) == 0
