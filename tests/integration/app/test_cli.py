"""``hub serve`` as a real process: flags, the TOML config, the listening line, signals."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tests.helpers.hubs import Client, expect_close, websocket
from tests.helpers.processes import STARTUP, hub_process, serve, write_config
from tests.helpers.wsraw import open_raw


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_signal_closes_clients_1001_and_exits_0(sig: signal.Signals) -> None:
    async with hub_process(*serve("--drain-seconds", "0", "--drain-spread", "0")) as hub:
        url, host, port = await hub.listening()
        assert host == "127.0.0.1"
        assert port != 0
        async with websocket(url) as ws, open_raw(url) as silent:
            client = Client(ws)
            assert (await client.request({"command": "ping", "id": 1}))["status"] == "success"
            hub.proc.send_signal(sig)
            with trio.fail_after(2):
                assert await expect_close(client) == 1001
                # A client that never answers the close does not hold the exit up.
                assert (await silent.next_close()).code == 1001
                assert await hub.exit_code(within=2) == 0
    assert hub.stdout == f"listening on {url}\n".encode()
    said = "closing every connection now" if sig == signal.SIGINT else "draining"
    assert f"{sig.name}: {said}, then shutting down".encode() in hub.stderr  # info by default
    assert b"Traceback" not in hub.stderr


async def test_signal_right_after_the_listening_line_exits_0() -> None:
    """The line says the hub is ready; a signal from then on must be a graceful stop."""

    def once(sig: signal.Signals) -> int:
        # Blocking I/O in a thread: the signal follows the line as fast as possible.
        with subprocess.Popen(
            [sys.executable, "-m", "hub", *serve()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as proc:
            try:
                assert proc.stdout is not None
                assert proc.stdout.readline().startswith(b"listening on ws://")
                proc.send_signal(sig)
                proc.communicate(timeout=2)
            finally:
                proc.kill()
            return proc.returncode

    def attempts() -> list[int]:
        return [once(sig) for sig in [signal.SIGINT, signal.SIGTERM] * 3]

    assert await trio.to_thread.run_sync(attempts) == [0] * 6


async def test_config_file(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        """
[server]
host = "127.0.0.2"
port = 0
log_level = "warning"
network_id = 4242
drain_seconds = 0
drain_spread = 0

[api]
default_version = 2

[source]
source = "none"
""",
    )
    async with hub_process("serve", "--config", config) as hub:
        url, host, _ = await hub.listening()
        assert host == "127.0.0.2"
        async with websocket(url) as ws:
            client = Client(ws)
            info = await client.request({"command": "server_info", "id": 1})
            assert info["result"]["info"]["network_id"] == 4242
            version = await client.request({"command": "version", "id": 2})
            assert version["result"] == {"version": {"first": 1, "last": 2}}
            hub.proc.send_signal(signal.SIGTERM)
            assert await expect_close(client, timeout=2) == 1001
        assert await hub.exit_code(within=2) == 0
    assert b"INFO" not in hub.stderr  # [server] log_level = "warning"


async def test_flags_override_the_config_file(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '[server]\nhost = "127.0.0.2"\nport = 6006\nlog_level = "warning"\n',
    )
    args = ("--config", config, "--host", "127.0.0.1", "--log-level", "info")
    async with hub_process(*serve(*args)) as hub:
        url, host, port = await hub.listening()
        assert host == "127.0.0.1"
        assert port not in (0, 6006)
        async with websocket(url) as ws:
            reply = await Client(ws).request({"command": "ping", "id": 1})
            assert reply["status"] == "success"
        hub.proc.send_signal(signal.SIGINT)
        assert await hub.exit_code(within=2) == 0
    assert b"INFO" in hub.stderr


async def test_bad_config_key_exits_2_with_a_message(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[server]\nprot = 1\n")
    async with hub_process("serve", "--config", config) as hub:
        assert await hub.exit_code(within=STARTUP) == 2
    assert hub.stderr == (
        b"hub: invalid config: Object contains unknown field `prot` - at `$.server`\n"
    )
    assert hub.stdout == b""
