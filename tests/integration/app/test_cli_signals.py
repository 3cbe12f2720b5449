"""Signals to a real ``hub serve``, as operators expect (gunicorn's convention): SIGINT
stops at once, SIGTERM drains first; with ``--workers``, the parent passes either on."""

from __future__ import annotations

import re
import signal
from contextlib import AsyncExitStack

import trio
from trio_websocket import ConnectionClosed

from tests.helpers.httpraw import fetch
from tests.helpers.hubs import Client, eventually, websocket
from tests.helpers.processes import hub_process
from tests.helpers.workers import clients_on_both_workers
from tests.helpers.wsraw import open_raw

LONG = "60"  # a drain no test waits out
RESUME = re.compile(r"^server shutting down; resume with since_ledger (\d+)$")


async def closed_with(client: Client, timeout: float) -> tuple[int, str]:  # noqa: ASYNC109
    """Read (and drop) messages until the hub closes; its close code and reason."""
    with trio.fail_after(timeout):
        try:
            while True:
                await client.ws.get_message()
        except ConnectionClosed as exc:
            return exc.reason.code, exc.reason.reason or ""


async def a_ledger(client: Client) -> int:
    """Subscribe to ``ledger`` and wait for a ledger to close; its index."""
    reply = await client.request({"command": "subscribe", "streams": ["ledger"], "id": 1})
    assert reply["status"] == "success"
    while True:
        message = await client.recv(timeout=10)
        if message.get("type") == "ledgerClosed":
            return int(message["ledger_index"])


async def test_sigint_closes_every_client_at_once_with_the_resume_point() -> None:
    args = ("serve", "--port", "0", "--ledger-interval", "0.2", "--drain-seconds", LONG)
    async with hub_process(*args, "--drain-spread", LONG) as hub:
        url, _, _ = await hub.listening()
        async with websocket(url) as ws, open_raw(url) as silent:
            client = Client(ws)
            seen = await a_ledger(client)
            hub.proc.send_signal(signal.SIGINT)
            code, reason = await closed_with(client, timeout=3)
            assert code == 1001
            match = RESUME.match(reason)
            assert match, reason
            assert int(match[1]) >= seen - 1
            # A client that never answers the close does not hold the exit up.
            assert (await silent.next_close(timeout=3)).code == 1001
            assert await hub.exit_code(within=3) == 0
    assert b"SIGINT: closing every connection now, then shutting down" in hub.stderr
    assert b"Traceback" not in hub.stderr


async def test_sigterm_drains_for_drain_seconds_serving_meanwhile() -> None:
    drain = 1.5
    args = ("serve", "--port", "0", "--source", "none", "--drain-spread", "0")
    async with hub_process(*args, "--drain-seconds", str(drain)) as hub:
        url, _, port = await hub.listening()
        async with websocket(url) as ws:
            client = Client(ws)
            sent = trio.current_time()
            hub.proc.send_signal(signal.SIGTERM)
            # Draining: the load balancer is told, the connected client is still served.
            with trio.fail_after(2):  # once the hub has taken the signal
                while (health := await fetch(port, "GET", "/health")).status != 503:  # noqa: ASYNC110
                    await trio.sleep(0.01)
            assert health.json()["status"] == "draining"
            assert (await client.request({"command": "ping", "id": 2}))["status"] == "success"
            code, reason = await closed_with(client, timeout=drain + 3)
            assert trio.current_time() - sent >= drain
            assert code == 1001
            assert reason.startswith("server shutting down")
        assert await hub.exit_code(within=3) == 0
    assert b"SIGTERM: draining, then shutting down" in hub.stderr


async def test_a_sigint_during_a_drain_closes_at_once() -> None:
    args = ("serve", "--port", "0", "--source", "none", "--drain-seconds", LONG)
    async with hub_process(*args) as hub:
        url, _, _ = await hub.listening()
        async with websocket(url) as ws:
            client = Client(ws)
            hub.proc.send_signal(signal.SIGTERM)
            await eventually(lambda: b"SIGTERM: draining" in hub.stderr)
            assert (await client.request({"command": "ping", "id": 2}))["status"] == "success"
            hub.proc.send_signal(signal.SIGINT)
            assert (await closed_with(client, timeout=3))[0] == 1001
        assert await hub.exit_code(within=3) == 0
    assert b"SIGINT: closing every connection now, then shutting down" in hub.stderr


async def test_sigint_to_the_parent_of_workers_stops_them_at_once() -> None:
    args = ("serve", "--workers", "2", "--port", "0", "--source", "none")
    async with hub_process(*args, "--drain-seconds", LONG, "--drain-spread", LONG) as hub:
        url, _, _ = await hub.listening()
        async with AsyncExitStack() as stack:
            clients = await clients_on_both_workers(stack, url)
            hub.proc.send_signal(signal.SIGINT)
            for client in clients:
                code, reason = await closed_with(client, timeout=5)
                assert code == 1001
                assert reason.startswith("server shutting down")
        assert await hub.exit_code(within=5) == 0
    assert b"SIGINT: stopping the workers now" in hub.stderr
    assert b"Traceback" not in hub.stderr
