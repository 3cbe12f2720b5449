"""xrpl.js, the XRPL Foundation's JavaScript client, talks to the hub unmodified.

``tests/js`` pins xrpl 5.3.0 with a lock file; ``npm ci`` installs it on first use.
Without Node.js or npm the test is skipped locally, but fails when ``CI`` is set.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

from hub import Hub

from .conftest import IN_CI, make_config

JS_DIR = Path(__file__).parent / "js"
NODE_MIN = (20, 19)  # xrpl 5.3.0's engines field


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI must be able to run the xrpl.js check)")
    pytest.skip(reason)


def find_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} not found: install Node.js >= 20.19 to run the xrpl.js check")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def node_binary() -> str:
    node = find_tool("node")
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    match = re.match(r"v(\d+)\.(\d+)", out.stdout)
    if not match or (int(match[1]), int(match[2])) < NODE_MIN:
        unavailable(f"Node.js {out.stdout.strip()} is older than xrpl 5.3.0 needs (20.19)")
    if not (JS_DIR / "node_modules" / "xrpl").is_dir():
        npm = find_tool("npm")
        install = subprocess.run(
            [npm, "ci", "--prefix", str(JS_DIR), "--no-audit", "--no-fund"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if install.returncode != 0:
            unavailable(f"npm ci failed in {JS_DIR}:\n{install.stderr[-2000:]}")
    return node


async def run_client(node: str, url: str, script: str = "client.mjs", *args: str) -> dict[str, Any]:
    with trio.fail_after(60):
        done = await trio.run_process(
            [node, str(JS_DIR / script), url, *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    stdout = done.stdout.decode()
    assert done.returncode == 0, f"client.mjs failed:\n{stdout}\n{done.stderr.decode()}"
    summary: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return summary


def test_lock_file_pins_xrpl_5_3_0() -> None:
    package = json.loads((JS_DIR / "package.json").read_text())
    assert package["dependencies"]["xrpl"] == "5.3.0"
    lock = json.loads((JS_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/xrpl"]["version"] == "5.3.0"


async def test_xrpl_js_server_info_ping_and_errors(hub: Hub, node_binary: str) -> None:
    summary = await run_client(node_binary, hub.url)
    assert summary["connected"] is True

    info = summary["server_info"]
    assert info["type"] == "response"
    assert info["api_version"] == 2  # xrpl.js sends 2 by default; the hub echoes it
    assert isinstance(info["result"]["info"]["build_version"], str)
    assert info["result"]["info"]["hub"]["connections"] == 1

    ping = summary["ping"]
    assert ping["type"] == "response"
    assert ping["result"] == {}
    # xrpl.js numbers its requests; the numbers must come back as numbers to match.
    assert isinstance(info["id"], int)
    assert isinstance(ping["id"], int)
    assert ping["id"] != info["id"]

    assert summary["version"]["id"] == "v-1"
    assert summary["version"]["result"] == {"version": {"first": 1, "last": 2}}

    error = summary["error"]
    assert error["name"] == "RippledError"
    assert error["message"] == "Unknown method."
    assert error["data"]["error"] == "unknownCmd"
    assert error["data"]["error_code"] == 32
    assert error["data"]["request"]["command"] == "no_such_method"

    assert summary["after_error"]["result"] == {}
    assert summary["disconnected"] is True


async def test_xrpl_js_emits_stream_events(nursery: trio.Nursery, node_binary: str) -> None:
    """xrpl.js emits an event per message ``type``: the hub's streams reach its handlers."""
    node = Hub(make_config(source={"source": "simulator", "ledger_interval": 0.1, "seed": 3}))
    await nursery.start(node.run)
    summary = await run_client(node_binary, node.url, "streams.mjs", "4")
    node.shutdown()
    assert summary["subscribe"]["type"] == "response"
    indexes = [ledger["index"] for ledger in summary["ledgers"]]
    assert indexes == list(range(indexes[0], indexes[0] + len(indexes)))
    assert len(indexes) >= 4
    assert summary["validations"] > 0
    txs = summary["transactions"]
    assert txs, "no transaction event reached xrpl.js"
    assert all(tx["validated"] is True for tx in txs)
    assert all(len(tx["hash"]) == 64 and tx["type"] for tx in txs)
    # Every ledger after the first whose transactions arrived whole matches its txn_count.
    by_ledger: dict[int, int] = {}
    for tx in txs:
        by_ledger[tx["ledger_index"]] = by_ledger.get(tx["ledger_index"], 0) + 1
    for ledger in summary["ledgers"][1:-1]:
        assert by_ledger.get(ledger["index"], 0) == ledger["txn_count"]
