"""The README's client snippets, run as a reader would run them (xrpl-py, xrpl.js under
Node), against a real hub."""

from __future__ import annotations

import re
import sys
from importlib.metadata import version
from pathlib import Path

import trio

from hub import Hub
from tests.helpers.hubs import eventually, make_config, start_hub
from tests.helpers.peers import JS_DIR
from tests.helpers.snippets import marked_blocks

URL = "ws://127.0.0.1:6006"
"""The address the README's snippets connect to: the hub's default."""


def pointed_at(code: str, url: str) -> str:
    assert code.count(URL) == 1, f"the snippet should name {URL} once"
    return code.replace(URL, url)


async def simulated_hub(nursery: trio.Nursery) -> Hub:
    config = make_config(source={"source": "simulator", "ledger_interval": 0.2, "seed": 5})
    node = await start_hub(nursery, config)
    await eventually(lambda: node.node.ledger.index is not None, timeout=20)
    return node


def check_output(stdout: str, node: Hub) -> None:
    lines = stdout.strip().splitlines()
    assert lines[0] == f"hub {version('xrpl-stream-hub')}", stdout
    match = re.fullmatch(r"ledger (\d+) (\d+) transactions", lines[-1])
    assert match, stdout
    assert node.node.ledger.index is not None
    assert int(match[1]) <= node.node.ledger.index
    assert len(lines) == 2, stdout


async def test_the_readme_xrpl_py_snippet_runs(nursery: trio.Nursery) -> None:
    node = await simulated_hub(nursery)
    _, code = marked_blocks()["xrpl-py"]
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, "-c", pointed_at(code, node.url)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    check_output(done.stdout.decode(), node)


async def test_the_readme_xrpl_js_snippet_runs(
    nursery: trio.Nursery,
    node_binary: str,
    tmp_path: Path,
) -> None:
    node = await simulated_hub(nursery)
    _, code = marked_blocks()["xrpl.js"]
    script = tmp_path / "readme.mjs"
    script.write_text(pointed_at(code, node.url))
    (tmp_path / "node_modules").symlink_to(JS_DIR / "node_modules")
    with trio.fail_after(60):
        done = await trio.run_process(
            [node_binary, str(script)], capture_stdout=True, capture_stderr=True, check=False
        )
    assert done.returncode == 0, done.stderr.decode()
    check_output(done.stdout.decode(), node)
