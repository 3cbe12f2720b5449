"""Floods of sockets that never finish a handshake, and of bad handshakes.

One address may hold no more sockets than ``[limits] max_connections_per_ip``, from
the moment each is accepted: more silent sockets than the hub has file descriptors
leave other clients served at once. And what a flood makes the hub log is bounded."""

from __future__ import annotations

import logging
import resource
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import trio

from hub.logs import Throttle
from tests.helpers.httpraw import fetch
from tests.helpers.hubs import make_config, start_hub
from tests.helpers.processes import hub_process, write_config
from tests.helpers.wsraw import RawClient

OPEN_FILES = 256
"""The hub's file-descriptor limit here (soft and hard, so it cannot raise it)."""


FLOOD = 400
"""Silent sockets from one address: more than the hub could ever hold."""


PER_IP = 20


HONEST = 5


BURST = Throttle().burst
"""Lines of one kind the hub's default throttle lets through per interval."""


PROMPT = 5.0
"""Seconds an honest handshake or health check may take; the flood's sockets are only
dropped after a handshake_timeout of 60 s."""


def _few_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))


async def _until_refused(flood: list[trio.SocketStream], expected: int) -> list[bytes]:
    """Read each flood socket until the hub closes it; return what the first
    ``expected`` of them to close were sent."""
    answers: list[bytes] = []
    done = trio.Event()

    async def read(stream: trio.SocketStream) -> None:
        data = b""
        while chunk := await stream.receive_some(4096):
            data += chunk
        answers.append(data)
        if len(answers) == expected:
            done.set()

    async with trio.open_nursery() as nursery:
        for stream in flood:
            nursery.start_soon(read, stream)
        with trio.fail_after(PROMPT * 2):
            await done.wait()
        nursery.cancel_scope.cancel()
    return answers


async def test_silent_sockets_from_one_address_leave_other_addresses_served(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, "[server]\nhandshake_timeout = 60\n[admin]\nips = []\n")
    args = ("serve", "--port", "0", "--source", "none", "--config", config)
    async with hub_process(*args, preexec_fn=_few_open_files) as hub:
        _url, host, port = await hub.listening()
        async with AsyncExitStack() as stack:
            flood = []
            for _ in range(FLOOD):
                stream = await trio.open_tcp_stream(host, port, local_address="127.0.0.2")
                stack.push_async_callback(trio.aclose_forcefully, stream)
                flood.append(stream)
            for _ in range(HONEST):
                with trio.fail_after(PROMPT):
                    client = await RawClient.connect(host, port, local_address="127.0.0.3")
                    await client.send_json({"command": "ping"})
                    assert (await client.next_message())["status"] == "success"
                    await client.aclose()
                with trio.fail_after(PROMPT):
                    health = await fetch(port, "GET", "/health", source_ip="127.0.0.3")
                    assert health.status == 200
            answers = await _until_refused(flood, FLOOD - PER_IP)
        assert all(answer.startswith(b"HTTP/1.1 429 ") for answer in answers)
        assert all(
            answer.endswith(b"Too many connections from your address.\n") for answer in answers
        )
        hub.proc.terminate()
        assert await hub.exit_code(within=15) == 0
    refusals = hub.stderr.count(b"before its handshake: over max_connections_per_ip")
    assert 1 <= refusals <= BURST, hub.stderr.decode()[-2000:]


async def test_a_flood_of_bad_handshakes_logs_a_few_lines(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """Timed-out handshakes and wrong admin tokens: at most a burst of each per interval
    (this test runs within one), however many come."""
    caplog.set_level(logging.INFO)
    cfg = make_config(
        server={"port": 0, "handshake_timeout": 0.1},
        admin={"ips": [], "token": "right"},
        limits={"max_connections_per_ip": 1000},
    )
    node = await start_hub(nursery, cfg)
    assert node.port is not None
    wrong = [(b"authorization", b"Bearer wrong")]
    for _ in range(30):
        guesser = await RawClient.connect("127.0.0.1", node.port, extra_headers=wrong)
        await guesser.aclose()
    async with AsyncExitStack() as stack:
        silent = []
        for _ in range(30):
            stream = await trio.open_tcp_stream("127.0.0.1", node.port)
            stack.push_async_callback(trio.aclose_forcefully, stream)
            silent.append(stream)
        for stream in silent:
            with trio.fail_after(5):
                assert await stream.receive_some(1) == b""  # the hub timed it out
    messages = [record.getMessage() for record in caplog.records]
    tokens = [m for m in messages if m.startswith("a wrong admin token from")]
    timeouts = [m for m in messages if m.startswith("handshake from") and "timed out" in m]
    assert 1 <= len(tokens) <= BURST
    assert 1 <= len(timeouts) <= BURST


def proxy_v1(source: str) -> bytes:
    return f"PROXY TCP4 {source} 127.0.0.1 40000 6006\r\n".encode()


HEALTH = b"GET /health HTTP/1.1\r\nHost: hub\r\n\r\n"


async def _health_through(port: int, source: str, stack: AsyncExitStack) -> bytes:
    """A kept-alive connection from the trusted proxy naming ``source``: its answer."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    stack.push_async_callback(trio.aclose_forcefully, stream)
    await stream.send_all(proxy_v1(source) + HEALTH)
    with trio.fail_after(PROMPT):
        return bytes(await stream.receive_some(65536))


async def test_behind_a_trusted_proxy_each_client_is_limited_not_the_proxy(
    nursery: trio.Nursery,
) -> None:
    cfg = make_config(
        server={
            "port": 0,
            "handshake_timeout": 60,
            "trusted_proxies": ["127.0.0.1"],
            "proxy_protocol": True,
        },
        admin={"ips": []},
        limits={"max_connections_per_ip": 2},
    )
    node = await start_hub(nursery, cfg)
    assert node.port is not None
    async with AsyncExitStack() as stack:
        for i in range(6):  # three times the limit from the proxy's own address
            answer = await _health_through(node.port, f"192.0.2.{i}", stack)
            assert answer.startswith(b"HTTP/1.1 200 ")
        for _ in range(2):
            answer = await _health_through(node.port, "192.0.2.100", stack)
            assert answer.startswith(b"HTTP/1.1 200 ")
        # One more from that client: answered once its PROXY header names it, before it
        # sends a request (the hub would otherwise wait 60 s for one).
        third = await trio.open_tcp_stream("127.0.0.1", node.port)
        stack.push_async_callback(trio.aclose_forcefully, third)
        await third.send_all(proxy_v1("192.0.2.100"))
        data = b""
        with trio.fail_after(PROMPT):
            while chunk := await third.receive_some(4096):
                data += chunk
        assert data.startswith(b"HTTP/1.1 429 ")
        assert node.node.occupancy.count("192.0.2.100") == 2
        assert node.node.occupancy.count("127.0.0.1") == 0
