"""``hub serve`` as a real process: flags, the TOML config, the listening line, signals."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from hub import config as hub_config
from hub.app import cli

from .conftest import Client, expect_close, websocket
from .wsraw import open_raw
from tests.helpers.processes import HubProcess, hub_process, serve, write_config











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
    assert f"{sig.name}: draining, then shutting down".encode() in hub.stderr  # info by default
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


# The other refusals run main() in this process: same code path, no interpreter start-up.


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[server]\nprot = 1\n", "`prot` - at `$.server`"),
        ('[server]\nport = "x"\n', "$.server.port"),
        ("[server]\nport = 1.5\n", "$.server.port"),
        ("[nope]\nx = 1\n", "nope"),
        ('[server]\nlog_level = "loud"\n', "$.server.log_level"),
        ("[api]\nbeta_api = 3\n", "$.api.beta_api"),
        ('[admin]\nips = "127.0.0.1"\n', "$.admin.ips"),
        ("server = 1\n", "$.server"),
        ("[server\n", "cannot read config"),
    ],
    ids=[
        "unknown-key",
        "wrong-type",
        "float-port",
        "unknown-section",
        "bad-choice",
        "bad-bool",
        "bad-list",
        "section-not-table",
        "bad-toml",
    ],
)
def test_bad_config_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, fragment: str
) -> None:
    config = write_config(tmp_path, text)
    assert cli.main(["serve", "--config", config]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("hub: ")
    assert fragment in err


def test_missing_config_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--config", str(tmp_path / "absent.toml")]) == 2
    assert "absent.toml" in capsys.readouterr().err


def test_bad_flag_value_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--log-level", "loud"])
    assert info.value.code == 2
    assert "--log-level" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--port", "eighty"])
    assert info.value.code == 2


def test_help_lists_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--host", "--port", "--config", "--log-level"):
        assert flag in text


def test_every_flag_has_a_config_key(tmp_path: Path) -> None:
    """A flag and its TOML key set the same setting."""
    flags = cli._overrides(
        cli._parser().parse_args(
            ["serve", "--host", "127.0.0.2", "--port", "0", "--log-level", "debug"]
        )
    )
    from_flags = hub_config.load(None, flags)
    path = write_config(tmp_path, '[server]\nhost = "127.0.0.2"\nport = 0\nlog_level = "debug"\n')
    from_file = hub_config.load(path)
    assert from_flags == from_file
    assert (from_file.server.host, from_file.server.port, from_file.server.log_level) == (
        "127.0.0.2",
        0,
        "debug",
    )


def test_out_of_range_default_version_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "[api]\ndefault_version = 5\n")
    assert cli.main(["serve", "--config", config]) == 2
    assert "default_version" in capsys.readouterr().err


@pytest.mark.parametrize("port", [-1, 65536, 70000])
def test_port_out_of_range_is_refused(port: int) -> None:
    try:
        hub_config.load(None, {"server": {"port": port}})
    except hub_config.ConfigError:
        return
    raise AssertionError(f"port {port} accepted")


@pytest.mark.parametrize("value", [0, -1])
def test_max_in_flight_below_1_is_refused(value: int) -> None:
    try:
        hub_config.load(None, {"server": {"max_in_flight": value}})
    except hub_config.ConfigError:
        return
    raise AssertionError(f"max_in_flight = {value} accepted")
