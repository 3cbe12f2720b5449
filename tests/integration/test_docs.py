"""The deployment files the documentation ships work as it says: the systemd unit reloads
and drains a real hub."""

from __future__ import annotations

import configparser
import shlex
import signal
from pathlib import Path

import trio

from hub import config as hub_config
from tests.helpers.hubs import Client, expect_close, websocket
from tests.helpers.paths import DOCS, ROOT
from tests.helpers.processes import hub_process

EXAMPLE = ROOT / "hub.example.toml"


def unit() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DOCS / "deploy" / "hub.service")
    return parser["Service"]


async def test_the_systemd_unit_reloads_and_drains_the_hub(tmp_path: Path) -> None:
    """The unit's own command line, reload and stop signals: SIGHUP keeps serving, the
    stop signal drains (1001) and the hub exits 0 within the unit's stop timeout, which
    leaves room for the default drain."""
    service = unit()
    command = shlex.split(service["ExecStart"])
    assert command[0].endswith("/bin/hub")
    config = tmp_path / "hub.toml"
    config.write_text(EXAMPLE.read_text())
    args = [str(config) if arg == "/etc/hub/hub.toml" else arg for arg in command[1:]]
    assert str(config) in args
    timeout = float(service["TimeoutStopSec"])
    defaults = hub_config.load(EXAMPLE).server
    assert timeout >= defaults.drain_seconds + defaults.drain_spread + 10
    assert shlex.split(service["ExecReload"]) == ["/bin/kill", "-HUP", "$MAINPID"]
    stop = signal.Signals[service["KillSignal"]]
    quick = ("--port", "0", "--drain-seconds", "0.3", "--drain-spread", "0.2")
    async with hub_process(*args, *quick) as hub:
        url, _, _ = await hub.listening()
        async with websocket(url) as ws:
            client = Client(ws)
            hub.proc.send_signal(signal.SIGHUP)
            assert (await client.request({"command": "ping", "id": 1}))["status"] == "success"
            hub.proc.send_signal(stop)
            with trio.fail_after(5):
                assert await expect_close(client) == 1001
        assert await hub.exit_code(within=timeout) == 0
