"""Graceful drain for rolling restarts, and the process's file limit.

On shutdown the hub turns unhealthy at once, refuses newcomers, keeps its clients'
streams flowing for ``drain_seconds``, then closes them with 1001 spread over
``drain_spread`` seconds, each close naming the ``since_ledger`` that resumes it."""

from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from trio_websocket import ConnectionClosed, HandshakeError

from hub.wire.envelope import resume_hint
from tests.helpers.httpraw import fetch, http_client
from tests.helpers.hubs import Client, make_config, start_hub, websocket
from tests.helpers.samples import ledger_closed, xrp_payment


async def _close_of(client: Client) -> tuple[float, int, str]:
    try:
        while True:
            await client.ws.get_message()
    except ConnectionClosed as exc:
        return trio.current_time(), exc.reason.code, exc.reason.reason or ""


async def test_drain_keeps_streams_then_closes_spread_with_the_resume_point(
    nursery: trio.Nursery,
) -> None:
    config = make_config(server={"drain_seconds": 0.6, "drain_spread": 0.4})
    node = await start_hub(nursery, config)
    async with websocket(node.url) as a, websocket(node.url) as b, websocket(node.url) as c:
        clients = (Client(a), Client(b), Client(c))
        for client in clients:
            await client.request({"command": "subscribe", "streams": ["ledger", "transactions"]})
        await node.publish({**ledger_closed(10), "txn_count": 1})
        await node.publish(xrp_payment(10, 0))
        for client in clients:
            assert (await client.recv())["type"] == "ledgerClosed"
            assert (await client.recv())["type"] == "transaction"
        started = trio.current_time()
        node.shutdown()
        health = await fetch(node.port or 0, "GET", "/health")
        assert health.status == 503
        assert health.json()["status"] == "draining"
        refused = await fetch(node.port or 0, "POST", "/", b'{"method": "ping"}')
        assert refused.status == 503
        # Still streaming while draining: a ledger that is open stays incomplete.
        await node.publish({**ledger_closed(11), "txn_count": 2})
        await node.publish(xrp_payment(11, 0))
        for client in clients:
            assert (await client.recv())["ledger_index"] == 11
            assert (await client.recv())["type"] == "transaction"
        closes = []
        with trio.fail_after(5):
            for client in clients:
                closes.append(await _close_of(client))
    times = sorted(at - started for at, _, _ in closes)
    assert times[0] >= 0.55  # drain_seconds, less the clock's grain
    assert times[-1] - times[0] >= 0.2  # spread over drain_spread, not one wave
    assert {code for _, code, _ in closes} == {1001}
    # Ledger 11 lacks a transaction: it is replayed in full.
    assert {resume_hint(reason) for _, _, reason in closes} == {10}


async def test_drain_ends_early_once_every_client_left_and_a_second_call_is_at_once(
    nursery: trio.Nursery,
) -> None:
    node = await start_hub(nursery, make_config(server={"drain_seconds": 30, "drain_spread": 30}))
    async with websocket(node.url) as ws:
        client = Client(ws)
        await client.request({"command": "ping"})
        node.shutdown()
        node.shutdown()  # as a second SIGTERM: no more waiting
        with trio.fail_after(3):
            _, code, _ = await _close_of(client)
        assert code == 1001


@asynccontextmanager
async def limited_hub(preexec: Callable[[], None], stderr: Any) -> AsyncIterator[int]:
    """A `hub serve` subprocess whose file limits ``preexec`` sets; yields its port."""
    args = ["serve", "--port", "0", "--source", "none", "--drain-seconds", "0"]
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "hub", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        preexec_fn=preexec,
    )
    try:
        assert proc.stdout is not None
        with trio.fail_after(20):
            line = await proc.stdout.receive_some(4096)
        yield int(line.decode().strip().rsplit(":", 1)[1])
    finally:
        proc.kill()
        await proc.wait()
        if proc.stdout is not None:
            await proc.stdout.aclose()


async def test_a_hub_started_with_a_soft_limit_of_256_files_holds_600_clients() -> None:
    def low_limit() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    async with limited_hub(low_limit, subprocess.DEVNULL) as port:
        await _hold(port, 600)


UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def _hold(port: int, count: int) -> None:
    """Open ``count`` WebSocket connections (which never idle out) and keep them all."""
    streams = []
    try:
        with trio.fail_after(30):
            for i in range(count):
                source = f"127.0.{2 + i // 250}.{1 + i % 250}"
                stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
                streams.append(stream)
                await stream.send_all(UPGRADE)
                assert (await stream.receive_some(4096)).startswith(b"HTTP/1.1 101 ")
    finally:
        for stream in streams:
            await trio.aclose_forcefully(stream)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


_CANNOT_ACCEPT = "cannot accept connections"


async def test_out_of_files_the_hub_warns_once_counts_and_keeps_its_clients(
    tmp_path: Path,
) -> None:
    def tight_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))  # the hard limit too

    errors = tmp_path / "hub.log"
    with errors.open("w") as log:
        async with limited_hub(tight_limit, log) as port:
            await _exhaust_and_recover(port, trio.Path(errors))


async def _exhaust_and_recover(port: int, errors: trio.Path) -> None:
    """Fill the hub's files; it warns once, counts every failed accept, keeps streaming."""
    url = f"ws://127.0.0.1:{port}/"
    async with (
        http_client(port) as http,
        websocket(url) as admin_ws,
        websocket(url) as sub_ws,
    ):
        admin, sub = Client(admin_ws), Client(sub_ws)
        assert (await sub.request({"command": "subscribe", "streams": ["ledger"]}))["status"] == (
            "success"
        )
        filler = []
        try:
            with trio.fail_after(10):
                for i in range(80):  # more than the 64 files the hub may hold
                    source = f"127.0.{2 + i // 250}.{1 + i % 250}"
                    filler.append(
                        await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
                    )

            async def accept_errors() -> float:
                metrics = await http.request("GET", "/metrics")
                return _metric(metrics.body.decode(), "hub_accept_errors_total")

            with trio.fail_after(10):
                # Polled: the retries happen inside the hub, seen only through /metrics.
                while await accept_errors() < 3:  # noqa: ASYNC110
                    await trio.sleep(0.02)
            assert (await errors.read_text()).count(_CANNOT_ACCEPT) == 1
            # The connections it has keep their streams.
            published = await admin.request(
                {"command": "publish", "messages": [{**ledger_closed(7), "txn_count": 0}]}
            )
            assert published["status"] == "success", published
            assert (await sub.recv())["ledger_index"] == 7
        finally:
            for stream in filler:
                await trio.aclose_forcefully(stream)
        # Files freed, newcomers are accepted again.
        with trio.fail_after(10):
            while True:
                try:
                    async with websocket(url) as ws:
                        assert (await Client(ws).request({"command": "ping"}))["status"] == (
                            "success"
                        )
                        break
                except (OSError, HandshakeError):
                    await trio.sleep(0.05)
        assert await accept_errors() >= 3
        log = await errors.read_text()
        assert log.count(_CANNOT_ACCEPT) == 1, log
        assert "open-file limit 64" in log
