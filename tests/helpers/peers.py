"""Client libraries as peers: xrpl.js under Node, xrpl-py in an asyncio loop of its own.

``tests/interop/js`` pins xrpl 5.3.0 with a lock file; ``npm ci`` installs it on first
use. xrpl-py is asyncio and the hub is trio: the hub runs in the test's trio loop and
xrpl-py in its own ``asyncio.run`` on a worker thread (``trio.to_thread.run_sync``).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from typing import Any

import trio
from xrpl.asyncio.clients import AsyncWebsocketClient

from hub import Hub
from tests.helpers.paths import TESTS
from tests.helpers.programs import missing

JS_DIR = TESTS / "interop" / "js"
NODE_MIN = (20, 19)  # xrpl 5.3.0's engines field


def find_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"{name} not found: install Node.js >= 20.19 to run the xrpl.js check")
    return path


def need_node() -> str:
    """The ``node`` binary, with ``tests/interop/js``'s pinned xrpl.js installed (``npm ci``
    on first use); skip (or under CI fail) when Node.js is missing or too old."""
    node = find_tool("node")
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    match = re.match(r"v(\d+)\.(\d+)", out.stdout)
    if not match or (int(match[1]), int(match[2])) < NODE_MIN:
        missing(f"Node.js {out.stdout.strip()} is older than xrpl 5.3.0 needs (20.19)")
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
            missing(f"npm ci failed in {JS_DIR}:\n{install.stderr[-2000:]}")
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


def in_asyncio(url: str, session: Any) -> Any:
    """Run ``session(client)`` against ``url`` with xrpl-py, in a fresh asyncio loop."""

    async def main() -> Any:
        async with asyncio.timeout(10), AsyncWebsocketClient(url) as client:
            return await session(client)

    return asyncio.run(main())


async def run_xrpl_py(node: Hub, session: Any) -> Any:
    with trio.fail_after(15):
        return await trio.to_thread.run_sync(in_asyncio, node.url, session)
